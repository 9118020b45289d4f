//! End-to-end tests of the `ml-connector` binary: real files, real SQLite state, the built-in
//! JSON Lines connector. Each test builds a project in a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary project directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        Fixture { dir: tempfile::tempdir().unwrap() }
    }

    /// A minimal valid project: customers.jsonl → out/members.jsonl.
    fn valid() -> Self {
        let f = Fixture::new();
        f.write("ml-connector.yaml", PROJECT);
        f.write("pipelines/members.yaml", PIPELINE);
        f.write("data/customers.jsonl", CUSTOMERS);
        f
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_default()
    }

    /// Runs the binary in the project directory.
    fn run(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .args(args)
            .current_dir(self.path())
            .env_remove("ML_CONNECTOR_LOG")
            .output()
            .unwrap();
        Run::from(out)
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

const PROJECT: &str = "\
version: 1
name: test
connections:
  files:
    connector: jsonl
    settings:
      directory: data
  out:
    connector: jsonl
    settings:
      directory: out
vars:
  list: main
";

const PIPELINE: &str = "\
version: 1
name: members
source:
  connection: files
  entity: customers.jsonl
  cursor:
    field: modified
filter: record.email != \"\"
key: \"{{ record.number }}\"
fields:
  email_address: \"{{ record.email | email }}\"
  name: \"{{ record.name }}\"
  amount: \"{{ record.amount }}\"
target:
  connection: out
  resource: records
  params:
    file: \"{{ vars.list }}.jsonl\"
";

const CUSTOMERS: &str = "\
{\"number\":\"1\",\"email\":\"a@example.com\",\"name\":\"A\",\"amount\":1.5,\"modified\":\"2026-01-01T00:00:00Z\"}
{\"number\":\"2\",\"email\":\"b@example.com\",\"name\":\"B\",\"amount\":2,\"modified\":\"2026-01-02T00:00:00Z\"}
{\"number\":\"3\",\"email\":\"\",\"name\":\"C\",\"amount\":3,\"modified\":\"2026-01-03T00:00:00Z\"}
{\"number\":\"4\",\"email\":\"not-an-email\",\"name\":\"D\",\"amount\":4,\"modified\":\"2026-01-04T00:00:00Z\"}
";

/// The diagnostics of a failed validation with the temporary directory removed, for snapshots.
fn diagnostics(f: &Fixture, run: &Run) -> String {
    run.stderr.replace(&format!("{}/", f.path().display()), "")
}

#[test]
fn a_valid_project_validates() {
    let f = Fixture::valid();
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("ok (1 pipeline(s))"), "{}", r.stdout);
}

#[test]
fn a_typo_in_a_key_is_reported_at_its_line_and_column() {
    let f = Fixture::valid();
    f.write("pipelines/members.yaml", &PIPELINE.replace("filter:", "filtr:"));
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r), @r"
    pipelines/members.yaml:8:1: error[schema]: unknown key `filtr` (did you mean `filter`?)
    1 problem(s) found
    ");
}

#[test]
fn an_unknown_template_variable_is_reported_inside_the_template() {
    let f = Fixture::valid();
    f.write("pipelines/members.yaml", &PIPELINE.replace("{{ record.name }}", "{{ recod.name }}"));
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r), @r"
    pipelines/members.yaml:12:13: error[template]: unknown variable `recod` (did you mean `record`?); templates here can read `record`, `vars`, `pipeline`
    1 problem(s) found
    ");
}

#[test]
fn a_dependency_cycle_is_reported_where_it_closes() {
    let f = Fixture::valid();
    let a = PIPELINE.replace("name: members", "name: a") + "depends_on: [b]\n";
    let b = PIPELINE.replace("name: members", "name: b") + "depends_on: [a]\n";
    f.write("pipelines/members.yaml", &a);
    f.write("pipelines/second.yaml", &b);
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r), @r"
    pipelines/second.yaml:19:14: error[cycle]: dependency cycle: a → b → a
    1 problem(s) found
    ");
}

#[test]
fn every_problem_is_reported_at_once() {
    let f = Fixture::valid();
    let broken = PIPELINE
        .replace("version: 1", "version: 2")
        .replace("connection: out", "connection: outt")
        .replace("| email", "| emial")
        .replace("$", "")
        + "depends_on: [nothing]\n";
    f.write("pipelines/members.yaml", &broken);
    f.write("pipelines/dup.yaml", &PIPELINE.replace("customers.jsonl", "other.jsonl"));
    f.write("pipelines/bad.yaml", "version: 1\nname: [unclosed\n");
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r));
}

