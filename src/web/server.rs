//! The HTTP server on hyper 1: the accept loop and each connection's life.
//!
//! Connections are bounded in number, header size, header read time, TLS
//! handshake time and write stalls, so slow or hostile clients cannot starve
//! Prometheus' scrapes or grow memory:
//!
//! - at most [`MAX_CONNECTIONS`] are served at once, and at most half the open-files
//!   limit (`ulimit -n`, read at start: the other half is for the database connections,
//!   the runtime and the files). The accept loop takes a slot before it accepts, so
//!   further connections wait in the kernel's listen backlog (bounded by the backlog
//!   size; beyond it the kernel drops SYNs and clients retry) and cost the exporter
//!   nothing;
//! - when every slot is taken, or accepting fails (out of file descriptors: the limit
//!   was lowered, or something else holds them), connections that have been waiting
//!   for a request are closed, so that idle connections cannot keep a scrape out:
//!   those opened and never sent a byte after [`SHED_UNUSED_AFTER`], those kept alive
//!   between scrapes after [`SHED_IDLE_AFTER`]. A failing accept is retried with a backoff of up to [`MAX_ACCEPT_BACKOFF`]
//!   and logged at most once per [`ACCEPT_ERROR_LOG_EVERY`], with the number of
//!   failures in between;
//! - a request's headers must arrive within [`HEADER_READ_TIMEOUT`], which hyper also
//!   applies between requests on a kept-alive connection; the TLS handshake within
//!   [`TLS_HANDSHAKE_TIMEOUT`]; a response write that makes no progress for
//!   [`WRITE_STALL_TIMEOUT`] ends the connection.
//!
//! With `--web.config.file`, TLS ([`super::tls`]) and basic auth
//! ([`super::basic_auth`]) apply to every path, as in exporter-toolkit.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

use super::routes::App;
pub use super::tls::TLS_HANDSHAKE_TIMEOUT;
use crate::shutdown::Shutdown;

/// Connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time (and, on a kept-alive
/// connection, start the next request within it).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// At the connection limit, connections idle this long are closed to make room. Long
/// enough that a client which has just connected gets its request read first.
pub const SHED_IDLE_AFTER: Duration = Duration::from_secs(1);
/// At the connection limit, connections opened this long ago that have not sent a byte
/// are closed to make room. A client sends its request (or TLS hello) as soon as it
/// has connected, so this is far longer than any real client takes, and it makes
/// room fast behind a crowd of connections opened and never used, whose places in
/// the listen backlog come before a scrape's.
pub const SHED_UNUSED_AFTER: Duration = Duration::from_millis(250);
/// While at the limit, how often idle connections are looked for again.
const SHED_RETRY: Duration = Duration::from_millis(250);
/// A response write that makes no progress for this long ends the connection: a client
/// that stops reading must not hold its slot forever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer (and so header size) limit per connection; hyper's minimum is 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long in-flight requests may run after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(900);
/// Longest wait before accepting again after accepting failed.
pub const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);
/// First wait after accepting failed; doubled at each failure in a row.
const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// Failing accepts are logged at most this often.
pub const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);
/// The fewest connections served at once, whatever the open-files limit.
const MIN_CONNECTIONS: usize = 4;

/// Accepts connections until shutdown, then lets in-flight requests finish within
/// [`SHUTDOWN_GRACE`]. With `tls`, every connection starts with a TLS handshake.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(connection_limit(open_files_limit())));
    let pressure = Arc::new(Notify::new());
    let clock = Instant::now();
    let graceful = GracefulShutdown::new();
    let mut accept_errors = AcceptErrors::default();
    loop {
        let permit = match Arc::clone(&limit).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let acquired = tokio::select! {
                    permit = wait_for_slot(&limit, &pressure) => permit,
                    _ = shutdown.requested() => None,
                };
                match acquired {
                    Some(permit) => permit,
                    None => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    accept_errors.succeeded();
                    stream
                }
                Err(error) => {
                    // Out of file descriptors and the like: make room, pause, retry.
                    pressure.notify_waiters();
                    let wait = accept_errors.failed(&error, Instant::now());
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = shutdown.requested() => break,
                    }
                }
            },
            _ = shutdown.requested() => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new(clock));
        let io = GuardedIo::new(stream, Arc::clone(&activity));
        let connection = Connection {
            app: Arc::clone(&app),
            watcher: graceful.watcher(),
            shedding: Shedding {
                pressure: Arc::clone(&pressure),
                activity,
            },
        };
        // Per connection: a reload may have turned TLS on or off, or changed it.
        let tls = app.tls();
        tokio::spawn(async move {
            connection.run(io, tls).await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        debug!("connections still open after the shutdown grace period; closing them");
    }
}

