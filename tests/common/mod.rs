//! What the integration tests share: a database of their own on a real MariaDB server,
//! the real exporter binary as a child process, and its `/metrics` parsed with a real
//! exposition-format parser.
//!
//! The server is the one `scripts/test` starts (or the one named by
//! `CINDER_EXPORTER_TEST_DATABASE_URL`); each test creates databases named
//! `cinder_exporter_test_*` and drops them, and touches nothing else there. Tests that
//! must stop or crash the server start a private one ([`PrivateServer`]).

#![allow(dead_code)] // each test binary uses its own part of this module

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

pub const ADMIN_URL_ENV: &str = "CINDER_EXPORTER_TEST_DATABASE_URL";

/// The admin URL of the shared test server (ends with `/`).
pub fn admin_url() -> String {
    let url = std::env::var(ADMIN_URL_ENV).unwrap_or_else(|_| {
        panic!(
            "{ADMIN_URL_ENV} is not set: run the suite with scripts/test, which starts a \
             throwaway MariaDB, or point {ADMIN_URL_ENV} at a server (mysql://user:pass@host:port/)"
        )
    });
    let url = url.trim_end_matches('/');
    // Drop a database part, if any: tests create their own.
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    match url[scheme_end..].find('/') {
        Some(slash) => format!("{}/", &url[..scheme_end + slash]),
        None => format!("{url}/"),
    }
}

/// Which `services` table to create.
#[derive(Clone, Copy, Debug)]
pub enum Schema {
    /// `SHOW CREATE TABLE` of cinder 29 after `db sync`.
    Cinder29,
    /// Only the columns every cinder release has had.
    Oldest,
}

impl Schema {
    fn sql(self) -> &'static str {
        match self {
            Schema::Cinder29 => include_str!("../fixtures/cinder-29-schema.sql"),
            Schema::Oldest => include_str!("../fixtures/cinder-oldest-schema.sql"),
        }
    }
}

/// Runs `work` to completion on a small runtime of its own (the tests are synchronous).
pub fn block_on<F: std::future::Future>(work: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("test runtime")
        .block_on(work)
}

static NEXT_DATABASE: AtomicU32 = AtomicU32::new(0);

/// A database of this test's own, created from a cinder schema and dropped on drop.
pub struct Database {
    server: String,
    name: String,
}

impl Database {
    /// A fresh database on the shared test server.
    pub fn create(schema: Schema) -> Database {
        Database::create_on(&admin_url(), schema)
    }

