//! `ml-connector run` and `ml-connector plan`.

use std::path::PathBuf;

use clap::ValueEnum;
use engine::connector::ConnectContext;
use engine::executor::{Connections, PlannedOperation, RecordEvent, RunOptions, run_project};
use engine::state::StateStore;
use state::SqliteStore;

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
    // `plan` must change nothing: without a state database it plans against an empty one in
    // memory instead of creating the file.
    let state_path = project.state_path();
    let store =
        if dry_run && !state_path.exists() { SqliteStore::open_in_memory() } else { SqliteStore::open(&state_path) };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", state_path.display());
            return FAILED;
        }
    };
    let runtime = super::runtime();
    let registry = crate::registry::connectors();
    let secrets = super::secrets::resolver(&project);
    let context = ConnectContext { project_dir: project.dir.clone(), secrets: secrets.clone() };
    let format = args.format;
    let mut print = move |event: &RecordEvent| print_event(event, format, dry_run);
    let reports = runtime.block_on(async {
        let mut connections = Connections::new(&project, &registry, context);
        run_project(
            &project,
            &mut connections,
            &store as &dyn StateStore,
            &args.pipelines,
            RunOptions { dry_run },
            &mut print,
        )
        .await
    });

    if !dry_run {
        super::alerts::send(&project, &store, &reports, secrets.as_ref(), &runtime);
    }
    let mut ok = true;
    for r in &reports {
        let c = &r.counts;
        let verb = if dry_run { "would" } else { "did" };
        let mut line = format!(
            "{}: read {}, filtered {}, {verb} create {}, update {}; unchanged {}, failed {}",
            r.pipeline, c.read, c.filtered, c.created, c.updated, c.unchanged, c.failed
        );
        if c.dead_lettered > 0 {
            line.push_str(&format!(" ({} in dead letters)", c.dead_lettered));
        }
        if let Some(why) = &r.skipped_because {
            line = format!("{}: skipped: {why}", r.pipeline);
        }
        if let Some(e) = &r.error {
            line.push_str(&format!("\n  error: {e}"));
        }
        eprintln!("{line}");
        ok &= r.succeeded();
    }
    if ok { OK } else { FAILED }
}

pub fn print_event(event: &RecordEvent, format: Format, dry_run: bool) {
    if format == Format::Json {
        println!("{}", serde_json::to_string(event).expect("an event always serializes"));
        return;
    }
    let key = event.key.as_deref().unwrap_or("-");
    match (event.operation, &event.request, &event.error) {
        (PlannedOperation::Create | PlannedOperation::Update, Some(req), _) => {
            let op = if event.operation == PlannedOperation::Create { "create" } else { "update" };
            println!("{op} {} {key}: {} {}", event.pipeline, req.method, req.path);
            if dry_run {
                println!("  {}", serde_json::to_string(&req.body).expect("a body always serializes"));
            }
        }
        (PlannedOperation::Unchanged, _, _) if dry_run => println!("unchanged {} {key}", event.pipeline),
        (PlannedOperation::Failed, _, Some(e)) => println!("failed {} {key}: {e}", event.pipeline),
        _ => {}
    }
}
