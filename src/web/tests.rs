//! The routes tested in-process: requests built in memory, answered by [`App`] over
//! databases whose published state the test sets. What needs a real socket or process
//! (TLS, connection limits, signals) is in `tests/`.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Request, Response, StatusCode};
use tokio::sync::{mpsc, watch};

use super::routes::{App, Guard, ResponseBody};
use crate::cinder::Diagnosis;
use crate::metrics::own;
use crate::series::{schema, LabelSet};
use crate::served::{Served, ServedDatabase};
use crate::snapshot::{PollHealth, Published, ServiceState, SharedState};

/// A database served with `yaml`'s settings (beside a URL), nothing published yet.
fn database(name: Option<&str>, yaml: &str) -> ServedDatabase {
    let (updates, receiver) = watch::channel(crate::config::for_tests(yaml));
    // The sender may go: a receiver keeps the last value.
    drop(updates);
    ServedDatabase {
        name: name.map(str::to_string),
        state: Arc::new(SharedState::default()),
        config: receiver,
        handover: Arc::default(),
    }
}

/// Publishes a successful poll of one service `host`, heartbeating 5 s ago.
fn publish_one(database: &ServedDatabase, host: &str) {
    publish(database, vec![service(host)]);
}

/// An enabled service `host` that heartbeated 5 s before the poll, with no interval
/// observed yet.
fn service(host: &str) -> ServiceState {
    ServiceState {
        id: 1,
        labels: LabelSet::new([
            ("host", host),
            ("binary", "cinder-volume"),
            ("zone", "nova"),
        ]),
        info_labels: LabelSet::new([("cluster", "")]),
        compat_labels: None,
        enabled: true,
        report_count: 3,
        last_heartbeat: Some(1_000),
        updated_at: Some(1_000),
        diagnosis: Diagnosis {
            heartbeat_interval: None,
            clock_offset: None,
            count_seen_since: 1_000.0,
            advance_seen: false,
        },
        heartbeat_silence: 0.0,
    }
}

/// Publishes a successful poll, at reference time 1,005, of `services`.
fn publish(database: &ServedDatabase, services: Vec<ServiceState>) {
    database
        .state
        .publish(Published::polled(services, 1_005.0, Instant::now()));
}

/// Publishes a failed first poll.
fn publish_failure(database: &ServedDatabase) {
    database.state.publish(Published {
        snapshot: None,
        health: PollHealth {
            errors_total: 1,
            ..PollHealth::default()
        },
    });
}

fn app(databases: impl IntoIterator<Item = ServedDatabase>) -> Arc<App> {
    let mut served = Served::default();
    for database in databases {
        served.insert(database);
    }
    Arc::new(App::new(
        served,
        Guard::of(Default::default()),
        "/metrics".into(),
    ))
}

/// The answer to `method path` with `headers`: status, headers, body.
async fn ask(
    app: &Arc<App>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response: Response<ResponseBody> = Arc::clone(app).respond(request.body(()).unwrap()).await;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("a whole body").to_bytes();
    (parts.status, parts.headers, body)
}

