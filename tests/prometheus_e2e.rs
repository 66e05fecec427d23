//! End to end with the real Prometheus server: it scrapes the real exporter over a real
//! MariaDB fed by the fleet simulator (one healthy service, one that stops, one whose
//! clock is skewed past the budget), loads the shipped rule file unchanged, and its
//! HTTP API must show every rule healthy and every alert expression selecting exactly
//! the expected services, with the expected cause.
//!
//! Time is scaled down: service_down_time 10 s, report_interval 1 s (skew budget 9 s),
//! heartbeats every second, Prometheus scraping and evaluating every second. The
//! alerts' `for:` durations are not waited out; promtool's unit tests cover them.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::prometheus::RULES;
use common::{wait_until, Database, Exporter, ExporterOptions, Prometheus, Schema, Simulator};

const FLEET: &str = "\
services:
  - host: healthy@lvm
    interval: 1
  - host: stopped@lvm
    interval: 1
    events:
      - {at: 2, stop: true}
  - host: skewed@lvm
    interval: 1
    skew: -15
";

#[test]
fn prometheus_with_the_shipped_rules_names_the_right_services_and_causes() {
    let db = Database::create(Schema::Cinder29);
    let _fleet = Simulator::start(&db.url(), FLEET);
    let exporter = Exporter::start(
        ExporterOptions::for_database(&db.url())
            .with_config("service_down_time: 10s\nreport_interval: 1s"),
    );
    let prometheus = Prometheus::start(&exporter.address, Duration::from_secs(1));

    // The exporter's own verdicts first: the stopped service needs service_down_time of
    // silence, the skewed one a bracketed heartbeat.
    exporter.wait_for("the causes to settle", Duration::from_secs(60), |s| {
        s.cause("healthy@lvm", "cinder-volume").as_deref() == Some("none")
            && s.cause("stopped@lvm", "cinder-volume").as_deref() == Some("heartbeat_stopped")
            && s.cause("skewed@lvm", "cinder-volume").as_deref() == Some("clock_skew")
    });
    wait_until(
        "Prometheus to scrape the exporter",
        Duration::from_secs(60),
        || {
            prometheus
                .api("/api/v1/query", &[("query", "up{job=\"cinder\"}")])
                .is_some_and(|d| d["result"][0]["value"][1] == "1")
        },
    );
    // A few evaluations of every group, after the causes have reached Prometheus.
    wait_until("the recorded causes", Duration::from_secs(60), || {
        prometheus.select("cinder:service_down:cause").len() == 2
    });
    std::thread::sleep(Duration::from_secs(3));

    // Every rule of the shipped file is loaded and evaluates without error.
    let groups = prometheus.api("/api/v1/rules", &[]).expect("rules API");
    let mut rules = BTreeMap::new();
    for group in groups["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let name = rule["name"].as_str().unwrap().to_string();
            assert_eq!(rule["health"], "ok", "{name}: {}", rule["lastError"]);
            rules.insert(
                name,
                (
                    rule["type"].as_str().unwrap().to_string(),
                    rule["query"].as_str().unwrap().to_string(),
                ),
            );
        }
    }
    let shipped = std::fs::read_to_string(common::repository().join(RULES)).unwrap();
    let shipped_count = shipped.matches("- alert:").count() + shipped.matches("- record:").count();
    assert_eq!(
        rules.len(),
        shipped_count,
        "every rule of the file is loaded"
    );

    // Each alert's expression, evaluated by Prometheus now: host -> cause.
    let stopped = ("stopped@lvm", "heartbeat_stopped");
    let skewed = ("skewed@lvm", "clock_skew");
    let expected: BTreeMap<&str, Vec<(&str, &str)>> = [
        ("CinderServiceDown", vec![stopped, skewed]),
        ("CinderServiceHeartbeatStopped", vec![stopped]),
        ("CinderServiceClockSkew", vec![("skewed@lvm", "")]),
        ("CinderServiceClockSkewNearBudget", vec![("skewed@lvm", "")]),
        ("CinderServiceHeartbeatsMissed", vec![("stopped@lvm", "")]),
        ("CinderServiceHeartbeatLate", vec![]),
        ("CinderServiceHeartbeatIntervalTooLong", vec![]),
        ("CinderServiceDownButScheduled", vec![]),
        ("CinderServiceUpButNotScheduled", vec![]),
        ("CinderServiceFlapping", vec![]),
        ("CinderServiceRecordStale", vec![]),
        ("CinderBinaryDownInZone", vec![]),
        ("CinderClusterDown", vec![]),
        ("CinderExporterDatabaseUnreachable", vec![]),
        ("CinderExporterDown", vec![]),
        ("CinderExporterAbsent", vec![]),
        ("CinderExporterClockSkew", vec![]),
    ]
    .into_iter()
    .collect();
    let alerts: BTreeSet<&str> = rules
        .iter()
        .filter(|(_, (kind, _))| kind == "alerting")
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(
        alerts,
        expected.keys().copied().collect(),
        "every shipped alert is checked here"
    );
    for (alert, services) in &expected {
        let selected = prometheus.select(&rules[*alert].1);
        let wanted: BTreeMap<String, String> = services
            .iter()
            .map(|(h, c)| (h.to_string(), c.to_string()))
            .collect();
        assert_eq!(selected, wanted, "{alert}: {}", rules[*alert].1);
    }
    eprintln!("alert expressions as Prometheus evaluates them:");
    for alert in expected.keys() {
        eprintln!("  {alert}: {:?}", prometheus.select(&rules[*alert].1));
    }
}

