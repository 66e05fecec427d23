//! The real servers of the monitoring stack as child processes on free ports (killed on
//! drop): Prometheus scraping the exporter and evaluating the shipped rule file
//! unchanged, read through its HTTP API; and the Alertmanager with a given
//! configuration, to post alerts to and read back what it made of them. Both come from
//! Debian's packages (`prometheus`, `prometheus-alertmanager`), which `scripts/test`
//! installs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::host::{free_port, repository, wait_until};
use super::http;

/// The shipped rule file, as Prometheus loads it.
pub const RULES: &str = "alerts/cinder-exporter.rules.yml";

/// A child process killed (and reaped) on drop.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus scraping one exporter and evaluating the shipped rules.
pub struct Prometheus {
    _process: KillOnDrop,
    /// `127.0.0.1:PORT` its API listens on.
    pub address: String,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scrapes the exporter at `exporter_address` (as job `cinder`) and evaluates
    /// [`RULES`] every `interval`.
    pub fn start(exporter_address: &str, interval: Duration) -> Prometheus {
        let every = format!("{}ms", interval.as_millis());
        Prometheus::with_config(&format!(
            "global:\n  scrape_interval: {every}\n  evaluation_interval: {every}\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: cinder\n    static_configs:\n      - targets: ['{exporter_address}']\n",
            repository().join(RULES).display()
        ))
    }

    /// Prometheus with exactly this `prometheus.yml`.
    pub fn with_config(config_text: &str) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_text).expect("write prometheus.yml");
        let address = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus (Debian's prometheus package; scripts/test installs it)");
        Prometheus {
            _process: KillOnDrop(child),
            address,
            _dir: dir,
        }
    }

    /// The `data` of a successful API call to `path` with `query`; `None` if the call
    /// failed or Prometheus reported an error.
    pub fn api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let mut request = http::agent().get(&format!("http://{}{path}", self.address));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        let body = request.call().ok()?.body_mut().read_to_string().ok()?;
        let value: Value = serde_json::from_str(&body).ok()?;
        (value["status"] == "success").then(|| value["data"].clone())
    }

    /// The series a query returns (none if it failed): an instant vector's or a range
    /// vector's.
    pub fn query(&self, expr: &str) -> Vec<Value> {
        self.api("/api/v1/query", &[("query", expr)])
            .and_then(|data| data["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The values of `label` among the series a query returns.
    pub fn label_values(&self, expr: &str, label: &str) -> BTreeSet<String> {
        self.query(expr)
            .iter()
            .filter_map(|s| s["metric"][label].as_str().map(str::to_string))
            .collect()
    }

    /// The label sets an instant query returns, as `host -> cause` ("" when the series
    /// has no cause label); panics if the query fails.
    pub fn select(&self, expr: &str) -> BTreeMap<String, String> {
        let data = self
            .api("/api/v1/query", &[("query", expr)])
            .unwrap_or_else(|| panic!("query failed: {expr}"));
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|series| {
                let labels = &series["metric"];
                (
                    labels["host"].as_str().unwrap_or("").to_string(),
                    labels["cause"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The expression of a shipped alert, as Prometheus loaded it.
    pub fn rule_query(&self, alert: &str) -> String {
        let data = self.api("/api/v1/rules", &[]).expect("rules API");
        data["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter())
            .find(|r| r["name"] == alert)
            .and_then(|r| r["query"].as_str())
            .unwrap_or_else(|| panic!("{alert} is not loaded"))
            .to_string()
    }
}

/// The Alertmanager with one configuration, clustering off.
pub struct Alertmanager {
    _process: KillOnDrop,
    /// `127.0.0.1:PORT` its API listens on.
    pub address: String,
    _storage: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it with the configuration file `config` and waits until it is ready.
    pub fn start(config: &Path) -> Alertmanager {
        let storage = tempfile::tempdir().expect("temp dir");
        let address = format!("127.0.0.1:{}", free_port());
        let mut last_error = None;
        for binary in ["prometheus-alertmanager", "alertmanager"] {
            let started = Command::new(binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", storage.path().display()))
                .arg(format!("--web.listen-address={address}"))
                .arg("--cluster.listen-address=")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match started {
                Ok(child) => {
                    let alertmanager = Alertmanager {
                        _process: KillOnDrop(child),
                        address,
                        _storage: storage,
                    };
                    alertmanager.wait_ready();
                    return alertmanager;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => last_error = Some(e),
                Err(e) => panic!("start {binary}: {e}"),
            }
        }
        panic!(
            "the Alertmanager is not installed ({last_error:?}): scripts/test installs it \
             from Debian's `prometheus-alertmanager` package"
        )
    }

    fn wait_ready(&self) {
        wait_until(
            "the Alertmanager to get ready",
            Duration::from_secs(20),
            || {
                http::agent()
                    .get(&format!("http://{}/-/ready", self.address))
                    .call()
                    .is_ok_and(|r| r.status() == 200)
            },
        );
    }

    /// Posts `alerts` (a JSON list of `{"labels": …}`) to its v2 API.
    pub fn post_alerts(&self, alerts: &Value) {
        let response = http::agent()
            .post(&format!("http://{}/api/v2/alerts", self.address))
            .header("Content-Type", "application/json")
            .send(alerts.to_string())
            .expect("POST alerts");
        assert_eq!(response.status(), 200, "POST /api/v2/alerts");
    }

    /// Every alert it holds, with its status.
    pub fn alerts(&self) -> Vec<Value> {
        let mut response = http::agent()
            .get(&format!("http://{}/api/v2/alerts", self.address))
            .call()
            .expect("GET alerts");
        let body = response.body_mut().read_to_string().expect("body");
        serde_json::from_str::<Value>(&body)
            .expect("alerts JSON")
            .as_array()
            .expect("a list of alerts")
            .clone()
    }
}
