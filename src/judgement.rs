//! The one place that judges: for a served database's published state, at one instant
//! and with the thresholds in force, whether its reading is fresh, each service's
//! verdicts and cause, each cluster's verdict, and whether the exporter is ready.
//!
//! `/metrics`, `/probe`, the status page and `/-/ready` all read a [`Judgement`]; no
//! other module compares an age with `service_down_time` or a reading's age with
//! `stale_after`. The rules themselves are cinder's, in `cinder`; this module only
//! applies them to a snapshot at an instant. It also says where each service stands
//! ([`Standing`], counted by [`ServiceCounts`]) and what the early-warning alert
//! sees of it ([`EarlyWarning`]), so the status page and the landing page count
//! and warn the one way.
//!
//! It also decides which state is shown while a reload hands a database over to a new
//! poller ([`shown_state`]): the new poller's once it has answered (a first poll
//! ended, well or not), the previous one's until then.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cinder::{ClusterVerdict, Thresholds, Verdict};
use crate::config::Config;
use crate::served::{Handover, Served, ServedDatabase};
use crate::snapshot::{PollHealth, Published, ServiceState, SharedState, Snapshot};

/// How current the services are that a judgement can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// The last good poll is within `stale_after`: the services are shown.
    Fresh,
    /// The last good poll is older than `stale_after`: the services are withheld, so
    /// that ages which keep growing plausibly are never served as current.
    Stale,
    /// No poll has succeeded yet.
    NeverRead,
}

/// One database judged at one instant. It owns what it judges (the published state
/// and the configuration, both shared), so a streamed scrape can keep it while it is
/// sent: every piece then comes from the same snapshot, instant and thresholds.
pub struct Judgement {
    published: Arc<Published>,
    config: Arc<Config>,
    thresholds: Thresholds,
    now: Instant,
    /// The snapshot when it is fresh, with the instant on the reference clock.
    fresh: Option<(Arc<Snapshot>, f64)>,
}

/// Whether a poller's first poll has ended, well or not: from then on a scrape of its
/// state says something true about the database (`cinder_up` 1 or 0). A poll that
/// failed counts: a failure is an answer, the database's, not the exporter's.
fn has_answered(published: &Published) -> bool {
    published.snapshot.is_some() || published.health.errors_total > 0
}

/// The state to serve for a poller's `state`: its own once it has answered, which
/// ends the handover for good; until then the state it took over from, if any.
pub fn shown_state(state: &Arc<SharedState>, handover: &Handover) -> Arc<SharedState> {
    if has_answered(&state.current()) {
        handover.end();
        return Arc::clone(state);
    }
    handover.previous().unwrap_or_else(|| Arc::clone(state))
}

impl Judgement {
    /// `database` as of `now`: what its poller published, or during a handover what
    /// the poller it replaced published ([`shown_state`]).
    pub fn of(database: &ServedDatabase, now: Instant) -> Judgement {
        let shown = shown_state(&database.state, &database.handover);
        Judgement::at(shown.current(), database.config(), now)
    }

    /// `published` judged with `config` at `now`.
    pub fn at(published: Arc<Published>, config: Arc<Config>, now: Instant) -> Judgement {
        let judging = &config.judging;
        let thresholds = Thresholds::new(
            judging.service_down_time.as_secs_f64(),
            judging.report_interval.as_secs_f64(),
        );
        let fresh = published
            .snapshot
            .as_ref()
            .filter(|s| now.saturating_duration_since(s.taken_at) <= judging.stale_after)
            .map(|s| (Arc::clone(s), s.reference_now(now)));
        Judgement {
            published,
            config,
            thresholds,
            now,
            fresh,
        }
    }

    pub fn freshness(&self) -> Freshness {
        match (&self.fresh, &self.published.snapshot) {
            (Some(_), _) => Freshness::Fresh,
            (None, Some(_)) => Freshness::Stale,
            (None, None) => Freshness::NeverRead,
        }
    }

