//! The request log: what the connector sent and how the sandbox answered, for assertions.
//! Admin requests are not logged. The log keeps the last [`LOG_LIMIT`] entries.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::Serialize;

/// How many requests the log keeps (oldest dropped first), so a long benchmark cannot grow it
/// without bound.
pub const LOG_LIMIT: usize = 10_000;

/// One request to the SOAP or SBA endpoints (including NTLM handshake legs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoggedRequest {
    /// The SOAP operation from `SOAPAction` (e.g. `GetCustomerList`), or `METHOD /path` for
    /// other requests (SBA, WSDL, 401 legs without a SOAP action).
    pub action: String,
    /// The request body as received.
    pub body: String,
    /// The HTTP status answered (0 when the connection was reset instead).
    pub status: u16,
    /// The HTTP method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The parsed criteria or key (`null` when none): restriction members by name, nil members
    /// as `null`, so tests can assert on what the connector asked for.
    pub criteria: serde_json::Value,
    /// `DOMAIN\user` when the request was authenticated.
    pub user: Option<String>,
    /// The SOAP fault code or SBA error, if the answer was an error.
    pub error: Option<String>,
}

/// The shared log.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// Entries, oldest first.
    entries: Mutex<VecDeque<LoggedRequest>>,
}

impl RequestLog {
    /// Appends an entry.
    pub fn push(&self, entry: LoggedRequest) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() == LOG_LIMIT {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    /// A copy of the entries.
    pub fn all(&self) -> Vec<LoggedRequest> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).iter().cloned().collect()
    }

    /// Empties the log.
    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
