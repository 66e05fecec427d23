//! The databases being polled, one poller each: started at start-up, and on a reload
//! kept, told their new settings, restarted or stopped as the configuration says.
//!
//! A reload that leaves a database's [`Connection`](crate::config::Connection) as it
//! was keeps its poller, its connection pool and every service's diagnosis state: the
//! heartbeat intervals and clock-offset windows that take minutes to rebuild. Its
//! other settings reach the poller and every scrape through the one watch channel they
//! share ([`ServedDatabase::config`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{error, info, Instrument};

use crate::config::{Config, Setup};
use crate::metrics::own;
use crate::poller::Poller;
use crate::served::{Served, ServedDatabase};
use crate::shutdown::{self, Trigger};
use crate::snapshot::SharedState;

/// Every database polled, by target name (`None`: the top-level database).
#[derive(Default)]
pub struct Pollers {
    running: BTreeMap<Option<String>, Running>,
}

/// What applying a configuration did to one database's poller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new database: a poller started.
    Started,
    /// Nothing changed for it.
    Kept,
    /// The same connection with other settings: the poller and its diagnosis state
    /// are kept, and read the new settings.
    Updated,
    /// Another connection: a new poller replaced the old one, with no history.
    Restarted,
    /// No longer configured: its poller stopped.
    Stopped,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Started => "started",
            Change::Kept => "kept",
            Change::Updated => "updated",
            Change::Restarted => "restarted",
            Change::Stopped => "stopped",
        })
    }
}

/// What [`Pollers::apply`] did: the databases now served, and each one's change.
pub struct Applied {
    pub served: Served,
    /// Per database (`None`: the top-level one), sorted, including those stopped.
    pub changes: Vec<(Option<String>, Change)>,
}

impl Applied {
    /// One line per database: `top-level: kept`, `target east: restarted`.
    pub fn summary(&self) -> String {
        let mut text = String::new();
        for (name, change) in &self.changes {
            match name {
                None => text.push_str("top-level"),
                Some(name) => {
                    text.push_str("target ");
                    text.push_str(name);
                }
            }
            text.push_str(": ");
            text.push_str(&change.to_string());
            text.push('\n');
        }
        text
    }
}

/// One database's poller as seen from outside it.
struct Running {
    config: Arc<Config>,
    state: Arc<SharedState>,
    updates: watch::Sender<Arc<Config>>,
    stop: Trigger,
    stopped: oneshot::Receiver<()>,
}

