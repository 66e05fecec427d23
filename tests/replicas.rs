//! Two replicas, one truth: two exporter processes reading the same database publish
//! the same verdicts and the same diagnosis, so a load balancer in front of both never
//! makes a scrape see a different fleet (docs/operations.md, "Several replicas").
//!
//! `cinder_fleet_sim` writes heartbeats into a real MariaDB with clocks the test knows;
//! two real exporters poll it on their own schedules. Pairs of scrapes, one from each,
//! taken back to back, are held against each other and against what really happened
//! (the heartbeats the simulator logs it wrote), never against a wall clock:
//!
//! - the verdicts and the cause are the same, and those the fleet was built to have.
//!   Two replicas can legitimately disagree only about a service whose age crosses its
//!   threshold between the two scrapes; the fleet is built so that none comes near one
//!   (every age stays under 4 s or over 15 s against a service_down_time of 5 s);
//! - the ages of a heartbeat both saw differ by the time between the scrapes, within
//!   the two polls' durations (each reads the database clock somewhere in its poll);
//! - each interval is Δupdated_at / Δreport_count of heartbeats really written, and the
//!   two differ by no more than their stated resolution (one second over each window);
//! - each clock-offset bound holds the true skew (give or take the measured write
//!   latency), so the two bounds overlap.
//!
//! Time is scaled as in tests/diagnosis.rs: heartbeats every second, polls every 200 ms.

mod common;

use std::time::{Duration, Instant};

use common::simulator::Heartbeat;
use common::{Database, Exporter, ExporterOptions, Schema, Scrape, Simulator};

const FLEET: &str = "services:
  - {host: steady@lvm, interval: 1}
  - {host: behind@lvm, skew: -120, interval: 1}
  - {host: ahead@lvm, skew: 120, interval: 1}
  - {host: off@lvm, interval: 1, disabled: true}
  - host: stops@lvm
    interval: 1
    events: [{at: 6.5, stop: true}]
";

/// (host, true skew, cinder-api up, scheduler up, cause): what the fleet is built to show
/// once the stopped service has been silent for 15 s.
const EXPECTED: [(&str, f64, bool, bool, &str); 5] = [
    ("steady@lvm", 0.0, true, true, "none"),
    ("behind@lvm", -120.0, false, false, "clock_skew"),
    // Ahead by more than service_down_time: down for cinder-api, up for the scheduler.
    ("ahead@lvm", 120.0, false, true, "clock_skew"),
    ("off@lvm", 0.0, true, true, "none"),
    ("stops@lvm", 0.0, false, false, "heartbeat_stopped"),
];

const SERVICE_DOWN_TIME: f64 = 5.0;

/// How many pairs of scrapes are compared, 300 ms apart.
const PAIRS: usize = 10;

fn exporter(db: &Database) -> Exporter {
    Exporter::start(ExporterOptions::with_yaml(&format!(
        "database:\n  url: {}\npoll_interval: 200ms\nservice_down_time: {SERVICE_DOWN_TIME}s\n\
         report_interval: 1s\n",
        db.url()
    )))
}

/// One replica's view of one service in one scrape.
#[derive(Clone, Debug, PartialEq)]
struct View {
    up: bool,
    scheduler_up: bool,
    enabled: bool,
    cause: String,
    age: f64,
    reports: i64,
    interval: Option<f64>,
    offset: Option<(f64, f64)>,
}

impl View {
    fn read(scrape: &Scrape, host: &str) -> Option<View> {
        let value = |metric: &str| scrape.value(metric, &[("host", host)]);
        Some(View {
            up: value("cinder_service_up")? == 1.0,
            scheduler_up: value("cinder_service_scheduler_up")? == 1.0,
            enabled: value("cinder_service_enabled")? == 1.0,
            cause: scrape.cause(host, "cinder-volume")?,
            age: value("cinder_service_heartbeat_age_seconds")?,
            reports: value("cinder_service_reports_total")? as i64,
            interval: value("cinder_service_heartbeat_interval_seconds"),
            offset: value("cinder_service_clock_offset_seconds")
                .zip(value("cinder_service_clock_offset_uncertainty_seconds")),
        })
    }
}

/// Two scrapes back to back, one from each replica, with the instants around them.
struct Pair {
    a: Scrape,
    b: Scrape,
    /// From the start of A's request to the end of B's: B was served later than A by
    /// at most this (and at least nothing, B being asked once A has answered).
    gap_most: f64,
}

fn pair(a: &Exporter, b: &Exporter) -> Pair {
    let before_a = Instant::now();
    let scrape_a = a.scrape();
    let scrape_b = b.scrape();
    Pair {
        a: scrape_a,
        b: scrape_b,
        gap_most: before_a.elapsed().as_secs_f64(),
    }
}

/// Whether `interval` is Δupdated_at / Δreport_count of two heartbeats really written
/// on one clock, the later one `latest`: the largest such Δreport_count (the window
/// it was measured over), or `None`.
fn explaining_window(interval: f64, latest: i64, beats: &[Heartbeat]) -> Option<i64> {
    let last = beats.iter().find(|b| b.count == latest)?;
    beats
        .iter()
        .filter(|b| b.count < latest && b.skew == last.skew)
        .filter(|b| {
            let mean = (last.stamp.floor() - b.stamp.floor()) / (latest - b.count) as f64;
            (mean - interval).abs() < 1e-6
        })
        .map(|b| latest - b.count)
        .max()
}

