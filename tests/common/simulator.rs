//! `cinder_fleet_sim` as a child process (killed on drop), and the heartbeats it
//! actually wrote, read back from its debug log: what the diagnosis tests hold the
//! exporter's figures against, instead of the nominal figures of the fleet file that
//! a busy machine can push the simulator past.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::host::poll_until;

/// How long the simulator may take to create its rows.
const SIMULATOR_START: Duration = Duration::from_secs(20);

/// Its log filter: the `heartbeat` event, which carries each saved heartbeat's count
/// and stamp, is at debug level.
const LOG_FILTER: &str = "info,cinder_fleet_sim=debug";

/// One heartbeat the simulator saved, as its log reports it.
#[derive(Clone, Copy, Debug)]
pub struct Heartbeat {
    /// `report_count` written.
    pub count: i64,
    /// `updated_at` written: the service's clock in unix seconds, before the database
    /// truncates it to whole seconds.
    pub stamp: f64,
    /// The service's clock skew when it took the stamp.
    pub skew: f64,
    /// When the save had returned (the log line's time), in unix seconds: the
    /// heartbeat was visible then.
    pub logged_at: f64,
    /// Seconds from the stamp until [`logged_at`](Self::logged_at): an upper bound on
    /// how long the heartbeat took to become visible.
    pub latency: f64,
    /// The scripted change (clock step, resume, new interval) this heartbeat follows
    /// most recently, numbered from 1 in the order of the log; 0 before any.
    pub change: usize,
    /// What that change was: the event's log message (`clock stepped`, `resumed`,
    /// `report interval changed`); empty before any.
    pub change_kind: &'static str,
}

/// The simulator's log messages for scripted changes to a service's pace or clock.
const CHANGES: [&str; 3] = ["clock stepped", "resumed", "report interval changed"];

/// `cinder_fleet_sim` as a child process, killed on drop.
pub struct Simulator {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _fleet: tempfile::TempDir,
}

impl Simulator {
    /// Starts the fleet described by `fleet` (YAML) against the database at
    /// `database_url` and waits until every service's row exists.
    pub fn start(database_url: &str, fleet: &str) -> Simulator {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fleet.yml");
        std::fs::write(&path, fleet).expect("write fleet file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cinder_fleet_sim"))
            .arg("--database-url")
            .arg(database_url)
            .arg("--fleet")
            .arg(&path)
            .env_remove("CINDER_FLEET_SIM_DATABASE_URL")
            .env("RUST_LOG", LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cinder_fleet_sim");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = ready_tx.send(());
                }
            }
        });
        let simulator = Simulator {
            child,
            log,
            _fleet: dir,
        };
        if ready_rx.recv_timeout(SIMULATOR_START).is_err() {
            panic!(
                "cinder_fleet_sim did not print ready; log:\n{}",
                simulator.log()
            );
        }
        simulator
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Every heartbeat `host` has saved so far, in order.
    pub fn heartbeats(&self, host: &str) -> Vec<Heartbeat> {
        let log = self.log.lock().unwrap();
        parse_heartbeats(log.iter().map(String::as_str), host)
    }

    /// Every heartbeat `host` has saved, once the log holds the one that wrote
    /// `count` (the log line follows the commit by a moment, so an exporter may see a
    /// heartbeat first).
    pub fn heartbeats_through(&self, host: &str, count: i64) -> Vec<Heartbeat> {
        poll_until(Duration::from_secs(10), || {
            let beats = self.heartbeats(host);
            if count <= 0 || beats.last().is_some_and(|b| b.count >= count) {
                return Ok(beats);
            }
            Err(format!(
                "cinder_fleet_sim never logged heartbeat {count} of {host}; log:\n{}",
                self.log()
            ))
        })
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("cinder_fleet_sim log:\n{}", self.log());
        }
    }
}

/// The heartbeats of `host` in a log of tracing's default format, e.g.
/// `2026-01-01T00:00:01.000123Z DEBUG service{index=0 host=a@lvm binary=cinder-volume}:
/// heartbeat run=1 row_id=1 report_count=1 updated_at=2026-01-01 00:00:01.000001 …`.
/// The skew of each is the one, among those the service announced (at start and at
/// each clock step), that its stamp shows.
fn parse_heartbeats<'a>(lines: impl Iterator<Item = &'a str>, host: &str) -> Vec<Heartbeat> {
    let tag = format!(" host={host} ");
    let mut skews: Vec<f64> = Vec::new();
    let mut beats = Vec::new();
    let (mut change, mut change_kind) = (0, "");
    for line in lines.filter(|l| l.contains(&tag)) {
        let Some((_, event)) = line.split_once("}: ") else {
            continue;
        };
        let fields = fields(event);
        if let Some(kind) = CHANGES.iter().find(|c| event.starts_with(**c)) {
            change += 1;
            change_kind = kind;
        }
        if event.starts_with("service started") {
            skews.extend(fields.get("skew").and_then(|s| s.parse::<f64>().ok()));
        } else if event.starts_with("clock stepped") {
            skews.extend(fields.get("to").and_then(|s| s.parse::<f64>().ok()));
        } else if event.starts_with("heartbeat ") {
            let logged_at = line.split_whitespace().next().and_then(|t| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| t.timestamp_micros() as f64 / 1e6)
            });
            let stamp = fields.get("updated_at").and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                    .ok()
                    .map(|t| t.and_utc().timestamp_micros() as f64 / 1e6)
            });
            let count = fields.get("report_count").and_then(|c| c.parse().ok());
            let (Some(logged_at), Some(stamp), Some(count)) = (logged_at, stamp, count) else {
                panic!("unreadable heartbeat line: {line}");
            };
            let shown = stamp - logged_at;
            let skew = skews
                .iter()
                .copied()
                .min_by(|a, b| (a - shown).abs().total_cmp(&(b - shown).abs()))
                .unwrap_or_else(|| panic!("{host}: a heartbeat before the start: {line}"));
            beats.push(Heartbeat {
                count,
                stamp,
                skew,
                logged_at,
                latency: logged_at - (stamp - skew),
                change,
                change_kind,
            });
        }
    }
    beats
}

/// The `name=value` fields of a log event; `updated_at`'s value holds a space.
fn fields(event: &str) -> BTreeMap<&str, &str> {
    let mut fields = BTreeMap::new();
    let mut rest = event;
    while let Some(eq) = rest.find('=') {
        let name = rest[..eq].rsplit(' ').next().unwrap_or("");
        let after = &rest[eq + 1..];
        let words = if name == "updated_at" { 2 } else { 1 };
        let end = after
            .match_indices(' ')
            .nth(words - 1)
            .map_or(after.len(), |(i, _)| i);
        fields.insert(name, &after[..end]);
        rest = &after[end..];
    }
    fields
}