async fn get(app: &Arc<App>, path: &str) -> (StatusCode, String) {
    let (status, _, body) = ask(app, "GET", path, &[]).await;
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_endpoints_of_one_database() {
    let main = database(None, "");
    let app = app([main.clone()]);
    assert_eq!(get(&app, "/-/healthy").await.0, StatusCode::OK);
    let (status, body) = get(&app, "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "Not ready: no successful poll of the cinder database yet\n"
    );
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(metrics.contains("\ncinder_up 0\n"), "{metrics}");
    assert!(!metrics.contains("cinder_service_up"));

    publish_one(&main, "ctl1@lvm");
    assert_eq!(get(&app, "/-/ready").await.0, StatusCode::OK);
    let (_, metrics) = get(&app, "/metrics").await;
    let sample = "cinder_service_up{host=\"ctl1@lvm\",binary=\"cinder-volume\",zone=\"nova\"} 1\n";
    assert!(metrics.contains(sample), "{metrics}");
    assert!(metrics.contains("# TYPE process_open_fds gauge"));
    let (_, page) = get(&app, "/").await;
    assert!(page.contains("href=\"/metrics\"") && page.contains("ctl1@lvm"));
    assert_eq!(get(&app, "/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/probe").await.0, StatusCode::NOT_FOUND);

    let (status, headers, _) = ask(&app, "POST", "/metrics", &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET, HEAD");

    // gzip when asked, with the same exposition inside.
    let (_, headers, body) = ask(&app, "GET", "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&body[..]), &mut text).unwrap();
    assert!(text.contains(sample), "{text}");
}

/// A top-level database not configured yet (its cinder.conf is not there): the
/// exporter's answers say so, each where an operator or Prometheus looks.
#[tokio::test]
async fn a_database_not_configured_yet_says_so_everywhere() {
    let why = crate::config::parse_setup("cinder_conf: /nonexistent/cinder.conf\n", "c.yml", None)
        .unwrap()
        .unconfigured
        .expect("not configured yet");
    let mut served = Served::default();
    served.unconfigured = Some(why.to_string());
    let app = Arc::new(App::new(
        served,
        Guard::of(Default::default()),
        "/metrics".into(),
    ));
    let (status, metrics) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.starts_with("# HELP cinder_up ") && metrics.contains("\ncinder_up 0\n"));
    assert!(metrics.contains("cinder_exporter_build_info{"), "{metrics}");
    let (_, page) = get(&app, "/").await;
    assert!(
        page.contains("c.yml:1:1: cinder_conf names /nonexistent/cinder.conf"),
        "{page}"
    );
    let (status, body) = get(&app, "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not configured yet"), "{body}");
    assert_eq!(get(&app, "/-/healthy").await.0, StatusCode::OK);
}

#[tokio::test]
async fn probe_serves_each_target_and_names_the_known_ones() {
    let (east, west) = (database(Some("east"), ""), database(Some("west"), ""));
    publish_one(&east, "e@lvm");
    publish_failure(&west);
    let app = app([east, west]);
    for (path, problem) in [
        ("/probe", "missing ?target=NAME"),
        ("/probe?target=", "unknown target \"\""),
        ("/probe?target=north", "unknown target \"north\""),
        ("/probe?target=EAST", "unknown target \"EAST\""),
        ("/?target=north", "unknown target \"north\""),
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body, format!("{problem}; known targets: east, west\n"));
    }
    // Percent-encoding is decoded like any query parameter.
    let (status, east) = get(&app, "/probe?target=%65ast").await;
    assert_eq!(status, StatusCode::OK);
    assert!(east.contains("\ncinder_up 1\n") && east.contains("host=\"e@lvm\""));
    assert!(
        !east.contains("process_"),
        "/probe answers for a database only"
    );
    let (_, west) = get(&app, "/probe?target=west").await;
    assert!(west.contains("\ncinder_up 0\n") && !west.contains("e@lvm"));
    // With only targets, /metrics is the exporter's own, and / lists the targets.
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(metrics.contains("cinder_exporter_build_info{"));
    assert!(!metrics.contains("cinder_up"), "{metrics}");
    let (_, page) = get(&app, "/").await;
    assert!(page.contains("href=\"/?target=east\"") && page.contains("href=\"/?target=west\""));
}

#[tokio::test]
async fn the_landing_page_shows_every_target_worst_first() {
    let (east, west) = (database(Some("east"), ""), database(Some("we<st>"), ""));
    let (north, south) = (database(Some("north"), ""), database(Some("south"), ""));
    let mut down = service("d@lvm");
    (down.last_heartbeat, down.updated_at) = (Some(900), Some(900));
    let mut disabled = service("off@lvm");
    disabled.enabled = false;
    publish(&east, vec![service("e@lvm"), down, disabled]);
    publish_failure(&west);
    publish_one(&north, "n@lvm");
    let app = app([east, west, north, south]);
    let (status, page) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    // Each name escaped, linked to its page and its metrics.
    assert!(!page.contains("we<st>"), "{page}");
    let west_link = "<a href=\"/?target=we%3Cst%3E\">we&lt;st&gt;</a>";
    assert!(page.contains(west_link), "{page}");
    assert!(page.contains("href=\"/probe?target=we%3Cst%3E\""));
    // Worst first: never read (south, west, by name), then services down, then healthy.
    let rows: Vec<usize> = [
        "/?target=south\"",
        "/?target=we%3Cst%3E\"",
        "/?target=east\"",
        "/?target=north\"",
    ]
    .iter()
    .map(|link| page.find(link).unwrap_or_else(|| panic!("{link}: {page}")))
    .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "{rows:?}\n{page}");
    // east: one enabled down, one up, one disabled; north: one up.
    let east_row = &page[rows[2]..rows[3]];
    assert!(
        east_row.contains(
            "<span class=\"pill dn\">1</span></td><td class=\"num\">1</td><td class=\"num\">1</td>"
        ),
        "{east_row}"
    );
    assert!(page[rows[1]..rows[2]].contains("never read"));
    assert!(
        page.contains(
            "ready once every target&#39;s first poll has ended, well or not (not ready now"
        ),
        "{page}"
    );
    assert!(!page.contains("first poll of the database succeeded"));
}

