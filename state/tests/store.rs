//! Behaviour of the SQLite state store through its public API.

use std::sync::Arc;

use engine::state::{AuditEntry, DeadLetter, LedgerEntry, Operation, RunCounts, StateStore};
use serde_json::json;
use state::{AuditFilter, SCHEMA_VERSION, SqliteStore};

fn store() -> SqliteStore {
    SqliteStore::open_in_memory().expect("in-memory store opens")
}

fn entry(hash: &str, target_id: Option<&str>, at: &str) -> LedgerEntry {
    LedgerEntry { target_id: target_id.map(str::to_owned), payload_hash: hash.to_owned(), written_at: at.to_owned() }
}

fn audit(time: &str, pipeline: &str, key: &str, operation: Operation) -> AuditEntry {
    AuditEntry {
        time: time.to_owned(),
        run_id: "run-1".to_owned(),
        pipeline: pipeline.to_owned(),
        key: key.to_owned(),
        operation,
        http_status: None,
        target_id: None,
        error: None,
    }
}

fn letter(pipeline: &str, key: Option<&str>, record: serde_json::Value) -> DeadLetter {
    DeadLetter {
        pipeline: pipeline.to_owned(),
        key: key.map(str::to_owned),
        error_class: "mapping".to_owned(),
        error: "field `email` is missing".to_owned(),
        record,
        run_id: "run-1".to_owned(),
        time: "2025-03-01T10:00:00Z".to_owned(),
    }
}

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).unwrap()
}

#[test]
fn ledger_upsert_round_trip() {
    let s = store();
    assert_eq!(s.ledger_get("contacts", "a@example.com").unwrap(), None);

    let first = entry("h1", Some("id-1"), "2025-03-01T10:00:00Z");
    s.ledger_put("contacts", "a@example.com", &first).unwrap();
    assert_eq!(s.ledger_get("contacts", "a@example.com").unwrap(), Some(first));

    let second = entry("h2", Some("id-2"), "2025-03-02T10:00:00Z");
    s.ledger_put("contacts", "a@example.com", &second).unwrap();
    assert_eq!(s.ledger_get("contacts", "a@example.com").unwrap(), Some(second));
    assert_eq!(s.ledger_count("contacts").unwrap(), 1);

    // The same key in another pipeline is a different entry.
    assert_eq!(s.ledger_get("orders", "a@example.com").unwrap(), None);
}

#[test]
fn ledger_put_without_target_id_keeps_the_known_one() {
    let s = store();
    s.ledger_put("p", "k", &entry("h1", Some("id-1"), "t1")).unwrap();
    s.ledger_put("p", "k", &entry("h2", None, "t2")).unwrap();
    assert_eq!(s.ledger_get("p", "k").unwrap(), Some(entry("h2", Some("id-1"), "t2")));

    // A key first written without an id stays without one.
    s.ledger_put("p", "other", &entry("h3", None, "t3")).unwrap();
    assert_eq!(s.ledger_get("p", "other").unwrap().unwrap().target_id, None);
}

#[test]
fn ledger_count_and_clear_are_per_pipeline() {
    let s = store();
    for key in ["a", "b", "c"] {
        s.ledger_put("contacts", key, &entry("h", None, "t")).unwrap();
    }
    s.ledger_put("orders", "a", &entry("h", None, "t")).unwrap();
    assert_eq!(s.ledger_count("contacts").unwrap(), 3);
    assert_eq!(s.ledger_count("orders").unwrap(), 1);
    assert_eq!(s.ledger_count("nothing").unwrap(), 0);

    assert_eq!(s.ledger_clear("contacts").unwrap(), 3);
    assert_eq!(s.ledger_count("contacts").unwrap(), 0);
    assert_eq!(s.ledger_get("contacts", "a").unwrap(), None);
    assert_eq!(s.ledger_count("orders").unwrap(), 1);
    assert_eq!(s.ledger_clear("contacts").unwrap(), 0);
}

#[test]
fn watermark_set_get_list_and_clear() {
    let s = store();
    assert_eq!(s.watermark_get("contacts").unwrap(), None);
    assert!(s.watermarks().unwrap().is_empty());

    let mark = json!({"updated_at": "2025-03-01T10:00:00Z", "id": 42, "nested": [1, null, 2.5]});
    s.watermark_set("contacts", &mark).unwrap();
    assert_eq!(s.watermark_get("contacts").unwrap(), Some(mark));

    let newer = json!("2025-03-02T00:00:00Z");
    s.watermark_set("contacts", &newer).unwrap();
    assert_eq!(s.watermark_get("contacts").unwrap(), Some(newer.clone()));

    s.watermark_set("accounts", &json!(7)).unwrap();
    assert_eq!(s.watermarks().unwrap(), vec![("accounts".to_owned(), json!(7)), ("contacts".to_owned(), newer)]);

    assert!(s.watermark_clear("contacts").unwrap());
    assert!(!s.watermark_clear("contacts").unwrap());
    assert_eq!(s.watermark_get("contacts").unwrap(), None);
    assert_eq!(s.watermark_get("accounts").unwrap(), Some(json!(7)));
}

