//! Wiring: configuration in, poller and HTTP server started, signals out. Each step is
//! its own short function so that what happens at start-up reads top to bottom.

mod logging;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::cli::{bind_address, Cli, LogFormat};
use crate::config::{Config, Setup, DATABASE_URL_ENV};
use crate::metrics::own;
use crate::pollers::Pollers;
use crate::web::{self, App, Guard, ReloadRequest, WebSecurity};
use crate::{config, shutdown};

/// Exit status for configuration errors, as the issue tracker and operators expect.
pub const EXIT_CONFIG_ERROR: u8 = 2;

/// Longest a reload waits for its files. They are read off the async runtime, on a
/// blocking thread, so that a file on a hung file system delays only the reload: the
/// scrapes, the next reload and SIGTERM are answered meanwhile.
const RELOAD_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the exporter could not start; each kind has its exit status.
enum StartError {
    /// A bad flag or file: exit status 2.
    Config(String),
    /// Anything else (the port is taken, no runtime): exit status 1.
    Other(String),
}

impl StartError {
    /// Says why on stderr: one line as command-line tools write it, or, where the log
    /// is JSON, a JSON log line, so that a log pipeline parses every line.
    fn report(self, format: LogFormat) -> ExitCode {
        let (message, status) = match self {
            StartError::Config(m) => (m, ExitCode::from(EXIT_CONFIG_ERROR)),
            StartError::Other(m) => (m, ExitCode::FAILURE),
        };
        match format {
            LogFormat::Json => error!(error = message, "cannot start"),
            LogFormat::Logfmt => eprintln!("cinder_exporter: error: {message}"),
        }
        status
    }
}

