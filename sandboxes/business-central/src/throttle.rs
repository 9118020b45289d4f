//! Per-user throttling [MS-LIM]: at most `concurrency` requests processed at once per user
//! (service principal), up to `queue` more waiting in line (at most 8 minutes, then 503), and
//! 429 past that or past 6,000 requests in a sliding 5-minute window.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::ApiError;

/// Requests per user in the sliding window.
const RATE_LIMIT: usize = 6000;
/// The sliding window.
const WINDOW_MS: i64 = 5 * 60 * 1000;
/// How long a queued request waits before BC gives up with 503.
const QUEUE_WAIT: Duration = Duration::from_secs(8 * 60);

/// One user's slots.
struct Gate {
    /// `concurrency` permits.
    processing: Arc<Semaphore>,
    /// Processing plus queued.
    in_flight: AtomicUsize,
    /// Processing now.
    active: AtomicUsize,
    /// Arrival times in the rate window.
    window: Mutex<VecDeque<Timestamp>>,
}

/// All users' gates and the highest concurrency seen.
pub(crate) struct Throttle {
    /// Requests processed at once per user.
    concurrency: usize,
    /// Requests waiting per user.
    queue: usize,
    /// Gates by user (client id).
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    /// The highest per-user concurrency seen.
    peak: AtomicUsize,
}

/// A processing slot; dropping it frees the slot.
pub(crate) struct Permit {
    /// The semaphore permit held while processing.
    _slot: OwnedSemaphorePermit,
    /// The gate to decrement on drop.
    gate: Arc<Gate>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.active.fetch_sub(1, Ordering::SeqCst);
        self.gate.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request in line until it gets a slot (or gives up, or its client goes away).
struct Queued(Arc<Gate>, bool);

impl Drop for Queued {
    fn drop(&mut self) {
        if self.1 {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Throttle {
    pub(crate) fn new(concurrency: usize, queue: usize) -> Throttle {
        Throttle {
            concurrency: concurrency.max(1),
            queue,
            gates: Mutex::new(HashMap::new()),
            peak: AtomicUsize::new(0),
        }
    }

    fn gate(&self, user: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates
            .entry(user.to_string())
            .or_insert_with(|| {
                Arc::new(Gate {
                    processing: Arc::new(Semaphore::new(self.concurrency)),
                    in_flight: AtomicUsize::new(0),
                    active: AtomicUsize::new(0),
                    window: Mutex::new(VecDeque::new()),
                })
            })
            .clone()
    }

    /// Waits for a processing slot, or refuses.
    pub(crate) async fn acquire(&self, user: &str, now: Timestamp) -> Result<Permit, ApiError> {
        let gate = self.gate(user);
        {
            let mut window = gate.window.lock().unwrap_or_else(|e| e.into_inner());
            while window.front().is_some_and(|t| now.as_millisecond() - t.as_millisecond() >= WINDOW_MS) {
                window.pop_front();
            }
            window.push_back(now);
            if window.len() > RATE_LIMIT {
                return Err(ApiError::too_many_requests(window.len(), RATE_LIMIT));
            }
        }
        let limit = self.concurrency + self.queue;
        let total = gate.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let mut queued = Queued(gate.clone(), true);
        if total > limit {
            return Err(ApiError::too_many_requests(total, limit));
        }
        let slot = match tokio::time::timeout(QUEUE_WAIT, gate.processing.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(ApiError::unavailable()),
        };
        queued.1 = false;
        let active = gate.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(active, Ordering::SeqCst);
        Ok(Permit { _slot: slot, gate })
    }

    /// The most requests one user had processed at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queues_then_refuses() {
        let throttle = Throttle::new(2, 1);
        let now = Timestamp::now();
        let a = throttle.acquire("u", now).await.unwrap();
        let _b = throttle.acquire("u", now).await.unwrap();
        let queued = throttle.acquire("u", now);
        tokio::pin!(queued);
        assert!(tokio::time::timeout(Duration::from_millis(20), &mut queued).await.is_err());
        let refused = throttle.acquire("u", now).await.err().unwrap();
        assert_eq!(refused.status, 429);
        drop(a);
        let _c = queued.await.unwrap();
        assert_eq!(throttle.peak(), 2);
        assert!(throttle.acquire("other", now).await.is_ok());
    }
}
