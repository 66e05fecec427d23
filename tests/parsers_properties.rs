//! Property tests for the parsers that read operator input: the YAML config, cinder.conf,
//! the web config, database URLs and durations. Each gets arbitrary text and valid text
//! corrupted at random places; none may panic, and an error about a file or line says
//! where.
//!
//! Database URLs are also held to their two grammars: cinder.conf's as SQLAlchemy reads
//! it (a committed table of SQLAlchemy's own answers, `scripts/sqlalchemy-url-table`),
//! ours as RFC 3986 with percent-encoding, over passwords with every ASCII punctuation
//! character.
//!
//! Case counts are moderate (1,000 each) so the suite stays fast. Files the
//! inputs refer to live in one temporary directory; inputs naming system paths are
//! skipped, so no case reads a device or a large file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use cinder_exporter::config;
use cinder_exporter::config::parse_cinder_conf;
use cinder_exporter::config::parse_duration;
use cinder_exporter::config::DatabaseUrl;
use cinder_exporter::parse_web_config;
use common::users::percent_encode;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

/// Characters that mean something to YAML, INI or URL syntax: the likeliest to break a
/// parser when inserted into valid text.
const SPECIAL: &[char] = &[
    ':', '-', '[', ']', '{', '}', '"', '\'', '\t', '\n', '\r', '#', '&', '*', '!', '|', '>', '%',
    '@', '`', '?', '/', '=', ';', ' ', '\\', '\0', 'é', '\u{feff}', '0', '9', 's', 'm',
];

/// One edit to valid text.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    DuplicateLine(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let special = proptest::sample::select(SPECIAL);
    let any_char = prop_oneof![3 => special, 1 => any::<char>()];
    prop_oneof![
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any_char.clone()).prop_map(|(at, c)| Edit::Insert(at, c)),
        (any::<usize>(), any_char).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// Applies `edits` to `text`, positions taken modulo the current length (in chars).
fn corrupt(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let len = chars.len().max(1);
        match *edit {
            Edit::Delete(at) if !chars.is_empty() => {
                chars.remove(at % len);
            }
            Edit::Insert(at, c) => chars.insert(at % (chars.len() + 1), c),
            Edit::Replace(at, c) if !chars.is_empty() => chars[at % len] = c,
            Edit::DuplicateLine(at) => {
                let text: String = chars.iter().collect();
                let mut lines: Vec<&str> = text.split('\n').collect();
                let line = lines[at % lines.len()];
                lines.insert(at % lines.len(), line);
                chars = lines.join("\n").chars().collect();
            }
            Edit::Truncate(at) => chars.truncate(at % len),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

/// Text that might make a parser open a system file (other than the fixtures): skipped
/// rather than run.
fn names_system_paths(text: &str) -> bool {
    let fixtures = fixtures().dir.path().display().to_string();
    let text = text.replace(&fixtures, "");
    [
        "/dev", "/proc", "/sys", "/run", "/var", "/etc", "/usr", "/root", "/home", "/boot",
    ]
    .iter()
    .any(|p| text.contains(p))
}

/// Files the valid texts refer to: a cinder.conf, PEM files and a bcrypt hash.
struct Fixtures {
    dir: tempfile::TempDir,
    hash: String,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "cinder.conf",
            "[DEFAULT]\nservice_down_time = 60\nreport_interval = 10\n[database]\n\
             connection = mysql+pymysql://cinder:pw@ctl/cinder?charset=utf8\n",
        );
        write("url", "mysql://u:p@127.0.0.1:3306/cinder\n");
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        write("server.crt", &certified.cert.pem());
        write("server.key", &certified.signing_key.serialize_pem());
        write("ca.crt", &certified.cert.pem());
        write(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
        );
        Fixtures {
            dir,
            hash: bcrypt::hash("secret", 4).unwrap(),
        }
    })
}

fn fixture_path(name: &str) -> PathBuf {
    fixtures().dir.path().join(name)
}

