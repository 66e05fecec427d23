//! Reading cinder's `services` table: which columns this cinder release has, and the
//! one query per poll that returns every live row together with the database's clock.
//!
//! The reference clock is the database server's `UTC_TIMESTAMP(6)`, read in the same
//! statement as the rows: it does not depend on the server's or the session's
//! `time_zone` (and neither do the `datetime` columns, which hold naive UTC), and it
//! is one clock for every service — the same role the API node's clock plays in
//! cinder's own verdict.

mod error;
mod read;
mod schema;
mod server;

// The simulator detects the schema as the exporter does; the rest is the poller's.
pub(crate) use error::connect;
pub use error::ReadError;
pub(crate) use read::{read_services, Reading};
pub use schema::detect_schema;
pub(crate) use schema::{detect_columns, Schema, POLL_QUERY};
pub(crate) use server::{identify_server, Server};
