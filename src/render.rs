//! Turns the published state into the `/metrics` exposition at scrape time.
//!
//! The metric families are declared here, once, with their HELP text in cinder's
//! terms. Everything that depends on "now" (age, both verdicts, the cause of a down)
//! is computed per scrape from the snapshot's reference time plus the monotonic time
//! elapsed since the poll.

use std::time::{Duration, Instant};

use crate::diagnosis::{DownCause, Thresholds};
use crate::exposition::{Exposition, LabelSet, MetricType};
use crate::model::{api_up, heartbeat_age, scheduler_up};
use crate::snapshot::{Published, ServiceState, Snapshot};

/// Settings that shape the output; fixed for the life of the process.
#[derive(Clone, Debug)]
pub struct RenderSettings {
    pub service_down_time: Duration,
    pub report_interval: Duration,
    /// Per-service series are withheld when the last good poll is older than this.
    pub stale_after: Duration,
    /// `cinder_exporter_build_info` labels, rendered once.
    pub build_info: LabelSet,
}

impl RenderSettings {
    /// The labels of `cinder_exporter_build_info` for this build.
    pub fn build_labels() -> LabelSet {
        LabelSet::new([
            ("version", env!("CARGO_PKG_VERSION")),
            ("revision", env!("CINDER_EXPORTER_REVISION")),
            ("rustc_version", env!("CINDER_EXPORTER_RUSTC_VERSION")),
        ])
    }

    fn thresholds(&self) -> Thresholds {
        let down = self.service_down_time.as_secs_f64();
        Thresholds {
            service_down_time: down,
            skew_budget: down - self.report_interval.as_secs_f64(),
        }
    }
}

/// Renders the whole exposition. `capacity_hint` is the size of the previous one.
pub fn render(
    published: &Published,
    settings: &RenderSettings,
    now: Instant,
    capacity_hint: usize,
) -> String {
    let mut out = Exposition::with_capacity(capacity_hint.max(4096));
    render_exporter(&mut out, published, settings);
    render_config(&mut out, settings);
    if let Some(snapshot) = &published.snapshot {
        let age = now.saturating_duration_since(snapshot.taken_at);
        // Never present an old reading as current: an age computed from it would
        // keep growing plausibly while the services may have recovered long ago.
        if age <= settings.stale_after {
            render_services(&mut out, snapshot, settings, snapshot.reference_now(now));
        }
    }
    out.into_string()
}

fn render_exporter(out: &mut Exposition, published: &Published, settings: &RenderSettings) {
    let health = &published.health;
    out.family(
        "cinder_up",
        "1 if the exporter's latest poll of the cinder services table succeeded, else 0.",
        MetricType::Gauge,
    );
    out.plain("cinder_up", bool_value(health.last_poll_ok));
    out.family(
        "cinder_exporter_build_info",
        "Build of cinder_exporter; the value is always 1.",
        MetricType::Gauge,
    );
    out.sample("cinder_exporter_build_info", &settings.build_info, "", 1.0);
    out.family(
        "cinder_exporter_poll_duration_seconds",
        "Wall time of the latest poll of the services table: connect, query, decode, and update the diagnosis.",
        MetricType::Gauge,
    );
    out.plain(
        "cinder_exporter_poll_duration_seconds",
        health.last_poll_duration_seconds,
    );
    out.family(
        "cinder_exporter_poll_errors_total",
        "Polls of the services table that failed (database unreachable, timed out, or not a cinder schema).",
        MetricType::Counter,
    );
    out.plain(
        "cinder_exporter_poll_errors_total",
        health.errors_total as f64,
    );
    if let Some(t) = health.last_success_unix {
        out.family(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            "Exporter wall-clock time of the latest successful poll, unix seconds.",
            MetricType::Gauge,
        );
        out.plain("cinder_exporter_last_successful_poll_timestamp_seconds", t);
    }
    if let Some(offset) = health.database_clock_offset_seconds {
        out.family(
            "cinder_exporter_database_clock_offset_seconds",
            "Exporter clock minus database clock (UTC_TIMESTAMP), seconds; the database clock is the reference for every heartbeat age.",
            MetricType::Gauge,
        );
        out.plain("cinder_exporter_database_clock_offset_seconds", offset);
    }
}

fn render_config(out: &mut Exposition, settings: &RenderSettings) {
    let thresholds = settings.thresholds();
    out.family(
        "cinder_config_service_down_time_seconds",
        "service_down_time the verdicts use: a service is down once its heartbeat is older than this (cinder.conf [DEFAULT] service_down_time).",
        MetricType::Gauge,
    );
    out.plain(
        "cinder_config_service_down_time_seconds",
        thresholds.service_down_time,
    );
    out.family(
        "cinder_config_report_interval_seconds",
        "report_interval the services are expected to heartbeat at (cinder.conf [DEFAULT] report_interval).",
        MetricType::Gauge,
    );
    out.plain(
        "cinder_config_report_interval_seconds",
        settings.report_interval.as_secs_f64(),
    );
    out.family(
        "cinder_service_skew_budget_seconds",
        "Clock skew a service node may have and still show up steadily: service_down_time - report_interval.",
        MetricType::Gauge,
    );
    out.plain("cinder_service_skew_budget_seconds", thresholds.skew_budget);
}

/// Per-service values at one instant, computed once per scrape.
struct Verdict {
    age: Option<f64>,
    up: bool,
    scheduler_up: bool,
    cause: DownCause,
}

