//! What the exporter answers: `/metrics`, `/probe` (in [`super::probe`]), the status
//! page at `/` (in [`super::status_page`]), `/-/healthy` and `/-/ready`, behind basic
//! auth and the configured extra headers.
//!
//! Scrapes are served from the published snapshot only: they never touch the
//! database. Routing reads only a request's method, path, query and headers, so it
//! takes any request body type and is tested in-process.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use super::basic_auth::{BasicAuth, REALM};
use super::config::WebSecurity;
use super::probe::{probe, unknown_target};
use super::status_page::{self, PageContext};
use crate::judgement::{readiness, readiness_rule, Judgement};
use crate::metrics::own::{self, Endpoint};
use crate::metrics::{ExpositionWriter, MetricsBody};
use crate::served::{Served, ServedDatabase};

/// The exposition's content type: text format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every response's body: a small fixed text, or the streamed exposition.
pub type ResponseBody = Either<Full<Bytes>, MetricsBody>;

/// What `--web.config.file` puts around every response: replaced whole on a reload, so
/// a connection sees one web configuration, never half of two.
pub struct Guard {
    /// With `basic_auth_users`: every request must authenticate.
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// With `tls_server_config`: every new connection starts with a handshake.
    pub tls: Option<TlsAcceptor>,
}

impl Guard {
    /// The guard a web configuration describes.
    pub fn of(security: WebSecurity) -> Guard {
        Guard {
            basic_auth: security.basic_auth,
            headers: security.headers,
            tls: security.tls.map(|(_, config)| TlsAcceptor::from(config)),
        }
    }
}

/// A request to reload the configuration, answered with what the reload did to each
/// database (one line each), or why it was refused.
pub type ReloadRequest = oneshot::Sender<Result<String, String>>;

/// What every request handler needs.
pub struct App {
    served: ArcSwap<Served>,
    guard: ArcSwap<Guard>,
    telemetry_path: String,
    /// Where `POST /-/reload` asks for a reload; `None` where nothing reloads.
    reloads: Option<mpsc::Sender<ReloadRequest>>,
}

impl App {
    /// The handler state.
    pub fn new(served: Served, guard: Guard, telemetry_path: String) -> App {
        App {
            served: ArcSwap::from_pointee(served),
            guard: ArcSwap::from_pointee(guard),
            telemetry_path,
            reloads: None,
        }
    }

    /// Lets `POST /-/reload` send its requests there.
    pub fn with_reloads(mut self, reloads: mpsc::Sender<ReloadRequest>) -> App {
        self.reloads = Some(reloads);
        self
    }

    /// Serves `served` and guards with `guard` from the next request on; requests
    /// under way finish with what they started with.
    pub fn replace(&self, served: Served, guard: Guard) {
        self.served.store(Arc::new(served));
        self.guard.store(Arc::new(guard));
    }

    /// The TLS acceptor for a new connection, if TLS is on.
    pub(super) fn tls(&self) -> Option<TlsAcceptor> {
        self.guard.load().tls.clone()
    }