#[test]
fn project_file_errors_point_into_the_project_file() {
    let f = Fixture::valid();
    f.write(
        "ml-connector.yaml",
        &PROJECT
            .replace(
                "connector: jsonl\n    settings:\n      directory: out",
                "connector: mailchimpp\n    settings:\n      directory: out",
            )
            .replace("directory: data", "directory: 5\n      extra: x"),
    );
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r));
}

#[test]
fn schedule_errors_point_at_the_key_at_fault() {
    let f = Fixture::valid();
    let with = |name: &str, schedule: &str| {
        PIPELINE.replace("name: members", &format!("name: {name}")) + &format!("schedule: {schedule}\n")
    };
    f.write("pipelines/members.yaml", &with("members", "{cron: \"0 2 * *\"}"));
    f.write("pipelines/a.yaml", &with("a", "{cron: \"0 0 31 2 *\"}"));
    f.write("pipelines/b.yaml", &with("b", "{cron: \"61 * * * *\"}"));
    f.write("pipelines/c.yaml", &with("c", "{cron: \"0 23 L * *\", timezone: Mars/Olympus}"));
    f.write("pipelines/d.yaml", &with("d", "{every: 15m, cron: \"0 2 * * *\"}"));
    f.write("pipelines/e.yaml", &with("e", "{evry: 15m}"));
    f.write("pipelines/g.yaml", &with("g", "hourly"));
    f.write("pipelines/h.yaml", &with("h", "{webhook: false}"));
    f.write("pipelines/i.yaml", &with("i", "{webhook: true, timezone: UTC}"));
    f.write("pipelines/ok.yaml", &with("ok", "{cron: \"0 23 L * *\", timezone: Europe/Amsterdam}"));
    f.write("pipelines/ok-poll.yaml", &with("ok-poll", "{webhook: true, every: 6h}"));
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    insta::assert_snapshot!(diagnostics(&f, &r));
}

