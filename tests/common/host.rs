//! What the tests need from the machine: the repository root, a free port, and
//! waiting (with a deadline) until something holds.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often the waits below try again.
const RETRY: Duration = Duration::from_millis(100);

/// The repository root (for scripts and fixtures).
pub fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 for a server that cannot report the one it took.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Tries `probe` until it gives `Ok`, and returns that; after `timeout` panics with the
/// last `Err`, which should say what was awaited and what was seen instead.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) if Instant::now() > deadline => panic!("{why}"),
            Err(_) => std::thread::sleep(RETRY),
        }
    }
}

/// Waits until `ready` holds; panics after `timeout` naming `what`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    poll_until(timeout, || {
        ready()
            .then_some(())
            .ok_or_else(|| format!("timed out waiting for {what}"))
    })
}
