//! Read and maintenance queries beyond the engine's [`StateStore`](engine::state::StateStore)
//! trait, for the CLI (`audit`, `dead-letters`, `runs`, `reset`, ...).

use engine::state::{AuditEntry, DeadLetter, Operation, RunCounts};
use jiff::{SignedDuration, Timestamp};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, params, params_from_iter};
use serde::Serialize;
use serde_json::Value;

use crate::{Failure, SqliteStore};

/// Which audit rows to return. Every field narrows the result; the default returns all rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub pipeline: Option<String>,
    pub key: Option<String>,
    pub operation: Option<Operation>,
    /// Inclusive lower bound: an RFC 3339 timestamp, or a date / date-time taken as UTC.
    pub since: Option<String>,
    /// Exclusive upper bound, in the same forms as `since`, so `since`/`until` ranges tile.
    pub until: Option<String>,
    /// At most this many rows, the oldest first.
    pub limit: Option<usize>,
}

/// A dead letter with its row id (to resolve it by) and when it was resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDeadLetter {
    pub id: i64,
    pub letter: DeadLetter,
    pub resolved_at: Option<String>,
}

/// One run, finished or not (`finished_at` is `None` while running or after a crash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub counts: RunCounts,
    pub error: Option<String>,
}

impl SqliteStore {
    /// Audit rows matching `filter`, in the order they were written.
    pub fn audit_query(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, engine::state::StateError> {
        self.with_conn("querying the audit log", |conn| {
            let since = filter.since.as_deref().map(|s| parse_bound("since", s)).transpose()?;
            let until = filter.until.as_deref().map(|s| parse_bound("until", s)).transpose()?;

            let mut sql = String::from(
                "SELECT time, run_id, pipeline, key, operation, http_status, target_id, error
                 FROM audit WHERE 1 = 1",
            );
            let mut args: Vec<SqlValue> = Vec::new();
            let mut push = |clause: &str, value: SqlValue| {
                sql.push_str(clause);
                args.push(value);
            };
            if let Some(pipeline) = &filter.pipeline {
                push(" AND pipeline = ?", pipeline.clone().into());
            }
            if let Some(key) = &filter.key {
                push(" AND key = ?", key.clone().into());
            }
            if let Some(operation) = filter.operation {
                push(" AND operation = ?", operation.as_str().to_owned().into());
            }
            // Stored times have varying fractional digits, so text comparison is only exact to
            // the second. SQL narrows by whole seconds (using the time index); the exact
            // comparison happens below on parsed timestamps.
            if let Some(since) = since {
                push(" AND time >= ?", whole_seconds(since).into());
            }
            if let Some(next) = until.and_then(|t| t.checked_add(SignedDuration::from_secs(1)).ok()) {
                push(" AND time < ?", whole_seconds(next).into());
            }
            sql.push_str(" ORDER BY id");

            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query(params_from_iter(args))?;
            let limit = filter.limit.unwrap_or(usize::MAX);
            let mut out = Vec::new();
            // Rows are stepped lazily, so a limit stops the scan early.
            while out.len() < limit {
                let Some(row) = rows.next()? else { break };
                let entry = audit_entry(row)?;
                if since.is_some() || until.is_some() {
                    let Ok(time) = entry.time.parse::<Timestamp>() else {
                        continue;
                    };
                    if since.is_some_and(|s| time < s) || until.is_some_and(|u| time >= u) {
                        continue;
                    }
                }
                out.push(entry);
            }
            Ok(out)
        })
    }

    /// Dead letters, optionally of one pipeline, oldest first; resolved ones only on request.
    pub fn dead_letters(
        &self,
        pipeline: Option<&str>,
        include_resolved: bool,
    ) -> Result<Vec<StoredDeadLetter>, engine::state::StateError> {
        self.with_conn("listing dead letters", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, pipeline, key, error_class, error, record, run_id, time, resolved_at
                 FROM dead_letters
                 WHERE (?1 IS NULL OR pipeline = ?1) AND (?2 OR resolved_at IS NULL)
                 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![pipeline, include_resolved], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(5)?,
                    DeadLetter {
                        pipeline: row.get(1)?,
                        key: row.get(2)?,
                        error_class: row.get(3)?,
                        error: row.get(4)?,
                        record: Value::Null,
                        run_id: row.get(6)?,
                        time: row.get(7)?,
                    },
                    row.get::<_, Option<String>>(8)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, record, mut letter, resolved_at) = row?;
                letter.record = serde_json::from_str(&record)
                    .map_err(|e| Failure::Other(format!("dead letter {id} record: {e}")))?;
                out.push(StoredDeadLetter { id, letter, resolved_at });
            }
            Ok(out)
        })
    }

    /// Marks a dead letter handled. Returns `false` if it already was (keeping the first
    /// resolution time), and an error if there is no such dead letter.
    pub fn resolve_dead_letter(&self, id: i64, at: &str) -> Result<bool, engine::state::StateError> {
        self.with_conn("resolving a dead letter", |conn| {
            let changed = conn.execute(
                "UPDATE dead_letters SET resolved_at = ?2 WHERE id = ?1 AND resolved_at IS NULL",
                params![id, at],
            )?;
            if changed == 1 {
                return Ok(true);
            }
            let exists: bool =
                conn.query_row("SELECT EXISTS (SELECT 1 FROM dead_letters WHERE id = ?1)", [id], |row| row.get(0))?;
            if exists { Ok(false) } else { Err(Failure::Other(format!("there is no dead letter {id}"))) }
        })
    }

    /// The latest `limit` runs, optionally of one pipeline, newest first.
    ///
    /// Ordered by insertion rather than by `started_at` text, which does not sort exactly
    /// within a second (fractional digits vary); runs are inserted as they start.
    pub fn recent_runs(
        &self,
        pipeline: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunRecord>, engine::state::StateError> {
        self.with_conn("listing runs", |conn| {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut stmt = conn.prepare_cached(
                "SELECT run_id, pipeline, started_at, finished_at, read, filtered, created,
                        updated, unchanged, failed, dead_lettered, error
                 FROM runs
                 WHERE ?1 IS NULL OR pipeline = ?1
                 ORDER BY rowid DESC
                 LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![pipeline, limit], |row| {
                Ok(RunRecord {
                    run_id: row.get(0)?,
                    pipeline: row.get(1)?,
                    started_at: row.get(2)?,
                    finished_at: row.get(3)?,
                    counts: RunCounts {
                        read: count(row, 4)?,
                        filtered: count(row, 5)?,
                        created: count(row, 6)?,
                        updated: count(row, 7)?,
                        unchanged: count(row, 8)?,
                        failed: count(row, 9)?,
                        dead_lettered: count(row, 10)?,
                    },
                    error: row.get(11)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Every pipeline's watermark, by pipeline name.
    pub fn watermarks(&self) -> Result<Vec<(String, Value)>, engine::state::StateError> {
        self.with_conn("listing watermarks", |conn| {
            let mut stmt = conn.prepare_cached("SELECT pipeline, value FROM watermarks ORDER BY pipeline")?;
            let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?;
            let mut out = Vec::new();
            for row in rows {
                let (pipeline, text) = row?;
                let value = serde_json::from_str(&text)
                    .map_err(|e| Failure::Other(format!("watermark of `{pipeline}`: {e}")))?;
                out.push((pipeline, value));
            }
            Ok(out)
        })
    }

    /// Forgets a pipeline's watermark, so its next run reads from the start. Returns whether
    /// there was one.
    pub fn watermark_clear(&self, pipeline: &str) -> Result<bool, engine::state::StateError> {
        self.with_conn("clearing the watermark", |conn| {
            Ok(conn.execute("DELETE FROM watermarks WHERE pipeline = ?1", [pipeline])? > 0)
        })
    }

    /// Forgets what was written for a pipeline, so its next run rewrites every record.
    /// Returns how many entries were removed.
    pub fn ledger_clear(&self, pipeline: &str) -> Result<usize, engine::state::StateError> {
        self.with_conn("clearing the ledger", |conn| {
            Ok(conn.execute("DELETE FROM ledger WHERE pipeline = ?1", [pipeline])?)
        })
    }

    /// How many keys the ledger holds for a pipeline.
    pub fn ledger_count(&self, pipeline: &str) -> Result<u64, engine::state::StateError> {
        self.with_conn("counting the ledger", |conn| {
            Ok(conn.query_row("SELECT count(*) FROM ledger WHERE pipeline = ?1", [pipeline], |row| count(row, 0))?)
        })
    }
}

/// Reads a count; SQLite integers are signed, so a negative one is corruption, not a count.
fn count(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, value))
}

fn audit_entry(row: &Row<'_>) -> Result<AuditEntry, Failure> {
    let operation: String = row.get(4)?;
    Ok(AuditEntry {
        time: row.get(0)?,
        run_id: row.get(1)?,
        pipeline: row.get(2)?,
        key: row.get(3)?,
        operation: parse_operation(&operation)
            .ok_or_else(|| Failure::Other(format!("unknown audit operation `{operation}`")))?,
        http_status: row.get(5)?,
        target_id: row.get(6)?,
        error: row.get(7)?,
    })
}

fn parse_operation(s: &str) -> Option<Operation> {
    [Operation::Create, Operation::Update, Operation::Unchanged, Operation::Failed]
        .into_iter()
        .find(|op| op.as_str() == s)
}

/// Parses a filter bound: an RFC 3339 timestamp, or a civil date-time / date taken as UTC.
fn parse_bound(name: &str, s: &str) -> Result<Timestamp, Failure> {
    let utc = jiff::tz::TimeZone::UTC;
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Ok(ts);
    }
    let zoned = if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        dt.to_zoned(utc)
    } else if let Ok(date) = s.parse::<jiff::civil::Date>() {
        date.to_zoned(utc)
    } else {
        return Err(Failure::Other(format!(
            "`{name}` must be an RFC 3339 timestamp or a date (YYYY-MM-DD), not `{s}`"
        )));
    };
    zoned.map(|z| z.timestamp()).map_err(|e| Failure::Other(format!("`{name}` `{s}`: {e}")))
}

/// The timestamp truncated to whole seconds, in the text form stored times start with.
fn whole_seconds(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}
