//! The exporter's configuration: our YAML file, the operator's cinder.conf, and the
//! environment, merged into one validated [`Config`].
//!
//! Precedence, most specific first: keys in the YAML file, then
//! `CINDER_EXPORTER_DATABASE_URL` (database only), then cinder.conf, then defaults.
//! A password can thus come from a file or the environment, never the command line.
//! Every error names the file and the position (or the variable) it comes from.
//!
//! The same keys, under `targets: {NAME: …}`, describe further databases; each target
//! is resolved like the top level, from its own keys and those of `defaults:` (see
//! `targets`), and `load_setup` returns the top-level database (if any) with them.

mod cinder_conf;
mod database_url;
mod duration;
mod file;
mod redact;
mod sqlalchemy_url;
mod substitution;
mod targets;
mod yaml;

pub use cinder_conf::parse_cinder_conf;
pub use database_url::DatabaseUrl;
pub use duration::parse_duration;
pub use file::{read_file, read_text_file, MAX_FILE_BYTES};
pub use redact::redact_secrets;
pub(crate) use targets::{load_setup, parse_setup, Setup};
pub use yaml::YamlFile;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use self::cinder_conf::CinderSettings;

/// The environment variable that may hold the database URL.
pub const DATABASE_URL_ENV: &str = "CINDER_EXPORTER_DATABASE_URL";

/// cinder's defaults (`[DEFAULT] service_down_time` and `report_interval`).
pub const DEFAULT_SERVICE_DOWN_TIME: Duration = Duration::from_secs(60);
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// How often the poller reads the table: well under cinder's 10 s heartbeat so that
/// the clock-offset bracket stays narrow, yet one cheap query every 2 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Past this, per-service series are withheld rather than served from an old poll.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(30);

/// The validated configuration of one database, grouped by what a change to it means
/// on a reload (the table "When a change takes effect" in docs/configuration.md):
///
/// | group | a change applies |
/// |---|---|
/// | [`Connection`] | by replacing the database's poller (its diagnosis history restarts) |
/// | [`Polling`] | from the poller's next wait |
/// | [`Judging`] | from the next scrape |
/// | [`Output`] | from the next poll (the label sets are built per poll) and scrape |
///
/// A new key goes into the group whose rule fits it, and nowhere else.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub connection: Connection,
    pub polling: Polling,
    pub judging: Judging,
    pub output: Output,
    /// Which setting gave the database URL, for the log; not part of the connection.
    pub source: String,
}

/// Which database, reached how: two equal connections read the same database the same
/// way, so a poller (with its pool and diagnosis state) can go on across a reload.
#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub database: DatabaseUrl,
    /// Part of the pool's connection options, hence of the connection.
    pub query_timeout: Duration,
}

/// When the poller reads the table.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Polling {
    pub poll_interval: Duration,
}

/// What a scrape judges by: cinder's own settings, and how old a reading may be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judging {
    pub service_down_time: Duration,
    pub report_interval: Duration,
    /// Per-service series are withheld when the last good poll is older than this.
    pub stale_after: Duration,
}

/// Which series are published beside the native ones.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Output {
    /// Series other exporters published, for dashboards and alerts written for them.
    pub compatibility: Compatibility,
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database={} query_timeout={}",
            self.database.redacted(),
            seconds(self.query_timeout)
        )
    }
}

impl fmt::Display for Polling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "poll_interval={}", seconds(self.poll_interval))
    }
}

impl fmt::Display for Judging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service_down_time={} report_interval={} stale_after={}",
            seconds(self.service_down_time),
            seconds(self.report_interval),
            seconds(self.stale_after)
        )
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "compatibility.openstack_exporter={}",
            self.compatibility.openstack_exporter
        )
    }
}

/// A duration as a log shows it: `2s`, `0.5s`.
fn seconds(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// `compatibility:`: which other exporters' series to publish beside ours. All off by
/// default: they duplicate ours under other names.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Compatibility {
    /// `openstack_cinder_agent_state` and `openstack_cinder_up` as openstack-exporter
    /// names them.
    #[serde(default)]
    pub openstack_exporter: bool,
}

