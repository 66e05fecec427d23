//! The openstack-exporter compatible series against what operators run today: the
//! exporter's real output over a real MariaDB, fed to promtool (`promtool test rules`,
//! the series copied from the scrape) and scraped by a real Prometheus set up like
//! vexxhost's, must make the usual alert expressions select exactly the expected
//! services.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::{wait_until, Database, Exporter, ExporterOptions, Prometheus, Schema, Scrape};

/// `openstack_cinder_agent_state`'s labels as openstack-exporter writes them: written
/// out here, not taken from the schema, so that the test checks the code against them.
const OPENSTACK_EXPORTER_LABELS: [&str; 6] = [
    "uuid",
    "hostname",
    "service",
    "adminState",
    "zone",
    "disabledReason",
];

const WAIT: Duration = Duration::from_secs(30);
const AGENT_STATE: &str = "openstack_cinder_agent_state";
/// Free text with a quote, a backslash and a line feed: escaped on the way out.
const REASON: &str = "disk \"swap\" \\ tonight\nticket 42";

/// Inserts a live row: heartbeat `age` seconds ago.
fn insert(
    db: &Database,
    host: &str,
    binary: &str,
    age: i64,
    disabled: bool,
    reason: Option<&str>,
    uuid: &str,
) {
    db.exec_with(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, report_count, \
         disabled, disabled_reason, availability_zone, uuid) VALUES (UTC_TIMESTAMP() - INTERVAL 1 DAY, \
         UTC_TIMESTAMP() - INTERVAL ? SECOND, 0, ?, ?, ?, 5, ?, ?, 'nova', ?)",
        (age, host, binary, binary, disabled, reason, uuid),
    );
}

/// The fleet every test here reads: two services up, three down (one of them
/// disabled), one disabled and up, and a stale duplicate row of `up@lvm`.
fn fleet() -> Database {
    let db = Database::create(Schema::Cinder29);
    insert(&db, "up@lvm", "cinder-volume", 0, false, None, "u-up");
    insert(
        &db,
        "up@lvm",
        "cinder-volume",
        3_600,
        false,
        None,
        "u-up-old-row",
    );
    insert(&db, "down@lvm", "cinder-volume", 300, false, None, "u-down");
    insert(
        &db,
        "maint@lvm",
        "cinder-volume",
        300,
        true,
        Some(REASON),
        "u-maint",
    );
    insert(&db, "ctl1", "cinder-scheduler", 300, false, None, "u-sched");
    insert(&db, "ctl1", "cinder-backup", 0, true, None, "u-backup");
    db
}

fn compat_exporter(db: &Database) -> Exporter {
    Exporter::start(
        ExporterOptions::for_database(&db.url())
            .with_config("compatibility:\n  openstack_exporter: true"),
    )
}

fn all_rows_in(scrape: &Scrape) -> bool {
    scrape.find(AGENT_STATE, &[]).len() == 5
}

#[test]
fn agent_state_mirrors_the_native_series_with_openstack_exporters_labels() {
    let db = fleet();
    let exporter = compat_exporter(&db);
    let scrape = exporter.wait_for("every service", WAIT, all_rows_in);
    assert_eq!(scrape.value("openstack_cinder_up", &[]), Some(1.0));
    assert_eq!(scrape.value("cinder_up", &[]), Some(1.0));
    let names: BTreeSet<&str> = OPENSTACK_EXPORTER_LABELS.into();
    for sample in scrape.find(AGENT_STATE, &[]) {
        let labels = &sample.labels;
        assert_eq!(
            labels.0.keys().map(String::as_str).collect::<BTreeSet<_>>(),
            names
        );
        let (host, binary) = (
            labels.get("hostname").unwrap(),
            labels.get("service").unwrap(),
        );
        let native = scrape.value("cinder_service_up", &[("host", host), ("binary", binary)]);
        assert_eq!(
            Some(sample.value),
            native,
            "{host} {binary}: the API verdict"
        );
        let enabled = scrape.value(
            "cinder_service_enabled",
            &[("host", host), ("binary", binary)],
        );
        let admin = if enabled == Some(1.0) {
            "enabled"
        } else {
            "disabled"
        };
        assert_eq!(labels.get("adminState"), Some(admin), "{host} {binary}");
        assert_eq!(labels.get("zone"), Some("nova"));
    }
    // The fresher of the two rows of up@lvm, as for the native series.
    assert_eq!(uuid_of(&scrape, "up@lvm", "cinder-volume"), "u-up");
    let maint = scrape.find(AGENT_STATE, &[("hostname", "maint@lvm")]);
    assert_eq!(maint[0].labels.get("disabledReason"), Some(REASON));
    let backup = scrape.find(AGENT_STATE, &[("service", "cinder-backup")]);
    assert_eq!(backup[0].labels.get("disabledReason"), Some(""));
    assert_eq!(backup[0].value, 1.0);

    // The uuid is the row's, not made up per scrape.
    std::thread::sleep(Duration::from_millis(500));
    let again = exporter.scrape();
    for (host, binary) in [("down@lvm", "cinder-volume"), ("ctl1", "cinder-scheduler")] {
        assert_eq!(
            uuid_of(&scrape, host, binary),
            uuid_of(&again, host, binary)
        );
    }
    assert_eq!(uuid_of(&again, "ctl1", "cinder-scheduler"), "u-sched");
}

