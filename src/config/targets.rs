//! `targets:`: several cinder databases served by one exporter, each under a name
//! (`/probe?target=NAME`), each with the keys the top level takes.
//!
//! What every target shares is written once, under `defaults:`: each target inherits
//! its keys and overrides any of them (a nested mapping such as `compatibility` key by
//! key). The inheritance is generic: the target's YAML mapping is laid over the
//! defaults' before it is read, so a key added to [`FileConfig`] is inherited without
//! being listed here. `defaults:` takes every key a target takes but `database` (each
//! target names its own: a shared one would have every target read the same).
//!
//! The top level's keys are the top-level database's only: they never apply to
//! targets, and without a top-level database they are refused with a pointer to
//! `defaults:`, so a setting is never silently applied to nothing.
//! `CINDER_EXPORTER_DATABASE_URL` applies to the top level only. Errors found after
//! parsing point at the key where the target got it: inside the target's own block,
//! or in `defaults:`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_yaml::Value;

use super::{
    keys_valid_where_they_sit, no_database, resolve, Config, ConfigError, FileConfig, YamlFile,
};

/// The whole configuration: the top-level database, if one is configured, and the
/// named targets, sorted by name.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Served on `/metrics` (today's behaviour); `None` with only `targets:`, or
    /// while [`Setup::unconfigured`].
    pub main: Option<Config>,
    pub targets: Vec<Target>,
    /// Why the top-level database is not configured yet, naming the file and key to
    /// set: the cinder.conf that `cinder_conf` names does not exist (cinder is not
    /// installed on this host, or not yet). The exporter runs and says so (`cinder_up
    /// 0`, the log, the status page) rather than refusing to start; a reload after
    /// the fix starts the database.
    pub unconfigured: Option<ConfigError>,
}

/// One named database of `targets:`.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub config: Config,
}

/// The configuration: reads the YAML file (if any), the environment value of
/// [`super::DATABASE_URL_ENV`] and the cinder.conf files the YAML names.
pub fn load_setup(
    path: Option<&Path>,
    env_database_url: Option<String>,
) -> Result<Setup, ConfigError> {
    match path {
        Some(path) => {
            let shown = path.display().to_string();
            let text = super::read_text_file(path).map_err(|e| ConfigError {
                location: shown.clone(),
                message: format!("cannot read config file: {e}"),
            })?;
            parse_setup(&text, &shown, env_database_url)
        }
        None => parse_setup("", "", env_database_url),
    }
}

/// [`super::parse_str`], with the targets. Without a top-level database the file must
/// have targets, and top-level keys that would only apply to that database are refused.
pub fn parse_setup(
    text: &str,
    origin: &str,
    env_database_url: Option<String>,
) -> Result<Setup, ConfigError> {
    let yaml = YamlFile::new(text, origin);
    let mut file: FileConfig = yaml.parse_or_default().map_err(keys_valid_where_they_sit)?;
    let at_key = |path: &[&str]| yaml.key_position(path);
    refuse_url_as_cinder_conf(&file, &at_key)?;
    let missing = missing_cinder_conf(&file);
    if missing.is_some() {
        // The rest of the file is still checked now, not at the first reload.
        file.cinder_conf = None;
    }
    let main = resolve(&file, env_database_url, &at_key)?;
    // The same text as plain YAML, for the inheritance: the typed read above has
    // checked every key and value already.
    let sections: Sections = yaml.parse_or_default()?;
    check_defaults(&file, &yaml)?;
    let mut targets = Vec::new();
    for name in file.targets.iter().flatten().map(|(name, _)| name) {
        let own = sections.targets.as_ref().and_then(|t| t.get(name));
        let own = own.unwrap_or(&Value::Null);
        targets.push(parse_target(name, own, &sections.defaults, &yaml)?);
    }
    if let Some(missing) = missing {
        let unconfigured = Some(unconfigured(&missing, main.as_ref(), &at_key));
        return Ok(Setup {
            main: None,
            targets,
            unconfigured,
        });
    }
    if main.is_none() {
        if targets.is_empty() {
            return Err(no_database());
        }
        refuse_orphan_settings(&yaml)?;
    }
    Ok(Setup {
        main,
        targets,
        unconfigured: None,
    })
}

