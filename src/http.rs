//! The HTTP side: `/metrics`, the landing page, `/-/healthy` and `/-/ready`, on hyper 1.
//!
//! Scrapes are served from the published snapshot only — they never touch the
//! database. Connections are bounded in number, header size and header read time, so
//! slow or hostile clients cannot starve Prometheus' scrapes or grow memory.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::metrics_body::MetricsBody;
use crate::render::{ExpositionWriter, RenderSettings};
use crate::shutdown::Shutdown;
use crate::snapshot::SharedState;

/// Connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 512;
/// A client must send its request headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Read buffer (and so header size) limit per connection; hyper's minimum is 8 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// How long in-flight requests may run after a shutdown request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(900);

/// The exposition's content type: text format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every response's body: a small fixed text, or the streamed exposition.
pub type ResponseBody = Either<Full<Bytes>, MetricsBody>;

/// What every request handler needs.
pub struct App {
    state: Arc<SharedState>,
    settings: RenderSettings,
    telemetry_path: String,
}

impl App {
    pub fn new(state: Arc<SharedState>, settings: RenderSettings, telemetry_path: String) -> App {
        App {
            state,
            settings,
            telemetry_path,
        }
    }

    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<ResponseBody> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let path = request.uri().path();
        if path == self.telemetry_path {
            let gzip = request
                .headers()
                .get(ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(accepts_gzip);
            return self.metrics(gzip);
        }
        match path {
            "/" => self.landing_page(),
            "/-/healthy" => text(StatusCode::OK, "OK\n"),
            "/-/ready" if self.state.is_ready() => text(StatusCode::OK, "Ready\n"),
            "/-/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: no successful poll of the cinder database yet\n",
            ),
            _ => text(StatusCode::NOT_FOUND, "Not found\n"),
        }
    }

    /// The exposition, from the latest published snapshot at this instant. It is
    /// written while it is sent (see [`MetricsBody`]), so a scrape's memory does not
    /// grow with the number of services.
    fn metrics(&self, gzip: bool) -> Response<ResponseBody> {
        let writer = ExpositionWriter::new(self.state.current(), &self.settings, Instant::now());
        let mut response = Response::new(Either::Right(MetricsBody::new(writer, gzip)));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }

    fn landing_page(&self) -> Response<ResponseBody> {
        let path = html_escape(&self.telemetry_path);
        let page = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>Cinder Exporter</title></head>\n\
             <body>\n<h1>Cinder Exporter</h1>\n\
             <p>Prometheus exporter for OpenStack Cinder services: up/down exactly as cinder judges it, and why.</p>\n\
             <ul>\n<li><a href=\"{path}\">Metrics</a></li>\n<li><a href=\"/-/healthy\">Health</a></li>\n\
             <li><a href=\"/-/ready\">Readiness</a> (ready once the first poll of the database succeeded)</li>\n</ul>\n\
             <p>Version {}</p>\n</body>\n</html>\n",
            env!("CARGO_PKG_VERSION")
        );
        let mut response = Response::new(Either::Left(Full::new(Bytes::from(page))));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

/// Accepts connections until shutdown, then lets in-flight requests finish within
/// [`SHUTDOWN_GRACE`].
pub async fn serve(listener: TcpListener, app: Arc<App>, mut shutdown: Shutdown) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&limit).acquire_owned() => permit.expect("semaphore never closed"),
            _ = shutdown.requested() => break,
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
        let app = Arc::clone(&app);
        let service = service_fn(move |request| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                debug!(%error, "connection ended with an error");
            }
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

fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(Bytes::from_static(body.as_bytes()))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Whether an `Accept-Encoding` value allows gzip (explicitly or by `*`), honouring
/// `q=0` as a refusal.
pub fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|item| {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        assert!(!accepts_gzip(""));
    }
}
