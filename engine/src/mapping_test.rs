//! Mapping tests: `*.test.yaml` files beside a pipeline assert the exact request a record
//! renders to, or that the filter drops it, or that the record fails with a given message. No
//! network and no state: mapping is pure, so these run in milliseconds in CI.
//!
//! ```yaml
//! pipeline: customers-to-members
//! cases:
//!   - name: a customer becomes a member
//!     record: { number: "C001", email: "Ada@Example.com" }
//!     expect:
//!       key: C001
//!       request: { method: PUT, path: "...", body: { ... } }
//!   - name: customers without email are skipped
//!     record: { number: "C002", email: "" }
//!     expect: { filtered: true }
//! ```

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::connector::TargetRequest;
use crate::diagnostic::Diagnostic;
use crate::load::{Project, load_typed};
use crate::pipeline::MapOutcome;

/// A mapping-test file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "ml-connector mapping tests (*.test.yaml)")]
pub struct TestFile {
    /// The name of the pipeline under test.
    pub pipeline: String,
    /// The cases, run in order.
    pub cases: Vec<TestCase>,
}

/// One input record and what it must render to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the case shows, printed when it fails.
    pub name: String,
    /// The source record, as the source connector would deliver it.
    pub record: Value,
    /// What must happen to it.
    pub expect: Expectation,
}

/// What a case expects. Give `filtered`, `error`, or any of `key` and `request`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    /// `true`: the pipeline's filter drops the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<bool>,
    /// The exact idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The exact request the target receives (method, path, body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<TargetRequest>,
    /// The record fails, with an error containing this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: PathBuf,
    pub name: String,
    /// `None` when it passed; otherwise what differed, as a readable diff.
    pub failure: Option<String>,
}

/// The JSON Schema of a test file.
pub fn test_file_schema() -> Value {
    crate::schema::root_schema_for::<TestFile>()
}

/// Test files of a project: `*.test.yaml` next to its pipeline files.
pub fn test_files(project: &Project) -> Vec<PathBuf> {
    let mut dirs: Vec<&Path> = project.pipelines.iter().filter_map(|p| p.file.parent()).collect();
    dirs.sort();
    dirs.dedup();
    let mut files: Vec<PathBuf> = dirs
        .into_iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path()))
        .filter(|p| crate::load::is_test_file(p))
        .collect();
    files.sort();
    files
}

/// Runs one test file against a loaded project.
pub fn run_test_file(project: &Project, file: &Path) -> Result<Vec<CaseResult>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let Some((tests, doc)) = load_typed::<TestFile>(file, &test_file_schema(), &mut diags) else {
        return Err(diags);
    };
    let Some(pipeline) = project.pipeline(&tests.pipeline) else {
        let known: Vec<&str> = project.pipelines.iter().map(|p| p.name.as_str()).collect();
        return Err(vec![Diagnostic::new(
            file,
            doc.source_map.position("/pipeline"),
            "reference",
            format!("unknown pipeline `{}` (known: {})", tests.pipeline, known.join(", ")),
        )]);
    };
    let mut results = Vec::new();
    for (i, case) in tests.cases.iter().enumerate() {
        let e = &case.expect;
        if e.filtered.is_none() && e.key.is_none() && e.request.is_none() && e.error.is_none() {
            let pos = doc.source_map.position(&format!("/cases/{i}/expect"));
            return Err(vec![Diagnostic::new(
                file,
                pos,
                "schema",
                "an expectation needs `filtered`, `error`, `key` or `request`",
            )]);
        }
        let failure = check_case(&pipeline.map_record(&case.record), e);
        results.push(CaseResult { file: file.to_path_buf(), name: case.name.clone(), failure });
    }
    Ok(results)
}

fn check_case(outcome: &Result<MapOutcome, crate::pipeline::RecordError>, expect: &Expectation) -> Option<String> {
    let mut problems = Vec::new();
    match outcome {
        Err(err) => match &expect.error {
            Some(text) if err.to_string().contains(text.as_str()) => {}
            Some(text) => problems.push(format!("expected an error containing {text:?}, got: {err}")),
            None => problems.push(format!("the record failed: {err}")),
        },
        Ok(MapOutcome::Filtered) => {
            if expect.filtered != Some(true) {
                problems.push("the filter dropped the record, but the case expects it to be written".to_owned());
            }
        }
        Ok(MapOutcome::Mapped(m)) => {
            if expect.filtered == Some(true) {
                problems.push("the filter kept the record, but the case expects it to be dropped".to_owned());
            }
            if let Some(text) = &expect.error {
                problems.push(format!("expected an error containing {text:?}, but the record mapped"));
            }
            if let Some(key) = &expect.key
                && key != &m.key
            {
                problems.push(format!("key differs:\n  expected: {key}\n    actual: {}", m.key));
            }
            if let Some(request) = &expect.request
                && request != &m.request
            {
                problems.push(format!("request differs (- expected, + actual):\n{}", diff(request, &m.request)));
            }
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n"))
}

/// A line diff of two values' pretty JSON.
pub fn diff<T: Serialize>(expected: &T, actual: &T) -> String {
    let a = serde_json::to_string_pretty(expected).unwrap_or_default();
    let b = serde_json::to_string_pretty(actual).unwrap_or_default();
    let mut out = String::new();
    for change in similar::TextDiff::from_lines(&a, &b).iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        out.push_str(&format!("  {sign} {}", change.value()));
        if !change.value().ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
