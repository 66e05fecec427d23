//! Why cinder-api shows a service down: the judgement made at scrape time from the
//! service's [`Diagnosis`], its heartbeat age and the thresholds in force.

use super::diagnosis::Diagnosis;
use super::stamp_window::STAMP_RESOLUTION;
use super::thresholds::Thresholds;

/// The clock is blamed for a down only when its offset is known to exceed this beyond
/// the uncertainty: an allowance for the write latency the bound does not cover, so
/// that a right clock is never blamed for a heartbeat that is simply old.
const SKEW_MARGIN: f64 = 0.5;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cinder::clock_offset::ClockOffset;

    const LIMITS: Thresholds = Thresholds {
        service_down_time: 60.0,
        scheduler_service_down_time: 60.0,
        skew_budget: 50.0,
    };

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
