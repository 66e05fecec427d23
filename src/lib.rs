//! cinder_exporter: reads OpenStack Cinder's `services` table and publishes, for every
//! service, whether it is up exactly as cinder judges it, and why not.
//!
//! The data flows one way, one module per step:
//!
//! | step | module | what it does |
//! |---|---|---|
//! | configuration | [`config`] | our YAML, the operator's cinder.conf, durations, the database URL |
//! | database | [`database`] | which columns this cinder release has; the one query per poll |
//! | poll | `poller` | the background loop: one query per poll whatever the scrapers |
//! | pollers | `databases` | one poller per database, kept, started or stopped on a reload |
//! | cinder | `cinder` | rows, cinder's two verdicts, clusters, the diagnosis of a down: pure |
//! | snapshot | `snapshot` | what a poll publishes and every scrape reads |
//! | targets | `targets` | the databases served: the top-level one and the named `targets:` |
//! | metrics | `metrics` | every family's schema, the exposition writer, the streamed body |
//! | web | `web` | listener and connection limits, routes, status page, TLS, basic auth |
//!
//! [`main_with`] (in `run`) wires them together and reloads on SIGHUP or
//! `POST /-/reload`; `src/main.rs` only parses flags.

// No library function over 80 lines (clippy.toml): each does one step.
#![warn(clippy::too_many_lines)]

pub mod cli;
pub mod config;
pub mod database;
pub mod shutdown;

mod cinder;
mod databases;
mod metrics;
mod poller;
mod run;
mod snapshot;
mod targets;
mod web;

pub use run::{main_with, EXIT_CONFIG_ERROR};
pub use web::parse_web_config;
