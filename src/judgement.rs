//! The one place that judges: for a served database's published state, at one instant
//! and with the thresholds in force, whether its reading is fresh, each service's
//! verdicts and cause, each cluster's verdict, and whether the exporter is ready.
//!
//! `/metrics`, `/probe`, the status page and `/-/ready` all read a [`Judgement`]; no
//! other module compares an age with `service_down_time` or a reading's age with
//! `stale_after`. The rules themselves are cinder's, in `cinder`; this module only
//! applies them to a snapshot at an instant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cinder::{ClusterVerdict, Thresholds, Verdict};
use crate::config::Config;
use crate::served::{Served, ServedDatabase};
use crate::snapshot::{PollHealth, Published, ServiceState, Snapshot};

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

impl Judgement {
    /// `database` as of `now`.
    pub fn of(database: &ServedDatabase, now: Instant) -> Judgement {
        Judgement::at(database.published(), database.config(), now)
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

    /// Whether the first poll has ended, well or not: from then on a scrape says
    /// something true about the database (`cinder_up` 1 or 0).
    fn has_answered(&self) -> bool {
        self.has_read() || self.published.health.errors_total > 0
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
