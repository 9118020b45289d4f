//! A corpus of broken configuration (`tests/fixtures/bad-configs/`), each file with the
//! diagnostics `ml-connector validate` must print for it recorded next to it (`<case>.expected`):
//! YAML syntax, duplicate and merge keys, several documents, unknown keys, wrong types, missing
//! keys, template syntax, unknown variables, filters and tests, bad JSONPath, unknown
//! connections, resources and parameters, bad cron schedules and time zones, dependency cycles,
//! duplicate names, nesting too deep, plain-text secrets, broken mapping tests.
//!
//! A case is one file dropped into a small valid project: `*.pipeline.yaml` becomes
//! `pipelines/case.yaml` (next to a valid `members` pipeline), `*.project.yaml` replaces
//! `ml-connector.yaml`, `*.test.yaml` becomes `pipelines/members.test.yaml` (checked by
//! `ml-connector test`, which is what reads mapping tests), and a directory is laid over the
//! project as it is. Paths in the output are the fixture's own, so `NN-name.pipeline.yaml:7:1`
//! points into the fixture file itself.
//!
//! Every diagnostic must carry a `line:col`. After a deliberate change of wording, regenerate the
//! expectations with `MLC_BLESS=1 cargo test --test e2e bad_configs::` and review the diff.

use crate::common;

use std::path::{Path, PathBuf};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad-configs");

const PROJECT: &str = "\
version: 1
name: bad-configs
connections:
  files: {connector: jsonl, settings: {directory: data}}
  out: {connector: jsonl, settings: {directory: out}}
  mailchimp:
    connector: mailchimp
    settings: {auth: {type: api_key, key: {secret: mailchimp_api_key}}}
vars: {list_id: abc123}
";

const MEMBERS: &str = "\
version: 1
name: members
source:
  connection: files
  entity: customers.jsonl
key: \"{{ record.number }}\"
fields:
  email_address: \"{{ record.email | email }}\"
  name: \"{{ record.name }}\"
target:
  connection: out
  resource: records
  params: {file: members.jsonl}
";

/// How a case is placed into the project, and which command reads it.
enum Kind {
    Pipeline,
    Project,
    Test,
    Directory,
}

fn kind(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?;
    if path.is_dir() {
        Some(Kind::Directory)
    } else if name.ends_with(".pipeline.yaml") {
        Some(Kind::Pipeline)
    } else if name.ends_with(".project.yaml") {
        Some(Kind::Project)
    } else if name.ends_with(".test.yaml") {
        Some(Kind::Test)
    } else {
        None
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Lays the case out in a fresh project and runs the command that reads it; returns the exit
/// code and its diagnostics with paths made the fixture's.
fn diagnose(case: &Path, kind: &Kind) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(d.join("ml-connector.yaml"), PROJECT).unwrap();
    std::fs::write(d.join("pipelines/members.yaml"), MEMBERS).unwrap();
    let name = case.file_name().unwrap().to_str().unwrap().to_owned();
    let (placed, command) = match kind {
        Kind::Pipeline => ("pipelines/case.yaml", "validate"),
        Kind::Project => ("ml-connector.yaml", "validate"),
        Kind::Test => ("pipelines/members.test.yaml", "test"),
        Kind::Directory => ("", "validate"),
    };
    if placed.is_empty() {
        copy_dir(case, d);
    } else {
        std::fs::copy(case, d.join(placed)).unwrap();
    }
    let out = common::bin().arg(command).current_dir(d).output().unwrap();
    let root = format!("{}/", d.display());
    let mut text = String::from_utf8_lossy(&out.stderr).replace(&root, "");
    if !placed.is_empty() {
        text = text.replace(placed, &name);
    }
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn every_broken_configuration_is_diagnosed_at_its_place() {
    let bless = std::env::var_os("MLC_BLESS").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(FIXTURES).unwrap().flatten().map(|e| e.path()).collect();
    cases.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for case in &cases {
        let Some(kind) = kind(case) else { continue };
        let name = case.file_name().unwrap().to_str().unwrap();
        let (code, got) = diagnose(case, &kind);
        let got = fix_paths(&got, name, &kind);
        checked += 1;
        // `42-plain-text-secret` holds an API key where a reference belongs: never echoed.
        if got.contains("0123456789abcdef-us6") {
            failures.push(format!("{name}: the diagnostics echo a secret value:\n{got}"));
        }
        if code != 2 {
            failures.push(format!("{name}: exit code {code}, expected 2 (invalid configuration):\n{got}"));
            continue;
        }
        for line in got.lines().filter(|l| l.contains(": error[")) {
            let (place, _) = line.split_once(": error[").unwrap();
            let mut parts = place.rsplitn(3, ':');
            let (col, row) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if col.parse::<usize>().is_err() || row.parse::<usize>().is_err() {
                failures.push(format!("{name}: a diagnostic without `line:col`: {line}"));
            }
        }
        let expected_path = case.with_file_name(format!("{}.expected", stem(name)));
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{}: no expectation; run with MLC_BLESS=1", expected_path.display()));
        if expected.trim_end() != got.trim_end() {
            failures.push(format!("{name}:\n--- expected\n{}\n--- got\n{got}", expected.trim_end()));
        }
    }
    assert!(checked >= 40, "only {checked} cases");
    assert!(failures.is_empty(), "{} of {checked} case(s) differ:\n\n{}", failures.len(), failures.join("\n\n"));
}

/// The case's name without its kind suffix.
fn stem(name: &str) -> &str {
    [".pipeline.yaml", ".project.yaml", ".test.yaml"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name)
}

/// Directory cases: paths are relative to the case directory, shown under its name.
fn fix_paths(text: &str, name: &str, kind: &Kind) -> String {
    match kind {
        Kind::Directory => text
            .lines()
            .map(|l| if l.contains(": error[") { format!("{name}/{l}") } else { l.to_owned() })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text.to_owned(),
    }
}
