//! A service's clock offset (its clock minus the reference clock), bounded from the
//! heartbeats the polls see.
//!
//! When a poll sees `report_count` advance, the latest heartbeat happened after the
//! previous poll's reference time `R₀` and no later than this poll's `R₁`, while
//! `updated_at` — the service's own clock, kept in whole seconds — says the service
//! believed it was in `[u + from, u + to)` then (see [`StampWindow`]; `[u, u + 1)` for
//! a cut stamp). So the offset lies in `[u + from − R₁, u + to − R₀]`: a bracket one
//! poll interval plus one second wide. Heartbeats land at different phases of the poll
//! cycle and of the second, so intersecting the brackets of the last [`WINDOW`]
//! heartbeats narrows the bound; when heartbeats and polls run in lockstep (a
//! whole-second interval that is a multiple of the poll interval) every bracket is
//! alike and the bound stays one bracket wide. A bracket that misses the intersection
//! means the node's clock was stepped: the estimate restarts from that bracket.
//!
//! The bound assumes that the stamp is taken when the heartbeat becomes visible. In
//! truth the service reads its clock before its UPDATE commits, so a heartbeat a poll
//! just missed may carry a stamp from up to that write latency before the poll: the
//! bound can be off by the latency (milliseconds on a healthy database).
//!
//! [`StampWindow`]: super::StampWindow

use std::collections::VecDeque;

use super::heartbeat_tracker::WINDOW;

/// The bound on a service's clock offset: the truth lies in `estimate ± uncertainty`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockOffset {
    /// Service clock minus reference clock, seconds; positive when the service is ahead.
    pub estimate: f64,
    pub uncertainty: f64,
    /// How many heartbeats' brackets were intersected to get here.
    pub heartbeats: usize,
}

/// The offset brackets `(low, high)` of the latest heartbeats, oldest first.
#[derive(Clone, Debug)]
pub(super) struct OffsetBrackets {
    brackets: VecDeque<(f64, f64)>,
}

impl OffsetBrackets {
    pub(super) fn new() -> OffsetBrackets {
        OffsetBrackets {
            brackets: VecDeque::new(),
        }
    }

    /// Adds one heartbeat's bracket. Returns whether it missed the intersection of
    /// the others: the clock was stepped, and only this bracket is kept.
    pub(super) fn add(&mut self, low: f64, high: f64) -> bool {
        let stepped = self
            .intersection()
            .is_some_and(|(current_low, current_high)| low > current_high || high < current_low);
        if stepped {
            self.brackets.clear();
        }
        if self.brackets.len() == WINDOW {
            self.brackets.pop_front();
        }
        self.brackets.push_back((low, high));
        stepped
    }

    fn intersection(&self) -> Option<(f64, f64)> {
        let mut brackets = self.brackets.iter();
        let first = *brackets.next()?;
        Some(brackets.fold(first, |(low, high), &(l, h)| (low.max(l), high.min(h))))
    }

    /// The bound the brackets give, if there is any bracket yet.
    pub(super) fn estimate(&self) -> Option<ClockOffset> {
        self.intersection().map(|(low, high)| ClockOffset {
            estimate: (low + high) / 2.0,
            uncertainty: (high - low) / 2.0,
            heartbeats: self.brackets.len(),
        })
    }
}
