//! Mapping throughput: records per second per core for the stock invoice → order and customer →
//! member mappings, engine only (no network: the project is loaded and `map_record` called on
//! generated records), next to the same mapping done by two baselines, a Python Jinja2 +
//! JSONPath implementation and jq. All three read the same JSON Lines file and write JSON
//! Lines, each on one core, timed from start to exit; their outputs are then compared record by
//! record, so a fast wrong answer cannot pass.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::pipeline::{MapOutcome, Pipeline};
use serde_json::{Value, json};

use super::data::{self, Dice};
use super::project::{self, WorkDir};
use super::report;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Records per mapping (invoices have five item lines each).
    #[arg(long, default_value_t = 20_000)]
    pub records: usize,
    /// A tenth of the records.
    #[arg(long)]
    pub quick: bool,
    /// The Python interpreter for the Jinja2 baseline (it needs `pip install jinja2 jsonpath-ng`).
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The jq binary for the jq baseline.
    #[arg(long, default_value = "jq")]
    pub jq: String,
    /// Keep the generated input and the outputs under this directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

const PYTHON_SCRIPT: &str = include_str!("../../../benches/baselines/jinja_mapping.py");
const JQ_ORDERS: &str = include_str!("../../../benches/baselines/invoices-to-orders.jq");
const JQ_MEMBERS: &str = include_str!("../../../benches/baselines/customers-to-members.jq");

/// One mapping measured: which pipeline, its input, its jq program.
struct Case {
    pipeline: &'static str,
    what: &'static str,
    jq: &'static str,
}

const CASES: [Case; 2] = [
    Case { pipeline: "invoices-to-orders", what: "posted invoices (5 lines) → orders", jq: JQ_ORDERS },
    Case { pipeline: "customers-to-members", what: "customers → audience members", jq: JQ_MEMBERS },
];

/// What one run of an implementation did.
struct Timed {
    elapsed: Duration,
    output: PathBuf,
    /// Of `elapsed`, the time in `map_record` (the engine only; the rest is JSON Lines I/O).
    mapping: Option<Duration>,
}

