//! What production clouds do that the verdicts must follow: a cinder upgrade while the
//! exporter runs, cinder.conf values in oslo.config's syntax, the scheduler's own
//! `service_down_time`, and rows that would collide as series. Each against a real
//! MariaDB and the real binary.

mod common;

use std::time::Duration;

use common::users::User;
use common::{Database, Exporter, ExporterOptions, Schema, Scrape};

const WAIT: Duration = Duration::from_secs(30);

/// One live row with a heartbeat `age` seconds old by the database clock.
fn insert(db: &Database, host: &str, binary: &str, age: i64) {
    db.insert_service(host, binary, Some(-3600), Some(-age), 5);
}

fn info_label(scrape: &Scrape, host: &str, label: &str) -> Option<String> {
    let found = scrape.find("cinder_service_info", &[("host", host)]);
    found
        .first()
        .and_then(|s| s.labels.get(label).map(str::to_string))
}

fn poll_errors(scrape: &Scrape) -> f64 {
    scrape
        .value("cinder_exporter_poll_errors_total", &[])
        .expect("poll errors counter")
}

#[test]
fn a_cinder_upgrade_while_running_is_read_at_once() {
    let db = Database::create(Schema::Oldest);
    insert(&db, "ctl1@lvm", "cinder-volume", 0);
    let exporter = Exporter::start(ExporterOptions::for_database(&db.url()));
    let before = exporter.wait_for("the first poll", WAIT, |s| {
        s.value("cinder_service_up", &[("host", "ctl1@lvm")]) == Some(1.0)
    });
    assert_eq!(info_label(&before, "ctl1@lvm", "uuid").as_deref(), Some(""));

    // `cinder-manage db sync` adds the columns of later releases and fills them.
    db.exec(
        "ALTER TABLE services ADD COLUMN uuid VARCHAR(36) NULL, \
         ADD COLUMN cluster_name VARCHAR(255) NULL, ADD COLUMN frozen TINYINT(1) NULL",
    );
    db.exec(
        "UPDATE services SET uuid = '11111111-2222-3333-4444-555555555555', \
         cluster_name = 'cluster1@lvm', frozen = 0",
    );
    let after = exporter.wait_for("the new columns", WAIT, |s| {
        info_label(s, "ctl1@lvm", "uuid").as_deref() == Some("11111111-2222-3333-4444-555555555555")
    });
    assert_eq!(
        info_label(&after, "ctl1@lvm", "cluster").as_deref(),
        Some("cluster1@lvm")
    );
    assert_eq!(
        info_label(&after, "ctl1@lvm", "frozen").as_deref(),
        Some("false")
    );

    // A downgrade drops them again.
    db.exec("ALTER TABLE services DROP COLUMN uuid");
    let dropped = exporter.wait_for("the column gone", WAIT, |s| {
        info_label(s, "ctl1@lvm", "uuid").as_deref() == Some("")
    });
    assert_eq!(
        info_label(&dropped, "ctl1@lvm", "cluster").as_deref(),
        Some("cluster1@lvm")
    );
    // No poll failed on the way: the change was read, not recovered from.
    assert_eq!(poll_errors(&dropped), 0.0, "{}", exporter.log());
    assert!(
        exporter.log().contains("services table columns changed"),
        "{}",
        exporter.log()
    );
}

#[test]
fn cinder_conf_values_are_read_as_oslo_config_reads_them() {
    let db = Database::create(Schema::Cinder29);
    insert(&db, "ctl1@lvm", "cinder-volume", 0);
    // A password with a `$`, which cinder.conf must write `$$`.
    let user = User::create(&common::admin_url(), "cinder_exporter_test", "pa$word", "");
    user.grant_select_on_services(&db);
    let name = &user.name;
    // The host and port of the test server, from the admin URL.
    let server = common::admin_url()
        .trim_end_matches('/')
        .rsplit('@')
        .next()
        .expect("host:port")
        .to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("cinder.conf");
    // `$$` is one `$` to cinder; `$db_host` and `${DEFAULT.interval}` name other options.
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\ninterval = 5\nreport_interval = ${{DEFAULT.interval}}\n\
             db_host = {server}\n\n[database]\n\
             connection = mysql+pymysql://{name}:pa$$word@$db_host/{}?charset=utf8\n",
            db.name()
        ),
    )
    .expect("write cinder.conf");
    let exporter = Exporter::start(ExporterOptions::with_yaml(&format!(
        "cinder_conf: {}\npoll_interval: 200ms\n",
        conf.display()
    )));
    let scrape = exporter.wait_for("a poll with the $$ password", WAIT, |s| {
        s.value("cinder_up", &[]) == Some(1.0)
    });
    assert_eq!(
        scrape.value("cinder_config_report_interval_seconds", &[]),
        Some(5.0)
    );
    assert_eq!(
        scrape.value("cinder_service_up", &[("host", "ctl1@lvm")]),
        Some(1.0)
    );
    drop(exporter);

    // A reference to nothing is refused as cinder refuses it, naming the place.
    std::fs::write(
        &conf,
        "[database]\nconnection = mysql://u:pa$zq7secret@db/cinder\n",
    )
    .expect("write cinder.conf");
    let config = dir.path().join("config.yml");
    std::fs::write(&config, format!("cinder_conf: {}\n", conf.display())).expect("config");
    let (code, stderr) =
        common::run_exporter_to_exit(&["--config.file", config.to_str().unwrap()], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("{}:2:26", conf.display())),
        "{stderr}"
    );
    // The position says where; the name, part of a password here, is not echoed.
    assert!(stderr.contains("names no option"), "{stderr}");
    assert!(!stderr.contains("zq7secret"), "{stderr}");
}

#[test]
fn the_scheduler_verdict_uses_the_scheduler_processs_service_down_time() {
    // report_interval reaches service_down_time: cinder-api judges by 10 s, while the
    // scheduler process raised its own to int(2.5 x 10) = 25 s at start.
    let db = Database::create(Schema::Cinder29);
    let exporter = Exporter::start(
        ExporterOptions::for_database(&db.url())
            .with_config("service_down_time: 10s\nreport_interval: 10s\n"),
    );
    exporter.wait_for("the first poll", WAIT, |s| {
        s.value("cinder_up", &[]) == Some(1.0)
    });
    // Inserted once the exporter polls, so that its start-up does not age them.
    insert(&db, "quiet15", "cinder-volume", 15);
    insert(&db, "quiet40", "cinder-volume", 40);
    let scrape = exporter.wait_for("the rows", WAIT, |s| {
        s.find("cinder_service_up", &[]).len() == 2
    });
    let value = |metric: &str, host: &str| scrape.value(metric, &[("host", host)]);
    // Judge by the age in the same scrape: what the verdicts must agree with.
    let age = value("cinder_service_heartbeat_age_seconds", "quiet15").expect("age");
    assert!(
        age > 10.0 && age <= 25.0,
        "quiet15 aged to {age} s before a poll"
    );
    assert_eq!(
        scrape.value("cinder_config_service_down_time_seconds", &[]),
        Some(10.0)
    );
    assert_eq!(
        scrape.value("cinder_config_scheduler_service_down_time_seconds", &[]),
        Some(25.0)
    );
    assert_eq!(value("cinder_service_up", "quiet15"), Some(0.0));
    assert_eq!(value("cinder_service_scheduler_up", "quiet15"), Some(1.0));
    assert_eq!(value("cinder_service_scheduler_up", "quiet40"), Some(0.0));
}
