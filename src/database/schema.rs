//! Which columns of `services` this cinder release has and where the poll finds
//! them: one decoder serves every schema version, and follows an upgrade at once.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::error::account_and_database;
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

/// The poll: every live row with the database's clock, in one statement.
///
/// `s.*` rather than a column list: the result's own column names say where each
/// column is, so a cinder upgrade (`db sync` adding or dropping columns) is read at
/// the very next poll, with no second query and no failed poll first. The derived
/// one-row table keeps the reference time even when no service is registered;
/// `deleted = 0` also hides rows whose `deleted` is NULL, as cinder's own listing does.
pub const POLL_QUERY: &str = "SELECT UTC_TIMESTAMP(6), s.* \
     FROM (SELECT 1 AS `one`) AS `reference` LEFT JOIN `services` AS s ON s.`deleted` = 0";

/// Where the columns the exporter reads sit in a list of column names (the poll
/// result's, or information_schema's), and which optional ones this release has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Positions of [`REQUIRED_COLUMNS`], in that order.
    required: [usize; REQUIRED_COLUMNS.len()],
    /// Positions of [`OPTIONAL_COLUMNS`], in that order; `None` where absent.
    optional: [Option<usize>; OPTIONAL_COLUMNS.len()],
}

impl Schema {
    /// Finds the columns by name (as MariaDB and MySQL compare them: without case);
    /// fails naming the first required column that is missing.
    pub fn from_columns<S: AsRef<str>>(columns: &[S]) -> Result<Schema, ReadError> {
        let position = |name: &str| {
            columns
                .iter()
                .position(|c| c.as_ref().eq_ignore_ascii_case(name))
        };
        if columns.is_empty() {
            return Err(ReadError::Schema(
                "the database has no `services` table (or this account may not read it): \
                 is this the cinder database, and was SELECT on its `services` table granted?"
                    .into(),
            ));
        }
        let mut required = [0; REQUIRED_COLUMNS.len()];
        for (slot, name) in required.iter_mut().zip(REQUIRED_COLUMNS) {
            *slot = position(name).ok_or_else(|| {
                ReadError::Schema(format!(
                    "the `services` table has no `{name}` column: not a cinder schema (or \
                     SELECT was granted on some columns only; grant it on the whole table)"
                ))
            })?;
        }
        Ok(Schema {
            required,
            optional: OPTIONAL_COLUMNS.map(position),
        })
    }

    /// Where a required column is.
    pub fn required(&self, column: Required) -> usize {
        self.required[column as usize]
    }

    /// Where an optional column is, if this release has it.
    pub fn optional(&self, column: Optional) -> Option<usize> {
        self.optional[column as usize]
    }

    /// The optional columns this release lacks.
    pub fn absent(&self) -> Vec<&'static str> {
        OPTIONAL_COLUMNS
            .iter()
            .zip(self.optional)
            .filter(|(_, position)| position.is_none())
            .map(|(name, _)| *name)
            .collect()
    }

    /// Whether the same columns are present as in `other` (positions aside).
    pub fn same_columns(&self, other: &Schema) -> bool {
        self.absent() == other.absent()
    }
}

/// The required columns the poll decodes, named for [`Schema::required`]; in
/// [`REQUIRED_COLUMNS`] order.
#[derive(Clone, Copy, Debug)]
pub enum Required {
    CreatedAt = 0,
    UpdatedAt = 1,
    Id = 4,
    Host = 5,
    Binary = 6,
    ReportCount = 8,
    Disabled = 9,
    AvailabilityZone = 10,
    DisabledReason = 11,
}

/// The optional columns, named for [`Schema::optional`]; in [`OPTIONAL_COLUMNS`]
/// order.
#[derive(Clone, Copy, Debug)]
pub enum Optional {
    ModifiedAt = 0,
    ClusterName = 1,
    Uuid = 2,
    RpcCurrentVersion = 3,
    ObjectCurrentVersion = 4,
    ReplicationStatus = 5,
    Frozen = 6,
    ActiveBackendId = 7,
}

