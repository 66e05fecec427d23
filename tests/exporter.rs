//! The real exporter binary against a real MariaDB: the verdicts, the published facts,
//! schema versions, time zones, failures of the database and bad configuration.

mod common;

use std::time::{Duration, Instant};

use common::{
    run_exporter_to_exit, Database, Exporter, ExporterOptions, PrivateServer, Schema, Scrape,
};

const WAIT: Duration = Duration::from_secs(20);

fn has_service(scrape: &Scrape, host: &str) -> bool {
    scrape
        .value("cinder_service_up", &[("host", host)])
        .is_some()
}

fn service(scrape: &Scrape, metric: &str, host: &str) -> Option<f64> {
    scrape.value(metric, &[("host", host)])
}

/// Exporter and database on one machine share a clock: the published offset is only
/// the time the database took to read its clock after the poll was sent, within the
/// poll's duration.
fn assert_same_clock(scrape: &Scrape) {
    let offset = scrape
        .value("cinder_exporter_database_clock_offset_seconds", &[])
        .unwrap();
    let poll_duration = scrape.poll_duration();
    assert!(
        offset.abs() <= poll_duration,
        "same machine, same clock: {offset}, poll {poll_duration}"
    );
}

#[test]
fn verdicts_match_cinder_for_fresh_stale_future_and_created_only_rows() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("fresh@lvm", "cinder-volume", Some(-3600), Some(0), 10);
    db.insert_service("stale", "cinder-scheduler", Some(-3600), Some(-61), 10);
    db.insert_service("ahead30", "cinder-backup", Some(-3600), Some(30), 10);
    // More than service_down_time ahead for the whole test, however long its start takes.
    db.insert_service("ahead75", "cinder-backup", Some(-3600), Some(75), 10);
    db.insert_service("created-only@ceph", "cinder-volume", Some(-5), None, 0);
    db.insert_service("created-old@ceph", "cinder-volume", Some(-300), None, 0);
    db.insert_service("never", "cinder-volume", None, None, 0);
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    exporter.wait_for("all services", WAIT, |s| has_service(s, "never"));
    // One scrape, then cinder's own ages computed by the database, timed by the test.
    let started = Instant::now();
    let scrape = exporter.scrape();
    let database_ages: std::collections::HashMap<String, f64> = db
        .query::<(String, Option<f64>)>(
            "SELECT host, TIMESTAMPDIFF(MICROSECOND, COALESCE(updated_at, created_at), UTC_TIMESTAMP(6)) / 1e6 \
             FROM services",
        )
        .into_iter()
        .filter_map(|(host, age)| age.map(|a| (host, a)))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    // A published age counts from the poll's reference time, which the database read
    // up to one poll's duration after the exporter sent the poll.
    let poll_duration = scrape.poll_duration();

    // (host, API up, scheduler up, approximate signed age)
    let expected: [(&str, f64, f64, Option<f64>); 7] = [
        ("fresh@lvm", 1.0, 1.0, Some(0.0)),
        ("stale", 0.0, 0.0, Some(61.0)),
        ("ahead30", 1.0, 1.0, Some(-30.0)),
        // More than service_down_time ahead: down for the operator, up for the scheduler.
        ("ahead75", 0.0, 1.0, Some(-75.0)),
        // No updated_at: the API falls back to created_at, the scheduler says down.
        ("created-only@ceph", 1.0, 0.0, Some(5.0)),
        ("created-old@ceph", 0.0, 0.0, Some(300.0)),
        ("never", 0.0, 0.0, None),
    ];
    for (host, up, scheduler_up, age) in expected {
        assert_eq!(
            service(&scrape, "cinder_service_up", host),
            Some(up),
            "{host}\n{}",
            scrape.text
        );
        assert_eq!(
            service(&scrape, "cinder_service_scheduler_up", host),
            Some(scheduler_up),
            "{host}"
        );
        let published = service(&scrape, "cinder_service_heartbeat_age_seconds", host);
        match (age, published) {
            (Some(age), Some(published)) => {
                // cinder's own age, computed by the database just after the scrape:
                // the published one is younger by the time in between, as measured.
                let cinder_age = database_ages[host];
                let lag = cinder_age - published;
                assert!(
                    (-poll_duration..=elapsed).contains(&lag),
                    "{host}: published {published}, database {cinder_age}, {elapsed:.3} s \
                     apart, poll {poll_duration:.3} s"
                );
                assert!(
                    cinder_age.signum() == age.signum() || age == 0.0,
                    "{host}: {cinder_age} vs about {age}"
                );
            }
            (None, None) => {}
            other => panic!("{host}: age {other:?}"),
        }
        assert_eq!(service(&scrape, "cinder_service_enabled", host), Some(1.0));
        assert!(service(&scrape, "cinder_service_reports_total", host).is_some());
    }
    assert_eq!(
        service(&scrape, "cinder_service_reports_total", "stale"),
        Some(10.0)
    );
    // The recorded heartbeat is published as recorded: updated_at, else created_at.
    let stored = db.query_one::<i64>(
        "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', updated_at) FROM services \
         WHERE host = 'ahead30'",
    ) as f64;
    let recorded = service(
        &scrape,
        "cinder_service_last_heartbeat_timestamp_seconds",
        "ahead30",
    )
    .unwrap();
    assert_eq!(recorded, stored, "as stored in the row");
    // Ages move between polls: they are computed at scrape time.
    let later = exporter.wait_for("age to grow", WAIT, |s| {
        service(s, "cinder_service_heartbeat_age_seconds", "stale").is_some_and(|a| a >= 62.5)
    });
    assert_eq!(service(&later, "cinder_service_up", "stale"), Some(0.0));
    assert_eq!(scrape.value("cinder_up", &[]), Some(1.0));
    assert_eq!(
        scrape.value("cinder_config_service_down_time_seconds", &[]),
        Some(60.0)
    );
    assert_eq!(
        scrape.value("cinder_config_report_interval_seconds", &[]),
        Some(10.0)
    );
}

