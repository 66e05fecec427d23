//! cinder's clusters (active-active cinder-volume) and their up/down verdict, derived
//! from the member services as cinder itself derives them. Pure: no clock, no I/O.
//!
//! cinder keeps a `clusters` row per `(name, binary)`; a service belongs to it when its
//! `cluster_name` equals the name *as the database compares them*: cinder's SQL says
//! `services.cluster_name = clusters.name`, so under the column's collation
//! (utf8mb3_general_ci in cinder's schema: case-insensitive, trailing spaces ignored).
//! [`NameComparison`] reproduces that comparison from the collation's name. The
//! cluster's heartbeat (`Cluster.last_heartbeat` in `db/models.py`) is the latest
//! `updated_at` of the live services of that name, and `Cluster.is_up` applies the
//! scheduler's rule to it: up iff it is set and `>= now - service_down_time`. Its down
//! hosts (`num_down_hosts`) are the services with `updated_at < now -
//! service_down_time`: one whose `updated_at` is NULL is not one of them. The exporter
//! reads only `services` (its grant), so the clusters are rebuilt from there.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::verdict::scheduler_up;

/// How the database compares `cluster_name` values, read from the column's collation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameComparison {
    /// `*_ci` collations: letters compare without case.
    pub case_insensitive: bool,
    /// PAD SPACE collations (MariaDB's and MySQL's usual ones): trailing spaces are
    /// ignored.
    pub pad_space: bool,
}

impl NameComparison {
    /// cinder's own schema, `utf8mb3_general_ci`: assumed when the collation is unknown.
    pub const CINDER_SCHEMA: NameComparison = NameComparison {
        case_insensitive: true,
        pad_space: true,
    };

    /// The comparison a collation makes, from its name: `*_ci` ignores case; every
    /// collation pads with spaces except MariaDB's `*_nopad_*`, MySQL 8's `*_0900_*`
    /// and `binary`. `None` (not known): cinder's schema default.
    pub fn of_collation(collation: Option<&str>) -> NameComparison {
        let Some(collation) = collation else {
            return NameComparison::CINDER_SCHEMA;
        };
        let name = collation.to_ascii_lowercase();
        NameComparison {
            case_insensitive: name.ends_with("_ci"),
            pad_space: name != "binary" && !name.contains("_nopad_") && !name.contains("_0900_"),
        }
    }

    /// What two names are compared by: equal keys, equal names. Trailing U+0020 spaces
    /// cut under PAD SPACE; Unicode lowercase under `*_ci` (accents are not folded,
    /// which `general_ci` and `unicode_ci` also do for some letters).
    pub fn key<'a>(&self, name: &'a str) -> Cow<'a, str> {
        let name = if self.pad_space {
            name.trim_end_matches(' ')
        } else {
            name
        };
        if self.case_insensitive && name.chars().any(|c| c.is_uppercase()) {
            Cow::Owned(name.to_lowercase())
        } else {
            Cow::Borrowed(name)
        }
    }
}

/// One cluster as a poll saw it: its members and its heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// The name cinder shows: its `clusters` row's, which the first member to join
    /// wrote. The exporter, which reads only `services`, takes the `cluster_name` of the
    /// member with the lowest id (the oldest row) for it.
    pub name: String,
    /// The members' binary (cinder's `clusters.binary`).
    pub binary: String,
    /// Indices of the member services in the list [`group_clusters`] was given.
    pub members: Vec<usize>,
    /// The latest `updated_at` of every service with this `cluster_name`, whatever its
    /// binary (cinder's subquery matches on the name only); `None` when none has one.
    pub last_heartbeat: Option<i64>,
}

/// A cluster's verdict at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusterVerdict {
    /// `Cluster.is_up`: the freshest member heartbeat is within `service_down_time`.
    pub up: bool,
    /// `num_hosts`.
    pub services: usize,
    /// `num_hosts - num_down_hosts`: the members cinder does not count down, which
    /// are those the scheduler sees up and those that never heartbeated.
    pub services_up: usize,
}

/// What [`group_clusters`] needs of one service.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    /// The row's id: the oldest row names the cluster.
    pub id: i64,
    pub cluster_name: Option<&'a str>,
    pub binary: Option<&'a str>,
    pub updated_at: Option<i64>,
}

/// One cluster while it is being gathered.
struct Gathering<'a> {
    /// `(id, cluster_name)` of the oldest member so far.
    oldest: (i64, &'a str),
    members: Vec<usize>,
}

