//! Crash safety: the binary is killed with SIGKILL (a failpoint sends it to itself) at several
//! points of a sync, then run again. The target
//! must end in exactly the expected state: every record present with its latest data, nothing
//! extra, and any record sent twice sent with the identical payload (an idempotent re-send under
//! the same key, never a second record).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

const PROJECT: &str = "\
version: 1
name: crash
connections:
  files: {connector: jsonl, settings: {directory: data}}
  out: {connector: jsonl, settings: {directory: out}}
defaults: {page_size: 7}
";

const PIPELINE: &str = "\
version: 1
name: members
source:
  connection: files
  entity: customers.jsonl
  cursor: {field: modified, lookback: 1s}
key: \"{{ record.number }}\"
fields:
  email_address: \"{{ record.email | email }}\"
  name: \"{{ record.name }}\"
target: {connection: out, resource: records, params: {file: members.jsonl}}
";

const RECORDS: usize = 40;

fn customers(version: &str) -> String {
    (0..RECORDS)
        .map(|i| {
            json!({"number": format!("C{i:03}"), "email": format!("c{i}@example.com"), "name": format!("{version} {i}"),
                   "modified": format!("2026-01-01T00:{:02}:{:02}Z", i / 60, i % 60)})
            .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn setup(dir: &Path) {
    std::fs::create_dir_all(dir.join("pipelines")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("ml-connector.yaml"), PROJECT).unwrap();
    std::fs::write(dir.join("pipelines/members.yaml"), PIPELINE).unwrap();
    std::fs::write(dir.join("data/customers.jsonl"), customers("v1")).unwrap();
}

fn run(dir: &Path, failpoint: Option<&str>) -> std::process::ExitStatus {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ml-connector"));
    cmd.arg("run").current_dir(dir).env_remove("ML_CONNECTOR_FAILPOINT");
    if let Some(f) = failpoint {
        cmd.env("ML_CONNECTOR_FAILPOINT", f);
    }
    cmd.output().unwrap().status
}

/// The target's state: key → data of the last line written under it. Also checks that every
/// repeated line of a key repeats the previous line exactly (an idempotent re-send).
fn target_state(dir: &Path) -> (BTreeMap<String, Value>, usize) {
    let text = std::fs::read_to_string(dir.join("out/members.jsonl")).unwrap_or_default();
    let mut state: BTreeMap<String, Value> = BTreeMap::new();
    let mut resends = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = v["key"].as_str().unwrap().to_owned();
        if state.get(&key) == Some(&v["data"]) {
            resends += 1;
        }
        state.insert(key, v["data"].clone());
    }
    (state, resends)
}

fn expected(version: &str) -> BTreeMap<String, Value> {
    (0..RECORDS)
        .map(|i| {
            (
                format!("C{i:03}"),
                json!({"email_address": format!("c{i}@example.com"), "name": format!("{version} {i}")}),
            )
        })
        .collect()
}

fn ledger_size(dir: &Path) -> u64 {
    state::SqliteStore::open(&dir.join(".ml-connector/state.db")).unwrap().ledger_count("members").unwrap()
}

#[test]
fn a_sync_killed_at_any_point_ends_exact_after_a_rerun() {
    let mut scenarios = 0;
    for (point, counts) in [
        ("read-page", &[1, 3, 6][..]),
        ("after-write", &[1, 7, 23, 40][..]),
        ("after-ledger", &[1, 15, 40][..]),
        ("before-watermark", &[1][..]),
    ] {
        for &n in counts {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let status = run(dir.path(), Some(&format!("{point}:{n}")));
            assert!(
                !status.success() && status.code().is_none(),
                "{point}:{n} should have killed the process: {status:?}"
            );

            let status = run(dir.path(), None);
            assert!(status.success(), "{point}:{n}: the re-run failed: {status:?}");
            let (state, resends) = target_state(dir.path());
            assert_eq!(state, expected("v1"), "{point}:{n}: target differs");
            assert!(resends <= 1, "{point}:{n}: {resends} re-sends; at most the write in flight is sent again");
            if point != "after-write" {
                assert_eq!(resends, 0, "{point}:{n}: nothing was in flight, nothing is sent twice");
            }
            assert_eq!(ledger_size(dir.path()), RECORDS as u64);

            // A third run changes nothing.
            let lines = std::fs::read_to_string(dir.path().join("out/members.jsonl")).unwrap().lines().count();
            assert!(run(dir.path(), None).success());
            let after = std::fs::read_to_string(dir.path().join("out/members.jsonl")).unwrap().lines().count();
            assert_eq!(lines, after, "{point}:{n}: a run after recovery wrote again");
            scenarios += 1;
        }
    }
    assert_eq!(scenarios, 11);
}

#[test]
fn a_sync_killed_during_a_bulk_write_ends_exact() {
    // Pages of 20 records go to the file as one bulk append; the kill lands while the results
    // of that batch are being recorded.
    for n in [1, 10, 20, 33] {
        let dir = tempfile::tempdir().unwrap();
        setup(dir.path());
        std::fs::write(dir.path().join("ml-connector.yaml"), PROJECT.replace("page_size: 7", "page_size: 20")).unwrap();
        let status = run(dir.path(), Some(&format!("after-write:{n}")));
        assert_eq!(status.signal(), Some(9), "after-write:{n}: {status:?}");
        assert!(run(dir.path(), None).success());
        let (state, resends) = target_state(dir.path());
        assert_eq!(state, expected("v1"), "after-write:{n}");
        assert!(resends <= 20, "at most one batch is sent again: {resends}");
        assert!(resends >= 1, "the batch in flight was re-sent under the same keys");
        assert_eq!(ledger_size(dir.path()), RECORDS as u64);
    }
}

#[test]
fn an_incremental_sync_killed_midway_picks_up_every_change() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    assert!(run(dir.path(), None).success());
    // Every record changes, with later timestamps.
    let v2: String = customers("v2").replace("2026-01-01T", "2026-01-02T");
    std::fs::write(dir.path().join("data/customers.jsonl"), v2).unwrap();
    let status = run(dir.path(), Some("after-ledger:17"));
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(run(dir.path(), None).success());
    let (state, resends) = target_state(dir.path());
    assert_eq!(state, expected("v2"));
    assert_eq!(resends, 0);
}