/// Runs the measurement; false when an output disagreed with the engine's.
pub fn run(args: &Args) -> Result<bool, String> {
    let records = if args.quick { (args.records / 10).max(1) } else { args.records };
    let work = WorkDir::new(args.dir.as_deref(), "mapping")?;
    let dir = &work.path;
    let endpoints = project::Endpoints {
        mailchimp: "http://127.0.0.1:9".into(),
        business_central: Some(("http://127.0.0.1:9/token".into(), "http://127.0.0.1:9".into())),
        dynamics_gp: None,
    };
    let vars = project::bc_vars("a1b2c3d4e5");
    let project_dir = dir.join("project");
    std::fs::create_dir_all(project_dir.join("pipelines")).map_err(|e| e.to_string())?;
    std::fs::write(project_dir.join("ml-connector.yaml"), project::project_yaml(&endpoints, &vars, 500, true))
        .map_err(|e| e.to_string())?;
    for (file, text) in crate::stock::BC_TO_MAILCHIMP {
        std::fs::write(project_dir.join("pipelines").join(file), text).map_err(|e| e.to_string())?;
    }
    let project = super::super::load_one(&project_dir).map_err(|_| "the bench's own project is invalid".to_owned())?;
    std::fs::write(dir.join("vars.json"), vars.to_string()).map_err(|e| e.to_string())?;

    let python = Baseline::python(&args.python, dir)?;
    let jq = Baseline::jq(&args.jq);
    report::heading(&format!("Mapping throughput: {records} records per mapping, one core each"));
    for note in [&python.missing, &jq.missing].into_iter().flatten() {
        println!("   {note}");
    }

    let mut agree = true;
    let mut rows = vec![vec![
        "mapping".to_owned(),
        "implementation".into(),
        "records/s".into(),
        "time".into(),
        "engine is".into(),
        "outputs".into(),
    ]];
    let mut verdicts = Vec::new();
    for case in &CASES {
        let pipeline = project.pipeline(case.pipeline).ok_or("a stock pipeline is missing")?;
        let input = dir.join(format!("{}.in.jsonl", case.pipeline));
        generate(case.pipeline, records, &input)?;
        let engine =
            best_of(3, || map_with_engine(pipeline, &input, &dir.join(format!("{}.engine.jsonl", case.pipeline))))?;
        let engine_rate = report::per_second(records, engine.elapsed);
        rows.push(vec![
            case.pipeline.to_owned(),
            "ml-connector engine".into(),
            report::rate(engine_rate),
            report::secs(engine.elapsed),
            "".into(),
            "reference".into(),
        ]);
        let mut ratios = Vec::new();
        for baseline in [&python, &jq] {
            if baseline.missing.is_some() {
                rows.push(vec![
                    "".into(),
                    baseline.name.to_owned(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "skipped".into(),
                ]);
                continue;
            }
            let timed = baseline.run(case, &project_dir, dir, &input)?;
            let comparison = compare(&engine.output, &timed.output)?;
            agree &= comparison.mismatch.is_none();
            let rate = report::per_second(records, timed.elapsed);
            ratios.push((baseline.name, engine_rate / rate));
            rows.push(vec![
                "".into(),
                baseline.name.to_owned(),
                report::rate(rate),
                report::secs(timed.elapsed),
                format!("{:.1}× faster", engine_rate / rate),
                comparison.summary(),
            ]);
            if let Some(m) = comparison.mismatch {
                println!("   {} disagrees with the engine on {}: {m}", baseline.name, case.pipeline);
            }
        }
        let in_map = engine.mapping.unwrap_or_default();
        verdicts.push((
            case,
            engine_rate,
            ratios,
            report::per_second(records, in_map),
            in_map.as_secs_f64() / engine.elapsed.as_secs_f64(),
        ));
    }
    report::table(&rows);
    for (case, rate, ratios, map_rate, share) in verdicts {
        println!(
            "   {}: {} ({} records/s per core; `map_record` alone {} records/s, {:.0}% of the engine's time, the rest reading and writing JSON Lines)",
            case.pipeline,
            case.what,
            report::rate(rate),
            report::rate(map_rate),
            share * 100.0
        );
        for (name, ratio) in ratios {
            if name == PYTHON {
                report::target(&format!("≥ 20× Python ({})", case.pipeline), &format!("{ratio:.1}×"), ratio >= 20.0);
            } else {
                report::target(&format!("faster than jq ({})", case.pipeline), &format!("{ratio:.1}×"), ratio > 1.0);
            }
        }
    }
    if !agree {
        println!("   FAILED: a baseline's output differs from the engine's (see above)");
    }
    Ok(agree)
}

/// The best (shortest) of `n` runs, which is the one least disturbed by the rest of the machine.
fn best_of(n: usize, mut f: impl FnMut() -> Result<Timed, String>) -> Result<Timed, String> {
    let mut best: Option<Timed> = None;
    for _ in 0..n {
        let t = f()?;
        if best.as_ref().is_none_or(|b| t.elapsed < b.elapsed) {
            best = Some(t);
        }
    }
    best.ok_or_else(|| "no run".to_owned())
}

/// Writes `n` generated records for `pipeline` as JSON Lines.
fn generate(pipeline: &str, n: usize, path: &Path) -> Result<(), String> {
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(|e| e.to_string())?);
    let mut dice = Dice::new(0xBE_4C4);
    for i in 0..n {
        let record = match pipeline {
            "invoices-to-orders" => data::invoice(i, 5, 10_000, &mut dice),
            _ => data::customer(i, &mut dice),
        };
        serde_json::to_writer(&mut out, &record).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())
}

