//! Alerts: one message when a pipeline's run fails for the first time, and one when it
//! recovers, decided from the run history (so a retry storm sends one alert, not hundreds).

use std::time::Duration;

use engine::connector::SecretResolver;
use engine::executor::PipelineReport;
use engine::load::Project;
use serde_json::json;
use state::{RunRecord, SqliteStore};

/// Whether a recorded run accounted for every record.
fn succeeded(run: &RunRecord) -> bool {
    run.error.is_none() && run.counts.failed == run.counts.dead_lettered
}

/// What changed for a pipeline between its previous run and this one.
pub fn transition(current: &PipelineReport, previous: Option<&RunRecord>) -> Option<&'static str> {
    let was_ok = previous.is_none_or(succeeded);
    match (was_ok, current.succeeded()) {
        (true, false) => Some("failed"),
        (false, true) => Some("recovered"),
        _ => None,
    }
}

/// Sends the alerts this run calls for. A failure to alert is logged, never fatal: the run's own
/// outcome is already recorded.
pub fn send(
    project: &Project,
    store: &SqliteStore,
    reports: &[PipelineReport],
    secrets: &dyn SecretResolver,
    runtime: &tokio::runtime::Runtime,
) {
    let Some(alerts) = &project.config.alerts else { return };
    let mut messages = Vec::new();
    for report in reports.iter().filter(|r| r.skipped_because.is_none()) {
        // The two latest runs: this one, then the one before.
        let runs = store.recent_runs(Some(&report.pipeline), 2).unwrap_or_default();
        let previous = runs.iter().find(|r| r.run_id != report.run_id);
        if let Some(kind) = transition(report, previous) {
            let detail = report
                .error
                .clone()
                .unwrap_or_else(|| format!("{} record(s) failed", report.counts.failed - report.counts.dead_lettered));
            let text = match kind {
                "failed" => {
                    format!("ml-connector `{}`: pipeline `{}` failed: {detail}", project.config.name, report.pipeline)
                }
                _ => format!("ml-connector `{}`: pipeline `{}` recovered", project.config.name, report.pipeline),
            };
            messages.push(json!({"text": text, "project": project.config.name, "pipeline": report.pipeline, "status": kind, "run_id": report.run_id}));
        }
    }
    if messages.is_empty() {
        return;
    }
    let url = match secrets.resolve(&alerts.webhook) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("alerts: {e}");
            return;
        }
    };
    let client = connector_http::client::build_client(Duration::from_secs(10));
    runtime.block_on(async {
        for message in messages {
            match client.post(&url).json(&message).send().await {
                Ok(r) if r.status().is_success() => eprintln!("alert sent: {}", message["text"].as_str().unwrap_or("")),
                Ok(r) => eprintln!("alerts: the webhook answered {}", r.status()),
                Err(e) => eprintln!("alerts: {}", connector_http::client::failure_from_error(&e).message),
            }
        }
    });
}