#[test]
fn backend_and_info_labels_and_disabled_reason_survive_the_exposition() {
    let db = Database::create(Schema::Cinder29);
    let reason = "maintenance: \"disk\" C:\\path\nsecond line – zażółć 日本";
    db.exec_with(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, report_count, disabled, \
         disabled_reason, availability_zone, cluster_name, uuid, rpc_current_version, object_current_version, \
         frozen, replication_status, active_backend_id) \
         VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), 0, 'ctl1@lvm-1', 'cinder-volume', 'cinder-volume', 4, 1, ?, \
         'az-ü', 'cluster1@lvm-1', '7d6d2a5c-1111-4c4c-9999-000000000001', '3.0', '1.39', 0, 'disabled', NULL)",
        (reason,),
    );
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = exporter.wait_for("the service", WAIT, |s| has_service(s, "ctl1@lvm-1"));
    let info = scrape.find("cinder_service_info", &[("host", "ctl1@lvm-1")]);
    assert_eq!(info.len(), 1);
    let labels = &info[0].labels;
    assert_eq!(labels.get("disabled_reason"), Some(reason));
    assert_eq!(labels.get("zone"), Some("az-ü"));
    assert_eq!(labels.get("binary"), Some("cinder-volume"));
    assert_eq!(labels.get("backend"), Some("lvm-1"));
    assert_eq!(labels.get("cluster"), Some("cluster1@lvm-1"));
    assert_eq!(
        labels.get("uuid"),
        Some("7d6d2a5c-1111-4c4c-9999-000000000001")
    );
    assert_eq!(labels.get("rpc_version"), Some("3.0"));
    assert_eq!(labels.get("object_version"), Some("1.39"));
    assert_eq!(labels.get("frozen"), Some("false"));
    assert_eq!(labels.get("replication_status"), Some("disabled"));
    assert_eq!(labels.get("active_backend_id"), Some(""));
    assert_eq!(
        service(&scrape, "cinder_service_enabled", "ctl1@lvm-1"),
        Some(0.0)
    );
}

#[test]
fn soft_deleted_rows_are_ignored_and_repeated_rows_give_one_series() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("kept", "cinder-volume", Some(-100), Some(-1), 7);
    db.exec(
        "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, report_count) VALUES \
         (UTC_TIMESTAMP(), UTC_TIMESTAMP(), 1, 'removed', 'cinder-volume', 'cinder-volume', 3), \
         (UTC_TIMESTAMP(), UTC_TIMESTAMP(), NULL, 'null-deleted', 'cinder-volume', 'cinder-volume', 3)",
    );
    // A re-created service: the old row (stale) stays beside the new one (fresh).
    db.insert_service("twice", "cinder-volume", Some(-900), Some(-800), 500);
    db.insert_service("twice", "cinder-volume", Some(-20), Some(-2), 3);
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = exporter.wait_for("services", WAIT, |s| has_service(s, "kept"));
    assert!(!has_service(&scrape, "removed"));
    assert!(!has_service(&scrape, "null-deleted"));
    assert_eq!(
        scrape.find("cinder_service_up", &[("host", "twice")]).len(),
        1
    );
    assert_eq!(
        service(&scrape, "cinder_service_reports_total", "twice"),
        Some(3.0)
    );
    assert_eq!(service(&scrape, "cinder_service_up", "twice"), Some(1.0));
    assert_eq!(scrape.find("cinder_service_up", &[]).len(), 2);
}

