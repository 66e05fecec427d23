//! The operator's database URL, as written in cinder.conf or in our own config, turned
//! into connection options for mysql_async.
//!
//! cinder.conf uses SQLAlchemy URLs (`mysql+pymysql://cinder:secret@ctl/cinder?charset=utf8`)
//! with PyMySQL's query parameters; we accept those as well as plain `mysql://` so that
//! pointing the exporter at cinder.conf is enough. The password never leaves this
//! module except inside the connection options: [`DatabaseUrl::redacted`] is what logs
//! and errors show.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use mysql_async::{ClientIdentity, OptsBuilder, PoolConstraints, PoolOpts, SslOpts};

/// How to reach the cinder database, parsed and validated.
#[derive(Clone, PartialEq)]
pub struct DatabaseUrl {
    host: String,
    port: u16,
    user: Option<String>,
    password: Option<String>,
    database: String,
    socket: Option<String>,
    tls: Option<Tls>,
    /// Query parameters we understood but do not need (e.g. `charset`: we always speak
    /// utf8mb4), or did not recognise; reported once at start-up, by name only.
    pub ignored_parameters: Vec<String>,
}

/// TLS to the database, from the URL's `ssl*` parameters.
#[derive(Clone, Debug, PartialEq)]
struct Tls {
    /// Trust only this CA (pinning) instead of the built-in web roots.
    ca_file: Option<PathBuf>,
    client_cert: Option<(PathBuf, PathBuf)>,
    verify_cert: bool,
    verify_hostname: bool,
}