#[test]
fn yaml_syntax_errors_have_a_position() {
    let f = Fixture::valid();
    f.write("pipelines/members.yaml", "version: 1\nname: x\nfields:\n  a: \"unterminated\n");
    let r = f.run(&["validate"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("pipelines/members.yaml:") && r.stderr.contains("error[yaml]: YAML syntax error"),
        "{}",
        r.stderr
    );
}

#[test]
fn mapping_tests_pass_and_a_wrong_expectation_shows_a_diff() {
    let f = Fixture::valid();
    let test = "\
pipeline: members
cases:
  - name: maps a customer
    record: {number: \"7\", email: \" X@Example.com\", name: X, amount: 3.25}
    expect:
      key: \"7\"
      request:
        method: APPEND
        path: main.jsonl
        body: {key: \"7\", data: {email_address: x@example.com, name: X, amount: 3.25}}
  - name: drops customers without email
    record: {number: \"8\", email: \"\", name: Y, amount: 1}
    expect: {filtered: true}
";
    f.write("pipelines/members.test.yaml", test);
    let r = f.run(&["test"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("mapping tests: 2 passed, 0 failed"), "{}", r.stdout);

    f.write("pipelines/members.test.yaml", &test.replace("amount: 3.25}}", "amount: \"3.25\"}}"));
    let r = f.run(&["test"]);
    assert_eq!(r.code, 1);
    let out = r.stdout.replace(&format!("{}/", f.path().display()), "");
    insta::assert_snapshot!(out);
}

#[test]
fn run_writes_once_and_a_second_run_writes_nothing() {
    let f = Fixture::valid();
    let r = f.run(&["run"]);
    // Record 4 has an invalid email: it goes to dead letters with its reason, and the run,
    // having accounted for every record, succeeds.
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("members: read 4, filtered 1, did create 2, update 0; unchanged 0, failed 1 (1 in dead letters)"),
        "{}",
        r.stderr
    );
    let written = f.read("out/main.jsonl");
    assert_eq!(written.lines().count(), 2, "{written}");
    assert!(written.contains("\"amount\":1.5"), "numbers keep their type: {written}");

    // Incremental: the second run re-reads only the lookback window (record 4) and writes
    // nothing; the dead letter is refreshed, not duplicated.
    let r = f.run(&["run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("members: read 1, filtered 0, did create 0, update 0; unchanged 0, failed 1 (1 in dead letters)"),
        "{}",
        r.stderr
    );
    assert_eq!(f.read("out/main.jsonl").lines().count(), 2, "no second write");
    let db = state::SqliteStore::open(&f.path().join(".ml-connector/state.db")).unwrap();
    assert_eq!(db.dead_letters(Some("members"), false).unwrap().len(), 1);

    // A record changed after the watermark is read again and updated; unchanged ones are not.
    let changed = CUSTOMERS.replace(
        "\"name\":\"B\",\"amount\":2,\"modified\":\"2026-01-02T00:00:00Z\"",
        "\"name\":\"Bee\",\"amount\":2,\"modified\":\"2026-01-05T00:00:00Z\"",
    );
    f.write("data/customers.jsonl", &changed);
    let r = f.run(&["run"]);
    assert!(r.stderr.contains("did create 0, update 1; unchanged 0"), "{}", r.stderr);
    assert_eq!(f.read("out/main.jsonl").lines().count(), 3);
}

#[test]
fn a_full_read_of_unchanged_data_writes_nothing() {
    let f = Fixture::valid();
    f.write("pipelines/members.yaml", &PIPELINE.replace("  cursor:\n    field: modified\n", ""));
    assert_eq!(f.run(&["run"]).code, 0);
    let r = f.run(&["run"]);
    assert!(
        r.stderr.contains("members: read 4, filtered 1, did create 0, update 0; unchanged 2, failed 1"),
        "{}",
        r.stderr
    );
    assert_eq!(f.read("out/main.jsonl").lines().count(), 2);
    let db = state::SqliteStore::open(&f.path().join(".ml-connector/state.db")).unwrap();
    let unchanged = db
        .audit_query(&state::AuditFilter { operation: Some(engine::state::Operation::Unchanged), ..Default::default() })
        .unwrap();
    assert_eq!(unchanged.len(), 2, "the audit trail shows the skipped writes");
}

#[test]
fn plan_prints_requests_and_changes_nothing() {
    let f = Fixture::valid();
    let r = f.run(&["plan"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("create members 1: APPEND main.jsonl"), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("{\"data\":{\"amount\":1.5,\"email_address\":\"a@example.com\",\"name\":\"A\"},\"key\":\"1\"}"),
        "{}",
        r.stdout
    );
    // The key renders before the failing field, so the failure is filed under it.
    assert!(r.stdout.contains("failed members 4: mapping:"), "{}", r.stdout);
    assert!(
        r.stdout.contains("mapping: fields.email_address: `not-an-email` is not a valid email address"),
        "{}",
        r.stdout
    );
    assert!(!f.path().join("out").exists(), "plan wrote to the target");
    assert!(!f.path().join(".ml-connector").exists(), "plan created state");

    f.run(&["run"]);
    let changed = CUSTOMERS.replace(
        "\"name\":\"B\",\"amount\":2,\"modified\":\"2026-01-02T00:00:00Z\"",
        "\"name\":\"Bee\",\"amount\":2,\"modified\":\"2026-01-05T00:00:00Z\"",
    );
    f.write("data/customers.jsonl", &changed);
    let r = f.run(&["plan", "--format", "json"]);
    let events: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let updates: Vec<&serde_json::Value> = events.iter().filter(|e| e["operation"] == "update").collect();
    assert_eq!(updates.len(), 1, "{}", r.stdout);
    assert_eq!(updates[0]["key"], "2");
    assert_eq!(updates[0]["request"]["body"]["data"]["name"], "Bee");
    assert_eq!(f.read("out/main.jsonl").lines().count(), 2, "plan wrote nothing");
    // The watermark did not move: the same plan again shows the same update.
    let again = f.run(&["plan", "--format", "json"]);
    assert_eq!(again.stdout, r.stdout);
}

#[test]
fn the_checked_in_schemas_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
        .args(["schema", "--check"])
        .arg(root.join("schemas"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_stock_mappings_validate_and_pass_their_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin = env!("CARGO_BIN_EXE_ml-connector");
    let v = Command::new(bin).arg("validate").arg(root.join("mappings")).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let t = Command::new(bin).arg("test").arg(root.join("mappings")).output().unwrap();
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stdout));
}

#[test]
fn a_dead_letter_is_replayed_after_the_data_is_fixed() {
    let f = Fixture::valid();
    let customers = CUSTOMERS.replace("{\"number\":", "{\"id\":\"X\",\"number\":");
    let customers: String =
        customers.lines().enumerate().map(|(i, l)| l.replacen("\"X\"", &format!("\"{i}\""), 1) + "\n").collect();
    f.write("data/customers.jsonl", &customers);
    assert_eq!(f.run(&["run"]).code, 0);

    let r = f.run(&["dead-letters"]);
    assert!(r.stdout.contains("members / mapping: 1 record(s)"), "{}", r.stdout);
    assert!(r.stdout.contains("`not-an-email` is not a valid email address"), "{}", r.stdout);

    // The mapping stays; the data is fixed in the source (without touching its timestamp, so an
    // ordinary incremental run would not read it again).
    f.write("data/customers.jsonl", &customers.replace("not-an-email", "d@example.com"));
    let r = f.run(&["replay"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("members: replayed 1, resolved 1, still open 0"), "{}", r.stderr);
    assert!(f.read("out/main.jsonl").contains("d@example.com"));
    assert!(f.run(&["dead-letters"]).stdout.contains("0 dead letter(s)"));
    let r = f.run(&["dead-letters", "--all"]);
    assert!(r.stdout.contains("(resolved "), "{}", r.stdout);
}

#[test]
fn a_replay_that_still_fails_keeps_the_letter() {
    let f = Fixture::valid();
    f.run(&["run"]);
    let r = f.run(&["replay", "--pipeline", "members"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("members: replayed 1, resolved 0, still open 1"), "{}", r.stderr);
    assert_eq!(f.run(&["replay", "--pipeline", "nope"]).code, 2);
}

#[test]
fn audit_filters_and_formats() {
    let f = Fixture::valid();
    f.run(&["run"]);
    let r = f.run(&["audit", "--outcome", "create", "--format", "csv"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "time,run_id,pipeline,key,operation,http_status,target_id,error");
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[1..].iter().all(|l| l.contains(",members,") && l.contains(",create,")));

    let r = f.run(&["audit", "--key", "2", "--format", "jsonl"]);
    let rows: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["operation"], "create");

    let r = f.run(&["audit", "--since", "2999-01-01"]);
    assert_eq!(r.stdout.lines().count(), 1, "only the header: {}", r.stdout);
    let r = f.run(&["audit", "--since", "yesterday"]);
    assert_eq!(r.code, 2, "a bad time is a usage error: {}", r.stderr);
}

#[test]
fn state_set_backfills_and_reset_resyncs() {
    let f = Fixture::valid();
    f.run(&["run"]);
    let r = f.run(&["state", "show"]);
    assert!(
        r.stdout.contains("members: cursor modified, watermark \"2026-01-04T00:00:00Z\", ledger 2 key(s)"),
        "{}",
        r.stdout
    );

    // Backfill: move the watermark back; the next run re-reads from there (and writes nothing
    // new, the ledger knowing every record).
    let r = f.run(&["state", "set", "members", "2026-01-01"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = f.run(&["run"]);
    assert!(r.stderr.contains("members: read 4,"), "{}", r.stderr);
    assert!(r.stderr.contains("did create 0, update 0; unchanged 2"), "{}", r.stderr);

    // A full resync sends everything again.
    let r = f.run(&["state", "reset", "members", "--ledger"]);
    assert!(r.stdout.contains("ledger cleared (2 key(s))"), "{}", r.stdout);
    let r = f.run(&["run"]);
    assert!(r.stderr.contains("did create 2, update 0"), "{}", r.stderr);
    assert_eq!(f.run(&["state", "set", "members", "not a date"]).code, 2);
}

#[test]
fn status_shows_runs_and_counts() {
    let f = Fixture::valid();
    assert_eq!(f.run(&["status"]).code, 1, "no state yet");
    f.run(&["run"]);
    f.run(&["run"]);
    let r = f.run(&["status"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains("members  watermark: \"2026-01-04T00:00:00Z\"  ledger: 2 key(s)  open dead letters: 1"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.matches("read ").count(), 2, "{}", r.stdout);
    assert!(
        r.stdout.contains("read 4, created 2, updated 0, unchanged 0, filtered 1, failed 1 (1 dead-lettered)"),
        "{}",
        r.stdout
    );
}
