//! Reloading without a restart: SIGHUP and `POST /-/reload` read `--config.file` and
//! `--web.config.file` again. A database left as it was keeps its poller and every
//! service's diagnosis; new thresholds apply from the next scrape; a bad file keeps the
//! running configuration and says so; the endpoint's certificate follows its files.

mod common;

use std::time::Duration;

use common::certs::Pki;
use common::http::raw_request;
use common::https::TlsClient;
use common::{
    run_exporter_to_exit, wait_until, Database, Exporter, ExporterOptions, Schema, Scrape,
    Simulator,
};

const WAIT: Duration = Duration::from_secs(30);

const FLEET: &str = "\
services:
  - host: steady@lvm
    interval: 1
";

fn post_reload(exporter: &Exporter) -> common::http::Response {
    raw_request(
        &exporter.address,
        "POST /-/reload HTTP/1.1\r\nHost: exporter\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
}

fn value(scrape: &Scrape, metric: &str) -> f64 {
    scrape
        .value(metric, &[])
        .unwrap_or_else(|| panic!("no {metric}"))
}

#[test]
fn a_reload_keeps_the_poller_and_applies_new_thresholds() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("quiet@lvm", "cinder-volume", Some(-3600), Some(-40), 3);
    let _fleet = Simulator::start(&db.url(), FLEET);
    let config = |extra: &str| format!("database:\n  url: {}\n{extra}", db.url());
    let exporter = Exporter::start(ExporterOptions::with_yaml(&config(
        "poll_interval: 200ms\nservice_down_time: 60s\n",
    )));
    let interval = |s: &Scrape| {
        s.value(
            "cinder_service_heartbeat_interval_seconds",
            &[("host", "steady@lvm")],
        )
    };
    let before = exporter.wait_for("the steady service's interval", WAIT, |s| {
        interval(s).is_some()
    });
    assert_eq!(
        before.value("cinder_service_up", &[("host", "quiet@lvm")]),
        Some(1.0)
    );
    let loaded_at = value(
        &before,
        "cinder_exporter_config_last_reload_success_timestamp_seconds",
    );

    // The same database, a shorter service_down_time, and a poll interval so long that
    // the poller must not poll again: a new poller would poll at once and start its
    // diagnosis from nothing (no interval after one reading).
    exporter.rewrite_config(&config(
        "poll_interval: 1h\nstale_after: 2h\nservice_down_time: 30s\n",
    ));
    exporter.hangup();
    exporter.wait_for_log("configuration reloaded");
    let after = exporter.scrape();
    assert_eq!(
        after.value("cinder_config_service_down_time_seconds", &[]),
        Some(30.0)
    );
    // 40 s old: up under 60 s, down under 30 s, from this scrape on.
    assert_eq!(
        after.value("cinder_service_up", &[("host", "quiet@lvm")]),
        Some(0.0)
    );
    assert!(
        interval(&after).is_some(),
        "diagnosis lost:\n{}",
        after.text
    );
    assert_eq!(
        value(&after, "cinder_exporter_poll_errors_total"),
        value(&before, "cinder_exporter_poll_errors_total")
    );
    assert_eq!(
        value(&after, "cinder_exporter_config_last_reload_successful"),
        1.0
    );
    assert!(
        value(
            &after,
            "cinder_exporter_config_last_reload_success_timestamp_seconds"
        ) > loaded_at
    );
    let log = exporter.log();
    assert!(log.contains("change=updated"), "{log}");
    assert!(!log.contains("change=restarted"), "{log}");
}

