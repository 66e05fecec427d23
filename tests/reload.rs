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
                "{}: cannot read cinder.conf: not a regular file (a FIFO)",
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