/// A database URL pasted as the `cinder_conf` path is a mistake, not a cinder.conf
/// "not there yet": refused at its key, without quoting it (it may hold a password).
fn refuse_url_as_cinder_conf(
    file: &FileConfig,
    at_key: &dyn Fn(&[&str]) -> String,
) -> Result<(), ConfigError> {
    let paths = file.cinder_conf.as_ref().map_or(&[][..], |c| c.as_slice());
    if paths.iter().any(|p| p.to_string_lossy().contains("://")) {
        return Err(ConfigError {
            location: at_key(&["cinder_conf"]),
            message: "cinder_conf takes the path of a cinder.conf, and this looks like a \
                      database URL (not shown): put the URL in database.url or, better, in a \
                      file named by database.url_file"
                .into(),
        });
    }
    Ok(())
}

/// The first top-level cinder.conf that does not exist (a file that exists but cannot
/// be read is an error, found when it is read).
fn missing_cinder_conf(file: &FileConfig) -> Option<std::path::PathBuf> {
    let paths = file.cinder_conf.as_ref()?.as_slice();
    let missing = paths.iter().find(|p| matches!(p.try_exists(), Ok(false)));
    missing.cloned()
}

/// What the operator must do when `cinder_conf` names a file that is not there, placed
/// at that key: `without` is the top-level database the rest of the file gives, if any.
fn unconfigured(
    missing: &Path,
    without: Option<&Config>,
    at_key: &dyn Fn(&[&str]) -> String,
) -> ConfigError {
    let named = format!(
        "cinder_conf names {}, which does not exist on this host",
        missing.display()
    );
    let message = match without {
        Some(config) => format!(
            "{named}, and the database is given by {}: delete the cinder_conf line (and set \
             service_down_time and report_interval if cinder's are not 60s and 10s)",
            config.source
        ),
        None => format!(
            "{named}: the cinder database is not configured yet. On a cinder controller, \
             install cinder; on any other host, put the database URL in a file and replace \
             the cinder_conf line with `database: {{url_file: FILE}}` (the comments in the \
             file say how); then reload or restart"
        ),
    };
    ConfigError {
        location: at_key(&["cinder_conf"]),
        message,
    }
}

/// The parts of the file the inheritance needs, as plain YAML.
#[derive(Deserialize, Default)]
struct Sections {
    targets: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    defaults: Value,
}

/// `defaults:` must apply to some target, and may not hold what cannot be shared.
fn check_defaults(file: &FileConfig, yaml: &YamlFile) -> Result<(), ConfigError> {
    let Some(defaults) = &file.defaults else {
        return Ok(());
    };
    let refuse = |path: &[&str], message: &str| Err(yaml.error_at(path, message.to_string()));
    if file.targets.as_ref().is_none_or(BTreeMap::is_empty) {
        return refuse(
            &["defaults"],
            "defaults applies to every target, and there are none under targets",
        );
    }
    if defaults.database.url.is_some() || defaults.database.url_file.is_some() {
        return refuse(
            &["defaults", "database"],
            "defaults cannot set database: each target names its own (a shared one would \
             have every target read the same database)",
        );
    }
    let nested = [
        ("targets", defaults.targets.is_some()),
        ("defaults", defaults.defaults.is_some()),
    ];
    if let Some((key, _)) = nested.iter().find(|(_, set)| *set) {
        return refuse(
            &["defaults", key],
            &format!("defaults cannot hold {key}: it takes the keys of a target"),
        );
    }
    Ok(())
}

/// One target: its name checked, its block laid over `defaults` and resolved like the
/// top level, errors placed at the key where the target got it.
fn parse_target(
    name: &str,
    own: &Value,
    defaults: &Value,
    yaml: &YamlFile,
) -> Result<Target, ConfigError> {
    let at = |path: &[&str]| {
        let inherited = !path.is_empty() && !has_path(own, path) && has_path(defaults, path);
        let block: &[&str] = if inherited {
            &["defaults"]
        } else {
            &["targets", name]
        };
        let full: Vec<&str> = block.iter().chain(path).copied().collect();
        yaml.key_position(&full)
    };
    let in_target = |e: ConfigError| ConfigError {
        message: format!("target {name:?}: {}", e.message),
        ..e
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(in_target(ConfigError {
            location: at(&[]),
            message: "a target name takes only letters, digits, '.', '_' and '-' (it goes in \
                      /probe?target=NAME)"
                .into(),
        }));
    }
    for key in ["targets", "defaults"] {
        if own.get(key).is_some() {
            return Err(in_target(ConfigError {
                location: at(&[key]),
                message: format!(
                    "{key} cannot be nested: a target takes the top level's keys but targets \
                     and defaults"
                ),
            }));
        }
    }
    let file: FileConfig = serde_yaml::from_value(inherit(defaults, own)).map_err(|e| {
        in_target(ConfigError {
            location: at(&[]),
            message: e.to_string(),
        })
    })?;
    let config = resolve(&file, None, &at).map_err(in_target)?;
    let config = config.ok_or_else(|| {
        in_target(ConfigError {
            location: at(&[]),
            message: "no database configured: set database.url or database.url_file, or \
                      cinder_conf pointing at a cinder.conf with [database] connection \
                      (the environment variable applies to the top level only)"
                .into(),
        })
    })?;
    Ok(Target {
        name: name.to_string(),
        config,
    })
}

