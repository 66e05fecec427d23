//! The early warning and the cluster verdicts end to end, at cinder's real time scale:
//! the fleet simulator heartbeats into a real MariaDB every 10 s, the exporter polls
//! every second (service_down_time 60 s, report_interval 10 s), and a real Prometheus
//! scrapes and evaluates the shipped rule file, unchanged, every 2 s.
//!
//! One service stops. CinderServiceHeartbeatsMissed must fire for it after two of its
//! heartbeats are missed and before cinder shows it down, measured against the
//! heartbeat the simulator last logged, and never for the healthy, skewed, slower or
//! jittery services. The firing instant is the timestamp Prometheus wrote on its first
//! `ALERTS{alertstate="firing"}` sample, so the check compares what really happened,
//! not wall-clock speed: a loaded machine delays both sides alike.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, Database, Exporter, ExporterOptions, Schema};
use serde_json::Value;

/// cinder's defaults; the simulated services heartbeat at their own pace.
const SERVICE_DOWN_TIME: f64 = 60.0;
const REPORT_INTERVAL: f64 = 10.0;

const FLEET: &str = "\
services:
  - host: healthy@lvm
    interval: 10
  - host: stops@lvm
    interval: 10
    events:
      - {at: 45, stop: true}
  - host: behind@lvm
    interval: 10
    skew: -40
  - host: ahead@lvm
    interval: 10
    skew: 90
  - host: slow@lvm
    interval: 25
  - host: jitter@lvm
    interval: 10
    jitter: 2
";

/// The simulator with its debug log, which records every heartbeat it writes. (The
/// shared helper runs it at `info`, without them.)
struct LoggedSimulator {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl LoggedSimulator {
    fn start(database_url: &str, fleet: &str) -> LoggedSimulator {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yml");
        std::fs::write(&path, fleet).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cinder_fleet_sim"))
            .arg("--database-url")
            .arg(database_url)
            .arg("--fleet")
            .arg(&path)
            .env_remove("CINDER_FLEET_SIM_DATABASE_URL")
            .env("RUST_LOG", "debug,mysql_async=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cinder_fleet_sim");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = ready_tx.send(());
                }
            }
        });
        assert!(
            ready_rx.recv_timeout(Duration::from_secs(30)).is_ok(),
            "simulator not ready"
        );
        LoggedSimulator {
            child,
            log,
            _dir: dir,
        }
    }

    /// `(logged at, report_count)` of every heartbeat `host` wrote, in order. The log
    /// line is written once the UPDATE has returned: the heartbeat was visible then.
    fn heartbeats(&self, host: &str) -> Vec<(f64, i64)> {
        let host_field = format!("host={host}");
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&host_field) && l.contains(" heartbeat "))
            .filter_map(|line| {
                let stamp = line.split_whitespace().next()?;
                let at = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
                let count = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("report_count="))?
                    .parse()
                    .ok()?;
                Some((at.timestamp_micros() as f64 / 1e6, count))
            })
            .collect()
    }
}

impl Drop for LoggedSimulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = self.log.lock().unwrap();
            let tail = log.len().saturating_sub(200);
            eprintln!("cinder_fleet_sim log (tail):\n{}", log[tail..].join("\n"));
        }
    }
}

