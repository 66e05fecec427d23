//! The background task that reads the services table: one query per poll, whatever
//! the number of scrapers, with reconnect and backoff, and the per-row heartbeat
//! trackers that the diagnosis needs.
//!
//! When to poll ([`run_schedule`]) is kept apart from what a poll does ([`Poller`]),
//! so that the schedule (intervals, backoff, a reload's new `poll_interval`) is tested
//! on a paused clock without a database.
//!
//! A poll that is abandoned (it ran past `query_timeout`, or the poller was stopped
//! in the middle of it) is ended on the server too: the server would otherwise go on
//! waiting (on a locked table, say) with a connection of ours, after we stopped
//! listening. A second connection sends `KILL QUERY` for it, which a user may always
//! send for its own connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Pool};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cinder::{
    choose_rows, group_clusters, new_collisions, Collision, Diagnosis, HeartbeatTracker, Member,
    NameComparison, ServiceKey, ServiceRow, StampWindow,
};
use crate::config::Config;
use crate::database::{
    connect, detect_columns, identify_server, read_services, ReadError, Reading, Schema, Server,
    POLL_QUERY,
};
use crate::metrics::own;
use crate::series::{agent_state_labels, cluster_labels, identity_labels, info_labels};
use crate::shutdown::Shutdown;
use crate::snapshot::{ClusterState, PollHealth, Published, ServiceState, SharedState, Snapshot};

/// Longest wait between attempts while the database is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the schedule drives: one poll with the settings in force, saying whether it
/// succeeded.
pub(crate) trait Polls {
    async fn poll(&mut self, config: &Arc<Config>) -> bool;
}

/// Polls once per `poll_interval` (backing off while polls fail) until `shutdown`,
/// or until the sender of `updates` is gone. The settings are read from `updates`
/// before every poll and while waiting: a reload's new `poll_interval` moves the
/// current wait at once. A shutdown abandons a poll under way (dropping it).
pub(crate) async fn run_schedule(
    polls: &mut impl Polls,
    mut updates: watch::Receiver<Arc<Config>>,
    mut shutdown: Shutdown,
) {
    let mut failures = 0u32;
    'polls: loop {
        let config = Arc::clone(&updates.borrow_and_update());
        let started = tokio::time::Instant::now();
        let succeeded = tokio::select! {
            succeeded = polls.poll(&config) => succeeded,
            _ = shutdown.requested() => break 'polls,
        };
        failures = if succeeded {
            0
        } else {
            failures.saturating_add(1)
        };
        let mut interval = config.polling.poll_interval;
        loop {
            let next = started + delay(interval, failures);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => continue 'polls,
                changed = updates.changed() => match changed {
                    Ok(()) => interval = updates.borrow_and_update().polling.poll_interval,
                    // The database is no longer served.
                    Err(_) => break 'polls,
                },
                _ = shutdown.requested() => break 'polls,
            }
        }
    }
}

/// The wait after a poll: the interval when healthy; doubling backoff while polls
/// fail, up to 8 intervals and at most [`MAX_BACKOFF`] (never below one interval).
fn delay(interval: Duration, failures: u32) -> Duration {
    if failures == 0 {
        return interval;
    }
    let cap = interval.max(MAX_BACKOFF.min(interval * 8));
    let factor = 1u32 << (failures - 1).min(16);
    interval.saturating_mul(factor).min(cap)
}

/// What one read of the table gives: the reading, the services chosen, their clusters.
type Read = (Reading, Vec<ServiceState>, Vec<ClusterState>);

/// What a poller keeps of one row between polls.
#[derive(Debug)]
struct Followed {
    /// The number of the latest poll that saw the row.
    seen: u64,
    /// Where the row is in the published snapshot's services, if it is published:
    /// the next poll shares its label sets from there when they have not changed.
    published: Option<u32>,
    tracker: HeartbeatTracker,
}

