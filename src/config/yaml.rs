//! Our YAML files (`--config.file`, `--web.config.file`, the simulator's fleet file)
//! read one way, so that their errors read alike: every error is one line that starts
//! `FILE:LINE:COL`, as an editor counts them, and never quotes a misplaced string value.
//!
//! Two kinds of error need a position. Those serde raises while it reads the text
//! carry the one yaml_serde knows (flow style included); the one it gives none for, a
//! second document, is placed at that document's start. Those a caller finds after
//! reading (a certificate that cannot be read, a value that fails a check) are placed
//! at their key, found by path through the YAML parser itself ([`YamlFile::key_position`]),
//! so quoted keys and flow mappings are found the way serde read them.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess};

use super::ConfigError;

/// A YAML file's text and the name its errors give it (usually its path).
#[derive(Clone, Copy, Debug)]
pub struct YamlFile<'a> {
    /// Without the byte order mark YAML allows at the start (some editors write one);
    /// it takes no column.
    text: &'a str,
    origin: &'a str,
}

impl<'a> YamlFile<'a> {
    /// The file whose `text` errors call `origin`.
    pub fn new(text: &'a str, origin: &'a str) -> YamlFile<'a> {
        YamlFile {
            text: text.strip_prefix('\u{feff}').unwrap_or(text),
            origin,
        }
    }

    /// Reads the text as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_yaml::from_str(self.text).map_err(|e| self.read_error(&e))
    }

    /// [`YamlFile::parse`], except that a file with nothing in it (blank, comments, a
    /// bare `---`) gives `T`'s defaults, as no file at all does.
    pub fn parse_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        if !has_content(self.text) {
            return Ok(T::default());
        }
        self.parse()
    }

    /// `FILE:LINE:COL` of the key at `path` (mapping keys from the top), or of the
    /// innermost key on it that the file has; the document's start if it has none.
    pub fn key_position(&self, path: &[&str]) -> String {
        let (line, column) = (1..=path.len())
            .rev()
            .find_map(|depth| self.find_key(&path[..depth]))
            .unwrap_or((1, 1));
        format!("{}:{line}:{column}", self.origin)
    }

    /// An error found after reading, placed at the key at `path` (see
    /// [`YamlFile::key_position`]).
    pub fn error_at(&self, path: &[&str], message: String) -> ConfigError {
        ConfigError {
            location: self.key_position(path),
            message,
        }
    }

    /// Where the key at `path` is, by reading the text again with a visitor that stops
    /// at it: the error it stops with carries the key's position.
    fn find_key(&self, path: &[&str]) -> Option<(usize, usize)> {
        let found = Cell::new(false);
        let seek = SeekKey {
            path,
            found: &found,
        };
        let error = seek
            .deserialize(serde_yaml::Deserializer::from_str(self.text))
            .err()?;
        let at = error.location().filter(|_| found.get())?;
        Some((at.line(), at.column()))
    }

    /// A yaml_serde error as ours: positioned, on one line, string values hidden.
    fn read_error(&self, error: &serde_yaml::Error) -> ConfigError {
        let message = hide_string_values(&error.to_string());
        let (line, column, message) = match error.location() {
            Some(at) => {
                // yaml_serde says the position after the problem; our location leads
                // with it. Any context after it (", while parsing …") stays.
                let said = format!(" at line {} column {}", at.line(), at.column());
                (at.line(), at.column(), message.replacen(&said, "", 1))
            }
            None => (unlocated_error_line(self.text), 1, message),
        };
        ConfigError {
            location: format!("{}:{line}:{column}", self.origin),
            // A key may hold a line break; the error stays one line.
            message: message.replace(['\n', '\r'], " "),
        }
    }
}

/// Whether the text holds anything but blank lines, comments and document markers.
fn has_content(text: &str) -> bool {
    text.lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---")
}

/// Where to point an error yaml_serde gives no position for. The one it raises for
/// a valid text is "more than one document": point at the second document's start.
fn unlocated_error_line(text: &str) -> usize {
    let mut content_seen = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if (trimmed.starts_with("---") || trimmed == "...") && content_seen {
            return index + 1;
        }
        content_seen |=
            !trimmed.is_empty() && !trimmed.starts_with('#') && !trimmed.starts_with("---");
    }
    1
}

/// serde quotes a misplaced string value in full (`invalid type: string "…", expected
/// …`); in our files such a value may be a database URL with its password, a password
/// hash, or by mistake a password.
/// The error says where the value is, so the value itself is left out.
fn hide_string_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let Some(start) = message.find(QUOTED) else {
        return message.to_string();
    };
    let rest = &message[start + QUOTED.len()..];
    let after = rest
        .rfind("\", expected")
        .map_or("", |end| &rest[end + 1..]);
    format!("{}a string (not shown){after}", &message[..start])
}

