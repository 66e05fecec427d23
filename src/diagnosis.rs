//! Why a service is down: its observed heartbeat interval, an estimate of its clock
//! offset, and the cause that follows from them. Pure: observations in, numbers out.
//!
//! Only an advance of `report_count` proves a heartbeat (`updated_at` also moves on a
//! restart or a freeze through the API, stamped by other clocks). Each time a poll sees
//! the count advance, the latest heartbeat happened after the previous poll's reference
//! time `R₀` and no later than this poll's `R₁`, while `updated_at` — the service's
//! own clock, truncated to whole seconds — says the service believed it was
//! `[u, u + 1)` then. So the offset (service clock minus reference clock) lies in
//! `[u − R₁, u + 1 − R₀]`: a bracket one poll interval plus one second wide. Heartbeats
//! land at different phases of the poll cycle, so intersecting the brackets of the
//! last [`WINDOW`] heartbeats narrows the bound. A bracket that misses the intersection
//! means the node's clock was stepped: the estimate restarts from that bracket.

use std::collections::VecDeque;

/// How many recent heartbeats (advances seen by a poll) the estimates use. It bounds
/// the memory per service and how long an old clock or interval lingers.
pub const WINDOW: usize = 16;

/// The thresholds the verdicts and causes use, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    pub service_down_time: f64,
    /// `service_down_time - report_interval`: the skew a service may have and still
    /// show up steadily.
    pub skew_budget: f64,
}

/// Why cinder-api shows a service down; exported one-hot as `cinder_service_down_cause`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownCause {
    /// The service is up.
    None = 0,
    /// `report_count` has not advanced for longer than `service_down_time`.
    HeartbeatStopped = 1,
    /// Heartbeats arrive, but the service's clock puts `updated_at` too far from now.
    ClockSkew = 2,
    /// Heartbeats arrive, but at an interval of `service_down_time` or more.
    HeartbeatLate = 3,
    /// Not enough observations yet (e.g. the exporter has just started).
    Unknown = 4,
}

impl DownCause {
    /// Every cause, in the order of their discriminants.
    pub const ALL: [DownCause; 5] = [
        DownCause::None,
        DownCause::HeartbeatStopped,
        DownCause::ClockSkew,
        DownCause::HeartbeatLate,
        DownCause::Unknown,
    ];

    /// The `cause` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DownCause::None => "none",
            DownCause::HeartbeatStopped => "heartbeat_stopped",
            DownCause::ClockSkew => "clock_skew",
            DownCause::HeartbeatLate => "heartbeat_late",
            DownCause::Unknown => "unknown",
        }
    }
}

/// The bound on a service's clock offset: the truth lies in `estimate ± uncertainty`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockOffset {
    /// Service clock minus reference clock, seconds; positive when the service is ahead.
    pub estimate: f64,
    pub uncertainty: f64,
    /// How many heartbeats' brackets were intersected to get here.
    pub heartbeats: usize,
}

/// What the tracker knows of one service after a poll; copied into the snapshot so
/// that the cause can be judged at scrape time.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// Mean seconds between heartbeats over the window: Δupdated_at / Δreport_count.
    pub heartbeat_interval: Option<f64>,
    pub clock_offset: Option<ClockOffset>,
    /// Reference time of the poll that first saw the current `report_count`: the count
    /// has not advanced since at least then.
    pub count_seen_since: f64,
    /// Whether `count_seen_since` marks an advance this exporter saw, rather than its
    /// first sight of the service.
    pub advance_seen: bool,
}

impl Diagnosis {
    /// The cause of the API verdict at reference time `now`, for a service whose signed
    /// heartbeat age is `age`.
    pub fn down_cause(
        &self,
        age: Option<f64>,
        up: bool,
        now: f64,
        limits: &Thresholds,
    ) -> DownCause {
        if up {
            return DownCause::None;
        }
        let down_time = limits.service_down_time;
        let silence = now - self.count_seen_since;
        if silence > down_time {
            // Silent for longer than cinder tolerates. A service whose usual interval is
            // that long is late, not dead, until it misses its own schedule as well.
            return match self.heartbeat_interval {
                Some(interval) if interval >= down_time && silence <= interval + down_time => {
                    DownCause::HeartbeatLate
                }
                _ => DownCause::HeartbeatStopped,
            };
        }
        if !self.advance_seen {
            return DownCause::Unknown;
        }
        // Heartbeats arrive, yet the recorded time is too far from now: the clock is
        // to blame if correcting it by the estimated offset would bring the age within
        // service_down_time.
        match (age, self.clock_offset) {
            (Some(age), Some(offset))
                if (age + offset.estimate).abs() <= down_time + offset.uncertainty =>
            {
                DownCause::ClockSkew
            }
            (Some(_), Some(_)) => DownCause::HeartbeatLate,
            _ => DownCause::Unknown,
        }
    }
}