/// Connections served at once under an open-files limit of `open_files`: half of it,
/// between [`MIN_CONNECTIONS`] and [`MAX_CONNECTIONS`].
fn connection_limit(open_files: Option<u64>) -> usize {
    let half = open_files.map_or(MAX_CONNECTIONS as u64, |n| n / 2);
    usize::try_from(half)
        .unwrap_or(MAX_CONNECTIONS)
        .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
}

/// The soft open-files limit, from `/proc/self/limits`; `None` if unknown or unlimited.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Failing accepts in a row: how long to wait before the next, and when to log.
#[derive(Default)]
struct AcceptErrors {
    /// Failures since the last success.
    in_a_row: u32,
    /// When a failure was last logged.
    logged_at: Option<Instant>,
    /// Failures since then, not logged.
    unlogged: u64,
}

impl AcceptErrors {
    /// Notes a failure at `now`, logs it unless one was logged within
    /// [`ACCEPT_ERROR_LOG_EVERY`], and returns the wait before accepting again.
    fn failed(&mut self, error: &std::io::Error, now: Instant) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        let due = self
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= ACCEPT_ERROR_LOG_EVERY);
        if due {
            warn!(
                %error,
                failures_not_logged = self.unlogged,
                "accept failed; closing idle connections and retrying with backoff"
            );
            self.logged_at = Some(now);
            self.unlogged = 0;
        } else {
            self.unlogged += 1;
        }
        let doublings = (self.in_a_row - 1).min(16);
        FIRST_ACCEPT_BACKOFF
            .saturating_mul(1 << doublings)
            .min(MAX_ACCEPT_BACKOFF)
    }

    /// Notes a success: the next failure waits the least again.
    fn succeeded(&mut self) {
        if self.in_a_row > 0 {
            debug!(failures = self.in_a_row, "accepting connections again");
            self.in_a_row = 0;
        }
    }
}

/// Waits for a free connection slot, asking idle connections to make room meanwhile.
/// `None` only if the semaphore were closed, which it never is.
async fn wait_for_slot(
    limit: &Arc<Semaphore>,
    pressure: &Notify,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    let acquire = Arc::clone(limit).acquire_owned();
    tokio::pin!(acquire);
    loop {
        pressure.notify_waiters();
        tokio::select! {
            permit = &mut acquire => return permit.ok(),
            _ = tokio::time::sleep(SHED_RETRY) => {}
        }
    }
}

/// One accepted connection's share of the server.
struct Connection {
    app: Arc<App>,
    watcher: hyper_util::server::graceful::Watcher,
    shedding: Shedding,
}

/// Closes the connection when the server is full and this connection is idle.
struct Shedding {
    /// Notified by the accept loop while it waits for a free slot.
    pressure: Arc<Notify>,
    activity: Arc<Activity>,
}

impl Connection {
    /// Serves the connection until the client leaves, a timeout ends it, shutdown, or
    /// it is idle while the server is full; with `tls`, after a TLS handshake.
    async fn run(self, io: GuardedIo<TcpStream>, tls: Option<TlsAcceptor>) {
        let Some(acceptor) = tls else {
            return self.serve_http(io).await;
        };
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(io));
        match self.shedding.unless_shed(handshake).await {
            Some(Ok(Ok(stream))) => self.serve_http(stream).await,
            Some(Ok(Err(error))) => debug!(%error, "TLS handshake failed"),
            Some(Err(_)) => debug!("TLS handshake timed out"),
            None => {}
        }
    }

    async fn serve_http<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            watcher,
            shedding,
        } = self;
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.respond(request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(io), service);
        let connection = watcher.watch(connection);
        if let Some(Err(error)) = shedding.unless_shed(connection).await {
            debug!(%error, "connection ended with an error");
        }
    }
}

