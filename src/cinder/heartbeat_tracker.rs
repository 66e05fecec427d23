//! Follows one service row across polls and keeps the estimates its diagnosis is made
//! of: the heartbeat interval ([`IntervalWindow`]) and the clock offset
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
            heartbeat_interval: self.interval.mean(),
            clock_offset: self.offset.estimate(),
            count_seen_since: self.count_seen_since,
            advance_seen: self.advance_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn interval_is_the_mean_between_recorded_heartbeats() {
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
    fn a_new_pace_is_taken_up_at_once() {
        // Every second until 20 s, then every 5 s: the first 5 s pair restarts the
        // window; the next one confirms it.
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
        assert_eq!(tracker.diagnosis().heartbeat_interval, Some(5.0));
        poll_over(&mut tracker, (25.1, 60.0), 0.2, row, |t, d| {
            assert_eq!(d.heartbeat_interval, Some(5.0), "at {t}");
        });
        // And back: the first 1 s pair after 5 s ones restarts the window too.
        let faster = |t: f64| {
            if t < 60.0 {
                row(t)
            } else {
                let (count, _) = row(59.9);
                let beat = t.floor();
                (count + (beat - 59.0) as i64, beat + 0.5)
            }
        };
        poll_over(&mut tracker, (60.0, 61.5), 0.2, faster, |_, _| {});
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
        assert_eq!(tracker.interval.len(), WINDOW + 1);
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
        assert_eq!(tracker.interval.len(), WINDOW + 1);
    }
}
