//! The statements cinder's `Service` object sends to the `services` table: find or
//! create the row at start, load it and save it on every heartbeat.
//!
//! Timestamps are always the simulated service's own clock, sent as naive
//! `YYYY-MM-DD HH:MM:SS.ffffff` text as PyMySQL sends Python datetimes; the `datetime`
//! column keeps whole seconds. The database's `NOW()` is never used: the whole point
//! is that cinder stamps rows with the writer's clock.

use chrono::NaiveDateTime;
use mysql_async::prelude::{Query, Queryable, WithParams};
use mysql_async::{Params, Pool, Value};
use tokio::sync::Mutex;

use crate::fleet::ServiceSpec;

/// Result of a table statement; every failure is the database's.
pub type Result<T> = std::result::Result<T, mysql_async::Error>;

/// The `services` table as this cinder release has it, reached through a shared pool.
pub struct Table {
    pool: Pool,
    /// The `uuid` column exists (cinder Queens and later) and cinder fills it at insert.
    has_uuid: bool,
    /// Serialises "find or create": two fleet entries for the same (host, binary) are
    /// two processes sharing one row (cinder's `backup_workers > 1`), not two rows.
    setup: Mutex<()>,
}

/// What report_state reads from the row before saving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub report_count: i64,
    pub availability_zone: Option<String>,
}

impl Table {
    /// A table reached through `pool`; `has_uuid` as detected from information_schema.
    pub fn new(pool: Pool, has_uuid: bool) -> Table {
        Table {
            pool,
            has_uuid,
            setup: Mutex::new(()),
        }
    }

    /// What a starting cinder service does: reuse the live row for (host, binary) if
    /// there is one (a restart), else insert a fresh one stamped with `now`.
    /// Returns the row id and whether it was created.
    pub async fn find_or_create(
        &self,
        spec: &ServiceSpec,
        now: impl FnOnce() -> NaiveDateTime,
    ) -> Result<(i64, bool)> {
        let _one_at_a_time = self.setup.lock().await;
        let mut conn = self.pool.get_conn().await?;
        // `deleted = 0` also skips rows whose `deleted` is NULL, as cinder does.
        let existing: Option<i64> = "SELECT `id` FROM `services` \
             WHERE `host` = ? AND `binary` = ? AND `deleted` = 0 ORDER BY `id` LIMIT 1"
            .with((spec.host.as_str(), spec.binary.as_str()))
            .first(&mut conn)
            .await?;
        drop(conn);
        match existing {
            Some(id) => Ok((id, false)),
            None => Ok((self.insert(spec, now()).await?, true)),
        }
    }

    /// Inserts a new live row as cinder's `_create_service_ref` does, at first start
    /// and when the row disappeared under a running service.
    pub async fn insert(&self, spec: &ServiceSpec, now: NaiveDateTime) -> Result<i64> {
        let now = literal(now);
        let mut columns = String::from(
            "`created_at`, `updated_at`, `deleted`, `host`, `binary`, `topic`, `report_count`, \
             `disabled`, `availability_zone`, `disabled_reason`",
        );
        let mut placeholders = String::from("?, ?, 0, ?, ?, ?, 0, ?, ?, ?");
        let mut params: Vec<Value> = vec![
            now.clone().into(),
            now.into(),
            spec.host.as_str().into(),
            spec.binary.as_str().into(),
            // cinder's topic for each service is its binary name (`cinder-volume`, …).
            spec.binary.as_str().into(),
            i64::from(spec.disabled).into(),
            spec.zone.as_str().into(),
            spec.disabled_reason.as_deref().into(),
        ];
        if self.has_uuid {
            columns.push_str(", `uuid`");
            placeholders.push_str(", ?");
            params.push(random_uuid().into());
        }
        let mut conn = self.pool.get_conn().await?;
        conn.exec_drop(
            format!("INSERT INTO `services` ({columns}) VALUES ({placeholders})"),
            Params::Positional(params),
        )
        .await?;
        let id = conn.last_insert_id().unwrap_or(0);
        Ok(i64::try_from(id).unwrap_or(i64::MAX))
    }

    /// report_state's load: the live row by id, or `None` if it was deleted (cinder then
    /// recreates it).
    pub async fn load(&self, id: i64) -> Result<Option<Loaded>> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(i64, Option<String>)> =
            "SELECT `report_count`, `availability_zone` FROM `services` \
             WHERE `id` = ? AND `deleted` = 0"
                .with((id,))
                .first(&mut conn)
                .await?;
        Ok(row.map(|(report_count, availability_zone)| Loaded {
            report_count,
            availability_zone,
        }))
    }

    /// report_state's save: the new count and the service's clock as `updated_at`, and
    /// the zone only when it differs (cinder writes back only changed fields). Returns
    /// false if no live row had that id any more (the pool's connections report
    /// matched rows, not changed ones).
    pub async fn save(
        &self,
        id: i64,
        report_count: i64,
        updated_at: NaiveDateTime,
        zone: Option<&str>,
    ) -> Result<bool> {
        let mut conn = self.pool.get_conn().await?;
        let updated_at = literal(updated_at);
        match zone {
            None => {
                "UPDATE `services` SET `report_count` = ?, `updated_at` = ? \
                 WHERE `id` = ? AND `deleted` = 0"
                    .with((report_count, updated_at, id))
                    .ignore(&mut conn)
                    .await?
            }
            Some(zone) => {
                "UPDATE `services` SET `report_count` = ?, `updated_at` = ?, \
                 `availability_zone` = ? WHERE `id` = ? AND `deleted` = 0"
                    .with((report_count, updated_at, zone, id))
                    .ignore(&mut conn)
                    .await?
            }
        }
        Ok(conn.affected_rows() > 0)
    }
}

/// The timestamp as PyMySQL renders a Python datetime: microseconds included, for the
/// server to truncate to the column's whole seconds.
pub fn literal(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A random version-4 UUID in its usual text form, as cinder's `uuid.uuid4()` gives.
fn random_uuid() -> String {
    let mut bits = fastrand::u128(..);
    // Version 4 in the 13th hex digit, RFC 4122 variant in the 17th.
    bits = (bits & !(0xF << 76)) | (0x4 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_look_like_uuid4() {
        for _ in 0..100 {
            let u = random_uuid();
            assert_eq!(u.len(), 36);
            let parts: Vec<&str> = u.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12]
            );
            assert!(parts[2].starts_with('4'), "{u}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{u}");
        }
    }

    #[test]
    fn timestamps_carry_microseconds() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .unwrap()
            .and_hms_micro_opt(3, 4, 5, 60)
            .unwrap();
        assert_eq!(literal(t), "2026-01-02 03:04:05.000060");
    }
}
