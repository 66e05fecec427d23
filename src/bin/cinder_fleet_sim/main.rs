//! `cinder_fleet_sim`: a fleet of simulated cinder services heartbeating into a real
//! MariaDB `services` table exactly as cinder's `report_state` does, each with its own
//! clock, interval and scripted mishaps, for the exporter's tests and demo.
//!
//! `ready` on stdout (one line) says every service's row exists; everything else goes
//! to stderr. Exit status: 0 on SIGTERM/SIGINT or after `--duration`, 2 for a bad
//! fleet file, URL or flag, 1 if the database is not a cinder database.

mod fleet;
mod service;
mod table;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cinder_exporter::config::DatabaseUrl;
use cinder_exporter::database::{detect_schema, ReadError};
use cinder_exporter::shutdown::{self, Shutdown};
use clap::Parser;
use mysql_async::{Pool, PoolConstraints, PoolOpts};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn, Instrument};
use tracing_subscriber::EnvFilter;

use crate::fleet::Fleet;
use crate::service::{Service, SetupOrder};
use crate::table::Table;

/// The environment variable that may hold the database URL (keeps the password off
/// the command line).
const DATABASE_URL_ENV: &str = "CINDER_FLEET_SIM_DATABASE_URL";

/// Exit status for a bad fleet file, URL or flag (clap uses 2 as well).
const EXIT_USAGE: u8 = 2;

/// Connections shared by all services: a few are enough, since each service holds
/// one only for a single statement, never across a slow run's sleep.
const POOL_SIZE: usize = 8;

/// How soon to try again when the database cannot be reached at start.
const CONNECT_RETRY: Duration = Duration::from_secs(1);

/// Simulates a fleet of cinder services heartbeating into the `services` table.
#[derive(Debug, Parser)]
#[command(
    name = "cinder_fleet_sim",
    version,
    about = "Simulates a fleet of cinder services writing heartbeats to cinder's `services` \
             table as report_state does, each with its own clock",
    long_about = None
)]
struct Args {
    /// mysql://user:pass@host:port/db (or set CINDER_FLEET_SIM_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,

    /// The fleet file (YAML): the services to simulate and their timed events.
    #[arg(long, value_name = "FILE")]
    fleet: PathBuf,

    /// Exit 0 after this many seconds (default: run until SIGTERM/SIGINT).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, allow_hyphen_values = true)]
    duration: Option<f64>,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!("{text:?} is not a non-negative number of seconds")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let url_text = match args
        .database_url
        .clone()
        .or_else(|| std::env::var(DATABASE_URL_ENV).ok())
    {
        Some(url) if !url.trim().is_empty() => url,
        _ => {
            return usage_error(&format!(
                "no database URL: pass --database-url or set {DATABASE_URL_ENV}"
            ))
        }
    };
    let url = match DatabaseUrl::parse(&url_text) {
        Ok(url) => url,
        Err(e) => return usage_error(&e),
    };
    let fleet = match fleet::load(&args.fleet) {
        Ok(fleet) => fleet,
        Err(e) => return usage_error(&e.to_string()),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cinder_fleet_sim: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(url, fleet, args.duration.map(Duration::from_secs_f64)))
}

fn usage_error(message: &str) -> ExitCode {
    // One line, whatever the message holds (YAML errors may quote a multi-line value).
    eprintln!(
        "cinder_fleet_sim: error: {}",
        message.replace(['\n', '\r'], " ")
    );
    ExitCode::from(EXIT_USAGE)
}

/// Runs the fleet until a signal, the end of `duration`, or a fatal database problem.
async fn run(url: DatabaseUrl, fleet: Fleet, duration: Option<Duration>) -> ExitCode {
    info!(
        database = %url.redacted(),
        services = fleet.services.len(),
        "cinder_fleet_sim starting"
    );
    let pool = Pool::new(connection_options(&url));
    let (trigger, shutdown) = shutdown::channel();
    let mut simulation = tokio::spawn(simulate(pool.clone(), fleet, shutdown));
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    let code = tokio::select! {
        _ = shutdown::signal() => {
            info!("signal received; stopping");
            ExitCode::SUCCESS
        }
        _ = deadline => {
            info!("duration has passed; stopping");
            ExitCode::SUCCESS
        }
        result = &mut simulation => match result {
            Ok(Err(message)) => {
                eprintln!("cinder_fleet_sim: error: {message}");
                ExitCode::FAILURE
            }
            // simulate() returns Ok only after shutdown, which has not fired.
            Ok(Ok(())) => ExitCode::SUCCESS,
            Err(e) => {
                error!("simulation task failed: {e}");
                ExitCode::FAILURE
            }
        }
    };
    trigger.fire();
    if !simulation.is_finished()
        && tokio::time::timeout(Duration::from_secs(2), simulation)
            .await
            .is_err()
    {
        warn!("services did not stop within 2 s; exiting anyway");
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), pool.disconnect()).await;
    code
}