    /// The snapshot whose services may be shown: `None` unless fresh.
    pub fn services(&self) -> Option<&Arc<Snapshot>> {
        self.fresh.as_ref().map(|(snapshot, _)| snapshot)
    }

    /// A service of [`Judgement::services`] judged at this instant.
    pub fn service(&self, service: &ServiceState) -> Verdict {
        let reference_now = self.fresh.as_ref().map_or(f64::NAN, |(_, t)| *t);
        Verdict::at(
            reference_now,
            service.last_heartbeat,
            service.updated_at,
            &service.diagnosis,
            &self.thresholds,
        )
    }

    /// A service of [`Judgement::services`] judged at this instant with where it stands
    /// and its early warning: what the status page shows and counts.
    pub fn judge(&self, service: &ServiceState) -> JudgedService {
        let verdict = self.service(service);
        let early_warning = EarlyWarning::of(service);
        let standing = if !service.enabled {
            Standing::Disabled
        } else if !(verdict.api_up && verdict.scheduler_up) {
            Standing::EnabledDown
        } else if early_warning.alerting {
            Standing::EnabledWarned
        } else {
            Standing::EnabledUp
        };
        JudgedService {
            verdict,
            early_warning,
            standing,
        }
    }

    /// How the services split at this instant, in one pass; `None` when they are
    /// withheld (never read, or stale).
    pub fn service_counts(&self) -> Option<ServiceCounts> {
        let snapshot = self.services()?;
        let mut counts = ServiceCounts::default();
        for service in &snapshot.services {
            counts.add(self.judge(service).standing);
        }
        Some(counts)
    }

    /// Every cluster of [`Judgement::services`] judged at this instant, in snapshot
    /// order; none when the services are withheld.
    pub fn clusters(&self) -> Vec<ClusterVerdict> {
        let Some((snapshot, reference_now)) = &self.fresh else {
            return Vec::new();
        };
        let down_time = self.thresholds.service_down_time;
        snapshot
            .clusters
            .iter()
            .map(|c| {
                c.cluster.verdict(*reference_now, down_time, |i| {
                    snapshot.services[i].updated_at
                })
            })
            .collect()
    }

    /// Whether openstack-exporter's series are written: the setting in force, once a
    /// poll has built their labels (a reload that turns it on shows them from the
    /// next poll, never as families without samples).
    pub fn compat(&self) -> bool {
        self.config.output.compatibility.openstack_exporter
            && self
                .published
                .snapshot
                .as_ref()
                .is_none_or(|s| s.compat_labels)
    }

    /// How long ago the last good poll was taken, by the exporter's monotonic clock.
    pub fn last_good_poll_age(&self) -> Option<Duration> {
        let snapshot = self.published.snapshot.as_ref()?;
        Some(self.now.saturating_duration_since(snapshot.taken_at))
    }

    pub fn health(&self) -> &PollHealth {
        &self.published.health
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether a poll has succeeded.
    fn has_read(&self) -> bool {
        self.published.snapshot.is_some()
    }

    /// Whether the first poll has ended, well or not ([`has_answered`]).
    pub fn has_answered(&self) -> bool {
        has_answered(&self.published)
    }
}

/// Where a service stands at an instant, worst first: the order the status page
/// shows them in and the split it counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Enabled, and down for cinder-api or the scheduler.
    EnabledDown,
    /// Enabled and up, but `CinderServiceHeartbeatsMissed` fires for it.
    EnabledWarned,
    /// Enabled and up, no warning.
    EnabledUp,
    /// Disabled (an operator's choice): neither counted down nor warned.
    Disabled,
}

/// One service judged at one instant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JudgedService {
    pub verdict: Verdict,
    pub early_warning: EarlyWarning,
    pub standing: Standing,
}

/// How many heartbeats missed make `CinderServiceHeartbeatsMissed` fire
/// (`alerts/cinder-exporter.rules.yml`, `>= 2`; a unit test ties the two).
pub const HEARTBEATS_MISSED_ALERT_AT: u64 = 2;

