//! Alerts: one message when a pipeline's run fails for the first time, and one when it
//! recovers, decided from the run history (so a retry storm sends one alert, not hundreds).

use std::time::Duration;

use engine::connector::SecretResolver;
use engine::executor::{INTERRUPTED, PipelineReport};
use engine::load::Project;
use serde_json::{Value, json};
use state::{RunRecord, SqliteStore};

/// Whether a recorded run accounted for every record (also what the service's dependents go by).
pub fn succeeded(run: &RunRecord) -> bool {
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

/// Sends the alerts this run calls for. A failure to alert is printed, never fatal: the run's
/// own outcome is already recorded.
pub fn send(
    project: &Project,
    store: &SqliteStore,
    reports: &[PipelineReport],
    secrets: &dyn SecretResolver,
    runtime: &tokio::runtime::Runtime,
) {
    let messages = messages(project, store, reports);
    if messages.is_empty() {
        return;
    }
    for outcome in runtime.block_on(post(project, secrets, messages)) {
        match outcome {
            Ok(text) => eprintln!("alert sent: {text}"),
            Err(e) => eprintln!("alerts: {e}"),
        }
    }
}

/// The messages these reports call for: one per pipeline whose state changed. A run stopped by
/// the service shutting down ([`INTERRUPTED`]) is no change, and is not compared against either.
pub fn messages(project: &Project, store: &SqliteStore, reports: &[PipelineReport]) -> Vec<Value> {
    if project.config.alerts.is_none() {
        return Vec::new();
    }
    let mut messages = Vec::new();
    for report in reports.iter().filter(|r| r.skipped_because.is_none() && r.error.as_deref() != Some(INTERRUPTED)) {
        // This run, then the ones before it; the first of those not interrupted is the previous.
        let runs = store.recent_runs(Some(&report.pipeline), 10).unwrap_or_default();
        let previous = runs.iter().find(|r| r.run_id != report.run_id && r.error.as_deref() != Some(INTERRUPTED));
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
    messages
}

/// Posts messages to the project's alert webhook; per message, the text sent or why not.
pub async fn post(
    project: &Project,
    secrets: &dyn SecretResolver,
    messages: Vec<Value>,
) -> Vec<Result<String, String>> {
    let Some(alerts) = &project.config.alerts else { return Vec::new() };
    let url = match secrets.resolve(&alerts.webhook) {
        Ok(u) => u,
        Err(e) => return vec![Err(e)],
    };
    let client = connector_http::client::build_client(Duration::from_secs(10));
    let mut outcomes = Vec::new();
    for message in messages {
        let text = message["text"].as_str().unwrap_or("").to_owned();
        outcomes.push(match client.post(&url).json(&message).send().await {
            Ok(r) if r.status().is_success() => Ok(text),
            Ok(r) => Err(format!("the webhook answered {}", r.status())),
            Err(e) => Err(connector_http::client::failure_from_error(&e).message),
        });
    }
    outcomes
}