// ---------------------------------------------------------------------------------
// (a) the YAML config file

fn valid_config() -> impl Strategy<Value = String> {
    let duration = proptest::sample::select(vec![
        "60s",
        "10",
        "500ms",
        "1m30s",
        "2h",
        "0",
        "-1s",
        "1.5s",
        "99999999999y",
        "\"5s\"",
    ]);
    let url = proptest::sample::select(vec![
        "mysql://cinder:pw@127.0.0.1:3306/cinder",
        "mysql+pymysql://u@db/cinder?charset=utf8&ssl_ca=/nonexistent/ca.pem",
        "mariadb://u:p@[::1]:3307/c?ssl=true&ssl_mode=VERIFY_IDENTITY",
        "postgresql://u:p@db/c",
        "mysql://u:p@db:99999/c",
    ]);
    (
        url,
        duration.clone(),
        duration.clone(),
        duration.clone(),
        duration,
        0..4usize,
    )
        .prop_map(|(url, down, report, poll, stale, variant)| {
            let cinder_conf = fixture_path("cinder.conf").display().to_string();
            let url_file = fixture_path("url").display().to_string();
            match variant {
                0 => format!(
                    "database:\n  url: {url}\nservice_down_time: {down}\nreport_interval: {report}\n\
                     poll_interval: {poll}\nstale_after: {stale}\nquery_timeout: 5s\n"
                ),
                1 => format!("cinder_conf: {cinder_conf}\npoll_interval: {poll}\n"),
                2 => format!(
                    "cinder_conf:\n  - {cinder_conf}\n  - /nonexistent/cinder.conf\n\
                     database:\n  url_file: {url_file}\nstale_after: {stale}\n"
                ),
                _ => format!("database: {{url: '{url}'}}\nreport_interval: {report}\n"),
            }
        })
}

fn check_config(text: &str) {
    if names_system_paths(text) {
        return;
    }
    if let Err(e) = config::parse_str(text, "config.yml", None) {
        // Only "no database anywhere" has no place to point at.
        assert!(
            !e.location.is_empty() || e.message.starts_with("no database configured"),
            "error without a location for {text:?}: {e}"
        );
        assert!(!e.to_string().contains('\n'), "one line: {e}");
    }
}

// ---------------------------------------------------------------------------------
// (b) cinder.conf

fn valid_cinder_conf() -> impl Strategy<Value = String> {
    (0..100u32, 0..100u32, 0..3usize).prop_map(|(down, report, variant)| match variant {
        0 => format!(
            "[DEFAULT]\n# comment\nservice_down_time = {down}\nreport_interval={report}\n\n\
             [database]\nconnection = mysql+pymysql://cinder:pw@ctl/cinder?charset=utf8\n"
        ),
        1 => format!(
            "; leading comment\n[DEFAULT]\nreport_interval = {report}\n  continued value\n\
             [other]\nkey = value\n[database]\nconnection =\n"
        ),
        _ => format!("[DEFAULT]\nservice_down_time = {down}\nservice_down_time = {report}\n"),
    })
}

fn check_cinder_conf(text: &str) {
    if let Err(e) = parse_cinder_conf(text) {
        let lines = text.lines().count().max(1);
        assert!(
            e.line >= 1 && e.line <= lines + 1 && e.column >= 1,
            "location {}:{} outside the {lines} line(s) of {text:?}",
            e.line,
            e.column
        );
    }
}

// ---------------------------------------------------------------------------------
// (c) the web config file

