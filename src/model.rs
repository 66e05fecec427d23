//! The services as cinder sees them: one row of the `services` table, cinder's two
//! up/down verdicts, and the choice of one row per service when rows repeat.
//!
//! Everything here is pure: times are plain numbers (unix seconds, UTC) so that the
//! verdicts can be checked against cinder's own code without a clock or a database.

/// One row of cinder's `services` table, as read by one poll.
///
/// Columns that older cinder schemas lack (see `database::Schema`) read as `None`.
/// Datetimes are unix seconds: cinder stores naive UTC with whole seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceRow {
    pub id: i64,
    pub host: Option<String>,
    pub binary: Option<String>,
    pub availability_zone: Option<String>,
    pub report_count: i64,
    pub disabled: Option<bool>,
    pub disabled_reason: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub modified_at: Option<i64>,
    pub cluster_name: Option<String>,
    pub uuid: Option<String>,
    pub rpc_current_version: Option<String>,
    pub object_current_version: Option<String>,
    pub replication_status: Option<String>,
    pub frozen: Option<bool>,
    pub active_backend_id: Option<String>,
}

impl ServiceRow {
    /// The heartbeat the API judges by: `updated_at or created_at`.
    pub fn last_heartbeat(&self) -> Option<i64> {
        self.updated_at.or(self.created_at)
    }

    /// `enabled = not disabled`; cinder treats a NULL `disabled` as enabled.
    pub fn enabled(&self) -> bool {
        !self.disabled.unwrap_or(false)
    }

    /// The backend part of a cinder-volume host (`node@backend`), or "" for plain hosts.
    pub fn backend(&self) -> &str {
        self.host
            .as_deref()
            .and_then(|h| h.split_once('@'))
            .map_or("", |(_, backend)| backend)
    }
}

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

/// What identifies a service, and which of its rows is the current one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKey {
    pub binary: Option<String>,
    pub host: Option<String>,
    pub last_heartbeat: Option<i64>,
    pub id: i64,
}

impl ServiceKey {
    /// Takes the key out of a row (its host and binary move, they are not copied).
    pub fn of(row: ServiceRow) -> ServiceKey {
        ServiceKey {
            last_heartbeat: row.last_heartbeat(),
            binary: row.binary,
            host: row.host,
            id: row.id,
        }
    }
}

/// Keeps one value per `(host, binary)`: the one whose row has the latest heartbeat,
/// the higher id on a tie. Cinder has no unique key there, so a re-created service
/// leaves its old row behind; publishing both would give Prometheus duplicate series.
/// The result is sorted by binary then host, for a stable output order.
pub fn keep_freshest<T>(mut candidates: Vec<(ServiceKey, T)>) -> Vec<T> {
    candidates.sort_unstable_by(|(a, _), (b, _)| {
        (a.binary.as_deref(), a.host.as_deref())
            .cmp(&(b.binary.as_deref(), b.host.as_deref()))
            // Newest first within a service, so the first of each run is the keeper.
            .then_with(|| b.last_heartbeat.cmp(&a.last_heartbeat))
            .then_with(|| b.id.cmp(&a.id))
    });
    candidates.dedup_by(|(later, _), (first, _)| {
        later.binary == first.binary && later.host == first.host
    });
    candidates.into_iter().map(|(_, value)| value).collect()
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
    fn last_heartbeat_falls_back_to_created_at() {
        let row = ServiceRow {
            created_at: Some(5),
            ..Default::default()
        };
        assert_eq!(row.last_heartbeat(), Some(5));
        assert_eq!(heartbeat_age(8.5, row.last_heartbeat()), Some(3.5));
    }

    #[test]
    fn backend_is_the_part_after_the_at_sign() {
        let mut row = ServiceRow {
            host: Some("ctl1@lvm".into()),
            ..Default::default()
        };
        assert_eq!(row.backend(), "lvm");
        row.host = Some("ctl1".into());
        assert_eq!(row.backend(), "");
        row.host = None;
        assert_eq!(row.backend(), "");
    }

    #[test]
    fn keeps_the_freshest_row_of_each_service() {
        let key = |id, host: &str, binary: &str, updated| {
            let row = ServiceRow {
                id,
                host: Some(host.into()),
                binary: Some(binary.into()),
                updated_at: updated,
                ..Default::default()
            };
            (ServiceKey::of(row), id)
        };
        let candidates = vec![
            key(1, "a", "cinder-volume", Some(100)),
            key(2, "a", "cinder-volume", Some(200)),
            key(3, "a", "cinder-scheduler", Some(50)),
            key(4, "b", "cinder-volume", None),
            key(5, "b", "cinder-volume", None),
        ];
        assert_eq!(keep_freshest(candidates), vec![3, 2, 5]);
    }
}
