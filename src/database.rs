//! Reading cinder's `services` table: which columns this cinder release has, and the
//! one query per poll that returns every live row together with the database's clock.
//!
//! The reference clock is the database server's `UTC_TIMESTAMP(6)`, read in the same
//! statement as the rows: it does not depend on the server's or the session's
//! `time_zone` (and neither do the `datetime` columns, which hold naive UTC), and it
//! is one clock for every service — the same role the API node's clock plays in
//! cinder's own verdict.

use std::fmt;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chrono::NaiveDateTime;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};

use crate::model::ServiceRow;

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
    /// Live rows (`deleted = 0`) read.
    pub rows: usize,
    /// Values that could not be read (e.g. a zero date); the row is kept with NULL
    /// there. Each names the row id and column.
    pub problems: Vec<String>,
}

/// Runs the poll query and hands each decoded row to `on_row` with the reference time,
/// as it arrives: the rows are never all in memory at once, only what the caller keeps
/// of them (at tens of thousands of services, the difference is megabytes).
pub async fn read_services(
    conn: &mut Conn,
    schema: &Schema,
    mut on_row: impl FnMut(f64, ServiceRow),
) -> Result<Reading, ReadError> {
    let sent_at = Instant::now();
    let sent_at_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let mut result = conn
        .query_iter(schema.query())
        .await
        .map_err(ReadError::Database)?;
    let mut reference_time = None;
    let mut rows = 0;
    let mut problems = Vec::new();
    result
        .for_each(|row| {
            let mut decoder = RowDecoder {
                row,
                problems: &mut problems,
                id: 0,
            };
            if reference_time.is_none() {
                reference_time = decoder.datetime(0, "UTC_TIMESTAMP(6)");
            }
            if let (Some(now), Some(service)) = (reference_time, decoder.service()) {
                rows += 1;
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
        rows,
        problems,
    })
}

/// Why a poll failed.
#[derive(Debug)]
pub enum ReadError {
    /// Connection, query or protocol failure (includes access denied).
    Database(mysql_async::Error),
    /// The database is reachable but does not hold what we need.
    Schema(String),
    /// The poll did not finish within `query_timeout` (e.g. a locked table).
    TimedOut(std::time::Duration),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Database(e) => {
                write!(f, "database error: {e}")?;
                match hint(e) {
                    Some(hint) => write!(f, "; {hint}"),
                    None => Ok(()),
                }
            }
            ReadError::Schema(e) => f.write_str(e),
            ReadError::TimedOut(limit) => {
                write!(f, "poll did not finish within query_timeout ({limit:?}); is the services table locked?")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// What to do about an error that has one likely fix: the exporter's account may not
/// log in or lacks a privilege, or TLS to the database cannot be set up. The operator
/// reading the log should not have to look it up.
fn hint(error: &mysql_async::Error) -> Option<String> {
    match error {
        mysql_async::Error::Server(error) => access_hint(error),
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => Some(
            "the database URL asks for TLS but the server does not offer it: enable TLS on \
             the server (its ssl_cert and ssl_key settings); the exporter never falls back \
             to an unencrypted connection"
                .into(),
        ),
        mysql_async::Error::Io(_) => tls_hint(&error.to_string()),
        _ => None,
    }
}

/// Hints for rustls' handshake failures, which mysql_async passes on as I/O errors:
/// recognised by their text (rustls' error types are not ours to name).
fn tls_hint(text: &str) -> Option<String> {
    let hint = if text.contains("invalid peer certificate: UnknownIssuer") {
        "the server's certificate is not issued by a CA the exporter trusts: give the CA \
         that issued it as ssl_ca=FILE (without ssl_ca only public web CAs are trusted)"
    } else if text.contains("invalid peer certificate: certificate not valid for name") {
        "the server's certificate does not name the host of the database URL: connect by a \
         name the certificate holds, or set ssl_mode=VERIFY_CA to verify the CA but not the name"
    } else if text.contains("received fatal alert: UnknownCA")
        || text.contains("received fatal alert: CertificateRequired")
    {
        "the server refused the client certificate: ssl_cert must be issued by a CA the \
         server trusts (the server's ssl_ca)"
    } else {
        return None;
    };
    Some(hint.into())
}

/// Hints for the server's privilege errors.
fn access_hint(error: &mysql_async::ServerError) -> Option<String> {
    let message = error.message.as_str();
    // The account as the server quotes it (`'user'@'host'`), between two phrases.
    let between = |after: &str, before: &str| {
        let start = message.find(after)? + after.len();
        let end = start + message[start..].find(before)?;
        Some(message[start..end].to_string())
    };
    match error.code {
        // ER_DBACCESS_DENIED_ERROR: "Access denied for user 'u'@'h' to database 'db'".
        1044 => {
            let account = between("for user ", " to database ")?;
            let database = message.rsplit_once(" to database ")?.1.trim_matches('\'');
            Some(format!(
                "the exporter needs only GRANT SELECT ON `{database}`.`services` TO {account}"
            ))
        }
        // ER_ACCESS_DENIED_ERROR: wrong user or password, no such account for this host,
        // or an account that requires TLS reached without it.
        1045 => Some(
            "check the user and password of the database URL; an account created with \
             REQUIRE SSL or REQUIRE X509 is refused in the same way without TLS (ssl_ca=FILE, \
             and ssl_cert/ssl_key for X509)"
                .into(),
        ),
        // ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR.
        1142 | 1143 => {
            let account = between("to user ", " for ").unwrap_or_else(|| "the exporter".into());
            Some(format!(
                "the exporter needs SELECT on the whole table: \
                 GRANT SELECT ON <database>.`services` TO {account}"
            ))
        }
        _ => None,
    }
}

/// Decodes one result row; the column positions are those of [`Schema::query`].
struct RowDecoder<'a> {
    row: Row,
    problems: &'a mut Vec<String>,
    id: i64,
}

impl RowDecoder<'_> {
    fn service(&mut self) -> Option<ServiceRow> {
        // The LEFT JOIN yields one all-NULL row when no service is registered.
        self.id = self.integer(1, "id")?;
        let mut service = ServiceRow {
            id: self.id,
            host: self.text(2, "host"),
            binary: self.text(3, "binary"),
            availability_zone: self.text(4, "availability_zone"),
            report_count: self.integer(5, "report_count").unwrap_or(0),
            disabled: self.integer(6, "disabled").map(|v| v != 0),
            disabled_reason: self.text(7, "disabled_reason"),
            created_at: self.datetime(8, "created_at").map(whole_seconds),
            updated_at: self.datetime(9, "updated_at").map(whole_seconds),
            ..ServiceRow::default()
        };
        let base = 10;
        service.modified_at = self.datetime(base, "modified_at").map(whole_seconds);
        service.cluster_name = self.text(base + 1, "cluster_name");
        service.uuid = self.text(base + 2, "uuid");
        service.rpc_current_version = self.text(base + 3, "rpc_current_version");
        service.object_current_version = self.text(base + 4, "object_current_version");
        service.replication_status = self.text(base + 5, "replication_status");
        service.frozen = self.integer(base + 6, "frozen").map(|v| v != 0);
        service.active_backend_id = self.text(base + 7, "active_backend_id");
        Some(service)
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

    fn text(&mut self, index: usize, column: &str) -> Option<String> {
        match self.take(index) {
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
                self.problem(column, format!("unexpected value {other:?}"));
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
                other => format!("{other:?}"),
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

    #[test]
    fn access_errors_say_what_to_grant() {
        let server = |code: u16, message: &str| {
            ReadError::Database(mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: message.into(),
                state: "42000".into(),
            }))
            .to_string()
        };
        let shown = server(
            1044,
            "Access denied for user 'exporter'@'%' to database 'cinder'",
        );
        assert!(
            shown.ends_with("GRANT SELECT ON `cinder`.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown = server(
            1045,
            "Access denied for user 'exporter'@'10.0.0.1' (using password: YES)",
        );
        assert!(shown.contains("REQUIRE SSL"), "{shown}");
        let shown = server(
            1142,
            "SELECT command denied to user 'exporter'@'%' for table `cinder`.`services`",
        );
        assert!(
            shown.ends_with("GRANT SELECT ON <database>.`services` TO 'exporter'@'%'"),
            "{shown}"
        );
        let shown = server(1146, "Table 'cinder.services' doesn't exist");
        assert!(shown.ends_with("doesn't exist'"), "{shown}");
        let shown = ReadError::Database(mysql_async::Error::Driver(
            mysql_async::DriverError::NoClientSslFlagFromServer,
        ))
        .to_string();
        assert!(shown.contains("never falls back"), "{shown}");
        assert!(tls_hint("invalid peer certificate: UnknownIssuer")
            .is_some_and(|h| h.contains("ssl_ca=FILE")));
        assert!(tls_hint("Connection refused (os error 111)").is_none());
    }

    #[test]
    fn parses_mysql_datetimes_as_utc() {
        assert_eq!(parse_datetime("1970-01-01 00:01:00"), Some(60.0));
        assert_eq!(parse_datetime("1970-01-01 00:00:01.500000"), Some(1.5));
        assert_eq!(parse_datetime("0000-00-00 00:00:00"), None);
        assert_eq!(parse_datetime("garbage"), None);
    }
}
