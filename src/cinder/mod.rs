//! cinder's semantics, pure: the rows of `services`, the two up/down verdicts exactly
//! as cinder computes them, the clusters built from their members, and the diagnosis
//! of why a service is down.
//!
//! Nothing here does I/O or reads a clock: times are unix seconds handed in, so every
//! rule can be checked against cinder's own code by simulation.

mod clock_offset;
mod cluster;
mod diagnosis;
mod down_cause;
mod heartbeat_interval;
mod heartbeat_tracker;
mod row;
mod stamp_window;
mod thresholds;
mod verdict;

pub use cluster::{group_clusters, Cluster, ClusterVerdict, Member, NameComparison};
pub use diagnosis::Diagnosis;
pub use down_cause::DownCause;
pub use heartbeat_tracker::HeartbeatTracker;
pub use row::{choose_rows, new_collisions, Collision, ServiceKey, ServiceRow};
pub use stamp_window::StampWindow;
pub use thresholds::Thresholds;
pub use verdict::Verdict;
