//! One simulated cinder service process: its own clock, its row, and its heartbeat
//! loop, driven through the timed events of the fleet file.
//!
//! The loop is oslo's `FixedIntervalLoopingCall` as cinder uses it for `report_state`:
//! the first run one interval after start (`initial_delay = report_interval`), then
//! each wait is the interval minus the last run's duration (never negative), so a run
//! that outlasts its interval makes the next heartbeat late. The simulator adds
//! optional uniform jitter to each wait, slow runs, and restarts (down for a while
//! right after a heartbeat, then the first heartbeat one interval after the start).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta, Utc};
use cinder_exporter::shutdown::Shutdown;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;
use tokio::time::{sleep, sleep_until, Instant};
use tracing::{debug, info, warn};

use crate::fleet::{Change, ServiceSpec};
use crate::table::{self, Table};

/// How soon a failed start (finding or creating the row) is tried again.
const SETUP_RETRY: Duration = Duration::from_secs(1);

/// The service's clock: true UTC plus a skew that events may step. Atomic so that a
/// report_state in flight reads the skew of the moment it saves, even when a step
/// happens during a slow run.
struct Clock {
    skew_bits: AtomicU64,
}

impl Clock {
    fn new(skew: f64) -> Clock {
        Clock {
            skew_bits: AtomicU64::new(skew.to_bits()),
        }
    }

    fn skew(&self) -> f64 {
        f64::from_bits(self.skew_bits.load(Ordering::Relaxed))
    }

    fn set_skew(&self, skew: f64) {
        self.skew_bits.store(skew.to_bits(), Ordering::Relaxed);
    }

    /// What `timeutils.utcnow()` returns on this service's node right now.
    fn now(&self) -> NaiveDateTime {
        let skew = TimeDelta::microseconds((self.skew() * 1e6).round() as i64);
        Utc::now().naive_utc() + skew
    }
}

/// One simulated service, ready to [`Service::run`].
pub struct Service {
    spec: ServiceSpec,
    table: Arc<Table>,
    /// When the simulator started: `start` and event times count from here.
    epoch: Instant,
    order: SetupOrder,
}

/// Services that start at the same moment create their rows in file order, so that
/// row ids follow the fleet file: each waits for the one before it.
#[derive(Default)]
pub struct SetupOrder {
    /// Fires (or is dropped) when the previous service of the same start is set up.
    pub after: Option<oneshot::Receiver<()>>,
    /// Lets the next service of the same start go.
    pub then: Option<oneshot::Sender<()>>,
}

/// Lets the next service in line create its row, if it was not let go already.
fn release(next_in_line: &mut Option<oneshot::Sender<()>>) {
    if let Some(next) = next_in_line.take() {
        let _ = next.send(());
    }
}

/// How a piece of work (finding the row at start, or one report_state) ended.
enum Outcome {
    Setup(table::Result<(i64, bool)>),
    Report {
        /// The run's number, counting from 1.
        run: u64,
        started: Instant,
        result: table::Result<Heartbeat>,
    },
}

/// What one report_state run wrote.
struct Heartbeat {
    row_id: i64,
    report_count: i64,
    updated_at: NaiveDateTime,
    /// The row had vanished and was recreated first.
    recreated: bool,
    /// False if the row vanished between load and save: nothing was written.
    saved: bool,
}

type BoxedWork<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

impl Service {
    /// A service described by `spec`, writing through `table`, timed from `epoch`.
    pub fn new(spec: ServiceSpec, table: Arc<Table>, epoch: Instant, order: SetupOrder) -> Service {
        Service {
            spec,
            table,
            epoch,
            order,
        }
    }