#[test]
fn audit_append_and_filtered_query() {
    let s = store();
    let mut created = audit("2025-03-01T10:00:00Z", "contacts", "a", Operation::Create);
    created.http_status = Some(200);
    created.target_id = Some("id-a".to_owned());
    let mut failed = audit("2025-03-01T10:00:01Z", "contacts", "b", Operation::Failed);
    failed.http_status = Some(400);
    failed.error = Some("invalid email".to_owned());
    let rows = vec![
        created,
        failed,
        audit("2025-03-01T10:00:02Z", "orders", "a", Operation::Create),
        audit("2025-03-02T09:00:00Z", "contacts", "a", Operation::Unchanged),
        audit("2025-03-03T09:00:00Z", "contacts", "a", Operation::Update),
    ];
    for row in &rows {
        s.audit_append(row).unwrap();
    }

    // No filter: everything, in write order, every field intact.
    assert_eq!(s.audit_query(&AuditFilter::default()).unwrap(), rows);

    let by_pipeline = s.audit_query(&AuditFilter { pipeline: Some("orders".into()), ..Default::default() }).unwrap();
    assert_eq!(by_pipeline, vec![rows[2].clone()]);

    let by_operation =
        s.audit_query(&AuditFilter { operation: Some(Operation::Create), ..Default::default() }).unwrap();
    assert_eq!(by_operation, vec![rows[0].clone(), rows[2].clone()]);

    let by_key = s
        .audit_query(&AuditFilter { pipeline: Some("contacts".into()), key: Some("a".into()), ..Default::default() })
        .unwrap();
    assert_eq!(by_key, vec![rows[0].clone(), rows[3].clone(), rows[4].clone()]);

    let limited = s
        .audit_query(&AuditFilter { pipeline: Some("contacts".into()), limit: Some(2), ..Default::default() })
        .unwrap();
    assert_eq!(limited, vec![rows[0].clone(), rows[1].clone()]);

    let none = s.audit_query(&AuditFilter { limit: Some(0), ..Default::default() }).unwrap();
    assert!(none.is_empty());
}

#[test]
fn audit_query_by_time_range() {
    let s = store();
    // Fractional digits vary, as in the engine's timestamps; text order would put `.5Z`
    // before `Z` within the same second.
    let times = [
        "2025-03-01T10:00:00Z",
        "2025-03-01T10:00:00.5Z",
        "2025-03-01T10:00:01Z",
        "2025-03-02T00:00:00Z",
        "2025-03-03T12:00:00.123456789Z",
    ];
    for time in times {
        s.audit_append(&audit(time, "p", "k", Operation::Create)).unwrap();
    }
    let query = |since: Option<&str>, until: Option<&str>| -> Vec<String> {
        s.audit_query(&AuditFilter {
            since: since.map(str::to_owned),
            until: until.map(str::to_owned),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.time)
        .collect()
    };

    assert_eq!(query(Some("2025-03-01T10:00:00.5Z"), None), &times[1..]);
    assert_eq!(query(None, Some("2025-03-01T10:00:00.5Z")), &times[..1]);
    assert_eq!(query(Some("2025-03-01T10:00:00.1Z"), Some("2025-03-02")), &times[1..3]);
    // A date means midnight UTC; an offset is honoured.
    assert_eq!(query(Some("2025-03-02"), None), &times[3..]);
    assert_eq!(query(Some("2025-03-03T13:00:00+01:00"), None), &times[4..]);
    assert_eq!(query(Some("2025-03-01T10:00:01"), Some("2025-03-02T00:00:00")), &times[2..3]);

    let err =
        s.audit_query(&AuditFilter { since: Some("yesterday".into()), ..Default::default() }).unwrap_err().to_string();
    assert!(err.contains("querying the audit log"), "{err}");
    assert!(err.contains("`since`"), "{err}");
}

#[test]
fn dead_letters_put_list_and_resolve() {
    let s = store();
    let first = letter("contacts", Some("a@example.com"), json!({"Email": "a@example.com", "tags": ["x"]}));
    let second = letter("contacts", None, json!({"Email": null}));
    let third = letter("orders", Some("o-1"), json!([1, 2]));
    for l in [&first, &second, &third] {
        s.dead_letter_put(l).unwrap();
    }

    let all = s.dead_letters(None, false).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().map(|d| &d.letter).collect::<Vec<_>>(), [&first, &second, &third]);
    assert!(all.iter().all(|d| d.resolved_at.is_none()));

    let contacts = s.dead_letters(Some("contacts"), false).unwrap();
    assert_eq!(contacts.len(), 2);
    let resolved_id = contacts[0].id;
    assert!(s.resolve_dead_letter(resolved_id, "2025-03-05T00:00:00Z").unwrap());
    // Resolving again changes nothing and keeps the first time.
    assert!(!s.resolve_dead_letter(resolved_id, "2025-03-06T00:00:00Z").unwrap());

    let open = s.dead_letters(Some("contacts"), false).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].letter, second);

    let with_resolved = s.dead_letters(Some("contacts"), true).unwrap();
    assert_eq!(with_resolved.len(), 2);
    assert_eq!(with_resolved[0].id, resolved_id);
    assert_eq!(with_resolved[0].resolved_at.as_deref(), Some("2025-03-05T00:00:00Z"));
    assert_eq!(s.dead_letters(None, true).unwrap().len(), 3);
    assert_eq!(s.dead_letters(None, false).unwrap().len(), 2);

    let err = s.resolve_dead_letter(9999, "2025-03-05T00:00:00Z").unwrap_err().to_string();
    assert!(err.contains("no dead letter 9999"), "{err}");
}

