//! One row of cinder's `services` table, and the choice of one row per service when
//! rows repeat.
//!
//! Pure: datetimes are plain unix seconds (UTC), so this can be checked against
//! cinder's own code without a clock or a database.

use std::borrow::Cow;

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

/// What identifies a service, and which of its rows is the current one: borrowed
/// from wherever the caller keeps the row's text (no copy per row and poll).
///
/// `host` and `binary` are as its series show them, NULL and "" alike: two rows that
/// differ only in ways a label cannot show would otherwise give Prometheus two series
/// with one label set, of which it silently keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKey<'a> {
    pub binary: Cow<'a, str>,
    pub host: Cow<'a, str>,
    pub last_heartbeat: Option<i64>,
    pub id: i64,
}

impl ServiceKey<'_> {
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

/// Which rows to publish: positions in the `keys` given to [`choose_rows`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    /// The kept rows' positions, one per service, sorted by binary then host (a
    /// stable output order).
    pub kept: Vec<usize>,
    /// The services several rows claim, in the same order.
    pub collisions: Vec<Collision>,
}

/// Keeps one row per `(host, binary)`. Cinder has no unique key there, so a
/// re-created service can leave its old row behind, and two processes configured
/// with one `host` heartbeat two rows.
///
/// The rule is stable, so that the series do not flip between rows as they take
/// turns heartbeating: among the rows cinder-api shows up at `reference_now` (its
/// rule, `abs(age) <= service_down_time`), the highest id, i.e. the newest row, which
/// is what a re-created service writes; when none is up, the latest heartbeat (the
/// highest id on a tie). The choice thus moves only when a row appears, goes or
/// changes between up and down, never because another row heartbeated. It does not
/// depend on the order rows arrive in.
pub fn choose_rows(keys: &[ServiceKey<'_>], reference_now: f64, service_down_time: f64) -> Choice {
    let up: Vec<bool> = keys
        .iter()
        .map(|key| {
            api_up(
                heartbeat_age(reference_now, key.last_heartbeat),
                service_down_time,
            )
        })
        .collect();
    let mut ranked: Vec<usize> = (0..keys.len()).collect();
    ranked.sort_unstable_by(|&a, &b| {
        let (key_a, key_b) = (&keys[a], &keys[b]);
        key_a
            .service()
            .cmp(&key_b.service())
            // The keeper first within a service.
            .then_with(|| up[b].cmp(&up[a]))
            .then_with(|| match up[a] {
                true => key_b.id.cmp(&key_a.id),
                false => (key_b.last_heartbeat, key_b.id).cmp(&(key_a.last_heartbeat, key_a.id)),
            })
    });
    let mut kept: Vec<usize> = Vec::with_capacity(ranked.len());
    let mut collisions: Vec<Collision> = Vec::new();
    for position in ranked {
        let key = &keys[position];
        match kept.last().map(|&k| &keys[k]) {
            Some(first) if first.service() == key.service() => match collisions.last_mut() {
                Some(c) if c.kept == first.id => c.rows.push(key.id),
                _ => collisions.push(Collision {
                    binary: key.binary.clone().into_owned(),
                    host: key.host.clone().into_owned(),
                    kept: first.id,
                    rows: vec![first.id, key.id],
                }),
            },
            _ => kept.push(position),
        }
    }
    for collision in &mut collisions {
        collision.rows.sort_unstable();
    }
    Choice { kept, collisions }
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

    fn key(
        id: i64,
        host: &'static str,
        binary: &'static str,
        updated: Option<i64>,
    ) -> ServiceKey<'static> {
        ServiceKey {
            binary: Cow::Borrowed(binary),
            host: Cow::Borrowed(host),
            last_heartbeat: updated,
            id,
        }
    }

    /// The ids `choose_rows` keeps at reference time `now` with service_down_time 60 s.
    fn kept_at(keys: &[ServiceKey<'_>], now: f64) -> (Vec<i64>, Vec<Collision>) {
        let choice = choose_rows(keys, now, 60.0);
        let ids = choice.kept.iter().map(|&k| keys[k].id).collect();
        (ids, choice.collisions)
    }

    fn choose(keys: Vec<ServiceKey<'_>>) -> (Vec<i64>, Vec<Collision>) {
        kept_at(&keys, 1_000.0)
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
            let (kept, collisions) = kept_at(&candidates, 1_000.0 + t as f64);
            assert_eq!(collisions.len(), 1);
            published.push(kept[0]);
        }
        assert!(published.iter().all(|id| *id == 9), "{published:?}");
    }

    #[test]
    fn a_re_created_service_takes_over_and_a_dead_row_gives_way() {
        let poll = |rows: Vec<ServiceKey<'_>>, t: f64| kept_at(&rows, t).0[0];
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
            // As the snapshot's label text gives them: NULL reads as "".
            let candidates = order
                .iter()
                .map(|&i| ServiceKey {
                    binary: Cow::Borrowed(rows[i].binary.as_deref().unwrap_or_default()),
                    host: Cow::Borrowed(rows[i].host.as_deref().unwrap_or_default()),
                    last_heartbeat: rows[i].last_heartbeat(),
                    id: rows[i].id,
                })
                .collect();
            let (kept, collisions) = choose(candidates);
            assert_eq!(kept, vec![9]);
            assert_eq!(collisions[0].rows, vec![7, 8, 9]);
        }
    }
}
