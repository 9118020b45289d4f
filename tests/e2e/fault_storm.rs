//! Fault storms: full syncs Business Central → Mailchimp and Dynamics GP → Mailchimp through the
//! real binary while the sandboxes misbehave the way the real services do: 429s, 5xx (500, 503
//! with `Retry-After`, 504, IIS's 503), connection resets, writes applied but never answered
//! (the client times out after the server committed), requests that never return, and slow
//! answers, each at 10–20 % (drawn per seed). The sync is run again until a run reports success
//! (at most 20 runs, 60 with `MLC_LONG`); then, with the faults off:
//!
//! - Mailchimp holds exactly the expected state: members with their merge fields, the store,
//!   products, e-commerce customers, orders with their totals and lines (Business Central: an
//!   independent model of the seeded company; GP: a fault-free run of the same data);
//! - nothing twice: no member, customer or order duplicated; one audited write per record;
//! - every record is written or in dead letters with its reason (the invalid email, in both
//!   pipelines that map it), nothing else;
//! - `ml-connector audit --format jsonl` has a successful write for every record Mailchimp holds
//!   and none for anything else;
//! - one more run writes nothing.
//!
//! Seeds run concurrently (the time is spent waiting on timeouts and backoff, not computing).
//! CI runs 2 seeds per flow; `MLC_LONG=1` runs 8 (BC) and 6 (GP) with more data; `MLC_SEED=N`
//! replays one.

use crate::reliability;

use std::time::Instant;

use reliability::*;
use sandbox_business_central::Faults as BcFaults;
use sandbox_dynamics_gp::Faults as GpFaults;
use sandbox_mailchimp::Faults as McFaults;
use serde_json::Value;

/// Runs of one storm before giving up.
fn max_runs() -> usize {
    scale(20, 60)
}

/// The tuning of every storm: a short timeout (a never-answered request costs a second), the
/// default attempts, pages of 16.
const STORM: Tuning = Tuning { timeout_seconds: 1, max_attempts: 5, page_size: 16, default_currency: Some("USD") };

/// A fault rate: 10–15 % in CI, 10–20 % with `MLC_LONG` (every wait is real: the connectors'
/// backoff and Business Central's `Retry-After: 5`).
fn rate(rng: &mut Rng) -> f64 {
    rng.range(0.10, if long() { 0.20 } else { 0.15 })
}

fn mc_faults(rng: &mut Rng) -> McFaults {
    McFaults {
        rate_429: rate(rng),
        rate_5xx: rate(rng),
        rate_reset: rate(rng),
        rate_timeout_after_commit: rate(rng),
        rate_slow: rate(rng),
        slow_ms: 300,
        seed: rng.next(),
        ..McFaults::default()
    }
}

/// What a storm injected and how long it took, for the report.
#[derive(Debug, Default)]
struct Report {
    runs: usize,
    /// The runs' summary lines (pipeline counts and times).
    lines: Vec<String>,
    requests: usize,
    faults: usize,
    seconds: f64,
}

/// Requests answered with a fault (throttled, server error, or no answer at all).
fn faulty(statuses: impl Iterator<Item = u16>) -> (usize, usize) {
    let all: Vec<u16> = statuses.collect();
    (all.len(), all.iter().filter(|&&s| s == 0 || s == 429 || s >= 500).count())
}

