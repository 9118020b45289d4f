//! A smoke test of `ml-connector bench` (the measurements themselves are run by hand, see
//! BENCHMARKS.md): the mapping measurement on a few records reports a throughput, and where the
//! baselines are installed, their outputs equal the engine's record by record.

use crate::common;

use std::process::{Command, Stdio};

fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// The records per second the report gives for an implementation of a mapping.
fn rate(out: &str, mapping: &str, implementation: &str) -> Option<u64> {
    let mut current = "";
    for line in out.lines() {
        let cells: Vec<&str> = line.split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        if let Some(first) = cells.first().filter(|c| ["invoices-to-orders", "customers-to-members"].contains(c)) {
            current = first;
        }
        if current == mapping
            && let Some(i) = cells.iter().position(|c| *c == implementation)
        {
            return cells.get(i + 1)?.replace(',', "").parse().ok();
        }
    }
    None
}

#[test]
fn bench_mapping_reports_throughput_and_agrees_with_the_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = common::run(dir.path(), &["bench", "mapping", "--records", "200"], "");
    assert_eq!(code, 0, "{out}");
    for mapping in ["invoices-to-orders", "customers-to-members"] {
        let engine = rate(&out, mapping, "ml-connector engine");
        assert!(engine.is_some_and(|r| r > 0), "no engine throughput for {mapping}: {out}");
    }
    let python = available("python3", &["-c", "import jinja2, jsonpath_ng"]);
    if python {
        // The same key, path, body and even payload hash (the canonical request) for every record.
        assert_eq!(out.matches("200 of 200 agree (key, method, path, body, hash)").count(), 2, "{out}");
        assert!(rate(&out, "invoices-to-orders", "Python Jinja2 + jsonpath-ng").is_some_and(|r| r > 0), "{out}");
    } else {
        assert!(out.contains("baseline skipped: `python3` with jinja2 and jsonpath-ng not found"), "{out}");
    }
    if available("jq", &["--version"]) {
        assert!(out.contains("200 of 200 agree (key, method, path, body)"), "{out}");
        assert!(out.contains("200 of 200 agree (method, body)"), "jq has no MD5, so no member key: {out}");
    } else {
        assert!(out.contains("jq baseline skipped"), "{out}");
    }
    assert!(!out.contains("DIFFER"), "{out}");
}

#[test]
fn bench_refuses_unknown_measurements() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = common::run(dir.path(), &["bench", "nonsense"], "");
    assert_eq!(code, 2, "{out}");
}