fn valid_web_config() -> impl Strategy<Value = String> {
    let auth = proptest::sample::select(vec![
        "NoClientCert",
        "RequestClientCert",
        "RequireAnyClientCert",
        "VerifyClientCertIfGiven",
        "RequireAndVerifyClientCert",
        "Sometimes",
    ]);
    let version = proptest::sample::select(vec!["TLS10", "TLS11", "TLS12", "TLS13", "SSL3"]);
    let pem = proptest::sample::select(vec![
        "server.crt",
        "server.key",
        "ca.crt",
        "junk.pem",
        "none.pem",
    ]);
    (auth, version.clone(), version, pem.clone(), pem, 0..4usize).prop_map(
        |(auth, min, max, cert, key, variant)| {
            let hash = &fixtures().hash;
            match variant {
                0 => format!(
                    "tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n  \
                     client_auth_type: {auth}\n  client_ca_file: ca.crt\n  min_version: {min}\n  \
                     max_version: {max}\n"
                ),
                1 => format!("basic_auth_users:\n  alice: {hash}\n  \"bob\": '{hash}'\n"),
                2 => format!(
                    "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
                     basic_auth_users:\n  alice: {hash}\nhttp_server_config:\n  http2: false\n  \
                     headers:\n    X-Frame-Options: DENY\n    Content-Security-Policy: default-src 'self'\n"
                ),
                _ => "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n".to_string(),
            }
        },
    )
}

fn check_web_config(text: &str) {
    if names_system_paths(text) {
        return;
    }
    if let Err(e) = parse_web_config(text, "web.yml", fixtures().dir.path()) {
        assert!(
            e.location.starts_with("web.yml"),
            "error not naming the file for {text:?}: {e}"
        );
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        assert!(
            !e.to_string().contains(&fixtures().hash),
            "a hash echoed: {e}"
        );
    }
}

// ---------------------------------------------------------------------------------
// (d) database URLs

/// A URL whose password is distinctive, so that its absence from output is meaningful.
fn database_url() -> impl Strategy<Value = (String, String)> {
    let scheme = proptest::sample::select(vec![
        "mysql",
        "mysql+pymysql",
        "mariadb",
        "mysql+mysqldb",
        "postgresql",
        "mysq",
        "",
    ]);
    let host = proptest::sample::select(vec![
        "127.0.0.1",
        "db.example",
        "[::1]",
        "",
        "[zz",
        "h_o_s_t",
        "999.1.1.1",
    ]);
    let port = proptest::sample::select(vec!["", ":3306", ":0", ":65535", ":65536", ":x", ":"]);
    let parameter = proptest::sample::select(vec![
        "charset=utf8",
        "ssl=true",
        "ssl=maybe",
        "ssl_ca=/nonexistent/ca.pem",
        "ssl_cert=/nonexistent/c.pem",
        "ssl_key=/nonexistent/k.pem",
        "ssl_mode=VERIFY_IDENTITY",
        "ssl_mode=BOGUS",
        "ssl_verify_cert=false",
        "unix_socket=/nonexistent/mysqld.sock",
        "ssl_check_hostname=0",
        "=",
        "%zz=1",
    ]);
    (
        scheme,
        "[a-k]{0,8}",
        "PW[a-zA-Z0-9%!$]{6,12}Q",
        host,
        port,
        "[a-k_%]{0,10}",
        proptest::collection::vec(parameter, 0..4),
    )
        .prop_map(
            |(scheme, user, password, host, port, database, parameters)| {
                let query = if parameters.is_empty() {
                    String::new()
                } else {
                    format!("?{}", parameters.join("&"))
                };
                (
                    format!("{scheme}://{user}:{password}@{host}{port}/{database}{query}"),
                    password,
                )
            },
        )
}

fn check_database_url(text: &str) {
    if let Ok(url) = DatabaseUrl::parse(text) {
        let _ = url.redacted();
        let _ = url.connection_options(Duration::from_secs(5));
    }
}

/// What a parsed URL connects with, as mysql_async will see it.
#[derive(Debug, PartialEq)]
struct Login {
    user: Option<String>,
    password: Option<String>,
    host: String,
    port: u16,
    database: Option<String>,
}

fn login(url: &DatabaseUrl) -> Login {
    let opts = mysql_async::Opts::from(url.connection_options(Duration::from_secs(5)));
    Login {
        user: opts.user().map(str::to_string),
        password: opts.pass().map(str::to_string),
        host: opts.ip_or_hostname().to_string(),
        port: opts.tcp_port(),
        database: opts.db_name().map(str::to_string),
    }
}