    /// Runs the service until shutdown. Sends one message on `ready` once its row
    /// exists. Database errors are logged and the schedule goes on; nothing here
    /// ends the task but shutdown.
    pub async fn run(self, ready: UnboundedSender<()>, mut shutdown: Shutdown) {
        let Service {
            spec,
            table,
            epoch,
            order,
        } = self;
        let process = Process {
            clock: Clock::new(spec.skew),
            row_id: AtomicI64::new(0),
            spec,
            table,
        };
        let mut state = Lifecycle::new(&process, epoch, order, ready);
        let mut events = process.spec.events.iter().peekable();
        loop {
            let next_event = events.peek().map(|e| epoch + secs(e.at));
            tokio::select! {
                biased;
                _ = shutdown.requested() => break,
                _ = until(next_event) => {
                    if let Some(event) = events.next() {
                        state.apply(&event.change);
                    }
                }
                outcome = finished(&mut state.busy) => state.work_ended(outcome),
                _ = until(state.schedule.wake), if state.busy.is_none() => state.begin_work(),
            }
        }
    }
}

/// What the work in flight reads: the service's description and table, and the two
/// things events and runs change under it (hence atomics). It outlives the
/// [`Lifecycle`] that borrows it, so that work can be held across loop turns.
struct Process {
    spec: ServiceSpec,
    table: Arc<Table>,
    clock: Clock,
    row_id: AtomicI64,
}

impl Process {
    /// The row has been found or created (its id is never 0 once it has).
    fn has_row(&self) -> bool {
        self.row_id.load(Ordering::Relaxed) != 0
    }
}

/// The state of [`Service::run`]'s loop, one method per thing that can happen: an
/// event of the fleet file, the end of the work in flight, the time to begin work.
struct Lifecycle<'a> {
    process: &'a Process,
    schedule: Schedule,
    /// At most one piece of work at a time, as in cinder's single looping call;
    /// named for the log if a stop abandons it.
    busy: Option<(&'static str, BoxedWork<'a>)>,
    previous_in_line: Option<oneshot::Receiver<()>>,
    next_in_line: Option<oneshot::Sender<()>>,
    ready: UnboundedSender<()>,
    /// `ready` has been sent (only the first start counts).
    announced: bool,
}