fn uuid_of(scrape: &Scrape, host: &str, binary: &str) -> String {
    let found = scrape.find(AGENT_STATE, &[("hostname", host), ("service", binary)]);
    assert_eq!(found.len(), 1, "one series for {host} {binary}");
    found[0].labels.get("uuid").unwrap().to_string()
}

#[test]
fn compatibility_is_off_by_default_and_uuid_is_empty_before_queens() {
    let db = fleet();
    let plain = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = plain.wait_for("every service", WAIT, |s| {
        s.find("cinder_service_up", &[]).len() == 5
    });
    assert!(!scrape.text.contains("openstack_"), "{}", scrape.text);

    let old = Database::create(Schema::Oldest);
    old.exec(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, report_count, \
         disabled, availability_zone) VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0, 'old@lvm', \
         'cinder-volume', 'cinder-volume', 1, NULL, 'nova')",
    );
    let exporter = compat_exporter(&old);
    let scrape = exporter.wait_for("the old row", WAIT, |s| s.find(AGENT_STATE, &[]).len() == 1);
    let sample = &scrape.find(AGENT_STATE, &[])[0];
    assert_eq!(sample.labels.get("uuid"), Some(""));
    assert_eq!(
        sample.labels.get("adminState"),
        Some("enabled"),
        "NULL disabled is enabled"
    );
}

/// The exporter's own lines of `metric`, as `(series, value)`.
fn exposition_series<'a>(text: &'a str, metric: &str) -> Vec<(&'a str, &'a str)> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .map(|l| l.rsplit_once(' ').expect("sample line"))
        .collect()
}

