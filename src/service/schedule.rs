//! Deciding when each pipeline of a project runs: the scheduler's bookkeeping, kept pure (no
//! clock, no I/O) so that its rules are unit-tested here and the runner only applies them.
//!
//! The rules:
//! - a pipeline is *due* when its clock says so ([`Schedule::next_after`] the start of its last
//!   run), when events arrive for a `webhook` pipeline, or at start-up: a timed run missed while
//!   the service was down runs once (not once per missed tick), a run that did not finish (a
//!   crash, or interrupted by a shutdown) runs again, and `webhook` pipelines run once for
//!   whatever arrived meanwhile;
//! - a pipeline never runs twice at once: work that comes due while it runs makes it run once
//!   more afterwards;
//! - a due pipeline waits while a dependency is due or running (so the dependency runs first),
//!   and is skipped, with the reason, when a dependency's last run failed.

use engine::executor::INTERRUPTED;
use engine::pipeline::Pipeline;
use engine::schedule::{Clock, Schedule};
use jiff::Timestamp;
use state::RunRecord;

/// What the scheduler knows about one pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// It should run as soon as it may.
    pub due: bool,
    pub running: bool,
    /// When its clock makes it due next (timed schedules only).
    pub next: Option<Timestamp>,
    /// Its last run failed (for its dependents).
    pub last_failed: bool,
}

impl Slot {
    /// The slot of a pipeline when the service starts, from its last recorded run.
    pub fn at_start(schedule: Option<&Schedule>, last: Option<&RunRecord>, now: Timestamp) -> Slot {
        let last_failed = last.is_some_and(|r| !crate::commands::alerts::succeeded(r));
        let mut slot = Slot { last_failed, ..Slot::default() };
        let Some(schedule) = schedule else { return slot };
        let unfinished = last.is_some_and(|r| r.finished_at.is_none() || r.error.as_deref() == Some(INTERRUPTED));
        let last_start = last.and_then(|r| r.started_at.parse::<Timestamp>().ok());
        match (schedule.clock(), last_start) {
            // Whatever arrived while the service was down.
            _ if schedule.on_events() => slot.due = true,
            _ if unfinished => slot.due = true,
            // Never ran: an interval starts now; a cron waits for its first time.
            (Some(Clock::Every(_)), None) => slot.due = true,
            (_, None) => slot.next = schedule.next_after(now),
            (_, Some(start)) => slot.next = schedule.next_after(start),
        }
        slot.tick(now);
        slot
    }

    /// Makes the slot due when its time has come.
    pub fn tick(&mut self, now: Timestamp) {
        if self.next.is_some_and(|n| n <= now) {
            self.due = true;
            self.next = None;
        }
    }

    /// Records the end of a run that started at `started`. `succeeded` is `None` for a run
    /// interrupted by a shutdown, which says nothing about the pipeline's health.
    pub fn finished(
        &mut self,
        schedule: Option<&Schedule>,
        started: Timestamp,
        succeeded: Option<bool>,
        now: Timestamp,
    ) {
        self.running = false;
        if let Some(ok) = succeeded {
            self.last_failed = !ok;
        }
        if let Some(s) = schedule.filter(|s| s.is_timed()) {
            // Counted from the start, so a run longer than its interval is followed at once
            // (once), never overlapped.
            self.next = s.next_after(started);
            self.tick(now);
        }
    }

    /// Skips this due run; a timed schedule waits for its next time from now.
    pub fn skipped(&mut self, schedule: Option<&Schedule>, now: Timestamp) {
        self.due = false;
        self.next = schedule.and_then(|s| s.next_after(now));
    }
}

/// What to do with a pipeline now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not due, running, or waiting for a dependency that is due or running.
    Wait,
    /// Due, but a dependency's last run failed.
    Skip(String),
    Run,
}

/// Each pipeline's dependencies as (name, index), for [`decide`].
pub fn dependencies(pipelines: &[Pipeline]) -> Vec<Vec<(String, usize)>> {
    pipelines
        .iter()
        .map(|p| {
            p.depends_on
                .iter()
                .filter_map(|d| pipelines.iter().position(|q| &q.name == d).map(|j| (d.clone(), j)))
                .collect()
        })
        .collect()
}