impl<'a> Lifecycle<'a> {
    fn new(
        process: &'a Process,
        epoch: Instant,
        order: SetupOrder,
        ready: UnboundedSender<()>,
    ) -> Lifecycle<'a> {
        Lifecycle {
            process,
            schedule: Schedule::new(epoch + secs(process.spec.start), &process.spec),
            busy: None,
            previous_in_line: order.after,
            next_in_line: order.then,
            ready,
            announced: false,
        }
    }

    /// An event of the fleet file, at its time.
    fn apply(&mut self, change: &Change) {
        let has_row = self.process.has_row();
        match *change {
            Change::Skew(skew) => {
                let clock = &self.process.clock;
                info!(from = clock.skew(), to = skew, "clock stepped");
                clock.set_skew(skew);
            }
            Change::Interval(seconds) => {
                info!(
                    from = self.schedule.interval,
                    to = seconds,
                    "report interval changed"
                );
                self.schedule
                    .set_interval(seconds, has_row && self.busy.is_none());
            }
            Change::Stop if self.schedule.stopped => info!("stop: already stopped"),
            Change::Stop => self.stop(has_row),
            Change::Resume if !self.schedule.stopped => info!("resume: not stopped"),
            Change::Resume => {
                info!("resumed");
                self.schedule.resume(Instant::now(), has_row);
            }
            Change::Slow(seconds) => {
                info!(by = seconds, "the next report_state will be slow");
                self.schedule.slow_once = Some(seconds);
            }
            Change::Restart(downtime) => {
                info!(
                    downtime,
                    "the process will restart after its next report_state"
                );
                self.schedule.restart_after_run = Some(downtime);
            }
        }
    }

    /// The process stops: no more work is begun, and the work in flight is dropped.
    fn stop(&mut self, has_row: bool) {
        self.schedule.stop();
        if !has_row {
            // Services queued behind this one's start go on.
            release(&mut self.next_in_line);
        }
        // A process that stops mid-run writes nothing more.
        match self.busy.take() {
            Some((work, _)) => info!(abandoned = work, "stopped"),
            None => info!("stopped"),
        }
    }

    /// The work in flight has ended: log it and schedule what comes next.
    fn work_ended(&mut self, outcome: Outcome) {
        self.busy = None;
        let now = Instant::now();
        match outcome {
            Outcome::Setup(Ok((id, created))) => self.started(now, id, created),
            Outcome::Setup(Err(e)) => {
                warn!(
                    error = %e,
                    retry_in_seconds = SETUP_RETRY.as_secs_f64(),
                    "cannot find or create the service row"
                );
                self.schedule.retry_setup(now);
            }
            Outcome::Report {
                run,
                started,
                result,
            } => {
                let took = now - started;
                log_heartbeat(run, took, self.schedule.interval, result);
                self.schedule.ran(now, took);
                if let Some(downtime) = self.schedule.restart_after_run.take() {
                    info!(downtime, "process restarting");
                    self.schedule.restart(now, downtime);
                }
            }
        }
    }

    /// The row `id` exists: let the next service in line go, and say so once.
    fn started(&mut self, now: Instant, id: i64, created: bool) {
        self.process.row_id.store(id, Ordering::Relaxed);
        release(&mut self.next_in_line);
        info!(
            row_id = id,
            created,
            skew = self.process.clock.skew(),
            interval = self.schedule.interval,
            "service started"
        );
        if !self.announced {
            self.announced = true;
            let _ = self.ready.send(());
        }
        self.schedule.started(now);
    }

    /// Time to work: find or create the row if there is none yet, else run
    /// report_state.
    fn begin_work(&mut self) {
        self.schedule.wake = None;
        if self.schedule.restarting {
            // The process is back; cinder's start finds its row and waits an interval.
            self.schedule.restarting = false;
            info!("process restarted");
            self.schedule.started(Instant::now());
        } else if self.process.has_row() {
            self.begin_report();
        } else {
            self.begin_setup();
        }
    }

    /// Finds or creates the row, once the service before this one in line has.
    fn begin_setup(&mut self) {
        let Process {
            spec, table, clock, ..
        } = self.process;
        let previous = self.previous_in_line.take();
        let setup = async move {
            if let Some(previous) = previous {
                // An error means the previous one is gone: go anyway.
                let _ = previous.await;
            }
            Outcome::Setup(table.find_or_create(spec, || clock.now()).await)
        };
        self.busy = Some(("start", Box::pin(setup)));
    }

    /// Runs report_state, slowed down if this run is one of the slow ones.
    fn begin_report(&mut self) {
        let Process {
            spec,
            table,
            clock,
            row_id,
        } = self.process;
        let (run, slow) = self.schedule.next_run(spec.slow_by);
        let slow_by = slow.map(secs);
        let report = report_state(table, spec, clock, row_id, slow_by);
        let started = Instant::now();
        let work = async move {
            let result = report.await;
            Outcome::Report {
                run,
                started,
                result,
            }
        };
        self.busy = Some(("report_state", Box::pin(work)));
    }
}

/// When the service next does something, and the state that decides it.
struct Schedule {
    /// Seconds between report_state runs; events may change it.
    interval: f64,
    jitter: f64,
    slow_every: u64,
    stopped: bool,
    /// When to begin the next piece of work; `None` while stopped or busy.
    wake: Option<Instant>,
    /// The pending wait, kept so that an interval change can re-time it.
    wait: Wait,
    /// report_state runs begun so far.
    runs: u64,
    /// The next run is slow by this many seconds (an event's, once).
    slow_once: Option<f64>,
    /// After the next run the process restarts, down for this many seconds.
    restart_after_run: Option<f64>,
    /// Down for a restart: the next wake-up starts the process again.
    restarting: bool,
}

impl Schedule {
    /// A service that starts (finds or creates its row) at `start`.
    fn new(start: Instant, spec: &ServiceSpec) -> Schedule {
        Schedule {
            interval: spec.interval,
            jitter: spec.jitter,
            slow_every: spec.slow_every,
            stopped: false,
            wake: Some(start),
            wait: Wait::start(start, 0.0),
            runs: 0,
            slow_once: None,
            restart_after_run: None,
            restarting: false,
        }
    }

