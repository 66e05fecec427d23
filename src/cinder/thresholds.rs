//! The thresholds cinder judges a service by, as each of its processes applies them.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheduler_raises_a_service_down_time_its_interval_reaches() {
        assert_eq!(
            Thresholds::new(60.0, 10.0),
            Thresholds {
                service_down_time: 60.0,
                scheduler_service_down_time: 60.0,
                skew_budget: 50.0,
            }
        );
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
}
