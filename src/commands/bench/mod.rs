//! `ml-connector bench`: measurements against baselines and the APIs' limits, run by hand (never
//! in CI: they take minutes and want a quiet machine), printed as a report that can be pasted
//! into `BENCHMARKS.md`.
//!
//! - `mapping` ([`mapping`]): records per second per core of the stock mappings, next to a Python
//!   Jinja2 + JSONPath baseline and jq (`benches/baselines/`), outputs compared record by record;
//! - `sync` ([`sync`]): API calls of an initial sync against the sandboxes, next to the fewest
//!   the APIs allow and to one request per record; wall time next to `calls × latency /
//!   concurrency`; the next run with nothing changed;
//! - `memory` ([`memory`]): peak RSS of a 10× larger sync, and of polling GP customers, each in a
//!   child process (`child`, hidden);
//! - `webhooks` ([`webhooks`]): events per second `serve` persists and acknowledges, and the
//!   Business Central handshake's latency under that load.
//!
//! `all` runs each in turn. The data comes from [`data`] and [`seed`] (fixed seeds), the projects
//! from [`project`], the tables from [`report`]. Exit code: 0 when every correctness check held
//! (outputs agree, syncs end exact, no acknowledged event lost), 1 otherwise; a missed target is
//! reported, not failed.

mod child;
mod data;
mod mapping;
mod memory;
mod project;
mod report;
mod seed;
mod sync;
mod webhooks;

use std::path::PathBuf;

use super::{FAILED, OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Every measurement in turn, at the sizes of the issue (a tenth with --quick).
    All {
        /// A tenth of the data everywhere.
        #[arg(long)]
        quick: bool,
        /// Keep the generated data, projects and state under this directory.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Records per second per core of the stock mappings, against Python Jinja2 and jq.
    Mapping(mapping::Args),
    /// API calls and wall time of an initial sync and of a run with nothing changed.
    Sync(sync::Args),
    /// Peak resident memory of syncs of 10× more invoices, and of polling GP customers.
    Memory(memory::Args),
    /// Webhook events per second persisted and acknowledged by `serve`.
    Webhooks(webhooks::Args),
    /// The measured process of `bench memory`.
    #[command(hide = true)]
    Child(child::Args),
}

pub fn execute(args: &Args) -> u8 {
    if let What::Child(child) = &args.what {
        return child::execute(child);
    }
    if let Err(e) = project::exe() {
        eprintln!("bench: {e}");
        return FAILED;
    }
    println!("machine: {}", report::machine());
    println!("command: {}", std::env::args().collect::<Vec<_>>().join(" "));
    let result = match &args.what {
        What::All { quick, dir } => all(*quick, dir.clone()),
        What::Mapping(a) => mapping::run(a),
        What::Sync(a) => sync::run(a),
        What::Memory(a) => memory::run(a),
        What::Webhooks(a) => webhooks::run(a),
        What::Child(_) => unreachable!("handled above"),
    };
    match result {
        Ok(true) => OK,
        Ok(false) => FAILED,
        Err(e) => {
            eprintln!("bench: {e}");
            FAILED
        }
    }
}

/// Every measurement with its defaults; all of them run even when one fails.
fn all(quick: bool, dir: Option<PathBuf>) -> Result<bool, String> {
    let mapping = mapping::Args { records: 20_000, quick, python: "python3".into(), jq: "jq".into(), dir: dir.clone() };
    let sync = sync::Args {
        customers: 10_000,
        items: 2_000,
        invoices: 20_000,
        lines: 5,
        latency_ms: 20,
        batch_step_ms: 200,
        page_size: 500,
        per_record: true,
        quick,
        dir: dir.clone(),
    };
    let memory = memory::Args { small: 10_000, large: 100_000, gp_customers: 50_000, quick, dir: dir.clone() };
    let webhooks = webhooks::Args { events: 5_000, concurrency: 16, quick, dir };
    let mut ok = true;
    let mut note = |name: &str, result: Result<bool, String>| match result {
        Ok(good) => ok &= good,
        Err(e) => {
            println!("   {name}: {e}");
            ok = false;
        }
    };
    note("mapping", mapping::run(&mapping));
    note("sync", sync::run(&sync));
    note("memory", memory::run(&memory));
    note("webhooks", webhooks::run(&webhooks));
    Ok(ok)
}
