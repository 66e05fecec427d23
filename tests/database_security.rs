//! The database side of running the exporter in production, proven against real MariaDB
//! servers with the real binary: the least privilege it needs, TLS to the database
//! (server verification against a pinned CA, host name checks, client certificates),
//! and the password never leaving the process.
//!
//! Certificates are made at test time with rcgen; TLS tests start MariaDB servers of
//! their own with `--ssl-ca/--ssl-cert/--ssl-key` (through
//! `MARIADB_THROWAWAY_EXTRA_ARGS` of `scripts/mariadb-throwaway`).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::certs::Authority;
use common::database::admin_rows;
use common::host::free_port;
use common::users::{percent_encode, User};
use common::{
    admin_url, run_exporter_to_exit, Database, Exporter, ExporterOptions, PrivateServer, Schema,
    Scrape,
};

const WAIT: Duration = Duration::from_secs(20);

/// Every exporter user here has this password; no output may ever contain it.
const PASSWORD: &str = "s3cr3t-Pa55word";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A database holding two services: one up, one down.
fn fleet(server_url: &str, schema: Schema) -> Database {
    let db = Database::create_on(server_url, schema);
    let day = Some(-86_400);
    db.insert_service("ctl1@lvm", "cinder-volume", day, Some(-1), 42);
    db.insert_service("ctl2", "cinder-scheduler", day, Some(-600), 7);
    db
}

/// The per-service series of [`fleet`] (in `db`) are there and right.
fn assert_fleet(scrape: &Scrape, db: &Database) {
    let value = |metric: &str, host: &str| scrape.value(metric, &[("host", host)]);
    assert_eq!(
        value("cinder_service_up", "ctl1@lvm"),
        Some(1.0),
        "{}",
        scrape.text
    );
    assert_eq!(value("cinder_service_up", "ctl2"), Some(0.0));
    assert_eq!(
        value("cinder_service_reports_total", "ctl1@lvm"),
        Some(42.0)
    );
    assert_eq!(value("cinder_service_reports_total", "ctl2"), Some(7.0));
    assert_eq!(
        scrape.value(
            "cinder_service_enabled",
            &[
                ("host", "ctl2"),
                ("binary", "cinder-scheduler"),
                ("zone", "nova")
            ]
        ),
        Some(1.0)
    );
    // 600 s old when inserted; no older than cinder's own age of the row, read by
    // the database after the scrape, give or take the poll's duration (the reference
    // time is read during it).
    let age = value("cinder_service_heartbeat_age_seconds", "ctl2").unwrap();
    let cinder_age = db.query_one::<f64>(
        "SELECT TIMESTAMPDIFF(MICROSECOND, updated_at, UTC_TIMESTAMP(6)) / 1e6 FROM services \
         WHERE host = 'ctl2'",
    );
    let poll_duration = scrape.poll_duration();
    assert!(
        (599.0..=cinder_age + poll_duration).contains(&age),
        "age {age}, cinder's {cinder_age} after the scrape"
    );
}

fn has_services(scrape: &Scrape) -> bool {
    scrape.value("cinder_up", &[]) == Some(1.0)
        && scrape
            .value("cinder_service_up", &[("host", "ctl1@lvm")])
            .is_some()
}

/// The exporter with `url` quoted in its YAML config, polling every 200 ms.
fn exporter_for(url: &str) -> Exporter {
    Exporter::start(options_for(url))
}

fn options_for(url: &str) -> ExporterOptions {
    ExporterOptions {
        config: Some(format!(
            "database:\n  url: '{url}'\npoll_interval: 200ms\nquery_timeout: 2s\n"
        )),
        env: Vec::new(),
        args: Vec::new(),
    }
}

/// Waits for the exporter to read the fleet; checks it and that nothing leaked.
fn expect_success(exporter: &Exporter, db: &Database, what: &str) {
    let scrape = exporter.wait_for(what, WAIT, has_services);
    assert_fleet(&scrape, db);
    assert_no_secret(exporter, &scrape);
}

