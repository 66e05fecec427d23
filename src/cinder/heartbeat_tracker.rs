//! Follows one service row across polls and keeps the estimates its diagnosis is made
//! of: the heartbeat interval ([`IntervalWindow`], robust to one irregular gap) and
//! the clock offset
//! ([`OffsetBrackets`]). Pure: observations in, numbers out.
//!
//! Only an advance of `report_count` proves a heartbeat (`updated_at` also moves on a
//! restart or a freeze through the API, stamped by other clocks). Each time a poll sees
//! the count advance, the latest heartbeat happened between the previous poll and this
//! one, stamped with the service's own clock: that brackets the clock offset, and the
//! stamp and count feed the interval. A bracket that shows the clock was stepped
//! restarts both estimates, since a step would otherwise read as one very long or
//! negative interval.

use super::clock_offset::OffsetBrackets;
use super::diagnosis::Diagnosis;
use super::heartbeat_interval::IntervalWindow;
use super::stamp_window::StampWindow;

/// How many recent heartbeats (advances seen by a poll) the estimates use. It bounds
/// the memory per service and how long an old clock or interval lingers.
pub const WINDOW: usize = 16;

/// Follows one service row across polls. Memory is bounded by [`WINDOW`].
#[derive(Clone, Debug)]
pub struct HeartbeatTracker {
    /// Reference time of the previous successful poll that saw the row. Kept through
    /// failed polls: an outage only widens the next bracket, it is not a clock step.
    previous_poll: Option<f64>,
    previous_count: i64,
    count_seen_since: f64,
    advance_seen: bool,
    interval: IntervalWindow,
    offset: OffsetBrackets,
}

impl Default for HeartbeatTracker {
    fn default() -> Self {
        HeartbeatTracker::new()
    }
}

impl HeartbeatTracker {
    pub fn new() -> HeartbeatTracker {
        HeartbeatTracker {
            previous_poll: None,
            previous_count: 0,
            count_seen_since: 0.0,
            advance_seen: false,
            interval: IntervalWindow::new(),
            offset: OffsetBrackets::new(),
        }
    }

    /// Feeds one poll's reading of the row: the poll's reference time, `report_count`
    /// and `updated_at` (unix seconds as recorded by the service), which the database
    /// kept as `stamps` says.
    pub fn observe(
        &mut self,
        reference_time: f64,
        report_count: i64,
        updated_at: Option<i64>,
        stamps: StampWindow,
    ) {
        let Some(previous_poll) = self.previous_poll else {
            self.start(reference_time, report_count, updated_at);
            return;
        };
        if report_count < self.previous_count {
            // The count went back: not the same sequence of heartbeats any more.
            self.start(reference_time, report_count, updated_at);
            return;
        }
        if report_count > self.previous_count {
            self.count_seen_since = reference_time;
            self.advance_seen = true;
            if let Some(stamp) = updated_at {
                // The heartbeat fell in (previous_poll, reference_time]; the service
                // believed it was in [stamp + from, stamp + to).
                let seconds = stamp as f64;
                let stepped = self.offset.add(
                    seconds + stamps.from - reference_time,
                    seconds + stamps.to - previous_poll,
                );
                if stepped {
                    // Keep only what follows the step: this heartbeat (added next), not
                    // the one before it, whose stamp is on the old clock.
                    self.interval.clear();
                }
                self.interval.add(report_count, stamp);
            }
        }
        self.previous_count = report_count;
        self.previous_poll = Some(reference_time);
    }

    fn start(&mut self, reference_time: f64, report_count: i64, updated_at: Option<i64>) {
        *self = HeartbeatTracker::new();
        self.previous_poll = Some(reference_time);
        self.previous_count = report_count;
        self.count_seen_since = reference_time;
        // The first sighting already pairs a count with its stamp: a valid first point
        // for the interval, though not for the offset (no earlier poll brackets it).
        if let Some(stamp) = updated_at {
            self.interval.add(report_count, stamp);
        }
    }