/// The Mailchimp writes logged since the last clear.
fn bc_storm(seed: u64, size: (usize, usize, usize)) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let w = BcWorld::new(STORM);
    let co = Company::seed(&w.bca(), &w.company, size.0, size.1, size.2, &mut rng);
    w.mc.admin().set_faults(mc_faults(&mut rng));
    w.bca().set_faults(BcFaults {
        rate_429: rate(&mut rng),
        rate_5xx: rate(&mut rng),
        rate_reset: rate(&mut rng),
        rate_timeout_after_commit: rate(&mut rng),
        rate_slow: rate(&mut rng),
        slow_ms: 300,
        seed: rng.next(),
        ..BcFaults::default()
    });

    let runs = run_until_success(w.dir.path(), max_runs());
    let (mc_requests, mc_faulty) = faulty(w.mc.admin().requests().into_iter().map(|r| r.status));
    let (bc_requests, bc_faulty) = faulty(w.bca().requests().into_iter().map(|r| r.status));
    w.mc.admin().set_faults(McFaults::default());
    w.bca().set_faults(BcFaults::default());
    settle(&w.mc);
    let context = format!("seed {seed}, {} run(s):\n{}", runs.runs, runs.outputs.join("\n----\n"));
    let check = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.check_all(&w, Some(1))));
    if let Err(e) = check {
        eprintln!("BC storm failed; {context}");
        std::panic::resume_unwind(e);
    }
    assert!(mc_faulty > 0 && bc_faulty > 0, "faults were injected: {context}");

    // Nothing left to do: a quiet run writes nothing.
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "seed {seed}: {out}");
    assert_eq!(mc_writes(&w.mc), vec![], "seed {seed}: a run after the storm wrote again:\n{out}");
    co.check_members(&w, &co.valid_indexes());
    co.check_orders(&w);
    Report {
        runs: runs.runs,
        lines: summary_lines(&runs),
        requests: mc_requests + bc_requests,
        faults: mc_faulty + bc_faulty,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The Mailchimp state, dead letters and audited keys a fault-free GP sync ends with.
struct GpReference {
    state: Value,
    letters: Vec<(String, String)>,
    keys: std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
}

fn letters(w: &GpWorld) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = dead_letters(w.dir.path())
        .iter()
        .map(|l| (l["pipeline"].as_str().unwrap().to_owned(), l["error"].as_str().unwrap().to_owned()))
        .collect();
    l.sort();
    l
}

fn gp_reference(extra: usize) -> GpReference {
    let w = GpWorld::new(Tuning::default(), extra);
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    let state = w.state();
    // Independently of the run: one order per GP invoice, with its amount, voided ones cancelled.
    let invoices = w.invoices();
    let orders = state["orders"].as_array().unwrap();
    let letters = letters(&w);
    // Invoices of customers without an email cannot be orders (Mailchimp requires one for a
    // new e-commerce customer): dead letters with Mailchimp's reason.
    for (pipeline, error) in &letters {
        assert_eq!(pipeline, "invoices-to-orders", "{letters:?}");
        assert!(error.contains("Required fields were not provided: customer.email_address"), "{error}");
    }
    assert_eq!(orders.len() + letters.len(), invoices.len(), "{out}");
    for o in orders {
        let number = o["id"].as_str().unwrap().strip_prefix("rm-").unwrap();
        let inv = &invoices[number];
        if inv["VOIDSTTS"].as_i64().unwrap_or(0) != 0 {
            assert_eq!(o["financial_status"], "cancelled", "{o} {inv}");
        }
        assert_eq!(o["customer"].as_str(), inv["CUSTNMBR"].as_str().map(str::trim), "{o} {inv}");
    }
    assert!(state["members"].as_array().unwrap().len() >= extra, "{out}");
    let keys = audited_writes(&audit(w.dir.path())).into_iter().map(|(p, k)| (p, k.into_keys().collect())).collect();
    GpReference { state, letters, keys }
}

