//! The shared state of a running sandbox: settings, the virtual clock, the data behind one
//! lock (held for a request's reads and writes, never across an await), the request log,
//! faults, throttling, and the wake-up of the notification engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

use crate::auth::Token;
use crate::clock::Clock;
use crate::config::SandboxConfig;
use crate::entities::{Company, Tx};
use crate::errors::ApiError;
use crate::faults::FaultState;
use crate::log::Recorder;
use crate::subscriptions::{Hooks, Subscription};
use crate::throttle::Throttle;
use crate::util::guid;

/// Everything behind the data lock.
pub(crate) struct Data {
    /// Companies in creation order.
    pub companies: Vec<Company>,
    /// The last row version handed out (SQL `rowversion`): ETags and `timestamp` come from it.
    pub version: u64,
    /// Webhook subscriptions by id.
    pub subscriptions: BTreeMap<String, Subscription>,
    /// Pending notifications, the next job, the delivery log.
    pub hooks: Hooks,
    /// Access tokens issued, by token.
    pub tokens: HashMap<String, Token>,
}

impl Data {
    /// A company by id (GUID) or name.
    pub(crate) fn company_index(&self, key: &str) -> Option<usize> {
        self.companies
            .iter()
            .position(|c| c.id.eq_ignore_ascii_case(key))
            .or_else(|| self.companies.iter().position(|c| c.name == key))
    }

    /// Adds a company (start-up and seeds).
    pub(crate) fn add_company(&mut self, name: &str, now: jiff::Timestamp) -> String {
        if let Some(i) = self.company_index(name) {
            return self.companies[i].id.clone();
        }
        self.version += 1;
        let id = guid();
        self.companies.push(Company::new(
            id.clone(),
            name.to_string(),
            crate::clock::sql_datetime(now),
            self.version as i64,
        ));
        id
    }
}

/// The state every handler and background task shares.
pub(crate) struct Shared {
    /// The settings the sandbox started with.
    pub config: SandboxConfig,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// Virtual time for stamps, expiry and schedules.
    pub clock: Clock,
    /// The data, behind one lock.
    data: Mutex<Data>,
    /// The API request log.
    pub recorder: Recorder,
    /// Injected faults.
    pub faults: FaultState,
    /// Per-user processing slots and queues.
    pub throttle: Throttle,
    /// Wakes the notification engine when changes are registered or the clock moves.
    pub wake: Notify,
    /// Becomes true when the sandbox stops.
    pub stopped: watch::Receiver<bool>,
    /// The client for handshakes and notifications.
    pub http: reqwest::Client,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, base_url: String, stopped: watch::Receiver<bool>) -> Shared {
        let clock = Clock::default();
        let mut data = Data {
            companies: Vec::new(),
            version: 1000,
            subscriptions: BTreeMap::new(),
            hooks: Hooks::default(),
            tokens: HashMap::new(),
        };
        let now = clock.now();
        for name in &config.companies {
            data.add_company(name, now);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Shared {
            throttle: Throttle::new(config.concurrency, config.queue),
            config,
            base_url,
            clock,
            data: Mutex::new(data),
            recorder: Recorder::default(),
            faults: FaultState::new(),
            wake: Notify::new(),
            stopped,
            http,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write against one company and registers its changes for webhooks.
    pub(crate) fn write<T>(
        &self,
        company: &str,
        f: impl FnOnce(&mut Company, &mut Tx) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut data = self.lock();
        let index = data.company_index(company).ok_or_else(|| ApiError::segment_not_found("companies"))?;
        let mut tx =
            Tx { version: data.version, stamp: self.clock.stamp(), now: self.clock.now(), changes: Vec::new() };
        let result = f(&mut data.companies[index], &mut tx)?;
        data.version = data.version.max(tx.version);
        let registered = crate::subscriptions::register(&mut data, &tx.changes, tx.now, self.config.notification_delay);
        drop(data);
        if registered {
            self.wake.notify_one();
        }
        Ok(result)
    }

    /// Runs `future` unless the sandbox stops first.
    pub(crate) async fn until_shutdown<F: std::future::Future>(&self, future: F) -> Option<F::Output> {
        let mut stopped = self.stopped.clone();
        tokio::select! {
            out = future => Some(out),
            _ = stopped.wait_for(|s| *s) => None,
        }
    }
}