// Debug would print the password: show the redacted form instead.
impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// Parses a URL as RFC 3986 writes it, the way our YAML `database.url`,
    /// `database.url_file` and the environment give it: any of `@ : / ? # % [ ]` and
    /// space in the user or password percent-encoded (`%23` for `#`). `mysql://`,
    /// `mysql+pymysql://`, `mysql+mysqldb://` and `mariadb://` are taken alike.
    /// Error messages never quote the URL itself, since it may hold a password.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        let parts = rfc3986_parts(text).map_err(|e| {
            if super::sqlalchemy_url::parse(text.trim()).is_ok_and(|p| p.password.is_some()) {
                format!(
                    "{e}; a password holding `#`, `/`, `?`, `%` or `@` must be \
                     percent-encoded here (`%23`, `%2F`, `%3F`, `%25`, `%40`), unlike in \
                     cinder.conf"
                )
            } else {
                e
            }
        })?;
        DatabaseUrl::from_parts(parts)
    }

    /// Parses cinder.conf's `[database] connection` exactly as SQLAlchemy, hence
    /// cinder, reads it (see `sqlalchemy_url`): a raw `#`, `/`, `?` or `%` in the
    /// password is part of it.
    pub fn parse_sqlalchemy(text: &str) -> Result<DatabaseUrl, String> {
        DatabaseUrl::from_parts(super::sqlalchemy_url::parse(text)?)
    }

    /// The checks and defaults both syntaxes share.
    fn from_parts(parts: UrlParts) -> Result<DatabaseUrl, String> {
        check_scheme(&parts.scheme)?;
        let database = match parts.database {
            Some(database) if !database.is_empty() && !database.contains('/') => database,
            _ => {
                return Err("database URL must name the cinder database as its path, \
                     e.g. mysql://cinder@ctl/cinder"
                    .into())
            }
        };
        let QueryParameters {
            socket,
            tls,
            ignored,
        } = QueryParameters::read(&parts.query)?;
        let tls = tls.finish()?;
        Ok(DatabaseUrl {
            host: parts.host.unwrap_or_else(|| "localhost".to_string()),
            port: parts.port.unwrap_or(3306),
            user: parts.user.filter(|u| !u.is_empty()),
            password: parts.password,
            database,
            socket,
            tls,
            ignored_parameters: ignored,
        })
    }

    /// The URL with the password replaced by `***`: safe for logs and errors.
    pub fn redacted(&self) -> String {
        let user = match (&self.user, &self.password) {
            (Some(u), Some(_)) => format!("{u}:***@"),
            (Some(u), None) => format!("{u}@"),
            (None, Some(_)) => ":***@".to_string(),
            (None, None) => String::new(),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut out = format!("mysql://{user}{host}:{}/{}", self.port, self.database);
        if let Some(socket) = &self.socket {
            out.push_str(&format!("?unix_socket={socket}"));
        }
        if let Some(tls) = &self.tls {
            // File names are not secret, and they say which CA is trusted.
            out.push_str(if self.socket.is_some() { "&" } else { "?" });
            out.push_str("ssl_mode=");
            out.push_str(tls.mode());
            if let Some(ca) = &tls.ca_file {
                out.push_str(&format!("&ssl_ca={}", ca.display()));
            }
            if let Some((cert, key)) = &tls.client_cert {
                out.push_str(&format!(
                    "&ssl_cert={}&ssl_key={}",
                    cert.display(),
                    key.display()
                ));
            }
        }
        out
    }

    /// Where the server is, as connection errors name it: `host:port`, or the socket.
    pub fn address(&self) -> String {
        match &self.socket {
            Some(socket) => format!("unix socket {socket}"),
            None if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }

    /// The database name (needed to find the `services` table's columns).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Connection options: a small pool (the poller runs one query at a time; a second
    /// connection covers one still being cleaned up after a timed-out query), and a
    /// session lock wait bounded by the query timeout so that a `LOCK TABLES` held by
    /// someone else releases our connection on the server side too.
    pub fn connection_options(&self, query_timeout: Duration) -> OptsBuilder {
        let lock_wait = query_timeout.as_secs_f64().ceil().max(1.0) as u64;
        let pool = PoolOpts::default()
            .with_constraints(PoolConstraints::new(0, 2).expect("0 <= 2"))
            .with_inactive_connection_ttl(Duration::from_secs(60));
        let mut opts = OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(self.user.clone())
            .pass(self.password.clone())
            .db_name(Some(self.database.clone()))
            .socket(self.socket.clone())
            .prefer_socket(false)
            .pool_opts(pool)
            .init(vec![format!("SET SESSION lock_wait_timeout = {lock_wait}")]);
        if let Some(tls) = &self.tls {
            let mut ssl = SslOpts::default()
                .with_danger_accept_invalid_certs(!tls.verify_cert)
                .with_danger_skip_domain_validation(!tls.verify_hostname);
            if tls.verify_cert && !tls.verify_hostname {
                ssl = ssl.with_danger_tls_hostname_override(Some(NAME_CHECK_SKIPPED));
            }
            if let Some(ca) = &tls.ca_file {
                ssl = ssl
                    .with_root_certs(vec![ca.clone().into()])
                    .with_disable_built_in_roots(true);
            }
            if let Some((cert, key)) = &tls.client_cert {
                ssl = ssl.with_client_identity(Some(ClientIdentity::new(
                    cert.clone().into(),
                    key.clone().into(),
                )));
            }
            opts = opts.ssl_opts(Some(ssl));
        }
        opts
    }
}

/// A URL split into its parts, decoded; what either syntax yields.
#[derive(Debug, Default, PartialEq)]
pub(super) struct UrlParts {
    pub scheme: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Without IPv6 brackets; `None` for none (localhost).
    pub host: Option<String>,
    pub port: Option<u16>,
    pub database: Option<String>,
    /// Decoded `name=value` pairs, in order.
    pub query: Vec<(String, String)>,
}

/// Splits an RFC 3986 URL, percent-decoding strictly: a `%` must start a `%XX` escape
/// and the result must be UTF-8.
fn rfc3986_parts(text: &str) -> Result<UrlParts, String> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("database URL is not a valid URL ({e})"))?;
    let decode =
        |s: &str| percent_decode(s).ok_or_else(|| "database URL has invalid %-escapes".to_string());
    let host = url
        .host_str()
        .map(|h| h.trim_matches(['[', ']']).to_string());
    Ok(UrlParts {
        scheme: url.scheme().to_string(),
        user: Some(decode(url.username())?),
        password: url.password().map(decode).transpose()?,
        host: host.filter(|h| !h.is_empty()),
        port: url.port(),
        database: Some(decode(url.path().trim_start_matches('/'))?),
        query: url
            .query_pairs()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect(),
    })
}