impl Pollers {
    /// Makes the pollers match `setup`; returns what is served now and what changed.
    pub fn apply(&mut self, setup: Setup) -> Applied {
        let mut served = Served::default();
        served.unconfigured = setup.unconfigured.map(|why| why.to_string());
        let wanted = setup
            .main
            .map(|config| (None, config))
            .into_iter()
            .chain(setup.targets.into_iter().map(|t| (Some(t.name), t.config)));
        let mut changes = Vec::new();
        let mut next = BTreeMap::new();
        for (name, config) in wanted {
            let (running, change) = self.keep_or_start(name.as_deref(), Arc::new(config));
            served.insert(ServedDatabase {
                name: name.clone(),
                state: Arc::clone(&running.state),
                config: running.updates.subscribe(),
            });
            changes.push((name.clone(), change));
            next.insert(name, running);
        }
        for (name, gone) in std::mem::replace(&mut self.running, next) {
            gone.stop.fire();
            own::forget_target(name.as_deref().unwrap_or(""));
            changes.push((name, Change::Stopped));
        }
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, change) in &changes {
            info!(target = name.as_deref().unwrap_or(""), %change, "database poller");
        }
        Applied { served, changes }
    }

    /// The running poller of `name` told its new settings when its connection is
    /// unchanged; else a new one (the old one stopped).
    fn keep_or_start(&mut self, name: Option<&str>, config: Arc<Config>) -> (Running, Change) {
        match self.running.remove(&name.map(str::to_string)) {
            Some(mut running) if running.config.connection == config.connection => {
                let change = if *running.config == *config {
                    Change::Kept
                } else {
                    Change::Updated
                };
                running.config = Arc::clone(&config);
                running.updates.send_replace(config);
                (running, change)
            }
            Some(previous) => {
                previous.stop.fire();
                (Running::start(name, config), Change::Restarted)
            }
            None => (Running::start(name, config), Change::Started),
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

impl Running {
    /// Starts a poller for `config` with a fresh state; a target's log lines name it.
    fn start(name: Option<&str>, config: Arc<Config>) -> Running {
        let (updates, receiver) = watch::channel(Arc::clone(&config));
        let state = Arc::new(SharedState::default());
        let (stop, shutdown) = shutdown::channel();
        let poller = Poller::new(
            Arc::clone(&config),
            name.unwrap_or("").to_string(),
            Arc::clone(&state),
        );
        let (thread, span) = match name {
            None => ("poller".to_string(), tracing::Span::none()),
            Some(name) => (format!("poll-{name}"), tracing::info_span!("target", name)),
        };
        let run = poller.run(receiver, shutdown).instrument(span);
        let stopped = spawn_poller(run, thread);
        Running {
            config,
            state,
            updates,
            stop,
            stopped,
        }
    }
}

/// Runs a poller on a thread and runtime of its own. Its allocations per poll (the
/// rows and the new snapshot: tens of megabytes at 50,000 services) then always come
/// from one malloc arena, instead of from whichever worker thread the task last ran on,
/// each of which would keep its own arena grown to that size. The receiver completes
/// when the poller has stopped. Each database has its own poller thread, so a slow or
/// hanging database delays no other.
fn spawn_poller(
    run: impl std::future::Future<Output = ()> + Send + 'static,
    name: String,
) -> oneshot::Receiver<()> {
    let (stopped, receiver) = oneshot::channel();
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime.block_on(run),
            Err(e) => error!("cannot start the poller's runtime: {e}"),
        }
        let _ = stopped.send(());
    });
    if let Err(e) = thread {
        error!("cannot start the poller thread: {e}");
    }
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_setup;

    /// Databases where nothing listens: the pollers start and fail quietly.
    fn setup(yaml: &str) -> Setup {
        parse_setup(yaml, "t.yml", None).unwrap()
    }

    const TWO: &str = "\
database: {url: 'mysql://u:p@127.0.0.1:1/cinder'}
targets:
  east: {database: {url: 'mysql://u:p@127.0.0.1:1/east'}}
  west: {database: {url: 'mysql://u:p@127.0.0.1:1/west'}}
";

    fn changes(applied: &Applied) -> Vec<(&str, Change)> {
        applied
            .changes
            .iter()
            .map(|(n, c)| (n.as_deref().unwrap_or(""), *c))
            .collect()
    }

    #[tokio::test]
    async fn a_reload_keeps_updates_restarts_and_stops_pollers() {
        let mut pollers = Pollers::default();
        let first = pollers.apply(setup(TWO));
        use Change::*;
        assert_eq!(
            changes(&first),
            [("", Started), ("east", Started), ("west", Started)]
        );
        let east_state = Arc::clone(&first.served.target("east").unwrap().state);

        // east: same connection, other threshold; west: other query_timeout; the
        // top level unchanged; a new target north.
        let reloaded = TWO
            .replace("/east'}}", "/east'}, service_down_time: 90s}")
            .replace("/west'}}", "/west'}, query_timeout: 9s}")
            + "  north: {database: {url: 'mysql://u:p@127.0.0.1:1/north'}}\n";
        let second = pollers.apply(setup(&reloaded));
        assert_eq!(
            changes(&second),
            [
                ("", Kept),
                ("east", Updated),
                ("north", Started),
                ("west", Restarted)
            ]
        );
        let east = second.served.target("east").unwrap();
        assert!(
            Arc::ptr_eq(&east.state, &east_state),
            "east keeps its state"
        );
        // One road: the served database (and so every scrape) reads the new settings.
        let earlier = first.served.target("east").unwrap();
        for database in [east, earlier] {
            assert_eq!(
                database.config().judging.service_down_time,
                Duration::from_secs(90)
            );
        }

        let third = pollers.apply(setup(
            "targets:\n  north: {database: {url: 'mysql://u:p@127.0.0.1:1/north'}}\n",
        ));
        assert_eq!(
            changes(&third),
            [
                ("", Stopped),
                ("east", Stopped),
                ("north", Kept),
                ("west", Stopped)
            ]
        );
        assert!(third.served.main.is_none());
        pollers.stop(Duration::from_secs(5)).await;
    }
}