/// A configuration problem: where it is and what is wrong, printed on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `FILE:LINE:COL`, a variable name, or empty when there is no better place.
    pub location: String,
    pub message: String,
}

// Every configuration error reaches the operator through this (start-up, the reload
// log and the body of `POST /-/reload`), so secrets are taken out here, whatever text
// the message quotes.
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = redact_secrets(&self.message);
        if self.location.is_empty() {
            f.write_str(&message)
        } else {
            write!(f, "{}: {message}", redact_secrets(&self.location))
        }
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    database: DatabaseSection,
    cinder_conf: Option<OneOrMany>,
    service_down_time: Option<PositiveDuration>,
    report_interval: Option<PositiveDuration>,
    poll_interval: Option<PositiveDuration>,
    query_timeout: Option<PositiveDuration>,
    stale_after: Option<PositiveDuration>,
    compatibility: Option<Compatibility>,
    /// Named databases served on `/probe?target=NAME`, each with these same keys
    /// (but no `targets:` or `defaults:` of its own).
    targets: Option<std::collections::BTreeMap<String, FileConfig>>,
    /// Keys every target inherits unless it sets them itself: these same keys but
    /// `database`, `targets` and `defaults` (see `targets`).
    defaults: Option<Box<FileConfig>>,
}

/// The keys of [`FileConfig`] that only the top level takes: an unknown key inside a
/// target or `defaults:` must not be told they are valid there.
const TOP_LEVEL_ONLY_KEYS: [&str; 2] = ["targets", "defaults"];

/// serde lists every key of [`FileConfig`] for an unknown key anywhere in it, targets
/// included (they are read with the same type): inside a target, the list leaves out
/// [`TOP_LEVEL_ONLY_KEYS`].
fn keys_valid_where_they_sit(mut error: ConfigError) -> ConfigError {
    let Some((path, rest)) = error.message.split_once(": unknown field ") else {
        return error;
    };
    // `targets.NAME` or `defaults`, not deeper (whose lists are another type's).
    let in_a_target = path == "defaults"
        || path
            .strip_prefix("targets.")
            .is_some_and(|name| !name.contains('.'));
    if !in_a_target {
        return error;
    }
    let Some((unknown, expected)) = rest.split_once(", expected one of ") else {
        return error;
    };
    let keys: Vec<&str> = expected
        .split(", ")
        .filter(|key| !TOP_LEVEL_ONLY_KEYS.contains(&key.trim_matches('`')))
        .collect();
    error.message = format!(
        "{path}: unknown field {unknown}, expected one of {}",
        keys.join(", ")
    );
    error
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DatabaseSection {
    url: Option<String>,
    url_file: Option<PathBuf>,
}

/// `cinder_conf:` takes one path or a list (read in order, later ones win, like
/// oslo.config's `--config-file` repeated).
#[derive(Deserialize)]
#[serde(untagged, expecting = "a path or a list of paths")]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

/// A duration written as Prometheus writes them (`500ms`, `2s`, `1m`) or as whole
/// seconds; zero is rejected because no setting here makes sense at zero.
#[derive(Clone, Copy)]
struct PositiveDuration(Duration);

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 10s, 1m30s, or whole seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse_duration(v).map_err(E::custom)
            }
        }
        let d = deserializer.deserialize_any(DurationVisitor)?;
        if d.is_zero() {
            return Err(de::Error::custom("duration must be greater than zero"));
        }
        Ok(PositiveDuration(d))
    }
}

/// A configuration for unit tests: `yaml`'s keys beside a database URL.
#[cfg(test)]
pub(crate) fn for_tests(yaml: &str) -> std::sync::Arc<Config> {
    let config = parse_str(yaml, "t.yml", Some("mysql://u@h/db".into()));
    std::sync::Arc::new(config.expect("a valid test configuration"))
}