#[test]
fn runs_started_finished_and_listed_newest_first() {
    let s = store();
    s.run_started("r1", "contacts", "2025-03-01T10:00:00Z").unwrap();
    s.run_started("r2", "orders", "2025-03-01T10:00:00.5Z").unwrap();
    s.run_started("r3", "contacts", "2025-03-01T10:00:01Z").unwrap();

    let counts = RunCounts { read: 10, filtered: 1, created: 3, updated: 2, unchanged: 2, failed: 1, dead_lettered: 1 };
    s.run_finished("r1", "2025-03-01T10:05:00Z", &counts, None).unwrap();
    s.run_finished("r2", "2025-03-01T10:06:00Z", &RunCounts::default(), Some("source unreachable")).unwrap();

    let runs = s.recent_runs(None, 10).unwrap();
    assert_eq!(runs.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["r3", "r2", "r1"]);
    // Still running: no end, zero counts.
    assert_eq!(runs[0].finished_at, None);
    assert_eq!(runs[0].counts, RunCounts::default());
    assert_eq!(runs[1].error.as_deref(), Some("source unreachable"));
    assert_eq!(runs[2].pipeline, "contacts");
    assert_eq!(runs[2].started_at, "2025-03-01T10:00:00Z");
    assert_eq!(runs[2].finished_at.as_deref(), Some("2025-03-01T10:05:00Z"));
    assert_eq!(runs[2].counts, counts);
    assert_eq!(runs[2].error, None);

    let contacts = s.recent_runs(Some("contacts"), 10).unwrap();
    assert_eq!(contacts.iter().map(|r| r.run_id.as_str()).collect::<Vec<_>>(), ["r3", "r1"]);
    assert_eq!(s.recent_runs(None, 1).unwrap()[0].run_id, "r3");
    assert!(s.recent_runs(None, 0).unwrap().is_empty());
}

#[test]
fn run_errors_name_the_operation() {
    let s = store();
    let err = s.run_finished("ghost", "t", &RunCounts::default(), None).unwrap_err().to_string();
    assert!(err.contains("recording the run end"), "{err}");
    assert!(err.contains("ghost"), "{err}");

    s.run_started("r1", "p", "t").unwrap();
    let err = s.run_started("r1", "p", "t").unwrap_err().to_string();
    assert!(err.starts_with("state store: recording the run start:"), "{err}");
}

#[test]
fn data_survives_reopen_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directories do not exist yet.
    let path = dir.path().join("nested/deeper/state.db");

    {
        let s = SqliteStore::open(&path).unwrap();
        s.ledger_put("p", "k", &entry("h", Some("id"), "t")).unwrap();
        s.watermark_set("p", &json!({"cursor": "abc"})).unwrap();
        s.audit_append(&audit("2025-03-01T10:00:00Z", "p", "k", Operation::Create)).unwrap();
        s.dead_letter_put(&letter("p", None, json!({"x": 1}))).unwrap();
        s.run_started("r1", "p", "2025-03-01T10:00:00Z").unwrap();
    }
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));

    for _ in 0..2 {
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.ledger_get("p", "k").unwrap(), Some(entry("h", Some("id"), "t")));
        assert_eq!(s.watermark_get("p").unwrap(), Some(json!({"cursor": "abc"})));
        assert_eq!(s.audit_query(&AuditFilter::default()).unwrap().len(), 1);
        assert_eq!(s.dead_letters(None, false).unwrap().len(), 1);
        assert_eq!(s.recent_runs(None, 10).unwrap().len(), 1);
    }
    assert_eq!(user_version(&path), i64::from(SCHEMA_VERSION));
}

#[test]
fn file_database_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let _store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "state database schema version 99 is newer than this ml-connector supports \
             ({SCHEMA_VERSION}); upgrade ml-connector"
        )),
        "{err}"
    );
    assert!(err.contains(&path.display().to_string()), "{err}");
    // Refusing did not touch the version.
    assert_eq!(user_version(&path), 99);
}

#[test]
fn a_file_that_is_not_a_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"this is definitely not an SQLite database, just some text").unwrap();
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("opening the state database"), "{err}");
}

#[test]
fn a_parent_that_is_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let err = SqliteStore::open(&blocker.join("state.db")).unwrap_err().to_string();
    assert!(err.contains("creating the state directory"), "{err}");
}

#[test]
fn usable_as_a_shared_trait_object_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn StateStore> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25 {
                    store.ledger_put("p", &format!("{t}-{i}"), &entry("h", None, "t")).unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    drop(store);
    let reopened = SqliteStore::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(reopened.ledger_count("p").unwrap(), 100);
}
