//! Crash recovery at random points: a Business Central → Mailchimp sync with orders (the stock
//! pipelines, both sandboxes, the real binary) is killed with SIGKILL at a point drawn from a
//! seed, either at a failpoint with a random hit count (`read-page`, `after-write`,
//! `after-ledger`, `before-watermark`: see `engine/src/failpoint.rs`) or after a random delay
//! from outside. Then it is run again, and each time:
//!
//! - Mailchimp holds exactly the expected members, store, products, e-commerce customers and
//!   orders (with totals and lines), none twice, whatever was in flight when the process died;
//! - the dead letters are exactly the bad records, with their reason;
//! - every expected record has at least one audited write (a write and its audit row are
//!   recorded in one transaction, so no kill point can lose the audit);
//! - a further run writes nothing.
//!
//! CI runs 7 points (every kind once, two from outside, one among the orders); `MLC_LONG=1`
//! runs 28; `MLC_SEED=N` replays one.

use crate::common;
use crate::reliability;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use reliability::*;

/// Small pages, so a sync has many pages and many points to die at.
const TUNING: Tuning = Tuning { timeout_seconds: 30, max_attempts: 5, page_size: 4, default_currency: Some("USD") };
/// Customers (plus a bad one and one without email), items, invoices.
const SIZE: (usize, usize, usize) = (7, 3, 9);

/// Where a run dies.
#[derive(Debug, Clone)]
enum Point {
    /// `ML_CONNECTOR_FAILPOINT=<name>:<n>`.
    Failpoint(&'static str, u64),
    /// SIGKILL from outside after this long.
    After(Duration),
}

/// The writes a full sync makes: the store, a member, product, customer per record, an order
/// per invoice; and the pages it reads at least.
fn writes_and_pages() -> (u64, u64) {
    let (customers, items, invoices) = SIZE;
    let writes = 1 + 2 * customers as u64 + items as u64 + invoices as u64;
    let per = |n: usize| n.div_ceil(TUNING.page_size) as u64;
    let pages = 1 + 2 * per(customers + 2) + per(items) + per(invoices + 1);
    (writes, pages)
}

/// The `i`-th point of a set: the kinds in turn (so every set has each), the hit count or delay
/// drawn from `rng`.
fn draw(i: usize, rng: &mut Rng, clean_run: Duration) -> Point {
    let (writes, pages) = writes_and_pages();
    let orders = SIZE.2 as u64;
    match i % 7 {
        0 => Point::Failpoint("after-write", 1 + rng.below(writes)),
        // Among the first half of the orders (the writes that must never duplicate), so that
        // some orders exist at the moment of death and some do not.
        6 => Point::Failpoint("after-write", writes - orders + 1 + rng.below(orders / 2)),
        1 => Point::Failpoint("after-ledger", 1 + rng.below(writes)),
        2 => Point::Failpoint("read-page", 1 + rng.below(pages)),
        3 => Point::Failpoint("before-watermark", 1 + rng.below(5)),
        _ => Point::After(clean_run.mul_f64(rng.range(0.05, 0.95))),
    }
}

/// What happened at one point.
#[derive(Debug)]
struct Outcome {
    killed: bool,
    /// Orders Mailchimp held when the process died.
    orders_at_death: usize,
}

/// Runs the sync once, dying at `point`; whether it died.
fn die_at(w: &BcWorld, point: &Point) -> bool {
    match point {
        Point::Failpoint(name, n) => {
            let mut command = common::bin();
            command.env("ML_CONNECTOR_FAILPOINT", format!("{name}:{n}"));
            let (code, out) = common::run_with(command, w.dir.path(), &["run"], "");
            assert!(code == -1 || code == 0, "{name}:{n}: {out}");
            code == -1
        }
        Point::After(delay) => {
            let mut child = common::bin()
                .arg("run")
                .current_dir(w.dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            // Not an assertion: the moment of death is the test's input.
            std::thread::sleep(*delay);
            let _ = child.kill();
            let status = child.wait().unwrap();
            status.signal() == Some(9)
        }
    }
}

fn crash_and_recover(seed: u64, point: Point) -> Outcome {
    let mut rng = Rng::new(seed);
    let w = BcWorld::new(TUNING);
    let co = Company::seed(&w.bca(), &w.company, SIZE.0, SIZE.1, SIZE.2, &mut rng);
    let killed = die_at(&w, &point);
    settle(&w.mc);
    let orders_at_death = w.mc.admin().orders(STORE).len();

    let runs = run_until_success(w.dir.path(), 2);
    assert_eq!(runs.runs, 1, "seed {seed}, {point:?}: the re-run after the crash succeeds at once");
    let check = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| co.check_all(&w, None)));
    if let Err(e) = check {
        eprintln!("seed {seed}, {point:?} (killed: {killed}):\n{}", runs.outputs.join("\n"));
        std::panic::resume_unwind(e);
    }
    w.mc.admin().clear_requests();
    let (code, out) = w.ml(&["run"], "");
    assert_eq!(code, 0, "{out}");
    let writes: Vec<_> = w.mc.admin().requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "seed {seed}, {point:?}: a run after recovery wrote {writes:?}");
    Outcome { killed, orders_at_death }
}

#[test]
fn a_sync_with_orders_killed_anywhere_ends_exact_after_a_rerun() {
    // How long a clean sync takes, to aim the kills from outside within it.
    let clean = {
        let mut rng = Rng::new(1);
        let w = BcWorld::new(TUNING);
        let _ = Company::seed(&w.bca(), &w.company, SIZE.0, SIZE.1, SIZE.2, &mut rng);
        let started = Instant::now();
        let (code, out) = w.ml(&["run"], "");
        assert_eq!(code, 0, "{out}");
        started.elapsed()
    };
    let seeds = seeds(0xC4A5_0001, scale(7, 28));
    let points: Vec<(u64, Point)> = seeds
        .iter()
        .enumerate()
        .map(|(i, &seed)| {
            let mut rng = Rng::new(seed ^ 0xDEAD);
            (seed, draw(i, &mut rng, clean))
        })
        .collect();
    let outcomes: Vec<(u64, Point, Outcome)> = std::thread::scope(|s| {
        let handles: Vec<_> = points
            .into_iter()
            .map(|(seed, point)| {
                let p = point.clone();
                (seed, point, s.spawn(move || crash_and_recover(seed, p)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(seed, point, h)| (seed, point, h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))))
            .collect()
    });
    let killed = outcomes.iter().filter(|(_, _, o)| o.killed).count();
    for (seed, point, o) in &outcomes {
        eprintln!("seed {seed}: {point:?}: killed {}, {} order(s) at death", o.killed, o.orders_at_death);
    }
    eprintln!("{} crash point(s), {killed} killed mid-sync (clean sync: {clean:?})", outcomes.len());
    let failpoints = outcomes.iter().filter(|(_, p, o)| matches!(p, Point::Failpoint(..)) && o.killed).count();
    assert_eq!(
        failpoints,
        outcomes.iter().filter(|(_, p, _)| matches!(p, Point::Failpoint(..))).count(),
        "every failpoint was reached"
    );
    assert!(
        outcomes.iter().any(|(_, _, o)| o.killed && o.orders_at_death > 0 && o.orders_at_death < SIZE.2),
        "at least one sync died between orders"
    );
}
