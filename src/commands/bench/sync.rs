//! The initial sync and the run after it, against the sandboxes with their real limits: API
//! calls made (the process's telemetry and the sandboxes' request logs) next to the fewest the
//! APIs allow and to one request per record; wall time next to the lower bound `calls ×
//! latency / allowed concurrency`; and a second run with nothing changed (reads only).
//!
//! The Business Central sandbox is seeded in this process through its admin API; the stock BC →
//! Mailchimp pipelines run through `run_loaded`, exactly as `ml-connector run` runs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::executor::PipelineReport;

use super::project::{self, Endpoints, WorkDir};
use super::report;
use super::seed::{self, BcVolume};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Business Central customers (all with an e-mail: each becomes a member and an e-commerce
    /// customer).
    #[arg(long, default_value_t = 10_000)]
    pub customers: usize,
    /// Business Central items (products).
    #[arg(long, default_value_t = 2_000)]
    pub items: usize,
    /// Posted invoices (orders).
    #[arg(long, default_value_t = 20_000)]
    pub invoices: usize,
    /// Item lines per invoice.
    #[arg(long, default_value_t = 5)]
    pub lines: usize,
    /// Latency both sandboxes add to every API request, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub latency_ms: u64,
    /// The pause between the states of a Mailchimp batch in the sandbox (pending → … →
    /// finished), in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub batch_step_ms: u64,
    /// Records per page read from Business Central (the stock project's page size).
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
    /// Also run the initial sync with batch operations off (one request per e-commerce record),
    /// for the wall-time comparison.
    #[arg(long)]
    pub per_record: bool,
    /// A tenth of the data.
    #[arg(long)]
    pub quick: bool,
    /// Keep the projects (state, audit) under this directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The Mailchimp connection limit and Business Central's per-user processing limit.
const MAILCHIMP_CONCURRENCY: f64 = 10.0;
const BC_CONCURRENCY: f64 = 5.0;
/// Batch subscribe's and (at the stock page size) batch operations' records per call.
const PER_BATCH: usize = 500;
/// States a batch waits through in the sandbox, one `batch_step` each.
const BATCH_STATES: u32 = 4;

const PIPELINES: [&str; 5] =
    ["store", "customers-to-members", "items-to-products", "customers-to-ecommerce", "invoices-to-orders"];

/// Runs the measurement; false when a sync did not end exact (failures, missing records, writes
/// on a run without changes).
pub fn run(args: &Args) -> Result<bool, String> {
    let scale = |n: usize| if args.quick { (n / 10).max(1) } else { n };
    let volume = BcVolume {
        customers: scale(args.customers),
        items: scale(args.items),
        invoices: scale(args.invoices),
        lines: args.lines,
    };
    let latency = Duration::from_millis(args.latency_ms);
    let work = WorkDir::new(args.dir.as_deref(), "sync")?;
    report::heading(&format!(
        "Initial sync: {} customers, {} items, {} invoices of {} lines; {} ms per request, Mailchimp 10 connections, BC 5 in flight",
        volume.customers, volume.items, volume.invoices, volume.lines, args.latency_ms
    ));
    let runtime = super::super::runtime();
    let bc = runtime.block_on(seed::start_business_central())?;
    seed::seed_business_central(&bc.admin(), volume)?;
    bc.admin().set_faults(sandbox_business_central::Faults { latency_ms: args.latency_ms, ..Default::default() });

    let mut ok = true;
    let batched = Flow::new(&runtime, &bc, &work.path.join("batched"), args, true)?;
    let first = batched.run(&PIPELINES)?;
    ok &= first.exact(&volume, &batched);
    let minimum = Minimum::of(&volume, args.page_size, &first);
    print_calls(&first, &minimum, true);
    print_wall(&first, latency, Duration::from_millis(args.batch_step_ms));

    report::heading("The next run, nothing changed in Business Central");
    let second = batched.run(&PIPELINES)?;
    let writes = second.mailchimp.writes() + second.business_central.writes();
    let written: u64 = second.reports.iter().map(|r| r.counts.created + r.counts.updated).sum();
    ok &= writes == 0 && written == 0 && second.reports.iter().all(PipelineReport::succeeded);
    report::table(&[
        vec!["".to_owned(), "reads".into(), "writes".into(), "records read".into(), "wall time".into()],
        vec![
            "Business Central".into(),
            second.business_central.reads().to_string(),
            second.business_central.writes().to_string(),
            second.reports.iter().map(|r| r.counts.read).sum::<u64>().to_string(),
            report::secs(second.wall),
        ],
        vec!["Mailchimp".into(), second.mailchimp.reads().to_string(), second.mailchimp.writes().to_string()],
    ]);
    report::target("reads only, zero writes", &format!("{writes} write(s)"), writes == 0 && written == 0);
    drop(batched);

    if args.per_record {
        report::heading("The same initial sync with one request per e-commerce record (batch_operations: false)");
        let flow = Flow::new(&runtime, &bc, &work.path.join("per-record"), args, false)?;
        let once = flow.run(&PIPELINES)?;
        ok &= once.exact(&volume, &flow);
        // One request per record is the comparison, not a candidate for the call targets.
        print_calls(&once, &minimum, false);
        print_wall(&once, latency, Duration::ZERO);
    }
    if !ok {
        println!("   FAILED: a sync did not end exact (see above)");
    }
    runtime.block_on(bc.shutdown());
    Ok(ok)
}

/// A project against a fresh Mailchimp sandbox and the shared Business Central one.
struct Flow<'a> {
    mc: sandbox_mailchimp::Sandbox,
    bc: &'a sandbox_business_central::Sandbox,
    dir: PathBuf,
    list: String,
}