/// Checks that the scheme names MySQL or MariaDB under one of the spellings
/// SQLAlchemy accepts, so that cinder.conf's own URL is enough.
fn check_scheme(scheme: &str) -> Result<(), String> {
    match scheme {
        "mysql"
        | "mysql+pymysql"
        | "mysql+mysqldb"
        | "mysql+mysqlconnector"
        | "mariadb"
        | "mariadb+pymysql" => Ok(()),
        other => Err(format!(
            "database URL scheme {other:?} is not supported: cinder_exporter reads \
             MySQL/MariaDB (mysql:// or mysql+pymysql://)"
        )),
    }
}

/// The URL's query parameters, read in order (a later one wins); what TLS they ask
/// for is only known once all are read.
struct QueryParameters {
    socket: Option<String>,
    tls: TlsParameters,
    /// Names of the parameters we do not use, in order.
    ignored: Vec<String>,
}

impl QueryParameters {
    /// Sorts every parameter into the socket, TLS or the ignored list; refuses only
    /// values of parameters we use that are not valid.
    fn read(pairs: &[(String, String)]) -> Result<QueryParameters, String> {
        let mut parameters = QueryParameters {
            socket: None,
            tls: TlsParameters::default(),
            ignored: Vec::new(),
        };
        for (name, value) in pairs {
            match name.as_str() {
                "unix_socket" | "socket" => parameters.socket = Some(value.clone()),
                _ if parameters.tls.read(name, value)? => {}
                _ => parameters.ignored.push(name.clone()),
            }
        }
        Ok(parameters)
    }
}

