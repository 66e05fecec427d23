//! Which server the exporter reads, for what the diagnosis must know of it: how its
//! `datetime` columns keep the fraction of a second that cinder sends.

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

/// Asks the server its version and global `sql_mode` (any account may read both).
pub async fn identify_server(conn: &mut Conn) -> Result<Server, ReadError> {
    let (version, sql_mode): (String, String) = conn
        .query_first("SELECT VERSION(), @@GLOBAL.sql_mode")
        .await
        .map_err(ReadError::Database)?
        .unwrap_or_default();
    Ok(Server {
        stamps: StampWindow::of_server(&version, &sql_mode),
        version,
    })
}