impl<'a> Flow<'a> {
    fn new(
        runtime: &tokio::runtime::Runtime,
        bc: &'a sandbox_business_central::Sandbox,
        dir: &Path,
        args: &Args,
        batch_operations: bool,
    ) -> Result<Flow<'a>, String> {
        let mc = runtime.block_on(seed::start_mailchimp(Duration::from_millis(args.batch_step_ms)))?;
        let list = mc.admin().create_list("Bench audience");
        let endpoints = Endpoints {
            mailchimp: mc.base_url(),
            business_central: Some((bc.token_url(), bc.base_url())),
            dynamics_gp: None,
        };
        let yaml = project::project_yaml(&endpoints, &project::bc_vars(&list), args.page_size, batch_operations);
        project::write(dir, &yaml, crate::stock::BC_TO_MAILCHIMP, &project::secrets())?;
        mc.admin().set_faults(sandbox_mailchimp::Faults { latency_ms: args.latency_ms, ..Default::default() });
        Ok(Flow { mc, bc, dir: dir.to_owned(), list })
    }

    /// Runs the pipelines once, in this process, and collects what it cost.
    fn run(&self, pipelines: &[&str]) -> Result<Measured, String> {
        let project = super::super::load_one(&self.dir).map_err(|_| "the bench's project is invalid".to_owned())?;
        self.mc.admin().clear_requests();
        self.bc.admin().clear_requests();
        let before = engine::telemetry::calls_by_status();
        let waited_before = waited_by_system();
        let only: Vec<String> = pipelines.iter().map(|p| (*p).to_owned()).collect();
        let started = Instant::now();
        let reports = super::super::run::run_loaded(&project, &only, false, &mut |_| {})?;
        let wall = started.elapsed();
        let mut telemetry: BTreeMap<String, u64> = BTreeMap::new();
        for ((system, status), n) in engine::telemetry::calls_by_status() {
            let was = before.get(&(system.clone(), status)).copied().unwrap_or(0);
            *telemetry.entry(system).or_default() += n - was;
        }
        telemetry.retain(|_, n| *n > 0);
        let mut waited = waited_by_system();
        for (system, seconds) in waited.iter_mut() {
            *seconds -= waited_before.get(system).copied().unwrap_or(0.0);
        }
        for r in &reports {
            println!("   {}", super::super::run::summary_line(r, false));
        }
        Ok(Measured {
            reports,
            wall,
            telemetry,
            waited,
            mailchimp: Calls::of(self.mc.admin().requests().iter().map(|r| (r.method.as_str(), r.path.as_str()))),
            business_central: Calls::of(
                self.bc.admin().requests().iter().map(|r| (r.method.as_str(), r.path.as_str())),
            ),
            mailchimp_peak: self.mc.admin().counters().peak_concurrency,
            bc_peak: self.bc.admin().peak_concurrency(),
        })
    }
}