/// `own` laid over `defaults`: a key `own` sets (to anything but null) wins, mappings
/// are merged key by key, anything else is taken whole.
fn inherit(defaults: &Value, own: &Value) -> Value {
    match (defaults, own) {
        (Value::Mapping(defaults), Value::Mapping(own)) => {
            let mut merged = defaults.clone();
            for (key, value) in own {
                let value = match merged.get(key) {
                    Some(default) => inherit(default, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), value);
            }
            Value::Mapping(merged)
        }
        (defaults, Value::Null) => defaults.clone(),
        (_, own) => own.clone(),
    }
}

/// Whether `value` holds the mapping keys along `path`.
fn has_path(value: &Value, path: &[&str]) -> bool {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))
        .is_some()
}

/// Without a top-level database, a top-level setting would silently apply to nothing
/// (targets inherit from `defaults:`, never from the top level), so say where it
/// should go instead. Every key the file takes counts but `targets`, `defaults` and an
/// empty `database`, so a key added to [`FileConfig`] is covered without being listed
/// here.
fn refuse_orphan_settings(yaml: &YamlFile) -> Result<(), ConfigError> {
    let keys: serde_yaml::Mapping = yaml.parse_or_default()?;
    let orphan = keys.iter().find_map(|(key, value)| match key.as_str() {
        Some("targets" | "defaults") => None,
        Some("database") if database_is_empty(value) => None,
        Some(key) => Some(key.to_string()),
        None => None,
    });
    match orphan {
        None => Ok(()),
        Some(key) => Err(ConfigError {
            location: yaml.key_position(&[&key]),
            message: format!(
                "{key} applies to the top-level database, and none is configured (only \
                 targets); for every target, set it under defaults: (a target's own \
                 {key} overrides it)"
            ),
        }),
    }
}

