//! The request log and counters: what the API received and answered, so tests can assert on the
//! exact requests a connector sent and on how it behaved under throttling.

use std::sync::Mutex;

use sandbox_common::log::TicketLog;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One `/3.0` request as received and answered.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    /// `GET`, `PUT`, …
    pub method: String,
    /// The path without the query (`/3.0/lists/abc/members/<hash>`).
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The JSON body, when there was one and it parsed.
    pub body: Option<Value>,
    /// The status sent; 0 when no response was sent (connection reset or held after commit).
    pub status: u16,
    /// The JSON response body (for a held response: what would have been sent).
    pub response: Option<Value>,
}

/// Totals over all `/3.0` requests since start.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Requests received.
    pub total: u64,
    /// Answered 2xx.
    pub status_2xx: u64,
    /// Answered 4xx (429 included).
    pub status_4xx: u64,
    /// Answered 5xx.
    pub status_5xx: u64,
    /// Answered 429 Too Many Requests (limiter or fault).
    pub status_429: u64,
    /// Never answered (reset, or held after commit).
    pub dropped: u64,
    /// Requests holding a connection slot right now.
    pub in_flight: usize,
    /// The most requests that held a slot at the same time.
    pub peak_concurrency: usize,
}

/// The log and the counters, behind locks held only for a push.
#[derive(Default)]
pub(crate) struct Recorder {
    /// Requests with their tickets, in order of arrival (the ticketed log the sandboxes share).
    entries: TicketLog<LoggedRequest>,
    /// The running totals.
    counters: Mutex<Counters>,
}

impl Recorder {
    /// Records a request as it arrives; returns the ticket to finish it with.
    pub(crate) fn begin(&self, method: &str, path: &str, query: &str, body: Option<Value>) -> u64 {
        let entry = LoggedRequest {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            body,
            status: 0,
            response: None,
        };
        let ticket = self.entries.push(entry);
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).total += 1;
        ticket
    }

    /// Records the answer (status 0: none was sent).
    pub(crate) fn finish(&self, ticket: u64, status: u16, response: Option<Value>) {
        self.entries.update(ticket, |entry| {
            entry.status = status;
            entry.response = response;
        });
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        match status {
            0 => counters.dropped += 1,
            200..=299 => counters.status_2xx += 1,
            400..=499 => counters.status_4xx += 1,
            500..=599 => counters.status_5xx += 1,
            _ => {}
        }
        if status == 429 {
            counters.status_429 += 1;
        }
    }

    /// Notes the number of requests in flight after one started or ended.
    pub(crate) fn in_flight(&self, now: usize) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.in_flight = now;
        counters.peak_concurrency = counters.peak_concurrency.max(now);
    }

    pub(crate) fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.entries()
    }

    pub(crate) fn clear(&self) {
        self.entries.clear();
    }

    pub(crate) fn counters(&self) -> Counters {
        self.counters.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
