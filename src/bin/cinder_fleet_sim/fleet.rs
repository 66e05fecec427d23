//! The fleet file: which cinder services to simulate, how each one's clock and
//! heartbeat behave, and the timed changes (clock steps, stops, resumes, new
//! intervals, one slow report_state, a restart) that tests script against them.
//!
//! Everything is checked while serde reads the YAML, so that every error carries the
//! position serde_yaml knows and the path of the offending key. The file is read as
//! the exporter reads its own ([`YamlFile`]: `FILE:LINE:COL`, misplaced string values
//! not shown); the error then also names the service's host, which is what a reader
//! looks for.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use cinder_exporter::config::{ConfigError, YamlFile};
use serde::de::{self, Deserializer};
use serde::Deserialize;

/// Longest text the `services` table's `varchar(255)` columns hold; MariaDB in strict
/// mode would refuse the INSERT, so say it here, with a position, instead.
const MAX_TEXT: usize = 255;

/// A parsed and validated fleet file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The simulated services, in file order (the order of the log and of row creation).
    pub services: Vec<ServiceSpec>,
}

/// One simulated cinder service process, as the fleet file describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// `host` column: `node@backend` for cinder-volume, a plain node name otherwise.
    pub host: String,
    /// `binary` column, also written as `topic` (cinder's topic is the binary name).
    pub binary: String,
    /// `availability_zone` column.
    pub zone: String,
    /// Service clock minus true UTC clock, seconds; may be negative.
    pub skew: f64,
    /// Seconds between report_state runs (cinder's `report_interval`).
    pub interval: f64,
    /// Each wait is moved by a uniform random amount in `[-jitter, +jitter]` seconds.
    pub jitter: f64,
    /// `disabled` column at first start.
    pub disabled: bool,
    /// `disabled_reason` column at first start.
    pub disabled_reason: Option<String>,
    /// Every Nth report_state (counting from 1) is slow; 0 means none is.
    pub slow_every: u64,
    /// How long a slow report_state spends between loading and saving the row, seconds.
    pub slow_by: f64,
    /// Seconds after the simulator starts before this service starts.
    pub start: f64,
    /// Timed changes, in the order they take effect.
    pub events: Vec<Event>,
}

/// One timed change to a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the simulator started.
    pub at: f64,
    /// What changes then.
    pub change: Change,
}

/// What an [`Event`] changes; a fleet file event sets exactly one of these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// The service's clock is stepped: its skew becomes this many seconds.
    Skew(f64),
    /// The service stops heartbeating (a hung or killed process): no writes at all.
    Stop,
    /// A stopped service goes on heartbeating with the same row.
    Resume,
    /// The service's report interval becomes this many seconds.
    Interval(f64),
    /// The next report_state spends this many seconds between loading and saving
    /// the row (one slow run; `slow_every` makes them periodic).
    Slow(f64),
    /// Right after its next report_state, the process restarts: it is down for this
    /// many seconds, then starts again with its row, and heartbeats one interval
    /// later, as at start.
    Restart(f64),
}

/// Reads and validates the fleet file at `path`.
pub fn load(path: &Path) -> Result<Fleet, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        location: shown.clone(),
        message: format!("cannot read fleet file: {e}"),
    })?;
    parse(&text, &shown)
}

/// Parses fleet file `text`; `shown` is the file name errors start with.
pub fn parse(text: &str, shown: &str) -> Result<Fleet, ConfigError> {
    YamlFile::new(text, shown).parse().map_err(|e| ConfigError {
        message: name_the_host(text, &e.message),
        ..e
    })
}

/// serde_yaml prefixes messages with the key's path (`services[2].interval: …`); the
/// index alone is hard to find in a long file, so add that service's host after it.
fn name_the_host(text: &str, message: &str) -> String {
    let Some(rest) = message.strip_prefix("services[") else {
        return message.to_string();
    };
    let Some((index, after)) = rest.split_once(']') else {
        return message.to_string();
    };
    let Ok(index) = index.parse::<usize>() else {
        return message.to_string();
    };
    // A second, untyped read: the typed one stopped at the error.
    let host = serde_yaml::from_str::<serde_yaml::Value>(text)
        .ok()
        .and_then(|doc| {
            doc.get("services")?
                .get(index)?
                .get("host")?
                .as_str()
                .map(str::to_string)
        });
    match host {
        Some(host) => format!("services[{index}] (host {host:?}){after}"),
        None => message.to_string(),
    }
}

