//! Wiring: configuration in, poller and HTTP server started, signals out. Each step is
//! its own short function so that what happens at start-up reads top to bottom.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{error, info, warn, Instrument};

use crate::cli::{bind_address, Cli};
use crate::config::{Config, Setup, DATABASE_URL_ENV};
use crate::poller::Poller;
use crate::targets::{Endpoint, Targets};
use crate::web::{self, App, WebSecurity};
use crate::{config, shutdown};

/// Exit status for configuration errors, as the issue tracker and operators expect.
pub const EXIT_CONFIG_ERROR: u8 = 2;

/// Why the exporter could not start; each kind has its exit status.
enum StartError {
    /// A bad flag or file: exit status 2.
    Config(String),
    /// Anything else (the port is taken, no runtime): exit status 1.
    Other(String),
}

impl StartError {
    fn report(self) -> ExitCode {
        let (message, status) = match self {
            StartError::Config(m) => (m, ExitCode::from(EXIT_CONFIG_ERROR)),
            StartError::Other(m) => (m, ExitCode::FAILURE),
        };
        eprintln!("cinder_exporter: error: {message}");
        status
    }
}

/// Runs the exporter until SIGTERM/SIGINT. Returns the process exit status.
pub fn main_with(cli: Cli) -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(cli.log_level.as_tracing())
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match start(cli) {
        Ok(status) => status,
        Err(error) => error.report(),
    }
}

/// Reads the configuration, then runs the exporter on a multi-threaded runtime.
fn start(cli: Cli) -> Result<ExitCode, StartError> {
    let setup = config::load_setup(
        cli.config_file.as_deref(),
        std::env::var(DATABASE_URL_ENV).ok(),
    )
    .map_err(|e| StartError::Config(e.to_string()))?;
    let security = match cli.web_config_file.as_deref() {
        None => WebSecurity::default(),
        Some(path) => web::load_web_config(path).map_err(|e| StartError::Config(e.to_string()))?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartError::Other(format!("cannot start the async runtime: {e}")))?;
    let status = runtime.block_on(run(cli, setup, security))?;
    // Connection tasks past the shutdown grace are dropped here; do not wait long for
    // a blocking task (a render, a bcrypt check) that may still be running.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(status)
}

/// Listens, polls and serves until a shutdown signal.
async fn run(cli: Cli, setup: Setup, security: WebSecurity) -> Result<ExitCode, StartError> {
    let listener = listen(&cli).await?;
    log_start(&cli, &setup, &security, &listener);
    let (trigger, shutdown) = shutdown::channel();
    let mut pollers = Vec::new();
    let main = setup.main.map(|config| {
        let endpoint = Endpoint::new(config, true);
        pollers.push(start_poller(&endpoint, None, &shutdown));
        endpoint
    });
    let mut targets = Targets::default();
    for target in setup.targets {
        let endpoint = Endpoint::new(target.config, false);
        pollers.push(start_poller(&endpoint, Some(&target.name), &shutdown));
        targets.insert(target.name, endpoint);
    }
    let app = Arc::new(
        App::new(main, targets, cli.telemetry_path.clone())
            .with_basic_auth(security.basic_auth)
            .with_headers(security.headers),
    );
    let tls = security
        .tls
        .map(|(_, config)| tokio_rustls::TlsAcceptor::from(config));
    let server = tokio::spawn(web::serve(listener, app, tls, shutdown));

    shutdown::signal().await;
    info!("shutting down");
    trigger.fire();
    let stopped = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = server.await;
        for poller in pollers {
            let _ = poller.await;
        }
    })
    .await;
    if stopped.is_err() {
        error!("tasks did not stop in time; exiting anyway");
    }
    Ok(ExitCode::SUCCESS)
}

