//! ml-connector's durable state in one SQLite file: the write ledger, watermarks, the audit
//! trail, dead letters, run history, and the webhook subscriptions the service keeps alive.
//!
//! # Why it is built this way
//!
//! - **The ledger is what makes re-runs safe.** It stores, per pipeline and key, the hash of
//!   the last payload the target *accepted*. The engine updates it only after a successful
//!   write, so a crash between the write and the ledger update at worst repeats one idempotent
//!   upsert; it never skips a record that was not written.
//! - **WAL journal, `synchronous=NORMAL`.** Every call is its own small transaction. In WAL
//!   mode a killed process loses at most the statement in flight, and a power loss at most
//!   the last few commits, never the database's consistency. Readers (e.g. `ml-connector
//!   audit` during a sync) do not block the writer, and `busy_timeout` lets a second process
//!   wait briefly instead of failing.
//! - **Versioned migrations** (see [`SCHEMA_VERSION`]): the schema can grow without losing
//!   state, and an older binary refuses a database written by a newer one with a clear
//!   message rather than misreading it.
//! - **Errors, not panics.** Every SQLite failure becomes a [`StateError`] naming the
//!   operation that failed; a full disk or a corrupt file must stop a run cleanly.
//!
//! Timestamps are stored as the RFC 3339 UTC strings the engine produces.

mod lease;
mod query;
mod schema;
mod subscriptions;

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use engine::state::{AuditEntry, DeadLetter, LedgerEntry, RunCounts, StateError, StateStore};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

pub use query::{AuditFilter, RunRecord, StoredDeadLetter};
pub use schema::SCHEMA_VERSION;
pub use subscriptions::SubscriptionRecord;

/// A [`StateStore`] backed by one SQLite database.
///
/// One connection behind a mutex: calls are short single-row statements, so serialising them
/// costs nothing measurable and keeps SQLite's threading rules out of the picture.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore, StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StateError(format!("creating the state directory {}: {e}", parent.display())))?;
        }
        let what = format!("opening the state database {}", path.display());
        let conn = Connection::open(path).map_err(|e| StateError(format!("{what}: {e}")))?;
        Self::init(conn).map_err(|e| StateError(format!("{what}: {e}")))
    }

    /// A private database that vanishes when dropped; for tests and dry runs.
    pub fn open_in_memory() -> Result<SqliteStore, StateError> {
        let what = "opening an in-memory state database";
        let conn = Connection::open_in_memory().map_err(|e| StateError(format!("{what}: {e}")))?;
        Self::init(conn).map_err(|e| StateError(format!("{what}: {e}")))
    }

    fn init(mut conn: Connection) -> Result<SqliteStore, Failure> {
        // The busy timeout comes first: switching to WAL needs a lock another process may hold.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Reports the resulting mode (`memory` for in-memory databases); any mode is usable.
        let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn, schema::MIGRATIONS)?;
        Ok(SqliteStore { conn: Mutex::new(conn) })
    }

    /// Runs `f` on the connection, prefixing any failure with `what`.
    pub(crate) fn with_conn<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T, StateError> {
        let mut conn = self.lock();
        f(&mut conn).map_err(|e| StateError(format!("{what}: {e}")))
    }

    /// A panic while the lock was held cannot leave the database half-written (each call is
    /// one statement or one transaction, rolled back on drop), so the poison flag is ignored.
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An internal failure, turned into a [`StateError`] with context by [`SqliteStore::with_conn`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error("{0}")]
    Sql(#[from] rusqlite::Error),
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Other(String),
}

/// Inserts or replaces a ledger entry. A write whose response carried no id keeps the id
/// already known, so the ledger never forgets where a record lives.
fn put_ledger(conn: &Connection, pipeline: &str, key: &str, entry: &LedgerEntry) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO ledger (pipeline, key, target_id, payload_hash, written_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (pipeline, key) DO UPDATE SET
             target_id = coalesce(excluded.target_id, ledger.target_id),
             payload_hash = excluded.payload_hash,
             written_at = excluded.written_at",
    )?
    .execute(params![pipeline, key, entry.target_id, entry.payload_hash, entry.written_at])?;
    Ok(())
}

fn append_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT INTO audit
             (time, run_id, pipeline, key, operation, http_status, target_id, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        entry.time,
        entry.run_id,
        entry.pipeline,
        entry.key,
        entry.operation.as_str(),
        entry.http_status,
        entry.target_id,
        entry.error
    ])?;
    Ok(())
}

impl StateStore for SqliteStore {
    fn lease_take(&self, pipeline: &str, run_id: &str) -> Result<Option<String>, StateError> {
        self.take_lease(pipeline, run_id)
    }

    fn lease_release(&self, pipeline: &str, run_id: &str) -> Result<(), StateError> {
        self.release_lease(pipeline, run_id)
    }

    fn ledger_get(&self, pipeline: &str, key: &str) -> Result<Option<LedgerEntry>, StateError> {
        self.with_conn("reading the ledger", |conn| {
            let entry = conn
                .prepare_cached(
                    "SELECT target_id, payload_hash, written_at FROM ledger
                     WHERE pipeline = ?1 AND key = ?2",
                )?
                .query_row(params![pipeline, key], |row| {
                    Ok(LedgerEntry { target_id: row.get(0)?, payload_hash: row.get(1)?, written_at: row.get(2)? })
                })
                .optional()?;
            Ok(entry)
        })
    }

