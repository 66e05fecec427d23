//! cinder_exporter: reads OpenStack Cinder's `services` table and publishes, for every
//! service, whether it is up exactly as cinder judges it, and why not.
//!
//! One module per step. Each imports only the modules above it in this table (the
//! unit test `modules_import_only_the_steps_before_them` holds the imports to it), so
//! the data flows one way: a poll reads the database into a snapshot, a scrape judges
//! the snapshot and writes it out. cinder's rules come first: they are pure, and
//! every step after them speaks in their terms.
//!
//! | step | module | what it does |
//! |---|---|---|
//! | flags | [`cli`] | the command line |
//! | shutdown | [`shutdown`] | the signal every task stops on |
//! | cinder | `cinder` | rows, cinder's two verdicts, clusters, the diagnosis of a down: pure |
//! | configuration | [`config`] | our YAML, the operator's cinder.conf, durations, the database URL |
//! | database | [`database`] | which columns this cinder release has; the one query per poll |
//! | series | `series` | every family's name, type, HELP and labels; a row's label sets |
//! | snapshot | `snapshot` | what a poll publishes and every scrape reads |
//! | served | `served` | the databases served: each one's published state and configuration |
//! | judgement | `judgement` | a served database judged at an instant: freshness, verdicts, readiness |
//! | metrics | `metrics` | the exposition writer, the streamed body, the exporter's own registry |
//! | poll | `poller` | the background loop: one query per poll whatever the scrapers |
//! | pollers | `pollers` | one poller per database, kept, updated, restarted or stopped on a reload |
//! | web | `web` | listener and connection limits, routes, status page, TLS, basic auth |
//! | wiring | `run` | configuration in, pollers and server started, reloads, signals |
//!
//! [`main_with`] (in `run`) wires them together and reloads on SIGHUP or
//! `POST /-/reload`; `src/main.rs` only parses flags.

// No library function over 80 lines (clippy.toml): each does one step.
#![warn(clippy::too_many_lines)]

pub mod cli;
pub mod shutdown;

pub mod config;
pub mod database;

mod cinder;
mod judgement;
mod metrics;
mod poller;
mod pollers;
mod run;
mod series;
mod served;
mod snapshot;
mod web;

pub use run::{main_with, EXIT_CONFIG_ERROR};
pub use web::parse_web_config;

#[cfg(test)]
mod layering;