    /// A fresh database on the server at `server_url` (`mysql://…/`).
    pub fn create_on(server_url: &str, schema: Schema) -> Database {
        let name = format!(
            "cinder_exporter_test_{}_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        let db = Database {
            server: server_url.to_string(),
            name,
        };
        db.admin(&format!(
            "CREATE DATABASE `{}` CHARACTER SET utf8mb3",
            db.name
        ));
        for statement in schema
            .sql()
            .split(';')
            .filter(|s| !strip_comments(s).is_empty())
        {
            db.exec(statement);
        }
        db
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL the exporter is given.
    pub fn url(&self) -> String {
        format!("{}{}", self.server, self.name)
    }

    /// Runs statements (separated by `;` in one string is not allowed: one statement).
    pub fn exec(&self, sql: &str) {
        let url = self.url();
        block_on(async move {
            let mut conn = mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect");
            conn.query_drop(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.disconnect().await.ok();
        });
    }

    /// Runs a statement with parameters.
    pub fn exec_with(&self, sql: &str, params: impl Into<mysql_async::Params> + Send) {
        let url = self.url();
        let params = params.into();
        block_on(async move {
            let mut conn = mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect");
            conn.exec_drop(sql, params)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.disconnect().await.ok();
        });
    }

    /// One value of a query returning one row and column.
    pub fn query_one<T: mysql_async::prelude::FromValue + Send + 'static>(&self, sql: &str) -> T {
        let url = self.url();
        block_on(async move {
            let mut conn = mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect");
            let value: Option<T> = conn
                .query_first(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.disconnect().await.ok();
            value.unwrap_or_else(|| panic!("{sql}: no row"))
        })
    }

    /// All rows of a query.
    pub fn query<T: mysql_async::prelude::FromRow + Send + 'static>(&self, sql: &str) -> Vec<T> {
        let url = self.url();
        block_on(async move {
            let mut conn = mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect");
            let rows: Vec<T> = conn
                .query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.disconnect().await.ok();
            rows
        })
    }

    fn admin(&self, sql: &str) {
        let url = self.server.clone();
        let sql = sql.to_string();
        block_on(async move {
            let mut conn = mysql_async::Conn::from_url(url.as_str())
                .await
                .expect("connect to test server");
            conn.query_drop(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            conn.disconnect().await.ok();
        });
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        run_best_effort(
            &self.server,
            format!("DROP DATABASE IF EXISTS `{}`", self.name),
        );
    }
}

/// Runs `sql` on the server at `server_url` if it can be reached within 5 s, ignoring
/// failures: for clean-ups in `Drop`, where a test may have stopped its server already.
pub fn run_best_effort(server_url: &str, sql: String) {
    let url = server_url.to_string();
    // A thread of its own: `Drop` may run inside another runtime.
    let _ = std::thread::spawn(move || {
        block_on(async move {
            if let Ok(Ok(mut conn)) = tokio::time::timeout(
                Duration::from_secs(5),
                mysql_async::Conn::from_url(url.as_str()),
            )
            .await
            {
                let _ = conn.query_drop(sql).await;
                let _ = conn.disconnect().await;
            }
        })
    })
    .join();
}

fn strip_comments(sql: &str) -> String {
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// The repository root (for scripts and fixtures).
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A MariaDB server of one test's own, for tests that stop, crash or restart it.
/// Started and stopped with `scripts/mariadb-throwaway`; removed on drop.
pub struct PrivateServer {
    dir: tempfile::TempDir,
    url: String,
}

impl PrivateServer {
    pub fn start() -> PrivateServer {
        let dir = tempfile::Builder::new()
            .prefix("cinder-exporter-mariadb.")
            .tempdir()
            .expect("temp dir");
        let url = throwaway(dir.path(), "start");
        PrivateServer { dir, url }
    }

    /// Its admin URL (`mysql://admin:admin@127.0.0.1:PORT/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts it again (same port, same data) after [`stop`](Self::stop) or [`kill`](Self::kill).
    pub fn restart(&self) {
        throwaway(self.dir.path(), "start");
    }

    pub fn stop(&self) {
        throwaway(self.dir.path(), "stop");
    }

    /// SIGKILL, as a crash.
    pub fn kill(&self) {
        throwaway(self.dir.path(), "kill");
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        throwaway(self.dir.path(), "kill");
    }
}

fn throwaway(dir: &Path, action: &str) -> String {
    let output = Command::new(repository().join("scripts/mariadb-throwaway"))
        .arg(action)
        .arg(dir)
        .output()
        .expect("run scripts/mariadb-throwaway");
    assert!(
        output.status.success(),
        "mariadb-throwaway {action} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The exporter binary running as a child process, killed on drop.
pub struct Exporter {
    child: Child,
    /// `127.0.0.1:PORT` it listens on.
    pub address: String,
    log: Arc<Mutex<Vec<String>>>,
    _config_dir: tempfile::TempDir,
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
        ExporterOptions {
            config: Some(format!(
                "database:\n  url: {database_url}\npoll_interval: 200ms\n"
            )),
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
}

/// Runs the exporter binary to completion (for start-up errors): exit code and stderr.
pub fn run_exporter_to_exit(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cinder_exporter"));
    command
        .args(args)
        .env_remove("CINDER_EXPORTER_DATABASE_URL");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run exporter");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Exporter {
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

    /// GET `path`: status and body (no gzip).
    pub fn get(&self, path: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let mut response = agent
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
        let deadline = Instant::now() + timeout;
        loop {
            let scrape = self.scrape();
            if ready(&scrape) {
                return scrape;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{}\nexporter log:\n{}",
                    scrape.text,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything the exporter logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
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

/// Sends `request` as is over a new connection and reads until the server closes it:
/// the head (lower-cased) and the body bytes.
pub fn raw_request(address: &str, request: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&response)));
    let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
    (head, response[split + 4..].to_vec())
}

/// How long the simulator may take to create its rows.
const SIMULATOR_START: Duration = Duration::from_secs(20);

/// `cinder_fleet_sim` as a child process, killed on drop.
pub struct Simulator {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    _fleet: tempfile::TempDir,
}

impl Simulator {
    /// Starts the fleet described by `fleet` (YAML) against the database at
    /// `database_url` and waits until every
    /// service's row exists.
    pub fn start(database_url: &str, fleet: &str) -> Simulator {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fleet.yml");
        std::fs::write(&path, fleet).expect("write fleet file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cinder_fleet_sim"))
            .arg("--database-url")
            .arg(database_url)
            .arg("--fleet")
            .arg(&path)
            .env_remove("CINDER_FLEET_SIM_DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cinder_fleet_sim");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().expect("stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "ready" {
                    let _ = ready_tx.send(());
                }
            }
        });
        let simulator = Simulator {
            child,
            log,
            _fleet: dir,
        };
        if ready_rx.recv_timeout(SIMULATOR_START).is_err() {
            panic!(
                "cinder_fleet_sim did not print ready; log:\n{}",
                simulator.log()
            );
        }
        simulator
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("cinder_fleet_sim log:\n{}", self.log());
        }
    }
}

/// A free TCP port on 127.0.0.1 for a server that cannot report the one it took.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// One parsed `/metrics` response.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
    /// Every family announced by `# TYPE`/`# HELP`, with or without samples.
    pub families: std::collections::BTreeSet<String>,
}

/// One sample, label values unescaped.
#[derive(Clone, Debug)]
pub struct Sample {
    pub metric: String,
    pub labels: Labels,
    pub value: f64,
}

/// A sample's labels.
#[derive(Clone, Debug, Default)]
pub struct Labels(pub std::collections::BTreeMap<String, String>);

impl Labels {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl Scrape {
    /// Parses the text exposition format with openmetrics-parser, which (unlike
    /// prometheus-parse) resolves the escapes in label values.
    pub fn parse(text: &str) -> Scrape {
        use openmetrics_parser::PrometheusValue;
        let exposition = openmetrics_parser::prometheus::parse_prometheus(text)
            .unwrap_or_else(|e| panic!("unparseable exposition: {e:?}\n{text}"));
        let mut samples = Vec::new();
        let mut families = std::collections::BTreeSet::new();
        for (name, family) in &exposition.families {
            families.insert(name.clone());
            for sample in family.iter_samples() {
                let labels = sample
                    .get_labelset()
                    .map(|set| set.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                let value = match &sample.value {
                    PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
                    PrometheusValue::Counter(c) => c.value.as_f64(),
                    other => panic!("{name}: unexpected sample {other:?}"),
                };
                samples.push(Sample {
                    metric: name.clone(),
                    labels: Labels(labels),
                    value,
                });
            }
        }
        Scrape {
            text: text.to_string(),
            samples,
            families,
        }
    }

    /// The samples of `metric` whose labels include all of `labels`.
    pub fn find(&self, metric: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample of `metric` matching `labels`; `None` if absent,
    /// panics if several match.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found = self.find(metric, labels);
        assert!(
            found.len() <= 1,
            "{metric} {labels:?} matches {} samples",
            found.len()
        );
        found.first().map(|s| s.value)
    }

    /// The `cause` whose one-hot `cinder_service_down_cause` sample is 1.
    pub fn cause(&self, host: &str, binary: &str) -> Option<String> {
        let hot: Vec<_> = self
            .find(
                "cinder_service_down_cause",
                &[("host", host), ("binary", binary)],
            )
            .into_iter()
            .filter(|s| s.value == 1.0)
            .collect();
        assert!(hot.len() <= 1, "several causes for {host}/{binary}");
        hot.first()
            .and_then(|s| s.labels.get("cause").map(str::to_string))
    }

    /// Names of the metric families that have samples.
    pub fn metric_names(&self) -> std::collections::BTreeSet<String> {
        self.samples.iter().map(|s| s.metric.clone()).collect()
    }
}

pub fn sample_value(sample: &Sample) -> f64 {
    sample.value
}