fn render_services(
    out: &mut Exposition,
    snapshot: &Snapshot,
    settings: &RenderSettings,
    reference_now: f64,
) {
    let thresholds = settings.thresholds();
    let down = thresholds.service_down_time;
    let services = &snapshot.services;
    let verdicts: Vec<Verdict> = services
        .iter()
        .map(|s| {
            let age = heartbeat_age(reference_now, s.last_heartbeat);
            let up = api_up(age, down);
            Verdict {
                age,
                up,
                scheduler_up: scheduler_up(reference_now, s.updated_at, down),
                cause: s.diagnosis.down_cause(age, up, reference_now, &thresholds),
            }
        })
        .collect();
    let each = |out: &mut Exposition,
                name: &str,
                value: &dyn Fn(&ServiceState, &Verdict) -> Option<f64>| {
        for (service, verdict) in services.iter().zip(&verdicts) {
            if let Some(v) = value(service, verdict) {
                out.sample(name, &service.labels, "", v);
            }
        }
    };

    out.family(
        "cinder_service_up",
        "1 if cinder-api (openstack volume service list) shows the service up: abs(now - (updated_at or created_at)) <= service_down_time, now being the database clock.",
        MetricType::Gauge,
    );
    each(out, "cinder_service_up", &|_, v| Some(bool_value(v.up)));
    out.family(
        "cinder_service_scheduler_up",
        "1 if the scheduler (and cinder-manage service list) sees the service up: updated_at >= now - service_down_time; a clock running ahead stays up here.",
        MetricType::Gauge,
    );
    each(out, "cinder_service_scheduler_up", &|_, v| {
        Some(bool_value(v.scheduler_up))
    });
    out.family(
        "cinder_service_enabled",
        "1 if the service is enabled (disabled = 0 or NULL), 0 if an operator disabled it.",
        MetricType::Gauge,
    );
    each(out, "cinder_service_enabled", &|s, _| {
        Some(bool_value(s.enabled))
    });
    out.family(
        "cinder_service_heartbeat_age_seconds",
        "Database clock minus (updated_at or created_at), signed: negative when the service's clock runs ahead.",
        MetricType::Gauge,
    );
    each(out, "cinder_service_heartbeat_age_seconds", &|_, v| v.age);
    out.family(
        "cinder_service_last_heartbeat_timestamp_seconds",
        "updated_at (or created_at when NULL) as the service recorded it with its own clock, unix seconds.",
        MetricType::Gauge,
    );
    each(
        out,
        "cinder_service_last_heartbeat_timestamp_seconds",
        &|s, _| s.last_heartbeat.map(|t| t as f64),
    );
    out.family(
        "cinder_service_reports_total",
        "Heartbeats the service has recorded (the report_count column).",
        MetricType::Counter,
    );
    each(out, "cinder_service_reports_total", &|s, _| {
        Some(s.report_count as f64)
    });
    out.family(
        "cinder_service_info",
        "Descriptive fields of the service row; the value is always 1. Empty labels are NULL or absent in this cinder schema.",
        MetricType::Gauge,
    );
    for service in services {
        out.sample(
            "cinder_service_info",
            &service.labels,
            service.info_labels.as_str(),
            1.0,
        );
    }
    out.family(
        "cinder_service_heartbeat_interval_seconds",
        "Observed mean time between heartbeats: change of updated_at over change of report_count across recent heartbeats (both written by the service, so immune to its clock offset).",
        MetricType::Gauge,
    );
    each(out, "cinder_service_heartbeat_interval_seconds", &|s, _| {
        s.diagnosis.heartbeat_interval
    });
    out.family(
        "cinder_service_clock_offset_seconds",
        "Estimated service clock minus database clock (positive: the service node runs ahead), bracketed from the polls between which report_count advanced.",
        MetricType::Gauge,
    );
    each(out, "cinder_service_clock_offset_seconds", &|s, _| {
        s.diagnosis.clock_offset.map(|o| o.estimate)
    });
    out.family(
        "cinder_service_clock_offset_uncertainty_seconds",
        "Half-width of the bound on cinder_service_clock_offset_seconds: the true offset lies within estimate +/- this.",
        MetricType::Gauge,
    );
    each(
        out,
        "cinder_service_clock_offset_uncertainty_seconds",
        &|s, _| s.diagnosis.clock_offset.map(|o| o.uncertainty),
    );
    out.family(
        "cinder_service_down_cause",
        "Why the service shows down in cinder-api, one-hot over cause: none (up), heartbeat_stopped, clock_skew, heartbeat_late, unknown (not enough observations yet).",
        MetricType::Gauge,
    );
    for (service, verdict) in services.iter().zip(&verdicts) {
        for cause in DownCause::ALL {
            out.sample(
                "cinder_service_down_cause",
                &service.labels,
                CAUSE_LABELS[cause as usize],
                bool_value(cause == verdict.cause),
            );
        }
    }
}

/// `cause="..."` rendered once per cause, indexed by the enum's discriminant.
const CAUSE_LABELS: [&str; 5] = [
    "cause=\"none\"",
    "cause=\"heartbeat_stopped\"",
    "cause=\"clock_skew\"",
    "cause=\"heartbeat_late\"",
    "cause=\"unknown\"",
];

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_labels_follow_the_enum() {
        for cause in DownCause::ALL {
            assert_eq!(
                CAUSE_LABELS[cause as usize],
                format!("cause=\"{}\"", cause.as_str())
            );
        }
    }
}
