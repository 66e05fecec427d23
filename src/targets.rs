//! The databases one exporter serves: the top-level one on `/metrics` (when
//! configured) and the named `targets:` on `/probe?target=NAME`. Each has its own
//! configuration, published state, render settings and poller, so one target's
//! database going away, or its diagnosis state, touches no other target; and each is
//! polled in the background once per `poll_interval` whatever the number of scrapers.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::metrics::RenderSettings;
use crate::snapshot::SharedState;

/// One database as the web side sees it: what the poller publishes and how to render
/// it.
pub struct Endpoint {
    pub state: Arc<SharedState>,
    pub settings: RenderSettings,
}

impl Endpoint {
    /// The database `config` describes, whose poller publishes into `state` (kept
    /// across a reload that leaves the database as it was). `process`: whether its
    /// exposition also carries the exporter process's metrics (`/metrics` does,
    /// `/probe` does not).
    pub fn new(config: &Config, state: Arc<SharedState>, process: bool) -> Endpoint {
        let settings = RenderSettings {
            service_down_time: config.service_down_time,
            report_interval: config.report_interval,
            stale_after: config.stale_after,
            build_info: RenderSettings::build_labels(),
            compat: config.compatibility.openstack_exporter,
            process,
        };
        Endpoint { state, settings }
    }

    /// Whether the first poll has ended, well or not: from then on a scrape says
    /// something true about the database (`cinder_up` 1 or 0).
    pub fn has_answered(&self) -> bool {
        let current = self.state.current();
        current.snapshot.is_some() || current.health.errors_total > 0
    }
}

/// The named targets, by name.
#[derive(Default)]
pub struct Targets {
    by_name: BTreeMap<String, Endpoint>,
}

impl Targets {
    pub fn insert(&mut self, name: String, endpoint: Endpoint) {
        self.by_name.insert(name, endpoint);
    }

    pub fn get(&self, name: &str) -> Option<&Endpoint> {
        self.by_name.get(name)
    }

    /// The names, sorted, for error messages and the landing page.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Endpoint)> {
        self.by_name.iter().map(|(name, e)| (name.as_str(), e))
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
