//! `/probe?target=NAME`: one named database of `targets:`, with the same families as
//! `/metrics` (its own `cinder_up`, thresholds and poll health), as mysqld_exporter
//! and the blackbox exporter serve their targets. The target is one of the configured
//! names, never a database address taken from the request: a scraper cannot make the
//! exporter connect anywhere, and each target is polled in the background, once per
//! poll interval whatever the number of scrapers.

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::routes::{exposition, target_parameter, text, ResponseBody, Served};

/// Longest target name echoed back in an error, so that a long query string is not
/// reflected whole.
const MAX_ECHOED_NAME: usize = 64;

/// Serves the target named by `?target=`, or 400 naming the known ones.
pub(super) fn probe(served: &Served, query: Option<&str>, gzip: bool) -> Response<ResponseBody> {
    if served.targets.is_empty() {
        return text(
                StatusCode::NOT_FOUND,
                "No targets configured: /probe serves the databases named under targets: in --config.file\n",
            );
    }
    let wanted = query.and_then(target_parameter);
    match wanted.as_deref().and_then(|name| served.targets.get(name)) {
        Some(endpoint) => exposition(endpoint, gzip),
        None => unknown_target(served, wanted.as_deref()),
    }
}

/// 400 saying what was wrong with `?target=` and which names are known.
pub(super) fn unknown_target(served: &Served, wanted: Option<&str>) -> Response<ResponseBody> {
    let known = served.targets.names().collect::<Vec<_>>().join(", ");
    let problem = match wanted {
        None => "missing ?target=NAME".to_string(),
        Some(name) => {
            let shown: String = name.chars().take(MAX_ECHOED_NAME).collect();
            format!("unknown target {shown:?}")
        }
    };
    let body = format!("{problem}; known targets: {known}\n");
    let mut response = Response::new(Either::Left(Full::new(Bytes::from(body))));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