#[test]
fn oldest_schema_without_the_newer_columns() {
    let db = Database::create(Schema::Oldest);
    db.insert_service("old@lvm", "cinder-volume", Some(-10), Some(-1), 2);
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = exporter.wait_for("the service", WAIT, |s| has_service(s, "old@lvm"));
    assert_eq!(service(&scrape, "cinder_service_up", "old@lvm"), Some(1.0));
    let info = scrape.find("cinder_service_info", &[("host", "old@lvm")]);
    assert_eq!(info[0].labels.get("uuid"), Some(""));
    assert_eq!(info[0].labels.get("cluster"), Some(""));
    assert_eq!(info[0].labels.get("backend"), Some("lvm"));
}

#[test]
fn no_services_still_exports_the_exporter_and_config_metrics() {
    let db = Database::create(Schema::Cinder29);
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let scrape = exporter.wait_for("a successful poll", WAIT, |s| {
        s.value("cinder_up", &[]) == Some(1.0)
    });
    assert!(scrape.find("cinder_service_up", &[]).is_empty());
    assert!(scrape
        .value(
            "cinder_exporter_last_successful_poll_timestamp_seconds",
            &[]
        )
        .is_some());
    assert_same_clock(&scrape);
    assert_eq!(scrape.find("cinder_exporter_build_info", &[]).len(), 1);
}

#[test]
fn database_time_zone_and_exporter_tz_do_not_change_the_verdicts() {
    let server = PrivateServer::start();
    // A non-UTC global time zone for every new session, the exporter's included.
    let setup = Database::create_on(server.url(), Schema::Cinder29);
    setup.exec("SET GLOBAL time_zone = '+05:30'");
    let inserted = Instant::now();
    setup.insert_service("fresh", "cinder-volume", Some(-100), Some(-2), 1);
    setup.insert_service("stale", "cinder-volume", Some(-100), Some(-70), 1);
    let exporter = Exporter::start(
        ExporterOptions::for_database(&setup.url()).with_env("TZ", "America/St_Johns"),
    );
    let scrape = exporter.wait_for("services", WAIT, |s| has_service(s, "stale"));
    assert_eq!(service(&scrape, "cinder_service_up", "fresh"), Some(1.0));
    assert_eq!(service(&scrape, "cinder_service_up", "stale"), Some(0.0));
    // 70 s old when inserted (whole seconds), plus the time since, as measured, and
    // the poll's own duration (the reference time is read during it).
    let since = inserted.elapsed().as_secs_f64();
    let poll_duration = scrape.poll_duration();
    let age = service(&scrape, "cinder_service_heartbeat_age_seconds", "stale").unwrap();
    assert!(
        (69.0..70.0 + since + 1.0 + poll_duration).contains(&age),
        "{age}, {since:.3} s after the insert"
    );
    assert_same_clock(&scrape);
}

#[test]
fn database_stopped_and_restarted_under_a_running_exporter() {
    let server = PrivateServer::start();
    let db = Database::create_on(server.url(), Schema::Cinder29);
    db.insert_service("svc", "cinder-volume", Some(-100), Some(0), 1);
    let exporter = Exporter::start(
        ExporterOptions::for_database(&db.url()).with_config("stale_after: 2s\nquery_timeout: 1s"),
    );
    exporter.wait_for("the service", WAIT, |s| has_service(s, "svc"));
    assert_eq!(exporter.get("/-/ready").0, 200);

    server.kill();
    let down = exporter.wait_for("cinder_up 0", WAIT, |s| {
        s.value("cinder_up", &[]) == Some(0.0)
    });
    assert!(
        down.value("cinder_exporter_poll_errors_total", &[])
            .unwrap()
            >= 1.0
    );
    // Past stale_after the heartbeat ages of the last good poll are no longer served.
    exporter.wait_for("per-service series withheld", WAIT, |s| {
        !has_service(s, "svc")
    });

    server.restart();
    let back = exporter.wait_for("recovery", Duration::from_secs(40), |s| {
        s.value("cinder_up", &[]) == Some(1.0) && has_service(s, "svc")
    });
    assert_eq!(service(&back, "cinder_service_up", "svc"), Some(1.0));
}

#[test]
fn database_down_at_start() {
    let server = PrivateServer::start();
    let db = Database::create_on(server.url(), Schema::Cinder29);
    db.insert_service("svc", "cinder-volume", Some(-100), Some(0), 1);
    server.stop();
    let exporter =
        Exporter::start(ExporterOptions::for_database(&db.url()).with_config("query_timeout: 1s"));
    let scrape = exporter.wait_for("a failed poll", WAIT, |s| {
        s.value("cinder_exporter_poll_errors_total", &[])
            .is_some_and(|e| e >= 1.0)
    });
    assert_eq!(scrape.value("cinder_up", &[]), Some(0.0));
    assert!(!has_service(&scrape, "svc"));
    assert_eq!(exporter.get("/-/ready").0, 503);
    assert_eq!(exporter.get("/-/healthy").0, 200);
    // The password never shows in the log.
    assert!(
        !exporter.log().contains("admin:admin"),
        "{}",
        exporter.log()
    );
    server.restart();
    exporter.wait_for("recovery", Duration::from_secs(40), |s| {
        has_service(s, "svc")
    });
    assert_eq!(exporter.get("/-/ready").0, 200);
}

