//! What `/metrics` says: every family's schema, the label sets built from a row, the
//! text exposition writer, the families rendered from a snapshot at scrape time, and
//! the response body that streams them.

mod body;
mod exposition;
mod labels;
mod render;
mod schema;

pub use body::MetricsBody;
pub use exposition::LabelSet;
pub use labels::{cluster_labels, cut_as_label, identity_labels, info_labels, text as label_text};
pub use render::{ExpositionWriter, RenderSettings};