/// What one run cost.
struct Measured {
    reports: Vec<PipelineReport>,
    wall: Duration,
    /// Calls the process counted, by system.
    telemetry: BTreeMap<String, u64>,
    /// Seconds spent waiting for answers, by system (summed over calls in parallel).
    waited: BTreeMap<String, f64>,
    /// Calls the sandboxes logged.
    mailchimp: Calls,
    business_central: Calls,
    mailchimp_peak: usize,
    bc_peak: usize,
}

impl Measured {
    /// Every pipeline succeeded and Mailchimp holds one of everything.
    fn exact(&self, volume: &BcVolume, flow: &Flow) -> bool {
        let admin = flow.mc.admin();
        let found = [
            ("members", admin.members(&flow.list).len(), volume.customers),
            ("products", admin.products("bench-store").len(), volume.items),
            ("e-commerce customers", admin.customers("bench-store").len(), volume.customers),
            ("orders", admin.orders("bench-store").len(), volume.invoices),
        ];
        let mut ok = self.reports.iter().all(PipelineReport::succeeded);
        for (what, got, want) in found {
            if got != want {
                println!("   Mailchimp holds {got} {what}, expected {want}");
                ok = false;
            }
        }
        ok
    }
}

/// Requests a sandbox logged, by kind.
#[derive(Debug, Default)]
struct Calls {
    by_kind: BTreeMap<&'static str, u64>,
}

impl Calls {
    fn of<'a>(requests: impl Iterator<Item = (&'a str, &'a str)>) -> Calls {
        let mut by_kind: BTreeMap<&'static str, u64> = BTreeMap::new();
        for (method, path) in requests {
            *by_kind.entry(kind(method, path)).or_default() += 1;
        }
        Calls { by_kind }
    }

    fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }

    fn get(&self, kind: &str) -> u64 {
        self.by_kind.get(kind).copied().unwrap_or(0)
    }

    fn reads(&self) -> u64 {
        self.by_kind.iter().filter(|(k, _)| k.starts_with("GET")).map(|(_, n)| n).sum()
    }

    fn writes(&self) -> u64 {
        self.total() - self.reads()
    }
}

/// Seconds the process has waited for each system's answers so far (the telemetry's latency
/// sums, as `serve` exports them).
fn waited_by_system() -> BTreeMap<String, f64> {
    let mut text = String::new();
    engine::telemetry::render_prometheus(&mut text);
    text.lines()
        .filter_map(|l| l.strip_prefix("mlc_api_request_duration_seconds_sum{system=\""))
        .filter_map(|l| {
            let (system, rest) = l.split_once('"')?;
            Some((system.to_owned(), rest.rsplit(' ').next()?.parse().ok()?))
        })
        .collect()
}

/// The kind of a logged request: method and the shape of its path.
fn kind(method: &str, path: &str) -> &'static str {
    let path = path.strip_prefix("/3.0").unwrap_or(path);
    let has = |s: &str| path.contains(s);
    match (method, path) {
        ("POST", "/batches") => "POST /batches (submit)",
        ("GET", p) if p.starts_with("/batches/") => "GET /batches/{id} (poll)",
        ("POST", p) if p.starts_with("/lists/") && p.matches('/').count() == 2 => "POST /lists/{id} (batch subscribe)",
        (_, p) if p.contains("/merge-fields") => {
            if method == "GET" {
                "GET merge-fields"
            } else {
                "POST merge-fields"
            }
        }
        ("PUT", p) if p.starts_with("/lists/") => "PUT member",
        ("GET", _) if has("/products") => "GET products (lookups)",
        ("PUT", _) if has("/products") => "PUT product",
        ("PUT", _) if has("/customers") && has("/ecommerce") => "PUT e-commerce customer",
        ("POST" | "PUT", _) if has("/orders") => "POST/PUT order",
        ("PATCH", _) if has("/orders") => "PATCH order",
        ("GET", p) if p.starts_with("/ecommerce/stores") && !has("/orders") => "GET store",
        ("POST" | "PATCH", p) if p.starts_with("/ecommerce/stores") => "POST/PATCH store",
        // Business Central.
        ("GET", _) if has("salesInvoices") => "GET salesInvoices pages",
        ("GET", _) if has("/customers") => "GET customers pages",
        ("GET", _) if has("/items") => "GET items pages",
        ("GET", _) if has("companies") => "GET companies",
        ("GET", _) => "GET other",
        _ => "other writes",
    }
}