/// The top-level database's configuration from YAML text already in memory; `origin` names it in errors (the file's
/// path). Files the text refers to (cinder.conf, `database.url_file`) are still read.
/// Empty text means all defaults, as a missing `--config.file` does.
pub fn parse_str(
    text: &str,
    origin: &str,
    env_database_url: Option<String>,
) -> Result<Config, ConfigError> {
    let setup = parse_setup(text, origin, env_database_url)?;
    match (setup.main, setup.unconfigured) {
        (Some(config), _) => Ok(config),
        (None, Some(why)) => Err(why),
        (None, None) => Err(no_database()),
    }
}

/// The error when no database is configured at the top level (and there are no
/// targets either, or the caller needs a top-level one).
fn no_database() -> ConfigError {
    ConfigError {
        location: String::new(),
        message: format!(
            "no database configured: set database.url or database.url_file in the \
             config file (--config.file), the {DATABASE_URL_ENV} environment \
             variable, or cinder_conf pointing at a cinder.conf with [database] connection"
        ),
    }
}

/// One database's settings from its section of the file (the top level or a target):
/// `Ok(None)` when the section names no database at all. `at_key` gives the position of
/// a key by its path within the section (`["database", "url"]`).
fn resolve(
    file: &FileConfig,
    env_database_url: Option<String>,
    at_key: &dyn Fn(&[&str]) -> String,
) -> Result<Option<Config>, ConfigError> {
    let cinder = match &file.cinder_conf {
        None => None,
        Some(paths) => Some(read_cinder_confs(paths.as_slice(), &|| {
            at_key(&["cinder_conf"])
        })?),
    };
    let cinder = cinder.as_ref();
    let judging = Judging::resolve(file, cinder)?;
    let polling = Polling {
        poll_interval: file.poll_interval.map_or(DEFAULT_POLL_INTERVAL, |d| d.0),
    };
    check_stale_after(judging.stale_after, polling.poll_interval, || {
        at_key(&["stale_after"])
    })?;
    let output = Output {
        compatibility: file.compatibility.unwrap_or_default(),
    };

    let Some(chosen) = choose_database_url(&file.database, env_database_url, cinder, at_key)?
    else {
        return Ok(None);
    };
    let parse = match chosen.syntax {
        UrlSyntax::Rfc3986 => DatabaseUrl::parse,
        UrlSyntax::SqlAlchemy => DatabaseUrl::parse_sqlalchemy,
    };
    let database = parse(&chosen.text).map_err(|message| ConfigError {
        location: chosen.location,
        message,
    })?;
    let connection = Connection {
        database,
        query_timeout: file.query_timeout.map_or(DEFAULT_QUERY_TIMEOUT, |d| d.0),
    };
    Ok(Some(Config {
        connection,
        polling,
        judging,
        output,
        source: chosen.source,
    }))
}

impl Judging {
    /// cinder's heartbeat settings (ours, else cinder.conf's, else cinder's defaults)
    /// and `stale_after`.
    fn resolve(file: &FileConfig, cinder: Option<&CinderSettings>) -> Result<Judging, ConfigError> {
        Ok(Judging {
            service_down_time: heartbeat_setting(
                file.service_down_time,
                cinder.and_then(|c| c.service_down_time.as_ref()),
                "service_down_time",
                DEFAULT_SERVICE_DOWN_TIME,
            )?,
            report_interval: heartbeat_setting(
                file.report_interval,
                cinder.and_then(|c| c.report_interval.as_ref()),
                "report_interval",
                DEFAULT_REPORT_INTERVAL,
            )?,
            stale_after: file.stale_after.map_or(DEFAULT_STALE_AFTER, |d| d.0),
        })
    }
}

impl OneOrMany {
    /// The paths in reading order, however many the file gave.
    fn as_slice(&self) -> &[PathBuf] {
        match self {
            OneOrMany::One(p) => std::slice::from_ref(p),
            OneOrMany::Many(ps) => ps.as_slice(),
        }
    }
}

