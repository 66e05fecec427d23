//! The one place that judges: for a served database's published state, at one instant
//! and with the thresholds in force, whether its reading is fresh, each service's
//! verdicts and cause, each cluster's verdict, and whether the exporter is ready.
//!
//! `/metrics`, `/probe`, the status page and `/-/ready` all read a [`Judgement`]; no
//! other module compares an age with `service_down_time` or a reading's age with
//! `stale_after`. The rules themselves are cinder's, in `cinder`; this module only
//! applies them to a snapshot at an instant.
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
        None if served
            .targets()
            .all(|t| Judgement::of(t, now).has_answered()) =>
        {
            Ok(())
        }
        None => Err("a target's first poll has not ended yet"),
    }
}