impl Shedding {
    /// Runs `work` to completion, unless the server runs out of connection slots while
    /// this connection is idle: then `None`, and dropping `work` closes the socket.
    async fn unless_shed<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::pin!(work);
        loop {
            let shed = self.pressure.notified();
            tokio::select! {
                output = &mut work => return Some(output),
                _ = shed => {
                    if self.activity.is_sheddable() {
                        debug!("closing an idle connection: at the connection limit");
                        return None;
                    }
                }
            }
        }
    }
}

/// What the socket of one connection last did, to tell a connection waiting for a
/// request (idle) from one in the middle of one. A response whose writing has been
/// stalled for a while counts as idle too: under pressure, a client that stopped
/// reading gives up its slot as well.
struct Activity {
    clock: Instant,
    /// Milliseconds since `clock` of the last byte read or written.
    last_io_ms: AtomicU64,
    /// Bytes were read since the last write: a request is arriving or being served.
    reading: AtomicBool,
    /// Bytes were ever read: the client has used the connection.
    used: AtomicBool,
}

impl Activity {
    fn new(clock: Instant) -> Activity {
        let activity = Activity {
            clock,
            last_io_ms: AtomicU64::new(0),
            reading: AtomicBool::new(false),
            used: AtomicBool::new(false),
        };
        activity.touch();
        activity
    }

    fn touch(&self) {
        let now = self
            .clock
            .elapsed()
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX);
        self.last_io_ms.store(now, Ordering::Relaxed);
    }

    /// Whether the connection may be closed to make room: waiting for a request for
    /// [`SHED_UNUSED_AFTER`] if never used, else for [`SHED_IDLE_AFTER`].
    fn is_sheddable(&self) -> bool {
        let after = match self.used.load(Ordering::Relaxed) {
            true => SHED_IDLE_AFTER,
            false => SHED_UNUSED_AFTER,
        };
        self.idle_for() >= after
    }

    /// How long the connection has been waiting for the client to start a request;
    /// zero while a request is being read or answered.
    fn idle_for(&self) -> Duration {
        if self.reading.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.last_io_ms.load(Ordering::Relaxed));
        self.clock.elapsed().saturating_sub(since)
    }
}

/// A socket that records its [`Activity`] and fails writes stalled longer than
/// [`WRITE_STALL_TIMEOUT`] (hyper has no write timeout of its own).
struct GuardedIo<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Armed while a write is pending, disarmed when it makes progress.
    write_deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> GuardedIo<S> {
    fn new(inner: S, activity: Arc<Activity>) -> GuardedIo<S> {
        GuardedIo {
            inner,
            activity,
            write_deadline: None,
        }
    }

    /// Passes a write-side poll through, arming the stall deadline while it is pending.
    fn guard_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.write_deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let deadline = self
                    .write_deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client stopped reading the response",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.reading.store(true, Ordering::Relaxed);
            self.activity.used.store(true, Ordering::Relaxed);
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.reading.store(false, Ordering::Relaxed);
            self.activity.touch();
        }
        self.guard_write(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.reading.store(false, Ordering::Relaxed);
            self.activity.touch();
        }
        self.guard_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.guard_write(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.guard_write(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_is_half_the_open_files_limit() {
        assert_eq!(connection_limit(None), MAX_CONNECTIONS);
        assert_eq!(connection_limit(Some(1_048_576)), MAX_CONNECTIONS);
        assert_eq!(connection_limit(Some(1024)), 512);
        assert_eq!(connection_limit(Some(64)), 32);
        assert_eq!(connection_limit(Some(3)), MIN_CONNECTIONS);
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }

    #[test]
    fn failing_accepts_back_off_and_are_logged_once_per_period() {
        let mut errors = AcceptErrors::default();
        let error = std::io::Error::other("too many open files");
        let start = Instant::now();
        let waits: Vec<_> = (0..9)
            .map(|i| errors.failed(&error, start + Duration::from_millis(i)))
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!((errors.logged_at, errors.unlogged), (Some(start), 8));
        errors.failed(&error, start + ACCEPT_ERROR_LOG_EVERY);
        assert_eq!(errors.unlogged, 0, "logged again once the period is over");
        errors.succeeded();
        assert_eq!(errors.failed(&error, start), FIRST_ACCEPT_BACKOFF);
    }
}
