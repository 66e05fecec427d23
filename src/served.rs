//! The databases one exporter serves, as the web side sees them: the top-level one on
//! `/metrics` (when configured) and the named `targets:` on `/probe?target=NAME`.
//!
//! Everything that describes one served database lives together in
//! [`ServedDatabase`]: what its poller publishes, and the configuration in force. The
//! configuration travels one road: the poller and every scrape read the same watch
//! channel, so a reload that updates one updates the other.
//!
//! A reload that starts a new poller for a database (another connection, or a target
//! renamed) hands over: until the new poller has answered, what was served before is
//! served still ([`Handover`]; `judgement` decides when the new one has answered).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::config::Config;
use crate::snapshot::SharedState;

/// One database being served.
#[derive(Clone)]
pub struct ServedDatabase {
    /// The name under `targets:`; `None` for the top-level database.
    pub name: Option<String>,
    /// What its poller publishes.
    pub state: Arc<SharedState>,
    /// The configuration in force, as its poller reads it too.
    pub config: watch::Receiver<Arc<Config>>,
    /// What was served before a reload replaced the poller, until `state` answers.
    pub handover: Arc<Handover>,
}

/// The state a replaced poller published, kept for scrapes until the poller that
/// replaced it has answered, then let go (so its snapshot's memory goes too).
#[derive(Debug, Default)]
pub struct Handover {
    previous: Mutex<Option<Arc<SharedState>>>,
}

impl Handover {
    /// A handover from `previous` (none: a database new to the exporter).
    pub fn from(previous: Option<Arc<SharedState>>) -> Handover {
        Handover {
            previous: Mutex::new(previous),
        }
    }

    /// The previous state, until [`Handover::end`].
    pub fn previous(&self) -> Option<Arc<SharedState>> {
        self.lock().clone()
    }

    /// Lets the previous state go: the new poller has answered.
    pub fn end(&self) {
        self.lock().take();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<SharedState>>> {
        self.previous.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ServedDatabase {
    /// The configuration in force now.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.config.borrow())
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