    /// The current estimates.
    pub fn diagnosis(&self) -> Diagnosis {
        Diagnosis {
            heartbeat_interval: self.interval.estimate(),
            clock_offset: self.offset.estimate(),
            count_seen_since: self.count_seen_since,
            advance_seen: self.advance_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cinder::{DownCause, Thresholds};

    /// A service heartbeating every `interval` s with clock `offset`, polled every
    /// `poll` s starting at `phase`; returns the tracker after `duration` s.
    fn simulate(
        offset: f64,
        interval: f64,
        poll: f64,
        phase: f64,
        duration: f64,
    ) -> HeartbeatTracker {
        let mut tracker = HeartbeatTracker::new();
        let start = 1_000_000.0;
        let mut t = phase;
        while t <= duration {
            let beats = (t / interval).floor() as i64;
            let stamp = (start + beats as f64 * interval + offset).floor() as i64;
            tracker.observe(start + t, beats, Some(stamp), StampWindow::TRUNCATED);
            t += poll;
        }
        tracker
    }

    #[test]
    fn offset_is_bracketed_and_tightens() {
        for offset in [-70.0, -45.3, 0.0, 0.7, 55.0, 120.25] {
            let tracker = simulate(offset, 10.0, 1.0, 0.37, 300.0);
            let o = tracker.diagnosis().clock_offset.unwrap();
            assert!(
                (o.estimate - offset).abs() <= o.uncertainty + 1e-9,
                "{offset}: {o:?}"
            );
            assert!(o.uncertainty <= 1.0, "{offset}: {o:?}");
        }
    }

    #[test]
    fn interval_is_the_pace_between_recorded_heartbeats() {
        let tracker = simulate(-7.5, 10.0, 2.0, 0.1, 200.0);
        let interval = tracker.diagnosis().heartbeat_interval.unwrap();
        assert!((interval - 10.0).abs() <= 0.1, "{interval}");
        // Polls slower than heartbeats still see the right mean (missed increments).
        let tracker = simulate(3.0, 1.0, 2.5, 0.0, 100.0);
        let interval = tracker.diagnosis().heartbeat_interval.unwrap();
        assert!((interval - 1.0).abs() <= 0.1, "{interval}");
    }

    #[test]
    fn a_stepped_clock_restarts_the_estimate() {
        let mut tracker = simulate(0.0, 10.0, 1.0, 0.5, 100.0);
        let start = 1_000_000.0;
        let mut count = 10;
        for step in 1..=5 {
            let t = 100.0 + step as f64 * 10.0;
            count += 1;
            tracker.observe(
                start + t - 0.5,
                count - 1,
                Some((start + t - 10.0) as i64),
                StampWindow::TRUNCATED,
            );
            tracker.observe(
                start + t + 0.5,
                count,
                Some((start + t + 30.0) as i64),
                StampWindow::TRUNCATED,
            );
        }
        let o = tracker.diagnosis().clock_offset.unwrap();
        assert!((o.estimate - 30.0).abs() <= o.uncertainty, "{o:?}");
    }

    #[test]
    fn silence_counts_from_the_poll_that_saw_the_advance() {
        let mut tracker = HeartbeatTracker::new();
        tracker.observe(100.0, 5, Some(95), StampWindow::TRUNCATED);
        assert_eq!(tracker.diagnosis().silence(100.0), 0.0);
        tracker.observe(101.0, 6, Some(500), StampWindow::TRUNCATED); // a clock far ahead changes nothing
        tracker.observe(130.0, 6, Some(500), StampWindow::TRUNCATED);
        let d = tracker.diagnosis();
        assert!(d.advance_seen);
        assert_eq!(d.silence(130.0), 29.0);
        assert_eq!(d.silence(90.0), 0.0);
    }

    #[test]
    fn no_offset_before_a_bracketed_heartbeat() {
        let mut tracker = HeartbeatTracker::new();
        tracker.observe(100.0, 5, Some(95), StampWindow::TRUNCATED);
        tracker.observe(101.0, 5, Some(95), StampWindow::TRUNCATED);
        let d = tracker.diagnosis();
        assert!(d.clock_offset.is_none() && !d.advance_seen);
    }

    /// Polls `tracker` every `poll` s over `[from, to)` (seconds after a fixed start) a
    /// row whose `(report_count, updated_at)` at time `t` is `row(t)`, the stamp cut to
    /// whole seconds (a database that cuts the fraction).
    fn poll_over(
        tracker: &mut HeartbeatTracker,
        range: (f64, f64),
        poll: f64,
        row: impl Fn(f64) -> (i64, f64),
        check: impl FnMut(f64, &Diagnosis),
    ) {
        let stored = Storage {
            keep: f64::floor,
            told: StampWindow::TRUNCATED,
        };
        poll_stored(tracker, range, poll, row, stored, check);
    }

    /// How the simulated database keeps a stamp, and what the tracker is told of it.
    struct Storage {
        keep: fn(f64) -> f64,
        told: StampWindow,
    }

    fn poll_stored(
        tracker: &mut HeartbeatTracker,
        (from, to): (f64, f64),
        poll: f64,
        row: impl Fn(f64) -> (i64, f64),
        stored: Storage,
        mut check: impl FnMut(f64, &Diagnosis),
    ) {
        let start = 1_000_000.0;
        let mut t = from;
        while t < to {
            let (count, stamp) = row(t);
            let kept = (stored.keep)(start + stamp) as i64;
            tracker.observe(start + t, count, Some(kept), stored.told);
            check(t, &tracker.diagnosis());
            t += poll;
        }
    }

    /// Heartbeats at 1.37 s (every phase of the second) from a clock 20.2 s ahead,
    /// stored rounded to the nearest second: whether the bound always holds the truth.
    fn bound_holds_under_rounding(told: StampWindow) -> bool {
        let row = |t: f64| {
            let count = (t / 1.37).floor();
            (count as i64, count * 1.37 + 20.2)
        };
        let mut tracker = HeartbeatTracker::new();
        let mut held = true;
        let stored = Storage {
            keep: f64::round,
            told,
        };
        poll_stored(&mut tracker, (0.05, 120.0), 0.2, row, stored, |_, d| {
            if let Some(o) = d.clock_offset {
                held &= (o.estimate - 20.2).abs() <= o.uncertainty + 1e-9;
            }
        });
        held
    }

    #[test]
    fn rounded_stamps_need_a_rounded_window() {
        assert!(bound_holds_under_rounding(StampWindow::ROUNDED));
        assert!(bound_holds_under_rounding(StampWindow::EITHER));
        // Taken for truncated, rounded stamps push the bound half a second off.
        assert!(!bound_holds_under_rounding(StampWindow::TRUNCATED));
    }

    #[test]
    fn a_stepped_clock_does_not_leak_into_the_interval() {
        // Heartbeats every second; the clock steps from 0 to +55 s at 30 s and to
        // -70 s at 60 s. The interval must never read the step as a heartbeat gap.
        let skew = |t: f64| match t {
            t if t < 30.0 => 0.0,
            t if t < 60.0 => 55.0,
            _ => -70.0,
        };
        let row = |t: f64| {
            let beat = t.floor();
            (beat as i64, beat + 0.3 + skew(beat))
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (0.1, 90.0), 0.2, row, |t, d| {
            if let Some(interval) = d.heartbeat_interval {
                assert!((0.0..=2.0).contains(&interval), "at {t}: {interval}");
            }
            if let Some(o) = d.clock_offset {
                let truth = skew(t.floor());
                assert!((o.estimate - truth).abs() <= o.uncertainty, "at {t}: {o:?}");
            }
        });
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(1.0));
    }

    #[test]
    fn a_silence_counts_for_one_heartbeat_only() {
        // Every second until 20 s, silent until 40 s, every second again.
        let row = |t: f64| {
            let beat = match t.floor() {
                b if b <= 20.0 => b,
                b if b < 40.0 => 20.0,
                b => b,
            };
            let count = if beat < 40.0 { beat } else { beat - 19.0 };
            (count as i64, beat + 0.5)
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (0.1, 42.5), 0.2, row, |_, _| {});
        // Two heartbeats after the silence: the window holds only the new pace.
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(1.0));
        poll_over(&mut tracker, (42.5, 50.0), 0.2, row, |t, d| {
            assert_eq!(d.heartbeat_interval, Some(1.0), "at {t}");
        });
    }

