//! The heartbeat diagnosis end to end: `cinder_fleet_sim` writes heartbeats into a real
//! MariaDB as cinder's report_state does, with clocks the test knows, and the exporter's
//! published clock offset, heartbeat interval and down cause are held against that truth.
//!
//! The truth is what really happened, never the fleet file's nominal figures, which a
//! busy machine pushes the simulator past: the heartbeats the simulator logs it saved
//! (count, stamp, the clock that took it, how long it took to be written; see
//! `common::simulator`) and the polls' reference times the exporter publishes. Each
//! figure is checked against the estimator's own stated bound on that truth
//! (src/cinder/diagnosis.rs): the interval is Δupdated_at / Δreport_count of stamps
//! really written on one clock; the offset lies within its uncertainty, give or take
//! the measured write latency; the uncertainty is no wider than the newest bracket of
//! the polls as they really ran.
//!
//! Time is scaled down where only ratios matter: heartbeats every 1 s instead of 10 s,
//! polls every 200 ms, and a `service_down_time` of 3 s or 6 s where a service has to
//! stop, be late or be watched from a fresh start. Clock skews cannot be scaled:
//! `updated_at` keeps whole seconds, so a skew is seen to whole-second resolution
//! whatever the time scale. The skew scenarios therefore keep real skews (-45, +55, -70,
//! +120 s) against cinder's real `service_down_time` of 60 s.
//!
//! Every scenario prints a table row per service, prefixed `DIAG` (`cargo test --test
//! diagnosis -- --nocapture`): true skew, final estimate and uncertainty, `excess` (the
//! worst |estimate − truth| − uncertainty over every scrape; negative means the bound
//! always held), `hb` (heartbeats, counted by `cinder_service_reports_total`, until the
//! bound was within ±1.5 s), `rs` (restarts of the estimate: the bound widening),
//! observed and nominal interval, and the causes seen, in order.

mod common;

use std::collections::BTreeMap;
use std::sync::Once;
use std::time::{Duration, Instant};

use common::simulator::Heartbeat;
use common::{Database, Exporter, ExporterOptions, Schema, Scrape, Simulator};

/// The precision the issue asks for: the bound within ±1.5 s.
const PRECISION: f64 = 1.5;

/// Allowance on one bracket's half-width for the rounding of the published figures.
const BRACKET_SLACK: f64 = 0.1;

const START: Duration = Duration::from_secs(20);

/// An exporter with the given poll interval and thresholds (YAML durations).
fn exporter(db: &Database, poll: &str, service_down_time: &str, report_interval: &str) -> Exporter {
    Exporter::start(ExporterOptions {
        config: Some(format!(
            "database:\n  url: {}\npoll_interval: {poll}\nservice_down_time: {service_down_time}\n\
             report_interval: {report_interval}\n",
            db.url()
        )),
        env: Vec::new(),
        args: Vec::new(),
    })
}

/// What one scrape says about one service.
#[derive(Clone, Debug)]
struct Point {
    reports: f64,
    /// Signed heartbeat age, database clock (now) minus `updated_at`.
    age: f64,
    /// The reference (database) time of the poll this scrape shows.
    reference: f64,
    /// `updated_at` as the exporter read it, unix seconds.
    stamp: i64,
    up: bool,
    scheduler_up: bool,
    interval: Option<f64>,
    /// Estimate and uncertainty.
    offset: Option<(f64, f64)>,
    cause: String,
}

impl Point {
    fn read(scrape: &Scrape, host: &str) -> Option<Point> {
        let value = |metric: &str| scrape.value(metric, &[("host", host)]);
        let offset = value("cinder_service_clock_offset_seconds");
        let uncertainty = value("cinder_service_clock_offset_uncertainty_seconds");
        assert_eq!(
            offset.is_some(),
            uncertainty.is_some(),
            "{host}: offset and uncertainty come together"
        );
        // The exporter publishes its clock at the poll and its offset from the
        // database's; their difference is the poll's reference time.
        let reference = scrape.value(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            &[],
        )? - scrape.value("cinder_exporter_database_clock_offset_seconds", &[])?;
        Some(Point {
            reports: value("cinder_service_reports_total")?,
            age: value("cinder_service_heartbeat_age_seconds")?,
            reference,
            stamp: value("cinder_service_last_heartbeat_timestamp_seconds")?.round() as i64,
            up: value("cinder_service_up")? == 1.0,
            scheduler_up: value("cinder_service_scheduler_up")? == 1.0,
            interval: value("cinder_service_heartbeat_interval_seconds"),
            offset: offset.zip(uncertainty),
            cause: scrape.cause(host, "cinder-volume")?,
        })
    }
}

