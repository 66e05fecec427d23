//! Every metric family the exporter publishes, defined once: name, type, HELP and
//! labels. The renderer writes families only through these definitions, the label
//! sets are built from their label names, and a test holds the README's metric table
//! to this list both ways, so what `/metrics` says cannot drift from what is
//! documented.

/// The `# TYPE` of a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Gauge,
    Counter,
    Histogram,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Gauge => "gauge",
            MetricType::Counter => "counter",
            MetricType::Histogram => "histogram",
        }
    }
}

/// One metric family: everything the exposition says about it except its samples.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: MetricType,
    pub help: &'static str,
    /// Labels of its samples in output order, besides the identity labels
    /// ([`SERVICE_LABELS`]) that every `cinder_service_*` family but the skew budget
    /// carries first. The `cinder_cluster_*` families carry exactly these.
    pub labels: &'static [&'static str],
}

/// What identifies a service in every per-service series: cinder's `(host, binary)`,
/// and the availability zone operators group by.
pub const SERVICE_LABELS: [&str; 3] = ["host", "binary", "zone"];

/// What identifies a cluster: cinder's `clusters` row is unique on `(name, binary)`.
pub const CLUSTER_LABELS: [&str; 2] = ["cluster", "binary"];

/// The labels `cinder_service_info` adds to [`SERVICE_LABELS`].
pub const INFO_LABELS: [&str; 9] = [
    "cluster",
    "backend",
    "disabled_reason",
    "uuid",
    "rpc_version",
    "object_version",
    "replication_status",
    "frozen",
    "active_backend_id",
];

/// Label values come from free text any admin can set; longer values are cut (at a
/// character boundary) so that one row cannot bloat every scrape.
pub const MAX_LABEL_VALUE_BYTES: usize = 1024;

const NO_LABELS: &[&str] = &[];

macro_rules! family {
    ($const:ident, $name:literal, $kind:ident, $labels:expr, $help:literal) => {
        pub const $const: Family = Family {
            name: $name,
            kind: MetricType::$kind,
            help: $help,
            labels: $labels,
        };
    };
}

// The exporter itself.
family!(
    UP,
    "cinder_up",
    Gauge,
    NO_LABELS,
    "1 if the exporter's latest poll of the cinder services table succeeded, else 0."
);
family!(
    BUILD_INFO,
    "cinder_exporter_build_info",
    Gauge,
    &["version", "revision", "build_date", "rustc_version"],
    "Build of cinder_exporter; the value is always 1."
);
family!(POLL_DURATION, "cinder_exporter_poll_duration_seconds", Gauge, NO_LABELS,
    "Wall time of the latest poll of the services table: connect, query, decode, and update the diagnosis.");
family!(POLL_ERRORS, "cinder_exporter_poll_errors_total", Counter, NO_LABELS,
    "Polls of the services table that failed (database unreachable, timed out, or not a cinder schema).");
family!(
    LAST_SUCCESSFUL_POLL,
    "cinder_exporter_last_successful_poll_timestamp_seconds",
    Gauge,
    NO_LABELS,
    "Exporter wall-clock time of the latest successful poll, unix seconds."
);
family!(DATABASE_CLOCK_OFFSET, "cinder_exporter_database_clock_offset_seconds", Gauge, NO_LABELS,
    "Exporter clock minus database clock (UTC_TIMESTAMP), seconds; the database clock is the reference for every heartbeat age.");

// The thresholds in force.
family!(SERVICE_DOWN_TIME, "cinder_config_service_down_time_seconds", Gauge, NO_LABELS,
    "service_down_time the verdicts use: a service is down once its heartbeat is older than this (cinder.conf [DEFAULT] service_down_time).");
family!(
    SCHEDULER_SERVICE_DOWN_TIME,
    "cinder_config_scheduler_service_down_time_seconds",
    Gauge,
    NO_LABELS,
    "service_down_time the scheduler verdict uses: as configured, unless report_interval reaches it; then a cinder service process raises its own to int(2.5 * report_interval) at start, while cinder-api keeps the configured value."
);
family!(REPORT_INTERVAL, "cinder_config_report_interval_seconds", Gauge, NO_LABELS,
    "report_interval the services are expected to heartbeat at (cinder.conf [DEFAULT] report_interval).");
family!(SKEW_BUDGET, "cinder_service_skew_budget_seconds", Gauge, NO_LABELS,
    "Clock skew a service node may have and still show up steadily: service_down_time - report_interval.");