#[test]
fn two_replicas_on_one_database_publish_the_same_fleet() {
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(&db.url(), FLEET);
    let (a, b) = (exporter(&db), exporter(&db));
    // Until both show every service as built, the stopped one silent for long enough
    // that no age is near the threshold, and every running one with an interval.
    let settled = |scrape: &Scrape| {
        EXPECTED.iter().all(|(host, _, up, scheduler_up, cause)| {
            View::read(scrape, host).is_some_and(|v| {
                v.up == *up
                    && v.scheduler_up == *scheduler_up
                    && v.cause == *cause
                    && v.interval.is_some()
                    && (*host != "stops@lvm" || v.age > 3.0 * SERVICE_DOWN_TIME)
            })
        })
    };
    a.wait_for("replica A to settle", Duration::from_secs(90), settled);
    b.wait_for("replica B to settle", Duration::from_secs(30), settled);

    for round in 0..PAIRS {
        let pair = pair(&a, &b);
        for (host, skew, up, scheduler_up, cause) in EXPECTED {
            let (va, vb) = (
                View::read(&pair.a, host).expect("A shows it"),
                View::read(&pair.b, host).expect("B shows it"),
            );
            if round + 1 == PAIRS {
                eprintln!("REPLICAS | {host:<11} | A {va:?}\nREPLICAS | {host:<11} | B {vb:?}");
            }
            // The same verdicts, and the true ones.
            for v in [&va, &vb] {
                assert_eq!(
                    (v.up, v.scheduler_up, v.cause.as_str(), v.enabled),
                    (up, scheduler_up, cause, host != "off@lvm"),
                    "{host}, pair {round}:\nA {va:?}\nB {vb:?}"
                );
                assert!(
                    v.age.abs() < SERVICE_DOWN_TIME - 1.0 || v.age.abs() > 3.0 * SERVICE_DOWN_TIME,
                    "{host}: age {} is near the threshold, the fleet is not as built",
                    v.age
                );
            }
            check_ages(host, &pair, &va, &vb);
            let beats = fleet.heartbeats_through(host, va.reports.max(vb.reports));
            check_intervals(host, &va, &vb, &beats);
            check_offsets(host, skew, &va, &vb, &beats);
        }
        // Spread the pairs over several heartbeats and polls of each replica.
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The ages of one heartbeat seen by both differ by the time between the scrapes,
/// within the polls' durations: each replica reads the database clock once per poll,
/// somewhere within it, and moves it on by its own monotonic clock.
fn check_ages(host: &str, pair: &Pair, va: &View, vb: &View) {
    if va.reports != vb.reports {
        return; // a heartbeat landed between the two polls: the ages are of two stamps
    }
    let polls = pair.a.poll_duration() + pair.b.poll_duration();
    let moved = vb.age - va.age;
    assert!(
        moved >= -polls - 0.01 && moved <= pair.gap_most + polls + 0.01,
        "{host}: B's age moved {moved:.3} s from A's, scraped at most {:.3} s apart (polls \
         took {polls:.3} s)\nA {va:?}\nB {vb:?}",
        pair.gap_most
    );
}

/// Each interval is one really written; the two differ by no more than their stated
/// resolution, a second of stamp truncation over each one's window.
fn check_intervals(host: &str, va: &View, vb: &View, beats: &[Heartbeat]) {
    let (Some(ia), Some(ib)) = (va.interval, vb.interval) else {
        panic!("{host}: an interval is missing\nA {va:?}\nB {vb:?}");
    };
    let window = |interval, reports| {
        explaining_window(interval, reports, beats).unwrap_or_else(|| {
            panic!(
                "{host}: interval {interval} is no Δupdated_at/Δreport_count of heartbeats \
                 written up to {reports}"
            )
        })
    };
    let (wa, wb) = (window(ia, va.reports), window(ib, vb.reports));
    let resolution = 1.0 / wa as f64 + 1.0 / wb as f64;
    assert!(
        (ia - ib).abs() <= resolution + 1e-9,
        "{host}: intervals {ia} (over {wa}) and {ib} (over {wb}) differ by more than {resolution}"
    );
}

/// Each bound holds the true skew, give or take how long heartbeats took to be
/// written (the estimator's stated error beyond its bound), so the two overlap.
fn check_offsets(host: &str, skew: f64, va: &View, vb: &View, beats: &[Heartbeat]) {
    let latency = beats.iter().map(|b| b.latency).fold(0.0, f64::max);
    let bounds: Vec<(f64, f64)> = [va.offset, vb.offset].into_iter().flatten().collect();
    for (estimate, uncertainty) in &bounds {
        assert!(
            (estimate - skew).abs() <= uncertainty + latency,
            "{host}: offset {estimate:.3} ± {uncertainty:.3} misses the true {skew} by more \
             than the {latency:.3} s heartbeats took to be written"
        );
    }
    if let [(ea, ua), (eb, ub)] = bounds[..] {
        assert!(
            (ea - eb).abs() <= ua + ub + 2.0 * latency,
            "{host}: the replicas' bounds {ea:.3} ± {ua:.3} and {eb:.3} ± {ub:.3} do not overlap"
        );
    }
}