/// One of cinder's heartbeat settings: our file's value if it has one, else
/// cinder.conf's, else cinder's default. Our file's durations were checked as they were
/// read; cinder.conf's whole seconds are checked here, refusing zero as for our own.
fn heartbeat_setting(
    ours: Option<PositiveDuration>,
    cinder: Option<&cinder_conf::Setting<u64>>,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    if let Some(d) = ours {
        return Ok(d.0);
    }
    match cinder {
        None => Ok(default),
        Some(s) if s.value == 0 => Err(ConfigError {
            location: s.location(),
            message: format!("[DEFAULT] {key} must be greater than zero"),
        }),
        Some(s) => Ok(Duration::from_secs(s.value)),
    }
}

/// Refuses a `stale_after` shorter than the poll interval, which would withhold the
/// services on every scrape between two polls. `at` gives the key's position.
fn check_stale_after(
    stale_after: Duration,
    poll_interval: Duration,
    at: impl FnOnce() -> String,
) -> Result<(), ConfigError> {
    if stale_after < poll_interval {
        return Err(ConfigError {
            location: at(),
            message: format!(
                "stale_after ({}) must be at least poll_interval ({}), \
                 or every scrape between two polls would withhold the services",
                seconds(stale_after),
                seconds(poll_interval)
            ),
        });
    }
    Ok(())
}

/// The database URL's text before it is parsed, with where it came from: `location`
/// for errors in it, `source` for the start-up log (it becomes
/// [`Config::source`]).
struct ChosenUrl {
    text: String,
    location: String,
    source: String,
    syntax: UrlSyntax,
}

/// How a database URL is read: as cinder reads its own (cinder.conf), or as a URL
/// (our file and the environment).
#[derive(Clone, Copy)]
enum UrlSyntax {
    Rfc3986,
    SqlAlchemy,
}

/// Picks the database URL by the precedence in the module docs: our file's
/// `database.url` or `database.url_file` (not both), then the environment, then
/// cinder.conf's `[database] connection`.
fn choose_database_url(
    section: &DatabaseSection,
    env_database_url: Option<String>,
    cinder: Option<&CinderSettings>,
    at_key: &dyn Fn(&[&str]) -> String,
) -> Result<Option<ChosenUrl>, ConfigError> {
    match (&section.url, &section.url_file) {
        (Some(_), Some(_)) => Err(ConfigError {
            location: at_key(&["database", "url_file"]),
            message: "database.url and database.url_file are both set; keep one".into(),
        }),
        (Some(url), None) => Ok(Some(ChosenUrl {
            text: url.clone(),
            location: at_key(&["database", "url"]),
            source: "database.url".to_string(),
            syntax: UrlSyntax::Rfc3986,
        })),
        (None, Some(url_file)) => {
            read_url_file(url_file, at_key(&["database", "url_file"])).map(Some)
        }
        (None, None) => Ok(url_from_outside(env_database_url, cinder)),
    }
}

/// `database.url_file`: keeps the password out of the YAML file (a mounted secret,
/// say). Surrounding whitespace, such as the file's last newline, is not part of it.
fn read_url_file(url_file: &Path, location: String) -> Result<ChosenUrl, ConfigError> {
    let url = read_text_file(url_file).map_err(|e| ConfigError {
        location: location.clone(),
        message: format!("database.url_file: cannot read {}: {e}", url_file.display()),
    })?;
    Ok(ChosenUrl {
        text: url.trim().to_string(),
        location,
        source: format!("database.url_file ({})", url_file.display()),
        syntax: UrlSyntax::Rfc3986,
    })
}

/// The URL when our file names none: [`DATABASE_URL_ENV`] if set and not blank, else
/// cinder.conf's `[database] connection`, else none.
fn url_from_outside(
    env_database_url: Option<String>,
    cinder: Option<&CinderSettings>,
) -> Option<ChosenUrl> {
    if let Some(url) = env_database_url.filter(|url| !url.trim().is_empty()) {
        return Some(ChosenUrl {
            text: url,
            location: DATABASE_URL_ENV.to_string(),
            source: DATABASE_URL_ENV.to_string(),
            syntax: UrlSyntax::Rfc3986,
        });
    }
    if let Some(setting) = cinder.and_then(|c| c.database_connection.as_ref()) {
        let location = setting.location();
        return Some(ChosenUrl {
            text: setting.value.clone(),
            source: format!("[database] connection in {location}"),
            location,
            syntax: UrlSyntax::SqlAlchemy,
        });
    }
    None
}