/// Owns the database pool and all state that lives across polls.
pub struct Poller {
    /// The settings of the poll under way.
    config: Arc<Config>,
    /// The target's name for its series ("" for the top-level database).
    target: String,
    state: Arc<SharedState>,
    /// How to connect: the pool's options, and a second connection's to end a query.
    opts: Opts,
    pool: Pool,
    /// The server's id of the connection a poll is using, while it uses it: a poll
    /// dropped in the middle leaves it set, and the query is then killed.
    in_flight: Option<u32>,
    /// The columns as the latest poll found them. `None` at start and after a failure:
    /// the next poll first asks information_schema, whose answer explains a missing
    /// grant or table better than the query's error would.
    schema: Option<Schema>,
    /// The server and how it keeps cinder's stamps; asked with the schema.
    server: Option<Server>,
    /// How the database compares `cluster_name` (its collation); read with the schema.
    cluster_names: NameComparison,
    /// Per row id, what is followed across polls. State survives failed polls (an
    /// outage is not a clock step); rows that disappear take their state with them.
    trackers: HashMap<i64, Followed>,
    polls: u64,
    health: PollHealth,
    snapshot: Option<Arc<Snapshot>>,
    consecutive_failures: u32,
    reported_problems: Vec<String>,
    /// The collisions of the latest poll, sorted by binary then host.
    reported_collisions: Vec<Collision>,
}

impl Poller {
    /// Prepares the pool for `config`'s connection (which a poller keeps for life); no
    /// connection is made until the first poll, so the exporter starts (and serves
    /// `cinder_up 0`) even when the database is down.
    pub fn new(config: Arc<Config>, target: String, state: Arc<SharedState>) -> Poller {
        let connection = &config.connection;
        let opts = Opts::from(
            connection
                .database
                .connection_options(connection.query_timeout),
        );
        Poller {
            config,
            target,
            state,
            pool: Pool::new(opts.clone()),
            opts,
            in_flight: None,
            schema: None,
            server: None,
            cluster_names: NameComparison::CINDER_SCHEMA,
            trackers: HashMap::new(),
            polls: 0,
            health: PollHealth::default(),
            snapshot: None,
            consecutive_failures: 0,
            reported_problems: Vec::new(),
            reported_collisions: Vec::new(),
        }
    }

