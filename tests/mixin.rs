//! The mixin (mixin/*.libsonnet, and what it generates: the alert and recording
//! rules and the Grafana dashboard; the rules' promtool unit tests, the Alertmanager
//! example, the runbook) checked in the same suite as the code: a renamed metric, a
//! broken expression, an alert without a runbook or a generated file edited by hand
//! fails here, not on an operator's pager.
//!
//! jsonnet, promtool and amtool come from Debian's `jsonnet`, `prometheus` and
//! `prometheus-alertmanager` packages, which `scripts/test` installs when missing; the
//! metric-name check runs the real exporter against a database of its own (see
//! `tests/common`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::prometheus::RULES;
use common::Alertmanager;
use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier, VectorSelector};
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

const RULE_TESTS: &str = "alerts/tests";
const ALERTMANAGER: &str = "alerts/alertmanager.example.yml";
const RUNBOOK: &str = "alerts/RUNBOOK.md";
const DASHBOARD: &str = "grafana/cinder-services.json";
/// The directory of the generated dashboards, and the mixin's entry points.
const DASHBOARDS: &str = "grafana";
const MIXIN: &str = "mixin";
const MIXIN_RULE_FILE: &str = "mixin/rule-file.jsonnet";
const MIXIN_DASHBOARDS: &str = "mixin/dashboards.jsonnet";

/// Where every alert's `runbook_url` points, followed by `#<alert name in lower case>`.
const RUNBOOK_URL: &str =
    "https://github.com/cinder-exporter/cinder_exporter/blob/main/alerts/RUNBOOK.md#";
const DASHBOARD_UID: &str = "cinder-services";
const DASHBOARD_VARIABLES: [&str; 5] = ["job", "instance", "zone", "binary", "host"];
/// The label (and variable) that tells regions apart: one scrape target per database.
const REGION: &str = "instance";
/// The dashboard's panels that total the selected regions on purpose.
const FLEET_TOTALS: [&str; 4] = ["Up", "Down", "Disabled", "Verdicts disagree"];
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];

/// Series Prometheus itself makes, which the rules may use without the exporter.
const PROMETHEUS_BUILTINS: [&str; 7] = [
    "up",
    "ALERTS",
    "ALERTS_FOR_STATE",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

fn repository_path(relative: &str) -> PathBuf {
    common::repository().join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repository_path(relative))
        .unwrap_or_else(|e| panic!("read {relative}: {e}"))
}

// ---------------------------------------------------------------------------------
// The external tools

/// Runs `tool` from the repository root; a missing tool fails with how to get it.
fn run_tool(tool: &str, args: &[&str]) -> Output {
    match Command::new(tool)
        .args(args)
        .current_dir(common::repository())
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "{tool} is not installed: scripts/test installs it from Debian's packages \
             (`prometheus` for promtool, `prometheus-alertmanager` for amtool and the \
             Alertmanager, `jsonnet` for jsonnet and jsonnetfmt); or run: \
             sudo apt-get install prometheus prometheus-alertmanager jsonnet"
        ),
        Err(e) => panic!("run {tool}: {e}"),
    }
}

/// Runs `tool` and asserts it succeeds, showing everything it printed if not.
fn assert_tool_succeeds(tool: &str, args: &[&str]) -> String {
    let output = run_tool(tool, args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{stdout}\n{stderr}",
        args.join(" "),
        output.status
    );
    stdout
}

