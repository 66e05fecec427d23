//! A service's heartbeat interval: the mean Δupdated_at / Δreport_count over the last
//! [`WINDOW`] heartbeats the polls saw. A pair of heartbeats far off that mean (a stop
//! and resume, a new `report_interval`) restarts it, so that a silence is not averaged
//! into the service's pace; so does a clock step (the tracker restarts it then), which
//! would otherwise read as one very long or negative interval.

use std::collections::VecDeque;

use super::heartbeat_tracker::WINDOW;
use super::stamp_window::STAMP_RESOLUTION;

/// `(report_count, updated_at)` at the heartbeats seen, oldest first.
#[derive(Clone, Debug)]
pub(super) struct IntervalWindow {
    beats: VecDeque<(i64, i64)>,
}

impl IntervalWindow {
    pub(super) fn new() -> IntervalWindow {
        IntervalWindow {
            beats: VecDeque::with_capacity(WINDOW + 1),
        }
    }

    /// Forgets every heartbeat: their stamps are on a clock that has since been stepped.
    pub(super) fn clear(&mut self) {
        self.beats.clear();
    }

    /// Adds a heartbeat to the window. A pair of heartbeats far off the window's mean
    /// means the pace changed: a stop and resume (the pair spans the silence) or a new
    /// report_interval. The window then restarts from that pair, and the next pair
    /// either confirms the new pace or restarts it again, so a silence counts for one
    /// heartbeat only instead of inflating the mean for [`WINDOW`] of them.
    pub(super) fn add(&mut self, report_count: i64, stamp: i64) {
        if let (Some(mean), Some(&(last_count, last_stamp))) = (self.mean(), self.beats.back()) {
            let pair = (stamp - last_stamp) as f64 / (report_count - last_count) as f64;
            // The second of slack keeps the stamps' truncation from triggering this,
            // and jitter too unless it approaches a third of the interval.
            if pair > 2.0 * mean + STAMP_RESOLUTION || pair < mean / 2.0 - STAMP_RESOLUTION {
                self.beats.drain(..self.beats.len() - 1);
            }
        }
        self.beats.push_back((report_count, stamp));
        if self.beats.len() > WINDOW + 1 {
            self.beats.pop_front();
        }
    }

    /// Δupdated_at / Δreport_count across the window.
    pub(super) fn mean(&self) -> Option<f64> {
        match (self.beats.front(), self.beats.back()) {
            (Some(&(first_count, first_stamp)), Some(&(last_count, last_stamp)))
                if last_count > first_count =>
            {
                Some((last_stamp - first_stamp) as f64 / (last_count - first_count) as f64)
            }
            _ => None,
        }
    }

    /// How many heartbeats the window holds.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.beats.len()
    }
}
