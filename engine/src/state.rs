//! The engine's view of durable state. The SQLite implementation lives in the `mlc-state`
//! crate; the engine only knows this trait, so a PostgreSQL store can follow.
//!
//! Calls are synchronous and short (one small row each): the store owns its connection and
//! is fast enough to call from the executor directly.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the ledger remembers about one key of one pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The id the target gave the record, when it reports one.
    pub target_id: Option<String>,
    /// Hash of the last request successfully written under this key.
    pub payload_hash: String,
    /// When it was written (RFC 3339).
    pub written_at: String,
}

/// The operation an audit row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Create,
    Update,
    Unchanged,
    Failed,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Unchanged => "unchanged",
            Operation::Failed => "failed",
        }
    }
}

/// One audit row: one write attempt (or one skip) of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub time: String,
    pub run_id: String,
    pub pipeline: String,
    pub key: String,
    pub operation: Operation,
    pub http_status: Option<u16>,
    pub target_id: Option<String>,
    pub error: Option<String>,
}

/// A record that failed for a reason a retry cannot fix, kept with its source payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub pipeline: String,
    /// The key, when the record got that far.
    pub key: Option<String>,
    /// A short class for grouping (`mapping`, `validation`, `compliance`, ...).
    pub error_class: String,
    pub error: String,
    /// The source record as read.
    pub record: Value,
    pub run_id: String,
    pub time: String,
}

/// Counts of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub read: u64,
    pub filtered: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub dead_lettered: u64,
}

/// A failure of the state store itself. Never carries secret values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store: {0}")]
pub struct StateError(pub String);

/// Durable state of a project.
pub trait StateStore: Send + Sync {
    fn ledger_get(&self, pipeline: &str, key: &str) -> Result<Option<LedgerEntry>, StateError>;
    fn ledger_put(&self, pipeline: &str, key: &str, entry: &LedgerEntry) -> Result<(), StateError>;
    fn watermark_get(&self, pipeline: &str) -> Result<Option<Value>, StateError>;
    fn watermark_set(&self, pipeline: &str, value: &Value) -> Result<(), StateError>;
    fn audit_append(&self, entry: &AuditEntry) -> Result<(), StateError>;
    /// A write the target accepted: its ledger entry and its audit row, atomically where the
    /// store can (so the audit trail accounts for every write even across a crash).
    fn record_write(
        &self,
        pipeline: &str,
        key: &str,
        entry: &LedgerEntry,
        audit: &AuditEntry,
    ) -> Result<(), StateError> {
        self.ledger_put(pipeline, key, entry)?;
        self.audit_append(audit)
    }
    /// Stores a dead letter. A record already held unresolved for the pipeline is refreshed
    /// (latest error, run and time), not stored twice.
    fn dead_letter_put(&self, letter: &DeadLetter) -> Result<(), StateError>;
    /// The unresolved dead letters of a pipeline, oldest first, with their ids.
    fn dead_letters_open(&self, pipeline: &str) -> Result<Vec<(i64, DeadLetter)>, StateError>;
    /// Marks a dead letter resolved (its record has since synced).
    fn dead_letter_resolve(&self, id: i64, at: &str) -> Result<(), StateError>;
    fn run_started(&self, run_id: &str, pipeline: &str, started_at: &str) -> Result<(), StateError>;
    /// Takes the run lease of `pipeline` for `run_id`: `None` when taken, or a description of
    /// the live run (in this or another process) that holds it. A store no other process can
    /// open never conflicts, hence the default.
    fn lease_take(&self, _pipeline: &str, _run_id: &str) -> Result<Option<String>, StateError> {
        Ok(None)
    }
    /// Gives the lease back, if `run_id` holds it.
    fn lease_release(&self, _pipeline: &str, _run_id: &str) -> Result<(), StateError> {
        Ok(())
    }
    fn run_finished(
        &self,
        run_id: &str,
        finished_at: &str,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<(), StateError>;
}