fn gp_storm(seed: u64, extra: usize, reference: &GpReference) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let w = GpWorld::new(STORM, extra);
    w.mc.admin().set_faults(mc_faults(&mut rng));
    // GP is read record by record (a list, then each record by key: a hundred requests a run,
    // each of which must get through for the run to succeed), so its faults are lighter in CI.
    let gp = |rng: &mut Rng| if long() { rate(rng) } else { rng.range(0.03, 0.06) };
    w.gp.admin().set_faults(GpFaults {
        rate_500: gp(&mut rng),
        rate_503: gp(&mut rng),
        rate_reset: gp(&mut rng),
        rate_hang: gp(&mut rng),
        rate_stall: rate(&mut rng),
        stall_ms: 300,
        seed: rng.next(),
        ..GpFaults::default()
    });
    let runs = run_until_success(w.dir.path(), max_runs());
    let (mc_requests, mc_faulty) = faulty(w.mc.admin().requests().into_iter().map(|r| r.status));
    let (gp_requests, gp_faulty) =
        faulty(w.gp.admin().requests().into_iter().filter(|r| r.status != 401).map(|r| r.status));
    w.mc.admin().set_faults(McFaults::default());
    w.gp.admin().set_faults(GpFaults::default());
    settle(&w.mc);
    let context = format!("seed {seed}, {} run(s):\n{}", runs.runs, runs.outputs.join("\n----\n"));
    assert_eq!(w.state(), reference.state, "GP storm: Mailchimp differs from a fault-free sync; {context}");
    assert_eq!(letters(&w), reference.letters, "{context}");
    let writes = audited_writes(&audit(w.dir.path()));
    for (pipeline, keys) in &reference.keys {
        let got = writes.get(pipeline).cloned().unwrap_or_default();
        assert_eq!(got.keys().cloned().collect::<std::collections::BTreeSet<_>>(), *keys, "{pipeline}; {context}");
        assert!(got.values().all(|&n| n == 1), "{pipeline}: a record written twice: {got:?}; {context}");
    }
    assert!(mc_faulty > 0 && gp_faulty > 0, "faults were injected: {context}");
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "seed {seed}: {out}");
    assert_eq!(mc_writes(&w.mc), vec![], "seed {seed}: a run after the storm wrote again:\n{out}");
    Report {
        runs: runs.runs,
        lines: summary_lines(&runs),
        requests: mc_requests + gp_requests,
        faults: mc_faulty + gp_faulty,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The per-pipeline summary lines of every run, run by run.
fn summary_lines(runs: &Runs) -> Vec<String> {
    let mut lines = Vec::new();
    for (n, out) in runs.outputs.iter().enumerate() {
        lines.extend(
            out.lines()
                .filter(|l| l.contains(": read ") || l.contains(": skipped"))
                .map(|l| format!("  run {}: {l}", n + 1)),
        );
    }
    lines
}

fn summarize(flow: &str, reports: &[(u64, Report)]) {
    for (seed, r) in reports {
        for line in &r.lines {
            eprintln!("{line}");
        }
        eprintln!(
            "{flow} storm seed {seed}: {} run(s), {} requests, {} faulted, {:.1} s",
            r.runs, r.requests, r.faults, r.seconds
        );
    }
    let runs: usize = reports.iter().map(|(_, r)| r.runs).sum();
    let faults: usize = reports.iter().map(|(_, r)| r.faults).sum();
    eprintln!("{flow}: {} storm(s), {runs} run(s), {faults} faulted requests", reports.len());
}

#[test]
fn business_central_to_mailchimp_survives_a_fault_storm_exactly() {
    let size = if long() { (24, 8, 40) } else { (8, 3, 8) };
    let seeds = seeds(0xB5C0_0001, scale(2, 8));
    let reports: Vec<(u64, Report)> = std::thread::scope(|s| {
        let handles: Vec<_> = seeds.iter().map(|&seed| (seed, s.spawn(move || bc_storm(seed, size)))).collect();
        handles.into_iter().map(|(seed, h)| (seed, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))).collect()
    });
    summarize("BC → Mailchimp", &reports);
}

#[test]
fn dynamics_gp_to_mailchimp_survives_a_fault_storm_exactly() {
    let extra = if long() { 12 } else { 4 };
    let reference = gp_reference(extra);
    let seeds = seeds(0x6B5C_0001, scale(2, 6));
    let reports: Vec<(u64, Report)> = std::thread::scope(|s| {
        let reference = &reference;
        let handles: Vec<_> =
            seeds.iter().map(|&seed| (seed, s.spawn(move || gp_storm(seed, extra, reference)))).collect();
        handles.into_iter().map(|(seed, h)| (seed, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))).collect()
    });
    summarize("GP → Mailchimp", &reports);
}