/// What `CinderServiceHeartbeatsMissed` computes for a service: its heartbeat
/// silence (as of the latest poll, as `cinder_service_heartbeat_silence_seconds`
/// publishes it) and the heartbeats missed by its own observed interval,
/// `floor(silence / interval - 0.5)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EarlyWarning {
    pub silence: f64,
    /// `None` until an interval has been observed (the alert has no value then
    /// either); never below zero.
    pub heartbeats_missed: Option<u64>,
    /// Whether the alert fires for it: enabled, and at least
    /// [`HEARTBEATS_MISSED_ALERT_AT`] heartbeats missed.
    pub alerting: bool,
}

impl EarlyWarning {
    /// The alert's expression applied to the published facts of `service`. Only a
    /// positive interval counts: a zero one (stamps of whole seconds, heartbeats less
    /// than a second apart) says nothing about a pace.
    pub fn of(service: &ServiceState) -> EarlyWarning {
        let silence = service.heartbeat_silence;
        let heartbeats_missed = service
            .diagnosis
            .heartbeat_interval
            .filter(|interval| *interval > 0.0)
            .map(|interval| (silence / interval - 0.5).floor().max(0.0) as u64);
        EarlyWarning {
            silence,
            heartbeats_missed,
            alerting: service.enabled
                && heartbeats_missed.is_some_and(|m| m >= HEARTBEATS_MISSED_ALERT_AT),
        }
    }
}

/// How the services of one database split at an instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    pub enabled_down: usize,
    /// Enabled and up, warned or not.
    pub enabled_up: usize,
    /// Of [`ServiceCounts::enabled_up`], those the early-warning alert fires for.
    pub warned: usize,
    pub disabled: usize,
}

impl ServiceCounts {
    /// Counts one more service.
    pub fn add(&mut self, standing: Standing) {
        match standing {
            Standing::EnabledDown => self.enabled_down += 1,
            Standing::EnabledWarned => {
                self.enabled_up += 1;
                self.warned += 1;
            }
            Standing::EnabledUp => self.enabled_up += 1,
            Standing::Disabled => self.disabled += 1,
        }
    }
}

/// `/-/ready`: `Ok`, or why not.
///
/// With a top-level database: once its first poll succeeded. With only targets: once
/// every target's first poll has ended, well or not, since a target whose database is
/// down is still answered truthfully (`cinder_up 0`), and one dead database must not
/// take the others out of a load balancer.
pub fn readiness(served: &Served, now: Instant) -> Result<(), &'static str> {
    match &served.main {
        Some(main) if Judgement::of(main, now).has_read() => Ok(()),
        Some(_) => Err("no successful poll of the cinder database yet"),
        None if served.unconfigured.is_some() => {
            Err("the cinder database is not configured yet (the status page at / says how)")
        }
        None if served
            .targets()
            .all(|t| Judgement::of(t, now).has_answered()) =>
        {
            Ok(())
        }
        None => Err("a target's first poll has not ended yet"),
    }
}

