//! cinder's two up/down verdicts, exactly as cinder-api and the scheduler compute them.
//!
//! Pure: times are plain numbers (unix seconds on the reference clock), so the verdicts
//! can be checked against cinder's own code without a clock or a database.

use super::{Diagnosis, DownCause, Thresholds};

/// Signed heartbeat age, `now - last_heartbeat`; negative when the service's clock
/// runs ahead of the reference clock.
pub fn heartbeat_age(reference_now: f64, last_heartbeat: Option<i64>) -> Option<f64> {
    last_heartbeat.map(|t| reference_now - t as f64)
}

/// The API's verdict (`openstack volume service list`): up iff
/// `abs(now - (updated_at or created_at)) <= service_down_time`.
/// With neither timestamp set there is nothing to judge by: down.
pub fn api_up(age: Option<f64>, service_down_time: f64) -> bool {
    age.is_some_and(|age| age.abs() <= service_down_time)
}

/// The scheduler's verdict (also `cinder-manage service list` and clusters):
/// up iff `updated_at` is set and `updated_at >= now - service_down_time`.
/// No `abs` and no `created_at` fallback: a clock ahead is always up here.
pub fn scheduler_up(reference_now: f64, updated_at: Option<i64>, service_down_time: f64) -> bool {
    updated_at.is_some_and(|t| t as f64 >= reference_now - service_down_time)
}

/// One service's verdicts at one instant: its heartbeat age, what cinder-api and the
/// scheduler say, and why it is down.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    pub age: Option<f64>,
    pub api_up: bool,
    pub scheduler_up: bool,
    pub cause: DownCause,
}

impl Verdict {
    /// The verdicts at `reference_now` for a service whose row holds `last_heartbeat`
    /// (`updated_at or created_at`) and `updated_at`.
    pub fn at(
        reference_now: f64,
        last_heartbeat: Option<i64>,
        updated_at: Option<i64>,
        diagnosis: &Diagnosis,
        thresholds: &Thresholds,
    ) -> Verdict {
        let age = heartbeat_age(reference_now, last_heartbeat);
        let up = api_up(age, thresholds.service_down_time);
        Verdict {
            age,
            api_up: up,
            scheduler_up: scheduler_up(
                reference_now,
                updated_at,
                thresholds.scheduler_service_down_time,
            ),
            cause: diagnosis.down_cause(age, up, reference_now, thresholds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_verdict_is_symmetric_and_inclusive() {
        assert!(api_up(Some(60.0), 60.0));
        assert!(api_up(Some(-60.0), 60.0));
        assert!(!api_up(Some(60.000001), 60.0));
        assert!(!api_up(Some(-61.0), 60.0));
        assert!(!api_up(None, 60.0));
    }

    #[test]
    fn scheduler_verdict_ignores_future_and_created_at() {
        let now = 1_000.0;
        assert!(scheduler_up(now, Some(940), 60.0));
        assert!(!scheduler_up(now, Some(939), 60.0));
        assert!(scheduler_up(now, Some(1_500), 60.0)); // clock far ahead: still up
        assert!(!scheduler_up(now, None, 60.0));
    }

    #[test]
    fn age_is_signed() {
        assert_eq!(heartbeat_age(8.5, Some(5)), Some(3.5));
        assert_eq!(heartbeat_age(3.0, Some(5)), Some(-2.0));
        assert_eq!(heartbeat_age(3.0, None), None);
    }
}
