//! Whether the configuration in force is the one on disk: the outcome of the latest
//! reload, as Prometheus reports its own (`…_config_last_reload_successful`), so that a
//! bad edit is seen even though the exporter goes on with the previous configuration.
//!
//! Process-wide, like the process metrics beside it: there is one configuration per
//! process, and every writer of `/metrics` reads the same two figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::exposition::Exposition;
use super::schema;

static SUCCESSFUL: AtomicBool = AtomicBool::new(true);
/// `f64` bits of the unix time of the latest successful load; 0 before the first.
static SUCCEEDED_AT: AtomicU64 = AtomicU64::new(0);

/// Records a load of the configuration (the first at start, then each reload).
pub fn record_reload(successful: bool) {
    SUCCESSFUL.store(successful, Ordering::Relaxed);
    if successful {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        SUCCEEDED_AT.store(now.to_bits(), Ordering::Relaxed);
    }
}

/// Writes both families.
pub fn render(out: &mut Exposition) {
    let successful = if SUCCESSFUL.load(Ordering::Relaxed) {
        1.0
    } else {
        0.0
    };
    out.family(&schema::RELOAD_SUCCESSFUL);
    out.plain(schema::RELOAD_SUCCESSFUL.name, successful);
    out.family(&schema::RELOAD_SUCCESS_TIMESTAMP);
    out.plain(
        schema::RELOAD_SUCCESS_TIMESTAMP.name,
        f64::from_bits(SUCCEEDED_AT.load(Ordering::Relaxed)),
    );
}