    fn ledger_put(&self, pipeline: &str, key: &str, entry: &LedgerEntry) -> Result<(), StateError> {
        self.with_conn("writing the ledger", |conn| put_ledger(conn, pipeline, key, entry))
    }

    /// One transaction: a crash cannot leave a ledger row without its audit row.
    fn record_write(
        &self,
        pipeline: &str,
        key: &str,
        entry: &LedgerEntry,
        audit: &AuditEntry,
    ) -> Result<(), StateError> {
        self.with_conn("recording a write", |conn| {
            let tx = conn.transaction()?;
            put_ledger(&tx, pipeline, key, entry)?;
            append_audit(&tx, audit)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn watermark_get(&self, pipeline: &str) -> Result<Option<Value>, StateError> {
        self.with_conn("reading the watermark", |conn| {
            let text: Option<String> = conn
                .prepare_cached("SELECT value FROM watermarks WHERE pipeline = ?1")?
                .query_row([pipeline], |row| row.get(0))
                .optional()?;
            Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
        })
    }

    fn watermark_set(&self, pipeline: &str, value: &Value) -> Result<(), StateError> {
        self.with_conn("writing the watermark", |conn| {
            let text = serde_json::to_string(value)?;
            conn.prepare_cached(
                "INSERT INTO watermarks (pipeline, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (pipeline) DO UPDATE SET
                     value = excluded.value,
                     updated_at = excluded.updated_at",
            )?
            .execute(params![pipeline, text, now()])?;
            Ok(())
        })
    }

    fn audit_append(&self, entry: &AuditEntry) -> Result<(), StateError> {
        self.with_conn("appending to the audit log", |conn| append_audit(conn, entry))
    }

    fn dead_letter_put(&self, letter: &DeadLetter) -> Result<(), StateError> {
        self.with_conn("storing a dead letter", |conn| {
            // serde_json writes object keys sorted, so equal records have equal text.
            let record = serde_json::to_string(&letter.record)?;
            // A record re-read within the lookback fails again: refresh the letter that is
            // already held instead of piling up copies.
            let refreshed = conn
                .prepare_cached(
                    "UPDATE dead_letters SET key = ?3, error_class = ?4, error = ?5, run_id = ?6, time = ?7
                     WHERE pipeline = ?1 AND record = ?2 AND resolved_at IS NULL",
                )?
                .execute(params![
                    letter.pipeline,
                    record,
                    letter.key,
                    letter.error_class,
                    letter.error,
                    letter.run_id,
                    letter.time
                ])?;
            if refreshed == 0 {
                conn.prepare_cached(
                    "INSERT INTO dead_letters
                         (pipeline, key, error_class, error, record, run_id, time)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    letter.pipeline,
                    letter.key,
                    letter.error_class,
                    letter.error,
                    record,
                    letter.run_id,
                    letter.time
                ])?;
            }
            Ok(())
        })
    }

    fn dead_letters_open(&self, pipeline: &str) -> Result<Vec<(i64, DeadLetter)>, StateError> {
        Ok(self.dead_letters(Some(pipeline), false)?.into_iter().map(|d| (d.id, d.letter)).collect())
    }

    fn dead_letter_resolve(&self, id: i64, at: &str) -> Result<(), StateError> {
        self.resolve_dead_letter(id, at).map(|_| ())
    }

    fn run_started(&self, run_id: &str, pipeline: &str, started_at: &str) -> Result<(), StateError> {
        self.with_conn("recording the run start", |conn| {
            conn.prepare_cached("INSERT INTO runs (run_id, pipeline, started_at) VALUES (?1, ?2, ?3)")?
                .execute(params![run_id, pipeline, started_at])?;
            Ok(())
        })
    }

    fn run_finished(
        &self,
        run_id: &str,
        finished_at: &str,
        counts: &RunCounts,
        error: Option<&str>,
    ) -> Result<(), StateError> {
        self.with_conn("recording the run end", |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE runs SET
                         finished_at = ?2, read = ?3, filtered = ?4, created = ?5,
                         updated = ?6, unchanged = ?7, failed = ?8, dead_lettered = ?9,
                         error = ?10
                     WHERE run_id = ?1",
                )?
                .execute(params![
                    run_id,
                    finished_at,
                    to_sql_count(counts.read),
                    to_sql_count(counts.filtered),
                    to_sql_count(counts.created),
                    to_sql_count(counts.updated),
                    to_sql_count(counts.unchanged),
                    to_sql_count(counts.failed),
                    to_sql_count(counts.dead_lettered),
                    error
                ])?;
            if changed == 0 {
                return Err(Failure::Other(format!("no run `{run_id}` was started")));
            }
            Ok(())
        })
    }
}

/// SQLite integers are signed; a count beyond `i64::MAX` cannot occur, so saturate.
fn to_sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The current time as the engine writes it (RFC 3339, UTC).
fn now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_pragmas_are_set() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
        let conn = store.lock();
        let pragma = |name: &str| -> String {
            conn.pragma_query_value(None, name, |row| row.get::<_, rusqlite::types::Value>(0))
                .map(|v| format!("{v:?}"))
                .unwrap()
        };
        assert_eq!(pragma("journal_mode"), r#"Text("wal")"#);
        // NORMAL is 1.
        assert_eq!(pragma("synchronous"), "Integer(1)");
        assert_eq!(pragma("foreign_keys"), "Integer(1)");
        assert_eq!(pragma("busy_timeout"), "Integer(5000)");
    }
}
