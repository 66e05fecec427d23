//! Turns a [`Judgement`] of a served database into the `/metrics` (or `/probe`)
//! exposition at scrape time.
//!
//! The families are those of `series::schema`; this module says only where each
//! sample's value comes from. What depends on "now" (ages, both verdicts, the cause of
//! a down, the clusters, whether the reading is fresh) comes from the judgement, made
//! once per scrape.
//!
//! A scrape is written in pieces of about [`CHUNK_BYTES`] ([`ExpositionWriter`]), so
//! that its memory does not grow with the number of services or of concurrent
//! scrapers; every piece comes from one judgement, so the pieces add up to one
//! consistent exposition.

use std::sync::Arc;

use super::compat;
use super::exposition::Exposition;
use super::own;
use super::process::ProcessFigures;
use crate::cinder::{ClusterVerdict, DownCause, Verdict};
use crate::judgement::Judgement;
use crate::series::schema::{self, Family};
use crate::series::LabelSet;
use crate::snapshot::{ServiceState, Snapshot};

/// Size of the pieces a scrape is written and sent in.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The labels of `cinder_exporter_build_info` for this build.
pub fn build_labels() -> LabelSet {
    LabelSet::new([
        ("version", env!("CARGO_PKG_VERSION")),
        ("revision", env!("CINDER_EXPORTER_REVISION")),
        ("build_date", env!("CINDER_EXPORTER_BUILD_DATE")),
        ("rustc_version", env!("CINDER_EXPORTER_RUSTC_VERSION")),
    ])
}

/// Renders the whole exposition into one string.
#[cfg(test)]
pub fn render(judgement: Judgement, process: bool) -> String {
    let mut writer = ExpositionWriter::new(Some(judgement), process);
    let mut out = String::new();
    while let Some(piece) = writer.next_piece(CHUNK_BYTES) {
        out.push_str(&piece);
    }
    out
}

/// Writes one scrape's exposition piece by piece.
pub struct ExpositionWriter {
    out: Exposition,
    /// The per-service part still to write, if any.
    services: Option<ServiceCursor>,
    /// Whether the exporter's own registry is still to be written, last.
    own: bool,
}

/// Where the per-service part of a scrape has got to.
struct ServiceCursor {
    judgement: Judgement,
    snapshot: Arc<Snapshot>,
    /// Whether [`COMPAT_FAMILIES`] follow [`SERVICE_FAMILIES`].
    compat: bool,
    /// Index into the per-service families, then past them into [`CLUSTER_FAMILIES`].
    family: usize,
    /// Index of the next service (or cluster) to write in the current family.
    service: usize,
    /// The clusters' verdicts, computed once on reaching them.
    cluster_verdicts: Option<Vec<ClusterVerdict>>,
}

impl ExpositionWriter {
    /// The exposition of `judgement`'s database (none: the exporter alone, for
    /// `/metrics` with only targets), with the process's own metrics when `process`
    /// (`/metrics`; `/probe` answers for a database, not for the process). The small
    /// families are written at once.
    pub fn new(judgement: Option<Judgement>, process: bool) -> ExpositionWriter {
        let mut out = Exposition::with_capacity(CHUNK_BYTES + 4096);
        match &judgement {
            Some(judgement) => render_exporter(&mut out, judgement),
            None => render_build_info(&mut out),
        }
        if process {
            ProcessFigures::read().render(&mut out);
        }
        let services = judgement.and_then(|judgement| {
            render_config(&mut out, &judgement);
            let compat = judgement.compat();
            if compat {
                compat::render_up(&mut out, bool_value(judgement.health().last_poll_ok));
            }
            let snapshot = Arc::clone(judgement.services()?);
            Some(ServiceCursor {
                judgement,
                snapshot,
                compat,
                family: 0,
                service: 0,
                cluster_verdicts: None,
            })
        });
        ExpositionWriter {
            out,
            services,
            own: process,
        }
    }

    /// `/metrics` while the top-level database is not configured yet: `cinder_up 0`,
    /// so that the alert on it fires, with the build and the process.
    pub fn unconfigured() -> ExpositionWriter {
        let mut out = Exposition::with_capacity(4096);
        plain(&mut out, &schema::UP, 0.0);
        render_build_info(&mut out);
        ProcessFigures::read().render(&mut out);
        ExpositionWriter {
            out,
            services: None,
            own: true,
        }
    }