/// Waits for a failed poll, checks the exporter never read the table, and that the log
/// says `needle` (case-insensitive); returns the log.
fn expect_failure(exporter: &Exporter, what: &str, needle: &str) -> String {
    let scrape = exporter.wait_for(what, WAIT, |s| {
        s.value("cinder_exporter_poll_errors_total", &[])
            .is_some_and(|e| e >= 1.0)
    });
    assert_eq!(scrape.value("cinder_up", &[]), Some(0.0), "{what}");
    assert!(
        scrape
            .value("cinder_service_up", &[("host", "ctl1@lvm")])
            .is_none(),
        "{what}: services read\n{}",
        scrape.text
    );
    let log = exporter.wait_for_log(needle);
    assert_no_secret(exporter, &scrape);
    // Shown with --nocapture: what an operator would read.
    eprintln!("{what}:\n  {}", failure_line(&log));
    log
}

fn assert_no_secret(exporter: &Exporter, scrape: &Scrape) {
    let log = exporter.log();
    assert!(!log.contains(PASSWORD), "password in the log:\n{log}");
    assert!(
        !scrape.text.contains(PASSWORD),
        "password in /metrics:\n{}",
        scrape.text
    );
}

/// The one log line that reports the first failed poll.
fn failure_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("poll failed"))
        .unwrap_or_else(|| panic!("no failed poll in the log:\n{log}"))
}

// ---------------------------------------------------------------------------------------
// Least privilege
// ---------------------------------------------------------------------------------------

fn least_privilege_is_enough(schema: Schema) {
    let server = admin_url();
    let db = fleet(&server, schema);
    let user = User::create(&server, "cinder_exporter", PASSWORD, "");
    user.grant_select_on_services(&db);
    // Exactly the README's grant, and nothing else.
    let grants = user.grants();
    assert_eq!(
        grants,
        vec![
            format!("GRANT USAGE ON *.* TO `{}`@`%`", user.name),
            format!(
                "GRANT SELECT ON `{}`.`services` TO `{}`@`%`",
                db.name(),
                user.name
            ),
        ],
        "{schema:?}"
    );
    let exporter = exporter_for(&user.url("127.0.0.1", &db, ""));
    expect_success(
        &exporter,
        &db,
        &format!("{schema:?} read with SELECT on services"),
    );
    // Schema detection went through information_schema with that grant alone.
    let detected = exporter.wait_for_log("services table columns detected");
    match schema {
        Schema::Oldest => assert!(detected.contains(",uuid,"), "{detected}"),
        Schema::Cinder29 => assert!(detected.contains("absent=\"\""), "{detected}"),
    }
}

#[test]
fn select_on_services_is_all_it_needs() {
    least_privilege_is_enough(Schema::Cinder29);
}

#[test]
fn select_on_services_is_all_it_needs_with_the_oldest_schema() {
    least_privilege_is_enough(Schema::Oldest);
}

