//! Why a service is down: its observed heartbeat interval, an estimate of its clock
//! offset, and the cause that follows from them. Pure: observations in, numbers out.
//!
//! Only an advance of `report_count` proves a heartbeat (`updated_at` also moves on a
//! restart or a freeze through the API, stamped by other clocks). Each time a poll sees
//! the count advance, the latest heartbeat happened after the previous poll's reference
//! time `R₀` and no later than this poll's `R₁`, while `updated_at` — the service's
//! own clock, cut to whole seconds by MariaDB — says the service believed it was
//! `[u, u + 1)` then. So the offset (service clock minus reference clock) lies in
//! `[u − R₁, u + 1 − R₀]`: a bracket one poll interval plus one second wide. Heartbeats
//! land at different phases of the poll cycle and of the second, so intersecting the
//! brackets of the last [`WINDOW`] heartbeats narrows the bound; when heartbeats and
//! polls run in lockstep (a whole-second interval that is a multiple of the poll
//! interval) every bracket is alike and the bound stays one bracket wide. A bracket
//! that misses the intersection means the node's clock was stepped: the estimate
//! restarts from that bracket, and so does the interval (a step would otherwise read
//! as one very long or negative interval).
//!
//! The interval is the mean Δupdated_at / Δreport_count over the same window; a pair
//! of heartbeats far off that mean (a stop and resume, a new report_interval) restarts
//! it, so that a silence is not averaged into the service's pace.
//!
//! The bound assumes that the stamp is taken when the heartbeat becomes visible. In
//! truth the service reads its clock before its UPDATE commits, so a heartbeat a poll
//! just missed may carry a stamp from up to that write latency before the poll: the
//! bound can be off by the latency (milliseconds on a healthy database). How the
//! database kept the second (cut or rounded) sets where in it the clock read was: see
//! [`StampWindow`].

use std::collections::VecDeque;

/// How many recent heartbeats (advances seen by a poll) the estimates use. It bounds
/// the memory per service and how long an old clock or interval lingers.
pub const WINDOW: usize = 16;

/// `updated_at` keeps whole seconds: cinder may see a heartbeat up to this much older
/// than it is.
const STAMP_RESOLUTION: f64 = 1.0;

/// Where the service's clock stood, relative to the whole-second `updated_at` the
/// database kept of it: somewhere in `[stamp + from, stamp + to)`. cinder sends
/// microseconds; a `datetime` column without a fraction cuts them (MariaDB) or rounds
/// them (MySQL), unless the writing session's `sql_mode` says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StampWindow {
    pub from: f64,
    pub to: f64,
}

impl StampWindow {
    /// The fraction is cut: MariaDB's default, MySQL's with `TIME_TRUNCATE_FRACTIONAL`.
    pub const TRUNCATED: StampWindow = StampWindow { from: 0.0, to: 1.0 };
    /// Rounded to the nearest second: MySQL's default, MariaDB's with
    /// `TIME_ROUND_FRACTIONAL`.
    pub const ROUNDED: StampWindow = StampWindow {
        from: -0.5,
        to: 0.5,
    };
    /// Either of the two: the bound then holds whichever the writer used.
    pub const EITHER: StampWindow = StampWindow {
        from: -0.5,
        to: 1.0,
    };

    /// What cinder's writes do on a server of this `VERSION()` whose global
    /// `sql_mode` is `global_sql_mode`.
    ///
    /// cinder's sessions set their own `sql_mode` (oslo.db's `[database]
    /// mysql_sql_mode`, `TRADITIONAL` by default, which has neither flag), unless that
    /// option is empty, when the server's global mode applies. So the server's default
    /// behaviour is certain when the global mode lacks the flag that changes it; when
    /// the global mode has it, cinder's sessions may or may not, and the window covers
    /// both.
    pub fn of_server(version: &str, global_sql_mode: &str) -> StampWindow {
        let has = |flag: &str| {
            global_sql_mode
                .split(',')
                .any(|mode| mode.trim().eq_ignore_ascii_case(flag))
        };
        let mariadb = version.to_ascii_lowercase().contains("mariadb");
        match (
            mariadb,
            mariadb && has("TIME_ROUND_FRACTIONAL") || !mariadb && has("TIME_TRUNCATE_FRACTIONAL"),
        ) {
            (_, true) => StampWindow::EITHER,
            (true, false) => StampWindow::TRUNCATED,
            (false, false) => StampWindow::ROUNDED,
        }
    }
}

