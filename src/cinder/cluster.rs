//! cinder's clusters (active-active cinder-volume) and their up/down verdict, derived
//! from the member services as cinder itself derives them. Pure: no clock, no I/O.
//!
//! cinder keeps a `clusters` row per `(name, binary)`; a service belongs to it when its
//! `cluster_name` equals the name, and its members share its binary. The cluster's
//! heartbeat (`Cluster.last_heartbeat` in `db/models.py`) is the latest `updated_at` of
//! the live services whose `cluster_name` is that name, and `Cluster.is_up` applies the
//! scheduler's rule to it: up iff it is set and `>= now - service_down_time`. The
//! exporter reads only `services` (its grant), so the clusters are rebuilt from there.

use std::collections::BTreeMap;

use super::verdict::scheduler_up;

/// One cluster as a poll saw it: its members and its heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct Cluster {
    /// `cluster_name` of its members, e.g. `cluster1@lvm`.
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
    pub services: usize,
    /// Members the scheduler sees up (`Service.is_up`).
    pub services_up: usize,
}

/// What [`group_clusters`] needs of one service.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    pub cluster_name: Option<&'a str>,
    pub binary: Option<&'a str>,
    pub updated_at: Option<i64>,
}

/// The clusters of `services`, sorted by name then binary. Services without a
/// `cluster_name` (or with an empty one, cinder's "not clustered") belong to none.
pub fn group_clusters<'a>(services: impl IntoIterator<Item = Member<'a>>) -> Vec<Cluster> {
    let mut clusters: BTreeMap<(&'a str, &'a str), Vec<usize>> = BTreeMap::new();
    let mut heartbeats: BTreeMap<&'a str, Option<i64>> = BTreeMap::new();
    for (index, member) in services.into_iter().enumerate() {
        let Some(name) = member.cluster_name.filter(|n| !n.is_empty()) else {
            continue;
        };
        let heartbeat = heartbeats.entry(name).or_default();
        *heartbeat = (*heartbeat).max(member.updated_at);
        let binary = member.binary.unwrap_or("");
        clusters.entry((name, binary)).or_default().push(index);
    }
    clusters
        .into_iter()
        .map(|((name, binary), members)| Cluster {
            name: name.to_string(),
            binary: binary.to_string(),
            members,
            last_heartbeat: heartbeats[name],
        })
        .collect()
}

impl Cluster {
    /// The verdict at `reference_now`; `updated_at(i)` is member `i`'s `updated_at`.
    pub fn verdict(
        &self,
        reference_now: f64,
        service_down_time: f64,
        updated_at: impl Fn(usize) -> Option<i64>,
    ) -> ClusterVerdict {
        let services_up = self
            .members
            .iter()
            .filter(|&&i| scheduler_up(reference_now, updated_at(i), service_down_time))
            .count();
        ClusterVerdict {
            up: scheduler_up(reference_now, self.last_heartbeat, service_down_time),
            services: self.members.len(),
            services_up,
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
            cluster_name: cluster,
            binary: Some(binary),
            updated_at,
        }
    }

    const VOLUME: &str = "cinder-volume";

    #[test]
    fn groups_by_name_and_binary_and_skips_unclustered() {
        let services = [
            member(Some("c1@lvm"), VOLUME, Some(100)),
            member(None, VOLUME, Some(500)),
            member(Some("c1@lvm"), VOLUME, Some(90)),
            member(Some(""), VOLUME, Some(500)),
            member(Some("c0@ceph"), VOLUME, None),
        ];
        let clusters = group_clusters(services);
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
        let cluster = &group_clusters(services)[0];
        let at = |now: f64| cluster.verdict(now, 60.0, |i| updated[i]);
        // Scheduler rule, inclusive: 1000 >= 1060 - 60.
        assert_eq!(
            at(1_060.0),
            ClusterVerdict {
                up: true,
                services: 3,
                services_up: 1
            }
        );
        assert!(!at(1_060.5).up);
        assert_eq!(at(960.0).services_up, 2);
        // A member whose clock runs ahead keeps the cluster up, as in cinder.
        assert!(at(-5_000.0).up);
    }

    #[test]
    fn a_cluster_without_any_heartbeat_is_down() {
        let cluster = &group_clusters([member(Some("c@lvm"), VOLUME, None)])[0];
        assert!(!cluster.verdict(0.0, 60.0, |_| None).up);
    }

    #[test]
    fn the_heartbeat_matches_on_the_name_only_as_cinder_does() {
        // cinder's subquery filters on cluster_name alone: a same-named service of
        // another binary feeds the heartbeat but is not a member.
        let services = [
            member(Some("c@x"), VOLUME, Some(10)),
            member(Some("c@x"), "cinder-backup", Some(500)),
        ];
        let clusters = group_clusters(services);
        assert_eq!(clusters.len(), 2);
        assert!(clusters.iter().all(|c| c.last_heartbeat == Some(500)));
        assert!(clusters.iter().all(|c| c.members.len() == 1));
    }
}