/// The exporter's connection options, with a pool sized for many services and the
/// session set up as SQLAlchemy and oslo.db set up cinder's: `sql_mode = TRADITIONAL`,
/// no short lock wait (a cinder service blocked by a lock just waits), and
/// `CLIENT_FOUND_ROWS`, so that an UPDATE that matched the row counts as done even
/// when it changed nothing (two workers sharing a row can write equal values).
fn connection_options(url: &DatabaseUrl) -> mysql_async::OptsBuilder {
    let pool = PoolOpts::default()
        .with_constraints(PoolConstraints::new(0, POOL_SIZE).expect("0 <= POOL_SIZE"))
        .with_inactive_connection_ttl(Duration::from_secs(60));
    url.connection_options(Duration::from_secs(60))
        .pool_opts(pool)
        .client_found_rows(true)
        .init(vec!["SET SESSION sql_mode = 'TRADITIONAL'"])
}

/// Detects the schema, starts one task per service, prints `ready` once every row
/// exists, and returns after shutdown. Errs only if the database is not cinder's.
async fn simulate(pool: Pool, fleet: Fleet, mut shutdown: Shutdown) -> Result<(), String> {
    let has_uuid = tokio::select! {
        _ = shutdown.requested() => return Ok(()),
        detected = has_uuid_column(&pool) => detected?,
    };
    info!(uuid_column = has_uuid, "services table found");
    let table = Arc::new(Table::new(pool, has_uuid));
    // Service start times and event times count from here.
    let epoch = Instant::now();

    let (ready_tx, ready_rx) = mpsc::unbounded_channel();
    tokio::spawn(announce_ready(ready_rx, fleet.services.len()));
    let mut orders = setup_orders(&fleet);
    let mut services = JoinSet::new();
    for (index, spec) in fleet.services.into_iter().enumerate() {
        let span = tracing::info_span!(
            "service",
            index,
            host = %spec.host,
            binary = %spec.binary
        );
        let order = std::mem::take(&mut orders[index]);
        let service = Service::new(spec, Arc::clone(&table), epoch, order);
        services.spawn(
            service
                .run(ready_tx.clone(), shutdown.clone())
                .instrument(span),
        );
    }
    drop(ready_tx);
    while let Some(result) = services.join_next().await {
        if let Err(e) = result {
            error!("service task failed: {e}");
        }
    }
    shutdown.requested().await;
    Ok(())
}

/// Chains the services that start at the same moment, in file order, so that their
/// rows are created in that order (see [`SetupOrder`]).
fn setup_orders(fleet: &Fleet) -> Vec<SetupOrder> {
    let mut orders: Vec<SetupOrder> = fleet
        .services
        .iter()
        .map(|_| SetupOrder::default())
        .collect();
    for (i, service) in fleet.services.iter().enumerate() {
        let previous = fleet.services[..i]
            .iter()
            .rposition(|other| other.start == service.start);
        if let Some(previous) = previous {
            let (tx, rx) = oneshot::channel();
            orders[previous].then = Some(tx);
            orders[i].after = Some(rx);
        }
    }
    orders
}

/// Whether `services` has cinder's `uuid` column, asking until the database answers.
/// A database without a cinder `services` table is an error: retrying would not help.
async fn has_uuid_column(pool: &Pool) -> Result<bool, String> {
    loop {
        let detected = match pool.get_conn().await {
            Ok(mut conn) => detect_schema(&mut conn).await,
            Err(e) => Err(ReadError::Database(e)),
        };
        match detected {
            Ok(schema) => return Ok(!schema.absent().contains(&"uuid")),
            Err(ReadError::Database(e)) => {
                warn!(
                    error = %e,
                    retry_in_seconds = CONNECT_RETRY.as_secs_f64(),
                    "cannot read the services table's columns"
                );
                tokio::time::sleep(CONNECT_RETRY).await;
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Prints `ready` once `count` services have reported their row.
async fn announce_ready(mut ready: mpsc::UnboundedReceiver<()>, count: usize) {
    let mut seen = 0;
    while seen < count {
        if ready.recv().await.is_none() {
            return;
        }
        seen += 1;
    }
    info!(services = count, "every service row exists");
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "ready");
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_services_starting_together_wait_for_each_other() {
        let fleet = fleet::parse(
            "services:\n  - {host: a}\n  - {host: b, start: 5}\n  - {host: c}\n  - {host: d}\n",
            "f",
        )
        .unwrap();
        let orders = setup_orders(&fleet);
        let links: Vec<(bool, bool)> = orders
            .iter()
            .map(|o| (o.after.is_some(), o.then.is_some()))
            .collect();
        // a → c → d; b starts alone.
        assert_eq!(
            links,
            vec![(false, true), (false, false), (true, true), (true, false)]
        );
    }

    #[test]
    fn duration_must_be_a_non_negative_number() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert_eq!(parse_seconds("0"), Ok(0.0));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