/// Reads and merges cinder.conf files, later ones winning. A file that cannot be read
/// is placed at the `cinder_conf` key naming it (`at_key`); an error inside one, at its
/// own line.
fn read_cinder_confs(
    paths: &[PathBuf],
    at_key: &dyn Fn() -> String,
) -> Result<CinderSettings, ConfigError> {
    let mut all = cinder_conf::ConfValues::default();
    for path in paths {
        let text = read_text_file(path).map_err(|e| ConfigError {
            location: at_key(),
            message: format!("cinder_conf: cannot read {}: {e}", path.display()),
        })?;
        let mut values = cinder_conf::read_cinder_conf(&text).map_err(|e| conf_error(e, path))?;
        values.set_file(path);
        all.merge(values);
    }
    // Substitution and conversion see every file, as oslo.config's do.
    let last = paths
        .last()
        .map_or(Path::new("cinder.conf"), PathBuf::as_path);
    all.settings().map_err(|e| conf_error(e, last))
}

/// A cinder.conf error located in the file it names, else in `read`.
fn conf_error(error: cinder_conf::ParseError, read: &Path) -> ConfigError {
    ConfigError {
        location: error.location(read),
        message: error.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse_setup(text, "c.yml", None).unwrap_err().to_string()
    }

    /// Flow style through the whole road (read, resolved, checked): errors serde finds
    /// while reading and those found afterwards both have a line and column.
    #[test]
    fn flow_style_errors_have_a_line_and_column_end_to_end() {
        let unknown = error("database: {url: x, bogus: 1}\n");
        assert!(
            unknown.starts_with("c.yml:1:20: database: unknown field `bogus`"),
            "{unknown}"
        );
        let both = error("database: {url: 'mysql://u@h/db', url_file: /f}\n");
        assert!(both.starts_with("c.yml:1:35: database.url and"), "{both}");
        let scheme = error("poll_interval: 2s\ndatabase: {url: 'postgres://u@h/db'}\n");
        assert!(scheme.starts_with("c.yml:2:12: "), "{scheme}");
        let target = error("targets: {east: {database: {url: 'postgres://u@h/db'}}}\n");
        assert!(
            target.starts_with("c.yml:1:29: target \"east\""),
            "{target}"
        );
        let stale =
            error("{database: {url: 'mysql://u@h/db'}, poll_interval: 10s, stale_after: 5s}\n");
        assert!(
            stale.starts_with("c.yml:1:57: stale_after (5s) must be at least poll_interval (10s)"),
            "{stale}"
        );
        // The web config reads its flow mappings the same way.
        let web = crate::web::parse_web_config(
            "tls_server_config: {cert_file: missing.crt, key_file: missing.key}\n",
            "w.yml",
            std::path::Path::new("/nonexistent"),
        )
        .expect_err("no such certificate")
        .to_string();
        assert!(web.starts_with("w.yml:1:21: "), "{web}");
    }

    #[test]
    fn an_unknown_key_lists_the_keys_valid_where_it_sits() {
        let top = error("no_such_key: 1\n");
        assert!(top.contains("`targets`"), "{top}");
        for text in [
            "targets:\n  west:\n    database: {url: 'mysql://u@h/db'}\n    service_downtime: 20s\n",
            "targets: {west: {service_downtime: 20s}}\n",
        ] {
            let inside = error(text);
            assert!(
                inside.contains("targets.west: unknown field `service_downtime`, expected one of"),
                "{inside}"
            );
            assert!(inside.contains("`service_down_time`"), "{inside}");
            assert!(!inside.contains("`targets`"), "{inside}");
        }
        // Deeper sections list their own keys, untouched.
        let deeper = error("targets: {west: {database: {uri: x}}}\n");
        assert!(deeper.ends_with("expected `url` or `url_file`"), "{deeper}");
    }
}