/// Runs the exporter until SIGTERM/SIGINT. Returns the process exit status.
pub fn main_with(cli: Cli) -> ExitCode {
    let format = cli.log_format;
    logging::init(cli.log_level, format);
    match start(cli) {
        Ok(status) => status,
        Err(error) => error.report(format),
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

/// Listens, polls and serves until a shutdown signal; reloads on SIGHUP and on
/// `POST /-/reload`.
async fn run(cli: Cli, setup: Setup, security: WebSecurity) -> Result<ExitCode, StartError> {
    // First of all: SIGHUP's default action would end the process.
    let hangups = signal(SignalKind::hangup())
        .map_err(|e| StartError::Other(format!("cannot listen for SIGHUP: {e}")))?;
    let listener = listen(&cli).await?;
    log_start(&cli, &setup, &security, &listener);
    own::record_reload(true, true);
    let (trigger, shutdown) = shutdown::channel();
    let mut pollers = Pollers::default();
    let served = pollers.apply(setup).served;
    let (reload_requests, requests) = mpsc::channel(4);
    let app = Arc::new(
        App::new(served, Guard::of(security), cli.telemetry_path.clone())
            .with_reloads(reload_requests),
    );
    let server = tokio::spawn(web::serve(listener, Arc::clone(&app), shutdown));

    let reloader = Reloader {
        cli: &cli,
        app: &app,
        pollers: &mut pollers,
    };
    reloader.serve_until_shutdown(hangups, requests).await;
    info!("shutting down");
    trigger.fire();
    let stopped = tokio::time::timeout(Duration::from_secs(2), server).await;
    if stopped.is_err() {
        error!("the HTTP server did not stop in time; exiting anyway");
    }
    pollers.stop(Duration::from_secs(1)).await;
    Ok(ExitCode::SUCCESS)
}

/// What a reload needs: where the files are, and what it replaces.
struct Reloader<'a> {
    cli: &'a Cli,
    app: &'a App,
    pollers: &'a mut Pollers,
}

impl Reloader<'_> {
    /// Reloads on each SIGHUP and each request until SIGTERM or SIGINT, which also
    /// ends a reload under way.
    async fn serve_until_shutdown(
        mut self,
        mut hangups: Signal,
        mut requests: mpsc::Receiver<ReloadRequest>,
    ) {
        let stop = shutdown::signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                Some(()) = hangups.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    tokio::select! {
                        _ = self.reload() => {}
                        _ = &mut stop => return,
                    }
                }
                Some(answer) = requests.recv() => {
                    info!("POST /-/reload: reloading the configuration");
                    tokio::select! {
                        outcome = self.reload() => { let _ = answer.send(outcome); }
                        _ = &mut stop => return,
                    }
                }
            }
        }
    }

    /// Reads `--config.file` (and the cinder.conf files it names) and
    /// `--web.config.file` again; puts them in force only if both are good.
    async fn reload(&mut self) -> Result<String, String> {
        match self.read_files().await {
            Ok((setup, security)) => {
                if let Some(why) = &setup.unconfigured {
                    warn!("{why}");
                }
                let applied = self.pollers.apply(setup);
                let summary = applied.summary();
                self.app.replace(applied.served, Guard::of(security));
                own::record_reload(true, false);
                info!("configuration reloaded");
                Ok(summary)
            }
            Err(error) => {
                own::record_reload(false, false);
                error!(%error, "reload failed; the running configuration stays in force");
                Err(error)
            }
        }
    }

    /// The configuration and the web configuration, read on a blocking thread within
    /// [`RELOAD_READ_TIMEOUT`].
    async fn read_files(&self) -> Result<(Setup, WebSecurity), String> {
        let config_file = self.cli.config_file.clone();
        let web_config_file = self.cli.web_config_file.clone();
        let read = tokio::task::spawn_blocking(move || {
            let setup =
                config::load_setup(config_file.as_deref(), std::env::var(DATABASE_URL_ENV).ok())
                    .map_err(|e| e.to_string())?;
            let security = match web_config_file.as_deref() {
                None => WebSecurity::default(),
                Some(path) => web::load_web_config(path).map_err(|e| e.to_string())?,
            };
            Ok((setup, security))
        });
        match tokio::time::timeout(RELOAD_READ_TIMEOUT, read).await {
            Ok(Ok(files)) => files,
            Ok(Err(error)) => Err(format!("reading the configuration failed: {error}")),
            Err(_) => Err(format!(
                "reading the configuration files took longer than {}s (a hung file system?)",
                RELOAD_READ_TIMEOUT.as_secs()
            )),
        }
    }
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
    match (&setup.main, &setup.unconfigured) {
        (Some(config), _) => log_database("", cli.telemetry_path.as_str(), config),
        (None, Some(why)) => warn!("{why}"),
        (None, None) => info!(
            path = %cli.telemetry_path,
            "no top-level database: it serves only the exporter's own metrics; the targets are on /probe"
        ),
    }
    for target in &setup.targets {
        log_database(&target.name, "/probe", &target.config);
    }
    let (tls, client_certificates) = match &security.tls {
        None => ("off".to_string(), None),
        Some((settings, _)) => (
            format!("{}..{}", settings.min_version, settings.max_version),
            Some(settings.client_auth.to_string()),
        ),
    };
    info!(
        web_config = %cli.web_config_file.as_ref().map_or("none".into(), |p| p.display().to_string()),
        tls,
        client_certificates,
        basic_auth_users = security.basic_auth.as_ref().map_or(0, |a| a.user_count()),
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
    let (connection, judging) = (&config.connection, &config.judging);
    info!(
        target,
        path,
        database = connection.database.redacted(),
        database_from = config.source,
        query_timeout = seconds(connection.query_timeout),
        poll_interval = seconds(config.polling.poll_interval),
        service_down_time = seconds(judging.service_down_time),
        report_interval = seconds(judging.report_interval),
        stale_after = seconds(judging.stale_after),
        openstack_exporter_compatibility = config.output.compatibility.openstack_exporter,
        "database"
    );
    let database = &config.connection.database;
    if !database.ignored_parameters.is_empty() {
        info!(
            target,
            parameters = database.ignored_parameters.join(","),
            "database URL parameters not used by the exporter"
        );
    }
    if config.judging.report_interval >= config.judging.service_down_time {
        warn!(
            target,
            "report_interval >= service_down_time: services heartbeating at that interval \
             show down in cinder-api between heartbeats (cinder's service processes, the \
             scheduler among them, raise their own service_down_time to 2.5 x report_interval)"
        );
    }
}

/// A duration as the log shows it, as Prometheus writes durations: `2s`, `0.5s`.
fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs_f64())
}