/// The service mapping as written; [`ServiceSpec`] adds the checks that involve more
/// than one key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    #[serde(deserialize_with = "nonempty_text")]
    host: String,
    #[serde(default = "default_binary", deserialize_with = "nonempty_text")]
    binary: String,
    #[serde(default = "default_zone", deserialize_with = "text")]
    zone: String,
    #[serde(default, deserialize_with = "finite_seconds")]
    skew: f64,
    #[serde(default = "default_interval", deserialize_with = "positive_seconds")]
    interval: f64,
    #[serde(default, deserialize_with = "non_negative_seconds")]
    jitter: f64,
    #[serde(default)]
    disabled: bool,
    #[serde(default, deserialize_with = "optional_text")]
    disabled_reason: Option<String>,
    #[serde(default)]
    slow_every: u64,
    #[serde(default, deserialize_with = "non_negative_seconds")]
    slow_by: f64,
    #[serde(default, deserialize_with = "non_negative_seconds")]
    start: f64,
    #[serde(default)]
    events: Vec<Event>,
}

fn default_binary() -> String {
    "cinder-volume".to_string()
}

fn default_zone() -> String {
    "nova".to_string()
}

fn default_interval() -> f64 {
    10.0
}

impl TryFrom<RawService> for ServiceSpec {
    type Error = String;

    fn try_from(raw: RawService) -> Result<ServiceSpec, String> {
        // A process that does not exist yet cannot be stopped or resumed: reject it
        // rather than guess whether its row should appear.
        if let Some((i, e)) =
            raw.events.iter().enumerate().find(|(_, e)| {
                matches!(e.change, Change::Stop | Change::Resume) && e.at < raw.start
            })
        {
            return Err(format!(
                "events[{i}]: {} at {} s is before the service starts (start: {} s)",
                if e.change == Change::Stop {
                    "stop"
                } else {
                    "resume"
                },
                e.at,
                raw.start
            ));
        }
        let mut events = raw.events;
        // Stable: events at the same second apply in file order.
        events.sort_by(|a, b| a.at.total_cmp(&b.at));
        Ok(ServiceSpec {
            host: raw.host,
            binary: raw.binary,
            zone: raw.zone,
            skew: raw.skew,
            interval: raw.interval,
            jitter: raw.jitter,
            disabled: raw.disabled,
            disabled_reason: raw.disabled_reason,
            slow_every: raw.slow_every,
            slow_by: raw.slow_by,
            start: raw.start,
            events,
        })
    }
}

/// The event mapping as written: every key optional, so that "sets nothing" and
/// "sets two things" can be told apart and reported.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    #[serde(deserialize_with = "non_negative_seconds")]
    at: f64,
    #[serde(default, deserialize_with = "some_finite_seconds")]
    skew: Option<f64>,
    #[serde(default)]
    stop: Option<bool>,
    #[serde(default)]
    resume: Option<bool>,
    #[serde(default, deserialize_with = "some_positive_seconds")]
    interval: Option<f64>,
    #[serde(default, deserialize_with = "some_non_negative_seconds")]
    slow: Option<f64>,
    #[serde(default, deserialize_with = "some_non_negative_seconds")]
    restart: Option<f64>,
}

impl TryFrom<RawEvent> for Event {
    type Error = String;

