//! The one query per poll: every live row of `services` with the database's clock,
//! decoded row by row as it arrives.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDateTime;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use super::error::query_failed;
use super::schema::{Optional, Required, POLL_QUERY};
use super::{ReadError, Schema};
use crate::cinder::ServiceRow;

/// What one poll read, besides the rows (which go to the caller one by one).
#[derive(Debug)]
pub struct Reading {
    /// The database's UTC clock when the statement ran, unix seconds.
    pub reference_time: f64,
    /// The exporter's monotonic clock just before the statement was sent: scrapes add
    /// the time elapsed since then to `reference_time`.
    pub sent_at: Instant,
    /// The exporter's wall clock at the same moment, unix seconds.
    pub sent_at_unix: f64,
    /// Values that could not be read (e.g. a zero date); the row is kept with NULL
    /// there. Each names the row id and column.
    pub problems: Vec<String>,
    /// The columns as this poll found them.
    pub schema: Schema,
}

/// Runs the poll query and hands each decoded row to `on_row` with the reference time,
/// as it arrives: the rows are never all in memory at once, only what the caller keeps
/// of them (at tens of thousands of services, the difference is megabytes).
pub async fn read_services(
    conn: &mut Conn,
    mut on_row: impl FnMut(f64, ServiceRow),
) -> Result<Reading, ReadError> {
    let sent_at = Instant::now();
    let sent_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut result = match conn.query_iter(POLL_QUERY).await {
        Ok(result) => result,
        Err(error) => return Err(query_failed(conn, error).await),
    };
    let names: Vec<String> = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let schema = Schema::from_columns(&names)?;
    let mut reference_time = None;
    let mut problems = Vec::new();
    result
        .for_each(|row| {
            let mut decoder = RowDecoder {
                row,
                schema: &schema,
                problems: &mut problems,
                id: 0,
            };
            if reference_time.is_none() {
                reference_time = decoder.datetime(0, "UTC_TIMESTAMP(6)");
            }
            if let (Some(now), Some(service)) = (reference_time, decoder.service()) {
                on_row(now, service);
            }
        })
        .await
        .map_err(ReadError::Database)?;
    let reference_time = reference_time.ok_or_else(|| {
        ReadError::Schema("the database returned no UTC_TIMESTAMP(6) reference time".into())
    })?;
    Ok(Reading {
        reference_time,
        sent_at,
        sent_at_unix,
        problems,
        schema,
    })
}

/// Decodes one result row; the schema says where each column is.
struct RowDecoder<'a> {
    row: Row,
    schema: &'a Schema,
    problems: &'a mut Vec<String>,
    id: i64,
}