    /// Polls on schedule until shutdown (or until the database is no longer served),
    /// then ends the query of a poll it abandoned and closes the pool.
    pub async fn run(mut self, updates: watch::Receiver<Arc<Config>>, shutdown: Shutdown) {
        run_schedule(&mut self, updates, shutdown).await;
        self.end_abandoned_query().await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.disconnect()).await;
    }

    /// Kills, from a second connection, the query of a poll that was dropped in the
    /// middle, within `query_timeout`. Whatever the outcome, the connection itself is
    /// closed with the pool (or when the poller's runtime ends).
    async fn end_abandoned_query(&mut self) {
        let Some(id) = self.in_flight.take() else {
            return;
        };
        let opts = self.opts.clone();
        let kill = async move {
            let mut conn = Conn::new(opts).await?;
            let killed = conn.query_drop(format!("KILL QUERY {id}")).await;
            let _ = conn.disconnect().await;
            killed
        };
        match tokio::time::timeout(self.config.connection.query_timeout, kill).await {
            Ok(Ok(())) => debug!(connection = id, "abandoned query killed"),
            Ok(Err(error)) => debug!(connection = id, %error, "cannot kill the abandoned query"),
            Err(_) => debug!(connection = id, "killing the abandoned query timed out"),
        }
    }

    /// One poll: read, update trackers, publish. Failures are published too.
    async fn poll_once(&mut self) -> bool {
        let started = Instant::now();
        let timeout = self.config.connection.query_timeout;
        let result = match tokio::time::timeout(timeout, self.read()).await {
            Ok(result) => result,
            Err(_) => {
                self.end_abandoned_query().await;
                Err(ReadError::TimedOut(timeout))
            }
        };
        let ok = result.is_ok();
        match result {
            Ok((reading, services, clusters)) => {
                if self.consecutive_failures > 0 {
                    info!(
                        after_failures = self.consecutive_failures,
                        "database polls recovered"
                    );
                }
                self.consecutive_failures = 0;
                self.health.last_poll_ok = true;
                self.health.last_success_unix = Some(reading.sent_at_unix);
                self.health.database_clock_offset_seconds =
                    Some(reading.sent_at_unix - reading.reference_time);
                self.report_problems(&reading.problems);
                self.snapshot = Some(Arc::new(Snapshot {
                    reference_time: reading.reference_time,
                    taken_at: reading.sent_at,
                    services,
                    clusters,
                    compat_labels: self.config.output.compatibility.openstack_exporter,
                }));
                self.health.last_poll_duration_seconds = started.elapsed().as_secs_f64();
            }
            Err(error) => {
                self.consecutive_failures += 1;
                self.health.last_poll_ok = false;
                self.health.errors_total += 1;
                self.health.last_poll_duration_seconds = started.elapsed().as_secs_f64();
                // Re-read the schema next time: the failure may be an upgrade.
                self.schema = None;
                if self.consecutive_failures == 1 {
                    warn!(database = %self.config.connection.database.redacted(), %error, "poll failed");
                } else {
                    debug!(failures = self.consecutive_failures, %error, "poll failed again");
                }
            }
        }
        own::observe_poll(&self.target, self.health.last_poll_duration_seconds);
        self.state.publish(Published {
            snapshot: self.snapshot.clone(),
            health: self.health.clone(),
        });
        ok
    }

    /// Reads the table, feeding each row to its tracker as it arrives and keeping only
    /// what the snapshot needs of it. Trackers of rows that are gone are dropped only
    /// once the whole table has been read.
    async fn read(&mut self) -> Result<Read, ReadError> {
        let address = self.config.connection.database.address();
        let mut conn = connect(&self.pool, &address).await?;
        self.in_flight = Some(conn.id());
        let read = self.read_on(&mut conn).await;
        self.in_flight = None;
        read
    }

    /// [`Poller::read`] on the connection `conn`.
    async fn read_on(&mut self, conn: &mut Conn) -> Result<Read, ReadError> {
        if self.schema.is_none() {
            let (schema, collation) = detect_columns(conn).await?;
            debug!(
                absent = schema.absent().join(","),
                cluster_name_collation = collation.as_deref(),
                query = POLL_QUERY,
                "services table columns detected"
            );
            self.schema = Some(schema);
            self.cluster_names = NameComparison::of_collation(collation.as_deref());
            let server = identify_server(conn).await?;
            if self.server.as_ref() != Some(&server) {
                info!(
                    version = server.version,
                    stored_seconds = server.stored_seconds(),
                    "database server identified; clock-offset bounds follow how it stores seconds"
                );
                self.server = Some(server);
            }
        }
        self.polls += 1;
        let poll = self.polls;
        let stamps = self
            .server
            .as_ref()
            .map_or(StampWindow::TRUNCATED, |s| s.stamps);
        let trackers = &mut self.trackers;
        let compat = self.config.output.compatibility.openstack_exporter;
        let published = self.snapshot.clone();
        let published = published
            .as_ref()
            .map_or(&[][..], |s| s.services.as_slice());
        let mut services = Vec::with_capacity(trackers.len());
        let reading = read_services(conn, |reference_time, row| {
            let followed = trackers.entry(row.id).or_insert_with(|| Followed {
                seen: poll,
                published: None,
                tracker: HeartbeatTracker::new(),
            });
            followed.seen = poll;
            let tracker = &mut followed.tracker;
            tracker.observe(reference_time, row.report_count, row.updated_at, stamps);
            let previous = followed
                .published
                .take()
                .and_then(|i| published.get(i as usize))
                .filter(|p| p.id == row.id);
            let diagnosis = tracker.diagnosis();
            services.push(service_state(
                &row,
                diagnosis,
                reference_time,
                compat,
                previous,
            ));
        })
        .await?;
        trackers.retain(|_, followed| followed.seen == poll);
        self.follow_schema(&reading.schema);
        self.choose_published(&mut services, reading.reference_time);
        let clusters = clusters_of(&services, self.cluster_names);
        Ok((reading, services, clusters))
    }

    /// Keeps one row per service in `services` (warning of collisions), in the
    /// snapshot's order, and notes where each kept row now is: the next poll shares
    /// its label sets from there.
    fn choose_published(&mut self, services: &mut Vec<ServiceState>, reference_time: f64) {
        let down_time = self.config.judging.service_down_time.as_secs_f64();
        let choice = {
            let keys: Vec<ServiceKey<'_>> = services.iter().map(ServiceState::key).collect();
            choose_rows(&keys, reference_time, down_time)
        };
        self.report_collisions(choice.collisions);
        keep_in_order(services, &choice.kept);
        for (position, service) in services.iter().enumerate() {
            if let Some(followed) = self.trackers.get_mut(&service.id) {
                followed.published = u32::try_from(position).ok();
            }
        }
    }

    /// Notes a change of the table's columns (a cinder upgrade while running): the
    /// poll has already read the new columns, this only tells the operator.
    fn follow_schema(&mut self, found: &Schema) {
        if let Some(known) = &self.schema {
            if !known.same_columns(found) {
                info!(
                    absent = found.absent().join(","),
                    was_absent = known.absent().join(","),
                    "services table columns changed (cinder db sync?); reading the new ones"
                );
            }
        }
        self.schema = Some(found.clone());
    }

    /// Warns about each service that several live rows claim, naming the row
    /// published and those left out: once per change of the set of colliding rows,
    /// quiet while the same rows keep colliding, whichever of them is published.
    fn report_collisions(&mut self, collisions: Vec<Collision>) {
        for collision in new_collisions(&self.reported_collisions, &collisions) {
            let left_out: Vec<i64> = collision
                .rows
                .iter()
                .copied()
                .filter(|id| *id != collision.kept)
                .collect();
            warn!(
                host = collision.host,
                binary = collision.binary,
                published_row_id = collision.kept,
                left_out_row_ids = left_out
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
                "several live services rows show as one series; publishing the newest \
                 row cinder-api shows up (else the one with the latest heartbeat)"
            );
        }
        self.reported_collisions = collisions;
    }

    fn report_problems(&mut self, problems: &[String]) {
        if problems != self.reported_problems.as_slice() {
            for problem in problems {
                warn!(%problem, "unreadable value in the services table");
            }
            self.reported_problems = problems.to_vec();
        }
    }
}