/// The engine, as the executor uses it: parse each line, `map_record` (filter, templates,
/// JSONPath, the connector's request, the payload hash), and write what it made.
fn map_with_engine(pipeline: &Pipeline, input: &Path, output: &Path) -> Result<Timed, String> {
    let started = Instant::now();
    let mut mapping = Duration::ZERO;
    let reader = BufReader::new(std::fs::File::open(input).map_err(|e| e.to_string())?);
    let mut out = BufWriter::new(std::fs::File::create(output).map_err(|e| e.to_string())?);
    for line in reader.lines() {
        let line = line.map_err(|e| e.to_string())?;
        let record: Value = serde_json::from_str(&line).map_err(|e| e.to_string())?;
        let mapped = Instant::now();
        let outcome = pipeline.map_record(&record);
        mapping += mapped.elapsed();
        let entry = match outcome {
            Ok(MapOutcome::Mapped(m)) => json!({
                "key": m.key, "method": m.request.method, "path": m.request.path, "body": m.request.body, "hash": m.hash,
            }),
            Ok(MapOutcome::Filtered) => json!({"filtered": true}),
            Err(e) => json!({"error": e.to_string()}),
        };
        serde_json::to_writer(&mut out, &entry).map_err(|e| e.to_string())?;
        out.write_all(b"\n").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(Timed { elapsed: started.elapsed(), output: output.to_owned(), mapping: Some(mapping) })
}

const PYTHON: &str = "Python Jinja2 + jsonpath-ng";
const JQ: &str = "jq";

/// A baseline implementation, or why it cannot run here.
struct Baseline {
    name: &'static str,
    program: String,
    /// Set when the tool is not installed: what to install.
    missing: Option<String>,
    /// The Python script, written to the work directory.
    script: Option<PathBuf>,
}

impl Baseline {
    fn python(program: &str, dir: &Path) -> Result<Baseline, String> {
        let ok = Command::new(program)
            .args(["-c", "import jinja2, jsonpath_ng"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let script = dir.join("jinja_mapping.py");
        std::fs::write(&script, PYTHON_SCRIPT).map_err(|e| e.to_string())?;
        Ok(Baseline {
            name: PYTHON,
            program: program.to_owned(),
            missing: (!ok).then(|| {
                format!("{PYTHON} baseline skipped: `{program}` with jinja2 and jsonpath-ng not found (pip install jinja2 jsonpath-ng)")
            }),
            script: Some(script),
        })
    }

    fn jq(program: &str) -> Baseline {
        let ok = Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Baseline {
            name: JQ,
            program: program.to_owned(),
            missing: (!ok).then(|| format!("jq baseline skipped: `{program}` not found (install jq 1.6 or later)")),
            script: None,
        }
    }

    /// Runs the baseline on `input`, timed from start to exit.
    fn run(&self, case: &Case, project_dir: &Path, dir: &Path, input: &Path) -> Result<Timed, String> {
        let output = dir.join(format!("{}.{}.jsonl", case.pipeline, if self.name == JQ { "jq" } else { "python" }));
        let vars = std::fs::read_to_string(dir.join("vars.json")).map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.program);
        if let Some(script) = &self.script {
            // The pipeline file as JSON: the script reads the same templates the engine compiled.
            let file = project_dir.join("pipelines").join(format!("{}.yaml", case.pipeline));
            let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
            let doc = engine::yaml::parse(&file, &text).map_err(|_| format!("{} does not parse", file.display()))?;
            let json_file = dir.join(format!("{}.pipeline.json", case.pipeline));
            std::fs::write(&json_file, doc.value.to_string()).map_err(|e| e.to_string())?;
            command.arg(script).arg(&json_file).arg(dir.join("vars.json")).arg(input).arg(&output);
        } else {
            let program = dir.join(format!("{}.jq", case.pipeline));
            std::fs::write(&program, case.jq).map_err(|e| e.to_string())?;
            command.args(["-c", "--argjson", "vars", &vars, "-f"]).arg(&program).arg(input);
            command.stdout(std::fs::File::create(&output).map_err(|e| e.to_string())?);
        }
        let started = Instant::now();
        let out = command.stderr(Stdio::piped()).output().map_err(|e| format!("{}: {e}", self.name))?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            return Err(format!("{} failed: {}", self.name, String::from_utf8_lossy(&out.stderr)));
        }
        Ok(Timed { elapsed, output, mapping: None })
    }
}

/// How a baseline's output compares with the engine's.
struct Comparison {
    records: usize,
    /// The fields compared (those the baseline produces).
    fields: Vec<&'static str>,
    /// The first disagreement.
    mismatch: Option<String>,
}

impl Comparison {
    fn summary(&self) -> String {
        match &self.mismatch {
            None => format!("{} of {} agree ({})", self.records, self.records, self.fields.join(", ")),
            Some(_) => "DIFFER".to_owned(),
        }
    }
}

/// Compares two outputs line by line: every field the baseline wrote (numbers by value, so jq's
/// `40` equals the engine's `40.0`).
fn compare(engine: &Path, baseline: &Path) -> Result<Comparison, String> {
    let read = |p: &Path| -> Result<Vec<Value>, String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        text.lines().map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", p.display()))).collect()
    };
    let (ours, theirs) = (read(engine)?, read(baseline)?);
    let mut fields = Vec::new();
    let mut mismatch = None;
    if ours.len() != theirs.len() {
        mismatch = Some(format!("{} records from the engine, {} from the baseline", ours.len(), theirs.len()));
    }
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        for field in ["key", "method", "path", "body", "hash", "filtered", "error"] {
            let theirs = b.get(field).filter(|v| !v.is_null());
            let Some(theirs) = theirs else {
                if field == "body" && a.get("body").is_some() {
                    mismatch.get_or_insert_with(|| format!("record {i}: no body"));
                }
                continue;
            };
            if !fields.contains(&field) && a.get(field).is_some() {
                fields.push(field);
            }
            let same = match (field, a.get(field)) {
                // The engine's messages are its own; only the fact of an error must agree.
                ("error", Some(_)) => true,
                (_, Some(ours)) => same_json(ours, theirs),
                (_, None) => false,
            };
            if !same && mismatch.is_none() {
                mismatch = Some(format!(
                    "record {i}, `{field}`: engine {} / baseline {theirs}",
                    a.get(field).map_or("(none)".to_owned(), Value::to_string)
                ));
            }
        }
    }
    Ok(Comparison { records: ours.len(), fields, mismatch })
}

/// JSON equality with numbers compared by value.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_by_value() {
        assert!(same_json(&json!({"a": [40.0, "x"]}), &json!({"a": [40, "x"]})));
        assert!(!same_json(&json!({"a": 40.01}), &json!({"a": 40})));
        assert!(!same_json(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
    }
}