/// `database:` with nothing set in it (`database:`, `database: {}`, or only nulls).
fn database_is_empty(value: &serde_yaml::Value) -> bool {
    match value {
        serde_yaml::Value::Null => true,
        serde_yaml::Value::Mapping(m) => m.values().all(serde_yaml::Value::is_null),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TWO: &str = "\
targets:
  east:
    database:
      url: mysql://u:p@east/cinder
    service_down_time: 60s
  west:
    database:
      url: mysql://u:p@west/cinder
    service_down_time: 20s
    compatibility: {openstack_exporter: true}
";

    #[test]
    fn targets_alone_leave_the_top_level_empty() {
        let setup = parse_setup(TWO, "c.yml", None).unwrap();
        assert!(setup.main.is_none());
        let names: Vec<&str> = setup.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["east", "west"]);
        let west = &setup.targets[1].config;
        assert_eq!(west.judging.service_down_time, Duration::from_secs(20));
        assert!(west.output.compatibility.openstack_exporter);
        assert!(
            !setup.targets[0]
                .config
                .output
                .compatibility
                .openstack_exporter
        );
        // The environment's URL is the top level's only.
        let setup = parse_setup(TWO, "c.yml", Some("mysql://u:p@env/cinder".into())).unwrap();
        assert!(setup.main.is_some());
    }

    fn error(text: &str) -> String {
        parse_setup(text, "c.yml", None).unwrap_err().to_string()
    }

    /// The keys serde lists in its error for an unknown key (`expected one of …`).
    fn listed_keys(error: &str) -> Vec<&str> {
        error
            .split("expected one of ")
            .nth(1)
            .expect("serde lists the keys")
            .split(", ")
            .map(|k| k.trim().trim_matches('`'))
            .collect()
    }

    /// The error `text` gives starts with `expected` (a position, then the reason).
    fn assert_error_starts(text: &str, expected: &str) {
        let error = error(text);
        assert!(error.starts_with(expected), "{error}");
    }

    #[test]
    fn errors_point_inside_the_target() {
        let stale = TWO.replace(
            "service_down_time: 20s",
            "poll_interval: 10s\n    stale_after: 5s",
        );
        assert_error_starts(&stale, "c.yml:10:5: target \"west\": stale_after");
        let both = TWO.replace("url: mysql://u:p@west/cinder", "url: x\n      url_file: /f");
        assert_error_starts(&both, "c.yml:9:7: target \"west\"");
        let none = TWO.replace("    database:\n      url: mysql://u:p@west/cinder\n", "");
        assert_error_starts(&none, "c.yml:6:3: target \"west\": no database");
        let nested = format!("{TWO}    targets: {{}}\n");
        assert_error_starts(&nested, "c.yml:11:5: target \"west\": targets cannot");
        let bad_name = TWO.replace("west:", "we st:");
        assert_error_starts(&bad_name, "c.yml:6:3: target \"we st\": a target name");
        let unknown = TWO.replace("service_down_time: 20s", "service_downtime: 20s");
        assert_error_starts(&unknown, "c.yml:9:5: ");
        let orphan = format!("service_down_time: 30s\n{TWO}");
        assert_error_starts(&orphan, "c.yml:1:1: service_down_time applies");
        assert!(error("targets: {}\n").starts_with("no database configured"));
    }

    /// A cinder.conf that is not there leaves the database "not configured yet",
    /// naming the key; one that is there but cannot be read is an error at the key.
    #[test]
    fn a_missing_cinder_conf_is_not_configured_yet_and_names_the_key() {
        let text = "poll_interval: 2s\ncinder_conf: /nonexistent/cinder.conf\n";
        let setup = parse_setup(text, "c.yml", None).unwrap();
        assert!(setup.main.is_none());
        let why = setup.unconfigured.unwrap().to_string();
        assert!(
            why.starts_with(
                "c.yml:2:1: cinder_conf names /nonexistent/cinder.conf, which does not exist"
            ) && why.contains("database: {url_file: FILE}"),
            "{why}"
        );
        // The database given another way: the line to delete is named.
        let both = format!("{text}database: {{url: 'mysql://u:p@h/cinder'}}\n");
        let why = parse_setup(&both, "c.yml", None)
            .unwrap()
            .unconfigured
            .unwrap();
        assert!(
            why.message
                .contains("given by database.url: delete the cinder_conf line"),
            "{why}"
        );
        // The rest of the file is checked all the same.
        let wrong = format!("{text}stale_after: 1s\n");
        assert_error_starts(&wrong, "c.yml:3:1: stale_after");
        // There but unreadable (a directory): an error at the key, naming the file.
        let dir = tempfile::tempdir().unwrap();
        let unreadable = format!("cinder_conf: {}\n", dir.path().display());
        let expected = format!(
            "c.yml:1:1: cinder_conf: cannot read {}: ",
            dir.path().display()
        );
        assert_error_starts(&unreadable, &expected);
    }

    #[test]
    fn top_level_keys_are_found_outside_the_targets() {
        let text = format!("{TWO}database:\n  url: mysql://u:p@top/cinder\n  url_file: /f\n");
        assert_error_starts(&text, "c.yml:13:3: database.url and");
    }

    /// Every key the file takes (as serde lists them for an unknown one) is refused at
    /// the top level when only targets are configured, but `targets` and `database`.
    #[test]
    fn every_top_level_key_is_refused_without_a_top_level_database() {
        let listed = error("no_such_key: 1\n");
        let keys = listed_keys(&listed);
        assert!(keys.len() >= 9, "{keys:?}");
        // A cinder.conf without [database] connection, so that only the key is wrong.
        let empty_conf = tempfile::NamedTempFile::new().unwrap();
        let empty_conf = empty_conf.path().display().to_string();
        for key in keys {
            if ["targets", "defaults", "database"].contains(&key) {
                continue;
            }
            let value = match key {
                "cinder_conf" => empty_conf.as_str(),
                "compatibility" => "{openstack_exporter: true}",
                _ => "30s",
            };
            let text = format!("{key}: {value}\n{TWO}");
            let message = error(&text);
            assert!(
                message.starts_with(&format!("c.yml:1:1: {key} applies to the top-level")),
                "{key}: {message}"
            );
        }
    }

    const WITH_DEFAULTS: &str = "\
defaults:
  service_down_time: 90s
  poll_interval: 5s
  compatibility: {openstack_exporter: true}
targets:
  east:
    database:
      url: mysql://u:p@east/cinder
  west:
    database:
      url: mysql://u:p@west/cinder
    service_down_time: 20s
    compatibility: {openstack_exporter: false}
";

    #[test]
    fn targets_inherit_defaults_and_override_them() {
        let setup = parse_setup(WITH_DEFAULTS, "c.yml", None).unwrap();
        assert!(setup.main.is_none());
        let (east, west) = (&setup.targets[0].config, &setup.targets[1].config);
        assert_eq!(east.judging.service_down_time, Duration::from_secs(90));
        assert_eq!(west.judging.service_down_time, Duration::from_secs(20));
        assert_eq!(east.polling.poll_interval, Duration::from_secs(5));
        assert_eq!(west.polling.poll_interval, Duration::from_secs(5));
        assert!(east.output.compatibility.openstack_exporter);
        assert!(!west.output.compatibility.openstack_exporter);
        // Defaults apply to targets only, never to a top-level database.
        let text = format!("{WITH_DEFAULTS}database:\n  url: mysql://u:p@top/cinder\n");
        let main = parse_setup(&text, "c.yml", None).unwrap().main.unwrap();
        assert_eq!(main.judging.service_down_time, Duration::from_secs(60));
        // Nor do the top level's keys apply to targets.
        let text =
            format!("service_down_time: 30s\ndatabase:\n  url: mysql://u:p@top/cinder\n{TWO}");
        let setup = parse_setup(&text, "c.yml", None).unwrap();
        assert_eq!(
            setup.main.unwrap().judging.service_down_time,
            Duration::from_secs(30)
        );
        assert_eq!(
            setup.targets[0].config.judging.service_down_time,
            Duration::from_secs(60)
        );
    }

    /// Every key a target takes but `database` (as serde lists them for an unknown
    /// one) means the same under `defaults:` as in the target itself.
    #[test]
    fn every_key_is_inherited_the_same_as_set() {
        let listed = error("no_such_key: 1\n");
        let keys = listed_keys(&listed);
        let conf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(conf.path(), "[DEFAULT]\nservice_down_time = 45\n").unwrap();
        let conf = conf.path().display().to_string();
        let target = "targets:\n  east:\n    database: {url: mysql://u:p@east/cinder}\n";
        for key in keys {
            if ["targets", "defaults", "database"].contains(&key) {
                continue;
            }
            let value = match key {
                "cinder_conf" => conf.as_str(),
                "compatibility" => "{openstack_exporter: true}",
                "poll_interval" => "3s",
                _ => "40s",
            };
            let inherited = format!("defaults:\n  {key}: {value}\n{target}");
            let own = format!("{target}    {key}: {value}\n");
            let plain = parse_setup(target, "c.yml", None).unwrap().targets;
            let inherited = parse_setup(&inherited, "c.yml", None).unwrap().targets;
            let own = parse_setup(&own, "c.yml", None).unwrap().targets;
            assert_eq!(inherited[0].config, own[0].config, "{key}");
            assert_ne!(
                inherited[0].config, plain[0].config,
                "{key} makes a difference"
            );
        }
    }

    #[test]
    fn defaults_errors_point_into_defaults() {
        // A check that fails on a defaulted key points at it in defaults:.
        let stale =
            WITH_DEFAULTS.replace("poll_interval: 5s", "poll_interval: 5s\n  stale_after: 2s");
        assert_error_starts(&stale, "c.yml:4:3: target \"east\": stale_after");
        // A value of the wrong kind, as serde reads it.
        let bad = WITH_DEFAULTS.replace("90s", "soon");
        assert_error_starts(&bad, "c.yml:2:22: ");
        let shared = WITH_DEFAULTS.replace(
            "defaults:\n",
            "defaults:\n  database: {url: mysql://u@x/c}\n",
        );
        assert_error_starts(&shared, "c.yml:2:3: defaults cannot set database");
        let nested = WITH_DEFAULTS.replace("defaults:\n", "defaults:\n  targets: {}\n");
        assert_error_starts(&nested, "c.yml:2:3: defaults cannot hold targets");
        let in_target = format!("{WITH_DEFAULTS}    defaults: {{}}\n");
        assert_error_starts(
            &in_target,
            "c.yml:14:5: target \"west\": defaults cannot be nested",
        );
        let alone = "defaults:\n  poll_interval: 5s\ndatabase:\n  url: mysql://u@x/c\n";
        assert_error_starts(alone, "c.yml:1:1: defaults applies to every target");
        // The old surprise: a top-level key beside only targets names defaults:.
        let orphan = format!("poll_interval: 5s\n{WITH_DEFAULTS}");
        let orphan = error(&orphan);
        assert!(orphan.contains("set it under defaults:"), "{orphan}");
    }
}
