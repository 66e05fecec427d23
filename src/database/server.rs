//! Which server the exporter reads, for what the diagnosis must know of it: how its
//! `datetime` columns keep the fraction of a second that cinder sends.
//!
//! cinder writes `updated_at` with microseconds into a `datetime` column without a
//! fraction: MariaDB cuts them, MySQL rounds them, unless the writing session's
//! `sql_mode` says otherwise. The cinder core only takes the resulting
//! [`StampWindow`]; the rules that choose it from the server live here.

use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::ReadError;
use crate::cinder::StampWindow;

/// The server's version and how cinder's `updated_at` stamps end up stored there.
#[derive(Clone, Debug, PartialEq)]
pub struct Server {
    pub version: String,
    pub stamps: StampWindow,
}

impl Server {
    /// How the server keeps the fraction of a second cinder writes, in words for the
    /// log: `truncated`, `rounded`, or `truncated_or_rounded` (cinder's sessions decide).
    pub fn stored_seconds(&self) -> &'static str {
        if self.stamps == StampWindow::TRUNCATED {
            "truncated"
        } else if self.stamps == StampWindow::ROUNDED {
            "rounded"
        } else {
            "truncated_or_rounded"
        }
    }
}

/// Asks the server its version and global `sql_mode` (any account may read both).
pub async fn identify_server(conn: &mut Conn) -> Result<Server, ReadError> {
    let (version, sql_mode): (String, String) = conn
        .query_first("SELECT VERSION(), @@GLOBAL.sql_mode")
        .await
        .map_err(ReadError::Database)?
        .unwrap_or_default();
    Ok(Server {
        stamps: stamp_window(&version, &sql_mode),
        version,
    })
}

/// What cinder's writes do on a server of this `VERSION()` whose global `sql_mode` is
/// `global_sql_mode`: the fraction is cut ([`StampWindow::TRUNCATED`]) by MariaDB's
/// default and by MySQL with `TIME_TRUNCATE_FRACTIONAL`; rounded
/// ([`StampWindow::ROUNDED`]) by MySQL's default and by MariaDB with
/// `TIME_ROUND_FRACTIONAL`.
///
/// cinder's sessions set their own `sql_mode` (oslo.db's `[database]
/// mysql_sql_mode`, `TRADITIONAL` by default, which has neither flag), unless that
/// option is empty, when the server's global mode applies. So the server's default
/// behaviour is certain when the global mode lacks the flag that changes it; when
/// the global mode has it, cinder's sessions may or may not, and the window covers
/// both ([`StampWindow::EITHER`]).
fn stamp_window(version: &str, global_sql_mode: &str) -> StampWindow {
    let has = |flag: &str| {
        global_sql_mode
            .split(',')
            .any(|mode| mode.trim().eq_ignore_ascii_case(flag))
    };
    let mariadb = version.to_ascii_lowercase().contains("mariadb");
    match (
        mariadb,
        mariadb && has("TIME_ROUND_FRACTIONAL") || !mariadb && has("TIME_TRUNCATE_FRACTIONAL"),
    ) {
        (_, true) => StampWindow::EITHER,
        (true, false) => StampWindow::TRUNCATED,
        (false, false) => StampWindow::ROUNDED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_follows_the_server_and_its_mode() {
        let mariadb = "10.11.19-MariaDB-0+deb12u1";
        let mysql = "8.0.40";
        let traditional = "STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,TRADITIONAL,NO_ENGINE_SUBSTITUTION";
        assert_eq!(stamp_window(mariadb, traditional), StampWindow::TRUNCATED);
        assert_eq!(stamp_window(mariadb, ""), StampWindow::TRUNCATED);
        assert_eq!(
            stamp_window(mariadb, "time_round_fractional,STRICT_TRANS_TABLES"),
            StampWindow::EITHER
        );
        assert_eq!(stamp_window(mysql, traditional), StampWindow::ROUNDED);
        assert_eq!(
            stamp_window(mysql, "ONLY_FULL_GROUP_BY,TIME_TRUNCATE_FRACTIONAL"),
            StampWindow::EITHER
        );
        // The other server's flag means nothing here.
        assert_eq!(
            stamp_window(mysql, "TIME_ROUND_FRACTIONAL"),
            StampWindow::ROUNDED
        );
    }
}
