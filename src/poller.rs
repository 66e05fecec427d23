//! The background task that reads the services table: one query per poll, whatever
//! the number of scrapers, with reconnect and backoff, and the per-row heartbeat
//! trackers that the diagnosis needs.

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
use crate::metrics::{
    agent_state_labels, cluster_labels, cut_as_label, identity_labels, info_labels, label_text,
};
use crate::shutdown::Shutdown;
use crate::snapshot::{
    ClusterState, PollHealth, Published, ServiceState, ServiceText, SharedState, Snapshot,
};

/// Completes when `updates` has news (or has closed); never when there is none.
async fn updated(updates: &mut Option<watch::Receiver<Arc<Config>>>) {
    match updates {
        Some(updates) => {
            let _ = updates.changed().await;
        }
        None => std::future::pending().await,
    }
}

/// Longest wait between attempts while the database is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Owns the database pool and all state that lives across polls.
pub struct Poller {
    /// The settings in force; a reload that keeps the database sends new ones here.
    config: Arc<Config>,
    /// New settings from a reload; `None` once the sender is gone.
    updates: Option<watch::Receiver<Arc<Config>>>,
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
    /// Prepares the pool; no connection is made until the first poll, so the exporter
    /// starts (and serves `cinder_up 0`) even when the database is down.
    pub fn new(updates: watch::Receiver<Arc<Config>>, state: Arc<SharedState>) -> Poller {
        let config = Arc::clone(&updates.borrow());
        let pool = Pool::new(config.database.connection_options(config.query_timeout));
        Poller {
            config,
            updates: Some(updates),
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

    /// Polls until shutdown, then closes the pool. New settings take effect while it
    /// waits: a new `poll_interval` moves the next poll at once.
    pub async fn run(mut self, mut shutdown: Shutdown) {
        'polls: loop {
            let started = Instant::now();
            self.poll().await;
            loop {
                let next = started + self.delay();
                tokio::select! {
                    _ = tokio::time::sleep_until(next.into()) => continue 'polls,
                    _ = updated(&mut self.updates) => self.take_update(),
                    _ = shutdown.requested() => break 'polls,
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(1), self.pool.disconnect()).await;
    }

    /// Adopts the settings a reload sent, or stops listening once the sender is gone.
    fn take_update(&mut self) {
        if let Some(updates) = &mut self.updates {
            match updates.has_changed() {
                Ok(true) => self.config = Arc::clone(&updates.borrow_and_update()),
                Ok(false) => {}
                Err(_) => self.updates = None,
            }
        }
    }

    /// One poll: read, update trackers, publish. Failures are published too.
    pub async fn poll(&mut self) {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.config.query_timeout, self.read()).await {
            Ok(result) => result,
            Err(_) => Err(ReadError::TimedOut(self.config.query_timeout)),
        };
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
                    warn!(database = %self.config.database.redacted(), %error, "poll failed");
                } else {
                    debug!(failures = self.consecutive_failures, %error, "poll failed again");
                }
            }
        }
        self.state.publish(Published {
            snapshot: self.snapshot.clone(),
            health: self.health.clone(),
        });
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
        let compat = self.config.compatibility.openstack_exporter;
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

    /// Poll interval when healthy; doubling backoff while failing, capped.
    fn delay(&self) -> Duration {
        let interval = self.config.poll_interval;
        if self.consecutive_failures == 0 {
            return interval;
        }
        let cap = interval.max(MAX_BACKOFF.min(interval * 8));
        let factor = 1u32 << (self.consecutive_failures - 1).min(16);
        interval.saturating_mul(factor).min(cap)
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
        text: ServiceText {
            host: label_text(&row.host).to_string(),
            binary: label_text(&row.binary).to_string(),
            zone: label_text(&row.availability_zone).to_string(),
            disabled_reason: label_text(&row.disabled_reason).to_string(),
            cluster: label_text(&row.cluster_name).to_string(),
        },
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
    let members = services.iter().map(|s| Member {
        cluster_name: Some(s.text.cluster.as_str()),
        binary: Some(s.text.binary.as_str()),
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
