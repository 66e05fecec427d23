//! The HTTP server on hyper 1: the accept loop and each connection's life.
//!
//! Connections are bounded in number, header size, header read time, TLS
//! handshake time and write stalls, so slow or hostile clients cannot starve
//! Prometheus' scrapes or grow memory:
//!
//! - at most [`MAX_CONNECTIONS`] are served at once. The accept loop takes a slot before
//!   it accepts, so further connections wait in the kernel's listen backlog (bounded by
//!   the backlog size; beyond it the kernel drops SYNs and clients retry) and cost the
//!   exporter nothing;
//! - when every slot is taken, connections that have been waiting for a request for
//!   [`SHED_IDLE_AFTER`] or more (opened and never used, or kept alive between
//!   scrapes) are closed, so that idle connections cannot keep a scrape out;
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
/// While at the limit, how often idle connections are looked for again.
const SHED_RETRY: Duration = Duration::from_millis(250);
/// A response write that makes no progress for this long ends the connection: a client
/// that stops reading must not hold its slot forever.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer (and so header size) limit per connection; hyper's minimum is 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long in-flight requests may run after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(900);

/// Accepts connections until shutdown, then lets in-flight requests finish within
/// [`SHUTDOWN_GRACE`]. With `tls`, every connection starts with a TLS handshake.
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let pressure = Arc::new(Notify::new());
    let clock = Instant::now();
    let graceful = GracefulShutdown::new();
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
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
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
                    if self.activity.idle_for() >= SHED_IDLE_AFTER {
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
}

impl Activity {
    fn new(clock: Instant) -> Activity {
        let activity = Activity {
            clock,
            last_io_ms: AtomicU64::new(0),
            reading: AtomicBool::new(false),
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