/// The clusters of `services`, their names compared as `names` says, sorted by
/// name then binary. Services without a `cluster_name` (or with an empty one,
/// cinder's "not clustered") belong to none.
pub fn group_clusters<'a>(
    services: impl IntoIterator<Item = Member<'a>>,
    names: NameComparison,
) -> Vec<Cluster> {
    let mut clusters: BTreeMap<(Cow<'a, str>, &'a str), Gathering<'a>> = BTreeMap::new();
    let mut heartbeats: BTreeMap<Cow<'a, str>, Option<i64>> = BTreeMap::new();
    for (index, member) in services.into_iter().enumerate() {
        let Some(name) = member.cluster_name else {
            continue;
        };
        let key = names.key(name);
        if key.is_empty() {
            continue;
        }
        let heartbeat = heartbeats.entry(key.clone()).or_default();
        *heartbeat = (*heartbeat).max(member.updated_at);
        let binary = member.binary.unwrap_or("");
        let cluster = clusters.entry((key, binary)).or_insert(Gathering {
            oldest: (member.id, name),
            members: Vec::new(),
        });
        cluster.oldest = cluster.oldest.min((member.id, name));
        cluster.members.push(index);
    }
    let mut clusters: Vec<Cluster> = clusters
        .into_iter()
        .map(|((key, binary), gathered)| Cluster {
            name: gathered.oldest.1.to_string(),
            binary: binary.to_string(),
            members: gathered.members,
            last_heartbeat: heartbeats[&key],
        })
        .collect();
    clusters.sort_by(|a, b| (&a.name, &a.binary).cmp(&(&b.name, &b.binary)));
    clusters
}

impl Cluster {
    /// The verdict at `reference_now`; `updated_at(i)` is member `i`'s `updated_at`.
    pub fn verdict(
        &self,
        reference_now: f64,
        service_down_time: f64,
        updated_at: impl Fn(usize) -> Option<i64>,
    ) -> ClusterVerdict {
        // cinder's `updated_at < expired` is NULL, not true, for a NULL updated_at.
        let down = self
            .members
            .iter()
            .filter(|&&i| {
                let updated = updated_at(i);
                updated.is_some() && !scheduler_up(reference_now, updated, service_down_time)
            })
            .count();
        ClusterVerdict {
            up: scheduler_up(reference_now, self.last_heartbeat, service_down_time),
            services: self.members.len(),
            services_up: self.members.len() - down,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member<'a>(
        cluster: Option<&'a str>,
        binary: &'a str,
        updated_at: Option<i64>,
    ) -> Member<'a> {
        Member {
            id: 1,
            cluster_name: cluster,
            binary: Some(binary),
            updated_at,
        }
    }

    const VOLUME: &str = "cinder-volume";

    const BYTES: NameComparison = NameComparison {
        case_insensitive: false,
        pad_space: false,
    };

    #[test]
    fn groups_by_name_and_binary_and_skips_unclustered() {
        let services = [
            member(Some("c1@lvm"), VOLUME, Some(100)),
            member(None, VOLUME, Some(500)),
            member(Some("c1@lvm"), VOLUME, Some(90)),
            member(Some(""), VOLUME, Some(500)),
            member(Some("c0@ceph"), VOLUME, None),
        ];
        let clusters = group_clusters(services, BYTES);
        assert_eq!(clusters.len(), 2);
        assert_eq!(
            (
                clusters[0].name.as_str(),
                &clusters[0].members,
                clusters[0].last_heartbeat
            ),
            ("c0@ceph", &vec![4], None)
        );
        assert_eq!(
            (
                clusters[1].name.as_str(),
                &clusters[1].members,
                clusters[1].last_heartbeat
            ),
            ("c1@lvm", &vec![0, 2], Some(100))
        );
        assert_eq!(clusters[1].binary, VOLUME);
    }

    #[test]
    fn up_while_the_freshest_member_is_within_service_down_time() {
        let updated = [Some(1_000), Some(900), None];
        let services = updated.map(|u| member(Some("c@lvm"), VOLUME, u));
        let cluster = &group_clusters(services, BYTES)[0];
        let at = |now: f64| cluster.verdict(now, 60.0, |i| updated[i]);
        // Scheduler rule, inclusive: 1000 >= 1060 - 60. The member that never
        // heartbeated is no down host to cinder (`NULL < expired` is not true).
        assert_eq!(
            at(1_060.0),
            ClusterVerdict {
                up: true,
                services: 3,
                services_up: 2
            }
        );
        assert!(!at(1_060.5).up);
        assert_eq!(at(1_060.5).services_up, 1);
        assert_eq!(at(960.0).services_up, 3);
        // A member whose clock runs ahead keeps the cluster up, as in cinder.
        assert!(at(-5_000.0).up);
    }