/// The promtool unit test files, `alerts/tests/*.yml`, sorted.
fn rule_test_files() -> Vec<PathBuf> {
    let dir = repository_path(RULE_TESTS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no promtool tests in {RULE_TESTS}");
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(common::repository())
        .unwrap_or(path)
        .display()
        .to_string()
}

// ---------------------------------------------------------------------------------
// The mixin and what it generates

/// The JSON value of a jsonnet expression evaluated in mixin/ (`mixin` is
/// mixin.libsonnet).
fn evaluate_mixin(expression: &str) -> Json {
    let code = format!("local mixin = import 'mixin.libsonnet'; {expression}");
    let out = assert_tool_succeeds("jsonnet", &["-J", MIXIN, "-e", &code]);
    serde_json::from_str(&out).expect("jsonnet prints JSON")
}

/// Whether `relative` equals `generated`, with the first differing line if not.
fn compare_generated(relative: &str, generated: &str) -> Result<(), String> {
    let committed = read(relative);
    if committed == generated {
        return Ok(());
    }
    let line = committed
        .lines()
        .zip(generated.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
    Err(format!(
        "{relative} is not what the mixin generates (first difference at line {}: \
         committed {:?}, generated {:?}); edit mixin/, run mixin/build and commit both",
        line + 1,
        committed.lines().nth(line),
        generated.lines().nth(line)
    ))
}

#[test]
fn the_committed_rules_and_dashboards_are_what_the_mixin_generates() {
    let mut failures = Vec::new();
    let rules = assert_tool_succeeds("jsonnet", &["-S", MIXIN_RULE_FILE]);
    failures.extend(compare_generated(RULES, &rules).err());

    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().to_str().expect("UTF-8 temp dir");
    assert_tool_succeeds("jsonnet", &["-m", out, MIXIN_DASHBOARDS]);
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect()
    };
    let generated = names(dir.path());
    assert!(
        generated.contains("cinder-services.json"),
        "the mixin generates no {DASHBOARD}: {generated:?}"
    );
    assert_eq!(
        names(&repository_path(DASHBOARDS)),
        generated,
        "{DASHBOARDS}/ holds exactly the mixin's dashboards"
    );
    for name in &generated {
        let text = std::fs::read_to_string(dir.path().join(name)).expect("generated dashboard");
        failures.extend(compare_generated(&format!("{DASHBOARDS}/{name}"), &text).err());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The rule file's YAML writer is the mixin's own (lib/rulefile.libsonnet): what
/// Prometheus reads from the file is exactly the mixin's groups.
#[test]
fn the_rule_file_reads_back_as_the_mixins_rules() {
    let file: Yaml = serde_yaml::from_str(&read(RULES)).expect("rule file is YAML");
    let file = serde_json::to_value(&file).expect("the rule file as JSON");
    let groups = evaluate_mixin("mixin.prometheusRules.groups + mixin.prometheusAlerts.groups");
    assert_eq!(file["groups"], groups, "{RULES} read back");
    assert_eq!(
        file.as_object().map(|o| o.len()),
        Some(1),
        "{RULES}: only `groups`"
    );
}

/// Every vector selector of `expr` (matrix selectors' included), and the labels of
/// every aggregation's `by (...)` (none for an aggregation over everything).
fn selectors_and_groupings<'a>(
    expr: &'a Expr,
    selectors: &mut Vec<&'a VectorSelector>,
    groupings: &mut Vec<Vec<String>>,
) {
    match expr {
        Expr::Aggregate(a) => {
            match &a.modifier {
                Some(LabelModifier::Include(labels)) => groupings.push(labels.labels.clone()),
                Some(LabelModifier::Exclude(_)) => {}
                None => groupings.push(Vec::new()),
            }
            selectors_and_groupings(&a.expr, selectors, groupings);
            if let Some(param) = &a.param {
                selectors_and_groupings(param, selectors, groupings);
            }
        }
        Expr::Unary(u) => selectors_and_groupings(&u.expr, selectors, groupings),
        Expr::Binary(b) => {
            selectors_and_groupings(&b.lhs, selectors, groupings);
            selectors_and_groupings(&b.rhs, selectors, groupings);
        }
        Expr::Paren(p) => selectors_and_groupings(&p.expr, selectors, groupings),
        Expr::Subquery(s) => selectors_and_groupings(&s.expr, selectors, groupings),
        Expr::VectorSelector(v) => selectors.push(v),
        Expr::MatrixSelector(m) => selectors.push(&m.vs),
        Expr::Call(c) => {
            for arg in &c.args.args {
                selectors_and_groupings(arg, selectors, groupings);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn has_matcher(selector: &VectorSelector, name: &str, op: &MatchOp, value: &str) -> bool {
    selector
        .matchers
        .matchers
        .iter()
        .any(|m| m.name == name && &m.op == op && m.value == value)
}

/// The mixin's `_config` reaches every rule: with another selector and region label,
/// every series a rule reads from the exporter or Prometheus carries the new selector
/// and not the default, every aggregation keeps the region label, and every
/// per-service alert names the region in its summary and description. (What the
/// recording rules record is selected by name: its inputs were selected.) Every
/// dashboard query and variable carries the new selector too.
#[test]
fn the_mixins_config_reaches_every_rule() {
    let groups = evaluate_mixin(
        "local configured = mixin { _config+:: { selector: 'job=\"elsewhere\"', \
         regionLabel: 'region' } }; \
         configured.prometheusRules.groups + configured.prometheusAlerts.groups",
    );
    let default_selector = evaluate_mixin("mixin._config.selector");
    let default_job = default_selector
        .as_str()
        .and_then(|s| s.strip_prefix("job=~\""))
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("default selector {default_selector}: not job=~\"...\""));
    let rules: Vec<&Json> = groups
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
        .collect();
    let recorded: BTreeSet<&str> = rules.iter().filter_map(|r| r["record"].as_str()).collect();
    assert!(rules.len() > recorded.len(), "no alerts");
    let mut failures = Vec::new();
    for rule in &rules {
        let name = rule["record"].as_str().or(rule["alert"].as_str()).unwrap();
        let text = rule["expr"].as_str().expect("expr");
        let expr = parse(name, text);
        let (mut selectors, mut groupings) = (Vec::new(), Vec::new());
        selectors_and_groupings(&expr, &mut selectors, &mut groupings);
        for selector in selectors {
            if selector
                .name
                .as_deref()
                .is_some_and(|n| recorded.contains(n))
            {
                continue;
            }
            if !has_matcher(selector, "job", &MatchOp::Equal, "elsewhere")
                || selector
                    .matchers
                    .matchers
                    .iter()
                    .any(|m| m.value == default_job)
            {
                failures.push(format!(
                    "{name}: {selector} does not carry the configured selector"
                ));
            }
        }
        for labels in groupings {
            if !labels.iter().any(|l| l == "region") {
                failures.push(format!(
                    "{name}: by ({}) drops the region",
                    labels.join(", ")
                ));
            }
        }
    }
    // The dashboards' queries and variables carry it too.
    let dashboards = evaluate_mixin(
        "(mixin { _config+:: { selector: 'job=\"elsewhere\"', regionLabel: 'region' } })\
         .grafanaDashboards",
    );
    for (file, dashboard) in dashboards.as_object().expect("dashboards by file") {
        let variables = template_variables(dashboard);
        let defined: BTreeSet<String> = variables
            .iter()
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        let queries = panels(dashboard)
            .into_iter()
            .flat_map(|p| p["targets"].as_array().into_iter().flatten())
            .filter_map(|t| t["expr"].as_str())
            .map(str::to_string)
            .chain(variables.iter().filter_map(|v| {
                let query = variable_query(v)?.strip_prefix("label_values(")?;
                Some(query.rsplit_once(',')?.0.to_string())
            }));
        for query in queries {
            let text = substitute_grafana_variables(&query, &defined).unwrap();
            let expr = parse(file, &text);
            let (mut selectors, mut groupings) = (Vec::new(), Vec::new());
            selectors_and_groupings(&expr, &mut selectors, &mut groupings);
            for selector in selectors {
                if !has_matcher(selector, "job", &MatchOp::Equal, "elsewhere") {
                    failures.push(format!("{file}: {selector} does not carry the selector"));
                }
            }
        }
    }
    let services = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "cinder-exporter.services")
        .expect("the services group");
    for alert in services["rules"].as_array().unwrap() {
        for key in ["summary", "description"] {
            let text = alert["annotations"][key].as_str().unwrap_or("");
            if !text.contains("$labels.region") || !text.contains("count by (region)") {
                failures.push(format!(
                    "{}: its {key} does not name the region",
                    alert["alert"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The scrape configuration mixin/README.md shows is one Prometheus accepts, and the
/// shipped rules' selector (a plain alternation of job names) selects every job of it.
#[test]
fn the_scrape_configuration_the_rules_expect_is_valid_and_selected() {
    let readme = read("mixin/README.md");
    let block = readme
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("mixin/README.md: a ```yaml block with the scrape configuration");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, block).expect("write prometheus.yml");
    assert_tool_succeeds(
        "promtool",
        &["check", "config", config.to_str().expect("UTF-8 path")],
    );

    let selector = evaluate_mixin("mixin._config.selector");
    let jobs: BTreeSet<&str> = selector
        .as_str()
        .and_then(|s| s.strip_prefix("job=~\""))
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or_else(|| panic!("selector {selector}: not job=~\"a|b|c\""))
        .split('|')
        .collect();
    let scrape: Yaml = serde_yaml::from_str(block).expect("YAML");
    let configured: BTreeSet<&str> = scrape["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .map(|job| job["job_name"].as_str().expect("job_name"))
        .collect();
    assert_eq!(
        configured, jobs,
        "mixin/README.md's jobs and the rules' selector {selector}"
    );
}

#[test]
fn the_jsonnet_is_as_jsonnetfmt_formats_it() {
    let mut files = Vec::new();
    let mut dirs = vec![repository_path(MIXIN)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "libsonnet" || e == "jsonnet")
            {
                files.push(relative(&path));
            }
        }
    }
    files.sort();
    assert!(
        files.iter().any(|f| f == "mixin/mixin.libsonnet"),
        "no mixin/mixin.libsonnet: {files:?}"
    );
    // `jsonnetfmt --test` names no file: one call each.
    let unformatted: Vec<&String> = files
        .iter()
        .filter(|file| !run_tool("jsonnetfmt", &["--test", file]).status.success())
        .collect();
    assert!(
        unformatted.is_empty(),
        "not as jsonnetfmt formats them (run `jsonnetfmt -i` on them): {unformatted:?}"
    );
}

#[test]
fn promtool_accepts_the_rules() {
    assert_tool_succeeds("promtool", &["check", "rules", RULES]);
}

#[test]
fn promtool_unit_tests_pass() {
    let mut failures = Vec::new();
    for file in rule_test_files() {
        let name = relative(&file);
        let output = run_tool("promtool", &["test", "rules", &name]);
        if !output.status.success() {
            failures.push(format!(
                "`promtool test rules {name}` failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn amtool_accepts_the_alertmanager_example_and_routes_by_severity() {
    assert_tool_succeeds("amtool", &["check-config", ALERTMANAGER]);
    let config = format!("--config.file={ALERTMANAGER}");
    for (severity, receiver) in [
        ("critical", "cinder-pager"),
        ("warning", "cinder-ticket"),
        ("info", "cinder-low-priority"),
    ] {
        let label = format!("severity={severity}");
        let routed = assert_tool_succeeds(
            "amtool",
            &[
                "config",
                "routes",
                "test",
                &config,
                "alertname=CinderServiceDown",
                &label,
            ],
        );
        assert_eq!(routed.trim(), receiver, "{severity} alerts");
    }
}

/// The labels of one alert of `region` (a `/probe` target), as the rules label it.
fn region_alert(alertname: &str, severity: &str, region: &str) -> Json {
    serde_json::json!({
        "alertname": alertname, "severity": severity, "job": "cinder-probe",
        "instance": region, "host": "stor1@ceph", "zone": "nova", "binary": "cinder-volume",
    })
}

/// The same outage in two regions (same host name, zone and binary): amtool routes both
/// to the same receiver, the route they take groups by the region, and the real
/// Alertmanager keeps them in two groups, one notification each.
#[test]
fn amtool_routes_two_regions_alike_and_the_alertmanager_never_groups_them() {
    let config = format!("--config.file={ALERTMANAGER}");
    for region in ["region-one", "region-two"] {
        for (alertname, severity, receiver) in [
            ("CinderServiceDown", "critical", "cinder-pager"),
            ("CinderServiceHeartbeatsMissed", "warning", "cinder-ticket"),
        ] {
            let labels = region_alert(alertname, severity, region);
            let mut args = vec!["config".to_string(), "routes".into(), "test".into()];
            args.push(config.clone());
            args.push(format!("--verify.receivers={receiver}"));
            for (k, v) in labels.as_object().unwrap() {
                args.push(format!("{k}={}", v.as_str().unwrap()));
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let routed = assert_tool_succeeds("amtool", &args);
            assert_eq!(routed.trim(), receiver, "{alertname} in {region}");
        }
    }

    // Every route groups by the region: the top one, and any child that regroups.
    let file: Yaml = serde_yaml::from_str(&read(ALERTMANAGER)).expect("Alertmanager YAML");
    let groups_by_region = |route: &Yaml| {
        route["group_by"]
            .as_sequence()
            .is_none_or(|labels| labels.iter().any(|l| l == "instance"))
    };
    assert!(
        file["route"]["group_by"].is_sequence() && groups_by_region(&file["route"]),
        "{ALERTMANAGER}: the route's group_by lacks instance"
    );
    for child in file["route"]["routes"].as_sequence().into_iter().flatten() {
        assert!(
            groups_by_region(child),
            "{ALERTMANAGER}: a route regroups without instance"
        );
    }

    let alertmanager = Alertmanager::start(&repository_path(ALERTMANAGER));
    let posted: Vec<Json> = ["region-one", "region-two"]
        .iter()
        .map(|r| serde_json::json!({"labels": region_alert("CinderServiceDown", "critical", r)}))
        .collect();
    alertmanager.post_alerts(&Json::Array(posted));
    let groups = common::host::poll_until(Duration::from_secs(10), || {
        let mut response = common::http::agent()
            .get(&format!(
                "http://{}/api/v2/alerts/groups",
                alertmanager.address
            ))
            .call()
            .map_err(|e| format!("GET /api/v2/alerts/groups: {e}"))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let groups: Vec<Json> = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        let alerts: usize = groups
            .iter()
            .map(|g| g["alerts"].as_array().map_or(0, Vec::len))
            .sum();
        if alerts == 2 {
            Ok(groups)
        } else {
            Err(format!(
                "the Alertmanager holds {alerts} of the 2 alerts: {body}"
            ))
        }
    });
    let regions: Vec<(&str, usize)> = groups
        .iter()
        .map(|g| {
            (
                g["labels"]["instance"].as_str().unwrap_or("(none)"),
                g["alerts"].as_array().map_or(0, Vec::len),
            )
        })
        .collect();
    assert_eq!(
        regions,
        [("region-one", 1), ("region-two", 1)],
        "one group per region, each with its own alert"
    );
}

// ---------------------------------------------------------------------------------
// The rules

/// One rule of the rule file.
struct Rule {
    group: String,
    /// The `record` or `alert` name.
    name: String,
    alert: bool,
    expr: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

fn string_map(value: Option<&Yaml>) -> BTreeMap<String, String> {
    value
        .and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let k = k.as_str().expect("string key").to_string();
                    let v = v
                        .as_str()
                        .unwrap_or_else(|| panic!("{k}: not a string"))
                        .to_string();
                    (k, v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rules() -> Vec<Rule> {
    let file: Yaml = serde_yaml::from_str(&read(RULES)).expect("rule file is YAML");
    let mut rules = Vec::new();
    for group in file["groups"].as_sequence().expect("groups") {
        let group_name = group["name"].as_str().expect("group name");
        for rule in group["rules"].as_sequence().expect("rules") {
            let (name, alert) = match (rule["record"].as_str(), rule["alert"].as_str()) {
                (Some(record), None) => (record, false),
                (None, Some(alert)) => (alert, true),
                _ => panic!("{group_name}: a rule needs one of record or alert: {rule:?}"),
            };
            rules.push(Rule {
                group: group_name.to_string(),
                name: name.to_string(),
                alert,
                expr: rule["expr"].as_str().expect("expr").to_string(),
                labels: string_map(rule.get("labels")),
                annotations: string_map(rule.get("annotations")),
            });
        }
    }
    rules
}

fn alert_names() -> BTreeSet<String> {
    rules()
        .into_iter()
        .filter(|r| r.alert)
        .map(|r| r.name)
        .collect()
}

// ---------------------------------------------------------------------------------
// The dashboard

fn dashboard() -> Json {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is valid JSON")
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Json) -> Vec<&Json> {
    fn walk<'a>(list: &'a Json, out: &mut Vec<&'a Json>) {
        for panel in list.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

fn template_variables(dashboard: &Json) -> Vec<&Json> {
    dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .collect()
}

/// The text of a query variable's query (a plain string, or Grafana's newer object).
fn variable_query(variable: &Json) -> Option<&str> {
    variable["query"]
        .as_str()
        .or_else(|| variable["query"]["query"].as_str())
}

/// Replaces Grafana's variables with what they could stand for, so that the result
/// parses as PromQL: intervals become `5m`, the dashboard's own variables the regex
/// `.*` (they are all used with `=~`). An unknown variable is an error.
fn substitute_grafana_variables(expr: &str, defined: &BTreeSet<String>) -> Result<String, String> {
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {expr}"))?;
            let inside = &braced[..end];
            (inside.split(':').next().unwrap_or(inside), end + 2)
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        let value = match name {
            "__rate_interval" | "__interval" | "__range" => "5m",
            "__range_s" => "300",
            "__interval_ms" | "__range_ms" => "300000",
            _ if defined.contains(name) => ".*",
            _ => return Err(format!("unknown variable ${name}")),
        };
        out.push_str(value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every PromQL expression of the rules and the dashboard: `(where, expression)`,
/// Grafana variables substituted. The dashboard's `label_values(selector, label)`
/// variable queries contribute their selector.
fn all_expressions() -> Vec<(String, String)> {
    let mut expressions: Vec<(String, String)> = rules()
        .into_iter()
        .map(|r| (format!("{RULES}: rule {}", r.name), r.expr))
        .collect();
    let dashboard = dashboard();
    let variables = template_variables(&dashboard);
    let defined: BTreeSet<String> = variables
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    let substitute = |place: &str, expr: &str| {
        substitute_grafana_variables(expr, &defined)
            .unwrap_or_else(|e| panic!("{DASHBOARD}: {place}: {e}"))
    };
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let place = format!(
                "panel {title:?} target {}",
                target["refId"].as_str().unwrap_or("?")
            );
            let expr = target["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{DASHBOARD}: {place} has no expr"));
            expressions.push((format!("{DASHBOARD}: {place}"), substitute(&place, expr)));
        }
    }
    for variable in variables {
        if variable["type"] != "query" {
            continue;
        }
        let place = format!("variable {}", variable["name"]);
        let query =
            variable_query(variable).unwrap_or_else(|| panic!("{DASHBOARD}: {place} has no query"));
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .and_then(|q| q.rsplit_once(','))
            .map(|(selector, _label)| selector)
            .unwrap_or_else(|| panic!("{DASHBOARD}: {place}: not label_values(selector, label)"));
        expressions.push((
            format!("{DASHBOARD}: {place}"),
            substitute(&place, selector),
        ));
    }
    expressions
}

fn parse(place: &str, expr: &str) -> Expr {
    parser::parse(expr).unwrap_or_else(|e| panic!("{place}: does not parse: {e}\n{expr}"))
}

#[test]
fn every_expression_parses() {
    let mut failures = Vec::new();
    for (place, expr) in all_expressions() {
        if let Err(e) = parser::parse(&expr) {
            failures.push(format!("{place}: {e}\n  {expr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Two regions can be told apart everywhere: every query is filtered by the region
/// variable, every aggregation but the fleet totals keeps the region (so thresholds
/// and "database read" are per region), every legend names it, and the tables show it
/// as their first column.
#[test]
fn the_dashboard_tells_regions_apart() {
    let dashboard = dashboard();
    let defined: BTreeSet<String> = template_variables(&dashboard)
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_string))
        .collect();
    let mut failures = Vec::new();
    let mut totals = BTreeSet::new();
    let filters_by_region = |selector: &VectorSelector| {
        selector
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == REGION && matches!(m.op, MatchOp::Re(_)) && m.value == ".*")
    };
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        for target in panel["targets"].as_array().into_iter().flatten() {
            let place = format!("panel {title:?} target {}", target["refId"]);
            let raw = target["expr"].as_str().expect("expr");
            let expr = parse(
                &place,
                &substitute_grafana_variables(raw, &defined).unwrap(),
            );
            let (mut selectors, mut groupings) = (Vec::new(), Vec::new());
            selectors_and_groupings(&expr, &mut selectors, &mut groupings);
            for selector in selectors {
                if !filters_by_region(selector) {
                    failures.push(format!("{place}: {selector} ignores the region variable"));
                }
            }
            if FLEET_TOTALS.contains(&title) {
                totals.insert(title);
            } else {
                for labels in groupings {
                    if !labels.iter().any(|l| l == REGION) {
                        failures.push(format!(
                            "{place}: by ({}) merges regions",
                            labels.join(", ")
                        ));
                    }
                }
            }
            let legend = target["legendFormat"].as_str().unwrap_or("__auto");
            if legend != "__auto" && !legend.contains(&format!("{{{{{REGION}}}}}")) {
                failures.push(format!(
                    "{place}: legend {legend:?} does not name the region"
                ));
            }
        }
        if panel["type"] == "table" {
            let organize = panel["transformations"]
                .as_array()
                .and_then(|t| t.iter().find(|t| t["id"] == "organize"))
                .unwrap_or_else(|| panic!("table {title:?}: no organize transformation"));
            let options = &organize["options"];
            if options["excludeByName"][REGION] == true || options["indexByName"][REGION] != 0 {
                failures.push(format!(
                    "table {title:?}: the region is not its first column"
                ));
            }
        }
    }
    assert_eq!(
        totals,
        FLEET_TOTALS.into_iter().collect(),
        "the panels that total the regions"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_dashboard_is_importable_as_is() {
    let dashboard = dashboard();
    assert!(
        dashboard.get("__inputs").is_none(),
        "the dashboard must not need __inputs: the data source is the `datasource` variable"
    );
    assert_eq!(dashboard["uid"], DASHBOARD_UID, "stable uid");
    assert!(dashboard["title"].is_string(), "title");
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {}",
        dashboard["schemaVersion"]
    );

    let variables = template_variables(&dashboard);
    let variable = |name: &str| {
        *variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    let datasource_variable = variable("datasource");
    assert_eq!(datasource_variable["type"], "datasource");
    assert_eq!(datasource_variable["query"], "prometheus");
    let datasource = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    for name in DASHBOARD_VARIABLES {
        let v = variable(name);
        assert_eq!(v["type"], "query", "variable {name}");
        assert_eq!(v["datasource"], datasource, "variable {name}'s data source");
        assert_eq!(v["multi"], true, "variable {name} multi-value");
        assert_eq!(v["includeAll"], true, "variable {name} includes All");
        let query = variable_query(v).unwrap_or_else(|| panic!("variable {name}: no query"));
        assert!(
            query.starts_with("label_values(") && query.ends_with(&format!(", {name})")),
            "variable {name}: {query}"
        );
    }

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title:?}: no id"));
        assert!(ids.insert(id), "panel {title:?}: id {id} used twice");
        assert!(panel["gridPos"].is_object(), "panel {title:?}: gridPos");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"], datasource,
            "panel {title:?}: data source"
        );
        let targets = panel["targets"].as_array().map_or(&[][..], Vec::as_slice);
        assert!(!targets.is_empty(), "panel {title:?}: no targets");
        for target in targets {
            assert_eq!(
                target["datasource"], datasource,
                "panel {title:?} target {}: data source",
                target["refId"]
            );
        }
    }
    let text = read(DASHBOARD);
    assert!(
        !text.contains("DS_PROMETHEUS"),
        "the dashboard refers to an __inputs data source"
    );
}

// ---------------------------------------------------------------------------------
// Metric names

/// The metric names an expression selects (selector names and `__name__` matchers).
fn metric_names(expr: &Expr, out: &mut BTreeSet<String>) {
    match expr {
        Expr::Aggregate(a) => {
            metric_names(&a.expr, out);
            if let Some(param) = &a.param {
                metric_names(param, out);
            }
        }
        Expr::Unary(u) => metric_names(&u.expr, out),
        Expr::Binary(b) => {
            metric_names(&b.lhs, out);
            metric_names(&b.rhs, out);
        }
        Expr::Paren(p) => metric_names(&p.expr, out),
        Expr::Subquery(s) => metric_names(&s.expr, out),
        Expr::VectorSelector(v) => selector_names(v, out),
        Expr::MatrixSelector(m) => selector_names(&m.vs, out),
        Expr::Call(c) => {
            for arg in &c.args.args {
                metric_names(arg, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

fn selector_names(selector: &VectorSelector, out: &mut BTreeSet<String>) {
    if let Some(name) = &selector.name {
        out.insert(name.clone());
    }
    let matchers = &selector.matchers;
    for matcher in matchers
        .matchers
        .iter()
        .chain(matchers.or_matchers.iter().flatten())
    {
        if matcher.name == "__name__" {
            match matcher.op {
                MatchOp::Equal => {
                    out.insert(matcher.value.clone());
                }
                _ => panic!(
                    "{selector}: a __name__ matched by pattern cannot be checked against the \
                     exporter's metrics; name the metrics"
                ),
            }
        }
    }
}

#[test]
fn every_metric_referenced_is_exported_or_recorded() {
    let mut referenced: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (place, expr) in all_expressions() {
        let mut names = BTreeSet::new();
        metric_names(&parse(&place, &expr), &mut names);
        for name in names {
            referenced.entry(name).or_default().insert(place.clone());
        }
    }
    let recorded: BTreeSet<String> = rules()
        .into_iter()
        .filter(|r| !r.alert)
        .map(|r| r.name)
        .collect();

    // The exporter's real output, for a database holding one service that has
    // heartbeated under the exporter's eyes, so that the families that need observed
    // heartbeats (clock offset, interval) carry samples too.
    let db = common::Database::create(common::Schema::Cinder29);
    db.exec(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, \
         report_count, disabled, availability_zone, cluster_name) VALUES (UTC_TIMESTAMP(), \
         UTC_TIMESTAMP(), 0, 'h1@lvm', 'cinder-volume', 'cinder-volume', 1, 0, 'nova', \
         'c1@lvm')",
    );
    let exporter = common::Exporter::start(common::ExporterOptions::for_database(&db.url()));
    exporter.wait_for("the service", Duration::from_secs(20), |s| {
        !s.find("cinder_service_up", &[("host", "h1@lvm")])
            .is_empty()
    });
    let scrape = common::host::poll_until(Duration::from_secs(20), || {
        // A heartbeat, as cinder's report_state writes it.
        db.exec(
            "UPDATE services SET report_count = report_count + 1, updated_at = UTC_TIMESTAMP() \
             WHERE host = 'h1@lvm'",
        );
        std::thread::sleep(Duration::from_millis(600));
        let scrape = exporter.scrape();
        let observed = [
            "cinder_service_clock_offset_seconds",
            "cinder_service_heartbeat_interval_seconds",
        ]
        .iter()
        .all(|m| !scrape.find(m, &[("host", "h1@lvm")]).is_empty());
        if observed {
            return Ok(scrape);
        }
        Err(format!(
            "no clock offset or heartbeat interval after heartbeats; last scrape:\n{}\n\
             exporter log:\n{}",
            scrape.text,
            exporter.log()
        ))
    });
    let sampled = scrape.metric_names();
    let exported: BTreeSet<String> = sampled
        .iter()
        .cloned()
        .chain(scrape.families.iter().cloned())
        .collect();

    let mut unknown = Vec::new();
    for (name, places) in &referenced {
        let known = recorded.contains(name)
            || PROMETHEUS_BUILTINS.contains(&name.as_str())
            || exported.contains(name);
        if !known {
            unknown.push(format!(
                "{name}, used by:\n    {}",
                places.iter().cloned().collect::<Vec<_>>().join("\n    ")
            ));
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics neither exported, nor recorded by {RULES}, nor made by Prometheus:\n  {}\n\
         exporter output:\n{}",
        unknown.join("\n  "),
        scrape.text
    );
    // Every recording rule is used somewhere (else it costs series for nothing).
    for name in &recorded {
        assert!(
            referenced.contains_key(name),
            "recording rule {name} is used by no alert or panel"
        );
    }
    // The exporter's families the rules use carry samples, not only HELP.
    for name in referenced.keys().filter(|n| n.starts_with("cinder_")) {
        assert!(
            sampled.contains(name),
            "{name} is announced but has no sample:\n{}",
            scrape.text
        );
    }
}

// ---------------------------------------------------------------------------------
// Alerts: labels, annotations, runbook, unit tests

#[test]
fn every_alert_is_labelled_annotated_and_in_the_runbook() {
    let runbook = read(RUNBOOK);
    let headings: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();
    let rules = rules();
    let mut documented = BTreeSet::new();
    for rule in rules.iter().filter(|r| r.alert) {
        let name = &rule.name;
        let where_ = format!("{RULES}: {} / {name}", rule.group);
        let severity = rule.labels.get("severity").map(String::as_str);
        assert!(
            severity.is_some_and(|s| SEVERITIES.contains(&s)),
            "{where_}: severity {severity:?}, want one of {SEVERITIES:?}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                rule.annotations
                    .get(key)
                    .is_some_and(|v| !v.trim().is_empty()),
                "{where_}: no {key} annotation"
            );
        }
        assert_eq!(
            rule.annotations["runbook_url"],
            format!("{RUNBOOK_URL}{}", name.to_lowercase()),
            "{where_}: runbook_url"
        );
        assert!(
            headings.contains(name.as_str()),
            "{where_}: {RUNBOOK} has no section `## {name}` (anchor #{})",
            name.to_lowercase()
        );
        documented.insert(name.as_str());
    }
    for heading in &headings {
        assert!(
            documented.contains(heading) || *heading == "Before you start",
            "{RUNBOOK}: section `## {heading}` is for no alert"
        );
    }
    for name in documented {
        assert!(
            !rules.iter().any(|r| !r.alert && r.name == name),
            "{name} is both a recording rule and an alert"
        );
    }
}

/// For each alert: the labels its firing expectations in the promtool tests carry,
/// whether some test expects it firing, and whether some test expects it quiet.
#[derive(Default)]
struct AlertCoverage {
    labels: BTreeSet<String>,
    firing: bool,
    quiet: bool,
}

fn alert_coverage() -> BTreeMap<String, AlertCoverage> {
    let mut coverage: BTreeMap<String, AlertCoverage> = BTreeMap::new();
    for file in rule_test_files() {
        let text = std::fs::read_to_string(&file).expect("read test file");
        let tests: Yaml =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", relative(&file)));
        for group in tests["tests"].as_sequence().into_iter().flatten() {
            for case in group["alert_rule_test"].as_sequence().into_iter().flatten() {
                let alert = case["alertname"].as_str().expect("alertname").to_string();
                let entry = coverage.entry(alert).or_default();
                let expected = case["exp_alerts"]
                    .as_sequence()
                    .map_or(&[][..], Vec::as_slice);
                if expected.is_empty() {
                    entry.quiet = true;
                }
                for alert in expected {
                    entry.firing = true;
                    entry
                        .labels
                        .extend(string_map(alert.get("exp_labels")).into_keys());
                }
            }
        }
    }
    coverage
}

#[test]
fn every_alert_has_unit_tests_firing_and_quiet() {
    let coverage = alert_coverage();
    for name in alert_names() {
        let covered = coverage.get(&name);
        assert!(
            covered.is_some_and(|c| c.firing),
            "{RULE_TESTS}: no test expects {name} to fire"
        );
        assert!(
            covered.is_some_and(|c| c.quiet),
            "{RULE_TESTS}: no test expects {name} to stay quiet"
        );
        assert!(
            covered.is_some_and(|c| c.labels.contains("severity")),
            "{RULE_TESTS}: the tests of {name} do not check its severity"
        );
    }
    for name in coverage.keys() {
        assert!(
            alert_names().contains(name),
            "{RULE_TESTS}: tests an alert {name} the rules do not define"
        );
    }
}

// ---------------------------------------------------------------------------------
// Inhibitions

/// Whether one alternative of an `alertname=~` matcher matches `name`: the
/// alternatives used are plain names and `Prefix.+`.
fn alternative_matches(alternative: &str, name: &str) -> bool {
    match alternative.strip_suffix(".+") {
        Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
        None => name == alternative,
    }
}

/// The alerts of the rule file that a matcher list selects by `alertname`; every
/// alternative of a regex must name at least one of them.
fn matched_alerts(matchers: &Yaml, alerts: &BTreeSet<String>) -> BTreeSet<String> {
    let mut selected = alerts.clone();
    for matcher in matchers.as_sequence().expect("matchers") {
        let matcher = matcher.as_str().expect("matcher string");
        let Some(rest) = matcher.strip_prefix("alertname") else {
            continue;
        };
        let alternatives: Vec<&str> = if let Some(regex) = rest.strip_prefix("=~") {
            regex.trim_matches('"').split('|').collect()
        } else if let Some(value) = rest.strip_prefix('=') {
            vec![value.trim_matches('"')]
        } else {
            panic!("{ALERTMANAGER}: unsupported alertname matcher {matcher}")
        };
        for alternative in &alternatives {
            assert!(
                alerts.iter().any(|a| alternative_matches(alternative, a)),
                "{ALERTMANAGER}: {alternative:?} in {matcher} names no alert of {RULES}"
            );
        }
        selected.retain(|name| alternatives.iter().any(|a| alternative_matches(a, name)));
    }
    selected
}

#[test]
fn inhibitions_name_real_alerts_and_labels_they_carry() {
    let config: Yaml = serde_yaml::from_str(&read(ALERTMANAGER)).expect("Alertmanager YAML");
    let alerts = alert_names();
    let coverage = alert_coverage();
    let rules = config["inhibit_rules"]
        .as_sequence()
        .expect("inhibit_rules");
    assert!(!rules.is_empty(), "{ALERTMANAGER}: no inhibit_rules");
    for (i, rule) in rules.iter().enumerate() {
        let sources = matched_alerts(&rule["source_matchers"], &alerts);
        let targets = matched_alerts(&rule["target_matchers"], &alerts);
        assert!(!sources.is_empty(), "inhibit rule {i}: no source alert");
        assert!(!targets.is_empty(), "inhibit rule {i}: no target alert");
        let equal: Vec<&str> = rule["equal"]
            .as_sequence()
            .expect("equal")
            .iter()
            .map(|l| l.as_str().expect("label"))
            .collect();
        assert!(!equal.is_empty(), "inhibit rule {i}: no `equal`");
        // Alertmanager takes a label missing on both sides as equal: a label the
        // alerts lack would let any source silence every target.
        for alert in sources.iter().chain(&targets) {
            let labels = &coverage
                .get(alert)
                .unwrap_or_else(|| panic!("{alert} has no unit test"))
                .labels;
            for label in &equal {
                assert!(
                    labels.contains(*label),
                    "inhibit rule {i}: {alert} does not carry `{label}` in its unit tests"
                );
            }
        }
    }
}

#[test]
fn the_alertmanager_example_keeps_one_incident_one_page() {
    let service =
        |alertname: &str, severity: &str, instance: &str, host: &str, zone: &str, binary: &str| {
            serde_json::json!({
                "alertname": alertname, "severity": severity, "job": "cinder",
                "instance": instance, "host": host, "zone": zone, "binary": binary,
            })
        };
    let exporter = |alertname: &str, severity: &str, instance: &str| {
        serde_json::json!({
            "alertname": alertname, "severity": severity, "job": "cinder", "instance": instance,
        })
    };
    let mut down = service(
        "CinderServiceDown",
        "critical",
        "a:9847",
        "h2@lvm",
        "nova",
        "cinder-volume",
    );
    down["cause"] = "clock_skew".into();
    let binary_down = serde_json::json!({
        "alertname": "CinderBinaryDownInZone", "severity": "critical", "job": "cinder",
        "instance": "a:9847", "zone": "az1", "binary": "cinder-scheduler",
    });
    // (labels, whether the example configuration should suppress the alert)
    let cases: Vec<(Json, bool)> = vec![
        // The database unreachable from exporter db:9847 silences what it fed...
        (
            exporter("CinderExporterDatabaseUnreachable", "critical", "db:9847"),
            false,
        ),
        (
            service(
                "CinderServiceHeartbeatStopped",
                "critical",
                "db:9847",
                "h1@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
        (
            exporter("CinderExporterClockSkew", "warning", "db:9847"),
            true,
        ),
        // ...and nothing of another exporter.
        (
            service(
                "CinderServiceHeartbeatStopped",
                "critical",
                "b:9847",
                "h1@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        // A proven clock skew silences the same service's plain down and early warning,
        // not another service's down, nor the scheduler-disagreement warning.
        (
            service(
                "CinderServiceClockSkew",
                "critical",
                "a:9847",
                "h2@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        (down, true),
        (
            service(
                "CinderServiceClockSkewNearBudget",
                "warning",
                "a:9847",
                "h2@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
        (
            service(
                "CinderServiceDownButScheduled",
                "warning",
                "a:9847",
                "h2@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        (
            service(
                "CinderServiceDown",
                "critical",
                "a:9847",
                "h3@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        // The early warning gives way once the service's down pages; not elsewhere.
        (
            service(
                "CinderServiceHeartbeatsMissed",
                "warning",
                "a:9847",
                "h3@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
        (
            service(
                "CinderServiceHeartbeatsMissed",
                "warning",
                "a:9847",
                "h5@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        // Two regions, the same zone and binary: region-one's binary down in zone nova
        // silences region-one's member, not region-two's.
        (
            serde_json::json!({
                "alertname": "CinderBinaryDownInZone", "severity": "critical",
                "job": "cinder-probe", "instance": "region-one", "zone": "nova",
                "binary": "cinder-volume",
            }),
            false,
        ),
        (
            region_alert("CinderServiceHeartbeatStopped", "critical", "region-one"),
            true,
        ),
        (
            region_alert("CinderServiceHeartbeatStopped", "critical", "region-two"),
            false,
        ),
        // Every scheduler of az1 down: one page for the zone, not one per member.
        (binary_down, false),
        (
            service(
                "CinderServiceHeartbeatStopped",
                "critical",
                "a:9847",
                "s1",
                "az1",
                "cinder-scheduler",
            ),
            true,
        ),
        (
            service(
                "CinderServiceHeartbeatLate",
                "warning",
                "a:9847",
                "s1",
                "az1",
                "cinder-scheduler",
            ),
            false,
        ),
        (
            service(
                "CinderServiceHeartbeatStopped",
                "critical",
                "a:9847",
                "s2",
                "az2",
                "cinder-scheduler",
            ),
            false,
        ),
        // An interval at or above service_down_time explains down, flapping and late.
        (
            service(
                "CinderServiceHeartbeatIntervalTooLong",
                "critical",
                "a:9847",
                "h4@lvm",
                "nova",
                "cinder-volume",
            ),
            false,
        ),
        (
            service(
                "CinderServiceDown",
                "critical",
                "a:9847",
                "h4@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
        (
            service(
                "CinderServiceFlapping",
                "warning",
                "a:9847",
                "h4@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
        (
            service(
                "CinderServiceHeartbeatLate",
                "warning",
                "a:9847",
                "h4@lvm",
                "nova",
                "cinder-volume",
            ),
            true,
        ),
    ];
    let alerts = alert_names();
    for (labels, _) in &cases {
        let name = labels["alertname"].as_str().unwrap();
        assert!(
            alerts.contains(name),
            "the test posts {name}, which {RULES} does not define"
        );
    }

    let alertmanager = Alertmanager::start(&repository_path(ALERTMANAGER));
    let posted: Vec<Json> = cases
        .iter()
        .map(|(labels, _)| serde_json::json!({"labels": labels}))
        .collect();
    alertmanager.post_alerts(&Json::Array(posted));

    // The inhibitor learns of the source alerts asynchronously: poll briefly.
    common::host::poll_until(Duration::from_secs(10), || {
        let got = alertmanager.alerts();
        let mut wrong = Vec::new();
        for (labels, suppressed) in &cases {
            let state = got.iter().find(|a| &a["labels"] == labels).map(|a| {
                a["status"]["inhibitedBy"]
                    .as_array()
                    .is_some_and(|i| !i.is_empty())
            });
            if state != Some(*suppressed) {
                wrong.push(format!("{labels}: inhibited {state:?}, want {suppressed}"));
            }
        }
        if wrong.is_empty() {
            return Ok(());
        }
        Err(format!(
            "{ALERTMANAGER}'s inhibitions:\n{}",
            wrong.join("\n")
        ))
    });
}