    /// The row exists: the first heartbeat comes one interval later, as cinder's
    /// looping call starts with `initial_delay = report_interval`.
    fn started(&mut self, now: Instant) {
        self.wait = Wait::start(now, self.jitter);
        self.wake = Some(self.wait.until(self.interval));
    }

    fn retry_setup(&mut self, now: Instant) {
        self.wake = Some(now + SETUP_RETRY);
    }

    /// Numbers the run about to begin, and says how slow it is, if it is: an event's
    /// one slow run, else every `slow_every`th by `slow_by`.
    fn next_run(&mut self, slow_by: f64) -> (u64, Option<f64>) {
        self.runs += 1;
        let periodic = self.slow_every > 0 && self.runs.is_multiple_of(self.slow_every);
        let slow = self.slow_once.take().or(periodic.then_some(slow_by));
        (self.runs, slow)
    }

    /// The process goes down right after a run, for `downtime` seconds.
    fn restart(&mut self, now: Instant, downtime: f64) {
        self.restarting = true;
        self.wake = Some(now + secs(downtime));
    }

    /// A report_state run that took `took` has ended (saved or not).
    fn ran(&mut self, now: Instant, took: Duration) {
        self.wait = Wait::after_run(now, took, self.jitter);
        self.wake = Some(self.wait.until(self.interval));
    }

    /// `waiting` says a heartbeat wait is pending: it is re-timed from when it began.
    fn set_interval(&mut self, interval: f64, waiting: bool) {
        self.interval = interval;
        if waiting && !self.stopped {
            self.wake = Some(self.wait.until(interval));
        }
    }

    fn stop(&mut self) {
        self.stopped = true;
        self.wake = None;
        // A stop during a restart's downtime: the resume starts the process.
        self.restarting = false;
    }

    /// Heartbeats restart as at start, one interval on; a service that never got
    /// its row tries again at once.
    fn resume(&mut self, now: Instant, has_row: bool) {
        self.stopped = false;
        if has_row {
            self.started(now);
        } else {
            self.wake = Some(now);
        }
    }
}

/// One report_state: load the row (recreating it if it vanished), spend `slow_by`
/// if this run is a slow one, then save `report_count + 1` and the service's clock.
async fn report_state(
    table: &Table,
    spec: &ServiceSpec,
    clock: &Clock,
    row_id: &AtomicI64,
    slow_by: Option<Duration>,
) -> table::Result<Heartbeat> {
    let mut id = row_id.load(Ordering::Relaxed);
    let mut recreated = false;
    let loaded = match table.load(id).await? {
        Some(loaded) => loaded,
        None => {
            // cinder: "The service database object disappeared, recreating it."
            id = table.insert(spec, clock.now()).await?;
            row_id.store(id, Ordering::Relaxed);
            recreated = true;
            info!(row_id = id, "service row had disappeared; recreated it");
            match table.load(id).await? {
                Some(loaded) => loaded,
                None => {
                    return Ok(Heartbeat {
                        row_id: id,
                        report_count: 0,
                        updated_at: clock.now(),
                        recreated,
                        saved: false,
                    })
                }
            }
        }
    };
    if let Some(slow_by) = slow_by {
        sleep(slow_by).await;
    }
    let report_count = loaded.report_count + 1;
    // cinder puts its configured zone back if someone changed the row's.
    let zone = (loaded.availability_zone.as_deref() != Some(spec.zone.as_str()))
        .then_some(spec.zone.as_str());
    // Read the clock now, not before the slow part: the ORM stamps at flush time.
    let updated_at = clock.now();
    let saved = table.save(id, report_count, updated_at, zone).await?;
    Ok(Heartbeat {
        row_id: id,
        report_count,
        updated_at,
        recreated,
        saved,
    })
}

