//! `ml-connector run` and `ml-connector plan`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::ValueEnum;
use engine::connector::ConnectContext;
use engine::executor::{Connections, PipelineReport, PlannedOperation, RecordEvent, RunOptions, run_project};
use engine::load::Project;
use engine::state::StateStore;
use state::SqliteStore;

use crate::progress::Progress;

use super::{FAILED, INVALID, OK, load_one};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The project directory (or its `ml-connector.yaml`).
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// Pipelines to run; all when none is named. They run in dependency order.
    pipelines: Vec<String>,
    /// How to print each record's fate: readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

pub fn execute(args: &Args, dry_run: bool) -> u8 {
    let project = match load_one(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    for name in &args.pipelines {
        if project.pipeline(name).is_none() {
            let known: Vec<&str> = project.pipelines.iter().map(|p| p.name.as_str()).collect();
            eprintln!("unknown pipeline `{name}` (known: {})", known.join(", "));
            return INVALID;
        }
    }
    let format = args.format;
    let mut progress = if format == Format::Text { Progress::new(BTreeMap::new()) } else { Progress::hidden() };
    let mut on_record = |event: &RecordEvent| {
        progress.record(event);
        if let Some(line) = render_event(event, format, dry_run) {
            progress.println(&line);
        }
    };
    let reports = match run_loaded(&project, &args.pipelines, dry_run, &mut on_record) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    drop(progress);
    let mut ok = true;
    for r in &reports {
        eprintln!("{}", summary_line(r, dry_run));
        ok &= r.succeeded();
    }
    if ok { OK } else { FAILED }
}

/// Runs (or plans) `only` (all when empty) of a loaded project in this process: opens the state
/// store, connects, runs in dependency order, and sends alerts for a real run.
pub fn run_loaded(
    project: &Project,
    only: &[String],
    dry_run: bool,
    on_record: &mut (dyn FnMut(&RecordEvent) + Send),
) -> Result<Vec<PipelineReport>, String> {
    // `plan` must change nothing: without a state database it plans against an empty one in
    // memory instead of creating the file.
    let state_path = project.state_path();
    let store =
        if dry_run && !state_path.exists() { SqliteStore::open_in_memory() } else { SqliteStore::open(&state_path) };
    let store = store.map_err(|e| format!("{}: {e}", state_path.display()))?;
    let runtime = super::runtime();
    let registry = crate::registry::connectors();
    let secrets = super::secrets::resolver(project);
    let context = ConnectContext { project_dir: project.dir.clone(), secrets: secrets.clone() };
    let reports = runtime.block_on(async {
        let connections = Connections::new(project, &registry, context);
        run_project(project, &connections, &store as &dyn StateStore, only, RunOptions { dry_run }, on_record).await
    });
    if !dry_run {
        super::alerts::send(project, &store, &reports, secrets.as_ref(), &runtime);
    }
    Ok(reports)
}

/// One line per pipeline: what was read and what became of it.
pub fn summary_line(r: &PipelineReport, dry_run: bool) -> String {
    if let Some(why) = &r.skipped_because {
        return format!("{}: skipped: {why}", r.pipeline);
    }
    let c = &r.counts;
    let verb = if dry_run { "would" } else { "did" };
    let mut line = format!(
        "{}: read {}, filtered {}, {verb} create {}, update {}; unchanged {}, failed {}",
        r.pipeline, c.read, c.filtered, c.created, c.updated, c.unchanged, c.failed
    );
    if c.dead_lettered > 0 {
        line.push_str(&format!(" ({} in dead letters)", c.dead_lettered));
    }
    line.push_str(&format!("; {} API calls in {:.1} s", r.api_calls, r.elapsed_ms as f64 / 1000.0));
    if let Some(e) = &r.error {
        line.push_str(&format!("\n  error: {e}"));
    }
    line
}

/// The line `run`/`plan` prints for one record, if any.
pub fn render_event(event: &RecordEvent, format: Format, dry_run: bool) -> Option<String> {
    if format == Format::Json {
        return Some(serde_json::to_string(event).expect("an event always serializes"));
    }
    let key = event.key.as_deref().unwrap_or("-");
    match (event.operation, &event.request, &event.error) {
        (PlannedOperation::Create | PlannedOperation::Update, Some(req), _) => {
            let op = if event.operation == PlannedOperation::Create { "create" } else { "update" };
            let mut line = format!("{op} {} {key}: {} {}", event.pipeline, req.method, req.path);
            if dry_run {
                line.push_str(&format!("\n  {}", serde_json::to_string(&req.body).expect("a body always serializes")));
            }
            Some(line)
        }
        (PlannedOperation::Unchanged, _, _) if dry_run => Some(format!("unchanged {} {key}", event.pipeline)),
        (PlannedOperation::Failed, _, Some(e)) => Some(format!("failed {} {key}: {e}", event.pipeline)),
        _ => None,
    }
}