// Per service: cinder's verdicts and the raw facts of its row.
family!(SERVICE_UP, "cinder_service_up", Gauge, NO_LABELS,
    "1 if cinder-api (openstack volume service list) shows the service up: abs(now - (updated_at or created_at)) <= service_down_time, now being the database clock.");
family!(SCHEDULER_UP, "cinder_service_scheduler_up", Gauge, NO_LABELS,
    "1 if the scheduler (and cinder-manage service list) sees the service up: updated_at >= now - service_down_time; a clock running ahead stays up here.");
family!(
    ENABLED,
    "cinder_service_enabled",
    Gauge,
    NO_LABELS,
    "1 if the service is enabled (disabled = 0 or NULL), 0 if an operator disabled it."
);
family!(HEARTBEAT_AGE, "cinder_service_heartbeat_age_seconds", Gauge, NO_LABELS,
    "Database clock minus (updated_at or created_at), signed: negative when the service's clock runs ahead.");
family!(LAST_HEARTBEAT, "cinder_service_last_heartbeat_timestamp_seconds", Gauge, NO_LABELS,
    "updated_at (or created_at when NULL) as the service recorded it with its own clock, unix seconds.");
family!(
    REPORTS,
    "cinder_service_reports_total",
    Counter,
    NO_LABELS,
    "Heartbeats the service has recorded (the report_count column)."
);
family!(INFO, "cinder_service_info", Gauge,
    &INFO_LABELS,
    "Descriptive fields of the service row; the value is always 1. Empty labels are NULL or absent in this cinder schema.");

// Per service: the diagnosis.
family!(HEARTBEAT_INTERVAL, "cinder_service_heartbeat_interval_seconds", Gauge, NO_LABELS,
    "Observed mean time between heartbeats: change of updated_at over change of report_count across recent heartbeats (both written by the service, so immune to its clock offset).");
family!(CLOCK_OFFSET, "cinder_service_clock_offset_seconds", Gauge, NO_LABELS,
    "Estimated service clock minus database clock (positive: the service node runs ahead), bracketed from the polls between which report_count advanced.");
family!(CLOCK_OFFSET_UNCERTAINTY, "cinder_service_clock_offset_uncertainty_seconds", Gauge, NO_LABELS,
    "Half-width of the bound on cinder_service_clock_offset_seconds: the true offset lies within estimate +/- this.");
family!(DOWN_CAUSE, "cinder_service_down_cause", Gauge,
    &["cause"],
    "Why the service shows down in cinder-api, one-hot over cause: none (up), heartbeat_stopped, clock_skew, heartbeat_late, unknown (not enough observations yet).");

family!(HEARTBEAT_SILENCE, "cinder_service_heartbeat_silence_seconds", Gauge, NO_LABELS,
    "Seconds report_count has certainly not advanced, as of the latest poll and by the database clock: since the poll that saw its latest advance (or first saw the service). Immune to the service's clock.");

// Per cluster (services with a cluster_name): cinder's Cluster.is_up.
family!(CLUSTER_UP, "cinder_cluster_up", Gauge, &CLUSTER_LABELS,
    "1 if cinder sees the cluster up: the latest updated_at of its services >= now - service_down_time (the scheduler's rule), now being the database clock.");
family!(
    CLUSTER_SERVICES,
    "cinder_cluster_services",
    Gauge,
    &CLUSTER_LABELS,
    "Services whose cluster_name is this cluster, enabled or not."
);
family!(
    CLUSTER_SERVICES_UP,
    "cinder_cluster_services_up",
    Gauge,
    &CLUSTER_LABELS,
    "Services of the cluster cinder does not count down (num_hosts - num_down_hosts): updated_at >= now - service_down_time, or NULL."
);

// Drop-in series of openstack-exporter (opt-in, `compatibility: {openstack_exporter:
// true}`): names and labels are theirs, so existing alerts and dashboards keep working.
// The labels are the whole set, in openstack-exporter's order (no identity labels).
/// The labels of `openstack_cinder_agent_state`, as openstack-exporter names them.
pub const AGENT_STATE_LABELS: [&str; 6] = [
    "uuid",
    "hostname",
    "service",
    "adminState",
    "zone",
    "disabledReason",
];
family!(COMPAT_AGENT_STATE, "openstack_cinder_agent_state", Gauge, &AGENT_STATE_LABELS,
    "openstack-exporter compatible: 1 if cinder-api shows the service up, as cinder_service_up; uuid is the row's services.uuid (empty before Queens).");