#[test]
fn a_bad_file_keeps_the_running_configuration_and_says_why() {
    let mut exporter = Exporter::start(
        ExporterOptions::without_database().with_config("service_down_time: 45s\n"),
    );
    let good = std::fs::read_to_string(exporter.config_path()).expect("config");
    let down_time = |s: &Scrape| value(s, "cinder_config_service_down_time_seconds");
    let successful = |s: &Scrape| value(s, "cinder_exporter_config_last_reload_successful");
    let first = exporter.scrape();
    assert_eq!((down_time(&first), successful(&first)), (45.0, 1.0));

    exporter.rewrite_config(&format!("{good}service_down_time: [\n"));
    exporter.hangup();
    let logged = exporter.wait_for_log("reload failed");
    assert!(logged.contains("config.yml:"), "{logged}");
    let scrape = exporter.scrape();
    assert_eq!((down_time(&scrape), successful(&scrape)), (45.0, 0.0));

    let refused = post_reload(&exporter);
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert!(refused.body.contains("config.yml:"), "{}", refused.body);
    let (status, _) = exporter.get("/-/reload");
    assert_eq!(status, 405);

    exporter.rewrite_config(&good.replace("45s", "50s"));
    let accepted = post_reload(&exporter);
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let scrape = exporter.scrape();
    assert_eq!((down_time(&scrape), successful(&scrape)), (50.0, 1.0));
    assert!(
        value(
            &scrape,
            "cinder_exporter_config_last_reload_success_timestamp_seconds"
        ) > value(
            &first,
            "cinder_exporter_config_last_reload_success_timestamp_seconds"
        )
    );

    // SIGHUP, however often, never ends the process: one at a time, each reloads;
    // in a burst, the kernel may merge them into fewer.
    let reloads = || exporter.log().matches("configuration reloaded").count();
    for _ in 0..3 {
        let before = reloads();
        exporter.hangup();
        wait_until("a reload", WAIT, || reloads() > before);
    }
    let before = reloads();
    for _ in 0..20 {
        exporter.hangup();
    }
    wait_until("the burst's reloads", WAIT, || reloads() > before);
    assert!(exporter.is_running());
    assert_eq!(exporter.get("/-/healthy").0, 200);
}

#[test]
fn the_web_config_and_the_certificate_follow_their_files() {
    let pki = Pki::new();
    let tls = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display()
    );
    let web_config = pki.web_config(&tls);
    let exporter = Exporter::start(
        ExporterOptions::without_database()
            .with_args(&["--web.config.file", web_config.to_str().unwrap()]),
    );
    let client = TlsClient::default();
    let healthy = |pki: &Pki| {
        client
            .get(pki, &exporter.address, "/-/healthy")
            .map(|r| r.status)
    };
    assert_eq!(healthy(&pki), Ok(200));

    // A renewed certificate from another CA replaces the files in place.
    let renewed = Pki::new();
    for file in ["server.key", "server.crt"] {
        let text = std::fs::read_to_string(renewed.path(file)).unwrap();
        pki.write(file, &text);
    }
    wait_until("the renewed certificate", WAIT, || {
        healthy(&renewed) == Ok(200)
    });
    assert!(
        healthy(&pki).is_err(),
        "the old certificate is still served"
    );
    assert!(exporter.log().contains("TLS certificate changed on disk"));

    // Basic auth added to the web config takes effect on SIGHUP.
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    pki.web_config(&format!("{tls}basic_auth_users:\n  prometheus: {hash}\n"));
    exporter.hangup();
    exporter.wait_for_log("configuration reloaded");
    assert_eq!(healthy(&renewed), Ok(401));
}

/// The exporter's threads named `name` (the poller's thread is named `poller`).
fn threads_named(exporter: &Exporter, name: &str) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", exporter.pid())).expect("tasks");
    tasks
        .filter_map(Result::ok)
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .count()
}

/// How many entries `/proc/PID/<dir>` has: `task` (threads) or `fd` (open files).
fn proc_entries(exporter: &Exporter, dir: &str) -> usize {
    std::fs::read_dir(format!("/proc/{}/{dir}", exporter.pid()))
        .expect("proc")
        .count()
}

/// The server's connections to `db` but the one asking and `except` (the lock holder):
/// the exporter's, since nothing else uses a test's database.
fn exporter_connections(db: &Database, except: u64) -> u64 {
    db.query_one(&format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
         WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND ID <> {except}"
    ))
}

