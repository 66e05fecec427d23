//! Which columns of `services` this cinder release has, and the poll query built from
//! them: absent optional columns are selected as NULL, so one decoder serves every
//! schema version.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::ReadError;

/// Columns every cinder release has had; without them this is not a cinder database.
pub const REQUIRED_COLUMNS: [&str; 12] = [
    "created_at",
    "updated_at",
    "deleted_at",
    "deleted",
    "id",
    "host",
    "binary",
    "topic",
    "report_count",
    "disabled",
    "availability_zone",
    "disabled_reason",
];

/// Columns added by later releases (Kilo to Queens); read only where present.
pub const OPTIONAL_COLUMNS: [&str; 8] = [
    "modified_at",
    "cluster_name",
    "uuid",
    "rpc_current_version",
    "object_current_version",
    "replication_status",
    "frozen",
    "active_backend_id",
];

/// The columns this database's `services` table has, and the poll query built for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Which of [`OPTIONAL_COLUMNS`] exist, in that order.
    pub optional_present: [bool; OPTIONAL_COLUMNS.len()],
    query: String,
}

impl Schema {
    /// Builds the schema from the table's column names; fails naming the first
    /// required column that is missing.
    pub fn from_columns<S: AsRef<str>>(columns: &[S]) -> Result<Schema, ReadError> {
        let has = |name: &str| {
            columns
                .iter()
                .any(|c| c.as_ref().eq_ignore_ascii_case(name))
        };
        if columns.is_empty() {
            return Err(ReadError::Schema(
                "the database has no `services` table (or this user may not read it): \
                 is this the cinder database, and was `GRANT SELECT ON <database>.services` given?"
                    .into(),
            ));
        }
        if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !has(c)) {
            return Err(ReadError::Schema(format!(
                "the `services` table has no `{missing}` column: not a cinder schema (or \
                 SELECT was granted on some columns only; grant it on the whole table)"
            )));
        }
        let optional_present = OPTIONAL_COLUMNS.map(has);
        // Fixed column positions whatever the release: absent columns read as NULL.
        let optional: Vec<String> = OPTIONAL_COLUMNS
            .iter()
            .zip(optional_present)
            .map(|(c, present)| {
                if present {
                    format!("s.`{c}`")
                } else {
                    "NULL".to_string()
                }
            })
            .collect();
        // The derived one-row table keeps the reference time even when no service
        // is registered. `deleted = 0` also hides rows whose `deleted` is NULL, as
        // cinder's own listing does.
        let query = format!(
            "SELECT UTC_TIMESTAMP(6), s.`id`, s.`host`, s.`binary`, s.`availability_zone`, \
             s.`report_count`, s.`disabled`, s.`disabled_reason`, s.`created_at`, s.`updated_at`, {} \
             FROM (SELECT 1 AS `one`) AS `reference` LEFT JOIN `services` AS s ON s.`deleted` = 0",
            optional.join(", ")
        );
        Ok(Schema {
            optional_present,
            query,
        })
    }

    /// The poll query for this schema.
    pub fn query(&self) -> &str {
        &self.query
    }
}

/// Reads the `services` table's column names for [`Schema::from_columns`].
pub async fn detect_schema(conn: &mut Conn) -> Result<Schema, ReadError> {
    let columns: Vec<String> = conn
        .query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'services'",
        )
        .await
        .map_err(ReadError::Database)?;
    if columns.is_empty() {
        // information_schema lists only what this user may read: say which account and
        // which database, so that the fix can be copied as it is.
        let who: Option<(Option<String>, String)> = conn
            .query_first("SELECT DATABASE(), CURRENT_USER()")
            .await
            .map_err(ReadError::Database)?;
        if let Some((Some(database), account)) = who {
            let account = match account.rsplit_once('@') {
                Some((user, host)) => format!("'{user}'@'{host}'"),
                None => account,
            };
            return Err(ReadError::Schema(format!(
                "no `services` table is visible to {account} in database `{database}`: is this \
                 the cinder database? The exporter needs only \
                 GRANT SELECT ON `{database}`.`services` TO {account}"
            )));
        }
    }
    Schema::from_columns(&columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_reads_absent_columns_as_null() {
        let oldest = Schema::from_columns(&REQUIRED_COLUMNS).unwrap();
        assert!(oldest.optional_present.iter().all(|p| !p));
        assert!(!oldest.query().contains("uuid"));
        let all: Vec<&str> = REQUIRED_COLUMNS
            .iter()
            .chain(&OPTIONAL_COLUMNS)
            .copied()
            .collect();
        let newest = Schema::from_columns(&all).unwrap();
        assert!(newest.query().contains("s.`uuid`"));
        assert_eq!(
            oldest.query().matches(',').count(),
            newest.query().matches(',').count()
        );
    }

    #[test]
    fn schema_errors_name_the_problem() {
        let err = Schema::from_columns::<&str>(&[]).unwrap_err().to_string();
        assert!(err.contains("no `services` table"), "{err}");
        let err = Schema::from_columns(&REQUIRED_COLUMNS[1..])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`created_at`"), "{err}");
    }
}
