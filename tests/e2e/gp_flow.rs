//! Dynamics GP → Mailchimp through the real binary, the stock pipelines, real NTLM and both
//! sandboxes: the seeded company syncs; a change between polls is picked up once; an e-mail-only
//! change (which leaves GP's customer timestamp alone) reaches Mailchimp once; a wrong password
//! fails the run with a clear message.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandbox_dynamics_gp::{DataModificationAction, Sandbox as Gp, SandboxConfig as GpConfig};
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
    // The install tracks actions on internet addresses, as the connector's docs ask.
    let tracked = [DataModificationAction::Created, DataModificationAction::Updated, DataModificationAction::Deleted];
    gp.admin().set_action_tracking(-1, "InternetAddress", &tracked).unwrap();
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
        // GP has no webhooks: `serve` polls each stock pipeline nightly, the next night after
        // this run.
        let (code, status) = run(&dd, &["status"], "");
        assert_eq!(code, 0, "{status}");
        let nightly: Vec<&str> =
            status.lines().filter(|l| l.starts_with("  schedule: cron `0 2 * * *` (UTC); next: ")).collect();
        assert_eq!(nightly.len(), 4, "{status}");
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

    // Only an e-mail changes in GP (SY01200: the customer's ModifiedDate stays). The stock
    // pipeline keys members by the address's subscriber hash and only upserts, so the new address
    // becomes a member and the old member is left exactly as it was: Mailchimp's audience is
    // addresses, and nothing in the stock flow unsubscribes or archives one. The e-commerce
    // customer, keyed by the GP id, gets the new address.
    let (old, new) = ("baker@emporium.example", "orders@baker-new.example");
    let old_member = mc.admin().member(&list, old).expect("BAKERSEM0001 synced");
    let members_before = mc.admin().members(&list).len();
    gp.admin().advance_clock(Duration::from_secs(3600));
    let stamp = |gp: &Gp| {
        let customers = gp.admin().customers(-1);
        customers.iter().find(|c| c["CUSTNMBR"] == "BAKERSEM0001").map(|c| c["DEX_ROW_TS"].clone()).unwrap()
    };
    let before = stamp(&gp);
    gp.admin().set_email(-1, "BAKERSEM0001", None, new).unwrap();
    assert_eq!(stamp(&gp), before, "GP's customer timestamp does not move");
    let dd = d.clone();
    let (fifth, sixth) =
        tokio::task::spawn_blocking(move || (run(&dd, &["run"], ""), run(&dd, &["run"], ""))).await.unwrap();
    assert_eq!(fifth.0, 0, "{}", fifth.1);
    let line = |out: &str, pipeline: &str| {
        out.lines().find(|l| l.starts_with(&format!("{pipeline}: read "))).unwrap_or_default().to_owned()
    };
    assert!(line(&fifth.1, "customers-to-members").contains("did create 1, update 0"), "{}", fifth.1);
    // (The e-commerce pipeline also catches up with the rename above, which only
    // customers-to-members ran for.)
    assert!(fifth.1.contains("update customers-to-ecommerce BAKERSEM0001:"), "{}", fifth.1);
    let member = mc.admin().member(&list, new).expect("the new address is a member");
    assert_eq!(member["merge_fields"]["COMPANY"], "Baker's Emporium Inc.");
    assert_eq!(member["status"], old_member["status"], "status_if_new, as for any new member");
    assert_eq!(mc.admin().member(&list, old).as_ref(), Some(&old_member), "the old member is untouched");
    assert_eq!(mc.admin().members(&list).len(), members_before + 1);
    let customer = mc.admin().customers("gp-fabrikam").into_iter().find(|c| c["id"] == "BAKERSEM0001").unwrap();
    assert_eq!(customer["email_address"], new);
    assert!(
        sixth.1.lines().filter(|l| l.contains(": read ")).all(|l| l.contains("did create 0, update 0")),
        "the next run writes nothing:\n{}",
        sixth.1
    );

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