/// Reads the `services` table's column names and builds the `Schema` they give. When
/// the table is invisible or partly visible (information_schema lists only what this
/// account may read), the error names the account as the server matched it and the
/// database, so that the GRANT can be copied as it is.
pub async fn detect_schema(conn: &mut Conn) -> Result<Schema, ReadError> {
    detect_columns(conn).await.map(|(schema, _)| schema)
}

/// Reads the `services` table's column names, and the collation of `cluster_name`
/// (how cinder's SQL compares cluster names), in one query. The collation is `None`
/// when the release has no `cluster_name` column.
pub(crate) async fn detect_columns(conn: &mut Conn) -> Result<(Schema, Option<String>), ReadError> {
    let columns: Vec<(String, Option<String>)> = conn
        .query(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'services'",
        )
        .await
        .map_err(ReadError::Database)?;
    let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
    let problem = match Schema::from_columns(&names) {
        Ok(schema) => {
            let collation = columns
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("cluster_name"))
                .and_then(|(_, collation)| collation.clone());
            return Ok((schema, collation));
        }
        Err(problem) => problem,
    };
    let Some((account, database)) = account_and_database(conn).await else {
        return Err(problem);
    };
    let grant = format!("GRANT SELECT ON `{database}`.`services` TO {account}");
    Err(ReadError::Schema(if columns.is_empty() {
        format!(
            "no `services` table is visible to {account} in database `{database}`: is this \
             the cinder database? The exporter needs only {grant}"
        )
    } else {
        format!("{problem}: {grant}")
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_found_by_name_wherever_they_are() {
        let oldest = Schema::from_columns(&REQUIRED_COLUMNS).unwrap();
        assert_eq!(oldest.absent(), OPTIONAL_COLUMNS.to_vec());
        assert_eq!(oldest.required(Required::Host), 5);
        let mut all = vec!["UTC_TIMESTAMP(6)".to_string()];
        all.extend(OPTIONAL_COLUMNS.iter().rev().map(|c| c.to_string()));
        all.extend(REQUIRED_COLUMNS.iter().map(|c| c.to_uppercase()));
        let newest = Schema::from_columns(&all).unwrap();
        assert!(newest.absent().is_empty());
        assert_eq!(newest.optional(Optional::ActiveBackendId), Some(1));
        assert_eq!(newest.optional(Optional::ModifiedAt), Some(8));
        assert_eq!(newest.required(Required::CreatedAt), 9);
        assert_eq!(newest.required(Required::DisabledReason), 20);
        assert!(!newest.same_columns(&oldest));
        for (i, name) in REQUIRED_COLUMNS.iter().enumerate() {
            assert_eq!(oldest.required[i], i, "{name}");
        }
    }

    #[test]
    fn the_enums_name_their_columns() {
        let named = [
            (Required::CreatedAt as usize, "created_at"),
            (Required::UpdatedAt as usize, "updated_at"),
            (Required::Id as usize, "id"),
            (Required::Host as usize, "host"),
            (Required::Binary as usize, "binary"),
            (Required::ReportCount as usize, "report_count"),
            (Required::Disabled as usize, "disabled"),
            (Required::AvailabilityZone as usize, "availability_zone"),
            (Required::DisabledReason as usize, "disabled_reason"),
        ];
        for (index, name) in named {
            assert_eq!(REQUIRED_COLUMNS[index], name);
        }
        let named = [
            (Optional::ModifiedAt as usize, "modified_at"),
            (Optional::ClusterName as usize, "cluster_name"),
            (Optional::Uuid as usize, "uuid"),
            (Optional::RpcCurrentVersion as usize, "rpc_current_version"),
            (
                Optional::ObjectCurrentVersion as usize,
                "object_current_version",
            ),
            (Optional::ReplicationStatus as usize, "replication_status"),
            (Optional::Frozen as usize, "frozen"),
            (Optional::ActiveBackendId as usize, "active_backend_id"),
        ];
        for (index, name) in named {
            assert_eq!(OPTIONAL_COLUMNS[index], name);
        }
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