/// The ASCII punctuation characters: what a generated password is likeliest to hold
/// and a URL parser likeliest to trip on.
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A password of letters, digits, punctuation and spaces.
fn password_with_punctuation() -> impl Strategy<Value = String> {
    let pool: Vec<char> = PUNCTUATION.chars().chain("aZ09 é".chars()).collect();
    proptest::collection::vec(proptest::sample::select(pool), 1..24)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Whether `text` holds a `%` that SQLAlchemy would decode (`%` and two hex digits).
fn has_percent_escape(text: &str) -> bool {
    text.as_bytes()
        .windows(3)
        .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

#[test]
fn cinder_conf_urls_split_as_sqlalchemy_splits_them() {
    let table: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sqlalchemy-urls.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let rows = table["urls"].as_array().unwrap();
    assert!(rows.len() > 200, "{}", rows.len());
    for row in rows {
        let text = row["url"].as_str().unwrap();
        let ours = DatabaseUrl::parse_sqlalchemy(text);
        if row.get("error").is_some() {
            assert!(
                ours.is_err(),
                "SQLAlchemy refuses {text:?}, we read {ours:?}"
            );
            continue;
        }
        let ours = ours.unwrap_or_else(|e| panic!("SQLAlchemy reads {text:?}, we refuse: {e}"));
        let string = |key: &str| row[key].as_str().map(str::to_string);
        let expected = Login {
            // An empty user is none to PyMySQL as to mysql_async.
            user: string("user").filter(|u| !u.is_empty()),
            password: string("password"),
            host: string("host").unwrap_or_else(|| "localhost".into()),
            port: row["port"].as_u64().map_or(3306, |p| p as u16),
            database: string("database"),
        };
        assert_eq!(login(&ours), expected, "{text:?}");
        let names: Vec<&str> = row["query"]
            .as_array()
            .unwrap()
            .iter()
            .map(|pair| pair[0].as_str().unwrap())
            .collect();
        assert_eq!(ours.ignored_parameters, names, "{text:?}");
    }
}

// ---------------------------------------------------------------------------------
// (e) durations

fn duration_terms() -> impl Strategy<Value = (String, u64)> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    proptest::collection::vec(proptest::option::of(0..1000u64), 7).prop_map(|amounts| {
        let mut text = String::new();
        let mut millis = 0;
        for ((unit, unit_ms), amount) in UNITS.iter().zip(amounts) {
            if let Some(amount) = amount {
                text.push_str(&format!("{amount}{unit}"));
                millis += amount * unit_ms;
            }
        }
        (text, millis)
    })
}

// ---------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn config_survives_arbitrary_text(text in any::<String>()) {
        check_config(&text);
    }

    #[test]
    fn config_survives_corrupted_valid_files(
        text in valid_config(),
        edits in proptest::collection::vec(edit(), 0..6),
    ) {
        check_config(&corrupt(&text, &edits));
    }

    #[test]
    fn cinder_conf_survives_arbitrary_text(text in any::<String>()) {
        check_cinder_conf(&text);
    }

    #[test]
    fn cinder_conf_survives_corrupted_valid_files(
        text in valid_cinder_conf(),
        edits in proptest::collection::vec(edit(), 0..6),
    ) {
        check_cinder_conf(&corrupt(&text, &edits));
    }

    #[test]
    fn web_config_survives_arbitrary_text(text in any::<String>()) {
        check_web_config(&text);
    }

    #[test]
    fn web_config_survives_corrupted_valid_files(
        text in valid_web_config(),
        edits in proptest::collection::vec(edit(), 0..6),
    ) {
        check_web_config(&corrupt(&text, &edits));
    }

    #[test]
    fn database_url_survives_arbitrary_text(text in any::<String>()) {
        check_database_url(&text);
    }

    #[test]
    fn database_url_never_shows_the_password((text, password) in database_url()) {
        match DatabaseUrl::parse(&text) {
            Ok(url) => {
                prop_assert!(!url.redacted().contains(&password), "{}", url.redacted());
                let shown = format!("{url:?}");
                prop_assert!(!shown.contains(&password), "{}", shown);
            }
            Err(message) => prop_assert!(!message.contains(&password), "{}", message),
        }
    }

    #[test]
    fn database_url_survives_corrupted_urls(
        (text, _) in database_url(),
        edits in proptest::collection::vec(edit(), 1..5),
    ) {
        check_database_url(&corrupt(&text, &edits));
    }

    #[test]
    fn cinder_conf_passwords_are_taken_as_written(password in password_with_punctuation()) {
        // SQLAlchemy's rule: the password runs to the next `@`, so only `@` needs
        // escaping (%40), and `%XX` is decoded.
        prop_assume!(!password.contains('@') && !has_percent_escape(&password));
        let text = format!("mysql+pymysql://cinder:{password}@db.example:3307/cinder?charset=utf8");
        let seen = login(&DatabaseUrl::parse_sqlalchemy(&text).unwrap());
        prop_assert_eq!(seen.password.as_deref(), Some(password.as_str()));
        prop_assert_eq!((seen.host.as_str(), seen.port), ("db.example", 3307));
        prop_assert_eq!(seen.database.as_deref(), Some("cinder"));
        // The same password with `@` written %40 and `%` written %25.
        let escaped = password.replace('%', "%25");
        let text = format!("mysql://cinder:{escaped}%40@db.example/cinder");
        let seen = login(&DatabaseUrl::parse_sqlalchemy(&text).unwrap());
        prop_assert_eq!(seen.password, Some(format!("{password}@")));
    }

    #[test]
    fn yaml_urls_take_any_password_percent_encoded(
        password in password_with_punctuation(),
        user in password_with_punctuation(),
    ) {
        let text = format!(
            "mysql://{}:{}@db.example:3307/cinder",
            percent_encode(&user),
            percent_encode(&password)
        );
        let seen = login(&DatabaseUrl::parse(&text).unwrap());
        prop_assert_eq!(seen.password.as_deref(), Some(password.as_str()));
        prop_assert_eq!(seen.user.as_deref(), Some(user.as_str()));
        prop_assert_eq!((seen.host.as_str(), seen.port), ("db.example", 3307));
    }

    #[test]
    fn duration_survives_arbitrary_text(text in any::<String>()) {
        let _ = parse_duration(&text);
    }

    #[test]
    fn duration_reads_what_prometheus_writes((text, millis) in duration_terms()) {
        prop_assume!(!text.is_empty());
        prop_assert_eq!(parse_duration(&text), Ok(Duration::from_millis(millis)));
    }

    #[test]
    fn duration_survives_corrupted_and_huge_values(
        (text, _) in duration_terms(),
        edits in proptest::collection::vec(edit(), 1..4),
        huge in any::<u64>(),
        unit in proptest::sample::select(vec!["y", "w", "d", "h", "m", "s", "ms", ""]),
    ) {
        let _ = parse_duration(&corrupt(&text, &edits));
        let _ = parse_duration(&format!("{huge}{unit}"));
        let _ = parse_duration(&format!("{huge}y{huge}w{huge}d"));
    }
}

#[test]
fn fixtures_are_valid_to_begin_with() {
    // The corrupted cases mean something only if the uncorrupted ones parse.
    let text = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  alice: {}\n",
        fixtures().hash
    );
    let security = parse_web_config(&text, "web.yml", fixtures().dir.path()).unwrap();
    assert!(security.tls.is_some() && security.basic_auth.is_some());
    let config = format!("cinder_conf: {}\n", fixture_path("cinder.conf").display());
    config::parse_str(&config, "config.yml", None).unwrap();
    assert!(Path::new(&fixture_path("url")).exists());
}
