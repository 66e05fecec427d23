//! The databases being polled, one poller each: started at start-up, and on a reload
//! kept, told their new settings, restarted or stopped as the configuration says.
//!
//! A reload that leaves a database's [`Connection`](crate::config::Connection) as it
//! was keeps its poller, its connection pool and every service's diagnosis state: the
//! heartbeat intervals and clock-offset windows that take minutes to rebuild. Its
//! other settings reach the poller and every scrape through the one watch channel they
//! share ([`ServedDatabase::config`]).
//!
//! A database whose poller is replaced (another connection) or that reappears under
//! another name (a target renamed, its connection unchanged) is handed over: scrapes
//! go on reading what the previous poller published until the new one has answered
//! ([`Handover`]). A stopped poller abandons its poll at once and kills its query on
//! the server, so that its thread, socket and server connection go within
//! `query_timeout` however long the query would have waited.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tracing::{error, info, Instrument};

use crate::config::{Config, Setup};
use crate::judgement::shown_state;
use crate::metrics::own;
use crate::poller::Poller;
use crate::served::{Handover, Served, ServedDatabase};
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
    /// Another connection: a new poller replaced the old one, with no history; what
    /// the old one published is served until the new one answers.
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
    /// What is served until `state` has answered.
    handover: Arc<Handover>,
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
        let wanted: Vec<_> = wanted.collect();
        let mut renamed = self.renamed(&wanted);
        let mut changes = Vec::new();
        let mut next = BTreeMap::new();
        for (name, config) in wanted {
            let config = Arc::new(config);
            let (running, change) = match renamed.remove(&name) {
                Some(previous) => (
                    Running::start(name.as_deref(), config, Some(previous)),
                    Change::Started,
                ),
                None => self.keep_or_start(name.as_deref(), config),
            };
            served.insert(ServedDatabase {
                name: name.clone(),
                state: Arc::clone(&running.state),
                config: running.updates.subscribe(),
                handover: Arc::clone(&running.handover),
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

    /// For each database new to the exporter whose connection is that of a database
    /// no longer wanted (a target renamed): the state to hand over from.
    fn renamed(
        &self,
        wanted: &[(Option<String>, Config)],
    ) -> BTreeMap<Option<String>, Arc<SharedState>> {
        let is_wanted = |name: &Option<String>| wanted.iter().any(|(n, _)| n == name);
        let mut leaving: Vec<&Running> = self
            .running
            .iter()
            .filter(|(name, _)| !is_wanted(name))
            .map(|(_, running)| running)
            .collect();
        let mut found = BTreeMap::new();
        for (name, config) in wanted {
            if self.running.contains_key(name) {
                continue;
            }
            let same = |r: &&Running| r.config.connection == config.connection;
            if let Some(at) = leaving.iter().position(same) {
                let previous = leaving.swap_remove(at);
                let shown = shown_state(&previous.state, &previous.handover);
                found.insert(name.clone(), shown);
            }
        }
        found
    }

    /// The running poller of `name` told its new settings when its connection is
    /// unchanged; else a new one (the old one stopped), handed over from it.
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
                let shown = shown_state(&previous.state, &previous.handover);
                (Running::start(name, config, Some(shown)), Change::Restarted)
            }
            None => (Running::start(name, config, None), Change::Started),
        }
    }

    /// Stops every poller and waits for them, at most `grace`; whether all stopped.
    pub async fn stop(self, grace: Duration) -> bool {
        for running in self.running.values() {
            running.stop.fire();
        }
        let all = async {
            for running in self.running.into_values() {
                let _ = running.stopped.await;
            }
        };
        let stopped = tokio::time::timeout(grace, all).await.is_ok();
        if !stopped {
            error!("pollers did not stop in time");
        }
        stopped
    }
}