    #[test]
    fn a_cluster_without_any_heartbeat_is_down() {
        // cinder-manage cluster list: State down, Hosts 1, Down Hosts 0.
        let cluster = &group_clusters([member(Some("c@lvm"), VOLUME, None)], BYTES)[0];
        let verdict = cluster.verdict(0.0, 60.0, |_| None);
        assert!(!verdict.up);
        assert_eq!((verdict.services, verdict.services_up), (1, 1));
    }

    #[test]
    fn collations_say_how_names_compare() {
        let general = NameComparison::of_collation(Some("utf8mb3_general_ci"));
        assert_eq!(general, NameComparison::CINDER_SCHEMA);
        assert_eq!(NameComparison::of_collation(None), general);
        for (collation, case_insensitive, pad_space) in [
            ("utf8mb4_unicode_ci", true, true),
            ("utf8mb4_uca1400_ai_ci", true, true),
            ("utf8mb4_nopad_bin", false, false),
            ("utf8mb3_general_nopad_ci", true, false),
            ("utf8mb4_bin", false, true),
            ("UTF8MB4_BIN", false, true),
            ("utf8mb4_0900_ai_ci", true, false),
            ("utf8mb4_0900_as_cs", false, false),
            ("latin1_swedish_ci", true, true),
            ("binary", false, false),
        ] {
            let expected = NameComparison {
                case_insensitive,
                pad_space,
            };
            assert_eq!(
                NameComparison::of_collation(Some(collation)),
                expected,
                "{collation}"
            );
        }
        assert_eq!(general.key("C1@LVM  "), "c1@lvm");
        assert_eq!(general.key(" c1@lvm\t"), " c1@lvm\t");
        assert_eq!(general.key("ÉTÉ"), "été");
        assert_eq!(BYTES.key("C1@LVM  "), "C1@LVM  ");
        let bin_pad = NameComparison::of_collation(Some("utf8mb4_bin"));
        assert_eq!(bin_pad.key("C1@LVM  "), "C1@LVM");
    }

    #[test]
    fn names_group_as_the_collation_compares_them() {
        let services = [
            Member {
                id: 7,
                cluster_name: Some("Cluster1@lvm "),
                binary: Some(VOLUME),
                updated_at: Some(100),
            },
            Member {
                id: 3,
                cluster_name: Some("cluster1@LVM"),
                binary: Some(VOLUME),
                updated_at: Some(50),
            },
            Member {
                id: 5,
                cluster_name: Some("CLUSTER1@lvm"),
                binary: Some(VOLUME),
                updated_at: None,
            },
            Member {
                id: 9,
                cluster_name: Some("   "),
                binary: Some(VOLUME),
                updated_at: Some(500),
            },
        ];
        let clusters = group_clusters(services, NameComparison::CINDER_SCHEMA);
        assert_eq!(clusters.len(), 1);
        // Named by the oldest row, as the `clusters` row its first member wrote.
        assert_eq!(clusters[0].name, "cluster1@LVM");
        assert_eq!(clusters[0].members, vec![0, 1, 2]);
        assert_eq!(clusters[0].last_heartbeat, Some(100));
        // Compared as bytes: three clusters, and the blank name is one of them.
        let clusters = group_clusters(services, BYTES);
        assert_eq!(clusters.len(), 4);
        // A binary collation that pads: trailing spaces still do not count.
        let bin_pad = NameComparison::of_collation(Some("utf8mb4_bin"));
        let names: Vec<String> = group_clusters(services, bin_pad)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["CLUSTER1@lvm", "Cluster1@lvm ", "cluster1@LVM"]);
    }

    #[test]
    fn the_heartbeat_matches_on_the_name_only_as_cinder_does() {
        // cinder's subquery filters on cluster_name alone: a same-named service of
        // another binary feeds the heartbeat but is not a member.
        let services = [
            member(Some("c@x"), VOLUME, Some(10)),
            member(Some("c@x"), "cinder-backup", Some(500)),
        ];
        let clusters = group_clusters(services, BYTES);
        assert_eq!(clusters.len(), 2);
        assert!(clusters.iter().all(|c| c.last_heartbeat == Some(500)));
        assert!(clusters.iter().all(|c| c.members.len() == 1));
    }
}