    fn try_from(raw: RawEvent) -> Result<Event, String> {
        let mut set = Vec::new();
        if let Some(skew) = raw.skew {
            set.push(("skew", Change::Skew(skew)));
        }
        match raw.stop {
            Some(true) => set.push(("stop", Change::Stop)),
            Some(false) => return Err("stop: only `stop: true` is meaningful".into()),
            None => {}
        }
        match raw.resume {
            Some(true) => set.push(("resume", Change::Resume)),
            Some(false) => return Err("resume: only `resume: true` is meaningful".into()),
            None => {}
        }
        if let Some(interval) = raw.interval {
            set.push(("interval", Change::Interval(interval)));
        }
        if let Some(seconds) = raw.slow {
            set.push(("slow", Change::Slow(seconds)));
        }
        if let Some(downtime) = raw.restart {
            set.push(("restart", Change::Restart(downtime)));
        }
        match set.as_slice() {
            [(_, change)] => Ok(Event {
                at: raw.at,
                change: *change,
            }),
            [] => Err(format!(
                "the event at {} s sets nothing; set exactly one of skew, stop, resume, interval, slow, restart",
                raw.at
            )),
            several => Err(format!(
                "the event at {} s sets {}; set exactly one of skew, stop, resume, interval, slow, restart \
                 (write two events for two changes)",
                raw.at,
                several
                    .iter()
                    .map(|(key, _)| *key)
                    .collect::<Vec<_>>()
                    .join(" and ")
            )),
        }
    }
}

/// Which numbers of seconds a key accepts.
#[derive(Clone, Copy)]
enum Range {
    /// Any finite number (a clock skew).
    Any,
    NonNegative,
    Positive,
}

/// Checks a number while serde_yaml still holds the scalar: an error raised here gets
/// the scalar's own line, column and key path, one raised after it returns would get
/// only the enclosing mapping's.
struct SecondsVisitor(Range);

impl de::Visitor<'_> for SecondsVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds")
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<f64, E> {
        if !value.is_finite() {
            return Err(E::custom(format!("{value} is not a number of seconds")));
        }
        match self.0 {
            Range::NonNegative if value < 0.0 => {
                Err(E::custom(format!("must not be negative, got {value}")))
            }
            Range::Positive if value <= 0.0 => {
                Err(E::custom(format!("must be greater than 0, got {value}")))
            }
            _ => Ok(value),
        }
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<f64, E> {
        self.visit_f64(value as f64)
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<f64, E> {
        self.visit_f64(value as f64)
    }
}

fn finite_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(SecondsVisitor(Range::Any))
}

fn non_negative_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(SecondsVisitor(Range::NonNegative))
}

fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_f64(SecondsVisitor(Range::Positive))
}

fn some_finite_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    finite_seconds(d).map(Some)
}

fn some_positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    positive_seconds(d).map(Some)
}

fn some_non_negative_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    non_negative_seconds(d).map(Some)
}

/// Checks text for a `varchar(255)` column, in the scalar (see [`SecondsVisitor`]);
/// `nonempty` for keys cinder cannot do without (`host`, `binary`). A YAML null is
/// accepted only where `nullable`.
struct TextVisitor {
    nonempty: bool,
    nullable: bool,
}