impl Running {
    /// Starts a poller for `config` with a fresh state, served once it has answered
    /// (`previous` until then); a target's log lines name it.
    fn start(
        name: Option<&str>,
        config: Arc<Config>,
        previous: Option<Arc<SharedState>>,
    ) -> Running {
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
            Some(name) => (
                format!("poll-{name}"),
                tracing::info_span!("poller", target = name),
            ),
        };
        let run = poller.run(receiver, shutdown).instrument(span);
        let stopped = spawn_poller(run, thread);
        Running {
            config,
            state,
            handover: Arc::new(Handover::from(previous)),
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
    use crate::judgement::Judgement;
    use std::time::Instant;

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

    /// A server that takes connections and never says a word: a poll of it hangs.
    fn silent_server() -> (std::net::TcpListener, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        (listener, port)
    }

    /// A first reading with no services, as a poller would publish it.
    fn publish_reading(state: &SharedState) {
        state.publish(crate::snapshot::Published {
            snapshot: Some(Arc::new(crate::snapshot::Snapshot {
                reference_time: 1_000.0,
                taken_at: std::time::Instant::now(),
                services: Vec::new(),
                clusters: Vec::new(),
                compat_labels: false,
            })),
            health: crate::snapshot::PollHealth {
                last_poll_ok: true,
                ..Default::default()
            },
        });
    }

    fn shown(served: &Served, name: &str) -> Arc<SharedState> {
        let database = served.target(name).unwrap();
        shown_state(&database.state, &database.handover)
    }

    #[tokio::test]
    async fn a_restarted_or_renamed_database_serves_the_previous_reading_until_the_new_poller_answers(
    ) {
        let (_server, port) = silent_server();
        let yaml = |name: &str, timeout: &str| {
            format!(
                "targets:\n  {name}: {{database: {{url: 'mysql://u:p@127.0.0.1:{port}/c'}}, \
                 query_timeout: {timeout}}}\n"
            )
        };
        let mut pollers = Pollers::default();
        let first = pollers.apply(setup(&yaml("east", "1h")));
        // Nothing answered yet: the target is shown its own (empty) state.
        let original = Arc::clone(&first.served.target("east").unwrap().state);
        assert!(Arc::ptr_eq(&shown(&first.served, "east"), &original));
        publish_reading(&original);

        use Change::*;
        // Another query_timeout: a new poller, which hangs; the reading stays served.
        let second = pollers.apply(setup(&yaml("east", "2h")));
        assert_eq!(changes(&second), [("east", Restarted)]);
        assert!(Arc::ptr_eq(&shown(&second.served, "east"), &original));
        let judged = Judgement::of(second.served.target("east").unwrap(), Instant::now());
        assert!(judged.services().is_some() && judged.health().last_poll_ok);

        // Renamed, same connection, before the second poller answered: the reading
        // is handed over again, from the poller that last answered.
        let third = pollers.apply(setup(&yaml("west", "2h")));
        assert_eq!(changes(&third), [("east", Stopped), ("west", Started)]);
        assert!(Arc::ptr_eq(&shown(&third.served, "west"), &original));

        // The new poller answers (a failure is an answer): its own state from then on.
        let west = third.served.target("west").unwrap();
        west.state.publish(crate::snapshot::Published {
            snapshot: None,
            health: crate::snapshot::PollHealth {
                errors_total: 1,
                ..Default::default()
            },
        });
        assert!(Arc::ptr_eq(&shown(&third.served, "west"), &west.state));
        assert!(west.handover.previous().is_none(), "the reading is let go");

        // Pollers stopped in the middle of a poll that would hang for an hour end now.
        assert!(pollers.stop(Duration::from_secs(10)).await);
    }

    fn changes(applied: &Applied) -> Vec<(&str, Change)> {
        applied
            .changes
            .iter()
            .map(|(n, c)| (n.as_deref().unwrap_or(""), *c))
            .collect()
    }

    /// A top-level cinder.conf that does not exist yet reaches what is served, for
    /// `/metrics` (`cinder_up 0`) and `/` to say what to set.
    #[tokio::test]
    async fn a_database_not_configured_yet_is_served_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("cinder.conf");
        let yaml = format!("cinder_conf: {}\n", missing.display());
        let mut pollers = Pollers::default();
        let applied = pollers.apply(setup(&yaml));
        let why = applied.served.unconfigured.expect("not configured yet");
        assert!(why.contains("cinder_conf"), "{why}");
        assert!(applied.served.main.is_none());
        pollers.stop(Duration::from_secs(5)).await;
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