    /// The next piece of at least `min_bytes` (less only for the last one), or
    /// `None` once everything has been handed out.
    pub fn next_piece(&mut self, min_bytes: usize) -> Option<String> {
        if let Some(cursor) = &mut self.services {
            if !cursor.write(&mut self.out, min_bytes) {
                self.services = None;
            }
        }
        if self.services.is_none() && std::mem::take(&mut self.own) {
            self.out.own_registry();
        }
        if self.out.is_empty() {
            return None;
        }
        let capacity = if self.services.is_some() {
            min_bytes + 4096
        } else {
            0
        };
        Some(self.out.take(capacity))
    }
}

impl ServiceCursor {
    /// The `index`th per-service family of this scrape: the native ones, then the
    /// compatibility ones when they are on.
    fn family_at(&self, index: usize) -> Option<&'static ServiceFamily> {
        SERVICE_FAMILIES.get(index).or_else(|| {
            let compat = index.checked_sub(SERVICE_FAMILIES.len());
            compat
                .filter(|_| self.compat)
                .and_then(|i| COMPAT_FAMILIES.get(i))
        })
    }

    /// How many per-service families this scrape writes before the cluster ones.
    fn per_service_families(&self) -> usize {
        SERVICE_FAMILIES.len()
            + if self.compat {
                COMPAT_FAMILIES.len()
            } else {
                0
            }
    }

    /// Writes until `out` holds `min_bytes` or the services are done; returns whether
    /// anything is left.
    fn write(&mut self, out: &mut Exposition, min_bytes: usize) -> bool {
        let services = &self.snapshot.services;
        while let Some(family) = self.family_at(self.family) {
            if self.service == 0 {
                out.family(family.family);
            }
            while let Some(service) = services.get(self.service) {
                let verdict = family
                    .needs_verdict
                    .then(|| self.judgement.service(service));
                (family.samples)(out, family.family.name, service, verdict.as_ref());
                self.service += 1;
                if out.len() >= min_bytes {
                    return true;
                }
            }
            self.family += 1;
            self.service = 0;
        }
        let per_service = self.per_service_families();
        let clusters = &self.snapshot.clusters;
        let verdicts = self
            .cluster_verdicts
            .get_or_insert_with(|| self.judgement.clusters());
        while let Some((family, value)) = CLUSTER_FAMILIES.get(self.family - per_service) {
            if self.service == 0 {
                out.family(family);
            }
            while let (Some(cluster), Some(verdict)) =
                (clusters.get(self.service), verdicts.get(self.service))
            {
                out.sample(family.name, &cluster.labels, "", value(verdict));
                self.service += 1;
                if out.len() >= min_bytes {
                    return true;
                }
            }
            self.family += 1;
            self.service = 0;
        }
        false
    }
}

impl Exposition {
    /// The exporter's own registry ([`own`]), as its encoder writes it.
    fn own_registry(&mut self) {
        let mut bytes = Vec::with_capacity(4096);
        own::encode(&mut bytes);
        self.push_text(&String::from_utf8_lossy(&bytes));
    }
}

