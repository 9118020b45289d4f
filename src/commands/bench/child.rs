//! The measured process of the memory measurement (`bench child`, hidden): runs a project's
//! pipelines exactly as `ml-connector run` does and prints, as one JSON line, its peak resident
//! memory (`VmHWM`) and what the run did. A process of its own, so the sandboxes and the data
//! seeded into them (which live in the parent) are not counted.

use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use super::report;
use crate::commands::{FAILED, OK};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The project directory.
    #[arg(short, long)]
    pub project: PathBuf,
    /// Pipelines to run (all when none is named).
    pub pipelines: Vec<String>,
}

pub fn execute(args: &Args) -> u8 {
    let project = match crate::commands::load_one(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let started = Instant::now();
    let reports = match crate::commands::run::run_loaded(&project, &args.pipelines, false, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    let ok = reports.iter().all(|r| r.succeeded());
    let line = json!({
        "vm_hwm_kb": report::proc_field("/proc/self/status", "VmHWM:"),
        "elapsed_ms": started.elapsed().as_millis() as u64,
        "api_calls": engine::telemetry::api_calls(),
        "read": reports.iter().map(|r| r.counts.read).sum::<u64>(),
        "written": reports.iter().map(|r| r.counts.created + r.counts.updated).sum::<u64>(),
        "ok": ok,
    });
    println!("{line}");
    if ok { OK } else { FAILED }
}
