//! The round trip through the real binary, the stock pipelines and both sandboxes: a customer
//! synced from Business Central unsubscribes in Mailchimp → the webhook reaches `serve` → the
//! inbox → the service runs the consent pipeline, which updates Business Central → the next
//! BC → Mailchimp run neither re-subscribes the member nor writes anything (no echo loop). Then
//! an email change and a bounce, also carried by the service alone.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::{Killed, bin, blocking, run, until};
use connector_mailchimp::{MailchimpSettings, McClient, webhooks};
use engine::config::SecretRef;
use engine::connector::SecretResolver;
use sandbox_mailchimp::DEFAULT_API_KEY;
use serde_json::json;

const HOOK_TOKEN: &str = "hook-token-0123456789abcdef";

struct Fixed;
impl SecretResolver for Fixed {
    fn resolve(&self, _: &SecretRef) -> Result<String, String> {
        Ok(DEFAULT_API_KEY.to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_in_mailchimp_reaches_business_central_without_an_echo() {
    let (mc, bc, list) = common::mailchimp_and_business_central(Duration::from_millis(50)).await;
    let company = bc.admin().company_id("CRONUS USA, Inc.").unwrap();
    let ada = bc.admin().create_customer(
        &company,
        json!({"type": "Person", "displayName": "Ada Lovelace", "email": "ada@example.com"}),
    );
    let ada_id = ada["id"].as_str().unwrap().to_owned();

    let dir = common::project_dir(&format!(
        "version: 1\nname: round-trip\nconnections:\n  events: {{connector: inbox}}\n  mailchimp:\n    connector: mailchimp\n    settings: {mc}\n  business_central:\n    connector: business-central\n    settings: {bc}\nvars: {{list_id: {list}, status_if_new: subscribed, consent_entity: contoso/marketing/v1.0/customerConsents}}\n",
        mc = common::mailchimp_settings(&mc),
        bc = common::business_central_settings(&bc),
    ));
    let d = dir.path().to_path_buf();
    std::fs::write(
        d.join("pipelines/customers-to-members.yaml"),
        common::stock_pipeline("business-central-to-mailchimp", "customers-to-members.yaml"),
    )
    .unwrap();
    for f in ["consent.yaml", "email-changes.yaml"] {
        std::fs::write(d.join("pipelines").join(f), common::stock_pipeline("mailchimp-to-business-central", f))
            .unwrap();
    }
    let dd = d.clone();
    blocking(move || {
        assert_eq!(run(&dd, &["secrets", "set", "mailchimp_api_key"], DEFAULT_API_KEY).0, 0);
        assert_eq!(run(&dd, &["secrets", "set", "bc_client_secret"], "bc-secret").0, 0);
        assert_eq!(run(&dd, &["secrets", "set", "mailchimp_webhook_token"], HOOK_TOKEN).0, 0);
        let (code, out) = run(&dd, &["validate"], "");
        assert_eq!(code, 0, "{out}");
    })
    .await;

    // 1. BC → Mailchimp: Ada becomes a subscribed member.
    let dd = d.clone();
    let (code, out) = blocking(move || run(&dd, &["run", "customers-to-members"], "")).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("did create 1"), "{out}");
    assert_eq!(mc.admin().member(&list, "ada@example.com").unwrap()["status"], "subscribed");

    // 2. The service receives Mailchimp's webhooks.
    let mut serve = Killed(
        bin()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(&d)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(serve.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("serving on ").unwrap_or_else(|| panic!("{line}")).to_owned();
    let settings: MailchimpSettings =
        serde_json::from_value(json!({"auth": {"type": "api_key", "key": {"secret": "k"}}, "base_url": mc.base_url()}))
            .unwrap();
    let client = McClient::connect(&settings, &Fixed).await.unwrap();
    webhooks::register(
        &client,
        &list,
        &format!("{base}/hooks/mailchimp/{HOOK_TOKEN}"),
        &["subscribe", "unsubscribe", "profile", "cleaned", "upemail"],
    )
    .await
    .unwrap();
    // A forged delivery (wrong token) is refused without detail.
    let forged = reqwest::Client::new()
        .post(format!("{base}/hooks/mailchimp/wrong-token"))
        .body("type=unsubscribe&data[email]=ada@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 404);

    // 3. Ada unsubscribes in Mailchimp → the event is in the inbox.
    mc.admin().unsubscribe(&list, "ada@example.com");
    let inbox = inbox::Inbox::open(&d.join(inbox::DEFAULT_PATH)).unwrap();
    for _ in 0..100 {
        if inbox.count("mailchimp").unwrap() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(inbox.count("mailchimp").unwrap(), 1, "the delivery was stored");

    // 4. Nobody runs anything: the service runs the inbox-driven consent pipeline, which writes
    //    the opt-out to Business Central.
    // (A new customer's consent is already `false` with a blank status: wait for the status.)
    let opted_out =
        until(|| bc.admin().consent(&company, &ada_id).is_some_and(|c| c["consentStatus"] == "Opted_x0020_Out")).await;
    assert!(opted_out, "serve did not bring the unsubscribe to Business Central");
    let consent = bc.admin().consent(&company, &ada_id).unwrap();
    assert_eq!(consent["marketingConsent"], false, "{consent}");

    // 5. No echo: BC's customer changed (consent), the next BC → Mailchimp run writes nothing and
    //    Ada stays unsubscribed.
    let dd = d.clone();
    let (code, out) = blocking(move || run(&dd, &["run", "customers-to-members"], "")).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("did create 0, update 0"), "{out}");
    assert_eq!(mc.admin().member(&list, "ada@example.com").unwrap()["status"], "unsubscribed");

    // 6. An email change in Mailchimp reaches BC; a re-subscription then a bounce on the new
    //    address end flagged and opted out.
    mc.admin().change_email(&list, "ada@example.com", "ada.king@example.com");
    let moved =
        until(|| bc.admin().customer(&company, &ada_id).is_some_and(|c| c["email"] == "ada.king@example.com")).await;
    assert!(moved, "serve did not bring the email change to Business Central");

    mc.admin().resubscribe(&list, "ada.king@example.com");
    mc.admin().bounce(&list, "ada.king@example.com");
    let flagged = until(|| {
        bc.admin().consent(&company, &ada_id).is_some_and(|c| c["bounced"] == true && c["marketingConsent"] == false)
    })
    .await;
    assert!(flagged, "{:?}", bc.admin().consent(&company, &ada_id));
    // The whole history went through the inbox once each: nothing left to process.
    assert!(inbox.count("mailchimp").unwrap() >= 4);
    drop(serve);
}
