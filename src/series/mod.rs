//! What the series are: every metric family's name, type, HELP and labels
//! ([`schema`], defined once), and the label sets of a service or cluster, escaped and
//! bounded, built once per poll from its row.
//!
//! It sits below the snapshot, which stores the label sets, and below `metrics`,
//! which writes samples with them: both read the same definitions.

pub mod schema;

mod label_set;
mod labels;

pub use label_set::LabelSet;
pub use labels::{agent_state_labels, cluster_labels, identity_labels, info_labels};