/// Binds `--web.listen-address` after checking the flags that shape the endpoint.
async fn listen(cli: &Cli) -> Result<TcpListener, StartError> {
    if !cli.telemetry_path.starts_with('/') {
        return Err(StartError::Config(format!(
            "--web.telemetry-path must start with '/', got {:?}",
            cli.telemetry_path
        )));
    }
    let address = bind_address(&cli.listen_address);
    TcpListener::bind(&address)
        .await
        .map_err(|e| StartError::Other(format!("cannot listen on {address}: {e}")))
}

/// What the operator should see in the log at start: the settings in force, and the
/// ones that are probably a mistake.
fn log_start(cli: &Cli, setup: &Setup, security: &WebSecurity, listener: &TcpListener) {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        address = %listener.local_addr().map_or(cli.listen_address.clone(), |a| a.to_string()),
        targets = setup.targets.len(),
        "cinder_exporter starting"
    );
    match &setup.main {
        Some(config) => log_database("", cli.telemetry_path.as_str(), config),
        None => info!(
            path = %cli.telemetry_path,
            "no top-level database: it serves only the exporter's own metrics; the targets are on /probe"
        ),
    }
    for target in &setup.targets {
        log_database(&target.name, "/probe", &target.config);
    }
    info!(
        web_config = %cli.web_config_file.as_ref().map_or("none".into(), |p| p.display().to_string()),
        tls = %security.tls_mode(),
        auth = %security.auth_mode(),
        "HTTP endpoint security"
    );
    if security.basic_auth.is_some() && security.tls.is_none() {
        warn!("basic auth without TLS: passwords cross the network in clear text");
    }
    for warning in &security.warnings {
        warn!("{warning}");
    }
}

/// One database's settings in the start-up log, and its probable mistakes; `target`
/// is "" for the top-level database.
fn log_database(target: &str, path: &str, config: &Config) {
    info!(
        target,
        path,
        database = %config.database.redacted(),
        database_from = %config.database_source,
        service_down_time = ?config.service_down_time,
        report_interval = ?config.report_interval,
        poll_interval = ?config.poll_interval,
        openstack_exporter_compatibility = config.compatibility.openstack_exporter,
        "database"
    );
    if !config.database.ignored_parameters.is_empty() {
        info!(target, parameters = ?config.database.ignored_parameters, "database URL parameters not used by the exporter");
    }
    if config.report_interval >= config.service_down_time {
        warn!(
            target,
            "report_interval >= service_down_time: services heartbeating at that interval \
             show down in cinder-api between heartbeats (cinder's service processes, the \
             scheduler among them, raise their own service_down_time to 2.5 x report_interval)"
        );
    }
}

/// Starts the poller of one database; a target's log lines name it.
fn start_poller(
    endpoint: &Endpoint,
    target: Option<&str>,
    shutdown: &shutdown::Shutdown,
) -> tokio::sync::oneshot::Receiver<()> {
    let poller = Poller::new(Arc::clone(&endpoint.config), Arc::clone(&endpoint.state));
    let (thread, span) = match target {
        None => ("poller".to_string(), tracing::Span::none()),
        Some(name) => (format!("poll-{name}"), tracing::info_span!("target", name)),
    };
    spawn_poller(poller, thread, span, shutdown.clone())
}

/// Runs the poller on a thread and runtime of its own. Its allocations per poll (the
/// rows and the new snapshot: tens of megabytes at 50,000 services) then always come
/// from one malloc arena, instead of from whichever worker thread the task last ran on,
/// each of which would keep its own arena grown to that size. The receiver completes
/// when the poller has stopped. Each database has its own poller thread, so a slow or
/// hanging database delays no other.
fn spawn_poller(
    poller: Poller,
    name: String,
    span: tracing::Span,
    shutdown: shutdown::Shutdown,
) -> tokio::sync::oneshot::Receiver<()> {
    let (stopped, receiver) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(poller.run(shutdown).instrument(span)),
            Err(e) => error!("cannot start the poller's runtime: {e}"),
        }
        let _ = stopped.send(());
    });
    if let Err(e) = thread {
        error!("cannot start the poller thread: {e}");
    }
    receiver
}
