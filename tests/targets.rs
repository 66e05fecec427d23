//! Several databases, one exporter: `targets:` served on `/probe?target=NAME`, each
//! with its own thresholds, poller and fate, over real MariaDB databases; `/metrics`
//! beside them; and the process metrics.

mod common;

use std::time::{Duration, Instant};

use common::{run_exporter_to_exit, Database, Exporter, ExporterOptions, Schema, Scrape};

const WAIT: Duration = Duration::from_secs(30);

/// Inserts a live cinder-volume row whose heartbeat is `age` seconds old.
fn insert(db: &Database, host: &str, age: i64) {
    db.exec_with(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, report_count, \
         disabled, availability_zone) VALUES (UTC_TIMESTAMP() - INTERVAL 1 DAY, \
         UTC_TIMESTAMP() - INTERVAL ? SECOND, 0, ?, 'cinder-volume', 'cinder-volume', 5, 0, 'nova')",
        (age, host),
    );
}

/// The exporter with this YAML as its whole config file.
fn exporter_with(config: String) -> Exporter {
    Exporter::start(ExporterOptions {
        config: Some(config),
        env: Vec::new(),
        args: Vec::new(),
    })
}

/// `/probe?target=NAME`, which must answer 200.
fn probe(exporter: &Exporter, name: &str) -> Scrape {
    let (status, body) = exporter.get(&format!("/probe?target={name}"));
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

/// Probes until `ready` holds, or panics naming `what`.
fn probe_until(
    exporter: &Exporter,
    name: &str,
    what: &str,
    ready: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + WAIT;
    loop {
        // A target answers 503 "is starting" until its first poll has ended.
        let (status, body) = exporter.get(&format!("/probe?target={name}"));
        if status == 503 && body.contains("is starting") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        let scrape = probe(exporter, name);
        if ready(&scrape) {
            return scrape;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last probe of {name}:\n{}\nlog:\n{}",
            scrape.text,
            exporter.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn up(scrape: &Scrape, host: &str) -> Option<f64> {
    scrape.value("cinder_service_up", &[("host", host)])
}

fn target(name: &str, db: &Database, extra: &str) -> String {
    format!(
        "  {name}:\n    database:\n      url: {}\n    poll_interval: 200ms\n{extra}",
        db.url()
    )
}

#[test]
fn two_databases_each_judged_by_its_own_threshold_and_one_dropped_while_running() {
    let (east, west) = (
        Database::create(Schema::Cinder29),
        Database::create(Schema::Cinder29),
    );
    for db in [&east, &west] {
        insert(db, "fresh@lvm", 0);
        // 40 s old: up under east's 60 s, down under west's 20 s.
        insert(db, "forty@lvm", 40);
    }
    let exporter = exporter_with(format!(
        "targets:\n{}{}",
        target("east", &east, "    service_down_time: 60s\n"),
        target(
            "west",
            &west,
            "    service_down_time: 20s\n    report_interval: 5s\n"
        ),
    ));
    let has_rows = |s: &Scrape| up(s, "forty@lvm").is_some();
    let east_scrape = probe_until(&exporter, "east", "east's rows", has_rows);
    let west_scrape = probe_until(&exporter, "west", "west's rows", has_rows);
    assert_eq!(up(&east_scrape, "forty@lvm"), Some(1.0));
    assert_eq!(up(&west_scrape, "forty@lvm"), Some(0.0));
    assert_eq!(up(&west_scrape, "fresh@lvm"), Some(1.0));
    let down_time = "cinder_config_service_down_time_seconds";
    assert_eq!(east_scrape.value(down_time, &[]), Some(60.0));
    assert_eq!(west_scrape.value(down_time, &[]), Some(20.0));
    for scrape in [&east_scrape, &west_scrape] {
        assert_eq!(scrape.value("cinder_up", &[]), Some(1.0));
        assert!(
            !scrape.text.contains("process_"),
            "the process is /metrics' business"
        );
    }
    let (status, _) = exporter.get("/-/ready");
    assert_eq!(status, 200);

    // Only targets: /metrics is the exporter's own, with nothing about cinder.
    let own = exporter.scrape();
    assert!(own.value("process_cpu_seconds_total", &[]).is_some());
    assert_eq!(
        own.value(
            "cinder_exporter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert!(!own.text.contains("cinder_up") && !own.text.contains("cinder_service_"));

    // West's database goes away: west says so, east goes on polling untouched.
    drop_one_keep_the_other(&exporter, west, &east_scrape);
}

/// Drops `west`'s database while the exporter runs; west must report it, east (whose
/// last probe is `east_scrape`) must keep polling without an error.
fn drop_one_keep_the_other(exporter: &Exporter, west: Database, east_scrape: &Scrape) {
    let east_before = east_scrape
        .value(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            &[],
        )
        .unwrap();
    drop(west);
    probe_until(exporter, "west", "west's cinder_up 0", |s| {
        s.value("cinder_up", &[]) == Some(0.0)
    });
    let east_after = probe_until(exporter, "east", "east's next polls", |s| {
        s.value(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            &[],
        )
        .is_some_and(|t| t > east_before + 0.5)
    });
    assert_eq!(east_after.value("cinder_up", &[]), Some(1.0));
    assert_eq!(
        east_after.value("cinder_exporter_poll_errors_total", &[]),
        Some(0.0)
    );
    assert_eq!(up(&east_after, "forty@lvm"), Some(1.0));
    let west_after = probe(exporter, "west");
    assert!(
        west_after
            .value("cinder_exporter_poll_errors_total", &[])
            .unwrap()
            >= 1.0
    );
}

#[test]
fn scrapes_are_served_from_memory_whatever_their_number() {
    let (top, extra) = (
        Database::create(Schema::Cinder29),
        Database::create(Schema::Cinder29),
    );
    insert(&top, "top@lvm", 0);
    insert(&extra, "extra@lvm", 0);
    // One poll per hour: every later scrape must come from the first poll's reading.
    let slow = "    poll_interval: 1h\n    stale_after: 2h\n";
    let exporter = exporter_with(format!(
        "database:\n  url: {}\npoll_interval: 1h\nstale_after: 2h\ntargets:\n  extra:\n    database:\n      url: {}\n{slow}",
        top.url(),
        extra.url()
    ));
    let first = exporter.wait_for("the top-level row", WAIT, |s| up(s, "top@lvm").is_some());
    probe_until(&exporter, "extra", "the target's row", |s| {
        up(s, "extra@lvm").is_some()
    });
    // /metrics keeps serving the top-level database, and the process beside it.
    // A process just started may not have used a whole tick of CPU yet: 0 is fine.
    assert!(first
        .value("process_cpu_seconds_total", &[])
        .is_some_and(|v| v >= 0.0));
    for family in [
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
        "process_max_fds",
    ] {
        assert!(
            first.value(family, &[]).is_some_and(|v| v > 0.0),
            "{family}"
        );
    }
    assert!(
        up(&first, "extra@lvm").is_none(),
        "a target is not on /metrics"
    );
    insert(&top, "late@lvm", 0);
    insert(&extra, "late@lvm", 0);
    let polled_at = |s: &Scrape| {
        s.value(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            &[],
        )
    };
    let extra_polled_at = polled_at(&probe(&exporter, "extra"));
    let scrapers: Vec<_> = (0..8)
        .map(|_| {
            let address = exporter.address.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                for path in ["/metrics", "/probe?target=extra"].repeat(10) {
                    let body = agent
                        .get(&format!("http://{address}{path}"))
                        .call()
                        .expect("scrape")
                        .body_mut()
                        .read_to_string()
                        .expect("body");
                    assert!(!body.contains("late@lvm"), "{path} read the database");
                }
            })
        })
        .collect();
    for scraper in scrapers {
        scraper.join().expect("scraper");
    }
    assert_eq!(polled_at(&exporter.scrape()), polled_at(&first));
    assert_eq!(polled_at(&probe(&exporter, "extra")), extra_polled_at);
}

#[test]
fn a_mistake_in_a_target_names_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(
        &path,
        "targets:\n  east:\n    database:\n      url: mysql://u:p@127.0.0.1/cinder\n  west:\n    poll_interval: 2s\n",
    )
    .unwrap();
    let shown = path.display().to_string();
    let (code, stderr) = run_exporter_to_exit(&["--config.file", &shown], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{shown}:5:3: target \"west\": no database configured"
        )),
        "{stderr}"
    );
    std::fs::write(&path, "targets:\n  east:\n    database:\n      url: mysql://u:p@127.0.0.1/cinder\n    poll_intervall: 2s\n").unwrap();
    let (code, stderr) = run_exporter_to_exit(&["--config.file", &shown], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{shown}:5:5: ")) && stderr.contains("poll_intervall"),
        "{stderr}"
    );
}
