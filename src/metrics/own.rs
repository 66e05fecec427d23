//! The exporter's own work — polls, scrapes, reloads — counted by the `prometheus`
//! crate: a [`Registry`] of histograms, counters and gauges, encoded by its text
//! encoder after the streamed families (`/metrics` only, like the process metrics).
//!
//! These are few series updated from several threads (each poller, each request),
//! which is what a client-library registry does well; the per-service families,
//! computed at scrape time for every service, are not (see `exposition`). Names, help
//! and labels come from `series::schema`, like every other family.
//!
//! One registry per process: there is one configuration, one HTTP server, and one
//! poller per database (told apart by the `target` label).

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramTimer, HistogramVec, IntCounterVec, Opts, Registry,
    TextEncoder,
};

use crate::series::schema::{self, Family};

/// The endpoints whose requests are timed and counted, as their `endpoint` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Metrics,
    Probe,
    StatusPage,
}

impl Endpoint {
    fn label(self) -> &'static str {
        match self {
            Endpoint::Metrics => "/metrics",
            Endpoint::Probe => "/probe",
            Endpoint::StatusPage => "/",
        }
    }
}

struct Own {
    registry: Registry,
    reload_success_timestamp: Gauge,
    reload_successful: Gauge,
    reloads: IntCounterVec,
    poll_duration: HistogramVec,
    scrape_duration: HistogramVec,
    scrapes: IntCounterVec,
}

static OWN: LazyLock<Own> = LazyLock::new(Own::new);

impl Own {
    fn new() -> Own {
        let registry = Registry::new();
        let own = Own {
            reload_success_timestamp: Gauge::with_opts(opts(&schema::RELOAD_SUCCESS_TIMESTAMP))
                .expect("valid gauge"),
            reload_successful: Gauge::with_opts(opts(&schema::RELOAD_SUCCESSFUL))
                .expect("valid gauge"),
            reloads: IntCounterVec::new(opts(&schema::RELOADS), schema::RELOADS.labels)
                .expect("valid counter"),
            poll_duration: histogram(&schema::POLL_DURATION_HISTOGRAM),
            scrape_duration: histogram(&schema::SCRAPE_DURATION),
            scrapes: IntCounterVec::new(opts(&schema::SCRAPES), schema::SCRAPES.labels)
                .expect("valid counter"),
            registry,
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 6] = [
            Box::new(own.reload_success_timestamp.clone()),
            Box::new(own.reload_successful.clone()),
            Box::new(own.reloads.clone()),
            Box::new(own.poll_duration.clone()),
            Box::new(own.scrape_duration.clone()),
            Box::new(own.scrapes.clone()),
        ];
        for collector in collectors {
            own.registry
                .register(collector)
                .expect("each family is registered once");
        }
        // Both results exist from the start, so that rate() sees the first failure.
        for result in ["success", "failure"] {
            own.reloads.with_label_values(&[result]);
        }
        own
    }
}

fn opts(family: &Family) -> Opts {
    Opts::new(family.name, family.help)
}

/// A histogram with the client library's default buckets (5 ms to 10 s), which cover
/// a poll from a healthy local database to one cut at the largest useful timeout.
fn histogram(family: &Family) -> HistogramVec {
    HistogramVec::new(HistogramOpts::from(opts(family)), family.labels).expect("valid histogram")
}

/// Records a load of the configuration: the first at start, then each reload.
pub fn record_reload(successful: bool, first: bool) {
    let own = &*OWN;
    own.reload_successful
        .set(if successful { 1.0 } else { 0.0 });
    if successful {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        own.reload_success_timestamp.set(now);
    }
    if !first {
        let result = if successful { "success" } else { "failure" };
        own.reloads.with_label_values(&[result]).inc();
    }
}

/// Records one poll of a database (`target` "" for the top-level one).
pub fn observe_poll(target: &str, seconds: f64) {
    OWN.poll_duration
        .with_label_values(&[target])
        .observe(seconds);
}

/// Forgets a database no longer configured, so that its series end.
pub fn forget_target(target: &str) {
    let _ = OWN.poll_duration.remove_label_values(&[target]);
}

/// Counts a request to `endpoint` and returns the timer that records its duration
/// when dropped (once the response body has been handed out whole).
pub fn start_scrape(endpoint: Endpoint) -> HistogramTimer {
    let label = [endpoint.label()];
    OWN.scrapes.with_label_values(&label).inc();
    OWN.scrape_duration.with_label_values(&label).start_timer()
}

/// The registry in the text format, appended to `out`.
pub fn encode(out: &mut Vec<u8>) {
    let families = OWN.registry.gather();
    // Encoding into memory cannot fail for families the registry itself built.
    let _ = TextEncoder::new().encode(&families, out);
}

#[cfg(test)]
pub(crate) fn histogram_count(family: &Family, label: &str) -> u64 {
    let vec = if family.name == schema::POLL_DURATION_HISTOGRAM.name {
        &OWN.poll_duration
    } else {
        &OWN.scrape_duration
    };
    let histogram: prometheus::Histogram = vec.with_label_values(&[label]);
    histogram.get_sample_count()
}
