//! A service's heartbeat interval, estimated so that one irregular gap cannot move it
//! far: a slow `report_state`, a quick one, a slow restart or a stop and resume.
//!
//! Each advance of `report_count` that a poll sees closes a *gap*: Δupdated_at and
//! Δreport_count since the previous advance seen, both written by the service. The
//! estimate is Σ Δupdated_at / Σ Δreport_count over the last [`WINDOW`] gaps kept,
//! where a gap longer than [`LONG`] × the estimate (plus a second of stamp
//! truncation) is not kept: no service on a fixed schedule at that pace makes one, so
//! it is a silence, not the pace. Every other gap is kept, quick ones included, so
//! that a slow run's long gap and the short one that follows it (cinder's looping call
//! waits the interval minus the run) add up to two intervals and cancel out.
//!
//! The pace itself may change (a new `report_interval`): two outlying gaps in a row,
//! on the same side and agreeing with each other, restart the window from them. One
//! outlying gap never does, so no single long gap (a slow restart, one hung run) ever
//! becomes the interval. A clock step restarts the window too (the tracker clears it),
//! since it would read as one very long or negative gap.

use std::collections::VecDeque;

use super::heartbeat_tracker::WINDOW;
use super::stamp_window::STAMP_RESOLUTION;

/// A gap longer than this many estimates (plus [`STAMP_RESOLUTION`]) is a silence.
/// The early warning counts two heartbeats missed at 2.5 estimates of silence; a gap
/// that short of it is a late heartbeat, part of the pace, so the sums telescope for
/// every service whose gaps stay under twice its interval.
const LONG: f64 = 2.5;

/// A gap shorter than the estimate divided by this (less [`STAMP_RESOLUTION`]) is
/// quick: kept, but two in a row mean the pace has quickened.
const QUICK: f64 = 2.0;

/// Δupdated_at and Δreport_count between two advances seen by polls. 32 bits each
/// (a gap of 68 years, two billion heartbeats; larger ones saturate, and are long
/// gaps anyway): one window per service, so its size is the exporter's memory.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Gap {
    seconds: i32,
    beats: i32,
}

impl Gap {
    fn between(seconds: i64, beats: i64) -> Gap {
        let saturated = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        Gap {
            seconds: saturated(seconds),
            beats: saturated(beats),
        }
    }

    /// Seconds per heartbeat.
    fn per_beat(self) -> f64 {
        f64::from(self.seconds) / f64::from(self.beats)
    }

    /// Whether two outlying gaps tell the same pace: within a factor of two, give or
    /// take the stamps' truncation.
    fn agrees_with(self, other: Gap) -> bool {
        let (a, b) = (self.per_beat(), other.per_beat());
        a.max(b) <= 2.0 * a.min(b) + STAMP_RESOLUTION
    }
}

/// Which way a gap lies off the estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Long,
    Quick,
}

/// The gaps kept, and the last heartbeat seen, from which the next gap is measured.
#[derive(Clone, Debug)]
pub(super) struct IntervalWindow {
    /// `(report_count, updated_at)` of the latest advance seen.
    last: Option<(i64, i64)>,
    /// Gaps kept, oldest first; at most [`WINDOW`], allocated as they come.
    kept: VecDeque<Gap>,
    /// The previous gap, when it lay off the estimate: a second one on the same side
    /// that agrees with it is a new pace.
    outlier: Option<(Side, Gap)>,
}

impl IntervalWindow {
    pub(super) fn new() -> IntervalWindow {
        IntervalWindow {
            last: None,
            kept: VecDeque::new(),
            outlier: None,
        }
    }

    /// Forgets every heartbeat: their stamps are on a clock that has since been stepped.
    pub(super) fn clear(&mut self) {
        *self = IntervalWindow::new();
    }

    /// Adds a heartbeat: `report_count` advanced to this, stamped `stamp`.
    pub(super) fn add(&mut self, report_count: i64, stamp: i64) {
        let Some((last_count, last_stamp)) = self.last else {
            self.last = Some((report_count, stamp));
            return;
        };
        if report_count <= last_count {
            return;
        }
        self.last = Some((report_count, stamp));
        let gap = Gap::between(stamp - last_stamp, report_count - last_count);
        let side = self.estimate().and_then(|estimate| {
            let per_beat = gap.per_beat();
            if per_beat > LONG * estimate + STAMP_RESOLUTION {
                Some(Side::Long)
            } else if per_beat < estimate / QUICK - STAMP_RESOLUTION {
                Some(Side::Quick)
            } else {
                None
            }
        });
        let Some(side) = side else {
            self.outlier = None;
            self.keep(gap);
            return;
        };
        match self.outlier.take() {
            Some((previous_side, previous))
                if previous_side == side && previous.agrees_with(gap) =>
            {
                // Two in a row at one new pace: start again from them.
                self.kept.clear();
                self.kept.push_back(previous);
                self.keep(gap);
            }
            _ => {
                self.outlier = Some((side, gap));
                if side == Side::Quick {
                    // Likely the second half of a slow run: kept, so the two cancel.
                    self.keep(gap);
                }
            }
        }
    }