/// The fewest calls the APIs allow for the sync, counted as the issue counts them: reads per
/// page, and one call per batch subscribe (500 members) and per batch operation (a page of
/// e-commerce writes).
struct Minimum {
    bc_reads: u64,
    mailchimp: u64,
    batches: u64,
    naive_mailchimp: u64,
}

impl Minimum {
    fn of(volume: &BcVolume, page_size: u32, measured: &Measured) -> Minimum {
        let pages = |n: usize| n.div_ceil(page_size as usize).max(1) as u64;
        let calls = |n: usize| n.div_ceil(PER_BATCH) as u64;
        // The company (store), customers twice (members, e-commerce customers), items, invoices;
        // plus resolving the company's name to its id once.
        let bc_reads = 1 + pages(volume.customers) * 2 + pages(volume.items) + pages(volume.invoices) + 1;
        let batches = calls(volume.items) + calls(volume.customers) + calls(volume.invoices);
        // The store (created), the merge fields the audience lacks (created), the members.
        let setup = 1 + measured.mailchimp.get("POST merge-fields");
        let mailchimp = setup + calls(volume.customers) + batches;
        let naive_mailchimp = setup + (volume.customers * 2 + volume.items + volume.invoices) as u64;
        Minimum { bc_reads, mailchimp, batches, naive_mailchimp }
    }
}

fn print_calls(m: &Measured, min: &Minimum, targets: bool) {
    println!("   calls by kind (sandbox request logs):");
    let mut rows = vec![vec!["Mailchimp /3.0".to_owned(), "calls".into()]];
    rows.extend(m.mailchimp.by_kind.iter().map(|(k, n)| vec![(*k).to_owned(), n.to_string()]));
    rows.push(vec!["Business Central API".to_owned(), "".into()]);
    rows.extend(m.business_central.by_kind.iter().map(|(k, n)| vec![(*k).to_owned(), n.to_string()]));
    report::table(&rows);
    let telemetry: Vec<String> = m.telemetry.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!("   calls counted by the process (engine::telemetry): {}", telemetry.join(", "));
    let polls = m.mailchimp.get("GET /batches/{id} (poll)");
    let results = m.telemetry.get("mailchimp_results").copied().unwrap_or(0);
    let ours = m.mailchimp.total() + m.business_central.total();
    let minimum = min.mailchimp + min.bc_reads;
    // Batch operations are asynchronous: the API needs at least one status poll per batch to
    // learn it is done (the results then come from storage outside the API).
    let protocol_minimum = minimum + min.batches;
    let naive = min.naive_mailchimp + min.bc_reads;
    report::table(&[
        vec!["".to_owned(), "Mailchimp".into(), "Business Central".into(), "total".into(), "ours ÷ it".into()],
        vec![
            "ours (sandbox logs)".into(),
            m.mailchimp.total().to_string(),
            m.business_central.total().to_string(),
            ours.to_string(),
            "".into(),
        ],
        vec![
            "minimum (a batch = 1 call)".into(),
            min.mailchimp.to_string(),
            min.bc_reads.to_string(),
            minimum.to_string(),
            report::ratio(ours as f64, minimum as f64),
        ],
        vec![
            "minimum + 1 poll per batch".into(),
            (min.mailchimp + min.batches).to_string(),
            min.bc_reads.to_string(),
            protocol_minimum.to_string(),
            report::ratio(ours as f64, protocol_minimum as f64),
        ],
        vec![
            "naive (1 request per record)".into(),
            min.naive_mailchimp.to_string(),
            min.bc_reads.to_string(),
            naive.to_string(),
            report::ratio(ours as f64, naive as f64),
        ],
    ]);
    println!(
        "   batch operations: {} submitted, {polls} status polls, {results} result downloads (outside the API)",
        m.mailchimp.get("POST /batches (submit)")
    );
    if !targets {
        return;
    }
    report::target(
        "≤ 1.1× the minimum (a batch = 1 call)",
        &report::ratio(ours as f64, minimum as f64),
        ours as f64 <= 1.1 * minimum as f64,
    );
    report::target(
        "≤ 1.1× the minimum with one status poll per batch",
        &report::ratio(ours as f64, protocol_minimum as f64),
        ours as f64 <= 1.1 * protocol_minimum as f64,
    );
}