#[test]
fn reloads_while_the_table_is_locked_are_never_blind_and_leave_nothing_behind() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("svc@lvm", "cinder-volume", Some(-100), Some(0), 1);
    // A query_timeout far longer than the test: whatever ends a replaced poller's query
    // is the reload, not the timeout.
    let config = |timeout: u32| {
        format!(
            "database:\n  url: {}\npoll_interval: 200ms\nstale_after: 10m\nquery_timeout: {timeout}s\n",
            db.url()
        )
    };
    let exporter = Exporter::start(ExporterOptions::with_yaml(&config(300)));
    let served = |s: &Scrape| s.value("cinder_up", &[]) == Some(1.0) && has_service(s, "svc@lvm");
    exporter.wait_for("the service", WAIT, served);
    let reloads = || exporter.log().matches("configuration reloaded").count();
    let reload_with = |timeout: u32| {
        let before = reloads();
        exporter.rewrite_config(&config(timeout));
        exporter.hangup();
        wait_until("the reload", WAIT, || reloads() > before);
    };
    // A first reload, so that the baseline counts what any reload leaves (the thread
    // that read the files), and a poll of the new poller (its pooled connection).
    reload_with(301);
    exporter.wait_for("the new poller's poll", WAIT, served);
    let polled = |s: &Scrape| value(s, "cinder_exporter_last_successful_poll_timestamp_seconds");
    let first = polled(&exporter.scrape());
    exporter.wait_for("a later poll", WAIT, |s| polled(s) > first);
    let (threads, fds) = (
        proc_entries(&exporter, "task"),
        proc_entries(&exporter, "fd"),
    );
    let connections = exporter_connections(&db, 0);
    assert_eq!(threads_named(&exporter, "poller"), 1);

    let lock = db.lock_services();
    // Each reload replaces the poller while its query waits on the lock.
    for reload in 0..20 {
        reload_with(302 + reload);
        let scrape = exporter.scrape();
        assert!(
            served(&scrape),
            "reload {reload}: blind while the previous reading is fresh:\n{}",
            scrape.text
        );
        assert_eq!(exporter.get("/-/ready").0, 200, "reload {reload}");
    }
    assert_eq!(exporter.log().matches("change=restarted").count(), 21);
    let counts = || {
        (
            threads_named(&exporter, "poller"),
            proc_entries(&exporter, "task"),
            proc_entries(&exporter, "fd"),
            exporter_connections(&db, lock.connection_id),
        )
    };
    poll_counts(counts, (1, threads, fds, connections));
    eprintln!(
        "after 20 reloads on a locked table: (poller threads, threads, fds, server connections) = {:?}; \
         baseline ({}, {threads}, {fds}, {connections})",
        counts(),
        1
    );

    // The lock goes: the newest poller answers, and serves its own reading.
    lock.release();
    let locked_at = polled(&exporter.scrape());
    exporter.wait_for("the newest poller's reading", WAIT, |s| {
        served(s) && polled(s) > locked_at
    });
}

/// Waits until `counts` is at most `baseline` in every figure, or panics after [`WAIT`].
fn poll_counts(
    counts: impl Fn() -> (usize, usize, usize, u64),
    baseline: (usize, usize, usize, u64),
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let now = counts();
        let (a, b) = (now, baseline);
        if a.0 <= b.0 && a.1 <= b.1 && a.2 <= b.2 && a.3 <= b.3 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "(poller threads, threads, fds, server connections) {now:?} never came back to \
             the baseline {baseline:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn has_service(scrape: &Scrape, host: &str) -> bool {
    scrape
        .value("cinder_service_up", &[("host", host)])
        .is_some()
}

#[test]
fn a_fifo_or_a_device_is_refused_at_start_and_on_reload_and_sigterm_still_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cinder.conf");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let huge = dir.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let config = dir.path().join("config.yml");
    for (yaml, expected) in [
        (
            format!("cinder_conf: {}\n", fifo.display()),
            format!(
                "cinder_conf: cannot read {}: not a regular file (a FIFO)",
                fifo.display()
            ),
        ),
        (
            "database:\n  url_file: /dev/zero\n".to_string(),
            "cannot read /dev/zero: not a regular file (a character device)".to_string(),
        ),
        (
            format!("database:\n  url_file: {}\n", huge.display()),
            format!(
                "cannot read {}: larger than 1048576 bytes (1 MiB)",
                huge.display()
            ),
        ),
    ] {
        std::fs::write(&config, &yaml).unwrap();
        let (code, stderr) =
            run_exporter_to_exit(&["--config.file", config.to_str().unwrap()], &[]);
        assert_eq!(code, Some(2), "{yaml}: {stderr}");
        assert!(stderr.contains(&expected), "{yaml}: {stderr}");
    }

    // On a reload: refused, the running configuration kept, and SIGTERM answered.
    let mut exporter = Exporter::start(
        ExporterOptions::without_database().with_config("service_down_time: 45s\n"),
    );
    let good = std::fs::read_to_string(exporter.config_path()).unwrap();
    exporter.rewrite_config(&format!("{good}cinder_conf: {}\n", fifo.display()));
    exporter.hangup();
    let logged = exporter.wait_for_log("reload failed");
    assert!(logged.contains("not a regular file (a FIFO)"), "{logged}");
    let refused = post_reload(&exporter);
    assert_eq!(refused.status, 500, "{}", refused.body);
    assert!(refused.body.contains("(a FIFO)"), "{}", refused.body);
    assert_eq!(
        value(
            &exporter.scrape(),
            "cinder_config_service_down_time_seconds"
        ),
        45.0
    );
    let status = exporter.terminate(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
