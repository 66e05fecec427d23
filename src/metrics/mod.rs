//! What `/metrics` and `/probe` say: every family's schema, the label sets built from a
//! row, the text exposition writer, the families rendered from a snapshot at scrape
//! time (with openstack-exporter's series in `compat` and the process's in `process`),
//! and the response body that streams them.

mod body;
mod compat;
mod exposition;
mod labels;
mod process;
mod reload;
mod render;
mod schema;

pub use body::MetricsBody;
pub use compat::agent_state_labels;
pub use exposition::LabelSet;
pub use labels::{cluster_labels, cut_as_label, identity_labels, info_labels, text as label_text};
pub use process::exporter_only;
pub use reload::record_reload;
pub use render::{ExpositionWriter, RenderSettings};
