//! The databases being polled, one poller each: started at start-up, and on a reload
//! kept, told their new settings, started or stopped as the configuration says.
//!
//! A reload that leaves a database as it was (the same URL, TLS and query timeout)
//! keeps its poller, its connection pool and every service's diagnosis state: the
//! heartbeat intervals and clock-offset windows that take minutes to rebuild. Its
//! other settings apply at once, thresholds from the next scrape and `poll_interval`
//! from the next wait.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{error, info, Instrument};

use crate::config::{Config, Setup};
use crate::poller::Poller;
use crate::shutdown::{self, Trigger};
use crate::snapshot::SharedState;
use crate::targets::{Endpoint, Targets};
use crate::web::Served;

/// Every database polled, by target name (`None`: the top-level database).
#[derive(Default)]
pub struct Databases {
    running: BTreeMap<Option<String>, Running>,
}

/// One database's poller as seen from outside it.
struct Running {
    config: Arc<Config>,
    state: Arc<SharedState>,
    updates: watch::Sender<Arc<Config>>,
    stop: Trigger,
    stopped: oneshot::Receiver<()>,
}

impl Databases {
    /// Makes the pollers match `setup` and returns what the web side serves.
    pub fn apply(&mut self, setup: Setup) -> Served {
        let wanted = setup
            .main
            .map(|config| (None, config))
            .into_iter()
            .chain(setup.targets.into_iter().map(|t| (Some(t.name), t.config)));
        let mut served = Served {
            main: None,
            targets: Targets::default(),
        };
        let mut next = BTreeMap::new();
        for (name, config) in wanted {
            let config = Arc::new(config);
            let running = self.keep_or_start(name.as_deref(), Arc::clone(&config));
            let endpoint = Endpoint::new(&config, Arc::clone(&running.state), name.is_none());
            match &name {
                None => served.main = Some(endpoint),
                Some(target) => served.targets.insert(target.clone(), endpoint),
            }
            next.insert(name, running);
        }
        for (name, gone) in std::mem::replace(&mut self.running, next) {
            info!(
                target = name.as_deref().unwrap_or(""),
                "database no longer configured; its poller stops"
            );
            gone.stop.fire();
        }
        served
    }

    /// The running poller of `name` told its new settings when it reads the same
    /// database; else a new one (the old one stopped).
    fn keep_or_start(&mut self, name: Option<&str>, config: Arc<Config>) -> Running {
        let target = name.unwrap_or("");
        match self.running.remove(&name.map(str::to_string)) {
            Some(mut running) if reads_same_database(&running.config, &config) => {
                if *running.config != *config {
                    info!(
                        target,
                        "settings changed; the poller and its diagnosis state are kept"
                    );
                }
                running.config = Arc::clone(&config);
                running.updates.send_replace(config);
                running
            }
            previous => {
                if let Some(previous) = previous {
                    info!(
                        target,
                        "database settings changed; a new poller starts with no history"
                    );
                    previous.stop.fire();
                }
                Running::start(name, config)
            }
        }
    }

    /// Stops every poller and waits for them, at most `grace`.
    pub async fn stop(self, grace: Duration) {
        for running in self.running.values() {
            running.stop.fire();
        }
        let all = async {
            for running in self.running.into_values() {
                let _ = running.stopped.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            error!("pollers did not stop in time");
        }
    }
}

/// Whether a poller for `old` can go on for `new`: the same database reached the same
/// way (the pool's connection options include the query timeout).
fn reads_same_database(old: &Config, new: &Config) -> bool {
    old.database == new.database && old.query_timeout == new.query_timeout
}

impl Running {
    /// Starts a poller for `config` with a fresh state; a target's log lines name it.
    fn start(name: Option<&str>, config: Arc<Config>) -> Running {
        let (updates, receiver) = watch::channel(Arc::clone(&config));
        let state = Arc::new(SharedState::default());
        let (stop, shutdown) = shutdown::channel();
        let poller = Poller::new(receiver, Arc::clone(&state));
        let (thread, span) = match name {
            None => ("poller".to_string(), tracing::Span::none()),
            Some(name) => (format!("poll-{name}"), tracing::info_span!("target", name)),
        };
        let stopped = spawn_poller(poller, thread, span, shutdown);
        Running {
            config,
            state,
            updates,
            stop,
            stopped,
        }
    }
}

/// Runs the poller on a thread and runtime of its own. Its allocations per poll (the
/// rows and the new snapshot: tens of megabytes at 50,000 services) then always come
/// from one malloc arena, instead of from whichever worker thread the task last ran on,
/// each of which would keep its own arena grown to that size. The receiver completes
/// when the poller has stopped. Each database has its own poller thread, so a slow or
/// hanging database delays no other.
fn spawn_poller(
    poller: Poller,
    name: String,
    span: tracing::Span,
    shutdown: shutdown::Shutdown,
) -> oneshot::Receiver<()> {
    let (stopped, receiver) = oneshot::channel();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(poller.run(shutdown).instrument(span)),
            Err(e) => error!("cannot start the poller's runtime: {e}"),
        }
        let _ = stopped.send(());
    });
    if let Err(e) = thread {
        error!("cannot start the poller thread: {e}");
    }
    receiver
}
