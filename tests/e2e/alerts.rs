//! Alerts: one when a pipeline first fails, none while it keeps failing, one when it recovers.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::Value;

type Got = Arc<Mutex<Vec<Value>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_fire_on_the_first_failure_and_on_recovery_only() {
    let got: Got = Arc::default();
    async fn hook(State(g): State<Got>, Json(v): Json<Value>) -> &'static str {
        g.lock().unwrap().push(v);
        "ok"
    }
    let app = Router::new().route("/alert", post(hook)).with_state(got.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alert", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    std::fs::create_dir_all(d.join("data")).unwrap();
    std::fs::write(
        d.join("ml-connector.yaml"),
        "version: 1\nname: alerting\nconnections:\n  files: {connector: jsonl, settings: {directory: data}}\nalerts:\n  webhook: {env: TEST_ALERT_URL}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("pipelines/p.yaml"),
        "version: 1\nname: p\nsource: {connection: files, entity: in.jsonl}\nkey: \"{{ record.id }}\"\nfields: {id: \"{{ record.id }}\"}\ntarget: {connection: files, resource: records, params: {file: out.jsonl}}\n",
    )
    .unwrap();
    let run = move |dir: std::path::PathBuf, url: String| {
        let out = Command::new(env!("CARGO_BIN_EXE_ml-connector"))
            .arg("run")
            .current_dir(dir)
            .env("TEST_ALERT_URL", url)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let go = |d: &std::path::PathBuf| {
        let (d, u, run) = (d.clone(), url.clone(), run);
        tokio::task::spawn_blocking(move || run(d, u))
    };

    // The source file is missing: the run fails, one alert.
    let (code, err) = go(&d).await.unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(got.lock().unwrap().len(), 1);
    // Still failing: no new alert.
    go(&d).await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 1);
    // Fixed: one recovery alert.
    std::fs::write(d.join("data/in.jsonl"), "{\"id\":\"1\"}\n").unwrap();
    let (code, err) = go(&d).await.unwrap();
    assert_eq!(code, Some(0), "{err}");
    let alerts = got.lock().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    assert_eq!(alerts[0]["status"], "failed");
    assert!(alerts[0]["text"].as_str().unwrap().contains("pipeline `p` failed"), "{alerts:?}");
    assert_eq!(alerts[1]["status"], "recovered");
    // Healthy again: silence.
    go(&d).await.unwrap();
    assert_eq!(got.lock().unwrap().len(), 2);
}
