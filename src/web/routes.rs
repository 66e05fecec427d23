//! What the exporter answers: `/metrics`, `/probe` (in [`super::probe`]), the status
//! page at `/` (in [`super::status_page`]), `/-/healthy` and `/-/ready`, behind basic
//! auth and the configured extra headers.
//!
//! Scrapes are served from the published snapshot only: they never touch the
//! database.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{
    HeaderName, HeaderValue, ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL,
    CONTENT_ENCODING, CONTENT_TYPE, VARY, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response, StatusCode};

use super::basic_auth::{BasicAuth, REALM};
use super::status_page::{self, PageContext};
use crate::metrics::{exporter_only, ExpositionWriter, MetricsBody, RenderSettings};
use crate::targets::{Endpoint, Targets};

/// The exposition's content type: text format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every response's body: a small fixed text, or the streamed exposition.
pub type ResponseBody = Either<Full<Bytes>, MetricsBody>;

/// What every request handler needs.
pub struct App {
    /// The top-level database, served on the telemetry path; `None` with only targets.
    main: Option<Endpoint>,
    /// The named databases, served on `/probe?target=NAME`.
    pub(super) targets: Targets,
    telemetry_path: String,
    /// With `basic_auth_users` in the web config: every request must authenticate.
    basic_auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every response.
    extra_headers: Vec<(HeaderName, HeaderValue)>,
}

impl App {
    /// The handler state, without authentication or extra headers.
    pub fn new(main: Option<Endpoint>, targets: Targets, telemetry_path: String) -> App {
        App {
            main,
            targets,
            telemetry_path,
            basic_auth: None,
            extra_headers: Vec::new(),
        }
    }

    /// Requires basic auth on every path.
    pub fn with_basic_auth(mut self, basic_auth: Option<Arc<BasicAuth>>) -> App {
        self.basic_auth = basic_auth;
        self
    }

    /// Adds these headers to every response.
    pub fn with_headers(mut self, headers: Vec<(HeaderName, HeaderValue)>) -> App {
        self.extra_headers = headers;
        self
    }

    /// Authentication, routing, then the configured extra headers.
    pub(super) async fn respond(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Response<ResponseBody> {
        let mut response = match &self.basic_auth {
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
        for (name, value) in &self.extra_headers {
            response.headers_mut().insert(name.clone(), value.clone());
        }
        response
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
        let gzip = request
            .headers()
            .get(ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(accepts_gzip);
        if path == self.telemetry_path {
            return self.metrics(gzip);
        }
        match path {
            "/" => self.status_page(request.uri().query()),
            "/probe" => self.probe(request.uri().query(), gzip),
            "/-/healthy" => text(StatusCode::OK, "OK\n"),
            "/-/ready" if self.is_ready() => text(StatusCode::OK, "Ready\n"),
            "/-/ready" if self.main.is_some() => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: no successful poll of the cinder database yet\n",
            ),
            "/-/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: a target's first poll has not ended yet\n",
            ),
            _ => text(StatusCode::NOT_FOUND, "Not found\n"),
        }
    }

    /// With a top-level database: once its first poll succeeded (as before targets).
    /// With only targets: once every target's first poll has ended, well or not, since
    /// a target whose database is down is still answered truthfully (`cinder_up 0`),
    /// and one dead database must not take the others out of a load balancer.
    fn is_ready(&self) -> bool {
        match &self.main {
            Some(main) => main.state.is_ready(),
            None => self.targets.iter().all(|(_, t)| t.has_answered()),
        }
    }

    /// The top-level database's exposition with the process metrics; with only
    /// targets, the exporter's own metrics alone.
    fn metrics(&self, gzip: bool) -> Response<ResponseBody> {
        match &self.main {
            Some(main) => exposition(main, gzip),
            None => {
                let body = exporter_only(&RenderSettings::build_labels());
                let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
                response
            }
        }
    }

    /// The live status page of the top-level database, or of `?target=NAME`; with
    /// only targets and none named, the list of them.
    fn status_page(&self, query: Option<&str>) -> Response<ResponseBody> {
        let targets: Vec<&str> = self.targets.names().collect();
        let wanted = query.and_then(target_parameter);
        let shown = match wanted.as_deref() {
            Some(name) => match self.targets.get(name) {
                Some(endpoint) => Some((Some(name), endpoint)),
                None => return self.unknown_target(Some(name)),
            },
            None => self.main.as_ref().map(|main| (None, main)),
        };
        let context = |settings| PageContext {
            settings,
            telemetry_path: &self.telemetry_path,
            now: Instant::now(),
            target: shown.and_then(|(name, _)| name),
            targets: &targets,
        };
        let page = match shown {
            Some((_, endpoint)) => {
                status_page::render(&endpoint.state.current(), &context(&endpoint.settings))
            }
            None => status_page::index(&targets, &self.telemetry_path),
        };
        let mut response = Response::new(Either::Left(Full::new(Bytes::from(page))));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        // Live data: a cached copy would show a fleet that no longer exists.
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The value of `target=` in a query string.
pub(super) fn target_parameter(query: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "target")
        .map(|(_, value)| value.into_owned())
}

/// One database's exposition, from its latest published snapshot at this instant. It
/// is written while it is sent (see [`MetricsBody`]), so a scrape's memory does not
/// grow with the number of services.
pub(super) fn exposition(endpoint: &Endpoint, gzip: bool) -> Response<ResponseBody> {
    let writer =
        ExpositionWriter::new(endpoint.state.current(), &endpoint.settings, Instant::now());
    let mut response = Response::new(Either::Right(MetricsBody::new(writer, gzip)));
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