impl Polls for Poller {
    /// Adopts the settings in force (a reload may have changed those that a poller
    /// keeps across it), then polls.
    async fn poll(&mut self, config: &Arc<Config>) -> bool {
        self.config = Arc::clone(config);
        self.poll_once().await
    }
}

/// What the snapshot keeps of a row: its label sets, built once here (shared with
/// the `previous` poll's state of the row where they are unchanged), and the facts
/// the verdicts need at scrape time.
fn service_state(
    row: &ServiceRow,
    diagnosis: Diagnosis,
    poll_time: f64,
    compat: bool,
    previous: Option<&ServiceState>,
) -> ServiceState {
    ServiceState {
        id: row.id,
        heartbeat_silence: diagnosis.silence(poll_time),
        labels: identity_labels(row).or_same(previous.map(|p| &p.labels)),
        info_labels: info_labels(row).or_same(previous.map(|p| &p.info_labels)),
        compat_labels: compat.then(|| {
            agent_state_labels(row).or_same(previous.and_then(|p| p.compat_labels.as_ref()))
        }),
        enabled: row.enabled(),
        report_count: row.report_count,
        last_heartbeat: row.last_heartbeat(),
        updated_at: row.updated_at,
        diagnosis,
    }
}

/// Reorders `values` in place so that position `k` holds what was at `order[k]`,
/// and drops the values `order` does not name (it names each position at most
/// once): the kept rows become the snapshot without a second vector of them.
fn keep_in_order<T>(values: &mut Vec<T>, order: &[usize]) {
    let mut named = vec![false; values.len()];
    let mut source = Vec::with_capacity(values.len());
    for &position in order {
        named[position] = true;
        source.push(position);
    }
    source.extend((0..values.len()).filter(|&position| !named[position]));
    // Each cycle of the permutation: the value first displaced travels along it.
    for start in 0..source.len() {
        let mut at = start;
        while source[at] != start {
            let from = source[at];
            values.swap(at, from);
            source[at] = at;
            at = from;
        }
        source[at] = at;
    }
    values.truncate(order.len());
    values.shrink_to_fit();
}