fn log_heartbeat(run: u64, took: Duration, interval: f64, result: table::Result<Heartbeat>) {
    match result {
        Ok(beat) if beat.saved => {
            debug!(
                run,
                row_id = beat.row_id,
                report_count = beat.report_count,
                updated_at = %table::literal(beat.updated_at),
                recreated = beat.recreated,
                took = ?took,
                "heartbeat"
            );
            let over = took.as_secs_f64() - interval;
            if over > 0.0 {
                // oslo.service logs this for a report_state that outlasts its interval.
                warn!(run, "report_state run outlasted interval by {over:.2} sec");
            }
        }
        Ok(beat) => warn!(
            run,
            row_id = beat.row_id,
            "service row vanished before the save; nothing written"
        ),
        Err(e) => warn!(run, error = %e, "report_state failed; keeping the schedule"),
    }
}

/// A wait between heartbeats, kept so that it can be re-timed when the interval
/// changes while it is pending.
#[derive(Clone, Copy)]
struct Wait {
    /// When the wait began (the end of the last run, or the start).
    from: Instant,
    /// The last run's duration, subtracted from the interval.
    last_run: Duration,
    /// This wait's jitter, seconds (drawn once, so re-timing does not re-draw it).
    jitter: f64,
}

impl Wait {
    /// The wait before the first heartbeat: a whole interval.
    fn start(from: Instant, jitter: f64) -> Wait {
        Wait::after_run(from, Duration::ZERO, jitter)
    }

    /// The wait after a run that took `last_run`.
    fn after_run(from: Instant, last_run: Duration, jitter: f64) -> Wait {
        let jitter = if jitter > 0.0 {
            (fastrand::f64() * 2.0 - 1.0) * jitter
        } else {
            0.0
        };
        Wait {
            from,
            last_run,
            jitter,
        }
    }

    /// When the next run starts for this `interval`.
    fn until(&self, interval: f64) -> Instant {
        self.from + secs(wait_seconds(interval, self.last_run, self.jitter))
    }
}

/// `max(0, interval - last_run) + jitter`, never below zero.
fn wait_seconds(interval: f64, last_run: Duration, jitter: f64) -> f64 {
    ((interval - last_run.as_secs_f64()).max(0.0) + jitter).max(0.0)
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or(Duration::ZERO)
}

/// Sleeps until `deadline`; without one, never completes.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The outcome of the work in flight; with none, never completes.
async fn finished(busy: &mut Option<(&'static str, BoxedWork<'_>)>) -> Outcome {
    match busy {
        Some((_, work)) => work.as_mut().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_interval_minus_the_run_plus_jitter() {
        assert_eq!(wait_seconds(10.0, Duration::ZERO, 0.0), 10.0);
        assert_eq!(wait_seconds(10.0, Duration::from_secs(3), 0.0), 7.0);
        // A run that outlasts its interval: the next one starts at once.
        assert_eq!(wait_seconds(10.0, Duration::from_secs(12), 0.0), 0.0);
        assert_eq!(wait_seconds(10.0, Duration::from_secs(12), 0.5), 0.5);
        assert_eq!(wait_seconds(1.0, Duration::ZERO, -2.0), 0.0);
        assert_eq!(wait_seconds(10.0, Duration::from_secs(2), -1.0), 7.0);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        for _ in 0..1000 {
            let w = Wait::after_run(Instant::now(), Duration::ZERO, 0.5);
            assert!((-0.5..=0.5).contains(&w.jitter));
        }
        assert_eq!(Wait::start(Instant::now(), 0.0).jitter, 0.0);
    }

    #[test]
    fn the_service_clock_is_utc_plus_skew() {
        let clock = Clock::new(-45.0);
        let delta = (Utc::now().naive_utc() - clock.now()).as_seconds_f64();
        assert!((delta - 45.0).abs() < 0.5, "{delta}");
        clock.set_skew(120.25);
        let delta = (clock.now() - Utc::now().naive_utc()).as_seconds_f64();
        assert!((delta - 120.25).abs() < 0.5, "{delta}");
    }
}