#[test]
fn a_locked_services_table_cuts_the_poll_but_not_the_scrapes() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("svc", "cinder-volume", Some(-100), Some(0), 1);
    let exporter = Exporter::start(
        ExporterOptions::for_database(&db.url()).with_config("query_timeout: 1s\nstale_after: 30s"),
    );
    exporter.wait_for("the service", WAIT, |s| has_service(s, "svc"));
    let lock = db.lock_services();
    let scrape = exporter.wait_for("a timed-out poll", WAIT, |s| {
        s.value("cinder_up", &[]) == Some(0.0)
    });
    // Within stale_after the last good reading is still served, with moving ages.
    assert!(has_service(&scrape, "svc"));
    assert!(
        exporter.log().contains("query_timeout"),
        "{}",
        exporter.log()
    );
    // Scrapes keep answering while the poller waits on the lock.
    for _ in 0..20 {
        assert_eq!(exporter.get("/metrics").0, 200);
    }
    lock.release();
    exporter.wait_for("recovery", WAIT, |s| s.value("cinder_up", &[]) == Some(1.0));
}

#[test]
fn cinder_conf_supplies_the_database_and_the_thresholds() {
    let db = Database::create(Schema::Cinder29);
    db.insert_service("svc", "cinder-volume", Some(-100), Some(-45), 1);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("cinder.conf");
    let url = db.url().replace("mysql://", "mysql+pymysql://") + "?charset=utf8";
    std::fs::write(
        &conf,
        format!("[DEFAULT]\nservice_down_time = 40\nreport_interval = 5\n\n[database]\nconnection = {url}\n"),
    )
    .unwrap();
    let exporter = Exporter::start(ExporterOptions {
        config: Some(format!(
            "cinder_conf: {}\npoll_interval: 200ms\n",
            conf.display()
        )),
        env: Vec::new(),
        args: Vec::new(),
    });
    let scrape = exporter.wait_for("the service", WAIT, |s| has_service(s, "svc"));
    assert_eq!(
        scrape.value("cinder_config_service_down_time_seconds", &[]),
        Some(40.0)
    );
    assert_eq!(
        scrape.value("cinder_service_skew_budget_seconds", &[]),
        Some(35.0)
    );
    // 45 s old: down with cinder.conf's 40 s.
    assert_eq!(service(&scrape, "cinder_service_up", "svc"), Some(0.0));
    assert!(
        exporter.log().contains("charset"),
        "ignored URL parameters are named"
    );
}

#[test]
fn bad_configuration_exits_2_naming_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let cases = [
        (
            write(
                "unknown.yml",
                "database:\n  url: mysql://a@b/c\npoll_intervl: 2s\n",
            ),
            "unknown.yml:3:1",
            "poll_intervl",
        ),
        (
            write(
                "duration.yml",
                "database:\n  url: mysql://a@b/c\nquery_timeout: 5 minutes\n",
            ),
            "duration.yml:3:",
            "invalid duration",
        ),
        (
            write(
                "scheme.yml",
                "database:\n  url: postgresql://u:secretpw@db/cinder\n",
            ),
            "scheme.yml:2:",
            "not supported",
        ),
        (
            write("nodb.yml", "poll_interval: 1s\n"),
            "",
            "no database configured",
        ),
        (
            write(
                "conf.yml",
                &format!(
                    "cinder_conf: {}\n",
                    write("cinder.conf", "[DEFAULT]\nreport_interval = ten\n")
                ),
            ),
            "cinder.conf:2:",
            "report_interval",
        ),
        (
            write(
                "section.yml",
                &format!(
                    "cinder_conf: {}\n",
                    write("broken.conf", "[DEFAULT\nx = 1\n")
                ),
            ),
            "broken.conf:1:",
            "section",
        ),
    ];
    for (path, location, message) in cases {
        let (code, stderr) = run_exporter_to_exit(&["--config.file", &path], &[]);
        assert_eq!(code, Some(2), "{path}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(location) && stderr.contains(message),
            "{path}: {stderr}"
        );
        assert!(!stderr.contains("secretpw"), "{stderr}");
    }
    let (code, stderr) = run_exporter_to_exit(&["--config.file", "/nonexistent/config.yml"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent/config.yml"), "{stderr}");
}
