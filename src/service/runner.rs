//! The runner of one project: starts each pipeline when it is due, one run per pipeline at a
//! time, and records what each run did (metrics, logs, alerts).
//!
//! One task per project owns the bookkeeping ([`Slot`]s) and reacts to three things: a clock
//! coming due, work arriving (webhook events stored, change notifications), and a run ending.
//! Runs themselves are tasks of their own, so pipelines of a project run concurrently, drawing
//! on the shared budgets of their connections. Because a pipeline has at most one run, and
//! that run reads the inbox in `seq` order, events about one contact are applied in the order
//! they arrived.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use engine::executor::{INTERRUPTED, PipelineReport, PlannedOperation, RecordEvent, RunOptions, run_pipeline_until};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Service;
use super::project::{Arrival, Served};
use super::schedule::{Decision, Slot, decide, dependencies};

/// Drives one project until the service shuts down and its runs have stopped.
pub async fn drive(service: Arc<Service>, served: Arc<Served>, mut arrivals: mpsc::UnboundedReceiver<Arrival>) {
    let pipelines = &served.project.pipelines;
    let deps = dependencies(pipelines);
    let now = Timestamp::now();
    let mut slots: Vec<Slot> = pipelines
        .iter()
        .map(|p| {
            let last = served.store.recent_runs(Some(&p.name), 1).ok().and_then(|mut runs| runs.pop());
            let slot = Slot::at_start(p.schedule.as_ref(), last.as_ref(), now);
            if let Some(schedule) = &p.schedule {
                let next = match slot.next {
                    Some(next) if !slot.due => next.to_string(),
                    _ => "now".to_owned(),
                };
                tracing::info!(pipeline = %p.name, %schedule, %next, "Scheduled.");
            }
            slot
        })
        .collect();

    let mut runs: JoinSet<(Timestamp, PipelineReport)> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut alerts: JoinSet<()> = JoinSet::new();
    loop {
        let stopping = service.shutdown.is_begun();
        if stopping && runs.is_empty() {
            break;
        }
        if !stopping {
            for i in 0..slots.len() {
                match decide(&slots, i, &deps[i]) {
                    Decision::Wait => {}
                    Decision::Skip(reason) => {
                        tracing::warn!(pipeline = %pipelines[i].name, %reason, "Skipped a due run.");
                        service.metrics.run_skipped(&served.name, &pipelines[i].name);
                        slots[i].skipped(pipelines[i].schedule.as_ref(), Timestamp::now());
                    }
                    Decision::Run => {
                        slots[i].due = false;
                        slots[i].running = true;
                        let span = tracing::info_span!("pipeline", pipeline = %pipelines[i].name);
                        let handle = runs.spawn(run(service.clone(), served.clone(), i).instrument(span));
                        running.insert(handle.id(), i);
                    }
                }
            }
        }
        // The next time a clock makes something due (checked at least every minute, so a
        // clock change cannot leave a schedule asleep for long).
        let wake = slots.iter().filter_map(|s| s.next).min();
        let sleep = wake.map_or(Duration::from_secs(60), |w| {
            Duration::try_from(w.duration_since(Timestamp::now())).unwrap_or_default().min(Duration::from_secs(60))
        });
        tokio::select! {
            _ = tokio::time::sleep(sleep), if !stopping => {
                let now = Timestamp::now();
                slots.iter_mut().for_each(|s| s.tick(now));
            }
            Some(arrival) = arrivals.recv(), if !stopping => {
                for (i, slot) in slots.iter_mut().enumerate() {
                    if served.wants(i, &arrival) {
                        slot.due = true;
                    }
                }
            }
            Some(done) = runs.join_next_with_id() => {
                let (id, outcome) = match done {
                    Ok((id, outcome)) => (id, Some(outcome)),
                    Err(e) => (e.id(), None),
                };
                let Some(i) = running.remove(&id) else { continue };
                let pipeline = &pipelines[i];
                let now = Timestamp::now();
                match outcome {
                    Some((started, report)) => {
                        let ok = (report.error.as_deref() != Some(INTERRUPTED)).then(|| report.succeeded());
                        slots[i].finished(pipeline.schedule.as_ref(), started, ok, now);
                        alert(&served, &report, &mut alerts);
                    }
                    None => {
                        tracing::error!(pipeline = %pipeline.name, "A run ended abnormally (a panic); it is tried again at its next time.");
                        slots[i].finished(pipeline.schedule.as_ref(), now, Some(false), now);
                    }
                }
            }
            _ = service.shutdown.begun(), if !stopping => {}
        }
    }
    while alerts.join_next().await.is_some() {}
}

/// One run of pipeline `i`, logged and counted.
async fn run(service: Arc<Service>, served: Arc<Served>, i: usize) -> (Timestamp, PipelineReport) {
    let pipeline = &served.project.pipelines[i];
    let started = Timestamp::now();
    let clock = std::time::Instant::now();
    let mut on_record = |event: &RecordEvent| {
        if event.operation == PlannedOperation::Failed {
            let key = event.key.as_deref().unwrap_or("-");
            tracing::warn!(key, error = event.error.as_deref().unwrap_or(""), "A record failed.");
        }
    };
    let report = run_pipeline_until(
        pipeline,
        &served.connections,
        served.store.as_ref(),
        RunOptions::default(),
        &service.shutdown.interrupt,
        &mut on_record,
    )
    .await;
    let seconds = clock.elapsed().as_secs_f64();
    service.metrics.run_finished(&served.name, &report, seconds, served.reads_events[i]);
    let c = &report.counts;
    let (read, created, updated, unchanged, failed) = (c.read, c.created, c.updated, c.unchanged, c.failed);
    let run_id = report.run_id.as_str();
    match &report.error {
        None => tracing::info!(run_id, read, created, updated, unchanged, failed, seconds, "Run finished."),
        Some(e) if e == INTERRUPTED => {
            tracing::info!(run_id, read, created, updated, "Run interrupted; the next start goes on.")
        }
        Some(e) => tracing::warn!(run_id, read, created, updated, failed, error = %e, "Run failed."),
    }
    (started, report)
}

/// Sends the alert a finished run calls for (first failure, recovery), in the background.
fn alert(served: &Arc<Served>, report: &PipelineReport, alerts: &mut JoinSet<()>) {
    let messages = crate::commands::alerts::messages(&served.project, &served.store, std::slice::from_ref(report));
    if messages.is_empty() {
        return;
    }
    let served = served.clone();
    alerts.spawn(
        async move {
            for outcome in crate::commands::alerts::post(&served.project, served.secrets.as_ref(), messages).await {
                match outcome {
                    Ok(text) => tracing::info!(%text, "Alert sent."),
                    Err(e) => tracing::warn!(error = %e, "Could not send an alert."),
                }
            }
        }
        .in_current_span(),
    );
}
