//! Graceful shutdown as a value passed to every task, not a global: the poller and the
//! HTTP server each hold a [`Shutdown`] and stop when it fires.

use tokio::sync::watch;

/// Fires once, for every clone, when the process is asked to stop.
#[derive(Clone, Debug)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The sending half: [`Trigger::fire`] stops every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct Trigger {
    sender: watch::Sender<bool>,
}

/// A connected trigger and listener.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger { sender }, Shutdown { receiver })
}

impl Trigger {
    /// Asks every listener to stop.
    pub fn fire(&self) {
        let _ = self.sender.send(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been requested (at once if it already was). A
    /// dropped trigger counts as a request, so no task outlives its owner.
    pub async fn requested(&mut self) {
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C): what systemd and operators send.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