impl<'de> de::Visitor<'de> for TextVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.nullable {
            "a string or null"
        } else {
            "a string"
        })
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Option<String>, E> {
        let length = value.chars().count();
        if length > MAX_TEXT {
            return Err(E::custom(format!(
                "is {length} characters long; the services table holds at most {MAX_TEXT}"
            )));
        }
        if self.nonempty && value.is_empty() {
            return Err(E::custom("must not be empty"));
        }
        Ok(Some(value.to_string()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<String>, E> {
        if self.nullable {
            Ok(None)
        } else {
            Err(E::invalid_type(de::Unexpected::Option, &self))
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_str(self)
    }
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let visitor = TextVisitor {
        nonempty: false,
        nullable: false,
    };
    d.deserialize_str(visitor).map(Option::unwrap_or_default)
}

fn nonempty_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let visitor = TextVisitor {
        nonempty: true,
        nullable: false,
    };
    d.deserialize_str(visitor).map(Option::unwrap_or_default)
}

fn optional_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let visitor = TextVisitor {
        nonempty: false,
        nullable: true,
    };
    d.deserialize_option(visitor)
}

/// Deserializes a mapping as `R` and converts it with `T::try_from` *inside* the
/// mapping's visitor, so that a failed cross-key check is reported at the mapping's
/// position and path (`services[0].events[2]`), not its parent's.
struct CheckedMap<R, T>(PhantomData<(R, T)>);

impl<'de, R, T> de::Visitor<'de> for CheckedMap<R, T>
where
    R: Deserialize<'de>,
    T: TryFrom<R, Error = String>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        let raw = R::deserialize(de::value::MapAccessDeserializer::new(map))?;
        T::try_from(raw).map_err(de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for ServiceSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::<RawService, ServiceSpec>(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(CheckedMap::<RawEvent, Event>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(text, "fleet.yaml").unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let fleet = parse("services:\n  - host: ctl1@lvm\n", "fleet.yaml").unwrap();
        assert_eq!(
            fleet.services,
            vec![ServiceSpec {
                host: "ctl1@lvm".into(),
                binary: "cinder-volume".into(),
                zone: "nova".into(),
                skew: 0.0,
                interval: 10.0,
                jitter: 0.0,
                disabled: false,
                disabled_reason: None,
                slow_every: 0,
                slow_by: 0.0,
                start: 0.0,
                events: vec![],
            }]
        );
    }

    #[test]
    fn full_service_and_events_in_time_order() {
        let text = "\
services:
  - host: ctl1@lvm
    binary: cinder-backup
    zone: az2
    skew: -45.5
    interval: 1
    jitter: 0.25
    disabled: true
    disabled_reason: \"maintenance: it's \\\"off\\\"\"
    slow_every: 3
    slow_by: 2.5
    start: 1
    events:
      - {at: 40, resume: true}
      - {at: 10, skew: 30}
      - {at: 20, stop: true}
      - {at: 50, interval: 4}
      - {at: 50, skew: 0}
      - {at: 60, slow: 8}
      - {at: 70, restart: 9.5}
";
        let s = &parse(text, "f").unwrap().services[0];
        assert_eq!(s.binary, "cinder-backup");
        assert_eq!(s.zone, "az2");
        assert_eq!(s.skew, -45.5);
        assert_eq!(s.interval, 1.0);
        assert_eq!(s.jitter, 0.25);
        assert!(s.disabled);
        assert_eq!(
            s.disabled_reason.as_deref(),
            Some("maintenance: it's \"off\"")
        );
        assert_eq!((s.slow_every, s.slow_by, s.start), (3, 2.5, 1.0));
        let changes: Vec<(f64, Change)> = s.events.iter().map(|e| (e.at, e.change)).collect();
        assert_eq!(
            changes,
            vec![
                (10.0, Change::Skew(30.0)),
                (20.0, Change::Stop),
                (40.0, Change::Resume),
                (50.0, Change::Interval(4.0)),
                (50.0, Change::Skew(0.0)),
                (60.0, Change::Slow(8.0)),
                (70.0, Change::Restart(9.5)),
            ]
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_position_and_host() {
        let err = error("services:\n  - host: ctl1@lvm\n    intervall: 5\n");
        assert!(err.starts_with("fleet.yaml:3:5: "), "{err}");
        assert!(err.contains("services[0] (host \"ctl1@lvm\")"), "{err}");
        assert!(err.contains("unknown field `intervall`"), "{err}");

        let err = error("services: []\nservice: []\n");
        assert!(err.starts_with("fleet.yaml:2:1: "), "{err}");
        assert!(err.contains("unknown field `service`"), "{err}");

        let err = error("services:\n  - host: a\n    events:\n      - {at: 1, step: 3}\n");
        assert!(err.starts_with("fleet.yaml:4:"), "{err}");
        assert!(err.contains("unknown field `step`"), "{err}");
    }

    #[test]
    fn bad_values_name_service_key_and_position() {
        let text = "services:\n  - host: a\n  - host: ctl2@ceph\n    interval: 0\n";
        let err = error(text);
        assert!(err.starts_with("fleet.yaml:4:15: "), "{err}");
        assert!(
            err.contains("services[1] (host \"ctl2@ceph\").interval: must be greater than 0"),
            "{err}"
        );

        let err = error("services:\n  - host: a\n    jitter: -1\n");
        assert!(err.starts_with("fleet.yaml:3:13: "), "{err}");
        assert!(err.contains("jitter: must not be negative"), "{err}");

        // skew alone may be negative.
        assert!(parse("services:\n  - {host: a, skew: -300}\n", "f").is_ok());

        let err = error("services:\n  - host: a\n    start: -2\n");
        assert!(err.contains("start: must not be negative"), "{err}");
        let err = error("services:\n  - host: a\n    interval: .nan\n");
        assert!(
            err.contains("interval: NaN is not a number of seconds"),
            "{err}"
        );
        let err = error("services:\n  - host: \"\"\n");
        assert!(err.contains("host: must not be empty"), "{err}");
        let err = error("services:\n  - zone: nova\n");
        assert!(err.contains("missing field `host`"), "{err}");
        let err = error("services:\n  - host: a\n    interval: ten\n");
        assert!(err.starts_with("fleet.yaml:3:15: "), "{err}");
        let long = "x".repeat(256);
        let err = error(&format!("services:\n  - host: {long}\n"));
        assert!(err.contains("at most 255"), "{err}");
    }

    #[test]
    fn events_set_exactly_one_thing() {
        let two =
            "services:\n  - host: ctl1@lvm\n    events:\n      - {at: 10, skew: 30, stop: true}\n";
        let err = error(two);
        assert!(err.starts_with("fleet.yaml:4:"), "{err}");
        assert!(
            err.contains(
                "services[0] (host \"ctl1@lvm\").events[0]: the event at 10 s sets skew and stop"
            ),
            "{err}"
        );
        let none = "services:\n  - host: a\n    events:\n      - {at: 10}\n";
        assert!(error(none).contains("sets nothing"));
        let no_at = "services:\n  - host: a\n    events:\n      - {stop: true}\n";
        assert!(error(no_at).contains("missing field `at`"));
        let negative = "services:\n  - host: a\n    events:\n      - {at: -1, stop: true}\n";
        assert!(error(negative).contains("events[0].at: must not be negative"));
        let false_stop = "services:\n  - host: a\n    events:\n      - {at: 1, stop: false}\n";
        assert!(error(false_stop).contains("only `stop: true`"));
        let zero_interval = "services:\n  - host: a\n    events:\n      - {at: 1, interval: 0}\n";
        assert!(error(zero_interval).contains("events[0].interval: must be greater than 0"));
        let early =
            "services:\n  - host: a\n    start: 5\n    events:\n      - {at: 1, stop: true}\n";
        let err = error(early);
        assert!(err.contains("services[0] (host \"a\")"), "{err}");
        assert!(
            err.contains("events[0]: stop at 1 s is before the service starts"),
            "{err}"
        );
    }

    #[test]
    fn errors_read_as_the_exporters_own() {
        // The syntax mistakes of cinder_exporter's config::yaml tests, reported exactly
        // as the helper the config and the web config use reports them.
        for mistake in [
            "'unterminated\n",
            "*nowhere\n",
            "ok\n\tnext: 1\n",
            "\"a\\q\"\n",
        ] {
            for bom in ["", "\u{feff}"] {
                let text = format!("{bom}services:\n  - host: {mistake}");
                let helper = YamlFile::new(&text, "f.yml")
                    .parse::<de::IgnoredAny>()
                    .unwrap_err();
                assert_eq!(parse(&text, "f.yml").unwrap_err(), helper, "{text:?}");
            }
        }
        // A misplaced string is not shown; flow style and a second document have a
        // line and column; a byte order mark takes none.
        let err = error("services: hunter2\n");
        assert!(err.starts_with("fleet.yaml:1:11: "), "{err}");
        assert!(err.contains("a string (not shown)") && !err.contains("hunter2"));
        let err = error("services: [{host: a, intervall: 5}]\n");
        assert!(err.starts_with("fleet.yaml:1:22: "), "{err}");
        assert!(err.contains("services[0] (host \"a\")"), "{err}");
        let err = error("\u{feff}services: []\n---\nservices: []\n");
        assert!(err.starts_with("fleet.yaml:2:1: "), "{err}");
        let err = error("\u{feff}services:\n  - host: a\n    jitter: -1\n");
        assert!(err.starts_with("fleet.yaml:3:13: "), "{err}");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = error("services:\n  - host: [a\n");
        assert!(err.starts_with("fleet.yaml:"), "{err}");
        assert!(
            err.split(':').nth(1).unwrap().parse::<u32>().is_ok(),
            "{err}"
        );
    }
}