/// The clock is blamed for a down only when its offset is known to exceed this beyond
/// the uncertainty: an allowance for the write latency the bound does not cover, so
/// that a right clock is never blamed for a heartbeat that is simply old.
const SKEW_MARGIN: f64 = 0.5;

/// The thresholds the verdicts and causes use, in seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// What cinder-api judges by: `service_down_time` as configured.
    pub service_down_time: f64,
    /// What the cinder-scheduler process judges by (see [`Thresholds::new`]).
    pub scheduler_service_down_time: f64,
    /// `service_down_time - report_interval`: the skew a service may have and still
    /// show up steadily.
    pub skew_budget: f64,
}

impl Thresholds {
    /// The thresholds for cinder.conf's `service_down_time` and `report_interval`.
    ///
    /// A cinder service process (the scheduler among them, not cinder-api) checks its
    /// configuration at start (`Service.basic_config_check`): when `service_down_time
    /// <= report_interval` it raises its own `service_down_time` to `int(2.5 ×
    /// report_interval)`. The scheduler's verdict then uses that value, while
    /// cinder-api keeps the configured one.
    pub fn new(service_down_time: f64, report_interval: f64) -> Thresholds {
        let scheduler_service_down_time = if service_down_time <= report_interval {
            (report_interval * 2.5).trunc()
        } else {
            service_down_time
        };
        Thresholds {
            service_down_time,
            scheduler_service_down_time,
            skew_budget: service_down_time - report_interval,
        }
    }
}

/// Why cinder-api shows a service down; exported one-hot as `cinder_service_down_cause`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownCause {
    /// The service is up.
    None = 0,
    /// `report_count` has not advanced for longer than `service_down_time`, or the
    /// latest heartbeat is too old for a right clock although the service's interval
    /// would have kept it up: it missed its schedule.
    HeartbeatStopped = 1,
    /// Heartbeats arrive, but the service's clock, known to be off, puts `updated_at`
    /// too far from now.
    ClockSkew = 2,
    /// Heartbeats arrive, but at an interval that, plus the second cinder may lose to
    /// truncating `updated_at`, reaches `service_down_time`.
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

    /// The `cause` label value (the renderer writes precomputed labels; its test
    /// checks them against this), also shown on the status page.
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
    /// Mean seconds between heartbeats over the window: Δupdated_at / Δreport_count,
    /// counted from the latest clock step or change of pace.
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
    /// How long `report_count` has certainly not advanced, as of a poll at reference
    /// time `poll_time`: the last advance happened no later than the poll that saw it,
    /// and none happened since, since this poll would have seen it. A lower bound,
    /// judged by the database clock only, so a skewed node does not look silent; and
    /// frozen between polls, so a database outage does not make every service silent.
    /// Before an advance was seen it counts from the exporter's first sight.
    pub fn silence(&self, poll_time: f64) -> f64 {
        (poll_time - self.count_seen_since).max(0.0)
    }

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
                Some(interval)
                    if late_by_schedule(interval, down_time) && silence <= interval + down_time =>
                {
                    DownCause::HeartbeatLate
                }
                _ => DownCause::HeartbeatStopped,
            };
        }
        if !self.advance_seen {
            return DownCause::Unknown;
        }
        // A heartbeat arrived within service_down_time, yet cinder shows the service
        // down. The clock is to blame if it is known to be off and correcting it by
        // the estimated offset would bring the age within service_down_time. A clock
        // that may be right is not: then the stamp is simply old, as happens when
        // heartbeats stop and cinder, reading whole seconds, sees it before this
        // exporter's polls do.
        if let (Some(age), Some(offset)) = (age, self.clock_offset) {
            let known_off = offset.estimate.abs() > offset.uncertainty + SKEW_MARGIN;
            if known_off && (age + offset.estimate).abs() <= down_time + offset.uncertainty {
                return DownCause::ClockSkew;
            }
        }
        // The latest heartbeat is too old for a right clock: late if the service's
        // own schedule leaves it down between heartbeats, else it missed its schedule.
        match self.heartbeat_interval {
            Some(interval) if late_by_schedule(interval, down_time) => DownCause::HeartbeatLate,
            Some(_) => DownCause::HeartbeatStopped,
            None => DownCause::Unknown,
        }
    }
}