/// Walks the mappings along `path` and fails at its last key, setting `found`; any
/// other outcome (the key is absent, a value on the way is not a mapping) means the
/// path is not in the file.
struct SeekKey<'p> {
    path: &'p [&'p str],
    found: &'p Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for SeekKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> de::Visitor<'de> for SeekKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.path.split_first() else {
            return Ok(());
        };
        let key = MatchKey {
            key: first,
            last: rest.is_empty(),
            found: self.found,
        };
        while let Some(matched) = map.next_key_seed(key)? {
            if matched {
                let inner = SeekKey {
                    path: rest,
                    found: self.found,
                };
                map.next_value_seed(inner)?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Reads one mapping key: whether it is the one sought, failing (and setting `found`)
/// when it is the path's last.
#[derive(Clone, Copy)]
struct MatchKey<'p> {
    key: &'p str,
    last: bool,
    found: &'p Cell<bool>,
}

impl<'de> DeserializeSeed<'de> for MatchKey<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl de::Visitor<'_> for MatchKey<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<bool, E> {
        if key != self.key {
            return Ok(false);
        }
        if self.last {
            self.found.set(true);
            return Err(E::custom("the key sought"));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;
    use crate::config::parse_str;

    #[test]
    fn misplaced_string_values_are_not_echoed() {
        assert_eq!(
            hide_string_values("invalid type: string \"a\\\", expected x\", expected y"),
            "invalid type: a string (not shown), expected y"
        );
        let error = parse_str("database: mysql://u:secretpw@h/db\n", "c.yml", None)
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secretpw"), "{error}");
        assert!(error.starts_with("c.yml:1:"), "{error}");
    }

    #[test]
    fn a_byte_order_mark_is_read_and_every_error_has_a_position() {
        let plain = "poll_interval: 3s\nservice_down_time: 90s\n";
        let with_bom = format!("\u{feff}{plain}");
        let config = parse_str(&with_bom, "c.yml", Some("mysql://u@db/cinder".into())).unwrap();
        assert_eq!(config.polling.poll_interval, Duration::from_secs(3));
        assert_eq!(config.judging.service_down_time, Duration::from_secs(90));
        // Positions are as an editor shows them: the mark takes no column.
        let err = parse_str("\u{feff}poll_interval: soon\n", "c.yml", None).unwrap_err();
        assert!(err.location.starts_with("c.yml:1:"), "{err}");
        let err = parse_str("poll_interval: soon\n", "c.yml", None).unwrap_err();
        let bare = err.location.clone();
        let err = parse_str("\u{feff}poll_interval: soon\n", "c.yml", None).unwrap_err();
        assert_eq!(err.location, bare);
        // Two documents: serde_yaml gives no position; the second document's is given.
        let err =
            parse_str("poll_interval: 3s\n---\nstale_after: 1m\n", "c.yml", None).unwrap_err();
        assert_eq!(err.location, "c.yml:2:1", "{err}");
        let err = parse_str(
            "---\npoll_interval: 3s\n# note\n--- \nx: 1\n",
            "c.yml",
            None,
        )
        .unwrap_err();
        assert_eq!(err.location, "c.yml:4:1", "{err}");
    }

    #[derive(Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct File {
        database: Option<Database>,
    }

    #[derive(Deserialize, Default, Debug)]
    #[serde(deny_unknown_fields)]
    struct Database {
        url: Option<String>,
    }

    fn error(text: &str) -> ConfigError {
        YamlFile::new(text, "c.yml")
            .parse_or_default::<File>()
            .unwrap_err()
    }

    #[test]
    fn flow_style_errors_have_a_line_and_column() {
        let file: File = YamlFile::new("database: {url: x}\n", "c.yml")
            .parse()
            .unwrap();
        assert_eq!(file.database.and_then(|d| d.url).as_deref(), Some("x"));
        let err = error("database: {url: x, bogus: 1}\n");
        assert_eq!(err.location, "c.yml:1:20", "{err}");
        assert_eq!(
            err.message,
            "database: unknown field `bogus`, expected `url`"
        );
        let err = error("# flow\ndatabase: {url: x,\n  bogus: 1}\n");
        assert_eq!(err.location, "c.yml:3:3", "{err}");
        let err = error("{database: {url: [mysql://u:pw@h/db]}}\n");
        assert_eq!(err.location, "c.yml:1:18", "{err}");
        // The whole configuration in flow style, through the config's own reader.
        let err = parse_str("{database: {url: x, bogus: 1}}\n", "c.yml", None).unwrap_err();
        assert!(err.to_string().starts_with("c.yml:1:21: "), "{err}");
        // A misplaced flow value is hidden like a block one.
        let err = error("{database: mysql://u:secretpw@h/db}\n");
        assert_eq!(err.location, "c.yml:1:12", "{err}");
        assert!(!err.message.contains("secretpw"), "{err}");
    }

    #[test]
    fn syntax_errors_keep_their_context_but_not_a_second_position() {
        let err = error("database: {url: x}\n  bogus: 1\n");
        assert_eq!(err.location, "c.yml:2:3");
        assert_eq!(
            err.message,
            "did not find expected key, while parsing a block mapping"
        );
        let err = error("database:\n  url: 'a\n");
        assert_eq!(err.location, "c.yml:3:1");
        assert_eq!(
            err.message,
            "found unexpected end of stream, while scanning a quoted scalar at line 2 column 8"
        );
    }

    #[test]
    fn messages_stay_on_one_line() {
        let err = error("\"data\\nbase\": 1\n");
        assert_eq!(err.location, "c.yml:1:1");
        assert!(err.message.contains("unknown field `data base`"), "{err}");
    }

    #[test]
    fn keys_are_found_by_path_in_block_and_flow_style() {
        let text = "\u{feff}# web\ntls_server_config: {cert_file: a, \"key_file\": b}\n\
                    basic_auth_users:\n  'alice': x\n  ? bob\n  : y\n\
                    http_server_config:\n  headers:\n    X-Frame-Options: DENY\n";
        let file = YamlFile::new(text, "w.yml");
        let at = |path: &[&str]| file.key_position(path);
        assert_eq!(at(&["tls_server_config"]), "w.yml:2:1");
        assert_eq!(at(&["tls_server_config", "cert_file"]), "w.yml:2:21");
        assert_eq!(at(&["tls_server_config", "key_file"]), "w.yml:2:35");
        assert_eq!(at(&["basic_auth_users", "alice"]), "w.yml:4:3");
        assert_eq!(at(&["basic_auth_users", "bob"]), "w.yml:5:5");
        let header = ["http_server_config", "headers", "X-Frame-Options"];
        assert_eq!(at(&header), "w.yml:9:5");
        // A key the file lacks: the innermost one it has, else the document's start.
        assert_eq!(at(&["tls_server_config", "min_version"]), "w.yml:2:1");
        assert_eq!(at(&["basic_auth_users", "alice", "x"]), "w.yml:4:3");
        assert_eq!(at(&["cert_file"]), "w.yml:1:1");
        assert_eq!(at(&[]), "w.yml:1:1");
        // Keys of the same name elsewhere are not taken for it.
        let file = YamlFile::new("a:\n  url: 1\nb:\n  url: 2\n", "f");
        assert_eq!(file.key_position(&["b", "url"]), "f:4:3");
        assert_eq!(file.error_at(&["a"], "m".into()).to_string(), "f:1:1: m");
    }

    /// Syntax mistakes, each written after a prefix the reading type accepts (serde
    /// reports a type error met before a syntax error instead): every caller reports
    /// one exactly as the helper does with no type at all. The fleet file's test
    /// repeats these.
    const MISTAKES: [&str; 4] = [
        "'unterminated\n",
        "*nowhere\n",
        "ok\n\tnext: 1\n",
        "\"a\\q\"\n",
    ];

    fn as_the_helper_does(text: &str, caller: ConfigError) {
        let helper = YamlFile::new(text, "f.yml")
            .parse::<IgnoredAny>()
            .unwrap_err();
        assert!(helper.location.starts_with("f.yml:"), "{helper}");
        assert_eq!(caller, helper, "{text:?}");
    }

    #[test]
    fn the_config_and_the_web_config_report_a_mistake_alike() {
        let web = |text: &str| crate::web::parse_web_config(text, "f.yml", Path::new("/"));
        for mistake in MISTAKES {
            for bom in ["", "\u{feff}"] {
                let text = format!("{bom}database:\n  url: {mistake}");
                as_the_helper_does(&text, parse_str(&text, "f.yml", None).unwrap_err());
                let text = format!("{bom}basic_auth_users:\n  alice: {mistake}");
                as_the_helper_does(&text, web(&text).err().unwrap());
            }
        }
        // Mistakes that depend on the type are placed and hidden alike.
        let config = parse_str("database: hunter2\n", "f.yml", None).unwrap_err();
        let web_error = web("basic_auth_users: hunter2\n").err().unwrap();
        for (err, column) in [(config, 11), (web_error, 19)] {
            assert_eq!(err.location, format!("f.yml:1:{column}"));
            assert!(err.message.contains("a string (not shown)"), "{err}");
        }
        let config = parse_str("{}\n---\n{}\n", "f.yml", None).unwrap_err();
        assert_eq!(config, web("{}\n---\n{}\n").err().unwrap());
        assert_eq!(config.location, "f.yml:2:1");
    }
}
