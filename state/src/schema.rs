//! Versioned schema migrations, recorded in `PRAGMA user_version`.
//!
//! Migrations are append-only: a released migration is never edited, only followed by a new
//! one, so every database walks the same path to the current schema. Each run of pending
//! migrations happens in one transaction, so a crash mid-upgrade leaves the old schema intact.

use rusqlite::{Connection, TransactionBehavior};

use crate::Failure;

/// Migration `i` (0-based) brings the schema from version `i` to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3];

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The initial schema.
///
/// Tables are `STRICT` so a wrongly typed value is refused at write time rather than
/// surfacing as a confusing read error months later.
const V1: &str = "
CREATE TABLE ledger (
    pipeline     TEXT NOT NULL,
    key          TEXT NOT NULL,
    target_id    TEXT,
    payload_hash TEXT NOT NULL,
    written_at   TEXT NOT NULL,
    PRIMARY KEY (pipeline, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE watermarks (
    pipeline   TEXT NOT NULL PRIMARY KEY,
    value      TEXT NOT NULL, -- JSON
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    pipeline    TEXT NOT NULL,
    key         TEXT NOT NULL,
    operation   TEXT NOT NULL,
    http_status INTEGER,
    target_id   TEXT,
    error       TEXT
) STRICT;
CREATE INDEX audit_pipeline_key ON audit (pipeline, key);
CREATE INDEX audit_time ON audit (time);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline    TEXT NOT NULL,
    key         TEXT,
    error_class TEXT NOT NULL,
    error       TEXT NOT NULL,
    record      TEXT NOT NULL, -- JSON
    run_id      TEXT NOT NULL,
    time        TEXT NOT NULL,
    resolved_at TEXT
) STRICT;
CREATE INDEX dead_letters_pipeline ON dead_letters (pipeline);

CREATE TABLE runs (
    run_id        TEXT NOT NULL PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    read          INTEGER NOT NULL DEFAULT 0,
    filtered      INTEGER NOT NULL DEFAULT 0,
    created       INTEGER NOT NULL DEFAULT 0,
    updated       INTEGER NOT NULL DEFAULT 0,
    unchanged     INTEGER NOT NULL DEFAULT 0,
    failed        INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    error         TEXT
) STRICT;
CREATE INDEX runs_pipeline ON runs (pipeline);
";

/// Webhook subscriptions the service keeps alive (issue #8): one row per system, connection and
/// entity, so `status` and the metrics can show when each expires without asking the remote
/// system. The notification URL is not stored: it carries the secret URL token.
const V2: &str = "
CREATE TABLE subscriptions (
    system          TEXT NOT NULL, -- `business-central` or `mailchimp`
    connection      TEXT NOT NULL,
    entity          TEXT NOT NULL, -- the pipelines' source entity, or the Mailchimp list id
    resource        TEXT NOT NULL, -- what the remote system calls it
    subscription_id TEXT NOT NULL,
    expires_at      TEXT,          -- RFC 3339; NULL when it does not expire (Mailchimp)
    checked_at      TEXT NOT NULL,
    PRIMARY KEY (system, connection, entity)
) STRICT, WITHOUT ROWID;
";

/// Run leases: which live run of which process holds each pipeline (see `lease.rs`).
const V3: &str = "
CREATE TABLE run_leases (
    pipeline    TEXT NOT NULL PRIMARY KEY,
    run_id      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    process     TEXT NOT NULL, -- tells a live process from an earlier one with the same pid
    acquired_at TEXT NOT NULL
) STRICT;
";

/// Brings the database up to `migrations.len()`, or refuses a database from a newer build.
///
/// The version is checked first without a write lock, so opening an up-to-date database (the
/// common case, e.g. a CLI query while a sync runs) never waits on writers. Pending migrations
/// then run under an immediate transaction that re-reads the version, so two processes
/// upgrading at once apply each migration exactly once.
pub(crate) fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<(), Failure> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    if check_version(conn, known)? == known {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = check_version(&tx, known)?;
    for (version, sql) in (1_i64..).zip(migrations).filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(|e| Failure::Other(format!("applying schema migration {version}: {e}")))?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(())
}

/// Reads the stored version and rejects one this build cannot handle.
fn check_version(conn: &Connection, known: i64) -> Result<i64, Failure> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if current > known {
        return Err(Failure::Other(format!(
            "state database schema version {current} is newer than this ml-connector supports \
             ({known}); upgrade ml-connector"
        )));
    }
    if current < 0 {
        return Err(Failure::Other(format!(
            "state database schema version {current} is invalid; this is not an ml-connector \
             state database"
        )));
    }
    Ok(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
    }

    fn table_exists(conn: &Connection, name: &str) -> bool {
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |row| {
            row.get::<_, i64>(0)
        })
        .unwrap()
            == 1
    }

    #[test]
    fn applies_migrations_in_order_and_only_once() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;"];
        migrate(&mut conn, &steps[..1]).unwrap();
        assert_eq!(version(&conn), 1);
        // Re-running would fail on `CREATE TABLE a` if migration 1 were applied again.
        migrate(&mut conn, &steps).unwrap();
        assert_eq!(version(&conn), 2);
        migrate(&mut conn, &steps).unwrap();
        assert_eq!(version(&conn), 2);
        conn.execute("INSERT INTO a (x, y) VALUES (1, 'one')", []).unwrap();
    }

    #[test]
    fn a_failing_migration_rolls_back_the_whole_upgrade() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x INTEGER);", "THIS IS NOT SQL;"];
        let err = migrate(&mut conn, &steps).unwrap_err().to_string();
        assert!(err.contains("applying schema migration 2"), "{err}");
        assert_eq!(version(&conn), 0);
        assert!(!table_exists(&conn, "a"));
    }

    #[test]
    fn refuses_a_newer_or_negative_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        let err = migrate(&mut conn, MIGRATIONS).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "state database schema version 7 is newer than this ml-connector supports \
                 ({SCHEMA_VERSION}); upgrade ml-connector"
            )
        );
        assert!(!table_exists(&conn, "ledger"));

        conn.pragma_update(None, "user_version", -1).unwrap();
        let err = migrate(&mut conn, MIGRATIONS).unwrap_err().to_string();
        assert!(err.contains("is invalid"), "{err}");
    }

    #[test]
    fn the_real_schema_creates_every_table() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(version(&conn), i64::from(SCHEMA_VERSION));
        for table in ["ledger", "watermarks", "audit", "dead_letters", "runs", "subscriptions"] {
            assert!(table_exists(&conn, table), "missing table {table}");
        }
    }
}