/// Follows one service row across polls. Memory is bounded by [`WINDOW`].
#[derive(Clone, Debug)]
pub struct HeartbeatTracker {
    /// Reference time of the previous successful poll that saw the row. Kept through
    /// failed polls: an outage only widens the next bracket, it is not a clock step.
    previous_poll: Option<f64>,
    previous_count: i64,
    count_seen_since: f64,
    advance_seen: bool,
    /// `(report_count, updated_at)` at the advances seen, oldest first.
    beats: VecDeque<(i64, i64)>,
    /// Offset brackets `(low, high)` of the latest heartbeats, oldest first.
    brackets: VecDeque<(f64, f64)>,
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
            beats: VecDeque::with_capacity(WINDOW + 1),
            brackets: VecDeque::with_capacity(WINDOW),
        }
    }

    /// Feeds one poll's reading of the row: the poll's reference time, `report_count`
    /// and `updated_at` (unix seconds as recorded by the service).
    pub fn observe(&mut self, reference_time: f64, report_count: i64, updated_at: Option<i64>) {
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
                // believed it was in [stamp, stamp + 1).
                let stamp = stamp as f64;
                self.add_bracket(stamp - reference_time, stamp + 1.0 - previous_poll);
                self.beats.push_back((report_count, stamp as i64));
                if self.beats.len() > WINDOW + 1 {
                    self.beats.pop_front();
                }
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
            self.beats.push_back((report_count, stamp));
        }
    }

    fn add_bracket(&mut self, low: f64, high: f64) {
        if let Some((current_low, current_high)) = self.intersection() {
            if low > current_high || high < current_low {
                // Disjoint: the clock was stepped. Keep only what follows the step.
                self.brackets.clear();
                let newest = self.beats.back().copied();
                self.beats.clear();
                self.beats.extend(newest);
            }
        }
        if self.brackets.len() == WINDOW {
            self.brackets.pop_front();
        }
        self.brackets.push_back((low, high));
    }

    fn intersection(&self) -> Option<(f64, f64)> {
        let mut brackets = self.brackets.iter();
        let first = *brackets.next()?;
        Some(brackets.fold(first, |(low, high), &(l, h)| (low.max(l), high.min(h))))
    }

    /// The current estimates.
    pub fn diagnosis(&self) -> Diagnosis {
        let heartbeat_interval = match (self.beats.front(), self.beats.back()) {
            (Some(&(first_count, first_stamp)), Some(&(last_count, last_stamp)))
                if last_count > first_count =>
            {
                Some((last_stamp - first_stamp) as f64 / (last_count - first_count) as f64)
            }
            _ => None,
        };
        let clock_offset = self.intersection().map(|(low, high)| ClockOffset {
            estimate: (low + high) / 2.0,
            uncertainty: (high - low) / 2.0,
            heartbeats: self.brackets.len(),
        });
        Diagnosis {
            heartbeat_interval,
            clock_offset,
            count_seen_since: self.count_seen_since,
            advance_seen: self.advance_seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Thresholds = Thresholds {
        service_down_time: 60.0,
        skew_budget: 50.0,
    };

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
            tracker.observe(start + t, beats, Some(stamp));
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
            tracker.observe(start + t - 0.5, count - 1, Some((start + t - 10.0) as i64));
            tracker.observe(start + t + 0.5, count, Some((start + t + 30.0) as i64));
        }
        let o = tracker.diagnosis().clock_offset.unwrap();
        assert!((o.estimate - 30.0).abs() <= o.uncertainty, "{o:?}");
    }

    #[test]
    fn no_offset_before_a_bracketed_heartbeat() {
        let mut tracker = HeartbeatTracker::new();
        tracker.observe(100.0, 5, Some(95));
        tracker.observe(101.0, 5, Some(95));
        let d = tracker.diagnosis();
        assert!(d.clock_offset.is_none() && !d.advance_seen);
    }

    fn diagnosis(
        interval: Option<f64>,
        offset: Option<f64>,
        seen_since: f64,
        advance_seen: bool,
    ) -> Diagnosis {
        Diagnosis {
            heartbeat_interval: interval,
            clock_offset: offset.map(|estimate| ClockOffset {
                estimate,
                uncertainty: 0.5,
                heartbeats: 3,
            }),
            count_seen_since: seen_since,
            advance_seen,
        }
    }

    #[test]
    fn causes() {
        let now = 1_000.0;
        let cause = |d: Diagnosis, age: f64, up: bool| d.down_cause(Some(age), up, now, &LIMITS);
        assert_eq!(
            cause(diagnosis(Some(10.0), Some(0.0), 995.0, true), 5.0, true),
            DownCause::None
        );
        // Silent for 70 s at a 10 s interval: stopped.
        assert_eq!(
            cause(diagnosis(Some(10.0), Some(0.0), 930.0, true), 75.0, false),
            DownCause::HeartbeatStopped
        );
        // Silent for 65 s at a 70 s interval: late. At 140 s: stopped after all.
        assert_eq!(
            cause(diagnosis(Some(70.0), Some(0.0), 935.0, true), 65.0, false),
            DownCause::HeartbeatLate
        );
        assert_eq!(
            cause(diagnosis(Some(70.0), Some(0.0), 860.0, true), 140.0, false),
            DownCause::HeartbeatStopped
        );
        // Heartbeats arrive; 70 s behind or 120 s ahead: skew.
        assert_eq!(
            cause(diagnosis(Some(10.0), Some(-70.0), 998.0, true), 72.0, false),
            DownCause::ClockSkew
        );
        assert_eq!(
            cause(
                diagnosis(Some(10.0), Some(120.0), 998.0, true),
                -118.0,
                false
            ),
            DownCause::ClockSkew
        );
        // Just started watching: nothing to judge by yet.
        assert_eq!(
            cause(diagnosis(None, None, 990.0, false), 300.0, false),
            DownCause::Unknown
        );
        // Watched for longer than service_down_time without an advance: stopped.
        assert_eq!(
            cause(diagnosis(None, None, 900.0, false), 300.0, false),
            DownCause::HeartbeatStopped
        );
    }
}