/// Whether heartbeats at `interval` leave a service with a right clock down between
/// them: cinder may see a heartbeat up to [`STAMP_RESOLUTION`] older than it is, so an
/// interval within that of `service_down_time` is already too long.
fn late_by_schedule(interval: f64, down_time: f64) -> bool {
    interval + STAMP_RESOLUTION >= down_time
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
                self.add_bracket(
                    seconds + stamps.from - reference_time,
                    seconds + stamps.to - previous_poll,
                );
                self.add_beat(report_count, stamp);
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
                // Disjoint: the clock was stepped. Keep only what follows the step:
                // the heartbeat being added (its beat is pushed after this), not the
                // one before it, whose stamp is on the old clock.
                self.brackets.clear();
                self.beats.clear();
            }
        }
        if self.brackets.len() == WINDOW {
            self.brackets.pop_front();
        }
        self.brackets.push_back((low, high));
    }

    /// Adds a heartbeat to the interval window. A pair of heartbeats far off the
    /// window's mean means the pace changed: a stop and resume (the pair spans the
    /// silence) or a new report_interval. The window then restarts from that pair,
    /// and the next pair either confirms the new pace or restarts it again, so a
    /// silence counts for one heartbeat only instead of inflating the mean for
    /// [`WINDOW`] of them.
    fn add_beat(&mut self, report_count: i64, stamp: i64) {
        if let (Some(mean), Some(&(last_count, last_stamp))) =
            (self.mean_interval(), self.beats.back())
        {
            let pair = (stamp - last_stamp) as f64 / (report_count - last_count) as f64;
            // The second of slack keeps the stamps' truncation from triggering this,
            // and jitter too unless it approaches a third of the interval.
            if pair > 2.0 * mean + STAMP_RESOLUTION || pair < mean / 2.0 - STAMP_RESOLUTION {
                self.beats.drain(..self.beats.len() - 1);
            }
        }
        self.beats.push_back((report_count, stamp));
        if self.beats.len() > WINDOW + 1 {
            self.beats.pop_front();
        }
    }

    /// Δupdated_at / Δreport_count across the window.
    fn mean_interval(&self) -> Option<f64> {
        match (self.beats.front(), self.beats.back()) {
            (Some(&(first_count, first_stamp)), Some(&(last_count, last_stamp)))
                if last_count > first_count =>
            {
                Some((last_stamp - first_stamp) as f64 / (last_count - first_count) as f64)
            }
            _ => None,
        }
    }

    fn intersection(&self) -> Option<(f64, f64)> {
        let mut brackets = self.brackets.iter();
        let first = *brackets.next()?;
        Some(brackets.fold(first, |(low, high), &(l, h)| (low.max(l), high.min(h))))
    }

    /// The current estimates.
    pub fn diagnosis(&self) -> Diagnosis {
        let heartbeat_interval = self.mean_interval();
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
        scheduler_service_down_time: 60.0,
        skew_budget: 50.0,
    };

    #[test]
    fn the_scheduler_raises_a_service_down_time_its_interval_reaches() {
        assert_eq!(Thresholds::new(60.0, 10.0), LIMITS);
        let raised = Thresholds::new(10.0, 10.0);
        assert_eq!(raised.service_down_time, 10.0);
        assert_eq!(raised.scheduler_service_down_time, 25.0);
        // int() truncates: 2.5 × 7 = 17.5 -> 17.
        assert_eq!(Thresholds::new(5.0, 7.0).scheduler_service_down_time, 17.0);
        assert_eq!(
            Thresholds::new(11.0, 10.0).scheduler_service_down_time,
            11.0
        );
    }

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

    /// Polls `tracker` every `poll` s over `[from, to)` (seconds after a fixed start) a
    /// row whose `(report_count, updated_at)` at time `t` is `row(t)`, the stamp cut to
    /// whole seconds as MariaDB does.
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
    /// stored rounded as MySQL does: whether the bound always holds the truth.
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
    fn the_window_follows_the_server_and_its_mode() {
        let mariadb = "10.11.19-MariaDB-0+deb12u1";
        let mysql = "8.0.40";
        let traditional = "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,TRADITIONAL,NO_ENGINE_SUBSTITUTION";
        assert_eq!(
            StampWindow::of_server(mariadb, traditional),
            StampWindow::TRUNCATED
        );
        assert_eq!(StampWindow::of_server(mariadb, ""), StampWindow::TRUNCATED);
        assert_eq!(
            StampWindow::of_server(mariadb, "time_round_fractional,STRICT_TRANS_TABLES"),
            StampWindow::EITHER
        );
        assert_eq!(
            StampWindow::of_server(mysql, traditional),
            StampWindow::ROUNDED
        );
        assert_eq!(
            StampWindow::of_server(mysql, "ONLY_FULL_GROUP_BY,TIME_TRUNCATE_FRACTIONAL"),
            StampWindow::EITHER
        );
        // The other server's flag means nothing here.
        assert_eq!(
            StampWindow::of_server(mysql, "TIME_ROUND_FRACTIONAL"),
            StampWindow::ROUNDED
        );
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
        assert_eq!(tracker.beats.len(), WINDOW + 1);
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
        assert_eq!(tracker.beats.len(), WINDOW + 1);
    }

    #[test]
    fn a_right_clock_is_not_blamed_for_an_old_heartbeat() {
        // service_down_time 3 s. Cinder reads whole seconds, so it sees a heartbeat up
        // to a second older than it is, and before this exporter's polls do.
        let limits = Thresholds::new(3.0, 1.0);
        let now = 1_000.0;
        let cause = |interval: f64, estimate: f64, silence: f64, age: f64| {
            let d = Diagnosis {
                heartbeat_interval: Some(interval),
                clock_offset: Some(ClockOffset {
                    estimate,
                    uncertainty: 0.6,
                    heartbeats: 8,
                }),
                count_seen_since: now - silence,
                advance_seen: true,
            };
            d.down_cause(Some(age), false, now, &limits)
        };
        // Stopped at a 1 s interval: down at age 3.4 after a silence of only 2.2 s.
        assert_eq!(cause(1.0, 0.2, 2.2, 3.4), DownCause::HeartbeatStopped);
        // A 4 s interval: down between heartbeats, before and after the silence
        // passes service_down_time.
        assert_eq!(cause(4.0, -0.3, 2.4, 3.2), DownCause::HeartbeatLate);
        assert_eq!(cause(4.0, -0.3, 3.5, 4.2), DownCause::HeartbeatLate);
        // 2.5 s plus the truncated second also reaches 3 s: late, not stopped.
        assert_eq!(cause(2.5, 0.0, 2.6, 3.1), DownCause::HeartbeatLate);
        assert_eq!(cause(2.5, 0.0, 3.2, 3.3), DownCause::HeartbeatLate);
        // A clock known to be 45 s behind is blamed; one that may be right is not.
        assert_eq!(cause(1.0, -45.0, 0.5, 46.0), DownCause::ClockSkew);
        assert_eq!(cause(1.0, -1.0, 2.2, 3.4), DownCause::HeartbeatStopped);
        // Unknown interval (just restarted): no guess.
        let d = Diagnosis {
            heartbeat_interval: None,
            clock_offset: None,
            count_seen_since: now - 2.0,
            advance_seen: true,
        };
        assert_eq!(
            d.down_cause(Some(3.5), false, now, &limits),
            DownCause::Unknown
        );
    }

    #[test]
    fn a_skewed_service_that_stops_is_blamed_on_its_clock_until_silent_too_long() {
        // 45 s behind, 10 s interval, service_down_time 60 s: cinder shows it down
        // 15 s after its last heartbeat; a right clock would keep it up until 60 s.
        let now = 1_000.0;
        let d = |silence: f64| diagnosis(Some(10.0), Some(-45.0), now - silence, true);
        let cause = |silence: f64| d(silence).down_cause(Some(45.0 + silence), false, now, &LIMITS);
        assert_eq!(cause(20.0), DownCause::ClockSkew);
        assert_eq!(cause(61.0), DownCause::HeartbeatStopped);
    }
}