#[test]
fn missing_grants_are_named_in_the_log() {
    let server = admin_url();
    let db = fleet(&server, Schema::Cinder29);

    // No grant at all: the server refuses the database.
    let nothing = User::create(&server, "cinder_exporter", PASSWORD, "");
    assert_eq!(
        nothing.grants(),
        vec![format!("GRANT USAGE ON *.* TO `{}`@`%`", nothing.name)]
    );
    let exporter = exporter_for(&nothing.url("127.0.0.1", &db, ""));
    let log = expect_failure(&exporter, "access denied", "access denied");
    let line = failure_line(&log);
    let grant = format!("GRANT SELECT ON `{}`.`services`", db.name());
    // The account as the server matched it, not the client's host.
    assert!(
        line.contains(&format!("{grant} TO '{}'@'%'", nothing.name)),
        "{line}"
    );
    assert!(line.contains("cannot connect to 127.0.0.1:"), "{line}");
    drop(exporter);

    // A grant on another table of the database: connected, but `services` is invisible.
    db.exec("CREATE TABLE volumes (id INT)");
    let elsewhere = User::create(&server, "cinder_exporter", PASSWORD, "");
    admin_rows(
        &server,
        &format!(
            "GRANT SELECT ON `{}`.`volumes` TO '{}'@'%'",
            db.name(),
            elsewhere.name
        ),
    );
    let exporter = exporter_for(&elsewhere.url("127.0.0.1", &db, ""));
    let log = expect_failure(&exporter, "no visible services table", "services");
    let line = failure_line(&log);
    assert!(line.contains(&grant), "{line}");
    assert!(line.contains(&elsewhere.name), "{line}");

    // SELECT on some columns only: information_schema shows only those.
    let columns = User::create(&server, "cinder_exporter", PASSWORD, "");
    admin_rows(
        &server,
        &format!(
            "GRANT SELECT (`id`, `host`) ON `{}`.`services` TO '{}'@'%'",
            db.name(),
            columns.name
        ),
    );
    let exporter = exporter_for(&columns.url("127.0.0.1", &db, ""));
    let log = expect_failure(&exporter, "SELECT on two columns", "some columns only");
    let line = failure_line(&log);
    assert!(line.contains("created_at"), "{log}");
    assert!(
        line.contains(&format!("{grant} TO '{}'@'%'", columns.name)),
        "{line}"
    );

    // SELECT on every column the exporter needs but not the whole table: the schema
    // is found, the poll query (`s.*`) is refused. The server's error names the
    // client's host; the hint names the account and the database.
    let needed = User::create(&server, "cinder_exporter", PASSWORD, "");
    let listed: Vec<String> = [
        "created_at",
        "updated_at",
        "deleted_at",
        "deleted",
        "id",
        "host",
        "binary",
        "topic",
        "report_count",
        "disabled",
        "availability_zone",
        "disabled_reason",
    ]
    .iter()
    .map(|c| format!("`{c}`"))
    .collect();
    admin_rows(
        &server,
        &format!(
            "GRANT SELECT ({}) ON `{}`.`services` TO '{}'@'%'",
            listed.join(", "),
            db.name(),
            needed.name
        ),
    );
    let exporter = exporter_for(&needed.url("127.0.0.1", &db, ""));
    let log = expect_failure(&exporter, "SELECT on the needed columns", "refused");
    let line = failure_line(&log);
    assert!(
        line.contains(&format!("{grant} TO '{}'@'%'", needed.name)),
        "{line}"
    );
    assert!(!line.contains("<database>"), "{line}");

    // A wrong password: access denied, and neither password is shown.
    let exporter = exporter_for(
        &nothing
            .url("127.0.0.1", &db, "")
            .replace(PASSWORD, &format!("{PASSWORD}-wrong")),
    );
    let log = expect_failure(&exporter, "wrong password", "access denied");
    assert!(failure_line(&log).contains("password"), "{log}");
}

/// A port where nothing listens: the error names the address and the likely cause,
/// once, without the driver's repeated wrappers.
#[test]
fn a_wrong_port_names_the_address_and_the_cause() {
    let server = admin_url();
    let db = fleet(&server, Schema::Cinder29);
    let user = User::create(&server, "cinder_exporter", PASSWORD, "");
    user.grant_select_on_services(&db);
    let right = user.url("127.0.0.1", &db, "");
    let port = free_port();
    let wrong = right.replace(
        &format!("@127.0.0.1:{}/", common::database::port(&server)),
        &format!("@127.0.0.1:{port}/"),
    );
    assert_ne!(wrong, right);
    let exporter = exporter_for(&wrong);
    let log = expect_failure(&exporter, "a wrong port", "connection refused");
    let line = failure_line(&log);
    assert!(
        line.contains(&format!(
            "cannot connect to 127.0.0.1:{port}: connection refused; nothing listens"
        )),
        "{line}"
    );
    assert_eq!(line.matches("onnection refused").count(), 1, "{line}");
    assert!(!line.contains("Input/output"), "{line}");
}