family!(
    COMPAT_UP,
    "openstack_cinder_up",
    Gauge,
    NO_LABELS,
    "openstack-exporter compatible: cinder_up, 1 if the latest poll of the services table succeeded."
);

/// The compatibility families, in the order they are written.
#[cfg(test)]
pub const COMPAT: [&Family; 2] = [&COMPAT_UP, &COMPAT_AGENT_STATE];

// The exporter process, named as every Prometheus client library names them, so that
// the dashboards and alerts written for any exporter apply (`/metrics` only).
family!(
    PROCESS_CPU,
    "process_cpu_seconds_total",
    Counter,
    NO_LABELS,
    "Total user and system CPU time spent in seconds."
);
family!(
    PROCESS_RESIDENT,
    "process_resident_memory_bytes",
    Gauge,
    NO_LABELS,
    "Resident memory size in bytes."
);
family!(
    PROCESS_VIRTUAL,
    "process_virtual_memory_bytes",
    Gauge,
    NO_LABELS,
    "Virtual memory size in bytes."
);
family!(
    PROCESS_START,
    "process_start_time_seconds",
    Gauge,
    NO_LABELS,
    "Start time of the process since unix epoch in seconds."
);
family!(
    PROCESS_OPEN_FDS,
    "process_open_fds",
    Gauge,
    NO_LABELS,
    "Number of open file descriptors."
);
family!(
    PROCESS_MAX_FDS,
    "process_max_fds",
    Gauge,
    NO_LABELS,
    "Maximum number of open file descriptors."
);

/// The process families, in the order they are written.
#[cfg(test)]
pub const PROCESS: [&Family; 6] = [
    &PROCESS_CPU,
    &PROCESS_RESIDENT,
    &PROCESS_VIRTUAL,
    &PROCESS_START,
    &PROCESS_OPEN_FDS,
    &PROCESS_MAX_FDS,
];

// The exporter's own work, kept by the `prometheus` crate's registry and encoded by its
// text encoder after everything else (`/metrics` only, with the process). Listed in
// name order, as the registry writes them. The reload gauges are named as Prometheus
// names its own, so the alert operators have for Prometheus fits.
family!(
    RELOAD_SUCCESS_TIMESTAMP,
    "cinder_exporter_config_last_reload_success_timestamp_seconds",
    Gauge,
    NO_LABELS,
    "Unix time of the latest successful configuration load: the start, or the latest successful reload."
);
family!(
    RELOAD_SUCCESSFUL,
    "cinder_exporter_config_last_reload_successful",
    Gauge,
    NO_LABELS,
    "1 if the latest reload of --config.file and --web.config.file (SIGHUP or POST /-/reload) succeeded, 0 if it failed and the previous configuration is still in force."
);
family!(
    RELOADS,
    "cinder_exporter_config_reloads_total",
    Counter,
    &["result"],
    "Reloads of the configuration files (SIGHUP or POST /-/reload), by result: success or failure."
);
family!(
    POLL_DURATION_HISTOGRAM,
    "cinder_exporter_database_poll_duration_seconds",
    Histogram,
    &["target"],
    "Duration of the polls of each database, failed ones included; target is the name under targets:, empty for the top-level database."
);
family!(
    SCRAPE_DURATION,
    "cinder_exporter_scrape_duration_seconds",
    Histogram,
    &["endpoint"],
    "Time from a request's arrival to the last byte of its response handed to the connection, by endpoint: /metrics, /probe or / (the status page)."
);
family!(
    SCRAPES,
    "cinder_exporter_scrapes_total",
    Counter,
    &["endpoint"],
    "Requests served, by endpoint: /metrics, /probe or / (the status page)."
);

/// The families of the exporter's own registry, in the order it writes them.
#[cfg(test)]
pub const OWN: [&Family; 6] = [
    &RELOAD_SUCCESS_TIMESTAMP,
    &RELOAD_SUCCESSFUL,
    &RELOADS,
    &POLL_DURATION_HISTOGRAM,
    &SCRAPE_DURATION,
    &SCRAPES,
];

/// Name prefixes other than `cinder_`, each for a reason: another exporter's names
/// (compatibility) or the names every client library gives process metrics.
#[cfg(test)]
const FOREIGN_PREFIXES: [(&str, &[&Family]); 2] =
    [("openstack_cinder_", &COMPAT), ("process_", &PROCESS)];