/// One exporter's view of some services, scrape after scrape.
struct Watch<'a> {
    exporter: &'a Exporter,
    /// Per host, every scrape that showed it, oldest first.
    tracks: BTreeMap<&'static str, Vec<Point>>,
}

impl<'a> Watch<'a> {
    fn new(exporter: &'a Exporter, hosts: &[&'static str]) -> Watch<'a> {
        Watch {
            exporter,
            tracks: hosts.iter().map(|h| (*h, Vec::new())).collect(),
        }
    }

    fn track(&self, host: &str) -> &[Point] {
        &self.tracks[host]
    }

    /// Heartbeats this exporter has seen the service make since it first saw it.
    fn heartbeats(&self, host: &str) -> f64 {
        let track = self.track(host);
        match (track.first(), track.last()) {
            (Some(first), Some(last)) => last.reports - first.reports,
            _ => 0.0,
        }
    }

    fn last(&self, host: &str) -> &Point {
        self.track(host).last().expect("seen at least once")
    }
}

/// Scrapes every watch about ten times a second until `done` holds; panics after
/// `timeout` naming `what`.
fn record(watches: &mut [Watch], what: &str, timeout: Duration, done: impl Fn(&[Watch]) -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        for watch in watches.iter_mut() {
            let scrape = watch.exporter.scrape();
            for (host, track) in watch.tracks.iter_mut() {
                if let Some(point) = Point::read(&scrape, host) {
                    track.push(point);
                }
            }
        }
        if done(watches) {
            return;
        }
        if Instant::now() > deadline {
            let last: Vec<String> = watches
                .iter()
                .flat_map(|w| {
                    w.tracks
                        .iter()
                        .map(|(h, t)| format!("{h}: {} scrapes, last {:?}", t.len(), t.last()))
                })
                .collect();
            panic!("timed out waiting for {what}:\n{}", last.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The causes a track went through, repeats collapsed: `[none, heartbeat_stopped]`.
fn causes(track: &[Point]) -> Vec<&str> {
    let mut seen: Vec<&str> = Vec::new();
    for point in track {
        if seen.last() != Some(&point.cause.as_str()) {
            seen.push(&point.cause);
        }
    }
    seen
}

/// What the simulator really wrote for one service: its heartbeats, from its log.
/// The tests hold the exporter's figures against these, never against the nominal
/// figures of the fleet file, which a busy machine can push the simulator past.
struct Truth {
    beats: Vec<Heartbeat>,
}

impl Truth {
    /// The heartbeats of `host`, through the latest one `track` saw.
    fn read(fleet: &Simulator, host: &str, track: &[Point]) -> Truth {
        let latest = track.iter().map(|p| p.reports as i64).max().unwrap_or(0);
        Truth {
            beats: fleet.heartbeats_through(host, latest),
        }
    }

    fn beat(&self, count: i64) -> Option<&Heartbeat> {
        self.beats.iter().find(|b| b.count == count)
    }

    /// The clock skew that wrote heartbeat `count`; the row's creation (count 0, not
    /// a heartbeat) was on the first heartbeat's clock.
    fn skew(&self, count: i64) -> f64 {
        self.beat(count)
            .or(self.beats.first())
            .map(|b| b.skew)
            .expect("a heartbeat was written")
    }

    /// The longest any heartbeat up to `count` took from its stamp to being visible:
    /// the estimator's stated error beyond its bound (it assumes the stamp is taken
    /// when the heartbeat becomes visible).
    fn latency(&self, count: i64) -> f64 {
        self.beats
            .iter()
            .filter(|b| b.count <= count)
            .map(|b| b.latency)
            .fold(0.0, f64::max)
    }

    /// The earliest heartbeat the estimator's interval window may still hold at
    /// heartbeat `count`, given the scripted changes before it: a clock step restarts
    /// it from the first heartbeat after the step, a new interval from the gap that
    /// spans the change (src/cinder/heartbeat_interval.rs); a stop and resume does not
    /// restart it (the silence is left out).
    fn window_start(&self, count: i64) -> i64 {
        let Some(beat) = self.beat(count).filter(|b| b.change > 0) else {
            return 0;
        };
        let before = self.beats.iter().rev().find(|b| b.change < beat.change);
        let after = self.beats.iter().find(|b| b.change == beat.change);
        match (beat.change_kind, before, after) {
            ("report interval changed", Some(before), _) => before.count,
            ("resumed", _, _) => 0,
            (_, _, Some(after)) => after.count,
            _ => 0,
        }
    }
}

/// Checks every published offset against the clock that really wrote the latest
/// heartbeat; the bound may be off by the time heartbeats took to be written, as
/// measured, and no more. Returns the worst excess of the error over the stated
/// uncertainty (negative: always inside).
fn check_offsets(host: &str, track: &[Point], truth: &Truth) -> f64 {
    let mut worst = f64::NEG_INFINITY;
    for (i, point) in track.iter().enumerate() {
        let Some((estimate, uncertainty)) = point.offset else {
            continue;
        };
        let count = point.reports as i64;
        let (skew, latency) = (truth.skew(count), truth.latency(count));
        let excess = (estimate - skew).abs() - uncertainty;
        assert!(
            excess <= latency,
            "{host}, scrape {i}: offset {estimate:.3} ± {uncertainty:.3} misses the true {skew} \
             by {excess:.3} s, more than the {latency:.3} s heartbeats took to be written\n{point:?}"
        );
        worst = worst.max(excess);
    }
    worst
}

/// Checks every published interval against the heartbeats really written. By the
/// estimator's definition it is Σ Δupdated_at / Σ Δreport_count, on the whole-second
/// stamps the database kept, over the gaps from an earlier heartbeat on the same clock
/// to the latest, leaving out the silences (gaps over 2.5 times it plus a second); at
/// the last scrape that earlier one must also be no older than the scripted changes
/// allow ([`Truth::window_start`]). The stamps the exporter read must be those the
/// simulator wrote.
fn check_intervals(host: &str, track: &[Point], truth: &Truth) {
    let mut stamps = BTreeMap::new();
    for point in track {
        let count = point.reports as i64;
        if let Some(beat) = truth.beat(count) {
            assert_eq!(
                point.stamp,
                beat.stamp.floor() as i64,
                "{host}: updated_at of heartbeat {count}\n{point:?}"
            );
        }
        stamps.insert(count, point.stamp);
    }
    for beat in &truth.beats {
        stamps
            .entry(beat.count)
            .or_insert(beat.stamp.floor() as i64);
    }
    assert!(
        track.last().is_some_and(|p| p.interval.is_some()),
        "{host}: no interval published"
    );
    let last = track.len() - 1;
    for (i, point) in track.iter().enumerate() {
        let Some(interval) = point.interval else {
            continue;
        };
        let latest = point.reports as i64;
        let earliest = if i == last {
            truth.window_start(latest)
        } else {
            0
        };
        let explained = stamps.range(earliest..latest).any(|(&count, _)| {
            let beats: Vec<(i64, i64)> = stamps
                .range(count..=latest)
                .map(|(c, s)| (*c, *s))
                .collect();
            let (seconds, counted) = beats
                .windows(2)
                .map(|w| (w[1].1 - w[0].1, w[1].0 - w[0].0))
                .filter(|(seconds, counted)| {
                    *seconds as f64 / *counted as f64 <= 2.5 * interval + 1.0
                })
                .fold((0, 0), |(s, c), (ds, dc)| (s + ds, c + dc));
            let pace = seconds as f64 / counted as f64;
            counted > 0 && truth.skew(count) == truth.skew(latest) && (pace - interval).abs() < 1e-6
        });
        assert!(
            explained,
            "{host}, scrape {i}: interval {interval:.3} is no Δupdated_at/Δreport_count of \
             the heartbeats written on one clock from {earliest} to {latest}; stamps by \
             count: {stamps:?}\n{point:?}"
        );
    }
}

/// Heartbeats until the first scrape in `points` whose bound was within [`PRECISION`],
/// counted from `before` (the last scrape before them), or else from the exporter's
/// first sight of the service: one heartbeat before `points[0]` if that one already
/// shows a bracketed heartbeat.
fn heartbeats_to_precision(before: Option<&Point>, points: &[Point]) -> Option<f64> {
    let base = match before {
        Some(point) => point.reports,
        None => points[0].reports - if points[0].offset.is_some() { 1.0 } else { 0.0 },
    };
    points
        .iter()
        .find(|p| p.offset.is_some_and(|(_, u)| u <= PRECISION))
        .map(|p| p.reports - base)
}

/// Half the width of the latest heartbeat's bracket as the polls really ran: the
/// heartbeat fell after the last poll that had not seen it and no later than the first
/// that had, and its stamp keeps whole seconds. Intersecting brackets only narrows the
/// bound, so the published uncertainty is at most this. A poll the test's scrapes
/// missed only widens it. `None` when the test never saw the service before it.
fn newest_bracket(track: &[Point], i: usize) -> Option<f64> {
    let count = track[i].reports;
    let first = track[..=i].iter().position(|p| p.reports == count)?;
    let before = track[..first].iter().rev().find(|p| p.reports < count)?;
    Some((track[first].reference - before.reference + 1.0) / 2.0)
}

/// The bound the issue asks for at scrape `i`: [`PRECISION`], unless the polls really
/// ran further apart than allows it (a busy machine).
fn precision_at(track: &[Point], i: usize) -> f64 {
    newest_bracket(track, i).map_or(PRECISION, |half| PRECISION.max(half + BRACKET_SLACK))
}

fn assert_final_precision(host: &str, track: &[Point], i: usize) {
    let (_, uncertainty) = track[i]
        .offset
        .unwrap_or_else(|| panic!("{host}: no offset published"));
    let allowed = precision_at(track, i);
    assert!(
        uncertainty <= allowed,
        "{host}: uncertainty still {uncertainty:.3} s (allowed {allowed:.3} s)"
    );
}

/// How often the bound widened from one scrape to the next: a restart of the
/// estimate, which should happen only on a clock step.
fn widenings(track: &[Point]) -> usize {
    track
        .windows(2)
        .filter(|w| match (w[0].offset, w[1].offset) {
            (Some((_, before)), Some((_, after))) => after > before + 0.05,
            _ => false,
        })
        .count()
}

/// One row of the figures table.
struct Row<'a> {
    scenario: &'a str,
    settings: &'a str,
    host: &'a str,
    truth: f64,
    offset: Option<(f64, f64)>,
    /// Worst `|estimate - truth| - uncertainty` over the run.
    worst_excess: f64,
    heartbeats: Option<f64>,
    /// Restarts of the estimate seen (see [`widenings`]).
    restarts: usize,
    interval: Option<f64>,
    true_interval: f64,
    causes: String,
}

fn print_row(row: &Row) {
    static HEADER: Once = Once::new();
    HEADER.call_once(|| {
        eprintln!(
            "DIAG | {:<16} | {:<32} | {:<18} | {:>6} | {:>8} | {:>5} | {:>6} | {:>3} | {:>2} | {:>13} | causes",
            "scenario", "settings", "service", "skew", "estimate", "±", "excess", "hb", "rs", "interval obs/true"
        );
    });
    let (estimate, uncertainty) = match row.offset {
        Some((e, u)) => (format!("{e:.2}"), format!("{u:.2}")),
        None => ("-".into(), "-".into()),
    };
    let excess = if row.worst_excess.is_finite() {
        format!("{:.2}", row.worst_excess)
    } else {
        "-".into()
    };
    eprintln!(
        "DIAG | {:<16} | {:<32} | {:<18} | {:>6.1} | {:>8} | {:>5} | {:>6} | {:>3} | {:>2} | {:>6} / {:<4} | {}",
        row.scenario,
        row.settings,
        row.host,
        row.truth,
        estimate,
        uncertainty,
        excess,
        row.heartbeats.map_or("-".into(), |h| format!("{h}")),
        row.restarts,
        row.interval.map_or("-".into(), |i| format!("{i:.2}")),
        row.true_interval,
        row.causes
    );
}

/// Skews of -45, +55, -70 and +120 s against service_down_time 60 s, each heartbeating
/// every second, plus one whose clock is stepped from 0 to +55 to -70 s mid-run.
#[test]
fn clock_skews_and_a_stepped_clock() {
    const SETTINGS: &str = "poll 200ms, down 60s, hb 1s";
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(
        &db.url(),
        "services:
  - {host: behind45@lvm, skew: -45, interval: 1}
  - {host: ahead55@lvm, skew: 55, interval: 1}
  - {host: behind70@lvm, skew: -70, interval: 1}
  - {host: ahead120@lvm, skew: 120, interval: 1}
  - {host: jittered@lvm, skew: -45.3, interval: 1, jitter: 0.1}
  - host: stepped@lvm
    interval: 1
    events: [{at: 6.5, skew: 55}, {at: 13.5, skew: -70}]
",
    );
    let exporter = exporter(&db, "200ms", "60s", "1s");
    // (host, true skew, API up, scheduler up, cause)
    let steady: [(&str, f64, bool, bool, &str); 5] = [
        ("behind45@lvm", -45.0, true, true, "none"),
        ("ahead55@lvm", 55.0, true, true, "none"),
        ("behind70@lvm", -70.0, false, false, "clock_skew"),
        // Over service_down_time ahead: down for the operator, up for the scheduler.
        ("ahead120@lvm", 120.0, false, true, "clock_skew"),
        ("jittered@lvm", -45.3, true, true, "none"),
    ];
    let mut hosts: Vec<&'static str> = steady.iter().map(|s| s.0).collect();
    hosts.push("stepped@lvm");
    let mut watches = [Watch::new(&exporter, &hosts)];
    record(
        &mut watches,
        "18 heartbeats of every service",
        Duration::from_secs(60),
        |w| hosts.iter().all(|h| w[0].heartbeats(h) >= 18.0),
    );
    let watch = &watches[0];

    for (host, skew, up, scheduler_up, cause) in steady {
        let track = watch.track(host);
        let truth = Truth::read(&fleet, host, track);
        assert!(
            truth.beats.iter().all(|b| b.skew == skew),
            "{host}: the fleet file's skew"
        );
        let worst = check_offsets(host, track, &truth);
        check_intervals(host, track, &truth);
        for point in track {
            assert_eq!(
                (point.up, point.scheduler_up),
                (up, scheduler_up),
                "{host}: {point:?}"
            );
        }
        // The first scrape may precede the first bracketed heartbeat: unknown then.
        let seen = causes(track);
        let expected: &[&str] = if cause == "none" {
            &["none"]
        } else {
            &["unknown", cause]
        };
        assert!(
            seen == expected || seen == expected[expected.len() - 1..],
            "{host}: causes {seen:?}"
        );
        let last = watch.last(host);
        assert_final_precision(host, track, track.len() - 1);
        print_row(&Row {
            scenario: "skew",
            settings: SETTINGS,
            host,
            truth: skew,
            offset: last.offset,
            worst_excess: worst,
            heartbeats: heartbeats_to_precision(None, track),
            restarts: widenings(track),
            interval: last.interval,
            true_interval: 1.0,
            causes: seen.join(" > "),
        });
    }

    // The stepped clock: the skew that wrote each heartbeat is in the simulator's log.
    let host = "stepped@lvm";
    let track = watch.track(host);
    let truth = Truth::read(&fleet, host, track);
    let skew_of = |p: &Point| truth.skew(p.reports as i64);
    let phases = [0.0, 55.0, -70.0];
    let worst = check_offsets(host, track, &truth);
    // The interval is Δupdated_at / Δreport_count on one clock: a clock step must not
    // leak into it (a +55 s step over one heartbeat would read as a 56 s interval).
    check_intervals(host, track, &truth);
    for (i, point) in track.iter().enumerate() {
        let expected = if skew_of(point) == -70.0 {
            "clock_skew"
        } else {
            "none"
        };
        assert!(
            point.cause == expected || (point.cause == "unknown" && point.offset.is_none()),
            "{host}, scrape {i}: cause {} with skew {}\n{point:?}",
            point.cause,
            skew_of(point)
        );
    }
    for skew in phases {
        let start = track
            .iter()
            .position(|p| skew_of(p) == skew)
            .unwrap_or_else(|| panic!("{host}: never saw skew {skew}"));
        let end = track[start..]
            .iter()
            .position(|p| skew_of(p) != skew)
            .map_or(track.len(), |n| start + n);
        let phase = &track[start..end];
        let before = start.checked_sub(1).map(|i| &track[i]);
        let last = phase.last().unwrap();
        assert!(phase.len() >= 10, "{host}: too few scrapes at skew {skew}");
        assert_final_precision(host, track, end - 1);
        print_row(&Row {
            scenario: "stepped clock",
            settings: SETTINGS,
            host,
            truth: skew,
            offset: last.offset,
            worst_excess: worst,
            heartbeats: heartbeats_to_precision(before, phase),
            restarts: widenings(phase),
            interval: last.interval,
            true_interval: 1.0,
            causes: causes(phase).join(" > "),
        });
    }
}

/// The same four skews watched by exporters polling every 200 ms, 1 s and 3 s: how the
/// poll interval bounds the precision. Half the services heartbeat every second, in
/// step with the polls; the others every 1.3 s with jitter, so that heartbeats land at
/// different phases of the poll cycle and the intersection narrows. A poll slower than
/// the heartbeats is only checked for a valid bound: the heartbeat it sees is one of
/// several since the previous poll, so the bound stays loose on one side.
#[test]
fn precision_by_poll_interval() {
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(
        &db.url(),
        "services:
  - {host: behind45@lvm, skew: -45, interval: 1}
  - {host: ahead55@lvm, skew: 55, interval: 1.3, jitter: 0.1}
  - {host: behind70@lvm, skew: -70, interval: 1}
  - {host: ahead120@lvm, skew: 120, interval: 1.3, jitter: 0.1}
",
    );
    let services: [(&'static str, f64, f64); 4] = [
        ("behind45@lvm", -45.0, 1.0),
        ("ahead55@lvm", 55.0, 1.3),
        ("behind70@lvm", -70.0, 1.0),
        ("ahead120@lvm", 120.0, 1.3),
    ];
    let hosts: Vec<&'static str> = services.iter().map(|s| s.0).collect();
    let polls = [("200ms", 0.2), ("1s", 1.0), ("3s", 3.0)];
    let exporters: Vec<Exporter> = polls
        .iter()
        .map(|(poll, _)| exporter(&db, poll, "60s", "1s"))
        .collect();
    let mut watches: Vec<Watch> = exporters.iter().map(|e| Watch::new(e, &hosts)).collect();
    record(
        &mut watches,
        "16 heartbeats at every poll interval",
        Duration::from_secs(75),
        |w| {
            w.iter()
                .all(|w| hosts.iter().all(|h| w.heartbeats(h) >= 16.0))
        },
    );
    for ((poll, poll_seconds), watch) in polls.iter().zip(&watches) {
        for (host, skew, interval) in services {
            let track = watch.track(host);
            let truth = Truth::read(&fleet, host, track);
            let worst = check_offsets(host, track, &truth);
            check_intervals(host, track, &truth);
            // One bracket is the time between two polls plus a second wide (polls as
            // they really ran); intersecting only narrows it.
            for (i, point) in track.iter().enumerate() {
                let (Some((_, uncertainty)), Some(half)) = (point.offset, newest_bracket(track, i))
                else {
                    continue;
                };
                assert!(
                    uncertainty <= half + BRACKET_SLACK,
                    "{host} at poll {poll}: uncertainty {uncertainty:.3}, bracket ±{half:.3}"
                );
            }
            if *poll_seconds <= 1.0 {
                // With a poll of 1 s or faster, every estimate lands within ±1.5 s,
                // from the first bracketed heartbeat on (or within what the polls as
                // they really ran and the measured write latency allow, if wider).
                for (i, point) in track.iter().enumerate() {
                    if let Some((estimate, uncertainty)) = point.offset {
                        let allowed = precision_at(track, i);
                        let latency = truth.latency(point.reports as i64);
                        assert!(
                            (estimate - skew).abs() <= allowed.max(uncertainty + latency)
                                && uncertainty <= allowed,
                            "{host} at poll {poll}: {estimate:.3} ± {uncertainty:.3}, true \
                             {skew}, allowed ±{allowed:.3}"
                        );
                    }
                }
            }
            let expected = if skew.abs() > 60.0 {
                "clock_skew"
            } else {
                "none"
            };
            let seen = causes(track);
            assert!(
                seen.last() == Some(&expected)
                    && seen.iter().all(|c| *c == expected || *c == "unknown"),
                "{host} at poll {poll}: causes {seen:?}"
            );
            let last = watch.last(host);
            if *poll_seconds <= 1.0 {
                assert_final_precision(host, track, track.len() - 1);
            }
            let settings = format!(
                "poll {poll}, down 60s, hb {interval}s{}",
                if interval == 1.0 { "" } else { " ±0.1" }
            );
            print_row(&Row {
                scenario: "poll interval",
                settings: &settings,
                host,
                truth: skew,
                offset: last.offset,
                worst_excess: worst,
                heartbeats: heartbeats_to_precision(None, track),
                restarts: widenings(track),
                interval: last.interval,
                true_interval: interval,
                causes: seen.join(" > "),
            });
        }
    }
}

/// service_down_time 3 s: a service at 1 s that keeps going, one that stops, one that
/// stops and resumes, one whose 4 s interval is longer than service_down_time, and one
/// that slows from 1 s to 4 s. Events fall between heartbeats (x.5 s) so that a stop
/// never races a heartbeat.
#[test]
fn stopped_resumed_and_late_services() {
    const SETTINGS: &str = "poll 200ms, down 3s";
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(
        &db.url(),
        "services:
  - {host: steady@lvm, interval: 1}
  - host: stops@lvm
    interval: 1
    events: [{at: 5.5, stop: true}]
  - host: resumes@lvm
    interval: 1
    events: [{at: 4.5, stop: true}, {at: 10.5, resume: true}]
  - {host: late@lvm, interval: 4}
  - host: slows@lvm
    interval: 1
    events: [{at: 3.5, interval: 4}]
",
    );
    let exporter = exporter(&db, "200ms", "3s", "1s");
    let hosts = [
        "steady@lvm",
        "stops@lvm",
        "resumes@lvm",
        "late@lvm",
        "slows@lvm",
    ];
    let mut watches = [Watch::new(&exporter, &hosts)];
    record(
        &mut watches,
        "the resumed service back up for 3 heartbeats, 4 late heartbeats, 3 slowed ones",
        Duration::from_secs(60),
        |w| {
            let resumed = w[0].track("resumes@lvm");
            let back = resumed
                .iter()
                .position(|p| p.cause == "heartbeat_stopped")
                .and_then(|stopped| {
                    resumed[stopped..]
                        .iter()
                        .position(|p| p.up)
                        .map(|n| stopped + n)
                });
            back.is_some_and(|i| resumed.last().unwrap().reports - resumed[i].reports >= 3.0)
                && w[0].heartbeats("late@lvm") >= 4.0
                && w[0].last("stops@lvm").cause == "heartbeat_stopped"
                // Heartbeats at 1, 2, 3 s, then 7, 11, 15 s.
                && w[0].last("slows@lvm").reports >= 6.0
        },
    );
    let watch = &watches[0];
    let mut rows = Vec::new();
    for host in hosts {
        let track = watch.track(host);
        let truth = Truth::read(&fleet, host, track);
        let worst = check_offsets(host, track, &truth);
        check_intervals(host, track, &truth);
        rows.push((host, worst, truth));
    }

    let expect = |host: &str, expected: &[&str]| {
        let seen = causes(watch.track(host));
        assert_eq!(seen, expected, "{host}: causes");
    };
    // Up throughout, unless on a busy machine the latest heartbeat really written
    // (check_intervals holds the stamps to the simulator's) grew older than
    // service_down_time: cinder shows it down then too, for a silence, never for its
    // clock.
    for (i, point) in watch.track("steady@lvm").iter().enumerate() {
        let really_old = point.age > 3.0;
        let silence = ["heartbeat_stopped", "heartbeat_late"].contains(&point.cause.as_str());
        assert!(
            (point.up && point.cause == "none") || (really_old && !point.up && silence),
            "steady@lvm, scrape {i}: {point:?}"
        );
    }
    expect("stops@lvm", &["none", "heartbeat_stopped"]);
    expect("resumes@lvm", &["none", "heartbeat_stopped", "none"]);
    // Down between heartbeats, never stopped, never blamed on its (right) clock.
    let late = watch.track("late@lvm");
    let first_advance = late
        .iter()
        .position(|p| p.reports > late[0].reports)
        .expect("late@lvm heartbeats");
    let seen = causes(&late[first_advance..]);
    assert!(
        seen.iter().all(|c| *c == "none" || *c == "heartbeat_late")
            && seen.contains(&"heartbeat_late"),
        "late@lvm: causes {seen:?}"
    );
    assert!(!watch.last("stops@lvm").up);
    // Slowed down: while the exporter has seen only the 1 s pace, the first two long
    // silences read as stops (one long gap is no new pace); from the second 4 s
    // heartbeat on, as late.
    let slows = watch.track("slows@lvm");
    let seen = causes(slows);
    let late_from = seen.iter().position(|c| *c == "heartbeat_late");
    assert!(
        seen[0] == "none"
            && late_from.is_some_and(|i| seen[i..]
                .iter()
                .all(|c| *c == "none" || *c == "heartbeat_late"))
            && seen.iter().all(|c| *c != "clock_skew" && *c != "unknown")
            && seen.iter().filter(|c| **c == "heartbeat_stopped").count() <= 2,
        "slows@lvm: causes {seen:?}"
    );

    for (host, worst, _) in rows {
        let track = watch.track(host);
        let last = watch.last(host);
        let true_interval = if host == "late@lvm" || host == "slows@lvm" {
            4.0
        } else {
            1.0
        };
        assert_final_precision(host, track, track.len() - 1);
        let seen = if host == "late@lvm" {
            causes(&track[first_advance..])
        } else {
            causes(track)
        };
        let settings = format!("{SETTINGS}, hb {true_interval}s");
        print_row(&Row {
            scenario: "stop/resume/late",
            settings: &settings,
            host,
            truth: 0.0,
            offset: last.offset,
            worst_excess: worst,
            heartbeats: heartbeats_to_precision(None, track),
            restarts: widenings(track),
            interval: last.interval,
            true_interval,
            causes: seen.join(" > "),
        });
    }
}

/// An exporter started while one service has been stopped for longer than
/// service_down_time, one stopped with its clock 120 s ahead, and one running 45 s
/// behind: `unknown` for all three at first, then the right cause.
#[test]
fn fresh_exporter_start() {
    const SETTINGS: &str = "poll 200ms, down 6s, hb 2s";
    let db = Database::create(Schema::Cinder29);
    let fleet = Simulator::start(
        &db.url(),
        "services:
  - host: stopped@lvm
    interval: 1
    events: [{at: 1.5, stop: true}]
  - host: stopped-ahead@lvm
    skew: 120
    interval: 1
    events: [{at: 1.5, stop: true}]
  - {host: behind@lvm, skew: -45, interval: 2}
",
    );
    // Until cinder shows the stopped service down.
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.query_one::<i64>(
        "SELECT TIMESTAMPDIFF(SECOND, updated_at, UTC_TIMESTAMP()) FROM services \
         WHERE host = 'stopped@lvm'",
    ) <= 7
    {
        assert!(Instant::now() < deadline, "stopped@lvm never got old");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Start just after a heartbeat of the running service, so that the first scrapes
    // come before the exporter can see it advance (2 s later).
    let count_query = "SELECT report_count FROM services WHERE host = 'behind@lvm'";
    let before = db.query_one::<i64>(count_query);
    let mut count_at_start = before;
    while count_at_start == before {
        assert!(Instant::now() < deadline, "behind@lvm does not heartbeat");
        std::thread::sleep(Duration::from_millis(20));
        count_at_start = db.query_one::<i64>(count_query);
    }
    let exporter = exporter(&db, "200ms", "6s", "2s");
    let hosts = ["stopped@lvm", "stopped-ahead@lvm", "behind@lvm"];
    let first = exporter.wait_for("the services", START, |s| {
        hosts.iter().all(|h| Point::read(s, h).is_some())
    });
    for host in hosts {
        let point = Point::read(&first, host).unwrap();
        assert!(!point.up, "{host} is down in cinder: {point:?}");
        // Nothing to bracket until the exporter has seen a heartbeat land between two
        // of its polls. The stopped services never heartbeat again; the running one
        // does, and on a busy machine the first scrape may come after the exporter saw
        // it advance (its count shows it): then it may know the cause already.
        if host == "behind@lvm" && point.reports as i64 > count_at_start {
            eprintln!("behind@lvm advanced before the first scrape: {point:?}");
            continue;
        }
        assert_eq!(point.cause, "unknown", "{host} at the first scrape");
        assert!(point.offset.is_none(), "{host}: {point:?}");
    }

    let mut watches = [Watch::new(&exporter, &hosts)];
    record(&mut watches, "the causes", Duration::from_secs(30), |w| {
        w[0].last("stopped@lvm").cause == "heartbeat_stopped"
            && w[0].last("stopped-ahead@lvm").cause == "heartbeat_stopped"
            && w[0].heartbeats("behind@lvm") >= 4.0
    });
    let watch = &watches[0];
    for (host, skew, expected) in [
        ("stopped@lvm", 0.0, "heartbeat_stopped"),
        ("stopped-ahead@lvm", 120.0, "heartbeat_stopped"),
        ("behind@lvm", -45.0, "clock_skew"),
    ] {
        let track = watch.track(host);
        let seen = causes(track);
        // `first` was unknown; the recording may start after the change.
        assert!(
            seen == ["unknown", expected] || seen == [expected],
            "{host}: causes {seen:?}"
        );
        let truth = Truth::read(&fleet, host, track);
        assert!(
            truth.beats.iter().all(|b| b.skew == skew),
            "{host}: the fleet file's skew"
        );
        let worst = check_offsets(host, track, &truth);
        let last = watch.last(host);
        let true_interval = if host == "behind@lvm" { 2.0 } else { 1.0 };
        if host == "behind@lvm" {
            assert_final_precision(host, track, track.len() - 1);
            check_intervals(host, track, &truth);
        } else {
            // No heartbeat since the exporter started: nothing to bracket.
            assert!(track.iter().all(|p| p.offset.is_none()), "{host}");
        }
        print_row(&Row {
            scenario: "fresh exporter",
            settings: SETTINGS,
            host,
            truth: skew,
            offset: last.offset,
            worst_excess: worst,
            heartbeats: heartbeats_to_precision(None, track),
            restarts: widenings(track),
            interval: last.interval,
            true_interval,
            causes: if seen[0] == "unknown" {
                seen.join(" > ")
            } else {
                format!("unknown > {}", seen.join(" > "))
            },
        });
    }
}