/// A table full of rows that differ only where a label cannot show it: NULL against ""
/// in `host` and in `binary`, one service in two zones. Prometheus must get one series
/// per label set (none dropped as a duplicate), and every service must be there.
#[test]
fn rows_that_look_alike_as_labels_reach_prometheus_as_one_series_each() {
    let db = Database::create(Schema::Cinder29);
    let row = |host: &str, binary: &str, zone: &str, age: i64| {
        format!(
            "(UTC_TIMESTAMP() - INTERVAL 1 HOUR, UTC_TIMESTAMP() - INTERVAL {age} SECOND, 0, \
             {host}, {binary}, 'cinder-volume', 3, 0, '{zone}')"
        )
    };
    let rows = [
        row("NULL", "'cinder-volume'", "nova", 1),
        row("''", "'cinder-volume'", "nova", 2),
        row("'ctl1'", "NULL", "nova", 3),
        row("''", "''", "nova", 1),
        row("'ctl1'", "''", "nova", 2),
        row("NULL", "NULL", "nova", 3),
        row("'zoned@lvm'", "'cinder-volume'", "az1", 1),
        row("'zoned@lvm'", "'cinder-volume'", "az2", 2),
        row("'plain@lvm'", "'cinder-volume'", "nova", 1),
    ];
    db.exec(&format!(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, \
         report_count, disabled, availability_zone) VALUES {}",
        rows.join(", ")
    ));
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = exporter.wait_for("the rows", Duration::from_secs(30), |s| {
        !s.find("cinder_service_up", &[]).is_empty()
    });
    // (host, binary) pairs the series show: each once.
    let expected: BTreeSet<(String, String)> = [
        ("", "cinder-volume"),
        ("ctl1", ""),
        ("", ""),
        ("zoned@lvm", "cinder-volume"),
        ("plain@lvm", "cinder-volume"),
    ]
    .iter()
    .map(|(h, b)| (h.to_string(), b.to_string()))
    .collect();
    for metric in scrape.metric_names() {
        let sets: Vec<_> = scrape
            .find(&metric, &[])
            .iter()
            .map(|s| s.labels.0.clone())
            .collect();
        let unique: BTreeSet<_> = sets.iter().collect();
        assert_eq!(unique.len(), sets.len(), "{metric}: a label set twice");
    }
    let shown: BTreeSet<(String, String)> = scrape
        .find("cinder_service_up", &[])
        .iter()
        .map(|s| {
            let label = |name| s.labels.get(name).unwrap_or("?").to_string();
            (label("host"), label("binary"))
        })
        .collect();
    assert_eq!(shown, expected);
    // Both rows up: the newest one is published (a stable choice, docs/diagnosis.md),
    // though the other heartbeated last: the zone of the 2 s old row.
    assert!(
        scrape
            .find(
                "cinder_service_up",
                &[("host", "zoned@lvm"), ("zone", "az2")]
            )
            .len()
            == 1
    );

    // Prometheus scrapes it several times and drops nothing.
    let prometheus = Prometheus::start(&exporter.address, Duration::from_secs(1));
    wait_until("five scrapes", Duration::from_secs(60), || {
        prometheus
            .api(
                "/api/v1/query",
                &[("query", "count_over_time(up{job=\"cinder\"}[1m]) >= 5")],
            )
            .is_some_and(|d| d["result"].as_array().is_some_and(|r| r.len() == 1))
    });
    let scalar = |expr: &str| -> f64 {
        let data = prometheus
            .api("/api/v1/query", &[("query", expr)])
            .unwrap_or_else(|| panic!("query failed: {expr}"));
        data["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{expr}: {data}"))
    };
    // Prometheus' own counter of samples it dropped as duplicates, from its /metrics.
    let own = ureq::get(&format!("http://{}/metrics", prometheus.address))
        .call()
        .expect("Prometheus' /metrics")
        .body_mut()
        .read_to_string()
        .expect("body");
    let duplicates = own
        .lines()
        .find_map(|l| l.strip_prefix("prometheus_target_scrapes_sample_duplicate_timestamp_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(duplicates, Some(0.0));
    assert_eq!(scalar("count(cinder_service_up)"), expected.len() as f64);
    assert_eq!(scalar("min(up{job=\"cinder\"})"), 1.0);
    // Each collision was logged once, however many polls saw it.
    let log = exporter.log();
    assert_eq!(
        log.matches("show as one series").count(),
        4,
        "one line per colliding set of rows:\n{log}"
    );
}