    #[test]
    fn a_new_pace_is_taken_up_at_the_second_gap() {
        // Every second until 20 s, then every 5 s: two 5 s gaps in a row restart
        // the window.
        let row = |t: f64| {
            let beat = if t < 25.0 {
                t.floor().min(20.0)
            } else {
                20.0 + ((t - 20.0) / 5.0).floor() * 5.0
            };
            let count = if beat <= 20.0 {
                beat
            } else {
                20.0 + (beat - 20.0) / 5.0
            };
            (count as i64, beat + 0.5)
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (0.1, 25.1), 0.2, row, |_, _| {});
        // One 5 s gap could be a slow restart: not yet the pace.
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(1.0));
        poll_over(&mut tracker, (25.1, 30.1), 0.2, row, |_, _| {});
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(5.0));
        poll_over(&mut tracker, (30.1, 60.0), 0.2, row, |t, d| {
            assert_eq!(d.heartbeat_interval, Some(5.0), "at {t}");
        });
        // And back: two 1 s gaps after 5 s ones restart the window too.
        let faster = |t: f64| {
            if t < 60.0 {
                row(t)
            } else {
                let (count, _) = row(59.9);
                let beat = t.floor();
                (count + (beat - 59.0) as i64, beat + 0.5)
            }
        };
        poll_over(&mut tracker, (60.0, 62.5), 0.2, faster, |_, _| {});
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(1.0));
    }

    #[test]
    fn truncation_and_jitter_never_restart_the_interval() {
        // 1.3 s with the stamps' whole seconds: pairs of 1 and 2 s, mean 1.3.
        let row = |t: f64| {
            let count = (t / 1.3).floor();
            (count as i64, count * 1.3 + 0.05)
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (0.1, 60.0), 0.2, row, |_, _| {});
        let interval = tracker.diagnosis().heartbeat_interval.unwrap();
        assert!((interval - 1.3).abs() <= 0.1, "{interval}");
        assert_eq!(tracker.interval.len(), WINDOW);
        // 1 s with ±0.1 s of jitter: two stamps may share a second (a pair of 0 s).
        let beat = |k: f64| k + 0.1 * (((k as i64 * 7919) % 13) as f64 / 6.0 - 1.0);
        let row = |t: f64| {
            let k = (1..200).take_while(|k| beat(*k as f64) <= t).count() as f64;
            (k as i64, beat(k) + 0.97)
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (0.5, 60.0), 0.2, row, |_, _| {});
        let interval = tracker.diagnosis().heartbeat_interval.unwrap();
        assert!((interval - 1.0).abs() <= 0.1, "{interval}");
        assert_eq!(tracker.interval.len(), WINDOW);
    }

    /// A right clock heartbeating at the instants `beats` (seconds after a fixed
    /// start), polled every second (at a phase no heartbeat shares) until `until`;
    /// `check` sees every poll's time and diagnosis.
    fn watch_beats(beats: &[f64], until: f64, mut check: impl FnMut(f64, &Diagnosis)) {
        let row = |t: f64| {
            let count = beats.iter().take_while(|b| **b <= t).count();
            let stamp = if count == 0 { 0.0 } else { beats[count - 1] };
            (count as i64, stamp)
        };
        let mut tracker = HeartbeatTracker::new();
        poll_over(&mut tracker, (beats[0] + 0.37, until), 1.0, row, |t, d| {
            check(1_000_000.0 + t, d)
        });
    }

    /// What CinderServiceHeartbeatsMissed computes (alerts/cinder-exporter.rules.yml):
    /// heartbeats missed by the observed interval, fired at 2.
    fn missed(d: &Diagnosis, poll_time: f64) -> f64 {
        d.heartbeat_interval.map_or(0.0, |interval| {
            (d.silence(poll_time) / interval - 0.5).floor()
        })
    }

    /// cinder's looping call at `interval`: run k starts at k × interval (plus
    /// `jitter(k)`), and stamps after `run(k)` seconds, never outlasting the interval.
    fn schedule(
        count: usize,
        interval: f64,
        jitter: impl Fn(usize) -> f64,
        run: impl Fn(usize) -> f64,
    ) -> Vec<f64> {
        let mut start = 0.0;
        (1..=count)
            .map(|k| {
                start += interval + jitter(k);
                start + run(k)
            })
            .collect()
    }

    /// Pseudo-random in [-1, 1], the same at every run of the test.
    fn wobble(k: usize) -> f64 {
        ((k * 7919 + 13) % 97) as f64 / 48.0 - 1.0
    }

    #[test]
    fn irregular_healthy_services_never_miss_two_heartbeats() {
        let slow_restart = {
            // Heartbeats every 10 s, then a restart 9 s long right after one: the
            // first heartbeat after it comes a whole interval after the start.
            let mut beats = schedule(20, 10.0, |_| 0.0, |_| 0.2);
            let restart = beats[19] + 9.0;
            beats.extend(
                schedule(20, 10.0, |_| 0.0, |_| 0.2)
                    .iter()
                    .map(|b| b + restart),
            );
            beats
        };
        let cases: [(&str, Vec<f64>); 6] = [
            (
                "jitter ±2 s",
                schedule(60, 10.0, |k| 2.0 * wobble(k), |_| 0.1),
            ),
            (
                "one report_state 8 s slow (18 s then 2 s)",
                schedule(60, 10.0, |_| 0.0, |k| if k == 30 { 8.1 } else { 0.1 }),
            ),
            (
                "one report_state 9.8 s slow (19.7 s then 0.3 s)",
                schedule(60, 10.0, |_| 0.0, |k| if k == 30 { 9.8 } else { 0.1 }),
            ),
            (
                "every third run 9 s slow",
                schedule(60, 10.0, |_| 0.0, |k| if k % 3 == 0 { 9.0 } else { 0.0 }),
            ),
            (
                "runs of random length under the interval",
                schedule(60, 10.0, |_| 0.0, |k| 4.9 * (wobble(k) + 1.0)),
            ),
            ("a slow restart (19.2 s)", slow_restart),
        ];
        for (name, beats) in cases {
            let longest = beats.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
            assert!(longest <= 20.0, "{name}: a gap of {longest} s");
            let end = *beats.last().unwrap();
            watch_beats(&beats, end, |t, d| {
                assert!(missed(d, t) < 2.0, "{name}, at {t}: {d:?}");
            });
        }
    }

    #[test]
    fn a_stopped_service_is_warned_at_two_intervals_and_a_half() {
        // Irregular, then stopped: the warning comes 25 s of silence after the
        // last heartbeat, give or take the window's bound and a poll.
        let beats = schedule(
            40,
            10.0,
            |k| 2.0 * wobble(k),
            |k| if k == 30 { 8.0 } else { 0.1 },
        );
        let last = *beats.last().unwrap();
        let mut warned = None;
        watch_beats(&beats, last + 60.0, |t, d| {
            if warned.is_none() && missed(d, t) >= 2.0 {
                warned = Some(t - 1_000_000.0 - last);
            }
        });
        let warned = warned.expect("warned");
        assert!((24.0..=28.0).contains(&warned), "{warned}");
    }

    #[test]
    fn a_slow_restart_then_death_reads_heartbeat_stopped() {
        let limits = Thresholds::new(60.0, 10.0);
        for restart in [15.0, 45.0, 55.0, 65.0, 120.0, 3_600.0] {
            for beats_after in [1, 2, 5] {
                // A slow report_state, then a restart that may outlast
                // service_down_time, a few heartbeats, then death.
                let mut beats = schedule(30, 10.0, |_| 0.0, |k| if k == 20 { 9.0 } else { 0.1 });
                let back = beats[29] + restart;
                beats.extend(
                    schedule(beats_after, 10.0, |_| 0.0, |_| 0.1)
                        .iter()
                        .map(|b| b + back),
                );
                let last = *beats.last().unwrap();
                let mut causes = Vec::new();
                watch_beats(&beats, last + 200.0, |t, d| {
                    let since_last = t - 1_000_000.0 - last;
                    if since_last > 62.0 {
                        let age = since_last.floor();
                        causes.push(d.down_cause(Some(age), false, t, &limits));
                    }
                });
                assert!(
                    causes.iter().all(|c| *c == DownCause::HeartbeatStopped),
                    "restart {restart} s, {beats_after} heartbeats after: {causes:?}"
                );
            }
        }
    }
}
