//! Dynamics GP → Mailchimp through the real binary, the stock pipelines, real NTLM and both
//! sandboxes: the seeded company syncs; a change between polls is picked up once; a wrong
//! password fails the run with a clear message.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandbox_dynamics_gp::{Sandbox as Gp, SandboxConfig as GpConfig};
use sandbox_mailchimp::{DEFAULT_API_KEY, Sandbox as Mc, SandboxConfig as McConfig};

/// The alert receiver's URL, handed to every run of the binary.
static ALERT_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The binary with the alert receiver's URL in its environment.
fn run(dir: &Path, args: &[&str], stdin: &str) -> (i32, String) {
    let mut command = common::bin();
    command.env("GP_ALERT_URL", ALERT_URL.get().map(String::as_str).unwrap_or(""));
    common::run_with(command, dir, args, stdin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gp_customers_and_invoices_reach_mailchimp_over_ntlm() {
    let mc = Mc::start(McConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let gp = Gp::start(GpConfig::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let list = mc.admin().create_list("Fabrikam customers");
    // The alert channel: a JSON webhook receiver.
    let alerts: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let app = axum::Router::new()
        .route(
            "/alert",
            axum::routing::post(
                |axum::extract::State(a): axum::extract::State<Arc<Mutex<Vec<serde_json::Value>>>>,
                 axum::Json(v): axum::Json<serde_json::Value>| async move {
                    a.lock().unwrap().push(v);
                    "ok"
                },
            ),
        )
        .with_state(alerts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let alert_url = format!("http://{}/alert", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    std::fs::create_dir_all(d.join("pipelines")).unwrap();
    let stock = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings/dynamics-gp-to-mailchimp");
    for f in ["store.yaml", "customers-to-members.yaml", "customers-to-ecommerce.yaml", "invoices-to-orders.yaml"] {
        std::fs::copy(stock.join("pipelines").join(f), d.join("pipelines").join(f)).unwrap();
    }
    let project = std::fs::read_to_string(stock.join("ml-connector.yaml"))
        .unwrap()
        .replace("http://gp-server:48620/DynamicsGPWebServices", &gp.soap_url())
        .replace(
            "auth: {type: api_key, key: {secret: mailchimp_api_key}}",
            &format!("auth: {{type: api_key, key: {{secret: mailchimp_api_key}}}}\n      base_url: {}", mc.base_url()),
        )
        .replace("list_id: a1b2c3d4e5", &format!("list_id: {list}"))
        + "alerts:\n  webhook: {env: GP_ALERT_URL}\n";
    ALERT_URL.set(alert_url).unwrap();
    std::fs::write(d.join("ml-connector.yaml"), project).unwrap();

    let dd = d.clone();
    let (first, second) = tokio::task::spawn_blocking(move || {
        assert_eq!(run(&dd, &["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);
        assert_eq!(run(&dd, &["secrets", "set", "gp_password"], "Passw0rd!").0, 0);
        let (code, out) = run(&dd, &["check", "dynamics_gp"], "");
        assert_eq!(code, 0, "{out}");
        let first = run(&dd, &["run"], "");
        let second = run(&dd, &["run"], "");
        (first, second)
    })
    .await
    .unwrap();
    assert_eq!(first.0, 0, "{}", first.1);
    let members = mc.admin().members(&list);
    assert!(!members.is_empty(), "{}", first.1);
    assert!(!mc.admin().orders("gp-fabrikam").is_empty(), "{}", first.1);
    let statuses: Vec<String> = mc
        .admin()
        .orders("gp-fabrikam")
        .iter()
        .filter_map(|o| o["financial_status"].as_str().map(str::to_owned))
        .collect();
    assert!(statuses.iter().any(|s| s == "paid") || statuses.iter().any(|s| s == "pending"), "{statuses:?}");
    assert!(
        second.1.lines().filter(|l| l.contains(": read ")).all(|l| l.contains("did create 0, update 0")),
        "a second poll writes nothing:\n{}",
        second.1
    );

    // A change between two polls is picked up by the next poll, once.
    let customers = gp.admin().customers(-1);
    let id = customers[0]["Id"].as_str().or(customers[0]["id"].as_str()).unwrap_or_default().to_owned();
    gp.admin().advance_clock(Duration::from_secs(3600));
    gp.admin().update_customer(-1, &id, |c| c.name = format!("{} (renamed)", c.name)).unwrap();
    let dd = d.clone();
    let (third, fourth) = tokio::task::spawn_blocking(move || {
        (run(&dd, &["run", "customers-to-members"], ""), run(&dd, &["run", "customers-to-members"], ""))
    })
    .await
    .unwrap();
    assert!(third.1.contains("update 1"), "{}", third.1);
    assert!(fourth.1.contains("did create 0, update 0"), "{}", fourth.1);

    // A wrong password fails the run clearly.
    let dd = d.clone();
    let (code, out) = tokio::task::spawn_blocking(move || {
        run(&dd, &["secrets", "set", "gp_password"], "wrong");
        run(&dd, &["run", "customers-to-members"], "")
    })
    .await
    .unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.to_lowercase().contains("password") || out.contains("401"), "{out}");
    let sent = alerts.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "one alert for the first failure: {sent:?}");
    assert_eq!(sent[0]["status"], "failed");
    assert_eq!(sent[0]["pipeline"], "customers-to-members");
}
