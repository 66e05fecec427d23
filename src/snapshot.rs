//! What the poller publishes and scrapes read: the last good reading of the services
//! table and the health of the latest poll.
//!
//! The poller builds a whole new [`Published`] value per poll and swaps one `Arc`;
//! a scrape clones that `Arc` and renders without holding any lock, so scrapes never
//! wait on the database and the database load does not grow with the scrapers.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::cinder::{Cluster, Diagnosis, ServiceKey};
use crate::series::LabelSet;

/// One service (one `(host, binary)`) as of a poll; label sets are escaped already.
#[derive(Clone, Debug)]
pub struct ServiceState {
    /// The `services` row published for this service.
    pub id: i64,
    /// `host`, `binary`, `zone`: the identity labels of every per-service series.
    pub labels: LabelSet,
    /// The additional labels of `cinder_service_info`.
    pub info_labels: LabelSet,
    /// The labels of `openstack_cinder_agent_state`; built only when the database's
    /// `compatibility: {openstack_exporter: true}` at the poll, so that the memory is
    /// not paid otherwise.
    pub compat_labels: Option<LabelSet>,
    pub enabled: bool,
    pub report_count: i64,
    /// `updated_at or created_at`, what the API judges by.
    pub last_heartbeat: Option<i64>,
    /// `updated_at` alone, what the scheduler judges by.
    pub updated_at: Option<i64>,
    pub diagnosis: Diagnosis,
    /// Seconds `report_count` has certainly not advanced, as of the poll
    /// ([`Diagnosis::silence`]).
    pub heartbeat_silence: f64,
}

/// The row's text as stored (cut to the label bound, not escaped), for the status page
/// and the clusters: read back from the label sets, which hold it already, so that
/// the snapshot keeps each string once (at 10,000 services, a second copy cost
/// megabytes per snapshot alive). Borrowed unless the text needed escaping.
impl ServiceState {
    pub fn host(&self) -> Cow<'_, str> {
        label_value(&self.labels, "host")
    }

    pub fn binary(&self) -> Cow<'_, str> {
        label_value(&self.labels, "binary")
    }

    pub fn zone(&self) -> Cow<'_, str> {
        label_value(&self.labels, "zone")
    }

    pub fn disabled_reason(&self) -> Cow<'_, str> {
        label_value(&self.info_labels, "disabled_reason")
    }

    pub fn cluster(&self) -> Cow<'_, str> {
        label_value(&self.info_labels, "cluster")
    }

    /// The row's identity as its series show it, for the choice of one row per
    /// service.
    pub fn key(&self) -> ServiceKey<'_> {
        ServiceKey {
            binary: self.binary(),
            host: self.host(),
            last_heartbeat: self.last_heartbeat,
            id: self.id,
        }
    }
}

/// The unescaped value of label `name` in `set` (`name="value",…`), "" if absent.
fn label_value<'a>(set: &'a LabelSet, name: &str) -> Cow<'a, str> {
    let mut rest = set.as_str();
    while let Some((label, after)) = rest.split_once("=\"") {
        let (value, end) = escaped_value(after);
        if label == name {
            return value;
        }
        rest = after[end..].strip_prefix(',').unwrap_or("");
    }
    Cow::Borrowed("")
}

/// A label value's text up to its closing quote, unescaped, and the length taken
/// (closing quote included). The exposition escapes `\`, `"` and line feeds only.
fn escaped_value(text: &str) -> (Cow<'_, str>, usize) {
    let Some(end) = text.find(['"', '\\']) else {
        return (Cow::Borrowed(text), text.len());
    };
    if text.as_bytes()[end] == b'"' {
        return (Cow::Borrowed(&text[..end]), end + 1);
    }
    let mut value = String::from(&text[..end]);
    let mut chars = text[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (Cow::Owned(value), end + i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, escaped)) => value.push(escaped),
                None => {}
            },
            c => value.push(c),
        }
    }
    (Cow::Owned(value), text.len())
}

