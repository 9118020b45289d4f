//! What the server, the connections and the admin handle share.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use crate::clock::Clock;
use crate::config::SandboxConfig;
use crate::faults::FaultState;
use crate::log::RequestLog;
use crate::model::Company;

/// The listening socket's hand-over point between the admin (which re-binds synchronously when
/// an outage ends, so the port accepts again the moment `set_faults` returns) and the accept
/// loop.
#[derive(Debug, Default)]
pub struct ListenerSlot {
    /// A bound listener waiting for the accept loop.
    pub waiting: Option<std::net::TcpListener>,
    /// Whether the accept loop currently holds a listener.
    pub listening: bool,
}

/// Shared state.
pub struct Shared {
    /// The configuration.
    pub config: SandboxConfig,
    /// The NTLM acceptor with the configured accounts.
    pub ntlm: ntlm::Server,
    /// Companies by id.
    pub db: Mutex<BTreeMap<i32, Company>>,
    /// The sandbox clock.
    pub clock: Clock,
    /// Injected faults.
    pub faults: FaultState,
    /// The request log.
    pub log: RequestLog,
    /// The bound address (kept across outages).
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Whether the service is offline (watched by the accept loop and every connection).
    pub offline: watch::Sender<bool>,
    /// See [`ListenerSlot`].
    pub slot: Mutex<ListenerSlot>,
    /// Wakes the accept loop when a listener is put in the slot.
    pub slot_notify: Notify,
    /// Set once to stop everything.
    pub stop: watch::Sender<bool>,
}

impl Shared {
    /// Locks the data.
    pub fn db(&self) -> MutexGuard<'_, BTreeMap<i32, Company>> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks the listener slot.
    pub fn slot(&self) -> MutexGuard<'_, ListenerSlot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }
}