/// Prometheus scraping the exporter and evaluating the shipped rules every 2 s.
struct Prometheus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(exporter_address: &str) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let rules = common::repository().join("alerts/cinder-exporter.rules.yml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 2s\n  evaluation_interval: 2s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: cinder\n    static_configs:\n      - targets: ['{exporter_address}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (scripts/test installs it)");
        Prometheus {
            child,
            address,
            _dir: dir,
        }
    }

    fn query(&self, expr: &str) -> Vec<Value> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let body = agent
            .get(&format!("http://{}/api/v1/query", self.address))
            .query("query", expr)
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok());
        let value: Value = body
            .and_then(|b| serde_json::from_str(&b).ok())
            .unwrap_or(Value::Null);
        value["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn hosts(&self, expr: &str, label: &str) -> BTreeSet<String> {
        self.query(expr)
            .iter()
            .filter_map(|s| s["metric"][label].as_str().map(str::to_string))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn heartbeats_missed_fires_before_cinder_shows_the_service_down_and_only_for_it() {
    let db = Database::create(Schema::Cinder29);
    let fleet = LoggedSimulator::start(&db.url(), FLEET);
    // Clusters: c1@lvm (healthy and slow) stays up; c2@lvm (stops alone) goes down.
    // The simulator's heartbeats write only report_count and updated_at.
    db.exec(
        "UPDATE services SET cluster_name = 'c1@lvm' WHERE host IN ('healthy@lvm', 'slow@lvm')",
    );
    db.exec("UPDATE services SET cluster_name = 'c2@lvm' WHERE host = 'stops@lvm'");
    let exporter = Exporter::start(ExporterOptions {
        config: Some(format!(
            "database:\n  url: {}\npoll_interval: 1s\nservice_down_time: {SERVICE_DOWN_TIME}s\n\
             report_interval: {REPORT_INTERVAL}s\n",
            db.url()
        )),
        env: Vec::new(),
        args: Vec::new(),
    });
    let prometheus = Prometheus::start(&exporter.address);

    let missed = "ALERTS{alertname=\"CinderServiceHeartbeatsMissed\"}";
    wait_until(
        "CinderServiceHeartbeatsMissed to fire",
        Duration::from_secs(150),
        || !prometheus.hosts(missed, "host").is_empty(),
    );
    // Keep watching until cinder itself shows the service down, so that the quiet
    // services are watched through the whole silence.
    exporter.wait_for(
        "cinder to show stops@lvm down",
        Duration::from_secs(90),
        |s| s.value("cinder_service_up", &[("host", "stops@lvm")]) == Some(0.0),
    );
    std::thread::sleep(Duration::from_secs(4)); // two more evaluations

    // Only the stopped service ever raised it (no `for:`, so never pending either).
    let fired: BTreeSet<String> = prometheus
        .query(&format!("{missed}[10m]"))
        .iter()
        .filter_map(|s| s["metric"]["host"].as_str().map(str::to_string))
        .collect();
    assert_eq!(fired, BTreeSet::from(["stops@lvm".to_string()]));

    // When it fired, against the heartbeat the simulator really wrote last.
    let beats = fleet.heartbeats("stops@lvm");
    let &(last_beat, last_count) = beats.last().expect("heartbeats of stops@lvm in the log");
    let stored: i64 = db.query_one("SELECT report_count FROM services WHERE host = 'stops@lvm'");
    assert_eq!(
        stored, last_count,
        "the log's last heartbeat is the table's"
    );
    let stored_stamp: i64 =
        db.query_one("SELECT TIMESTAMPDIFF(SECOND, '1970-01-01', updated_at) FROM services WHERE host = 'stops@lvm'");
    let series = prometheus.query(
        "ALERTS{alertname=\"CinderServiceHeartbeatsMissed\",alertstate=\"firing\",host=\"stops@lvm\"}[10m]",
    );
    let first_firing = series[0]["values"][0][0].as_f64().expect("a firing sample");
    let delay = first_firing - last_beat;
    // cinder-api shows it down once now - updated_at (whole seconds) > service_down_time.
    let cinder_down = stored_stamp as f64 + SERVICE_DOWN_TIME;
    eprintln!(
        "CinderServiceHeartbeatsMissed fired {delay:.1} s after the last heartbeat of stops@lvm \
         (report_count {last_count}); cinder showed it down {:.1} s after it",
        cinder_down - last_beat
    );
    assert!(
        delay >= 2.0 * REPORT_INTERVAL,
        "fired {delay:.1} s after the last heartbeat: before two heartbeats were due"
    );
    assert!(
        first_firing < cinder_down,
        "fired {delay:.1} s after the last heartbeat, not before cinder's down at {:.1} s",
        cinder_down - last_beat
    );
    let alerts = prometheus.query(&format!("{missed} == 1"));
    assert!(!alerts.is_empty(), "still firing while the service is down");

    // Clusters as cinder judges them, in the exporter and in the shipped alert.
    let scrape = exporter.scrape();
    let cluster = |metric: &str, name: &str| scrape.value(metric, &[("cluster", name)]);
    assert_eq!(cluster("cinder_cluster_up", "c1@lvm"), Some(1.0));
    assert_eq!(cluster("cinder_cluster_services", "c1@lvm"), Some(2.0));
    assert_eq!(cluster("cinder_cluster_services_up", "c1@lvm"), Some(2.0));
    assert_eq!(cluster("cinder_cluster_up", "c2@lvm"), Some(0.0));
    assert_eq!(cluster("cinder_cluster_services_up", "c2@lvm"), Some(0.0));
    let rules = prometheus_rule_query(&prometheus, "CinderClusterDown");
    wait_until(
        "CinderClusterDown's expression",
        Duration::from_secs(20),
        || prometheus.hosts(&rules, "cluster") == BTreeSet::from(["c2@lvm".to_string()]),
    );
}

/// The expression of a shipped alert, as Prometheus loaded it.
fn prometheus_rule_query(prometheus: &Prometheus, alert: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let body = agent
        .get(&format!("http://{}/api/v1/rules", prometheus.address))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let value: Value = serde_json::from_str(&body).unwrap();
    value["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .find(|r| r["name"] == alert)
        .and_then(|r| r["query"].as_str())
        .unwrap_or_else(|| panic!("{alert} is not loaded"))
        .to_string()
}