/// When [`readiness`] says ready, in the words the pages show, for the databases
/// `served` has.
pub fn readiness_rule(served: &Served) -> &'static str {
    match (&served.main, served.has_targets()) {
        (Some(_), false) => "ready once the first poll of the database succeeded",
        (Some(_), true) => {
            "ready once the first poll of the top-level database succeeded (targets do not count)"
        }
        (None, _) => "ready once every target's first poll has ended, well or not",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cinder::Diagnosis;
    use crate::series::LabelSet;

    /// An enabled service that heartbeats every `interval` s, last at 995 (age 5 s at
    /// the snapshot's 1,000), silent for `silence` s.
    fn service(enabled: bool, interval: Option<f64>, silence: f64) -> ServiceState {
        ServiceState {
            id: 1,
            labels: LabelSet::new([("host", "h@lvm")]),
            info_labels: LabelSet::new([("cluster", "")]),
            compat_labels: None,
            enabled,
            report_count: 1,
            last_heartbeat: Some(995),
            updated_at: Some(995),
            diagnosis: Diagnosis {
                heartbeat_interval: interval,
                clock_offset: None,
                count_seen_since: 1_000.0 - silence,
                advance_seen: true,
            },
            heartbeat_silence: silence,
        }
    }

    #[test]
    fn heartbeats_missed_as_the_alert_computes_them() {
        let missed = |interval, silence| {
            EarlyWarning::of(&service(true, interval, silence)).heartbeats_missed
        };
        // floor(silence / interval - 0.5), never below zero.
        assert_eq!(missed(Some(10.0), 0.0), Some(0));
        assert_eq!(missed(Some(10.0), 14.9), Some(0));
        assert_eq!(missed(Some(10.0), 15.0), Some(1));
        assert_eq!(missed(Some(10.0), 24.9), Some(1));
        assert_eq!(missed(Some(10.0), 25.0), Some(2));
        assert_eq!(missed(Some(2.0), 61.0), Some(30));
        assert_eq!(missed(None, 100.0), None);
        assert_eq!(missed(Some(0.0), 100.0), None);
        let fires =
            |enabled, silence| EarlyWarning::of(&service(enabled, Some(10.0), silence)).alerting;
        assert!(!fires(true, 24.9));
        assert!(fires(true, 25.0));
        assert!(
            !fires(false, 250.0),
            "the alert watches enabled services only"
        );
    }

    /// The threshold here is the shipped alert's: the page warns when it fires.
    #[test]
    fn the_alert_threshold_is_the_shipped_rules() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/alerts/cinder-exporter.rules.yml"
        );
        let rules: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expr = rules["groups"]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_sequence().into_iter().flatten())
            .find(|r| r["alert"].as_str() == Some("CinderServiceHeartbeatsMissed"))
            .and_then(|r| r["expr"].as_str())
            .expect("the alert is shipped");
        // Without spaces or selectors (which the mixin's `_config` sets).
        let mut expr: String = expr.split_whitespace().collect();
        while let Some((start, end)) = expr.find('{').zip(expr.find('}')) {
            expr.replace_range(start..=end, "");
        }
        let computed =
            "floor(cinder_service_heartbeat_silence_seconds/on(job,instance,host,binary,\
                        zone)cinder_service_heartbeat_interval_seconds-0.5)";
        assert!(expr.starts_with(computed), "{expr}");
        assert!(
            expr.contains(&format!("-0.5)>={HEARTBEATS_MISSED_ALERT_AT}")),
            "{expr}"
        );
        assert!(expr.contains("(cinder_service_enabled==1)"), "{expr}");
    }

    #[test]
    fn services_are_counted_by_where_they_stand() {
        let now = Instant::now();
        let mut down = service(true, Some(10.0), 100.0);
        down.last_heartbeat = Some(900);
        down.updated_at = Some(900);
        let services = vec![
            service(true, Some(10.0), 0.0),
            service(true, Some(2.0), 5.0),
            down,
            service(false, Some(10.0), 100.0),
        ];
        let published = Published::polled(services, 1_000.0, now);
        let judgement = Judgement::at(Arc::new(published), crate::config::for_tests(""), now);
        let snapshot = Arc::clone(judgement.services().unwrap());
        let standings: Vec<Standing> = snapshot
            .services
            .iter()
            .map(|s| judgement.judge(s).standing)
            .collect();
        assert_eq!(
            standings,
            [
                Standing::EnabledUp,
                Standing::EnabledWarned,
                Standing::EnabledDown,
                Standing::Disabled
            ]
        );
        let counts = judgement.service_counts().unwrap();
        assert_eq!(
            counts,
            ServiceCounts {
                enabled_down: 1,
                enabled_up: 2,
                warned: 1,
                disabled: 1
            }
        );
        let never = Judgement::at(
            Arc::new(Published::default()),
            Arc::new(judgement.config().clone()),
            now,
        );
        assert_eq!(never.service_counts(), None);
    }
}
