//! The sandbox's state: the account's data behind one lock, and the shared services around it
//! (request log, faults, webhook queues, the HTTP client, the shutdown signal).
//!
//! One `std::sync::Mutex` guards all data: every API operation is a short critical section, and
//! the lock is never held across an `.await` (webhook validation and deliveries happen outside).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use crate::batches::Batch;
use crate::config::SandboxConfig;
use crate::ecommerce::Store;
use crate::faults::FaultState;
use crate::lists::List;
use crate::log::Recorder;
use crate::webhooks::{self, Delivery, Outgoing};

/// The account's data.
#[derive(Default)]
pub(crate) struct Data {
    /// Audiences by id.
    pub lists: BTreeMap<String, List>,
    /// E-commerce stores by id.
    pub stores: BTreeMap<String, Store>,
    /// Batch operations by id.
    pub batches: BTreeMap<String, Batch>,
    /// Unused OAuth authorization codes → the redirect URI they were issued for.
    pub oauth_codes: HashMap<String, String>,
    /// Issued OAuth access tokens (they never expire).
    pub oauth_tokens: HashSet<String>,
    /// The counter behind every generated id and creation order.
    pub seq: u64,
}

impl Data {
    /// The next sequence number.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// Everything the server, the admin handle and background tasks share.
pub(crate) struct Shared {
    /// The settings the sandbox was started with.
    pub config: SandboxConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The account's data.
    pub data: Mutex<Data>,
    /// The request log and counters.
    pub recorder: Recorder,
    /// The injected faults.
    pub faults: FaultState,
    /// Requests of the account holding a connection slot.
    pub in_flight: Mutex<usize>,
    /// Every webhook delivery attempt.
    pub deliveries: Mutex<Vec<Delivery>>,
    /// The queue of each webhook's delivery worker.
    pub queues: Mutex<HashMap<String, mpsc::UnboundedSender<Outgoing>>>,
    /// The client for webhook validation and deliveries.
    pub http: reqwest::Client,
    /// Where background tasks run (admin calls may come from outside the runtime).
    pub runtime: Handle,
    /// Becomes `true` (or closes) when the sandbox shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Mailchimp runs one batch at a time.
    pub batch_gate: tokio::sync::Mutex<()>,
    /// The counter behind request ids.
    pub request_seq: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, base_url: String, shutdown: watch::Receiver<bool>) -> Shared {
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with these settings always builds");
        Shared {
            config,
            base_url,
            data: Mutex::new(Data::default()),
            recorder: Recorder::default(),
            faults: FaultState::new(),
            in_flight: Mutex::new(0),
            deliveries: Mutex::new(Vec::new()),
            queues: Mutex::new(HashMap::new()),
            http,
            runtime: Handle::current(),
            shutdown,
            batch_gate: tokio::sync::Mutex::new(()),
            request_seq: AtomicU64::new(0),
        }
    }

    /// The data, for reads and writes that fire no webhooks.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A write: runs `f` under the lock and queues the webhook deliveries it decided before
    /// releasing it, so deliveries keep the order of the changes.
    pub(crate) fn write<R>(self: &Arc<Self>, f: impl FnOnce(&mut Data, &mut Vec<Outgoing>) -> R) -> R {
        let mut out = Vec::new();
        let mut data = self.lock();
        let result = f(&mut data, &mut out);
        webhooks::send(self, out);
        drop(data);
        result
    }

    /// A fresh request id (also the `instance` of problem documents).
    pub(crate) fn request_id(&self) -> String {
        crate::util::uuid_like(self.request_seq.fetch_add(1, Ordering::Relaxed))
    }

    /// Runs `f` unless the sandbox shuts down first (`None` then).
    pub(crate) async fn until_shutdown<F: Future>(&self, f: F) -> Option<F::Output> {
        let mut stop = self.shutdown.clone();
        if *stop.borrow_and_update() {
            return None;
        }
        tokio::select! {
            out = f => Some(out),
            _ = stop.changed() => None,
        }
    }
}
