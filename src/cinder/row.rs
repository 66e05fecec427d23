//! One row of cinder's `services` table, and the choice of one row per service when
//! rows repeat.
//!
//! Pure: datetimes are plain unix seconds (UTC), so this can be checked against
//! cinder's own code without a clock or a database.

use super::verdict::{api_up, heartbeat_age};

/// One row of cinder's `services` table, as read by one poll.
///
/// Columns that older cinder schemas lack (see `database::Schema`) read as `None`.
/// Datetimes are unix seconds: cinder stores naive UTC with whole seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceRow {
    pub id: i64,
    pub host: Option<String>,
    pub binary: Option<String>,
    pub availability_zone: Option<String>,
    pub report_count: i64,
    pub disabled: Option<bool>,
    pub disabled_reason: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub modified_at: Option<i64>,
    pub cluster_name: Option<String>,
    pub uuid: Option<String>,
    pub rpc_current_version: Option<String>,
    pub object_current_version: Option<String>,
    pub replication_status: Option<String>,
    pub frozen: Option<bool>,
    pub active_backend_id: Option<String>,
}

impl ServiceRow {
    /// The heartbeat the API judges by: `updated_at or created_at`.
    pub fn last_heartbeat(&self) -> Option<i64> {
        self.updated_at.or(self.created_at)
    }

    /// `enabled = not disabled`; cinder treats a NULL `disabled` as enabled.
    pub fn enabled(&self) -> bool {
        !self.disabled.unwrap_or(false)
    }

    /// The backend part of a cinder-volume host (`node@backend`), or "" for plain hosts.
    pub fn backend(&self) -> &str {
        self.host
            .as_deref()
            .and_then(|h| h.split_once('@'))
            .map_or("", |(_, backend)| backend)
    }
}

/// What identifies a service, and which of its rows is the current one.
///
/// `host` and `binary` are as its series show them, NULL and "" alike: two rows that
/// differ only in ways a label cannot show would otherwise give Prometheus two series
/// with one label set, of which it silently keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKey {
    pub binary: String,
    pub host: String,
    pub last_heartbeat: Option<i64>,
    pub id: i64,
}

impl ServiceKey {
    /// Takes the key out of a row (its host and binary move, they are not copied).
    pub fn of(row: ServiceRow) -> ServiceKey {
        ServiceKey {
            last_heartbeat: row.last_heartbeat(),
            binary: row.binary.unwrap_or_default(),
            host: row.host.unwrap_or_default(),
            id: row.id,
        }
    }

    fn service(&self) -> (&str, &str) {
        (&self.binary, &self.host)
    }
}

/// Several live rows that show as one service: which one is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collision {
    pub binary: String,
    pub host: String,
    /// The row published.
    pub kept: i64,
    /// Every colliding row's id, the kept one included, ascending.
    pub rows: Vec<i64>,
}

/// Keeps one value per `(host, binary)`, with its row's id. Cinder has no unique key
/// there, so a re-created service can leave its old row behind, and two processes
/// configured with one `host` heartbeat two rows.
///
/// The rule is stable, so that the series do not flip between rows as they take
/// turns heartbeating: among the rows cinder-api shows up at `reference_now` (its
/// rule, `abs(age) <= service_down_time`), the highest id, i.e. the newest row, which
/// is what a re-created service writes; when none is up, the latest heartbeat (the
/// highest id on a tie). The choice thus moves only when a row appears, goes or
/// changes between up and down, never because another row heartbeated. It does not
/// depend on the order rows arrive in.
///
/// Returns the kept values sorted by binary then host (a stable output order) and the
/// collisions in the same order.
pub fn choose_rows<T>(
    candidates: Vec<(ServiceKey, T)>,
    reference_now: f64,
    service_down_time: f64,
) -> (Vec<(i64, T)>, Vec<Collision>) {
    let mut ranked: Vec<(ServiceKey, bool, T)> = candidates
        .into_iter()
        .map(|(key, value)| {
            let up = api_up(
                heartbeat_age(reference_now, key.last_heartbeat),
                service_down_time,
            );
            (key, up, value)
        })
        .collect();
    ranked.sort_unstable_by(|(a, a_up, _), (b, b_up, _)| {
        a.service()
            .cmp(&b.service())
            // The keeper first within a service.
            .then_with(|| b_up.cmp(a_up))
            .then_with(|| match a_up {
                true => b.id.cmp(&a.id),
                false => (b.last_heartbeat, b.id).cmp(&(a.last_heartbeat, a.id)),
            })
    });
    let mut kept = Vec::with_capacity(ranked.len());
    let mut collisions: Vec<Collision> = Vec::new();
    let mut previous: Option<ServiceKey> = None;
    for (key, _, value) in ranked {
        match &previous {
            Some(first) if first.service() == key.service() => match collisions.last_mut() {
                Some(c) if c.kept == first.id => c.rows.push(key.id),
                _ => collisions.push(Collision {
                    binary: key.binary.clone(),
                    host: key.host.clone(),
                    kept: first.id,
                    rows: vec![first.id, key.id],
                }),
            },
            _ => {
                kept.push((key.id, value));
                previous = Some(key);
            }
        }
    }
    for collision in &mut collisions {
        collision.rows.sort_unstable();
    }
    (kept, collisions)
}

