//! Clusters as cinder groups them, against a real MariaDB. cinder matches a service to
//! its cluster in SQL, `services.cluster_name = clusters.name`, so under the column's
//! collation, and counts a cluster's hosts, down hosts and heartbeat with the
//! subqueries of `Cluster` in cinder's `db/models.py`. This test writes the `clusters`
//! rows cinder would (each named as its first member spells it), runs those subqueries
//! in the database itself, and holds the exporter's cluster series to their answers:
//! for cinder's own collation (case-insensitive, trailing spaces ignored) and for the
//! other kinds MariaDB has (binary, and the NO PAD ones).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Database, Exporter, ExporterOptions, Schema};

/// cinder's default `service_down_time`.
const SERVICE_DOWN_TIME: i64 = 60;

/// `(host, cluster_name, updated_at as seconds from now or NULL)`, in id order: one
/// cluster spelt four ways (case, trailing spaces), another two ways, members up,
/// down and never heartbeated, and a service in no cluster.
const FLEET: [(&str, Option<&str>, Option<i64>); 7] = [
    ("a@lvm", Some("Cluster1@lvm"), Some(-5)),
    ("b@lvm", Some("cluster1@LVM  "), Some(-300)),
    ("c@lvm", Some("CLUSTER1@lvm"), None),
    ("d@lvm", Some("cluster2@lvm"), Some(-300)),
    ("e@lvm", Some("Cluster2@LVM "), None),
    ("f@lvm", Some("Cluster1@lvm   "), Some(-5)),
    ("g@lvm", None, Some(-5)),
];

/// What cinder says of one cluster: `is_up`, `num_hosts`, `num_down_hosts`.
type Judged = BTreeMap<(String, String), (i64, i64, i64)>;

fn insert_fleet(db: &Database) {
    for (host, cluster, updated) in FLEET {
        let updated = match updated {
            Some(s) => format!("UTC_TIMESTAMP() + INTERVAL {s} SECOND"),
            None => "NULL".into(),
        };
        db.exec_with(
            &format!(
                "INSERT INTO services (created_at, updated_at, deleted, host, `binary`, topic, \
                 report_count, disabled, availability_zone, cluster_name) VALUES \
                 (UTC_TIMESTAMP() - INTERVAL 1 HOUR, {updated}, 0, ?, 'cinder-volume', \
                 'cinder-volume', 3, 0, 'nova', ?)"
            ),
            (host, cluster),
        );
    }
}

/// Gives `services.cluster_name` and `clusters.name` the collation `collation`, and
/// writes the `clusters` rows cinder would: one per cluster as the database groups
/// the names, named by its first (lowest id) member.
fn collate(db: &Database, collation: &str) {
    db.exec("DELETE FROM clusters");
    db.exec(&format!(
        "ALTER TABLE services MODIFY cluster_name varchar(255) CHARACTER SET utf8mb3 \
         COLLATE {collation} DEFAULT NULL"
    ));
    db.exec(&format!(
        "ALTER TABLE clusters MODIFY name varchar(255) CHARACTER SET utf8mb3 \
         COLLATE {collation} NOT NULL"
    ));
    db.exec(
        "INSERT INTO clusters (created_at, deleted, name, `binary`, disabled, race_preventer, \
         frozen) SELECT UTC_TIMESTAMP(), 0, s.cluster_name, s.`binary`, 0, 0, 0 FROM services s \
         WHERE s.id IN (SELECT MIN(id) FROM services WHERE deleted = 0 AND cluster_name <> '' \
         GROUP BY cluster_name, `binary`)",
    );
}

/// cinder's verdict on every cluster, computed by the database with cinder's own
/// subqueries (`Cluster.last_heartbeat`, `num_hosts`, `num_down_hosts`; `is_up` is
/// `last_heartbeat >= now - service_down_time`).
fn cinder_says(db: &Database) -> Judged {
    let expired = format!("UTC_TIMESTAMP() - INTERVAL {SERVICE_DOWN_TIME} SECOND");
    let rows: Vec<(String, String, i64, i64, i64)> = db.query(&format!(
        "SELECT c.name, c.`binary`, \
           COALESCE((SELECT MAX(s.updated_at) FROM services s \
                     WHERE s.cluster_name = c.name AND s.deleted = 0) >= {expired}, 0), \
           (SELECT COUNT(s.id) FROM services s WHERE s.cluster_name = c.name AND s.deleted = 0), \
           (SELECT COUNT(s.id) FROM services s WHERE s.cluster_name = c.name AND s.deleted = 0 \
              AND s.updated_at < {expired}) \
         FROM clusters c WHERE c.deleted = 0"
    ));
    rows.into_iter()
        .map(|(name, binary, up, hosts, down)| ((name, binary), (up, hosts, down)))
        .collect()
}

/// What the exporter publishes about the clusters, in the same terms.
fn exporter_says(db: &Database) -> Judged {
    let exporter = Exporter::start(ExporterOptions::with_yaml(&format!(
        "database:\n  url: {}\nservice_down_time: {SERVICE_DOWN_TIME}s\n",
        db.url()
    )));
    let scrape = exporter.wait_for("the clusters", Duration::from_secs(20), |s| {
        !s.find("cinder_cluster_up", &[]).is_empty()
    });
    scrape
        .find("cinder_cluster_up", &[])
        .into_iter()
        .map(|sample| {
            let name = sample.labels.get("cluster").expect("a cluster label");
            let binary = sample.labels.get("binary").expect("a binary label");
            let labels = [("cluster", name), ("binary", binary)];
            let value = |metric: &str| {
                scrape
                    .value(metric, &labels)
                    .unwrap_or_else(|| panic!("{metric} of {name:?}")) as i64
            };
            let hosts = value("cinder_cluster_services");
            let down = hosts - value("cinder_cluster_services_up");
            let judged = (sample.value as i64, hosts, down);
            ((name.to_string(), binary.to_string()), judged)
        })
        .collect()
}

#[test]
fn clusters_are_grouped_named_and_counted_as_cinder_does_under_each_collation() {
    let db = Database::create(Schema::Cinder29);
    insert_fleet(&db);
    // cinder's schema first; then binary (PAD SPACE: trailing spaces still ignored),
    // and the two NO PAD kinds.
    for (collation, clusters) in [
        ("utf8mb3_general_ci", 2),
        ("utf8mb3_bin", 5),
        ("utf8mb3_nopad_bin", 6),
        ("utf8mb3_general_nopad_ci", 5),
    ] {
        collate(&db, collation);
        let cinder = cinder_says(&db);
        assert_eq!(cinder.len(), clusters, "{collation}: {cinder:?}");
        let exporter = exporter_says(&db);
        eprintln!(
            "{collation}: {} clusters, (up, hosts, down hosts) {exporter:?}",
            exporter.len()
        );
        assert_eq!(exporter, cinder, "{collation}");
    }
}

#[test]
fn cinder_schema_one_cluster_of_four_spellings() {
    // The figures themselves, under cinder's own collation: the oldest member's
    // spelling; up by its freshest member; of four members, one is down (300 s old)
    // and one never heartbeated, which cinder does not count as a down host.
    let db = Database::create(Schema::Cinder29);
    insert_fleet(&db);
    collate(&db, "utf8mb3_general_ci");
    let exporter = exporter_says(&db);
    let cluster1 = exporter[&("Cluster1@lvm".to_string(), "cinder-volume".to_string())];
    assert_eq!(cluster1, (1, 4, 1));
    let cluster2 = exporter[&("cluster2@lvm".to_string(), "cinder-volume".to_string())];
    assert_eq!(cluster2, (0, 2, 1));
}
