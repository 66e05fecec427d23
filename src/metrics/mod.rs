//! What `/metrics` says: the text exposition writer, the families rendered from a
//! snapshot at scrape time, and the response body that streams them.

mod body;
mod exposition;
mod render;

pub use body::MetricsBody;
pub use exposition::LabelSet;
pub use render::{ExpositionWriter, RenderSettings};