    // Room is made before the push, so that the deque never grows past WINDOW.
    fn keep(&mut self, gap: Gap) {
        if self.kept.len() == WINDOW {
            self.kept.pop_front();
        }
        self.kept.push_back(gap);
    }

    /// Σ Δupdated_at / Σ Δreport_count over the gaps kept.
    pub(super) fn estimate(&self) -> Option<f64> {
        let (seconds, beats) = self.kept.iter().fold((0_i64, 0_i64), |(s, b), gap| {
            (s + i64::from(gap.seconds), b + i64::from(gap.beats))
        });
        (beats > 0).then(|| seconds as f64 / beats as f64)
    }

    /// How many gaps the estimate is made of.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The window after heartbeats separated by `gaps` (seconds, one heartbeat
    /// each), the first stamped at 1,000,000 s.
    fn after(gaps: &[i64]) -> IntervalWindow {
        let mut window = IntervalWindow::new();
        let mut stamp = 1_000_000;
        window.add(0, stamp);
        for (i, gap) in gaps.iter().enumerate() {
            stamp += gap;
            window.add(i as i64 + 1, stamp);
        }
        window
    }

    fn estimate(gaps: &[i64]) -> f64 {
        after(gaps).estimate().expect("an estimate")
    }

    #[test]
    fn long_then_short_cancels_out() {
        // A report_state 8 s slow at 10 s: 18 s, then 2 s, as cinder's looping call
        // waits the interval minus the run.
        let mut gaps = vec![10; 14];
        gaps.extend([18, 2]);
        assert_eq!(estimate(&gaps), 10.0);
        // Even straight after the short one, with few gaps seen.
        assert_eq!(estimate(&[10, 10, 18, 2]), 10.0);
        // And one slow run in every two, for ever.
        assert_eq!(estimate(&[18, 2].repeat(8)), 10.0);
    }

    #[test]
    fn one_gap_of_any_length_moves_the_estimate_little() {
        for odd in [0, 1, 2, 5, 15, 19, 20, 26, 30, 75, 600, 86_400] {
            let mut gaps = vec![10; 15];
            gaps.push(odd);
            let e = estimate(&gaps);
            // At most (1.5 × 10 + 1) / 16 up, 10 / 16 down.
            assert!((e - 10.0).abs() <= 1.0, "gap {odd}: {e}");
            // And so it stays with the regular gaps that follow.
            gaps.extend([10; 3]);
            let e = estimate(&gaps);
            assert!((e - 10.0).abs() <= 1.0, "gap {odd}, then 3: {e}");
        }
    }

    #[test]
    fn a_silence_is_left_out_entirely() {
        let window = after(&[10, 10, 10, 75, 10]);
        assert_eq!(window.estimate(), Some(10.0));
        assert_eq!(window.len(), 4);
        // Right after it too: a slow restart then death keeps the old pace.
        assert_eq!(estimate(&[10, 10, 10, 75]), 10.0);
        // Two silences that disagree (75 s, then 300 s) are no pace either.
        assert_eq!(estimate(&[10, 10, 10, 75, 300]), 10.0);
    }

    #[test]
    fn a_new_pace_needs_two_gaps_in_a_row() {
        // 10 s to 30 s: the first 30 s gap is a silence, the second confirms.
        assert_eq!(estimate(&[10, 10, 10, 30]), 10.0);
        assert_eq!(estimate(&[10, 10, 10, 30, 30]), 30.0);
        assert_eq!(estimate(&[10, 10, 10, 30, 30, 31, 29]), 30.0);
        // 10 s to 1 s: the same, on the quick side.
        let e = estimate(&[10, 10, 10, 1]);
        assert!((e - 7.75).abs() < 1e-9, "{e}");
        assert_eq!(estimate(&[10, 10, 10, 1, 1]), 1.0);
        // A long gap and a quick one are no pace.
        let e = estimate(&[10, 10, 10, 35, 0]);
        assert!((e - 7.5).abs() < 1e-9, "{e}");
    }

    #[test]
    fn heartbeats_missed_by_polls_weigh_as_many_heartbeats() {
        // Polls saw counts 0, 3, 4: gaps of 30 s over 3 heartbeats and 10 s over one.
        let mut window = IntervalWindow::new();
        window.add(0, 100);
        window.add(3, 130);
        window.add(4, 140);
        assert_eq!(window.estimate(), Some(10.0));
        // A count that does not advance adds nothing.
        window.add(4, 150);
        assert_eq!(window.estimate(), Some(10.0));
    }

    #[test]
    fn the_window_keeps_the_latest_gaps() {
        let window = after(&[20; 40]);
        assert_eq!(window.len(), WINDOW);
        let mut gaps = vec![5; 40];
        gaps.extend([10; WINDOW]);
        assert_eq!(estimate(&gaps), 10.0);
    }
}
