//! The request log: every API request as received and answered (not the admin API, not the
//! token endpoint), so tests can assert on exactly what a connector sent and got back.

use sandbox_common::log::TicketLog;
use serde::Serialize;
use serde_json::Value;

/// One API request as received and answered.
#[derive(Clone, Debug, Serialize)]
pub struct LoggedRequest {
    /// `GET`, `PATCH`, …
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The JSON body, when there was one and it parsed.
    pub body: Option<Value>,
    /// The status sent; 0 when no response was sent (reset, or held after commit).
    pub status: u16,
    /// The JSON response body (for a held response: what would have been sent).
    pub response: Option<Value>,
}

/// The log, behind a lock held only for a push (the ticketed log the sandboxes share).
#[derive(Default)]
pub(crate) struct Recorder {
    /// Entries with their tickets.
    entries: TicketLog<LoggedRequest>,
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
        self.entries.push(entry)
    }

    /// Records the answer (status 0: none was sent).
    pub(crate) fn finish(&self, ticket: u64, status: u16, response: Option<Value>) {
        self.entries.update(ticket, |entry| {
            entry.status = status;
            entry.response = response;
        });
    }

    pub(crate) fn entries(&self) -> Vec<LoggedRequest> {
        self.entries.entries()
    }

    pub(crate) fn clear(&self) {
        self.entries.clear();
    }
}