/// Wall time next to `calls × latency / allowed concurrency` (per system, added up), and, for
/// batch operations, next to that plus the time the sandbox holds each batch in its states (one
/// batch at a time per account, as Mailchimp runs them).
fn print_wall(m: &Measured, latency: Duration, batch_step: Duration) {
    let mc = m.mailchimp.total() as f64;
    let bc = m.business_central.total() as f64;
    let bound = latency.mul_f64(mc / MAILCHIMP_CONCURRENCY + bc / BC_CONCURRENCY);
    let batches = m.mailchimp.get("POST /batches (submit)") as u32;
    let processing = batch_step * BATCH_STATES * batches;
    let mut rows = vec![
        vec!["".to_owned(), "time".into(), "wall ÷ it".into()],
        vec!["wall time".into(), report::secs(m.wall), "".into()],
        vec![
            "calls × latency / concurrency".into(),
            report::secs(bound),
            report::ratio(m.wall.as_secs_f64(), bound.as_secs_f64()),
        ],
    ];
    if batches > 0 {
        rows.push(vec![
            format!("  + batches' states ({batches} × {BATCH_STATES} × {} ms)", batch_step.as_millis()),
            report::secs(bound + processing),
            report::ratio(m.wall.as_secs_f64(), (bound + processing).as_secs_f64()),
        ]);
    }
    // The same bound with the answers' measured time (latency plus the sandboxes' own handling,
    // which the formula leaves out) instead of the injected latency alone.
    let waited = |system: &str| m.waited.get(system).copied().unwrap_or(0.0);
    let answered = Duration::from_secs_f64(
        waited("mailchimp") / MAILCHIMP_CONCURRENCY + waited("business_central") / BC_CONCURRENCY,
    );
    if batches == 0 && !answered.is_zero() {
        rows.push(vec![
            "calls × measured answer time / concurrency".into(),
            report::secs(answered),
            report::ratio(m.wall.as_secs_f64(), answered.as_secs_f64()),
        ]);
    }
    report::table(&rows);
    println!(
        "   waiting on answers: Business Central {:.1} s (its pages are read one after another: each link comes with the page before), Mailchimp {:.1} s (summed over parallel calls)",
        waited("business_central"),
        waited("mailchimp")
    );
    let per_pipeline: Vec<String> =
        m.reports.iter().map(|r| format!("{} {:.1} s", r.pipeline, r.elapsed_ms as f64 / 1000.0)).collect();
    println!("   per pipeline: {}", per_pipeline.join(", "));
    println!(
        "   peak concurrency seen: Mailchimp {} (limit 10), Business Central {} (limit 5)",
        m.mailchimp_peak, m.bc_peak
    );
    if bound.is_zero() {
        println!("   (no latency injected: no lower bound to compare with)");
        return;
    }
    let ratio = m.wall.as_secs_f64() / bound.as_secs_f64();
    report::target("wall time ≤ 1.3× calls × latency / concurrency", &format!("{ratio:.2}×"), ratio <= 1.3);
}