// ---------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------

/// The TLS version of every session `user` has open, as the server sees them (empty
/// for an unencrypted session).
fn session_tls_versions(server_url: &str, user: &User) -> Vec<String> {
    admin_rows(
        server_url,
        &format!(
            "SELECT s.VARIABLE_VALUE FROM performance_schema.threads AS t \
             JOIN performance_schema.status_by_thread AS s USING (THREAD_ID) \
             WHERE t.PROCESSLIST_USER = '{}' AND s.VARIABLE_NAME = 'Ssl_version'",
            user.name
        ),
    )
}

/// Client-side files: PEM files in a directory of the test's own.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }
}

fn q(path: &Path) -> String {
    path.display().to_string()
}

/// `REQUIRE SSL` on a server whose certificate names only `localhost`: the pinned CA
/// is enforced, the host name is checked unless VERIFY_CA says otherwise, and the
/// user (whom the server refuses without TLS) reads the table only over TLS.
#[test]
fn tls_with_a_pinned_ca_verifies_the_server() {
    let ca = Authority::new("cinder test CA");
    let other = Authority::new("some other CA");
    let server = PrivateServer::start_with_tls(&ca, &["localhost"]);
    let db = fleet(server.url(), Schema::Cinder29);
    let user = User::create(server.url(), "cinder_exporter_tls", PASSWORD, "SSL");
    user.grant_select_on_services(&db);
    let files = Files::new();
    let ca_file = q(&files.write("ca.pem", &ca.pem));
    let other_ca_file = q(&files.write("other-ca.pem", &other.pem));

    // All at once: each exporter polls on its own.
    let pinned = exporter_for(&user.url("localhost", &db, &format!("ssl_ca={ca_file}")));
    let verify_identity_named = exporter_for(&user.url(
        "localhost",
        &db,
        &format!("ssl_ca={ca_file}&ssl_mode=VERIFY_IDENTITY"),
    ));
    let plain = exporter_for(&user.url("127.0.0.1", &db, ""));
    let wrong_ca = exporter_for(&user.url("localhost", &db, &format!("ssl_ca={other_ca_file}")));
    let ip_not_in_cert = exporter_for(&user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_mode=VERIFY_IDENTITY"),
    ));
    let verify_ca = exporter_for(&user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_mode=VERIFY_CA"),
    ));
    let no_hostname_check = exporter_for(&user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_check_hostname=false"),
    ));
    let verify_ca_wrong_ca = exporter_for(&user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={other_ca_file}&ssl_mode=VERIFY_CA"),
    ));
    let required = exporter_for(&user.url("127.0.0.1", &db, "ssl_mode=REQUIRED"));
    let web_roots = exporter_for(&user.url("localhost", &db, "ssl=true"));
    // Accounts the server would also let in without TLS: the session is encrypted
    // because the exporter asked for it, and only then.
    let open_tls_user = User::create(server.url(), "cinder_exporter_open", PASSWORD, "");
    open_tls_user.grant_select_on_services(&db);
    let open_plain_user = User::create(server.url(), "cinder_exporter_open", PASSWORD, "");
    open_plain_user.grant_select_on_services(&db);
    let open_tls = exporter_for(&open_tls_user.url("localhost", &db, &format!("ssl_ca={ca_file}")));
    let open_plain = exporter_for(&open_plain_user.url("127.0.0.1", &db, ""));

    expect_success(&pinned, &db, "TLS with ssl_ca");
    expect_success(
        &verify_identity_named,
        &db,
        "VERIFY_IDENTITY, name in the certificate",
    );
    expect_success(
        &verify_ca,
        &db,
        "VERIFY_CA by IP, certificate only for localhost",
    );
    expect_success(&no_hostname_check, &db, "ssl_check_hostname=false");
    expect_success(&required, &db, "ssl_mode=REQUIRED (encrypted, unverified)");
    expect_success(
        &open_tls,
        &db,
        "TLS for an account that does not require it",
    );
    expect_success(&open_plain, &db, "no TLS asked for");
    // The pool keeps the polling connection open between polls (60 s when idle).
    let versions = session_tls_versions(server.url(), &open_tls_user);
    assert!(
        !versions.is_empty() && versions.iter().all(|v| v.starts_with("TLSv1.")),
        "{versions:?}"
    );
    let versions = session_tls_versions(server.url(), &open_plain_user);
    assert!(
        !versions.is_empty() && versions.iter().all(String::is_empty),
        "{versions:?}"
    );
    let versions = session_tls_versions(server.url(), &user);
    assert!(
        !versions.is_empty() && versions.iter().all(|v| v.starts_with("TLSv1.")),
        "{versions:?}"
    );

    // The server refuses this user without TLS.
    let log = expect_failure(&plain, "no TLS against REQUIRE SSL", "access denied");
    assert!(failure_line(&log).contains(&user.name), "{log}");
    // Not our CA: the handshake fails on the certificate.
    // Not our CA: the handshake fails on the certificate, and the log says what to do.
    for (exporter, what) in [
        (&wrong_ca, "another CA"),
        // VERIFY_CA skips the name, never the chain.
        (&verify_ca_wrong_ca, "VERIFY_CA, another CA"),
        // ssl=true trusts the built-in web roots only, not a private CA.
        (&web_roots, "ssl=true, private CA"),
    ] {
        let log = expect_failure(exporter, what, "certificate");
        let line = failure_line(&log);
        assert!(
            line.contains("UnknownIssuer") && line.contains("ssl_ca=FILE"),
            "{what}: {line}"
        );
    }
    // Our CA, but the certificate does not name 127.0.0.1.
    let log = expect_failure(
        &ip_not_in_cert,
        "VERIFY_IDENTITY, IP not in SAN",
        "certificate",
    );
    // The line is logfmt: quotes inside the error's value are escaped.
    let line = failure_line(&log).replace("\\\"", "\"");
    assert!(
        line.contains("not valid for name \"127.0.0.1\"") && line.contains("ssl_mode=VERIFY_CA"),
        "{line}"
    );
}

