//! Memory: the peak resident memory (`VmHWM`) of a sync of 10,000 invoices next to one of
//! 100,000 (a run reads a page at a time, so it should barely grow), and of polling 50,000
//! Dynamics GP customers. Each run is a child process (`bench child`) against sandboxes living
//! in this one, so only the connector's own memory is measured.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::project::{self, Endpoints, WorkDir};
use super::report;
use super::seed::{self, BcVolume};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Invoices of the smaller sync.
    #[arg(long, default_value_t = 10_000)]
    pub small: usize,
    /// Invoices of the larger sync.
    #[arg(long, default_value_t = 100_000)]
    pub large: usize,
    /// Dynamics GP customers polled (0: skip).
    #[arg(long, default_value_t = 50_000)]
    pub gp_customers: usize,
    /// A tenth of the data.
    #[arg(long)]
    pub quick: bool,
    /// Keep the projects under this directory.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Customers and items of both syncs: the same, so only the invoices differ.
const CUSTOMERS: usize = 1_000;
const ITEMS: usize = 200;

/// What a child reported.
struct ChildRun {
    vm_hwm_kb: u64,
    elapsed: Duration,
    api_calls: u64,
    read: u64,
    ok: bool,
}

/// Runs the measurement; false when a measured run failed.
pub fn run(args: &Args) -> Result<bool, String> {
    let scale = |n: usize| if args.quick { (n / 10).max(1) } else { n };
    let work = WorkDir::new(args.dir.as_deref(), "memory")?;
    report::heading(&format!(
        "Memory: peak RSS of a Business Central sync of {} vs {} invoices (5 lines), and of polling {} GP customers",
        scale(args.small),
        scale(args.large),
        scale(args.gp_customers)
    ));
    let runtime = super::super::runtime();
    let mut runs = Vec::new();
    for invoices in [scale(args.small), scale(args.large)] {
        let volume = BcVolume { customers: CUSTOMERS, items: ITEMS, invoices, lines: 5 };
        let dir = work.path.join(format!("bc-{invoices}"));
        let mc = runtime.block_on(seed::start_mailchimp(Duration::from_millis(20)))?;
        let bc = runtime.block_on(seed::start_business_central())?;
        seed::seed_business_central(&bc.admin(), volume)?;
        let list = mc.admin().create_list("Bench audience");
        let endpoints = Endpoints {
            mailchimp: mc.base_url(),
            business_central: Some((bc.token_url(), bc.base_url())),
            dynamics_gp: None,
        };
        let yaml = project::project_yaml(&endpoints, &project::bc_vars(&list), 500, true);
        project::write(&dir, &yaml, crate::stock::BC_TO_MAILCHIMP, &project::secrets())?;
        let run = child(&dir, &[])?;
        let orders = mc.admin().orders("bench-store").len();
        if orders != invoices {
            println!("   Mailchimp holds {orders} orders, expected {invoices}");
        }
        runs.push((
            format!("BC → Mailchimp, {} invoices", report::thousands(invoices as u64)),
            run,
            orders == invoices,
        ));
        drop(mc);
        runtime.block_on(bc.shutdown());
    }
    let gp = scale(args.gp_customers);
    if args.gp_customers > 0 {
        let dir = work.path.join("gp");
        let mc = runtime.block_on(seed::start_mailchimp(Duration::from_millis(20)))?;
        let gps = runtime.block_on(seed::start_dynamics_gp())?;
        seed::seed_gp_customers(&gps.admin(), gp)?;
        let list = mc.admin().create_list("Bench audience");
        let endpoints = Endpoints {
            mailchimp: mc.base_url(),
            business_central: None,
            dynamics_gp: Some((gps.soap_url(), seed::GP_COMPANY)),
        };
        let yaml = project::project_yaml(&endpoints, &project::bc_vars(&list), 500, true);
        project::write(
            &dir,
            &yaml,
            &crate::stock::only(crate::stock::GP_TO_MAILCHIMP, &["customers-to-members.yaml"]),
            &project::secrets(),
        )?;
        let run = child(&dir, &[])?;
        let members = mc.admin().members(&list).len();
        if members != gp {
            println!("   Mailchimp holds {members} members, expected {gp}");
        }
        runs.push((format!("GP → Mailchimp, {} customers polled", report::thousands(gp as u64)), run, members == gp));
        drop(mc);
        runtime.block_on(gps.shutdown());
    }

    let mut rows = vec![vec![
        "run (child process)".to_owned(),
        "peak RSS".into(),
        "records read".into(),
        "API calls".into(),
        "time".into(),
    ]];
    for (what, run, _) in &runs {
        rows.push(vec![
            what.clone(),
            format!("{:.1} MiB", run.vm_hwm_kb as f64 / 1024.0),
            report::thousands(run.read),
            report::thousands(run.api_calls),
            report::secs(run.elapsed),
        ]);
    }
    report::table(&rows);
    let (small, large) = (&runs[0].1, &runs[1].1);
    let growth = large.vm_hwm_kb as f64 / small.vm_hwm_kb.max(1) as f64;
    report::target("peak RSS at 10× the invoices ≤ 1.25× the smaller run's", &format!("{growth:.2}×"), growth <= 1.25);
    let ok = runs.iter().all(|(_, r, exact)| r.ok && *exact);
    if !ok {
        println!("   FAILED: a measured run did not complete (see above)");
    }
    Ok(ok)
}

/// Runs `bench child` on the project and reads its report.
fn child(dir: &Path, pipelines: &[&str]) -> Result<ChildRun, String> {
    let out = Command::new(project::exe()?)
        .args(["bench", "child", "--project"])
        .arg(dir)
        .args(pipelines)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).map_err(|_| format!("the measured run printed `{text}`"))?;
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    Ok(ChildRun {
        vm_hwm_kb: n("vm_hwm_kb"),
        elapsed: Duration::from_millis(n("elapsed_ms")),
        api_calls: n("api_calls"),
        read: n("read"),
        ok: v["ok"] == true && out.status.success(),
    })
}
