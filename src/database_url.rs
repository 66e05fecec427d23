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
    /// Parses `mysql://`, `mysql+pymysql://`, `mysql+mysqldb://` or `mariadb://` URLs.
    /// Error messages never quote the URL itself, since it may hold a password.
    pub fn parse(text: &str) -> Result<DatabaseUrl, String> {
        let url = url::Url::parse(text.trim())
            .map_err(|e| format!("database URL is not a valid URL ({e})"))?;
        match url.scheme() {
            "mysql"
            | "mysql+pymysql"
            | "mysql+mysqldb"
            | "mysql+mysqlconnector"
            | "mariadb"
            | "mariadb+pymysql" => {}
            other => {
                return Err(format!(
                    "database URL scheme {other:?} is not supported: cinder_exporter reads \
                     MySQL/MariaDB (mysql:// or mysql+pymysql://)"
                ))
            }
        }
        let decode = |s: &str| -> Result<String, String> {
            percent_decode(s).ok_or_else(|| "database URL has invalid %-escapes".to_string())
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?;
        let database = decode(url.path().trim_start_matches('/'))?;
        if database.is_empty() || database.contains('/') {
            return Err(
                "database URL must name the cinder database as its path, e.g. mysql://cinder@ctl/cinder"
                    .into(),
            );
        }
        let mut parsed = DatabaseUrl {
            host: url.host_str().unwrap_or("localhost").to_string(),
            port: url.port().unwrap_or(3306),
            user,
            password,
            database,
            socket: None,
            tls: None,
            ignored_parameters: Vec::new(),
        };
        if parsed.host.starts_with('[') {
            parsed.host = parsed.host.trim_matches(['[', ']']).to_string();
        }
        let mut tls_wanted = false;
        let mut tls = Tls {
            ca_file: None,
            client_cert: None,
            verify_cert: true,
            verify_hostname: true,
        };
        let (mut cert, mut key) = (None, None);
        for (name, value) in url.query_pairs() {
            let flag = || parse_flag(&name, &value);
            match name.as_ref() {
                "unix_socket" | "socket" => parsed.socket = Some(value.to_string()),
                "ssl" | "require_ssl" => tls_wanted |= flag()?,
                "ssl_ca" => {
                    tls_wanted = true;
                    tls.ca_file = Some(PathBuf::from(value.as_ref()));
                }
                "ssl_cert" => cert = Some(PathBuf::from(value.as_ref())),
                "ssl_key" => key = Some(PathBuf::from(value.as_ref())),
                "ssl_verify_cert" => tls.verify_cert = flag()?,
                "ssl_check_hostname" | "ssl_verify_identity" => tls.verify_hostname = flag()?,
                "ssl_mode" => match value.to_ascii_uppercase().as_str() {
                    "DISABLED" | "PREFERRED" => {}
                    // As the mysql client: REQUIRED encrypts without verifying.
                    "REQUIRED" => {
                        tls_wanted = true;
                        tls.verify_cert = false;
                        tls.verify_hostname = false;
                    }
                    "VERIFY_CA" => {
                        tls_wanted = true;
                        tls.verify_hostname = false;
                    }
                    "VERIFY_IDENTITY" => tls_wanted = true,
                    other => {
                        return Err(format!(
                            "database URL parameter ssl_mode={other} is not one of \
                             DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
                        ))
                    }
                },
                _ => parsed.ignored_parameters.push(name.into_owned()),
            }
        }
        match (cert, key) {
            (Some(c), Some(k)) => {
                tls_wanted = true;
                tls.client_cert = Some((c, k));
            }
            (None, None) => {}
            _ => return Err("database URL gives only one of ssl_cert and ssl_key".into()),
        }
        if tls_wanted {
            parsed.tls = Some(tls);
        }
        Ok(parsed)
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
        if self.tls.is_some() {
            out.push_str(if self.socket.is_some() { "&" } else { "?" });
            out.push_str("tls=on");
        }
        out
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

fn parse_flag(name: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!(
            "database URL parameter {name}={other} is not a boolean (true/false)"
        )),
    }
}

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

    #[test]
    fn tls_parameters() {
        let url = DatabaseUrl::parse(
            "mysql://u:p@db/cinder?ssl_ca=/etc/ca.pem&ssl_cert=/c.pem&ssl_key=/k.pem",
        )
        .unwrap();
        let tls = url.tls.as_ref().unwrap();
        assert_eq!(
            tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(tls.verify_cert && tls.verify_hostname && tls.client_cert.is_some());
        let url = DatabaseUrl::parse("mysql://db/cinder?ssl_mode=VERIFY_CA").unwrap();
        assert!(!url.tls.unwrap().verify_hostname);
        assert!(DatabaseUrl::parse("mysql://db/cinder?ssl_cert=/c.pem").is_err());
        assert!(DatabaseUrl::parse("mysql://db/cinder?ssl=maybe").is_err());
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
    fn sockets_and_ipv6() {
        let url =
            DatabaseUrl::parse("mysql://root@localhost/cinder?unix_socket=/run/m.sock").unwrap();
        assert_eq!(url.socket.as_deref(), Some("/run/m.sock"));
        let url = DatabaseUrl::parse("mysql://root@[::1]:3306/cinder").unwrap();
        assert_eq!(url.host, "::1");
        assert_eq!(url.redacted(), "mysql://root@[::1]:3306/cinder");
    }
}