impl RowDecoder<'_> {
    fn service(&mut self) -> Option<ServiceRow> {
        use Optional::*;
        use Required::*;
        // The LEFT JOIN yields one all-NULL row when no service is registered.
        self.id = self.integer(self.schema.required(Id), "id")?;
        Some(ServiceRow {
            id: self.id,
            host: self.text(Some(self.schema.required(Host)), "host"),
            binary: self.text(Some(self.schema.required(Binary)), "binary"),
            availability_zone: self.text(
                Some(self.schema.required(AvailabilityZone)),
                "availability_zone",
            ),
            report_count: self
                .integer(self.schema.required(ReportCount), "report_count")
                .unwrap_or(0),
            disabled: self.flag(Some(self.schema.required(Disabled)), "disabled"),
            disabled_reason: self.text(
                Some(self.schema.required(DisabledReason)),
                "disabled_reason",
            ),
            created_at: self.stamp(Some(self.schema.required(CreatedAt)), "created_at"),
            updated_at: self.stamp(Some(self.schema.required(UpdatedAt)), "updated_at"),
            modified_at: self.stamp(self.schema.optional(ModifiedAt), "modified_at"),
            cluster_name: self.text(self.schema.optional(ClusterName), "cluster_name"),
            uuid: self.text(self.schema.optional(Uuid), "uuid"),
            rpc_current_version: self.text(
                self.schema.optional(RpcCurrentVersion),
                "rpc_current_version",
            ),
            object_current_version: self.text(
                self.schema.optional(ObjectCurrentVersion),
                "object_current_version",
            ),
            replication_status: self.text(
                self.schema.optional(ReplicationStatus),
                "replication_status",
            ),
            frozen: self.flag(self.schema.optional(Frozen), "frozen"),
            active_backend_id: self
                .text(self.schema.optional(ActiveBackendId), "active_backend_id"),
        })
    }

    /// A boolean column (`tinyint`), NULL where absent.
    fn flag(&mut self, index: Option<usize>, column: &str) -> Option<bool> {
        self.integer(index?, column).map(|v| v != 0)
    }

    /// A datetime column in whole seconds, NULL where absent.
    fn stamp(&mut self, index: Option<usize>, column: &str) -> Option<i64> {
        self.datetime(index?, column).map(whole_seconds)
    }

    fn take(&mut self, index: usize) -> Value {
        self.row.take::<Value, _>(index).unwrap_or(Value::NULL)
    }

    fn problem(&mut self, column: &str, what: String) {
        self.problems.push(format!(
            "services row id={}: column {column}: {what}",
            self.id
        ));
    }

    /// A text column, NULL where absent.
    fn text(&mut self, index: Option<usize>, column: &str) -> Option<String> {
        match self.take(index?) {
            Value::NULL => None,
            Value::Bytes(bytes) => Some(String::from_utf8(bytes).unwrap_or_else(|e| {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                self.problem(column, "not valid UTF-8; replaced invalid bytes".into());
                lossy
            })),
            other => Some(other.as_sql(true).trim_matches('\'').to_string()),
        }
    }

    fn integer(&mut self, index: usize, column: &str) -> Option<i64> {
        match self.take(index) {
            Value::NULL => None,
            Value::Int(v) => Some(v),
            Value::UInt(v) => i64::try_from(v).ok(),
            Value::Bytes(bytes) => {
                let parsed = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                if parsed.is_none() {
                    let shown = String::from_utf8_lossy(&bytes).into_owned();
                    self.problem(column, format!("{shown:?} is not an integer"));
                }
                parsed
            }
            other => {
                let shown = other.as_sql(true);
                self.problem(column, format!("unexpected value {shown}"));
                None
            }
        }
    }

    fn datetime(&mut self, index: usize, column: &str) -> Option<f64> {
        let value = self.take(index);
        let parsed = match &value {
            Value::NULL => return None,
            Value::Bytes(bytes) => std::str::from_utf8(bytes).ok().and_then(parse_datetime),
            Value::Date(y, mo, d, h, mi, s, us) => {
                chrono::NaiveDate::from_ymd_opt(i32::from(*y), u32::from(*mo), u32::from(*d))
                    .and_then(|date| {
                        date.and_hms_micro_opt((*h).into(), (*mi).into(), (*s).into(), *us)
                    })
                    .map(unix_seconds)
            }
            _ => None,
        };
        if parsed.is_none() {
            let shown = match value {
                Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                other => other.as_sql(true),
            };
            self.problem(
                column,
                format!("{shown:?} is not a valid datetime; read as NULL"),
            );
        }
        parsed
    }
}

/// Parses MySQL's text form `YYYY-MM-DD HH:MM:SS[.ffffff]` as UTC.
fn parse_datetime(text: &str) -> Option<f64> {
    let format = if text.contains('.') {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    NaiveDateTime::parse_from_str(text, format)
        .ok()
        .map(unix_seconds)
}

fn unix_seconds(t: NaiveDateTime) -> f64 {
    let utc = t.and_utc();
    utc.timestamp() as f64 + f64::from(utc.timestamp_subsec_micros()) / 1e6
}

// cinder's datetime columns have no fraction; floor keeps that true if one ever does.
fn whole_seconds(t: f64) -> i64 {
    t.floor() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mysql_datetimes_as_utc() {
        assert_eq!(parse_datetime("1970-01-01 00:01:00"), Some(60.0));
        assert_eq!(parse_datetime("1970-01-01 00:00:01.500000"), Some(1.5));
        assert_eq!(parse_datetime("0000-00-00 00:00:00"), None);
        assert_eq!(parse_datetime("garbage"), None);
    }
}
