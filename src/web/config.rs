//! `--web.config.file`: TLS, client certificates, basic auth and extra response headers
//! for the HTTP endpoint, in the Prometheus exporter-toolkit format operators already
//! write for node_exporter and mysqld_exporter.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths: from this file's directory
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS12             # TLS12 or TLS13; rustls has no TLS10/TLS11
//!   max_version: TLS13
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! ```
//!
//! Differences from exporter-toolkit, each refused with a message rather than silently
//! ignored: `cipher_suites`, `curve_preferences`, `prefer_server_cipher_suites`,
//! `client_allowed_sans` and inline `cert`/`key` are unknown keys. `http2` is accepted
//! for compatibility, but the exporter speaks HTTP/1.1 only. `headers` takes the
//! five headers exporter-toolkit allows and adds them to every response.
//!
//! Every error names the file and the line and column (or the key) at fault, in one
//! line, like the errors of `--config.file`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::basic_auth::BasicAuth;
use super::tls::{self, ClientAuth, TlsSettings, TlsVersion};
use crate::config::{ConfigError, YamlFile};

/// The response headers exporter-toolkit lets `http_server_config.headers` set.
pub const ALLOWED_HEADERS: [&str; 5] = [
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
];

/// Above this bcrypt cost a single uncached verification takes seconds.
const SLOW_BCRYPT_COST: u32 = 12;

/// What `--web.config.file` changes in the HTTP server, loaded and ready to use. The
/// default (no flag) is plain HTTP with no authentication.
#[derive(Default)]
pub struct WebSecurity {
    /// TLS settings as configured, and the server configuration built from them.
    pub tls: Option<(TlsSettings, Arc<rustls::ServerConfig>)>,
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Things worth a warning at start-up (e.g. a very slow bcrypt cost).
    pub warnings: Vec<String>,
}

impl fmt::Debug for WebSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSecurity")
            .field("tls", &self.tls.as_ref().map(|(settings, _)| settings))
            .field(
                "basic_auth_users",
                &self.basic_auth.as_ref().map(|a| a.user_count()),
            )
            .field("headers", &self.headers)
            .finish()
    }
}

impl WebSecurity {
    /// One phrase for the start-up log: how clients must connect.
    pub fn tls_mode(&self) -> String {
        match &self.tls {
            None => "off (plain HTTP)".to_string(),
            Some((settings, _)) => format!(
                "{}..{}, client certificates: {}",
                settings.min_version, settings.max_version, settings.client_auth
            ),
        }
    }

    /// One phrase for the start-up log: who may read the endpoint.
    pub fn auth_mode(&self) -> String {
        match &self.basic_auth {
            None => "none".to_string(),
            Some(auth) => format!("basic auth, {} user(s)", auth.user_count()),
        }
    }
}

// The file as written. Values are kept as text here and checked afterwards, where the
// error can point at the value's key (`YamlFile::key_position`): serde_yaml places
// errors raised inside a value at the start of the enclosing mapping.
#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of tls_server_config, basic_auth_users, http_server_config"
)]
struct WebConfigFile {
    tls_server_config: Option<TlsServerConfigFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    http_server_config: Option<HttpServerConfigFile>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version"
)]
struct TlsServerConfigFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    client_ca_file: Option<PathBuf>,
    min_version: Option<String>,
    max_version: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, expecting = "a mapping of headers, http2")]
struct HttpServerConfigFile {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Accepted so that exporter-toolkit files load; HTTP/1.1 is served either way.
    #[allow(dead_code)]
    http2: Option<bool>,
}

/// Reads and applies the web config file at `path`: parses it, reads the certificate
/// files it names and builds the TLS and basic auth state.
pub fn load(path: &Path) -> Result<WebSecurity, ConfigError> {
    let shown = path.display().to_string();
    let text = crate::config::read_text_file(path).map_err(|e| ConfigError {
        location: shown.clone(),
        message: format!("cannot read web config file: {e}"),
    })?;
    // exporter-toolkit resolves relative file names against the config file's directory.
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse(&text, &shown, base_dir)
}

/// `load` for text already in memory: `origin` names it in errors, and relative file
/// names are resolved against `base_dir`.
pub fn parse(text: &str, origin: &str, base_dir: &Path) -> Result<WebSecurity, ConfigError> {
    let yaml = YamlFile::new(text, origin);
    let file: WebConfigFile = yaml.parse_or_default()?;
    let mut security = WebSecurity::default();
    if let Some(tls_file) = file.tls_server_config {
        if let Some(settings) = tls_settings(tls_file, base_dir, &yaml)? {
            let config = tls::server_config(&settings).map_err(|e| {
                yaml.error_at(
                    &["tls_server_config", e.key],
                    format!("tls_server_config.{}: {}", e.key, e.message),
                )
            })?;
            security.tls = Some((settings, config));
        }
    }
    if let Some(users) = file.basic_auth_users {
        for (name, hash) in &users {
            let cost = bcrypt_cost(hash).map_err(|message| {
                yaml.error_at(
                    &["basic_auth_users", name],
                    format!("basic_auth_users.{name}: {message}"),
                )
            })?;
            if cost > SLOW_BCRYPT_COST {
                security.warnings.push(format!(
                    "{}: bcrypt cost {cost} for user {name:?}: every uncached check costs \
                     about {}x a cost-10 check",
                    yaml.key_position(&["basic_auth_users", name]),
                    1u64 << (cost - 10)
                ));
            }
        }
        // An empty map means no authentication, as in exporter-toolkit.
        if !users.is_empty() {
            security.basic_auth = Some(Arc::new(BasicAuth::new(users)));
        }
    }
    if let Some(http) = file.http_server_config {
        for (name, value) in http.headers {
            let at = ["http_server_config", "headers", name.as_str()];
            let header = response_header(&name, &value).map_err(|message| {
                yaml.error_at(&at, format!("http_server_config.headers: {message}"))
            })?;
            security.headers.push(header);
        }
    }
    Ok(security)
}

/// The cost of a bcrypt hash, or why it is not one. The value is never echoed: it might
/// be a password written there by mistake.
fn bcrypt_cost(hash: &str) -> Result<u32, String> {
    let parts = bcrypt::HashParts::from_str(hash).map_err(|e| {
        format!(
            "not a bcrypt hash (expected $2y$<cost>$… 60 characters, as htpasswd -B writes): {e}"
        )
    })?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost {cost} is outside 4..=31"));
    }
    Ok(cost)
}

/// One of [`ALLOWED_HEADERS`] (any case) with a value that cannot split a header.
fn response_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let allowed = ALLOWED_HEADERS
        .iter()
        .find(|allowed| allowed.eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            format!(
                "header {name:?} cannot be set; allowed: {}",
                ALLOWED_HEADERS.join(", ")
            )
        })?;
    if value.is_empty() || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(format!(
            "{allowed}: the value must be non-empty printable ASCII"
        ));
    }
    let name = HeaderName::from_bytes(allowed.as_bytes()).map_err(|e| e.to_string())?;
    let value = HeaderValue::from_str(value).map_err(|e| format!("{allowed}: {e}"))?;
    Ok((name, value))
}

/// `TLS12`/`TLS13`; `TLS10`/`TLS11` are exporter-toolkit values rustls refuses to speak.
fn tls_version(text: &str) -> Result<TlsVersion, String> {
    match text {
        "TLS12" => Ok(TlsVersion::Tls12),
        "TLS13" => Ok(TlsVersion::Tls13),
        "TLS10" | "TLS11" => Err(format!(
            "{text} is not supported: TLS 1.0 and 1.1 are obsolete, rustls speaks TLS12 and TLS13"
        )),
        _ => Err(format!(
            "unknown TLS version {text:?}, expected TLS12 or TLS13"
        )),
    }
}

/// Validates the `tls_server_config` section. `Ok(None)` when it names neither
/// certificate nor client authentication: exporter-toolkit then serves plain HTTP.
fn tls_settings(
    file: TlsServerConfigFile,
    base_dir: &Path,
    yaml: &YamlFile<'_>,
) -> Result<Option<TlsSettings>, ConfigError> {
    let error = |key: &str, message: String| {
        yaml.error_at(
            &["tls_server_config", key],
            format!("tls_server_config.{key}: {message}"),
        )
    };
    // An empty string means "not set", as in exporter-toolkit.
    let path = |p: Option<PathBuf>| {
        p.filter(|p| !p.as_os_str().is_empty())
            .map(|p| base_dir.join(p))
    };
    let cert_file = path(file.cert_file);
    let key_file = path(file.key_file);
    let client_ca_file = path(file.client_ca_file);
    // Values are checked even where TLS ends up off, so that no typo goes unnoticed.
    let client_auth_type = file.client_auth_type.filter(|t| !t.is_empty());
    let client_auth = match &client_auth_type {
        None => ClientAuth::NoClientCert,
        Some(name) => ClientAuth::from_name(name).ok_or_else(|| {
            error(
                "client_auth_type",
                format!(
                    "unknown value {name:?}, expected one of {}",
                    ClientAuth::NAMES.join(", ")
                ),
            )
        })?,
    };
    let version = |key: &str, text: Option<String>, default: TlsVersion| match text {
        None => Ok(default),
        Some(text) => tls_version(&text).map_err(|message| error(key, message)),
    };
    let min_version = version("min_version", file.min_version, TlsVersion::Tls12)?;
    let max_version = version("max_version", file.max_version, TlsVersion::Tls13)?;
    if cert_file.is_none()
        && key_file.is_none()
        && client_auth_type.is_none()
        && client_ca_file.is_none()
    {
        return Ok(None);
    }
    let missing = || "missing: TLS needs both cert_file and key_file".to_string();
    let cert_file = cert_file.ok_or_else(|| error("cert_file", missing()))?;
    let key_file = key_file.ok_or_else(|| error("key_file", missing()))?;
    if client_auth == ClientAuth::NoClientCert && client_ca_file.is_some() {
        return Err(error(
            "client_ca_file",
            "set, but client_auth_type is NoClientCert: set client_auth_type (e.g. \
             RequireAndVerifyClientCert) or remove client_ca_file"
                .to_string(),
        ));
    }
    if client_auth.verifies() && client_ca_file.is_none() {
        return Err(error(
            "client_auth_type",
            format!("{client_auth} needs client_ca_file, the CA that signs client certificates"),
        ));
    }
    if min_version > max_version {
        return Err(error(
            "min_version",
            format!("{min_version} is above max_version {max_version}"),
        ));
    }
    Ok(Some(TlsSettings {
        cert_file,
        key_file,
        client_auth,
        client_ca_file,
        min_version,
        max_version,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<WebSecurity, ConfigError> {
        parse(text, "web.yml", Path::new("/nonexistent"))
    }

    #[test]
    fn empty_and_tls_less_files_mean_plain_http() {
        for text in [
            "",
            "# nothing\n",
            "tls_server_config:\n",
            "tls_server_config:\n  min_version: TLS13\n",
            "basic_auth_users: {}\n",
        ] {
            let security = parse_text(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(
                security.tls.is_none() && security.basic_auth.is_none(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_line_or_key() {
        let cases = [
            ("tls_server_config:\n  certfile: a\n", "web.yml:2:3", "certfile"),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS10\n",
                "web.yml:4:3",
                "TLS10",
            ),
            ("tls_server_config:\n  max_version: TLS11\n", "web.yml:2:3", "TLS11"),
            (
                "tls_server_config:\n  client_auth_type: Sometimes\n",
                "web.yml:2:3",
                "Sometimes",
            ),
            (
                // Users are checked in name order: alice (line 3) before bob.
                "basic_auth_users:\n  bob: $2y$04$abcdefghijklmnopqrstuu\n  alice: hunter2\n",
                "web.yml:3:3",
                "basic_auth_users.alice: not a bcrypt hash",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n",
                "web.yml:1:1",
                "key_file",
            ),
            (
                "tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n",
                "web.yml:2:3",
                "/nonexistent/a.crt",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n",
                "web.yml:4:3",
                "client_ca_file",
            ),
            (
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n",
                "web.yml:4:3",
                "above",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n    Set-Cookie: a=b\n",
                "web.yml:4:5",
                "Set-Cookie",
            ),
            (
                "http_server_config:\n  headers:\n    X-Frame-Options: \"a\\nb\"\n",
                "web.yml:3:5",
                "printable ASCII",
            ),
        ];
        for (text, location, message) in cases {
            match parse_text(text) {
                Ok(_) => panic!("{text:?} accepted"),
                Err(e) => {
                    let line = e.to_string();
                    assert!(
                        line.starts_with(location) && line.contains(message),
                        "{text:?}: {line}"
                    );
                    assert!(!line.contains('\n'), "{line}");
                    assert!(!line.contains("hunter2"), "{line}");
                }
            }
        }
    }

    #[test]
    fn flow_style_errors_name_the_line_and_column_of_the_key() {
        let cases = [
            (
                "tls_server_config: {cert_file: a, key_file: b, min_version: TLS10}\n",
                "web.yml:1:48: tls_server_config.min_version: TLS10",
            ),
            (
                "basic_auth_users: {bob: x, alice: hunter2}\n",
                "web.yml:1:28: basic_auth_users.alice: not a bcrypt hash",
            ),
            (
                "http_server_config: {headers: {Set-Cookie: a=b}}\n",
                "web.yml:1:32: http_server_config.headers: header \"Set-Cookie\"",
            ),
            (
                "tls_server_config: {cert_file: a, bogus: 1}\n",
                "web.yml:1:35: tls_server_config: unknown field `bogus`",
            ),
            (
                "\"tls_server_config\": {'cert_file': a.crt}\n",
                "web.yml:1:1: tls_server_config.key_file: missing",
            ),
        ];
        for (text, start) in cases {
            let line = parse_text(text).err().unwrap().to_string();
            assert!(line.starts_with(start), "{text:?}: {line}");
            assert!(!line.contains("hunter2"), "{line}");
        }
    }

    #[test]
    fn misplaced_values_are_not_echoed() {
        let error = parse_text("basic_auth_users alice $2y$10$secret-ish\n")
            .err()
            .unwrap()
            .to_string();
        assert!(!error.contains("secret-ish"), "{error}");
        assert!(
            error.contains("a string (not shown), expected a mapping"),
            "{error}"
        );
    }

    #[test]
    fn headers_and_users_are_taken() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let security = parse_text(&format!(
            "basic_auth_users:\n  alice: {hash}\nhttp_server_config:\n  http2: false\n  headers:\n    \
             x-frame-options: DENY\n    Strict-Transport-Security: max-age=300\n"
        ))
        .unwrap();
        assert_eq!(security.basic_auth.unwrap().user_count(), 1);
        let names: Vec<_> = security.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["strict-transport-security", "x-frame-options"]);
    }
}
