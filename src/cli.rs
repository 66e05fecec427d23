//! Command-line flags, spelled as Prometheus exporters spell them.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// The default listen address; 9847 is this exporter's port.
pub const DEFAULT_LISTEN_ADDRESS: &str = ":9847";

/// What `--version` prints after the name, as Prometheus's own programs print it:
/// where the build comes from (build.rs) on the lines after the version. `-V` prints
/// the version alone.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision: ",
    env!("CINDER_EXPORTER_REVISION"),
    ")\n  build date:       ",
    env!("CINDER_EXPORTER_BUILD_DATE"),
    "\n  rustc version:    ",
    env!("CINDER_EXPORTER_RUSTC_VERSION"),
    "\n  platform:         ",
    env!("CINDER_EXPORTER_PLATFORM"),
);

/// Prometheus exporter for OpenStack Cinder services: whether each service is up
/// exactly as cinder judges it, and why not.
#[derive(Debug, Parser)]
#[command(name = "cinder_exporter", version, long_version = LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// YAML configuration file (database URL, cinder.conf path, intervals).
    /// Without it: defaults, and the database URL from CINDER_EXPORTER_DATABASE_URL.
    #[arg(long = "config.file", value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// Address to listen on for HTTP: "host:port", or ":port" for all interfaces.
    #[arg(long = "web.listen-address", value_name = "ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    pub telemetry_path: String,

    /// Web configuration file (exporter-toolkit format): TLS, client certificates, basic
    /// auth and response headers for the HTTP endpoint. Without it: plain HTTP, no auth.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Output format of log messages: one line per event, `ts`, `level`, `msg`, then
    /// the event's fields.
    #[arg(long = "log.format", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

/// Log line formats accepted by `--log.format`, as Prometheus exporters name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, values quoted where they hold a space, `=` or `"`.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Log severities accepted by `--log.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The matching tracing level.
    pub fn as_tracing(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Error => tracing::Level::ERROR,
        }
    }
}

/// Turns ":9847" into "0.0.0.0:9847" (Go's convention for "all interfaces").
pub fn bind_address(listen_address: &str) -> String {
    match listen_address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => listen_address.to_string(),
    }
}