/// The `ssl*` parameters as PyMySQL and the mysql client take them: any of them that
/// names a file or demands verification turns TLS on; `ssl_mode` sets both checks.
struct TlsParameters {
    wanted: bool,
    tls: Tls,
    /// Kept apart until the end: the pair is only valid with both halves.
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

impl Default for TlsParameters {
    fn default() -> TlsParameters {
        TlsParameters {
            wanted: false,
            tls: Tls {
                ca_file: None,
                client_cert: None,
                verify_cert: true,
                verify_hostname: true,
            },
            cert: None,
            key: None,
        }
    }
}

impl TlsParameters {
    /// Takes parameter `name` if it is one of ours: `Ok(false)` means it is not.
    fn read(&mut self, name: &str, value: &str) -> Result<bool, String> {
        let flag = || parse_flag(name, value);
        match name {
            "ssl" | "require_ssl" => self.wanted |= flag()?,
            "ssl_ca" => {
                self.wanted = true;
                self.tls.ca_file = Some(PathBuf::from(value));
            }
            "ssl_cert" => self.cert = Some(PathBuf::from(value)),
            "ssl_key" => self.key = Some(PathBuf::from(value)),
            "ssl_verify_cert" => self.tls.verify_cert = flag()?,
            "ssl_check_hostname" | "ssl_verify_identity" => self.tls.verify_hostname = flag()?,
            "ssl_mode" => self.read_mode(value)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `ssl_mode` as the mysql client reads it, case-insensitively.
    fn read_mode(&mut self, value: &str) -> Result<(), String> {
        match value.to_ascii_uppercase().as_str() {
            "DISABLED" | "PREFERRED" => {}
            // As the mysql client: REQUIRED encrypts without verifying.
            "REQUIRED" => {
                self.wanted = true;
                self.tls.verify_cert = false;
                self.tls.verify_hostname = false;
            }
            "VERIFY_CA" => {
                self.wanted = true;
                self.tls.verify_hostname = false;
            }
            "VERIFY_IDENTITY" => self.wanted = true,
            other => {
                return Err(format!(
                    "database URL parameter ssl_mode={other} is not one of \
                     DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                ))
            }
        }
        Ok(())
    }

    /// The TLS settings, if any parameter asked for TLS, with their files checked.
    fn finish(mut self) -> Result<Option<Tls>, String> {
        match (self.cert, self.key) {
            (Some(c), Some(k)) => {
                self.wanted = true;
                self.tls.client_cert = Some((c, k));
            }
            (None, None) => {}
            _ => return Err("database URL gives only one of ssl_cert and ssl_key".into()),
        }
        if !self.wanted {
            return Ok(None);
        }
        // A missing or wrong file would otherwise fail every poll with an I/O error
        // that names no file; at start-up it is a configuration error.
        if let Some(ca) = &self.tls.ca_file {
            check_pem_file("ssl_ca", ca, PemKind::Certificate)?;
        }
        if let Some((cert, key)) = &self.tls.client_cert {
            check_pem_file("ssl_cert", cert, PemKind::Certificate)?;
            check_pem_file("ssl_key", key, PemKind::PrivateKey)?;
        }
        Ok(Some(self.tls))
    }
}

/// The server name checked against the certificate when only the CA is verified
/// (`ssl_mode=VERIFY_CA`, `ssl_check_hostname=false`).
///
/// mysql_async (0.37) skips the name check by looking for `NotValidForName` in the
/// text of rustls' error, but rustls (0.23.46 here) reports a name mismatch as
/// `certificate not valid for name "…"; …`: without help, VERIFY_CA fails whenever the
/// certificate does not name the host we connect to, which is the very case it is for.
/// rustls quotes the expected name in that text, so we make the expected name say it.
/// The chain is still verified against the trusted CA first (rustls checks the name
/// only after the chain, and any other failure stays an error); only the name check,
/// which VERIFY_CA does not want, is skipped. The name goes out as the TLS SNI, which
/// MariaDB and MySQL ignore. `.invalid` (RFC 6761) is never a real host.
const NAME_CHECK_SKIPPED: &str = "NotValidForName.cinder-exporter.invalid";

impl Tls {
    /// The `ssl_mode` these settings amount to.
    fn mode(&self) -> &'static str {
        match (self.verify_cert, self.verify_hostname) {
            (false, _) => "REQUIRED",
            (true, false) => "VERIFY_CA",
            (true, true) => "VERIFY_IDENTITY",
        }
    }
}

#[derive(Clone, Copy)]
enum PemKind {
    Certificate,
    PrivateKey,
}

/// Checks that `path` (the value of URL parameter `parameter`) can be read and holds
/// what mysql_async will look for when it connects: PEM certificates, or one PEM
/// private key (PKCS#8, PKCS#1 or SEC1) without a passphrase.
fn check_pem_file(parameter: &str, path: &std::path::Path, kind: PemKind) -> Result<(), String> {
    let shown = path.display();
    let bytes = super::read_file(path)
        .map_err(|e| format!("database URL parameter {parameter}: cannot read {shown}: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let has = |label: &str| text.contains(&format!("-----BEGIN {label}-----"));
    match kind {
        PemKind::Certificate if has("CERTIFICATE") => Ok(()),
        PemKind::Certificate => Err(format!(
            "database URL parameter {parameter}: {shown} holds no PEM certificate \
             (-----BEGIN CERTIFICATE-----)"
        )),
        PemKind::PrivateKey if has("ENCRYPTED PRIVATE KEY") => Err(format!(
            "database URL parameter {parameter}: the key in {shown} is encrypted; \
             cinder_exporter needs it without a passphrase"
        )),
        PemKind::PrivateKey
            if has("PRIVATE KEY") || has("RSA PRIVATE KEY") || has("EC PRIVATE KEY") =>
        {
            Ok(())
        }
        PemKind::PrivateKey => Err(format!(
            "database URL parameter {parameter}: {shown} holds no PEM private key \
             (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"
        )),
    }
}

fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!(
            "database URL parameter {name}={other} is not a boolean (true/false)"
        )),
    }
}

/// Strict `%`-decoding, for RFC 3986 URLs: `None` for a bad escape or non-UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Python's `urllib.parse.unquote`, as SQLAlchemy decodes: `%XX` escapes decoded, any
/// other `%` kept, bytes that are not UTF-8 replaced by U+FFFD.
pub(super) fn lenient_percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        match hex {
            Some(hex) if bytes[i] == b'%' => {
                let hex = std::str::from_utf8(hex).expect("hex digits are ASCII");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 3;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cinder_conf_style_urls() {
        let url =
            DatabaseUrl::parse("mysql+pymysql://cinder:s3cr%40t@ctl1:3307/cinder?charset=utf8")
                .unwrap();
        assert_eq!(url.host, "ctl1");
        assert_eq!(url.port, 3307);
        assert_eq!(url.user.as_deref(), Some("cinder"));
        assert_eq!(url.password.as_deref(), Some("s3cr@t"));
        assert_eq!(url.database(), "cinder");
        assert_eq!(url.ignored_parameters, vec!["charset".to_string()]);
        assert!(url.tls.is_none());
        assert_eq!(url.redacted(), "mysql://cinder:***@ctl1:3307/cinder");
        assert!(!format!("{url:?}").contains("s3cr"));
    }

    /// A directory with a CA, a client certificate and key, and a file of no use.
    fn tls_files() -> (tempfile::TempDir, [String; 4]) {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        let paths = [
            write("ca.pem", cert),
            write("c.pem", cert),
            write("k.pem", key),
            write("other.txt", "hello"),
        ];
        (dir, paths)
    }

    #[test]
    fn tls_parameters() {
        let (_dir, [ca, cert, key, _]) = tls_files();
        let url = DatabaseUrl::parse(&format!(
            "mysql://u:p@db/cinder?ssl_ca={ca}&ssl_cert={cert}&ssl_key={key}"
        ))
        .unwrap();
        let tls = url.tls.as_ref().unwrap();
        assert_eq!(tls.ca_file.as_deref(), Some(std::path::Path::new(&ca)));
        assert!(tls.verify_cert && tls.verify_hostname && tls.client_cert.is_some());
        assert_eq!(
            url.redacted(),
            format!(
                "mysql://u:***@db:3306/cinder?ssl_mode=VERIFY_IDENTITY&ssl_ca={ca}\
                 &ssl_cert={cert}&ssl_key={key}"
            )
        );
        let url = DatabaseUrl::parse("mysql://db/cinder?ssl_mode=VERIFY_CA").unwrap();
        assert!(!url.tls.as_ref().unwrap().verify_hostname);
        assert_eq!(url.redacted(), "mysql://db:3306/cinder?ssl_mode=VERIFY_CA");
        let url = DatabaseUrl::parse("mysql://db/cinder?ssl=true&ssl_verify_cert=false").unwrap();
        assert_eq!(url.redacted(), "mysql://db:3306/cinder?ssl_mode=REQUIRED");
        assert!(DatabaseUrl::parse(&format!("mysql://db/cinder?ssl_cert={cert}")).is_err());
        assert!(DatabaseUrl::parse("mysql://db/cinder?ssl=maybe").is_err());
    }

    #[test]
    fn verify_ca_checks_the_chain_but_not_the_name() {
        let (_dir, [ca, ..]) = tls_files();
        let ssl = |query: &str| {
            let url = DatabaseUrl::parse(&format!("mysql://db/cinder?{query}")).unwrap();
            let opts = mysql_async::Opts::from(url.connection_options(Duration::from_secs(5)));
            opts.ssl_opts().cloned().unwrap()
        };
        for query in [
            format!("ssl_ca={ca}&ssl_mode=VERIFY_CA"),
            format!("ssl_ca={ca}&ssl_check_hostname=false"),
        ] {
            let ssl = ssl(&query);
            assert!(!ssl.accept_invalid_certs(), "{query}");
            assert!(ssl.skip_domain_validation(), "{query}");
            // The name that makes mysql_async recognise rustls' name mismatch.
            assert!(ssl
                .tls_hostname_override()
                .is_some_and(|name| name.contains("NotValidForName")));
        }
        let ssl = ssl(&format!("ssl_ca={ca}"));
        assert!(!ssl.accept_invalid_certs() && !ssl.skip_domain_validation());
        assert!(ssl.disable_built_in_roots());
        assert_eq!(ssl.tls_hostname_override(), None);
    }

    #[test]
    fn tls_files_are_checked_at_parse_time() {
        let (dir, [ca, cert, key, other]) = tls_files();
        let missing = dir.path().join("missing.pem").display().to_string();
        let encrypted = dir.path().join("encrypted.pem");
        std::fs::write(
            &encrypted,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap();
        let encrypted = encrypted.display().to_string();
        let dir_path = dir.path().display().to_string();
        for (query, parameter, file, why) in [
            (
                format!("ssl_ca={missing}"),
                "ssl_ca",
                &missing,
                "cannot read",
            ),
            (
                format!("ssl_ca={dir_path}"),
                "ssl_ca",
                &dir_path,
                "cannot read",
            ),
            (
                format!("ssl_ca={other}"),
                "ssl_ca",
                &other,
                "no PEM certificate",
            ),
            (
                format!("ssl_ca={key}"),
                "ssl_ca",
                &key,
                "no PEM certificate",
            ),
            (
                format!("ssl_cert={key}&ssl_key={cert}"),
                "ssl_cert",
                &key,
                "no PEM certificate",
            ),
            (
                format!("ssl_cert={cert}&ssl_key={ca}"),
                "ssl_key",
                &ca,
                "no PEM private key",
            ),
            (
                format!("ssl_cert={cert}&ssl_key={encrypted}"),
                "ssl_key",
                &encrypted,
                "encrypted",
            ),
        ] {
            let err =
                DatabaseUrl::parse(&format!("mysql://u:secret@db/cinder?{query}")).unwrap_err();
            assert!(
                err.starts_with(&format!("database URL parameter {parameter}: "))
                    && err.contains(file.as_str())
                    && err.contains(why),
                "{query}: {err}"
            );
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn rejects_what_cannot_be_a_cinder_database() {
        for bad in [
            "postgresql://u:secret@db/cinder",
            "mysql://u:secret@db/",
            "mysql://u:secret@db",
            "not a url secret",
            "mysql://u:%zzsecret@db/cinder",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err();
            assert!(!err.contains("secret"), "{err}");
        }
    }

    #[test]
    fn cinder_conf_takes_raw_punctuation_and_ours_takes_it_percent_encoded() {
        let cinder =
            DatabaseUrl::parse_sqlalchemy("mysql+pymysql://cinder:p#/?%x:@ctl/cinder").unwrap();
        assert_eq!(cinder.password.as_deref(), Some("p#/?%x:"));
        let ours =
            DatabaseUrl::parse("mysql+pymysql://cinder:p%23%2F%3F%25x%3A@ctl/cinder").unwrap();
        assert_eq!(ours, cinder);
        // cinder's form in our file: refused, saying what to do, quoting nothing.
        let err = DatabaseUrl::parse("mysql+pymysql://cinder:p#/?%x@ctl/cinder").unwrap_err();
        assert!(
            err.contains("percent-encoded") && !err.contains("p#"),
            "{err}"
        );
        let err = DatabaseUrl::parse_sqlalchemy("postgresql://u:secret@db/cinder").unwrap_err();
        assert!(
            err.contains("not supported") && !err.contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn sockets_and_ipv6() {
        let url =
            DatabaseUrl::parse("mysql://root@localhost/cinder?unix_socket=/run/m.sock").unwrap();
        assert_eq!(url.socket.as_deref(), Some("/run/m.sock"));
        let url = DatabaseUrl::parse("mysql://root@[::1]:3306/cinder").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(url.redacted(), "mysql://root@[::1]:3306/cinder");
    }
}
