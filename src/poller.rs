//! The background task that reads the services table: one query per poll, whatever
//! the number of scrapers, with reconnect and backoff, and the per-row heartbeat
//! trackers that the diagnosis needs.
//!
//! When to poll ([`run_schedule`]) is kept apart from what a poll does ([`Poller`]),
//! so that the schedule (intervals, backoff, a reload's new `poll_interval`) is tested
//! on a paused clock without a database.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::Pool;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cinder::{
    group_clusters, keep_freshest, Diagnosis, HeartbeatTracker, Member, ServiceKey, ServiceRow,
    StampWindow,
};
use crate::config::Config;
use crate::database::{
    detect_schema, identify_server, read_services, ReadError, Reading, Schema, Server, POLL_QUERY,
};
use crate::metrics::own;
use crate::series::{
    agent_state_labels, cluster_labels, cut_as_label, identity_labels, info_labels,
};
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
/// current wait at once.
pub(crate) async fn run_schedule(
    polls: &mut impl Polls,
    mut updates: watch::Receiver<Arc<Config>>,
    mut shutdown: Shutdown,
) {
    let mut failures = 0u32;
    'polls: loop {
        let config = Arc::clone(&updates.borrow_and_update());
        let started = tokio::time::Instant::now();
        failures = if polls.poll(&config).await {
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

/// Owns the database pool and all state that lives across polls.
pub struct Poller {
    /// The settings of the poll under way.
    config: Arc<Config>,
    /// The target's name for its series ("" for the top-level database).
    target: String,
    state: Arc<SharedState>,
    pool: Pool,
    /// The columns as the latest poll found them. `None` at start and after a failure:
    /// the next poll first asks information_schema, whose answer explains a missing
    /// grant or table better than the query's error would.
    schema: Option<Schema>,
    /// The server and how it keeps cinder's stamps; asked with the schema.
    server: Option<Server>,
    /// Per row id: the tracker and the poll number that last saw the row. State
    /// survives failed polls (an outage is not a clock step); rows that disappear
    /// take their state with them.
    trackers: HashMap<i64, (u64, HeartbeatTracker)>,
    polls: u64,
    health: PollHealth,
    snapshot: Option<Arc<Snapshot>>,
    consecutive_failures: u32,
    reported_problems: Vec<String>,
    /// `(host, binary, row id)` of the rows left out at the latest poll, sorted.
    reported_collisions: Vec<(String, String, i64)>,
}

impl Poller {
    /// Prepares the pool for `config`'s connection (which a poller keeps for life); no
    /// connection is made until the first poll, so the exporter starts (and serves
    /// `cinder_up 0`) even when the database is down.
    pub fn new(config: Arc<Config>, target: String, state: Arc<SharedState>) -> Poller {
        let connection = &config.connection;
        let pool = Pool::new(
            connection
                .database
                .connection_options(connection.query_timeout),
        );
        Poller {
            config,
            target,
            state,
            pool,
            schema: None,
            server: None,
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
    /// then closes the pool.
    pub async fn run(mut self, updates: watch::Receiver<Arc<Config>>, shutdown: Shutdown) {
        run_schedule(&mut self, updates, shutdown).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.disconnect()).await;
    }

    /// One poll: read, update trackers, publish. Failures are published too.
    async fn poll_once(&mut self) -> bool {
        let started = Instant::now();
        let timeout = self.config.connection.query_timeout;
        let result = match tokio::time::timeout(timeout, self.read()).await {
            Ok(result) => result,
            Err(_) => Err(ReadError::TimedOut(timeout)),
        };
        let ok = result.is_ok();
        match result {
            Ok((reading, services)) => {
                let clusters = clusters_of(&services);
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
    async fn read(&mut self) -> Result<(Reading, Vec<ServiceState>), ReadError> {
        let mut conn = self.pool.get_conn().await.map_err(ReadError::Database)?;
        if self.schema.is_none() {
            let schema = detect_schema(&mut conn).await?;
            debug!(
                absent = ?schema.absent(),
                query = POLL_QUERY,
                "services table columns detected"
            );
            self.schema = Some(schema);
            let server = identify_server(&mut conn).await?;
            if self.server.as_ref() != Some(&server) {
                info!(
                    version = server.version,
                    stamps = ?server.stamps,
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
        let mut candidates = Vec::with_capacity(trackers.len());
        let reading = read_services(&mut conn, |reference_time, row| {
            let (seen, tracker) = trackers
                .entry(row.id)
                .or_insert_with(|| (poll, HeartbeatTracker::new()));
            *seen = poll;
            tracker.observe(reference_time, row.report_count, row.updated_at, stamps);
            let state = service_state(&row, tracker.diagnosis(), reference_time, compat);
            let mut key = ServiceKey::of(row);
            cut_as_label(&mut key.host);
            cut_as_label(&mut key.binary);
            candidates.push((key, state));
        })
        .await?;
        trackers.retain(|_, (seen, _)| *seen == poll);
        self.follow_schema(&reading.schema);
        let mut collisions = Vec::new();
        let services = keep_freshest(candidates, |key| {
            collisions.push((key.host.clone(), key.binary.clone(), key.id));
        });
        self.report_collisions(collisions);
        Ok((reading, services))
    }

    /// Notes a change of the table's columns (a cinder upgrade while running): the
    /// poll has already read the new columns, this only tells the operator.
    fn follow_schema(&mut self, found: &Schema) {
        if let Some(known) = &self.schema {
            if !known.same_columns(found) {
                info!(
                    absent = ?found.absent(),
                    was_absent = ?known.absent(),
                    "services table columns changed (cinder db sync?); reading the new ones"
                );
            }
        }
        self.schema = Some(found.clone());
    }

    /// Warns once about each service that several live rows claim, naming the rows
    /// left out; quiet while the same rows keep colliding.
    fn report_collisions(&mut self, mut collisions: Vec<(String, String, i64)>) {
        collisions.sort_unstable();
        for (host, binary, id) in &collisions {
            if self
                .reported_collisions
                .binary_search_by(|c| (&c.0, &c.1, c.2).cmp(&(host, binary, *id)))
                .is_err()
            {
                warn!(
                    host,
                    binary,
                    left_out_row_id = id,
                    "several live services rows show as one series; publishing the one \
                     with the latest heartbeat (then the highest id)"
                );
            }
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

/// What the snapshot keeps of a row: its label sets, built once here, and the facts
/// the verdicts need at scrape time.
fn service_state(
    row: &ServiceRow,
    diagnosis: Diagnosis,
    poll_time: f64,
    compat: bool,
) -> ServiceState {
    ServiceState {
        heartbeat_silence: diagnosis.silence(poll_time),
        labels: identity_labels(row),
        info_labels: info_labels(row),
        compat_labels: compat.then(|| agent_state_labels(row)),
        enabled: row.enabled(),
        report_count: row.report_count,
        last_heartbeat: row.last_heartbeat(),
        updated_at: row.updated_at,
        diagnosis,
    }
}

/// The clusters of one poll's services, with their label sets built once.
fn clusters_of(services: &[ServiceState]) -> Vec<ClusterState> {
    let names: Vec<_> = services.iter().map(|s| (s.cluster(), s.binary())).collect();
    let members = services
        .iter()
        .zip(&names)
        .map(|(s, (cluster, binary))| Member {
            cluster_name: Some(cluster.as_ref()),
            binary: Some(binary.as_ref()),
            updated_at: s.updated_at,
        });
    group_clusters(members)
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
        Arc::new(crate::config::parse_str(yaml, "t.yml", Some("mysql://u@h/db".into())).unwrap())
    }

    fn recorder(outcomes: &[bool]) -> Recorder {
        Recorder {
            started: TokioInstant::now(),
            at: Vec::new(),
            intervals: Vec::new(),
            outcomes: outcomes.iter().copied().collect(),
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