/// The per-cluster families and each one's value from the cluster's verdict.
type ClusterFamily = (&'static Family, fn(&ClusterVerdict) -> f64);

const CLUSTER_FAMILIES: [ClusterFamily; 3] = [
    (&schema::CLUSTER_UP, |v| bool_value(v.up)),
    (&schema::CLUSTER_SERVICES, |v| v.services as f64),
    (&schema::CLUSTER_SERVICES_UP, |v| v.services_up as f64),
];

fn render_exporter(out: &mut Exposition, judgement: &Judgement) {
    let health = judgement.health();
    plain(out, &schema::UP, bool_value(health.last_poll_ok));
    render_build_info(out);
    plain(
        out,
        &schema::POLL_DURATION,
        health.last_poll_duration_seconds,
    );
    plain(out, &schema::POLL_ERRORS, health.errors_total as f64);
    if let Some(t) = health.last_success_unix {
        plain(out, &schema::LAST_SUCCESSFUL_POLL, t);
    }
    if let Some(offset) = health.database_clock_offset_seconds {
        plain(out, &schema::DATABASE_CLOCK_OFFSET, offset);
    }
}

/// `cinder_exporter_build_info`; its labels are built once per process.
fn render_build_info(out: &mut Exposition) {
    static LABELS: std::sync::LazyLock<LabelSet> = std::sync::LazyLock::new(build_labels);
    out.family(&schema::BUILD_INFO);
    out.sample(schema::BUILD_INFO.name, &LABELS, "", 1.0);
}

fn render_config(out: &mut Exposition, judgement: &Judgement) {
    let thresholds = judgement.thresholds();
    plain(
        out,
        &schema::SERVICE_DOWN_TIME,
        thresholds.service_down_time,
    );
    plain(
        out,
        &schema::SCHEDULER_SERVICE_DOWN_TIME,
        thresholds.scheduler_service_down_time,
    );
    let report_interval = judgement.config().judging.report_interval;
    plain(out, &schema::REPORT_INTERVAL, report_interval.as_secs_f64());
    plain(out, &schema::SKEW_BUDGET, thresholds.skew_budget);
}

/// A family of one sample without labels.
fn plain(out: &mut Exposition, family: &Family, value: f64) {
    out.family(family);
    out.plain(family.name, value);
}

/// One per-service family of the schema and how one service's samples are written
/// (none, when the value is unknown).
struct ServiceFamily {
    family: &'static Family,
    /// Whether `samples` needs the service's verdict at the scrape's instant.
    needs_verdict: bool,
    samples: fn(&mut Exposition, &'static str, &ServiceState, Option<&Verdict>),
}

/// Writes `value` with the service's identity labels, if there is a value.
fn identity_sample(out: &mut Exposition, name: &str, service: &ServiceState, value: Option<f64>) {
    if let Some(value) = value {
        out.sample(name, &service.labels, "", value);
    }
}

/// A family whose value is a fact of the snapshot.
macro_rules! fact {
    ($family:ident, |$s:ident| $value:expr) => {
        ServiceFamily {
            family: &schema::$family,
            needs_verdict: false,
            samples: |out, name, $s, _| identity_sample(out, name, $s, $value),
        }
    };
}

/// A family whose value depends on the scrape's instant.
macro_rules! judged {
    ($family:ident, |$v:ident| $value:expr) => {
        ServiceFamily {
            family: &schema::$family,
            needs_verdict: true,
            samples: |out, name, s, v| {
                if let Some($v) = v {
                    identity_sample(out, name, s, $value)
                }
            },
        }
    };
}

const SERVICE_FAMILIES: [ServiceFamily; 12] = [
    judged!(SERVICE_UP, |v| Some(bool_value(v.api_up))),
    judged!(SCHEDULER_UP, |v| Some(bool_value(v.scheduler_up))),
    fact!(ENABLED, |s| Some(bool_value(s.enabled))),
    judged!(HEARTBEAT_AGE, |v| v.age),
    fact!(LAST_HEARTBEAT, |s| s.last_heartbeat.map(|t| t as f64)),
    fact!(REPORTS, |s| Some(s.report_count as f64)),
    ServiceFamily {
        family: &schema::INFO,
        needs_verdict: false,
        samples: |out, name, s, _| out.sample(name, &s.labels, s.info_labels.as_str(), 1.0),
    },
    fact!(HEARTBEAT_INTERVAL, |s| s.diagnosis.heartbeat_interval),
    fact!(CLOCK_OFFSET, |s| s
        .diagnosis
        .clock_offset
        .map(|o| o.estimate)),
    fact!(CLOCK_OFFSET_UNCERTAINTY, |s| s
        .diagnosis
        .clock_offset
        .map(|o| o.uncertainty)),
    ServiceFamily {
        family: &schema::DOWN_CAUSE,
        needs_verdict: true,
        samples: |out, name, s, v| {
            if let Some(v) = v {
                for cause in DownCause::ALL {
                    let value = bool_value(cause == v.cause);
                    out.sample(name, &s.labels, CAUSE_LABELS[cause as usize], value);
                }
            }
        },
    },
    fact!(HEARTBEAT_SILENCE, |s| Some(s.heartbeat_silence)),
];

/// The openstack-exporter compatible per-service families, written after the native
/// ones when `compatibility: {openstack_exporter: true}`.
const COMPAT_FAMILIES: [ServiceFamily; 1] = [ServiceFamily {
    family: &schema::COMPAT_AGENT_STATE,
    needs_verdict: true,
    samples: compat::agent_state_sample,
}];

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
    use crate::cinder::{group_clusters, Diagnosis, Member, NameComparison};
    use crate::config::Config;
    use crate::snapshot::{ClusterState, PollHealth, Published};
    use std::time::{Duration, Instant};

    #[test]
    fn cause_labels_follow_the_enum() {
        for cause in DownCause::ALL {
            assert_eq!(
                CAUSE_LABELS[cause as usize],
                format!("cause=\"{}\"", cause.as_str())
            );
        }
    }

    fn published(services: usize, taken_at: Instant) -> Arc<Published> {
        let service = |i: usize| ServiceState {
            id: i as i64,
            labels: LabelSet::new([
                ("host", format!("node{i}@lvm").as_str()),
                ("binary", "cinder-volume"),
                ("zone", "nova"),
            ]),
            info_labels: LabelSet::new([("cluster", "")]),
            compat_labels: Some(LabelSet::new([(
                "hostname",
                format!("node{i}@lvm").as_str(),
            )])),
            enabled: true,
            report_count: 7,
            last_heartbeat: Some(1_000),
            updated_at: Some(1_000),
            diagnosis: Diagnosis {
                heartbeat_interval: Some(10.0),
                clock_offset: None,
                count_seen_since: 995.0,
                advance_seen: true,
            },
            heartbeat_silence: 10.0,
        };
        let services = (0..services).map(service).collect();
        Arc::new(Published::polled(services, 1_005.0, taken_at))
    }

    /// A configuration with these YAML keys beside a database URL.
    fn config(yaml: &str) -> Arc<Config> {
        crate::config::for_tests(yaml)
    }

    fn judged(published: &Arc<Published>, yaml: &str, now: Instant) -> Judgement {
        Judgement::at(Arc::clone(published), config(yaml), now)
    }

    #[test]
    fn pieces_add_up_to_whole_families() {
        let now = Instant::now();
        let published = published(3_000, now);
        let whole = render(judged(&published, "", now), false);
        let mut writer = ExpositionWriter::new(Some(judged(&published, "", now)), false);
        let mut pieces = Vec::new();
        while let Some(piece) = writer.next_piece(1_000) {
            pieces.push(piece);
        }
        assert!(pieces.len() > 10);
        assert!(pieces[..pieces.len() - 1].iter().all(|p| p.len() >= 1_000));
        assert_eq!(pieces.concat(), whole);
        // Each family is announced once, its samples together.
        assert_eq!(whole.matches("# TYPE cinder_service_up gauge").count(), 1);
        assert_eq!(
            whole.matches("\ncinder_service_down_cause{").count(),
            3_000 * 5
        );
        assert!(whole.contains("cinder_service_heartbeat_age_seconds{host=\"node0@lvm\",binary=\"cinder-volume\",zone=\"nova\"} 5\n"));
    }

    #[test]
    fn families_are_written_in_schema_order_and_only_from_it() {
        let now = Instant::now();
        let mut published = (*published(2, now)).clone();
        published.health.last_success_unix = Some(1.0);
        published.health.database_clock_offset_seconds = Some(0.0);
        let text = render(judged(&Arc::new(published), "", now), false);
        let written: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap_or(""))
            .collect();
        let schema: Vec<&str> = schema::ALL.iter().map(|f| f.name).collect();
        assert_eq!(written, schema);
    }

    #[test]
    fn compat_and_process_families_are_written_only_when_asked() {
        let now = Instant::now();
        let names = |yaml: &str, process: bool| -> Vec<String> {
            render(judged(&published(2, now), yaml, now), process)
                .lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .map(|l| l.split(' ').next().unwrap_or("").to_string())
                .collect()
        };
        let plain = names("", false);
        assert!(!plain
            .iter()
            .any(|n| n.starts_with("openstack_") || n.starts_with("process_")));
        // Something observed, so that the registry's histograms have a series.
        own::observe_poll("", 0.01);
        drop(own::start_scrape(own::Endpoint::Metrics));
        let compat = "compatibility: {openstack_exporter: true}";
        let both = names(compat, true);
        let added: Vec<&str> = both
            .iter()
            .filter(|n| !plain.contains(n))
            .map(String::as_str)
            .collect();
        let mut expected: Vec<&str> = schema::PROCESS.iter().map(|f| f.name).collect();
        expected.extend(schema::COMPAT.iter().map(|f| f.name));
        expected.extend(schema::OWN.iter().map(|f| f.name));
        assert_eq!(added, expected);
        let text = render(judged(&published(2, now), compat, now), false);
        assert!(text.contains("openstack_cinder_up 1\n"));
        assert!(text.contains("openstack_cinder_agent_state{hostname=\"node1@lvm\"} 1\n"));
    }

    /// A reload that turns compatibility on shows its series from the next poll:
    /// never a family announced without samples.
    #[test]
    fn compatibility_turned_on_waits_for_a_poll_with_its_labels() {
        let now = Instant::now();
        let mut polled_without = (*published(2, now)).clone();
        let snapshot = polled_without.snapshot.as_ref().unwrap();
        let mut snapshot = Snapshot {
            services: snapshot.services.clone(),
            clusters: Vec::new(),
            compat_labels: false,
            ..**snapshot
        };
        for service in &mut snapshot.services {
            service.compat_labels = None;
        }
        polled_without.snapshot = Some(Arc::new(snapshot));
        let compat = "compatibility: {openstack_exporter: true}";
        let text = render(judged(&Arc::new(polled_without), compat, now), false);
        assert!(!text.contains("openstack_"), "{text}");
        let text = render(judged(&published(2, now), compat, now), false);
        assert!(text.contains("# TYPE openstack_cinder_agent_state gauge"));
    }

    #[test]
    fn a_stale_snapshot_withholds_the_services() {
        let now = Instant::now();
        let published = published(2, now);
        let later = now + Duration::from_secs(31);
        let text = render(judged(&published, "", later), false);
        assert!(!text.contains("cinder_service_up"));
        assert!(text.contains("cinder_up 1\n"));
        let text = render(judged(&published, "", now + Duration::from_secs(29)), false);
        assert!(text.contains("cinder_service_heartbeat_age_seconds{host=\"node1@lvm\",binary=\"cinder-volume\",zone=\"nova\"} 34\n"));
    }

    #[test]
    fn clusters_are_judged_at_the_scrape_instant() {
        let now = Instant::now();
        let services = published(3, now)
            .snapshot
            .as_ref()
            .unwrap()
            .services
            .clone();
        let mut snapshot = Snapshot {
            reference_time: 1_005.0,
            taken_at: now,
            services,
            clusters: Vec::new(),
            compat_labels: true,
        };
        // Members 0 and 1 in c1@lvm, member 1 silent; member 2 alone in c2@lvm, silent.
        snapshot.services[1].updated_at = Some(900);
        snapshot.services[2].updated_at = Some(900);
        let names = ["c1@lvm", "c1@lvm", "c2@lvm"];
        let members = (0..3).map(|i| Member {
            id: i as i64,
            cluster_name: Some(names[i]),
            binary: Some("cinder-volume"),
            updated_at: snapshot.services[i].updated_at,
        });
        snapshot.clusters = group_clusters(members, NameComparison::CINDER_SCHEMA)
            .into_iter()
            .map(|cluster| ClusterState {
                labels: crate::series::cluster_labels(&cluster),
                cluster,
            })
            .collect();
        let published = Arc::new(Published {
            snapshot: Some(Arc::new(snapshot)),
            health: PollHealth::default(),
        });
        let text = render(judged(&published, "", now), false);
        for line in [
            "cinder_cluster_up{cluster=\"c1@lvm\",binary=\"cinder-volume\"} 1\n",
            "cinder_cluster_up{cluster=\"c2@lvm\",binary=\"cinder-volume\"} 0\n",
            "cinder_cluster_services{cluster=\"c1@lvm\",binary=\"cinder-volume\"} 2\n",
            "cinder_cluster_services_up{cluster=\"c1@lvm\",binary=\"cinder-volume\"} 1\n",
            "cinder_cluster_services_up{cluster=\"c2@lvm\",binary=\"cinder-volume\"} 0\n",
            "cinder_service_heartbeat_silence_seconds{host=\"node0@lvm\",binary=\"cinder-volume\",zone=\"nova\"} 10\n",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        // 56 s later the freshest member (1000) is 61 s old: the cluster is down.
        let patient = "stale_after: 120s";
        let later = render(
            judged(&published, patient, now + Duration::from_secs(56)),
            false,
        );
        assert!(
            later.contains("cinder_cluster_up{cluster=\"c1@lvm\",binary=\"cinder-volume\"} 0\n")
        );
    }
}
