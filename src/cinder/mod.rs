//! cinder's semantics, pure: the rows of `services`, the two up/down verdicts exactly
//! as cinder computes them, the clusters built from their members, and the diagnosis
//! of why a service is down.
//!
//! Nothing here does I/O or reads a clock: times are unix seconds handed in, so every
//! rule can be checked against cinder's own code by simulation.

mod cluster;
mod diagnosis;
mod row;
mod verdict;

pub use cluster::{group_clusters, Cluster, ClusterVerdict, Member};
pub use diagnosis::{Diagnosis, DownCause, HeartbeatTracker, StampWindow, Thresholds};
pub use row::{keep_freshest, ServiceKey, ServiceRow};
pub use verdict::Verdict;
