//! `/probe?target=NAME`: one named database of `targets:`, with the same families as
//! `/metrics` (its own `cinder_up`, thresholds and poll health), as mysqld_exporter
//! and the blackbox exporter serve their targets. The target is one of the configured
//! names, never a database address taken from the request: a scraper cannot make the
//! exporter connect anywhere, and each target is polled in the background, once per
//! poll interval whatever the number of scrapers.
//!
//! A target new to the exporter (at start or added by a reload) answers 503 until its
//! first poll has ended, well or not: it has nothing true to say yet, and `cinder_up 0`
//! would page for a database nobody has asked. A target handed over to a new poller
//! by a reload is served from the previous poller's data meanwhile, never 503.

use std::time::Instant;

use hyper::{Response, StatusCode};

use super::routes::{exposition, owned_text, target_parameter, text, ResponseBody};
use crate::judgement::Judgement;
use crate::served::{Served, ServedDatabase};

/// Longest target name echoed back in an error, so that a long query string is not
/// reflected whole.
const MAX_ECHOED_NAME: usize = 64;

/// Serves the target named by `?target=`, or 400 naming the known ones.
pub(super) fn probe(served: &Served, query: Option<&str>, gzip: bool) -> Response<ResponseBody> {
    if !served.has_targets() {
        return text(
                StatusCode::NOT_FOUND,
                "No targets configured: /probe serves the databases named under targets: in --config.file\n",
            );
    }
    let wanted = query.and_then(target_parameter);
    match wanted.as_deref().and_then(|name| served.target(name)) {
        Some(database) if !Judgement::of(database, Instant::now()).has_answered() => {
            starting(database)
        }
        Some(database) => exposition(database, gzip),
        None => unknown_target(served, wanted.as_deref()),
    }
}

/// 503: the target's first poll has not ended yet.
fn starting(database: &ServedDatabase) -> Response<ResponseBody> {
    let name = database.name.as_deref().unwrap_or("");
    let timeout = database.config().connection.query_timeout;
    owned_text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "target {name:?} is starting: its first poll has not ended yet \
             (it ends within query_timeout, {timeout:?})\n"
        ),
    )
}

/// 400 saying what was wrong with `?target=` and which names are known.
pub(super) fn unknown_target(served: &Served, wanted: Option<&str>) -> Response<ResponseBody> {
    let known = served.target_names().collect::<Vec<_>>().join(", ");
    let problem = match wanted {
        None => "missing ?target=NAME".to_string(),
        Some(name) => {
            let shown: String = name.chars().take(MAX_ECHOED_NAME).collect();
            format!("unknown target {shown:?}")
        }
    };
    owned_text(
        StatusCode::BAD_REQUEST,
        format!("{problem}; known targets: {known}\n"),
    )
}
