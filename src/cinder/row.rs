//! One row of cinder's `services` table, and the choice of one row per service when
//! rows repeat.
//!
//! Pure: datetimes are plain unix seconds (UTC), so this can be checked against
//! cinder's own code without a clock or a database.

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

/// What identifies a service, and which of its rows is the current one.
///
/// `host` and `binary` are as its series show them, NULL and "" alike: two rows that
/// differ only in ways a label cannot show would otherwise give Prometheus two series
/// with one label set, of which it silently keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKey {
    pub binary: String,
    pub host: String,
    pub last_heartbeat: Option<i64>,
    pub id: i64,
}

impl ServiceKey {
    /// Takes the key out of a row (its host and binary move, they are not copied).
    pub fn of(row: ServiceRow) -> ServiceKey {
        ServiceKey {
            last_heartbeat: row.last_heartbeat(),
            binary: row.binary.unwrap_or_default(),
            host: row.host.unwrap_or_default(),
            id: row.id,
        }
    }

    fn service(&self) -> (&str, &str) {
        (&self.binary, &self.host)
    }
}

/// Keeps one value per `(host, binary)`: the one whose row has the latest heartbeat,
/// the higher id on a tie, so the choice does not depend on the order rows arrive in.
/// Cinder has no unique key there, so a re-created service can leave its old row
/// behind. The keys of the rows left out go to `left_out`. The result is sorted by
/// binary then host, for a stable output order.
pub fn keep_freshest<T>(
    mut candidates: Vec<(ServiceKey, T)>,
    mut left_out: impl FnMut(&ServiceKey),
) -> Vec<T> {
    candidates.sort_unstable_by(|(a, _), (b, _)| {
        a.service()
            .cmp(&b.service())
            // Newest first within a service, so the first of each run is the keeper.
            .then_with(|| b.last_heartbeat.cmp(&a.last_heartbeat))
            .then_with(|| b.id.cmp(&a.id))
    });
    candidates.dedup_by(|(later, _), (first, _)| {
        let same = later.service() == first.service();
        if same {
            left_out(later);
        }
        same
    });
    candidates.into_iter().map(|(_, value)| value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_heartbeat_falls_back_to_created_at() {
        let row = ServiceRow {
            created_at: Some(5),
            ..Default::default()
        };
        assert_eq!(row.last_heartbeat(), Some(5));
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
        let mut left_out = Vec::new();
        let kept = keep_freshest(candidates, |k| left_out.push(k.id));
        assert_eq!(kept, vec![3, 2, 5]);
        assert_eq!(left_out, vec![1, 4]);
    }

    #[test]
    fn null_and_empty_are_one_service() {
        let row = |id, host: Option<&str>, updated| ServiceRow {
            id,
            host: host.map(String::from),
            binary: Some("cinder-volume".into()),
            updated_at: updated,
            ..Default::default()
        };
        // Whatever order the rows come in, the same row is kept.
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let rows = [
                row(7, None, Some(5)),
                row(8, Some(""), Some(9)),
                row(9, None, Some(9)),
            ];
            let candidates = order
                .iter()
                .map(|&i| (ServiceKey::of(rows[i].clone()), rows[i].id))
                .collect();
            assert_eq!(keep_freshest(candidates, |_| {}), vec![9]);
        }
    }
}
