//! The early warning and the cluster verdicts end to end, at cinder's real time scale:
//! the fleet simulator heartbeats into a real MariaDB every 10 s, the exporter polls
//! every second (service_down_time 60 s, report_interval 10 s), and a real Prometheus
//! scrapes and evaluates the shipped rule file, unchanged, every 2 s.
//!
//! One service stops. CinderServiceHeartbeatsMissed must fire for it after two of its
//! heartbeats are missed and before cinder shows it down, measured against the
//! heartbeat the simulator last logged, and never for the healthy, skewed or slower
//! services, nor for those healthy but irregular: jitter, one slow report_state (a
//! long gap, then a short one), a slow run every third, slow restarts; none of their
//! gaps exceeds twice their interval. The firing instant is the timestamp Prometheus wrote on its first
//! `ALERTS{alertstate="firing"}` sample, so the check compares what really happened,
//! not wall-clock speed: a loaded machine delays both sides alike.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{wait_until, Database, Exporter, ExporterOptions, Prometheus, Schema, Simulator};

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
  - host: slowonce@lvm
    interval: 10
    events:
      - {at: 30, slow: 8}
      - {at: 70, slow: 9}
  - host: slowevery@lvm
    interval: 10
    slow_every: 3
    slow_by: 9
  - host: restarts@lvm
    interval: 10
    events:
      - {at: 25, restart: 8}
      - {at: 65, restart: 8}
";

#[test]
fn heartbeats_missed_fires_before_cinder_shows_the_service_down_and_only_for_it() {
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(&db.url(), FLEET);
    // Clusters: c1@lvm (healthy and slow) stays up; c2@lvm (stops alone) goes down.
    // slow@lvm spells c1@lvm as cinder's collation (utf8mb3_general_ci) matches it:
    // case and trailing spaces aside. The simulator's heartbeats write only
    // report_count and updated_at.
    db.exec("UPDATE services SET cluster_name = 'c1@lvm' WHERE host = 'healthy@lvm'");
    db.exec("UPDATE services SET cluster_name = 'C1@LVM  ' WHERE host = 'slow@lvm'");
    db.exec("UPDATE services SET cluster_name = 'c2@lvm' WHERE host = 'stops@lvm'");
    let exporter = Exporter::start(ExporterOptions::with_yaml(&format!(
        "database:\n  url: {}\npoll_interval: 1s\nservice_down_time: {SERVICE_DOWN_TIME}s\n\
         report_interval: {REPORT_INTERVAL}s\n",
        db.url()
    )));
    let prometheus = Prometheus::start(&exporter.address, Duration::from_secs(2));

    let missed = "ALERTS{alertname=\"CinderServiceHeartbeatsMissed\"}";
    wait_until(
        "CinderServiceHeartbeatsMissed to fire",
        Duration::from_secs(150),
        || !prometheus.label_values(missed, "host").is_empty(),
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
    let fired = prometheus.label_values(&format!("{missed}[10m]"), "host");
    assert_eq!(fired, BTreeSet::from(["stops@lvm".to_string()]));

    // When it fired, against the heartbeat the simulator really wrote last.
    let beats = fleet.heartbeats("stops@lvm");
    let last = beats.last().expect("heartbeats of stops@lvm in the log");
    let (last_beat, last_count) = (last.logged_at, last.count);
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
    let scrape = exporter.scrape();
    let interval = scrape
        .value(
            "cinder_service_heartbeat_interval_seconds",
            &[("host", "stops@lvm")],
        )
        .expect("the interval of stops@lvm");
    eprintln!(
        "CinderServiceHeartbeatsMissed fired {delay:.1} s after the last heartbeat of stops@lvm \
         (report_count {last_count}, observed interval {interval:.3} s); cinder showed it down \
         {:.1} s after it",
        cinder_down - last_beat
    );
    // By construction: 2.5 observed intervals of silence, counted from the poll that
    // saw the heartbeat (at most a poll after it), then at most a poll, a scrape and
    // an evaluation (1 + 1 + 2 + 2 s): 31 s at an interval of 10 s, 30 s once the
    // phases are at most a second behind.
    let bound = 2.5 * interval + 1.0 + 1.0 + 2.0 + 2.0;
    assert!(
        delay <= bound,
        "fired {delay:.1} s after the last heartbeat, later than the {bound:.1} s of its construction"
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
    let rules = prometheus.rule_query("CinderClusterDown");
    wait_until(
        "CinderClusterDown's expression",
        Duration::from_secs(20),
        || prometheus.label_values(&rules, "cluster") == BTreeSet::from(["c2@lvm".to_string()]),
    );
}
