//! The databases one exporter serves, as the web side sees them: the top-level one on
//! `/metrics` (when configured) and the named `targets:` on `/probe?target=NAME`.
//!
//! Everything that describes one served database lives together in
//! [`ServedDatabase`]: what its poller publishes, and the configuration in force. The
//! configuration travels one road: the poller and every scrape read the same watch
//! channel, so a reload that updates one updates the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::snapshot::{Published, SharedState};

/// One database being served.
#[derive(Clone)]
pub struct ServedDatabase {
    /// The name under `targets:`; `None` for the top-level database.
    pub name: Option<String>,
    /// What its poller publishes.
    pub state: Arc<SharedState>,
    /// The configuration in force, as its poller reads it too.
    pub config: watch::Receiver<Arc<Config>>,
}

impl ServedDatabase {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
    }

    /// The latest published state.
    pub fn published(&self) -> Arc<Published> {
        self.state.current()
    }
}

/// Every database served: replaced whole when a reload changes them.
#[derive(Clone, Default)]
pub struct Served {
    /// The top-level database, served on the telemetry path; `None` with only targets.
    pub main: Option<ServedDatabase>,
    /// The named databases, served on `/probe?target=NAME`, by name.
    targets: BTreeMap<String, ServedDatabase>,
    /// Why the top-level database is not configured yet (`main` is then `None`):
    /// `/metrics` says `cinder_up 0`, `/` and `/-/ready` say this.
    pub unconfigured: Option<String>,
}

impl Served {
    /// Adds a database: the top-level one when it has no name, else a target.
    pub fn insert(&mut self, database: ServedDatabase) {
        match &database.name {
            None => self.main = Some(database),
            Some(name) => {
                self.targets.insert(name.clone(), database);
            }
        }
    }

    /// The target named `name`.
    pub fn target(&self, name: &str) -> Option<&ServedDatabase> {
        self.targets.get(name)
    }

    /// The target names, sorted, for error messages and the landing page.
    pub fn target_names(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// The targets, by name.
    pub fn targets(&self) -> impl Iterator<Item = &ServedDatabase> {
        self.targets.values()
    }

    /// Whether `targets:` names any database.
    pub fn has_targets(&self) -> bool {
        !self.targets.is_empty()
    }
}
