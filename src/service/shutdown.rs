//! Stopping without losing anything: on SIGTERM or Ctrl-C the service stops taking work
//! (`/readyz` and the webhook intakes answer 503, so load balancers look elsewhere and senders
//! retry later), asks runs to stop at their next safe point (the writes in flight finish and
//! are recorded; the watermark stays, so the next start reads the rest), waits for them, and
//! exits 0. Nothing acknowledged is lost: events are in the inbox before their 2xx.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::executor::Interrupt;
use tokio::sync::watch;

/// The service's one shutdown switch.
pub struct Shutdown {
    begun: AtomicBool,
    /// Raised with the switch: every run watches it.
    pub interrupt: Interrupt,
    changed: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown { begun: AtomicBool::new(false), interrupt: Interrupt::new(), changed: watch::channel(false).0 }
    }
}

impl Shutdown {
    /// Starts shutting down (idempotent).
    pub fn begin(&self) {
        if !self.begun.swap(true, Ordering::SeqCst) {
            tracing::info!("Shutting down: no new work; runs stop after the writes in flight.");
        }
        self.interrupt.request();
        self.changed.send_replace(true);
    }

    pub fn is_begun(&self) -> bool {
        self.begun.load(Ordering::SeqCst)
    }

    /// Completes once shutting down has begun.
    pub async fn begun(&self) {
        let mut rx = self.changed.subscribe();
        // `wait_for` looks at the current value first, so a shutdown already begun returns at once.
        let _ = rx.wait_for(|begun| *begun).await;
    }
}

/// Completes on SIGTERM (what `systemctl stop`, Docker and Kubernetes send) or Ctrl-C.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received."),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received."),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Cannot listen for SIGTERM; Ctrl-C only.");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
