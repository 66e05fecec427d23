//! What `/metrics` and `/probe` say: the text exposition writer, the families written
//! from a judgement at scrape time (with openstack-exporter's series in `compat` and
//! the process's in `process`), the exporter's own registry (`own`), and the response
//! body that streams them.

mod body;
mod compat;
mod exposition;
pub mod own;
mod process;
mod render;

pub use body::MetricsBody;
pub use render::ExpositionWriter;