/// The collisions of `current` that `previous` did not have with the same set of rows:
/// what is worth a log line, once per change of the colliding rows, whichever of them
/// is published. Both sorted by binary then host, as [`choose_rows`] returns them.
pub fn new_collisions<'a>(
    previous: &'a [Collision],
    current: &'a [Collision],
) -> impl Iterator<Item = &'a Collision> {
    current.iter().filter(move |c| {
        let service = (&c.binary, &c.host);
        previous
            .binary_search_by(|p| (&p.binary, &p.host).cmp(&service))
            .map_or(true, |i| previous[i].rows != c.rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_heartbeat_falls_back_to_created_at() {
        let row = ServiceRow {
            created_at: Some(5),
            ..Default::default()
        };
        assert_eq!(row.last_heartbeat(), Some(5));
    }

    #[test]
    fn backend_is_the_part_after_the_at_sign() {
        let mut row = ServiceRow {
            host: Some("ctl1@lvm".into()),
            ..Default::default()
        };
        assert_eq!(row.backend(), "lvm");
        row.host = Some("ctl1".into());
        assert_eq!(row.backend(), "");
        row.host = None;
        assert_eq!(row.backend(), "");
    }

    fn key(id: i64, host: &str, binary: &str, updated: Option<i64>) -> (ServiceKey, i64) {
        let row = ServiceRow {
            id,
            host: Some(host.into()),
            binary: Some(binary.into()),
            updated_at: updated,
            ..Default::default()
        };
        (ServiceKey::of(row), id)
    }

    /// `choose_rows` at reference time 1,000 s with service_down_time 60 s.
    fn choose(candidates: Vec<(ServiceKey, i64)>) -> (Vec<i64>, Vec<Collision>) {
        let (kept, collisions) = choose_rows(candidates, 1_000.0, 60.0);
        (kept.into_iter().map(|(_, v)| v).collect(), collisions)
    }

    #[test]
    fn keeps_the_newest_up_row_else_the_freshest() {
        let (kept, collisions) = choose(vec![
            // Both up: the newest row, though the other heartbeated last.
            key(1, "a", "cinder-volume", Some(999)),
            key(2, "a", "cinder-volume", Some(990)),
            key(3, "a", "cinder-scheduler", Some(50)),
            // Neither up: the latest heartbeat, then the highest id.
            key(4, "b", "cinder-volume", None),
            key(5, "b", "cinder-volume", None),
            key(6, "c", "cinder-volume", Some(100)),
            key(7, "c", "cinder-volume", Some(90)),
            // The newest row is down, an older one up: the one up.
            key(8, "d", "cinder-volume", Some(995)),
            key(9, "d", "cinder-volume", Some(500)),
        ]);
        assert_eq!(kept, vec![3, 2, 5, 6, 8]);
        let shown: Vec<(&str, i64, &[i64])> = collisions
            .iter()
            .map(|c| (c.host.as_str(), c.kept, c.rows.as_slice()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("a", 2, &[1, 2][..]),
                ("b", 5, &[4, 5][..]),
                ("c", 6, &[6, 7][..]),
                ("d", 8, &[8, 9][..])
            ]
        );
    }

    #[test]
    fn two_rows_heartbeating_in_turn_never_flip() {
        // Rows 7 and 9 of one service heartbeat every 10 s, 5 s apart; polls every
        // second for 5 minutes. The published row, and so its report count, stays.
        let mut published = Vec::new();
        for t in 0..300 {
            let beat = |phase: i64| Some(1_000 + (t - phase).div_euclid(10) * 10 + phase);
            let candidates = vec![
                key(9, "h", "cinder-volume", beat(5)),
                key(7, "h", "cinder-volume", beat(0)),
            ];
            let (kept, collisions) = choose_rows(candidates, 1_000.0 + t as f64, 60.0);
            assert_eq!(collisions.len(), 1);
            published.push(kept[0].0);
        }
        assert!(published.iter().all(|id| *id == 9), "{published:?}");
    }

    #[test]
    fn a_re_created_service_takes_over_and_a_dead_row_gives_way() {
        let poll = |rows: Vec<(ServiceKey, i64)>, t: f64| choose_rows(rows, t, 60.0).0[0].0;
        // The old row 3 heartbeats until 1,000 s; the re-created row 8 from 1,010 s.
        assert_eq!(poll(vec![key(3, "h", "v", Some(1_000))], 1_005.0), 3);
        let both = |t: f64| {
            vec![
                key(3, "h", "v", Some(1_000)),
                key(8, "h", "v", Some(t as i64)),
            ]
        };
        assert_eq!(poll(both(1_010.0), 1_010.0), 8);
        assert_eq!(poll(both(1_100.0), 1_100.0), 8);
        // Row 8 dies while row 3 comes back: once row 8 is down, row 3.
        let later = vec![key(3, "h", "v", Some(1_150)), key(8, "h", "v", Some(1_100))];
        assert_eq!(poll(later.clone(), 1_160.0), 8);
        assert_eq!(poll(later, 1_161.0), 3);
    }

    #[test]
    fn a_collision_is_new_once_per_change_of_its_rows() {
        let collision = |host: &str, kept, rows: &[i64]| Collision {
            binary: "cinder-volume".into(),
            host: host.into(),
            kept,
            rows: rows.to_vec(),
        };
        let polls = [
            vec![collision("h", 9, &[7, 9])],
            vec![collision("h", 9, &[7, 9])],
            // Row 9 went down: row 7 is published, the same rows collide.
            vec![collision("h", 7, &[7, 9])],
            // A third row, and another service colliding.
            vec![collision("a", 3, &[2, 3]), collision("h", 11, &[7, 9, 11])],
            vec![collision("a", 3, &[2, 3]), collision("h", 11, &[7, 9, 11])],
            // Row 11 gone again; then no collision at all; then the same again.
            vec![collision("h", 9, &[7, 9])],
            vec![],
            vec![collision("h", 9, &[7, 9])],
        ];
        let mut previous = Vec::new();
        let mut logged = Vec::new();
        for poll in polls {
            let new: Vec<(String, Vec<i64>)> = new_collisions(&previous, &poll)
                .map(|c| (c.host.clone(), c.rows.clone()))
                .collect();
            logged.push(new);
            previous = poll;
        }
        let h = |rows: &[i64]| ("h".to_string(), rows.to_vec());
        let expected = vec![
            vec![h(&[7, 9])],
            vec![],
            vec![],
            vec![("a".to_string(), vec![2, 3]), h(&[7, 9, 11])],
            vec![],
            vec![h(&[7, 9])],
            vec![],
            vec![h(&[7, 9])],
        ];
        assert_eq!(logged, expected);
    }

    #[test]
    fn null_and_empty_are_one_service() {
        let row = |id, host: Option<&str>, updated| ServiceRow {
            id,
            host: host.map(String::from),
            binary: Some("cinder-volume".into()),
            updated_at: updated,
            ..Default::default()
        };
        // Whatever order the rows come in, the same row is kept.
        for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
            let rows = [
                row(7, None, Some(5)),
                row(8, Some(""), Some(9)),
                row(9, None, Some(9)),
            ];
            let candidates = order
                .iter()
                .map(|&i| (ServiceKey::of(rows[i].clone()), rows[i].id))
                .collect();
            let (kept, collisions) = choose(candidates);
            assert_eq!(kept, vec![9]);
            assert_eq!(collisions[0].rows, vec![7, 8, 9]);
        }
    }
}
