//! Failpoints: named places where a test can make the process die abruptly.
//!
//! The crash-safety tests set `ML_CONNECTOR_FAILPOINT=<name>:<n>` and the process kills itself
//! with SIGKILL (no destructors, no flushing, nothing it can catch) the n-th time it passes
//! `<name>`. Without the variable a failpoint costs one relaxed atomic load.
//!
//! Names: `read-page` (a page was read, nothing of it processed), `after-write` (the target
//! accepted a write, the ledger does not know yet), `after-ledger` (the ledger knows, the audit
//! trail does not), `before-watermark` (every record is done, the watermark not yet moved).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

struct Armed {
    name: String,
    at: u64,
    passes: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("ML_CONNECTOR_FAILPOINT").ok()?;
            let (name, at) = spec.rsplit_once(':')?;
            Some(Armed { name: name.to_owned(), at: at.parse().ok()?, passes: AtomicU64::new(0) })
        })
        .as_ref()
}

/// Passes the failpoint `name`; kills the process when it is armed and its count is reached.
pub fn hit(name: &str) {
    if let Some(a) = armed()
        && a.name == name
        && a.passes.fetch_add(1, Ordering::Relaxed) + 1 == a.at
    {
        eprintln!("failpoint `{name}` reached: killing the process");
        kill_self();
    }
}

#[cfg(unix)]
fn kill_self() -> ! {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught; should delivery lag, abort is the next best thing.
    std::process::abort()
}

#[cfg(not(unix))]
fn kill_self() -> ! {
    std::process::abort()
}