/// A URL that asks for TLS never gets an unencrypted connection from a server that
/// does not offer TLS.
#[test]
fn tls_is_never_dropped_when_the_server_lacks_it() {
    let server = common::PrivateServer::start();
    if admin_rows(server.url(), "SELECT @@have_ssl") == vec!["YES".to_string()] {
        // MariaDB 11.4 and later make themselves a certificate when given none.
        eprintln!("this MariaDB offers TLS without being asked: nothing to check");
        return;
    }
    let db = fleet(server.url(), Schema::Cinder29);
    let user = User::create(server.url(), "cinder_exporter", PASSWORD, "");
    user.grant_select_on_services(&db);
    let required = exporter_for(&user.url("127.0.0.1", &db, "ssl_mode=REQUIRED"));
    let log = expect_failure(&required, "REQUIRED, server without TLS", "does not offer");
    assert!(failure_line(&log).contains("never falls back"), "{log}");
}

/// Client certificates against `REQUIRE X509`, on a server whose certificate also names
/// `127.0.0.1` as an IP address (host name verification of an IP SAN).
#[test]
fn tls_client_certificates_and_ip_addresses() {
    let ca = Authority::new("cinder test CA");
    let other = Authority::new("some other CA");
    let server = PrivateServer::start_with_tls(&ca, &["localhost", "127.0.0.1"]);
    let db = fleet(server.url(), Schema::Cinder29);
    let tls_user = User::create(server.url(), "cinder_exporter_tls", PASSWORD, "SSL");
    tls_user.grant_select_on_services(&db);
    let x509_user = User::create(server.url(), "cinder_exporter_x509", PASSWORD, "X509");
    x509_user.grant_select_on_services(&db);
    let files = Files::new();
    let ca_file = q(&files.write("ca.pem", &ca.pem));
    let (cert, key) = ca.issue("cinder_exporter", &[], false);
    let cert_file = q(&files.write("client-cert.pem", &cert));
    let key_file = q(&files.write("client-key.pem", &key));
    let (cert, key) = other.issue("cinder_exporter", &[], false);
    let other_cert_file = q(&files.write("other-client-cert.pem", &cert));
    let other_key_file = q(&files.write("other-client-key.pem", &key));

    let by_ip = exporter_for(&tls_user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_mode=VERIFY_IDENTITY"),
    ));
    let with_cert = exporter_for(&x509_user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_cert={cert_file}&ssl_key={key_file}"),
    ));
    let without_cert = exporter_for(&x509_user.url("127.0.0.1", &db, &format!("ssl_ca={ca_file}")));
    let foreign_cert = exporter_for(&x509_user.url(
        "127.0.0.1",
        &db,
        &format!("ssl_ca={ca_file}&ssl_cert={other_cert_file}&ssl_key={other_key_file}"),
    ));

    expect_success(&by_ip, &db, "VERIFY_IDENTITY against an IP SAN");
    expect_success(&with_cert, &db, "client certificate against REQUIRE X509");
    let log = expect_failure(
        &without_cert,
        "REQUIRE X509 without a certificate",
        "access denied",
    );
    assert!(failure_line(&log).contains(&x509_user.name), "{log}");
    // The server rejects a client certificate from another CA during the handshake.
    let log = expect_failure(
        &foreign_cert,
        "client certificate of another CA",
        "UnknownCA",
    );
    assert!(
        failure_line(&log).contains("refused the client certificate"),
        "{log}"
    );
    // The sessions that got in are encrypted, as the server sees them.
    for user in [&tls_user, &x509_user] {
        let versions = session_tls_versions(server.url(), user);
        assert!(
            !versions.is_empty() && versions.iter().all(|v| v.starts_with("TLSv1.")),
            "{versions:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------

fn assert_not_in_cmdline(exporter: &Exporter) {
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", exporter.pid())).expect("cmdline");
    let cmdline = String::from_utf8_lossy(&cmdline);
    assert!(!cmdline.contains(PASSWORD), "{cmdline}");
}

#[test]
fn the_password_comes_from_a_file_or_the_environment_and_is_never_shown() {
    let server = admin_url();
    let db = fleet(&server, Schema::Cinder29);
    let user = User::create(&server, "cinder_exporter", PASSWORD, "");
    user.grant_select_on_services(&db);
    let url = user.url("127.0.0.1", &db, "");

    // database.url_file
    let files = Files::new();
    let url_file = files.write("database-url", &format!("{url}\n"));
    let from_file = Exporter::start(ExporterOptions {
        config: Some(format!(
            "database:\n  url_file: {}\npoll_interval: 200ms\n",
            url_file.display()
        )),
        env: Vec::new(),
        args: Vec::new(),
    });
    // CINDER_EXPORTER_DATABASE_URL
    let from_env = Exporter::start(ExporterOptions {
        config: Some("poll_interval: 200ms\n".into()),
        env: vec![("CINDER_EXPORTER_DATABASE_URL".into(), url.clone())],
        args: Vec::new(),
    });
    for (exporter, source) in [
        (&from_file, "database.url_file"),
        (&from_env, "CINDER_EXPORTER_DATABASE_URL"),
    ] {
        expect_success(exporter, &db, source);
        assert_not_in_cmdline(exporter);
        let log = exporter.log();
        assert!(log.contains(source), "{log}");
        // The start-up line shows the URL redacted.
        assert!(
            log.contains(&format!("{}:***@127.0.0.1", user.name)),
            "{log}"
        );
    }

    // Unreachable: nothing listens on that port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable = exporter_for(&format!(
        "mysql://{}:{PASSWORD}@127.0.0.1:{closed}/{}",
        user.name,
        db.name()
    ));
    expect_failure(&unreachable, "unreachable database", "poll failed");
    assert_not_in_cmdline(&unreachable);
}

