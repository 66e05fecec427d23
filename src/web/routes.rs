//! What the exporter answers: `/metrics`, the status page at `/`, `/-/healthy` and
//! `/-/ready`, behind basic auth and the configured extra headers.
//!
//! Scrapes and the status page are served from the published snapshot only: they
//! never touch the database.

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
use crate::metrics::{ExpositionWriter, MetricsBody, RenderSettings};
use crate::snapshot::SharedState;

/// The exposition's content type: text format 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every response's body: a small fixed text, or the streamed exposition.
pub type ResponseBody = Either<Full<Bytes>, MetricsBody>;

/// What every request handler needs.
pub struct App {
    state: Arc<SharedState>,
    settings: RenderSettings,
    telemetry_path: String,
    /// With `basic_auth_users` in the web config: every request must authenticate.
    basic_auth: Option<Arc<BasicAuth>>,
    /// `http_server_config.headers`, added to every response.
    extra_headers: Vec<(HeaderName, HeaderValue)>,
}

impl App {
    /// The handler state, without authentication or extra headers.
    pub fn new(state: Arc<SharedState>, settings: RenderSettings, telemetry_path: String) -> App {
        App {
            state,
            settings,
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
        if path == self.telemetry_path {
            let gzip = request
                .headers()
                .get(ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(accepts_gzip);
            return self.metrics(gzip);
        }
        match path {
            "/" => self.status_page(),
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

    /// The live status page, from the latest published snapshot at this instant.
    fn status_page(&self) -> Response<ResponseBody> {
        let context = PageContext {
            settings: &self.settings,
            telemetry_path: &self.telemetry_path,
            now: Instant::now(),
        };
        let page = status_page::render(&self.state.current(), &context);
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

/// 401 with the challenge that makes browsers and Prometheus send credentials.
fn unauthorized() -> Response<ResponseBody> {
    let mut response = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
    let challenge = format!("Basic realm=\"{REALM}\"");
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    response
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
