//! What the exporter knows of one service after a poll: its heartbeat interval, its
//! clock offset and how long its `report_count` has been still. The tracker
//! ([`super::HeartbeatTracker`]) makes it; the snapshot carries it to scrape time,
//! where the cause of a down is judged from it (`down_cause`).

use super::clock_offset::ClockOffset;

/// What the tracker knows of one service after a poll; copied into the snapshot so
/// that the cause can be judged at scrape time.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnosis {
    /// Seconds between heartbeats: ΣΔupdated_at / ΣΔreport_count over the recent gaps,
    /// silences left out, counted from the latest clock step or change of pace (see
    /// `heartbeat_interval.rs` for the estimator and its bound).
    pub heartbeat_interval: Option<f64>,
    pub clock_offset: Option<ClockOffset>,
    /// Reference time of the poll that first saw the current `report_count`: the count
    /// has not advanced since at least then.
    pub count_seen_since: f64,
    /// Whether `count_seen_since` marks an advance this exporter saw, rather than its
    /// first sight of the service.
    pub advance_seen: bool,
}

impl Diagnosis {
    /// How long `report_count` has certainly not advanced, as of a poll at reference
    /// time `poll_time`: the last advance happened no later than the poll that saw it,
    /// and none happened since, since this poll would have seen it. A lower bound,
    /// judged by the database clock only, so a skewed node does not look silent; and
    /// frozen between polls, so a database outage does not make every service silent.
    /// Before an advance was seen it counts from the exporter's first sight.
    pub fn silence(&self, poll_time: f64) -> f64 {
        (poll_time - self.count_seen_since).max(0.0)
    }
}