/// One cluster of the snapshot: its members (indices into [`Snapshot::services`]) and
/// the labels of its series, built once per poll.
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub cluster: Cluster,
    /// `cluster`, `binary`.
    pub labels: LabelSet,
}

/// The services table as one successful poll read it.
#[derive(Debug)]
pub struct Snapshot {
    /// Database UTC clock when the poll's statement ran, unix seconds.
    pub reference_time: f64,
    /// Exporter monotonic clock at the same moment: a scrape's reference time is
    /// `reference_time + (now - taken_at)`, so ages keep moving between polls and do
    /// not depend on the exporter's wall clock.
    pub taken_at: Instant,
    pub services: Vec<ServiceState>,
    /// The clusters of those services, by name then binary.
    pub clusters: Vec<ClusterState>,
    /// Whether the services carry openstack-exporter's labels
    /// ([`ServiceState::compat_labels`]): the setting in force at the poll.
    pub compat_labels: bool,
}

impl Snapshot {
    /// The reference clock at `now`.
    pub fn reference_now(&self, now: Instant) -> f64 {
        self.reference_time + now.saturating_duration_since(self.taken_at).as_secs_f64()
    }
}

/// How the polls are going, for the exporter's own metrics.
#[derive(Clone, Debug, Default)]
pub struct PollHealth {
    /// Whether the latest poll succeeded (`cinder_up`).
    pub last_poll_ok: bool,
    pub last_poll_duration_seconds: f64,
    pub errors_total: u64,
    /// Exporter wall clock of the latest successful poll, unix seconds.
    pub last_success_unix: Option<f64>,
    /// Exporter wall clock minus database clock, from the latest successful poll.
    pub database_clock_offset_seconds: Option<f64>,
}

/// Everything a scrape needs, replaced as a whole after every poll.
#[derive(Clone, Debug, Default)]
pub struct Published {
    /// The latest successful poll, kept through failures so that staleness can be
    /// judged; `None` until the first success.
    pub snapshot: Option<Arc<Snapshot>>,
    pub health: PollHealth,
}

#[cfg(test)]
impl Published {
    /// For unit tests: a successful poll of `services`, taken at `taken_at` when the
    /// database clock read `reference_time`, with no clusters. Its services carry
    /// openstack-exporter's labels if the first one does.
    pub fn polled(
        services: Vec<ServiceState>,
        reference_time: f64,
        taken_at: Instant,
    ) -> Published {
        let compat_labels = services.first().is_some_and(|s| s.compat_labels.is_some());
        Published {
            snapshot: Some(Arc::new(Snapshot {
                reference_time,
                taken_at,
                services,
                clusters: Vec::new(),
                compat_labels,
            })),
            health: PollHealth {
                last_poll_ok: true,
                ..PollHealth::default()
            },
        }
    }
}

/// The slot shared between the poller (one writer) and the scrapes (readers).
#[derive(Debug, Default)]
pub struct SharedState {
    current: RwLock<Arc<Published>>,
}

impl SharedState {
    /// The latest published state; the lock is held only to clone the `Arc`.
    pub fn current(&self) -> Arc<Published> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the published state.
    pub fn publish(&self, published: Published) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(published);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_read_back_from_the_label_sets() {
        let odd = "a \"quoted\" \\ back,slash=\"\nline é";
        let labels = LabelSet::new([("host", odd), ("binary", "cinder-volume"), ("zone", "")]);
        assert_eq!(label_value(&labels, "host"), odd);
        assert!(matches!(
            label_value(&labels, "binary"),
            Cow::Borrowed("cinder-volume")
        ));
        assert_eq!(label_value(&labels, "zone"), "");
        assert_eq!(label_value(&labels, "cluster"), "");
        let labels = LabelSet::new([("cluster", "c@b"), ("disabled_reason", odd)]);
        assert_eq!(label_value(&labels, "disabled_reason"), odd);
        assert_eq!(label_value(&labels, "cluster"), "c@b");
    }
}