/// The label list of the exposition line of `hostname`/`service`, as `{…}`, with the
/// labels named in `drop` left out.
fn labels_of(series: &[(&str, &str)], host: &str, binary: &str, keep: &[&str]) -> String {
    let line = series
        .iter()
        .map(|(s, _)| *s)
        .find(|s| s.contains(&format!("hostname=\"{host}\",service=\"{binary}\"")))
        .unwrap_or_else(|| panic!("no series for {host} {binary}"));
    let inner = &line[line.find('{').unwrap() + 1..line.len() - 1];
    // Label values here hold no `",` (the reason's quote is followed by a space); with
    // a comma appended, every pair ends in `",` and loses its closing quote to the split.
    let inner = format!("{inner},");
    let kept: Vec<&str> = inner
        .split("\",")
        .filter(|pair| keep.iter().any(|k| pair.starts_with(&format!("{k}=\""))))
        // Prometheus drops empty labels: `disabledReason=""` is no label at all.
        .filter(|pair| !pair.ends_with("=\""))
        .collect();
    format!(
        "{{{}}}",
        kept.iter()
            .map(|p| format!("{p}\""))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn yaml_quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[test]
fn promtool_selects_the_expected_services_from_the_real_output() {
    let db = fleet();
    let exporter = compat_exporter(&db);
    let scrape = exporter.wait_for("every service", WAIT, all_rows_in);
    let series = exposition_series(&scrape.text, AGENT_STATE);
    let all = OPENSTACK_EXPORTER_LABELS;
    let whole = |h, b| format!("{AGENT_STATE}{}", labels_of(&series, h, b, &all));
    let no_uuid = |h, b| labels_of(&series, h, b, &all[1..]);
    let host_service = |h, b| labels_of(&series, h, b, &["hostname", "service"]);
    let (down, maint, sched) = (
        ("down@lvm", "cinder-volume"),
        ("maint@lvm", "cinder-volume"),
        ("ctl1", "cinder-scheduler"),
    );
    let cases: Vec<(&str, Vec<(String, f64)>)> =
        vec![
        (
            "openstack_cinder_agent_state != 1",
            [down, maint, sched].iter().map(|(h, b)| (whole(h, b), 0.0)).collect(),
        ),
        (
            "count without (uuid) (openstack_cinder_agent_state{adminState=\"enabled\"} == 0) > 0",
            [down, sched].iter().map(|(h, b)| (no_uuid(h, b), 1.0)).collect(),
        ),
        (
            "sum({__name__=~\"openstack.+_state\"} == 0) by (hostname, service)",
            [down, maint, sched].iter().map(|(h, b)| (host_service(h, b), 0.0)).collect(),
        ),
        (
            "openstack_cinder_agent_state{adminState=\"enabled\"} != 1",
            [down, sched].iter().map(|(h, b)| (whole(h, b), 0.0)).collect(),
        ),
    ];
    let test = promtool_test_file(&scrape.text, &cases);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.rules.yml"), "groups: []\n").unwrap();
    let (passed, report) = promtool(dir.path(), &test);
    assert!(passed, "promtool:\n{report}\ntest file:\n{test}");
    // A test file whose expectations promtool would accept anyway proves nothing.
    let wrong = test.replacen("value: 1\n", "value: 2\n", 1);
    assert!(
        !promtool(dir.path(), &wrong).0,
        "promtool accepted a wrong expectation"
    );
}

/// A `promtool test rules` file: the input series are the exporter's own sample lines
/// of the compatibility families, each expression expected to give exactly `cases`.
fn promtool_test_file(exposition: &str, cases: &[(&str, Vec<(String, f64)>)]) -> String {
    let mut test = String::from(
        "rule_files: [empty.rules.yml]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    let lines = exposition_series(exposition, AGENT_STATE);
    for (name, value) in lines
        .into_iter()
        .chain(exposition_series(exposition, "openstack_cinder_up"))
    {
        test.push_str(&format!(
            "      - series: {}\n        values: '{value}x5'\n",
            yaml_quoted(name)
        ));
    }
    test.push_str("    promql_expr_test:\n");
    for (expr, expected) in cases {
        test.push_str(&format!(
            "      - expr: {}\n        eval_time: 2m\n        exp_samples:\n",
            yaml_quoted(expr)
        ));
        for (labels, value) in expected {
            test.push_str(&format!(
                "          - labels: {}\n            value: {value}\n",
                yaml_quoted(labels)
            ));
        }
    }
    test
}

/// Runs `promtool test rules` on `test` in `dir`: whether it passed, and its report.
fn promtool(dir: &std::path::Path, test: &str) -> (bool, String) {
    std::fs::write(dir.join("test.yml"), test).unwrap();
    let output = Command::new("promtool")
        .args(["test", "rules", "test.yml"])
        .current_dir(dir)
        .output()
        .expect("run promtool (Debian's prometheus package; scripts/test installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// A real Prometheus scraping the exporter as the Prometheus Operator scrapes a
/// Kubernetes Service: the target carries a `service` label.
fn prometheus_with_a_service_label(exporter: &str) -> Prometheus {
    Prometheus::with_config(&format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
         scrape_configs:\n  - job_name: openstack-exporter\n    static_configs:\n\
         \x20     - targets: ['{exporter}']\n        labels: {{service: cinder-exporter}}\n"
    ))
}

/// The label sets an instant query returns.
fn label_sets(
    prometheus: &Prometheus,
    expr: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    prometheus
        .query(expr)
        .iter()
        .filter_map(|s| s["metric"].as_object().cloned())
        .collect()
}

#[test]
fn prometheus_renames_service_to_exported_service_as_vexxhosts_rules_expect() {
    let db = fleet();
    let exporter = compat_exporter(&db);
    exporter.wait_for("every service", WAIT, all_rows_in);
    let prometheus = prometheus_with_a_service_label(&exporter.address);
    wait_until(
        "Prometheus to scrape the five series",
        Duration::from_secs(90),
        || label_sets(&prometheus, AGENT_STATE).len() == 5,
    );
    let scraped = label_sets(&prometheus, AGENT_STATE);
    for series in &scraped {
        assert_eq!(
            series["service"], "cinder-exporter",
            "the target's label wins: {series:?}"
        );
        assert!(series["exported_service"]
            .as_str()
            .is_some_and(|s| s.starts_with("cinder-")));
    }
    let selected: BTreeSet<String> = label_sets(
        &prometheus,
        "min by (exported_service) (openstack_cinder_agent_state) == 0",
    )
    .iter()
    .map(|labels| {
        labels["exported_service"]
            .as_str()
            .unwrap_or("")
            .to_string()
    })
    .collect();
    // cinder-backup's only service is up (if disabled): not selected.
    assert_eq!(
        selected,
        ["cinder-scheduler".to_string(), "cinder-volume".to_string()].into()
    );
}