#[tokio::test]
async fn the_status_page_shows_the_early_warning_and_the_readiness_rule() {
    let main = database(None, "");
    let mut warned = service("warned@lvm");
    warned.diagnosis.heartbeat_interval = Some(1.0);
    // 4.5 s silent at a 1 s pace: floor(4.5 - 0.5) = 4 heartbeats missed, still up.
    warned.heartbeat_silence = 4.5;
    let mut fine = service("fine@lvm");
    fine.diagnosis.heartbeat_interval = Some(10.0);
    fine.heartbeat_silence = 4.5;
    publish(&main, vec![fine, warned]);
    let app = app([main]);
    let (_, page) = get(&app, "/").await;
    // The warned service comes first, its count a red pill; the other shows 0.
    let (warned_at, fine_at) = (
        page.find("warned@lvm").unwrap(),
        page.find("fine@lvm").unwrap(),
    );
    assert!(warned_at < fine_at, "{page}");
    let warned_row = &page[warned_at..fine_at];
    assert!(
        warned_row.contains("<span class=\"pill dn\">4</span></td><td class=\"num\">4.5 s</td>"),
        "{warned_row}"
    );
    assert!(page[fine_at..].contains("<td class=\"num\">0</td><td class=\"num\">4.5 s</td>"));
    assert!(page.contains("<tr class=\"warn\">"));
    assert!(page.contains("<b>1</b>up, heartbeats missed"));
    assert!(
        page.contains("ready once the first poll of the database succeeded (ready now)"),
        "{page}"
    );
}

#[tokio::test]
async fn with_only_targets_ready_once_every_target_has_answered() {
    let (east, west) = (database(Some("east"), ""), database(Some("west"), ""));
    let app = app([east.clone(), west.clone()]);
    publish_one(&east, "e@lvm");
    let (status, body) = get(&app, "/-/ready").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "Not ready: a target's first poll has not ended yet\n");
    // A failed poll is an answer too: cinder_up 0 is true of that database.
    publish_failure(&west);
    assert_eq!(get(&app, "/-/ready").await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_new_target_says_it_is_starting_until_its_first_poll_ends() {
    let north = database(Some("north"), "query_timeout: 7s");
    let app = app([north.clone()]);
    let (status, body) = get(&app, "/probe?target=north").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "target \"north\" is starting: its first poll has not ended yet \
         (it ends within query_timeout, 7s)\n"
    );
    publish_failure(&north);
    let (status, body) = get(&app, "/probe?target=north").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\ncinder_up 0\n"), "{body}");
}

#[tokio::test]
async fn a_handed_over_database_serves_the_previous_data_until_its_new_poller_answers() {
    // The previous poller's reading, and a new poller (a reload changed the connection)
    // that has not answered yet.
    let previous = database(None, "");
    publish_one(&previous, "old@lvm");
    let mut main = database(None, "");
    main.handover = Arc::new(crate::served::Handover::from(Some(Arc::clone(
        &previous.state,
    ))));
    let mut east = database(Some("east"), "");
    east.handover = Arc::clone(&main.handover);
    let app = app([main.clone(), east.clone()]);
    for path in ["/metrics", "/probe?target=east"] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(
            body.contains("\ncinder_up 1\n") && body.contains("host=\"old@lvm\""),
            "{path}: {body}"
        );
    }
    assert_eq!(get(&app, "/-/ready").await.0, StatusCode::OK);
    // The new poller answers: from then on its data only, and the previous is let go.
    publish_one(&main, "new@lvm");
    let (_, body) = get(&app, "/metrics").await;
    assert!(
        body.contains("host=\"new@lvm\"") && !body.contains("old@lvm"),
        "{body}"
    );
    assert!(main.handover.previous().is_none());
    assert_eq!(Arc::strong_count(&previous.state), 1);
}

