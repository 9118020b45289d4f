//! Run leases: at most one live run per pipeline across every process sharing the database.
//!
//! Why: `serve` runs pipelines on schedules and on webhook arrivals while an operator may start
//! `ml-connector run` or `replay` by hand; two runs of one pipeline would race on its watermark
//! and send the same writes twice. A lease names the process holding it (pid plus a token of the
//! process), and a lease whose process is gone (killed, crashed) is taken over at once, so a
//! crash never blocks the next run. Processes sharing a state database share a host (SQLite
//! needs a local file), which is what makes the pid check meaningful.

use std::sync::OnceLock;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::{Failure, SqliteStore};

/// This process: its pid and a token telling it apart from an earlier process with the same pid.
fn this_process() -> &'static (u32, String) {
    static PROCESS: OnceLock<(u32, String)> = OnceLock::new();
    PROCESS.get_or_init(|| (std::process::id(), engine::executor::new_run_id()))
}

/// Whether process `pid` is alive (a zombie, killed but not yet reaped, is not).
#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `123 (name) S …`.
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Elsewhere there is no cheap, dependable way to ask, so the holder is assumed alive; a lease
/// left by a crash is then cleared with `ml-connector state unlock`.
#[cfg(not(target_os = "linux"))]
fn alive(_pid: u32) -> bool {
    true
}

impl SqliteStore {
    /// Takes the lease of `pipeline` for `run_id`. Returns `None` when taken, or a description
    /// of the live run that holds it.
    pub(crate) fn take_lease(&self, pipeline: &str, run_id: &str) -> Result<Option<String>, engine::state::StateError> {
        let (pid, token) = this_process();
        self.with_conn("taking the run lease", |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let holder: Option<(i64, String, String, String)> = tx
                .query_row(
                    "SELECT pid, process, run_id, acquired_at FROM run_leases WHERE pipeline = ?1",
                    [pipeline],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
                )
                .optional()?;
            if let Some((held_pid, process, held_run, since)) = holder {
                let held_pid = u32::try_from(held_pid).unwrap_or(0);
                let live = if process == *token { true } else { held_pid != *pid && alive(held_pid) };
                if live {
                    return Ok(Some(format!("run {held_run} of process {held_pid}, since {since}")));
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO run_leases (pipeline, run_id, pid, process, acquired_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![pipeline, run_id, i64::from(*pid), token, jiff::Timestamp::now().to_string()],
            )?;
            tx.commit()?;
            Ok(None)
        })
    }

    /// Gives the lease back (only if `run_id` still holds it).
    pub(crate) fn release_lease(&self, pipeline: &str, run_id: &str) -> Result<(), engine::state::StateError> {
        self.with_conn("releasing the run lease", |conn| {
            conn.execute("DELETE FROM run_leases WHERE pipeline = ?1 AND run_id = ?2", params![pipeline, run_id])?;
            Ok::<_, Failure>(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_live_run_per_pipeline_and_a_dead_holder_is_taken_over() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.take_lease("orders", "r1").unwrap(), None);
        // A second run in this process while the first holds it.
        let held = store.take_lease("orders", "r2").unwrap().expect("held");
        assert!(held.contains("run r1"), "{held}");
        // Other pipelines are independent.
        assert_eq!(store.take_lease("members", "r3").unwrap(), None);
        store.release_lease("orders", "r1").unwrap();
        assert_eq!(store.take_lease("orders", "r2").unwrap(), None);
        // Releasing with a run that does not hold it changes nothing.
        store.release_lease("orders", "r1").unwrap();
        assert!(store.take_lease("orders", "r4").unwrap().is_some());

        // A lease left by a process that is gone (a killed run) is taken over.
        store
            .with_conn("test", |c| {
                c.execute("UPDATE run_leases SET pid = ?1, process = 'gone' WHERE pipeline = 'orders'", [dead_pid()])?;
                Ok::<_, Failure>(())
            })
            .unwrap();
        assert_eq!(store.take_lease("orders", "r5").unwrap(), None);
    }

    #[test]
    fn a_live_other_process_holds_its_lease() {
        let store = SqliteStore::open_in_memory().unwrap();
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        store
            .with_conn("test", |c| {
                c.execute(
                    "INSERT INTO run_leases (pipeline, run_id, pid, process, acquired_at)
                     VALUES ('orders', 'theirs', ?1, 'other', 'then')",
                    [i64::from(child.id())],
                )?;
                Ok::<_, Failure>(())
            })
            .unwrap();
        let held = store.take_lease("orders", "mine").unwrap().expect("held by the live child");
        assert!(held.contains("run theirs of process"), "{held}");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(store.take_lease("orders", "mine").unwrap(), None);
    }

    /// A pid no process has: a child that has exited and been reaped.
    fn dead_pid() -> i64 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        i64::from(pid)
    }
}
