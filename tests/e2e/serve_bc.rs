//! A change in Business Central reaches Mailchimp through the service alone: `serve` subscribes
//! to the customers entity (its upkeep, with the handshake), the Business Central sandbox sends a
//! notification when a customer changes, the service stores it and runs the `schedule: webhook`
//! pipeline, and the member's merge fields change in Mailchimp. Nobody runs `run`.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Killed, bin, blocking, run, until};
use sandbox_business_central::SandboxConfig as BcConfig;
use sandbox_mailchimp::DEFAULT_API_KEY;
use serde_json::json;

const MC_TOKEN: &str = "mc-token-0123456789abcdef";
const BC_TOKEN: &str = "bc-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_central_change_reaches_mailchimp_through_a_notification() {
    let (mc, bc, list) = common::mailchimp_and_business_central(Duration::from_millis(100)).await;
    let admin = bc.admin();
    let company = admin.company_id("CRONUS USA, Inc.").unwrap();
    let ada = admin.create_customer(
        &company,
        json!({"type": "Person", "displayName": "Ada Lovelace", "email": "ada@example.com"}),
    );
    admin.create_customer(
        &company,
        json!({"type": "Person", "displayName": "Alan Turing", "email": "alan@example.com"}),
    );

    let dir = common::project_dir(&format!(
        "version: 1\nname: notified\nconnections:\n  mailchimp:\n    connector: mailchimp\n    settings: {mc}\n  business_central:\n    connector: business-central\n    settings: {bc}\nvars: {{list_id: '{list}', status_if_new: subscribed}}\n",
        mc = common::mailchimp_settings(&mc),
        bc = common::business_central_settings(&bc),
    ));
    let d = dir.path().to_path_buf();
    let pipeline = common::stock_pipeline("business-central-to-mailchimp", "customers-to-members.yaml").replacen(
        "\nsource:",
        "\nschedule: webhook\nsource:",
        1,
    );
    std::fs::write(d.join("pipelines/customers-to-members.yaml"), pipeline).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let dd = d.clone();
    blocking(move || {
        for (name, value) in [
            ("mailchimp_api_key", DEFAULT_API_KEY.to_owned()),
            ("bc_client_secret", BcConfig::default().client_secret),
            ("mailchimp_webhook_token", MC_TOKEN.to_owned()),
            ("bc_webhook_token", BC_TOKEN.to_owned()),
            ("bc_client_state", "client-state-secret-42".to_owned()),
        ] {
            assert_eq!(run(&dd, &["secrets", "set", name], &value).0, 0);
        }
        // The initial sync, by hand.
        let (code, out) = run(&dd, &["run"], "");
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("did create 2"), "{out}");
    })
    .await;
    assert_eq!(mc.admin().member(&list, "ada@example.com").unwrap()["merge_fields"]["LNAME"], "Lovelace");

    let mut serve = Killed(
        bin()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--public-url", &base])
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(serve.0.stdout.take().unwrap());
    let line = blocking(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap();
    assert!(line.starts_with("serving on "), "{line}");
    let hook = format!("{base}/hooks/business-central/{BC_TOKEN}");
    assert!(
        until(|| admin.subscriptions().iter().any(|s| s["notificationUrl"] == hook.as_str())).await,
        "the service did not subscribe: {:?}",
        admin.subscriptions()
    );

    // Ada marries; Business Central notifies; the service runs the pipeline.
    let ada_id = ada["id"].as_str().unwrap().to_owned();
    admin.update_customer(&company, &ada_id, json!({"displayName": "Ada King"}));
    let updated =
        until(|| mc.admin().member(&list, "ada@example.com").is_some_and(|m| m["merge_fields"]["LNAME"] == "King"))
            .await;
    assert!(updated, "{:?}", mc.admin().member(&list, "ada@example.com"));
    assert!(!admin.notifications().is_empty(), "the change travelled as a notification");
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap();
    let stored = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "mlc_webhook_events_received_total{project=\"notified\",source=\"business-central\",result=\"stored\"}",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(stored.rsplit(' ').next().unwrap().parse::<u64>().unwrap() >= 1, "{stored}");

    // Exactly one write reached Mailchimp for it: the audit shows one update, of Ada's member;
    // Alan's record was read again and found unchanged.
    let dd = d.clone();
    let (code, audit) = blocking(move || run(&dd, &["audit", "--format", "jsonl"], "")).await;
    assert_eq!(code, 0, "{audit}");
    let updates: Vec<&str> = audit.lines().filter(|l| l.contains("\"operation\":\"update\"")).collect();
    assert_eq!(updates.len(), 1, "{audit}");
    let ada_member = mc.admin().member(&list, "ada@example.com").unwrap()["id"].as_str().unwrap().to_owned();
    assert!(updates[0].contains(&format!("\"target_id\":\"{ada_member}\"")), "{audit}");
    drop(serve);
}