#[tokio::test]
async fn stale_after_withholds_the_services_on_every_endpoint() {
    let main = database(None, "poll_interval: 1s\nstale_after: 1s");
    publish_one(&main, "ctl1@lvm");
    let app = app([main]);
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(metrics.contains("\ncinder_up 1\n"));
    assert!(!metrics.contains("ctl1@lvm"), "{metrics}");
    let (_, page) = get(&app, "/").await;
    assert!(page.contains("older than stale_after") && !page.contains("ctl1@lvm"));
}

#[tokio::test]
async fn reload_asks_the_reloader_and_reports_what_it_did() {
    let (sender, mut requests) = mpsc::channel(1);
    let app = Arc::new(
        App::new(
            Served::default(),
            Guard::of(Default::default()),
            "/m".into(),
        )
        .with_reloads(sender),
    );
    let reloader = tokio::spawn(async move {
        let answer: super::ReloadRequest = requests.recv().await.unwrap();
        let _ = answer.send(Ok("top-level: kept\n".into()));
        let answer: super::ReloadRequest = requests.recv().await.unwrap();
        let _ = answer.send(Err("c.yml:3:1: bad".into()));
    });
    let (status, body) = {
        let (s, _, b) = ask(&app, "POST", "/-/reload", &[]).await;
        (s, String::from_utf8(b.to_vec()).unwrap())
    };
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "Reloaded\ntop-level: kept\n")
    );
    let (status, _, body) = ask(&app, "POST", "/-/reload", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(String::from_utf8_lossy(&body).ends_with("c.yml:3:1: bad\n"));
    reloader.await.unwrap();
    let (status, headers, _) = ask(&app, "GET", "/-/reload", &[]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");
}

#[tokio::test]
async fn scrapes_are_counted_and_timed_per_endpoint() {
    let main = database(None, "");
    let app = app([main]);
    let count = || own::histogram_count(&schema::SCRAPE_DURATION, "/metrics");
    let before = count();
    let (_, metrics) = get(&app, "/metrics").await;
    assert!(
        count() > before,
        "the scrape was timed once its body was out"
    );
    assert!(metrics.contains("# TYPE cinder_exporter_scrape_duration_seconds histogram"));
    assert!(metrics.contains("cinder_exporter_scrapes_total{endpoint=\"/metrics\"}"));
}

fn basic(credentials: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

#[tokio::test]
async fn basic_auth_lets_in_only_the_right_password_on_every_path() {
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let other = bcrypt::hash("other", 4).unwrap();
    let text = format!(
        "basic_auth_users:\n  prometheus: {hash}\n  grafana: {other}\nhttp_server_config:\n  \
         headers:\n    X-Frame-Options: DENY\n"
    );
    let security = super::parse_web_config(&text, "web.yml", std::path::Path::new("/")).unwrap();
    let main = database(None, "");
    let mut served = Served::default();
    served.insert(main);
    let app = Arc::new(App::new(served, Guard::of(security), "/metrics".into()));
    let good = basic("prometheus:correct horse");
    let (status, headers, body) = ask(&app, "GET", "/metrics", &[("authorization", &good)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(String::from_utf8_lossy(&body).contains("cinder_up 0"));

    let refused = [
        ("wrong password", basic("prometheus:Correct horse")),
        ("unknown user", basic("mallory:correct horse")),
        ("another user's password", basic("grafana:correct horse")),
        ("no colon", basic("prometheus")),
        ("bad base64", "Basic !!!notbase64".to_string()),
        ("another scheme", "Bearer abc".to_string()),
        ("empty", String::new()),
    ];
    let paths = [
        "/metrics",
        "/",
        "/-/healthy",
        "/-/ready",
        "/nope",
        "/-/reload",
    ];
    for (what, header) in refused
        .iter()
        .map(|(w, h)| (*w, Some(h.as_str())))
        .chain([("none", None)])
    {
        for path in paths {
            let headers: Vec<(&str, &str)> =
                header.map(|h| ("authorization", h)).into_iter().collect();
            let (status, response_headers, body) = ask(&app, "GET", path, &headers).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} {path}");
            assert_eq!(
                response_headers["www-authenticate"],
                "Basic realm=\"cinder_exporter\""
            );
            assert_eq!(
                response_headers["x-frame-options"], "DENY",
                "on every response"
            );
            assert!(
                !String::from_utf8_lossy(&body).contains("cinder_"),
                "{what}"
            );
        }
    }
    // The right credentials keep working, many times over (the cache serves them).
    for _ in 0..20 {
        let (status, _, _) = ask(&app, "GET", "/metrics", &[("authorization", &good)]).await;
        assert_eq!(status, StatusCode::OK);
    }
}
