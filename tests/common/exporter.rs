//! The real exporter binary as a child process (killed on drop), with its log captured,
//! or run to its exit for start-up errors.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::host::poll_until;
use super::http;
use super::metrics::Scrape;

/// How long a start-up check may take before the exporter is deemed to have started.
const EXIT_WAIT: Duration = Duration::from_secs(15);

/// A database URL nothing listens on: the exporter starts, every poll fails at once,
/// and it serves `cinder_up 0` and nothing about services; the web layer is whole.
pub const UNREACHABLE_DATABASE: &str = "mysql://exporter:unused@127.0.0.1:1/cinder";

/// The YAML config of an exporter reading `database_url`, polling every 200 ms.
pub fn database_config(database_url: &str) -> String {
    format!("database:\n  url: {database_url}\npoll_interval: 200ms\n")
}

/// How to start the exporter.
pub struct ExporterOptions {
    /// The YAML config file's text (written to a temp file), if any.
    pub config: Option<String>,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl ExporterOptions {
    /// The exporter against `database_url`, polling every 200 ms.
    pub fn for_database(database_url: &str) -> ExporterOptions {
        ExporterOptions::with_yaml(&database_config(database_url))
    }

    /// The exporter with no database to read: for the web layer alone.
    pub fn without_database() -> ExporterOptions {
        ExporterOptions::for_database(UNREACHABLE_DATABASE)
    }

    /// The exporter with exactly this YAML config.
    pub fn with_yaml(yaml: &str) -> ExporterOptions {
        ExporterOptions {
            config: Some(yaml.to_string()),
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Appends lines to the YAML config.
    pub fn with_config(mut self, yaml: &str) -> ExporterOptions {
        let config = self.config.get_or_insert_with(String::new);
        config.push_str(yaml);
        if !config.ends_with('\n') {
            config.push('\n');
        }
        self
    }

    pub fn with_env(mut self, name: &str, value: &str) -> ExporterOptions {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn with_args(mut self, args: &[&str]) -> ExporterOptions {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }
}

/// Runs the exporter to a start-up error: exit code and stderr. It listens on a port
/// of its own and is killed if it does not exit: a check that fails to stop the
/// start-up must not hang the suite.
pub fn run_exporter_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cinder_exporter"));
    command
        .args(["--web.listen-address", "127.0.0.1:0"])
        .args(args)
        .env_remove("CINDER_EXPORTER_DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("run exporter");
    let deadline = Instant::now() + EXIT_WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "the exporter started instead of exiting: {args:?}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The exporter binary running as a child process, killed on drop.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT` it listens on.
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
    _config_dir: tempfile::TempDir,
}

impl Exporter {
    /// Starts it on a free port with debug logging; returns once it logged its address.
    pub fn start(options: ExporterOptions) -> Exporter {
        let config_dir = tempfile::tempdir().expect("temp dir");
        let mut command = Command::new(env!("CARGO_BIN_EXE_cinder_exporter"));
        command
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.level",
                "debug",
            ])
            .env_remove("CINDER_EXPORTER_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(config) = &options.config {
            let path = config_dir.path().join("config.yml");
            std::fs::write(&path, config).expect("write config");
            command.arg("--config.file").arg(path);
        }
        command.args(&options.args);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start exporter");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut address_tx = Some(address_tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(address) = line.split("address=").nth(1) {
                        if let Some(tx) = address_tx.take() {
                            let _ = tx
                                .send(address.split_whitespace().next().unwrap_or("").to_string());
                        }
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let address = match address_rx.recv_timeout(Duration::from_secs(20)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "exporter did not log its address; log:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Exporter {
            child,
            address,
            log,
            _config_dir: config_dir,
        }
    }

    /// The `--config.file` it was started with (written from [`ExporterOptions`]).
    pub fn config_path(&self) -> std::path::PathBuf {
        self._config_dir.path().join("config.yml")
    }

    /// Replaces the text of its `--config.file` (it reads it again on a reload).
    pub fn rewrite_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).expect("rewrite config");
    }

    /// Sends it SIGHUP.
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success(), "kill -HUP failed");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// GET `path`: status and body (no gzip).
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut response = http::agent()
            .get(&format!("http://{}{}", self.address, path))
            .header("Accept-Encoding", "identity")
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().expect("body");
        (status, body)
    }

    /// Scrapes and parses `/metrics`.
    pub fn scrape(&self) -> Scrape {
        let (status, body) = self.get("/metrics");
        assert_eq!(status, 200, "{body}");
        Scrape::parse(&body)
    }

    /// Scrapes until `ready` holds for a scrape, or panics after `timeout` naming `what`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&Scrape) -> bool,
    ) -> Scrape {
        poll_until(timeout, || {
            let scrape = self.scrape();
            if ready(&scrape) {
                return Ok(scrape);
            }
            Err(format!(
                "timed out waiting for {what}; last scrape:\n{}\nexporter log:\n{}",
                scrape.text,
                self.log()
            ))
        })
    }

    /// The log once it contains `needle` (case-insensitive); panics after 5 s.
    pub fn wait_for_log(&self, needle: &str) -> String {
        poll_until(Duration::from_secs(5), || {
            let log = self.log();
            if log.to_lowercase().contains(&needle.to_lowercase()) {
                return Ok(log);
            }
            Err(format!("the log does not say {needle:?}:\n{log}"))
        })
    }

    /// Everything the exporter logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size in KiB, from `/proc/PID/status`.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Sends SIGTERM and waits for the exit status, at most `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