/// Every family, in the order `/metrics` writes them.
#[cfg(test)]
pub const ALL: [&Family; 25] = [
    &UP,
    &BUILD_INFO,
    &POLL_DURATION,
    &POLL_ERRORS,
    &LAST_SUCCESSFUL_POLL,
    &DATABASE_CLOCK_OFFSET,
    &SERVICE_DOWN_TIME,
    &SCHEDULER_SERVICE_DOWN_TIME,
    &REPORT_INTERVAL,
    &SKEW_BUDGET,
    &SERVICE_UP,
    &SCHEDULER_UP,
    &ENABLED,
    &HEARTBEAT_AGE,
    &LAST_HEARTBEAT,
    &REPORTS,
    &INFO,
    &HEARTBEAT_INTERVAL,
    &CLOCK_OFFSET,
    &CLOCK_OFFSET_UNCERTAINTY,
    &DOWN_CAUSE,
    &HEARTBEAT_SILENCE,
    &CLUSTER_UP,
    &CLUSTER_SERVICES,
    &CLUSTER_SERVICES_UP,
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// `(type, extra labels)` per metric, as the README's metric table states them.
    fn readme_table() -> BTreeMap<String, (String, Vec<String>)> {
        let readme = include_str!("../../README.md");
        // The first table after the `Metrics` heading, whatever the heading's level.
        let mut lines = readme.lines();
        lines
            .by_ref()
            .find(|l| l.starts_with('#') && l.trim_start_matches('#').trim() == "Metrics")
            .expect("README has a Metrics heading");
        let mut rows = BTreeMap::new();
        for line in lines.skip_while(|l| !l.starts_with('|')) {
            if !line.starts_with("| `") {
                if line.starts_with('|') {
                    continue; // header and separator
                }
                break;
            }
            let cells: Vec<&str> = line.split('|').skip(1).map(str::trim).collect();
            let name = cells[0].trim_matches('`').to_string();
            let kind = cells[1].split(' ').next().unwrap_or("").to_string();
            let labels = cells[2]
                .split(',')
                .map(|l| l.trim().trim_matches('`').to_string())
                .filter(|l| !l.is_empty())
                .collect();
            rows.insert(name, (kind, labels));
        }
        rows
    }

    #[test]
    fn readme_metric_table_and_schema_agree_both_ways() {
        let readme = readme_table();
        let mut schema = BTreeMap::new();
        for family in every_family() {
            let extra: Vec<String> = family.labels.iter().map(|l| l.to_string()).collect();
            let kind = match family.kind {
                MetricType::Gauge => "gauge",
                MetricType::Counter => "counter",
                MetricType::Histogram => "histogram",
            };
            schema.insert(family.name.to_string(), (kind.to_string(), extra));
        }
        let documented: Vec<&String> = readme.keys().collect();
        let defined: Vec<&String> = schema.keys().collect();
        assert_eq!(documented, defined, "README metric table vs schema: names");
        for (name, row) in &readme {
            assert_eq!(row, &schema[name], "README metric table vs schema: {name}");
        }
    }

    /// The native families, then those under the foreign prefixes.
    fn every_family() -> Vec<&'static Family> {
        let foreign = FOREIGN_PREFIXES.iter().flat_map(|(_, f)| f.iter().copied());
        ALL.iter().copied().chain(OWN).chain(foreign).collect()
    }

    /// The name prefix a family must have: `cinder_`, or the one its foreign group
    /// is allowed (and only that group).
    fn allowed_prefix(family: &Family) -> &'static str {
        FOREIGN_PREFIXES
            .iter()
            .find(|(_, group)| group.iter().any(|f| f.name == family.name))
            .map_or("cinder_", |(prefix, _)| prefix)
    }

    #[test]
    fn names_and_labels_follow_the_conventions() {
        let all = every_family();
        let mut names: Vec<&str> = all.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "a family is defined twice");
        for family in all {
            let valid = |s: &str| {
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            };
            assert!(
                family.name.starts_with(allowed_prefix(family)) && valid(family.name),
                "{}",
                family.name
            );
            // openstack-exporter's label names are camelCase; ours snake_case.
            let label_ok = |l: &str| {
                if allowed_prefix(family) == "openstack_cinder_" {
                    l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                } else {
                    valid(l)
                }
            };
            assert!(family.labels.iter().all(|l| label_ok(l)), "{}", family.name);
            assert_eq!(
                family.kind == MetricType::Counter,
                family.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                family.name
            );
            assert!(family.help.ends_with('.'), "{}", family.name);
        }
    }
}