    /// Authentication, routing, then the configured extra headers. The body of the
    /// request is never read.
    pub async fn respond<B>(self: Arc<Self>, request: Request<B>) -> Response<ResponseBody> {
        let guard = self.guard.load_full();
        let mut response = match &guard.basic_auth {
            Some(auth)
                if !auth
                    .check(
                        request
                            .headers()
                            .get(AUTHORIZATION)
                            .map(HeaderValue::as_bytes),
                    )
                    .await =>
            {
                unauthorized()
            }
            _ => Arc::clone(&self).handle(request).await,
        };
        for (name, value) in &guard.headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
    }

    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Response<ResponseBody> {
        if request.uri().path() == "/-/reload" {
            return self.reload(request.method()).await;
        }
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return response;
        }
        let path = request.uri().path();
        let gzip = request
            .headers()
            .get(ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip);
        let served = self.served.load();
        if path == self.telemetry_path {
            return metrics(&served, gzip);
        }
        match path {
            "/" => self.status_page(&served, request.uri().query()),
            "/probe" => probe(&served, request.uri().query(), gzip),
            "/-/healthy" => text(StatusCode::OK, "OK\n"),
            "/-/ready" => match readiness(&served, Instant::now()) {
                Ok(()) => text(StatusCode::OK, "Ready\n"),
                Err(why) => owned_text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("Not ready: {why}\n"),
                ),
            },
            _ => text(StatusCode::NOT_FOUND, "Not found\n"),
        }
    }

    /// `POST /-/reload`: re-reads the configuration files; 200 once the new ones are
    /// in force, 500 with the reason when they are refused (the old ones stay).
    async fn reload(&self, method: &Method) -> Response<ResponseBody> {
        if method != Method::POST {
            let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "Use POST to reload\n");
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
        let (answer, outcome) = oneshot::channel();
        let asked = match &self.reloads {
            Some(reloads) => reloads.send(answer).await.is_ok(),
            None => false,
        };
        let outcome = match asked {
            true => outcome
                .await
                .unwrap_or_else(|_| Err("the reload was dropped".into())),
            false => Err("reloading is not available".into()),
        };
        match outcome {
            Ok(changes) => owned_text(StatusCode::OK, format!("Reloaded\n{changes}")),
            Err(reason) => owned_text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Reload failed; the previous configuration stays in force: {reason}\n"),
            ),
        }
    }

    /// The live status page of the top-level database, or of `?target=NAME`; with
    /// only targets and none named, the landing page: every target's health.
    fn status_page(&self, served: &Served, query: Option<&str>) -> Response<ResponseBody> {
        let timer = own::start_scrape(Endpoint::StatusPage);
        let now = Instant::now();
        let targets: Vec<&str> = served.target_names().collect();
        let wanted = query.and_then(target_parameter);
        let shown = match wanted.as_deref() {
            Some(name) => match served.target(name) {
                Some(database) => Some(database),
                None => return unknown_target(served, Some(name)),
            },
            None => served.main.as_ref(),
        };
        let readiness = readiness_note(served, now);
        let context = PageContext {
            telemetry_path: &self.telemetry_path,
            target: shown.and_then(|database| database.name.as_deref()),
            targets: &targets,
            readiness: &readiness,
        };
        let page = match shown {
            Some(database) => status_page::render(&Judgement::of(database, now), &context),
            None => {
                let judged = served
                    .targets()
                    .map(|t| (t.name.as_deref().unwrap_or(""), Judgement::of(t, now)))
                    .collect();
                status_page::landing(judged, &context, served.unconfigured.as_deref())
            }
        };
        let mut response = Response::new(Either::Left(Full::new(Bytes::from(page))));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // Live data: a cached copy would show a fleet that no longer exists.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        drop(timer);
        response
    }
}

/// The readiness rule for the databases served, and whether it holds at `now`.
fn readiness_note(served: &Served, now: Instant) -> String {
    let state = match readiness(served, now) {
        Ok(()) => "ready now".to_string(),
        Err(why) => format!("not ready now: {why}"),
    };
    format!("{} ({state})", readiness_rule(served))
}

/// The top-level database's exposition with the process metrics; with only
/// targets, the exporter's own metrics alone.
fn metrics(served: &Served, gzip: bool) -> Response<ResponseBody> {
    let timer = own::start_scrape(Endpoint::Metrics);
    if served.unconfigured.is_some() {
        return streamed(ExpositionWriter::unconfigured(), gzip, timer);
    }
    let judgement = served
        .main
        .as_ref()
        .map(|main| Judgement::of(main, Instant::now()));
    streamed(ExpositionWriter::new(judgement, true), gzip, timer)
}

/// The value of `target=` in a query string.
pub(super) fn target_parameter(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "target")
        .map(|(_, value)| value.into_owned())
}

/// One target's exposition, from its latest published snapshot at this instant.
pub(super) fn exposition(database: &ServedDatabase, gzip: bool) -> Response<ResponseBody> {
    let timer = own::start_scrape(Endpoint::Probe);
    let judgement = Judgement::of(database, Instant::now());
    streamed(ExpositionWriter::new(Some(judgement), false), gzip, timer)
}

/// An exposition written while it is sent (see [`MetricsBody`]), so a scrape's memory
/// does not grow with the number of services; `timer` records it once sent.
fn streamed(
    writer: ExpositionWriter,
    gzip: bool,
    timer: prometheus::HistogramTimer,
) -> Response<ResponseBody> {
    let body = MetricsBody::new(writer, gzip, Some(timer));
    let mut response = Response::new(Either::Right(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
    headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    if gzip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// 401 with the challenge that makes browsers and Prometheus send credentials.
fn unauthorized() -> Response<ResponseBody> {
    let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    let challenge = format!("Basic realm=\"{REALM}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
}

pub(super) fn text(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    plain_text(status, Bytes::from_static(body.as_bytes()))
}

pub(super) fn owned_text(status: StatusCode, body: String) -> Response<ResponseBody> {
    plain_text(status, Bytes::from(body))
}

fn plain_text(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Either::Left(Full::new(body)));
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