#[test]
fn start_up_errors_never_show_the_password() {
    let files = Files::new();
    let ca = Authority::new("cinder test CA");
    let ca_file = q(&files.write("ca.pem", &ca.pem));
    let cases: Vec<(String, &str)> = vec![
        (format!("postgresql://u:{PASSWORD}@db/cinder"), "scheme"),
        (
            format!("mysql://u:{PASSWORD}@db/"),
            "must name the cinder database",
        ),
        (
            format!("mysql://u:{PASSWORD}@db:99999/cinder"),
            "not a valid URL",
        ),
        (format!("mysql://u:{PASSWORD}%zz@db/cinder"), "%-escapes"),
        (
            format!("mysql://u:{PASSWORD}@db/cinder?ssl_mode=SOMETIMES"),
            "ssl_mode",
        ),
        (
            format!("mysql://u:{PASSWORD}@db/cinder?ssl_ca={ca_file}&ssl_cert={ca_file}"),
            "ssl_key",
        ),
        (
            format!("mysql://u:{PASSWORD}@db/cinder?ssl_ca=/nonexistent/ca.pem"),
            "/nonexistent/ca.pem",
        ),
    ];
    for (url, message) in &cases {
        // In the config file, in the environment and in cinder.conf.
        let config = files.write("config.yml", &format!("database:\n  url: '{url}'\n"));
        let (code, stderr) = run_exporter_to_exit(&["--config.file", &q(&config)], &[]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(message), "{message}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");

        let (code, stderr) =
            run_exporter_to_exit(&[], &[("CINDER_EXPORTER_DATABASE_URL", url.as_str())]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains("CINDER_EXPORTER_DATABASE_URL"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");

        if *message == "%-escapes" {
            // SQLAlchemy, hence cinder and the exporter, keeps a `%` that starts no
            // escape as it is: in cinder.conf this URL is valid.
            continue;
        }
        let cinder_conf = files.write("cinder.conf", &format!("[database]\nconnection = {url}\n"));
        let config = files.write(
            "config.yml",
            &format!("cinder_conf: {}\n", cinder_conf.display()),
        );
        let (code, stderr) = run_exporter_to_exit(&["--config.file", &q(&config)], &[]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains("cinder.conf:2"), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
}

// ---------------------------------------------------------------------------------------
// Passwords with punctuation, as cinder.conf and as our URL
// ---------------------------------------------------------------------------------------

/// Every ASCII punctuation character, and the four cinder's own parser (SQLAlchemy)
/// takes raw where RFC 3986 would end the password: `#`, `/`, `?`, `%`.
const PUNCTUATED_PASSWORDS: [&str; 2] = ["Pw!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~end", "pa#ss/w?rd%"];

/// `[database] connection` as an operator writes it for cinder: the password raw but
/// for `@` (SQLAlchemy's one delimiter, `%40`) and `$` (oslo.config's, `$$`).
fn cinder_conf_connection(user: &User, password: &str, db: &Database) -> String {
    let password = password.replace('@', "%40").replace('$', "$$");
    format!(
        "[database]\nconnection = mysql+pymysql://{}:{password}@127.0.0.1:{}/{}?charset=utf8\n",
        user.name,
        common::database::port(&admin_url()),
        db.name()
    )
}

#[test]
fn passwords_with_any_punctuation_log_in_from_cinder_conf_and_from_the_url() {
    let server = admin_url();
    let db = fleet(&server, Schema::Cinder29);
    let files = Files::new();
    for (index, password) in PUNCTUATED_PASSWORDS.iter().enumerate() {
        let user = User::create(&server, "cinder_exporter_punct", password, "");
        user.grant_select_on_services(&db);
        let conf = files.write(
            &format!("cinder-{index}.conf"),
            &cinder_conf_connection(&user, password, &db),
        );
        let from_cinder_conf = Exporter::start(ExporterOptions {
            config: Some(format!(
                "cinder_conf: '{}'\npoll_interval: 200ms\n",
                conf.display()
            )),
            env: Vec::new(),
            args: Vec::new(),
        });
        let url = format!(
            "mysql://{}:{}@127.0.0.1:{}/{}",
            user.name,
            percent_encode(password),
            common::database::port(&server),
            db.name()
        );
        let from_yaml = exporter_for(&url);
        for (exporter, source) in [
            (&from_cinder_conf, "cinder.conf"),
            (&from_yaml, "database.url"),
        ] {
            let what = format!("{password:?} from {source}");
            let scrape = exporter.wait_for(&what, WAIT, has_services);
            assert_fleet(&scrape, &db);
            let log = exporter.log();
            assert!(
                !log.contains(password),
                "{what}: password in the log:\n{log}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bad TLS settings are configuration errors
// ---------------------------------------------------------------------------------------

#[test]
fn unusable_tls_files_are_configuration_errors() {
    let files = Files::new();
    let ca = Authority::new("cinder test CA");
    let (cert, key) = ca.issue("cinder_exporter", &[], false);
    let ca_file = q(&files.write("ca.pem", &ca.pem));
    let cert_file = q(&files.write("client-cert.pem", &cert));
    let key_file = q(&files.write("client-key.pem", &key));
    let not_pem = q(&files.write("not-pem.txt", "hello\n"));
    let empty = q(&files.write("empty.pem", ""));
    let directory = q(files.0.path());
    let url = |query: String| format!("mysql://u:{PASSWORD}@db/cinder?{query}");
    let cases = [
        (
            url("ssl_ca=/nonexistent/ca.pem".into()),
            "ssl_ca",
            "/nonexistent/ca.pem",
        ),
        (url(format!("ssl_ca={not_pem}")), "ssl_ca", &not_pem),
        (url(format!("ssl_ca={empty}")), "ssl_ca", &empty),
        (url(format!("ssl_ca={directory}")), "ssl_ca", &directory),
        // A key where the CA should be.
        (url(format!("ssl_ca={key_file}")), "ssl_ca", &key_file),
        (
            url(format!(
                "ssl_ca={ca_file}&ssl_cert=/nonexistent/c.pem&ssl_key={key_file}"
            )),
            "ssl_cert",
            "/nonexistent/c.pem",
        ),
        (
            url(format!("ssl_cert={cert_file}&ssl_key={not_pem}")),
            "ssl_key",
            &not_pem,
        ),
        // Cert and key swapped.
        (
            url(format!("ssl_cert={key_file}&ssl_key={cert_file}")),
            "ssl_cert",
            &key_file,
        ),
    ];
    for (url, parameter, file) in &cases {
        let config = files.write(
            "config.yml",
            &format!("poll_interval: 1s\ndatabase:\n  url: '{url}'\n"),
        );
        let (code, stderr) = run_exporter_to_exit(&["--config.file", &q(&config)], &[]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&format!("{}:3:", config.display())),
            "located at the url key: {stderr}"
        );
        assert!(
            stderr.contains(parameter) && stderr.contains(*file),
            "{parameter} {file}: {stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{stderr}");
    }
    // Good files pass the check: the exporter starts (nothing listens on port 1).
    let exporter = exporter_for(&format!(
        "mysql://u:{PASSWORD}@127.0.0.1:1/cinder?ssl_ca={ca_file}&ssl_cert={cert_file}&ssl_key={key_file}"
    ));
    let scrape = exporter.scrape();
    assert_no_secret(&exporter, &scrape);
}
