//! What the integration tests share, one helper per job. Each test binary compiles
//! this module and uses its own part of it.
//!
//! - [`database`]: a database of the test's own on the shared MariaDB server (the one
//!   `scripts/test` starts, or `CINDER_EXPORTER_TEST_DATABASE_URL`), and admin queries.
//! - [`mariadb`]: a MariaDB server of one test's own, for tests that stop, crash or
//!   restart it, or that need it started with TLS.
//! - [`exporter`]: the real exporter binary as a child process, or run to its exit.
//! - [`simulator`]: `cinder_fleet_sim` as a child process, and the heartbeats it wrote.
//! - [`metrics`]: `/metrics` parsed with a real exposition-format parser.
//! - [`prometheus`]: a real Prometheus scraping the exporter with the shipped rules, and
//!   a real Alertmanager, read through their HTTP APIs.
//! - [`http`]: raw HTTP/1 requests and responses, and the `ureq` agent the tests use.
//! - [`https`]: the test's rustls client for the exporter's TLS endpoint.
//! - [`certs`]: certificate authorities and certificates made at test time with rcgen.
//! - [`users`]: database accounts of a test's own, dropped after.
//! - [`host`]: the repository root, free ports, waiting until something holds.

#![allow(dead_code, unused_imports)] // each test binary uses its own part of this module

pub mod certs;
pub mod database;
pub mod exporter;
pub mod host;
pub mod http;
pub mod https;
pub mod mariadb;
pub mod metrics;
pub mod prometheus;
pub mod simulator;
pub mod users;

pub use database::{admin_url, block_on, Database, Schema};
pub use exporter::{run_exporter_to_exit, Exporter, ExporterOptions};
pub use host::{free_port, repository, wait_until};
pub use mariadb::PrivateServer;
pub use metrics::{Sample, Scrape};
pub use prometheus::{Alertmanager, Prometheus};
pub use simulator::Simulator;