/// Decides for pipeline `i`, whose dependencies are `deps` (see [`dependencies`]).
pub fn decide(slots: &[Slot], i: usize, deps: &[(String, usize)]) -> Decision {
    let slot = &slots[i];
    if !slot.due || slot.running {
        return Decision::Wait;
    }
    if deps.iter().any(|(_, j)| slots[*j].due || slots[*j].running) {
        return Decision::Wait;
    }
    match deps.iter().find(|(_, j)| slots[*j].last_failed) {
        Some((dep, _)) => Decision::Skip(format!("the last run of dependency `{dep}` failed")),
        None => Decision::Run,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use engine::state::RunCounts;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn run(started: &str, finished: Option<&str>, error: Option<&str>) -> RunRecord {
        RunRecord {
            run_id: "r".into(),
            pipeline: "p".into(),
            started_at: started.into(),
            finished_at: finished.map(str::to_owned),
            counts: RunCounts::default(),
            error: error.map(str::to_owned),
        }
    }

    fn hourly() -> Schedule {
        Schedule::every(Duration::from_secs(3600))
    }

    #[test]
    fn a_run_missed_while_down_runs_once_on_start() {
        let now = at("2026-03-01T12:00:00Z");
        // Last run three hours ago: three ticks missed, one run due.
        let last = run("2026-03-01T09:00:00Z", Some("2026-03-01T09:01:00Z"), None);
        let mut slot = Slot::at_start(Some(&hourly()), Some(&last), now);
        assert!(slot.due);
        assert_eq!(slot.next, None);
        slot.due = false;
        slot.running = true;
        slot.finished(Some(&hourly()), now, Some(true), at("2026-03-01T12:00:05Z"));
        assert!(!slot.due, "one catch-up run, not one per missed tick");
        assert_eq!(slot.next, Some(at("2026-03-01T13:00:00Z")));
    }

    #[test]
    fn a_recent_run_waits_for_its_time_and_a_first_cron_waits_for_its_first_time() {
        let now = at("2026-03-01T12:00:00Z");
        let last = run("2026-03-01T11:30:00Z", Some("2026-03-01T11:31:00Z"), None);
        let slot = Slot::at_start(Some(&hourly()), Some(&last), now);
        assert!(!slot.due);
        assert_eq!(slot.next, Some(at("2026-03-01T12:30:00Z")));

        let month_end = Schedule::compile(&engine::config::ScheduleConfig::clock(engine::config::ClockConfig::Cron {
            expression: "0 23 L * *".into(),
            timezone: None,
        }))
        .unwrap();
        let slot = Slot::at_start(Some(&month_end), None, now);
        assert!(!slot.due);
        assert_eq!(slot.next, Some(at("2026-03-31T23:00:00Z")));
        // An interval that never ran starts at once.
        assert!(Slot::at_start(Some(&hourly()), None, now).due);
        // Without a schedule, nothing is ever due.
        assert_eq!(Slot::at_start(None, Some(&last), now), Slot::default());
    }

    #[test]
    fn an_unfinished_or_interrupted_run_runs_again_on_start_and_webhook_pipelines_catch_up() {
        let now = at("2026-03-01T12:00:00Z");
        let crashed = run("2026-03-01T11:59:00Z", None, None);
        assert!(Slot::at_start(Some(&hourly()), Some(&crashed), now).due);
        let interrupted = run("2026-03-01T11:59:00Z", Some("2026-03-01T11:59:30Z"), Some(INTERRUPTED));
        let slot = Slot::at_start(Some(&hourly()), Some(&interrupted), now);
        assert!(slot.due);
        assert!(slot.last_failed, "an interrupted run did not account for every record");
        assert!(Slot::at_start(Some(&Schedule::webhook()), None, now).due);
    }

    #[test]
    fn dependencies_that_are_due_run_first_and_a_failed_one_skips_its_dependents() {
        let due = Slot { due: true, ..Slot::default() };
        let deps = [("store".to_owned(), 0)];
        // Both due: the dependency goes first, the dependent waits.
        let slots = [due.clone(), due.clone()];
        assert_eq!(decide(&slots, 0, &[]), Decision::Run);
        assert_eq!(decide(&slots, 1, &deps), Decision::Wait);
        // The dependency running: still waiting.
        let slots = [Slot { running: true, ..Slot::default() }, due.clone()];
        assert_eq!(decide(&slots, 1, &deps), Decision::Wait);
        // Done and well: run. Done and failed: skipped with the reason.
        let slots = [Slot::default(), due.clone()];
        assert_eq!(decide(&slots, 1, &deps), Decision::Run);
        let slots = [Slot { last_failed: true, ..Slot::default() }, due.clone()];
        assert_eq!(decide(&slots, 1, &deps), Decision::Skip("the last run of dependency `store` failed".into()));
        // Running already: never a second run at once.
        let slots = [Slot { due: true, running: true, ..Slot::default() }];
        assert_eq!(decide(&slots, 0, &[]), Decision::Wait);
    }

    #[test]
    fn a_run_longer_than_its_interval_is_followed_once_never_overlapped() {
        let every = Schedule::every(Duration::from_secs(1));
        let mut slot = Slot { running: true, ..Slot::default() };
        slot.tick(at("2026-03-01T12:00:05Z"));
        slot.finished(Some(&every), at("2026-03-01T12:00:00Z"), Some(true), at("2026-03-01T12:00:05Z"));
        assert!(slot.due && !slot.running);
        // An interrupted run leaves the health as it was.
        let mut slot = Slot { running: true, last_failed: true, ..Slot::default() };
        slot.finished(Some(&Schedule::webhook()), at("2026-03-01T12:00:00Z"), None, at("2026-03-01T12:00:01Z"));
        assert!(slot.last_failed && !slot.due && slot.next.is_none());
    }

    #[test]
    fn a_webhook_pipeline_with_a_safety_poll_catches_up_on_start_and_polls_between_events() {
        let config = engine::config::ScheduleConfig {
            webhook: true,
            clock: Some(engine::config::ClockConfig::Every(engine::config::Duration::from_secs(6 * 3600))),
        };
        let both = Schedule::compile(&config).unwrap();
        let now = at("2026-03-01T12:00:00Z");
        // On start: due for whatever arrived meanwhile, even after a recent good run.
        let recent = run("2026-03-01T11:00:00Z", Some("2026-03-01T11:00:05Z"), None);
        let mut slot = Slot::at_start(Some(&both), Some(&recent), now);
        assert!(slot.due);
        // After a run (for an event, say), the poll is six hours from its start.
        slot.due = false;
        slot.running = true;
        slot.finished(Some(&both), now, Some(true), at("2026-03-01T12:00:02Z"));
        assert_eq!(slot.next, Some(at("2026-03-01T18:00:00Z")));
        slot.tick(at("2026-03-01T17:59:59Z"));
        assert!(!slot.due, "no notification, not yet time");
        slot.tick(at("2026-03-01T18:00:00Z"));
        assert!(slot.due, "no notification for six hours: the safety poll runs");
    }
}