/// The clusters of one poll's services, names compared as the database compares
/// them, with their label sets built once.
fn clusters_of(services: &[ServiceState], names: NameComparison) -> Vec<ClusterState> {
    let texts: Vec<_> = services.iter().map(|s| (s.cluster(), s.binary())).collect();
    let members = services
        .iter()
        .zip(&texts)
        .map(|(s, (cluster, binary))| Member {
            id: s.id,
            cluster_name: Some(cluster.as_ref()),
            binary: Some(binary.as_ref()),
            updated_at: s.updated_at,
        });
    group_clusters(members, names)
        .into_iter()
        .map(|cluster| ClusterState {
            labels: cluster_labels(&cluster),
            cluster,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shutdown;
    use tokio::time::Instant as TokioInstant;

    /// Records when each poll ran (on tokio's clock) and answers from a script.
    struct Recorder {
        started: TokioInstant,
        at: Vec<Duration>,
        intervals: Vec<Duration>,
        outcomes: std::collections::VecDeque<bool>,
    }

    impl Polls for Recorder {
        async fn poll(&mut self, config: &Arc<Config>) -> bool {
            self.at.push(self.started.elapsed());
            self.intervals.push(config.polling.poll_interval);
            self.outcomes.pop_front().unwrap_or(true)
        }
    }

    fn config(yaml: &str) -> Arc<Config> {
        crate::config::for_tests(yaml)
    }

    fn recorder(outcomes: &[bool]) -> Recorder {
        Recorder {
            started: TokioInstant::now(),
            at: Vec::new(),
            intervals: Vec::new(),
            outcomes: outcomes.iter().copied().collect(),
        }
    }

    #[test]
    fn rows_are_kept_in_the_chosen_order_in_place() {
        let orders: [&[usize]; 6] = [&[], &[0], &[2, 0], &[1, 2, 0], &[4, 3, 2, 1, 0], &[3, 0, 4]];
        for order in orders {
            let mut values: Vec<String> = (0..5).map(|i| format!("v{i}")).collect();
            let expected: Vec<String> = order.iter().map(|&i| format!("v{i}")).collect();
            let before = values.as_ptr();
            keep_in_order(&mut values, order);
            assert_eq!(values, expected, "{order:?}");
            if order.len() == 5 {
                assert_eq!(values.as_ptr(), before, "no second vector of the values");
            }
        }
    }

    fn seconds(at: &[Duration]) -> Vec<u64> {
        at.iter().map(Duration::as_secs).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn polls_every_interval_and_a_reload_moves_the_wait_at_once() {
        let (updates, receiver) = watch::channel(config("poll_interval: 2s"));
        let (stop, shutdown) = shutdown::channel();
        let mut polls = recorder(&[]);
        let schedule = async {
            // 4 polls at 0, 2, 4, 6 s; at 7 s a reload asks for 10 s: the wait that
            // started at 6 s now ends at 16 s, and the next at 26 s.
            tokio::time::sleep(Duration::from_secs(7)).await;
            updates.send_replace(config("poll_interval: 10s\nstale_after: 1m"));
            tokio::time::sleep(Duration::from_secs(20)).await;
            stop.fire();
        };
        tokio::join!(run_schedule(&mut polls, receiver, shutdown), schedule);
        assert_eq!(seconds(&polls.at), [0, 2, 4, 6, 16, 26]);
        let last = polls.intervals.last().copied();
        assert_eq!(
            last,
            Some(Duration::from_secs(10)),
            "polls see the new settings"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failing_polls_back_off_and_recover() {
        let (_updates, receiver) = watch::channel(config("poll_interval: 2s"));
        let (stop, shutdown) = shutdown::channel();
        // Fails 5 times: waits 2, 4, 8, 16, 16 (8 intervals), then healthy again.
        let mut polls = recorder(&[false, false, false, false, false]);
        let schedule = async {
            tokio::time::sleep(Duration::from_secs(51)).await;
            stop.fire();
        };
        tokio::join!(run_schedule(&mut polls, receiver, shutdown), schedule);
        assert_eq!(seconds(&polls.at), [0, 2, 6, 14, 30, 46, 48, 50]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_schedule_ends_when_the_database_is_no_longer_served() {
        let (updates, receiver) = watch::channel(config("poll_interval: 2s"));
        let (_stop, shutdown) = shutdown::channel();
        let mut polls = recorder(&[]);
        let schedule = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            drop(updates);
        };
        tokio::join!(run_schedule(&mut polls, receiver, shutdown), schedule);
        assert_eq!(seconds(&polls.at), [0, 2]);
    }

    #[test]
    fn backoff_is_capped() {
        let second = Duration::from_secs(1);
        assert_eq!(delay(second, 0), second);
        assert_eq!(delay(second, 4), 8 * second);
        assert_eq!(delay(second, 30), 8 * second);
        assert_eq!(delay(10 * second, 30), 30 * second);
        assert_eq!(delay(60 * second, 3), 60 * second);
    }
}
