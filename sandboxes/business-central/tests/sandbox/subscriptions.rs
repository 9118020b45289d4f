//! Webhook subscriptions: handshake, batching, collection, retries, deletion, expiry, renewal.

use std::time::Duration;

use reqwest::Method;
use sandbox_business_central::SandboxConfig;
use serde_json::{Value, json};

use crate::common::{Env, Handshake, Receiver};

fn config() -> SandboxConfig {
    SandboxConfig {
        notification_delay: Duration::from_millis(300),
        token_lifetime: Duration::from_secs(30 * 24 * 3600),
        ..SandboxConfig::default()
    }
}

async fn subscribe(env: &Env, rx: &Receiver, set: &str) -> Value {
    let r = env
        .post(
            "/subscriptions",
            json!({"notificationUrl": rx.url, "resource": format!("api/v2.0/companies({})/{set}", env.company), "clientState": "s3cret"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    r.body
}

fn items(received: &crate::common::Received) -> Vec<Value> {
    received.json()["value"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_creates_subscription() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let r = env
        .post("/subscriptions", json!({"notificationUrl": rx.url, "resource": format!("/api/v2.0/companies({})/customers", env.company), "clientState": "s3cret"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let sub = &r.body;
    let id = sub["subscriptionId"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(r.header("location").unwrap(), format!("{}/subscriptions('{id}')", env.api));
    assert_eq!(sub["@odata.context"], format!("{}/$metadata#subscriptions/$entity", env.api));
    assert_eq!(sub["resource"], format!("api/v2.0/companies({})/customers", env.company));
    assert_eq!(sub["clientState"], "s3cret");
    let modified: jiff::Timestamp = sub["lastModifiedDateTime"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = sub["expirationDateTime"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.as_second() - modified.as_second(), 72 * 3600);
    assert!(
        sub["expirationDateTime"].as_str().unwrap().ends_with(":00Z")
            || sub["expirationDateTime"].as_str().unwrap().len() == 20
    );
    let handshakes = rx.handshakes();
    assert_eq!(handshakes.len(), 1);
    assert!(handshakes[0].query.starts_with("validationToken="));
    assert_eq!(handshakes[0].headers.get("clientstate").unwrap(), "s3cret");
    assert!(handshakes[0].body.is_empty());
    let r = env.get("/subscriptions").await;
    assert_eq!(r.body["value"].as_array().unwrap().len(), 1);
    let r = env.get(&format!("/subscriptions('{id}')")).await;
    assert_eq!(r.status, 200);
    assert_eq!(env.admin.notifications()[0].kind, "handshake");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_handshakes_create_nothing() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    for mode in [Handshake::Wrong, Handshake::Status(404)] {
        rx.set_handshake(mode);
        let r = env
            .post(
                "/subscriptions",
                json!({"notificationUrl": rx.url, "resource": format!("companies({})/customers", env.company)}),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(r.body["error"]["message"].as_str().unwrap().starts_with("The subscription could not be validated"));
    }
    rx.set_handshake(Handshake::Slow(Duration::from_secs(6)));
    let started = std::time::Instant::now();
    let r = env
        .post(
            "/subscriptions",
            json!({"notificationUrl": rx.url, "resource": format!("companies({})/customers", env.company)}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        started.elapsed() < Duration::from_secs(6) && started.elapsed() >= Duration::from_secs(5),
        "5 s handshake limit"
    );
    assert!(r.body["error"]["message"].as_str().unwrap().contains("5 seconds"));
    assert!(env.admin.subscriptions().is_empty());
    // Unsupported resources are refused before any handshake.
    rx.set_handshake(Handshake::Echo);
    let before = rx.handshakes().len();
    for resource in [
        format!("api/v2.0/companies({})/salesInvoiceLines", env.company),
        "api/v2.0/companies(00000000-0000-0000-0000-0000000000aa)/customers".to_string(),
        format!("api/contoso/marketing/v1.0/companies({})/customerConsents", env.company),
        format!("api/v2.0/companies({})/customers(00000000-0000-0000-0000-0000000000aa)", env.company),
    ] {
        let r = env.post("/subscriptions", json!({"notificationUrl": rx.url, "resource": resource})).await;
        assert_eq!(r.status, 400, "{resource}: {}", r.body);
    }
    assert_eq!(rx.handshakes().len(), before);
    let r = env.post("/subscriptions", json!({"resource": format!("companies({})/customers", env.company)})).await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_are_batched_after_the_delay() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let existing = env.customer("Existing", "e@example.com");
    let sub = subscribe(&env, &rx, "customers").await;
    let created = env.customer("Newcomer", "n@example.com");
    let id = created["id"].as_str().unwrap();
    env.admin.update_customer(&env.company, id, json!({"phoneNumber": "1"}));
    env.admin.update_customer(&env.company, id, json!({"phoneNumber": "2"}));
    env.admin.update_customer(&env.company, existing["id"].as_str().unwrap(), json!({"city": "Seattle"}));
    env.admin.update_customer(&env.company, existing["id"].as_str().unwrap(), json!({"city": "Seattle"}));
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(rx.notifications().is_empty(), "nothing before the delay");
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let post = &got[0];
    assert_eq!(post.headers.get("content-type").unwrap(), "application/json");
    let request_id = post.headers.get("clientrequestid").unwrap();
    assert_eq!(post.headers.get("x-ms-correlation-id").unwrap(), request_id);
    let value = items(post);
    let summary: Vec<(String, String)> = value
        .iter()
        .map(|n| (n["changeType"].as_str().unwrap().into(), n["resource"].as_str().unwrap().into()))
        .collect();
    let base = format!("api/v2.0/companies({})/customers", env.company);
    assert_eq!(
        summary,
        [
            ("created".to_string(), format!("{base}({id})")),
            ("updated".to_string(), format!("{base}({id})")),
            ("updated".to_string(), format!("{base}({})", existing["id"].as_str().unwrap())),
        ],
        "updates collapse; created then updated stay two; a null update notifies nobody"
    );
    let n = &value[0];
    assert_eq!(n["subscriptionId"], sub["subscriptionId"]);
    assert_eq!(n["clientState"], "s3cret");
    assert_eq!(n["expirationDateTime"], sub["expirationDateTime"]);
    assert!(n["lastModifiedDateTime"].as_str().unwrap().ends_with('Z'));
    assert_eq!(n.as_object().unwrap().len(), 6);
    // The pointer resolves once prefixed with the environment's base URL.
    let pointer = format!(
        "{}/v2.0/{}/production/{}",
        env.sandbox.base_url(),
        "00000000-0000-0000-0000-000000000001",
        n["resource"].as_str().unwrap()
    );
    assert_eq!(env.send(Method::GET, &pointer, None, &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.notifications().len(), 1);
    // A delete is a pointer to a 404.
    env.admin.update_customer(&env.company, id, json!({"phoneNumber": "3"}));
    assert_eq!(env.delete(&format!("{}({id})", env.co("customers")), None).await.status, 204);
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let kinds: Vec<Value> = items(&got[1]).iter().map(|n| n["changeType"].clone()).collect();
    assert_eq!(kinds, [json!("updated"), json!("deleted")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_changes_become_one_collection_notification() {
    let env = Env::with(SandboxConfig { collection_threshold: 3, ..config() }).await;
    let rx = Receiver::start().await;
    let customers: Vec<Value> = (0..5).map(|i| env.customer(&format!("C{i}"), "c@example.com")).collect();
    subscribe(&env, &rx, "customers").await;
    for c in &customers {
        env.admin.update_customer(&env.company, c["id"].as_str().unwrap(), json!({"city": "Oslo"}));
    }
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let value = items(&got[0]);
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["changeType"], "collection");
    let resource = value[0]["resource"].as_str().unwrap();
    let prefix = format!("api/v2.0/companies({})/customers?$filter=lastModifiedDateTime%20gt%20", env.company);
    assert!(resource.starts_with(&prefix), "{resource}");
    // The filter (first change − 50 ms) finds every changed row.
    let url = format!("{}/v2.0/00000000-0000-0000-0000-000000000001/production/{resource}", env.sandbox.base_url());
    let r = env.send(Method::GET, &url, None, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["value"].as_array().unwrap().len(), 5);
    // With a delete in the batch, the bare collection URL.
    for c in &customers[..4] {
        env.admin.update_customer(&env.company, c["id"].as_str().unwrap(), json!({"city": "Bergen"}));
    }
    assert_eq!(
        env.delete(&format!("{}({})", env.co("customers"), customers[4]["id"].as_str().unwrap()), None).await.status,
        204
    );
    let got = rx.wait_for(2, Duration::from_secs(5)).await;
    let value = items(&got[1]);
    assert_eq!(value[0]["changeType"], "collection");
    assert_eq!(value[0]["resource"], format!("api/v2.0/companies({})/customers", env.company));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retryable_failures_are_retried_on_the_ladder() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let sub = subscribe(&env, &rx, "items").await;
    rx.answer(&[503, 429]);
    let item = env.admin.create_item(&env.company, json!({"displayName": "Lamp"}));
    rx.wait_for(1, Duration::from_secs(5)).await;
    env.wait_for_attempts(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.notifications().len(), 1, "the retry waits a (virtual) minute");
    env.admin.advance_clock(Duration::from_secs(61));
    rx.wait_for(2, Duration::from_secs(5)).await;
    env.wait_for_attempts(2).await;
    env.admin.advance_clock(Duration::from_secs(61));
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3);
    for post in &got {
        let value = items(post);
        assert_eq!(
            value[0]["resource"],
            format!("api/v2.0/companies({})/items({})", env.company, item["id"].as_str().unwrap())
        );
    }
    let attempts: Vec<(u32, Option<u16>)> =
        env.admin.notifications().iter().filter(|d| d.kind == "notification").map(|d| (d.attempt, d.status)).collect();
    assert_eq!(attempts, [(1, Some(503)), (2, Some(429)), (3, Some(200))]);
    assert_eq!(env.admin.subscriptions().len(), 1);
    assert_eq!(env.admin.subscriptions()[0]["subscriptionId"], sub["subscriptionId"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_failures_delete_the_subscription() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    subscribe(&env, &rx, "items").await;
    rx.answer(&[500, 500, 500, 500, 500, 500]);
    env.admin.create_item(&env.company, json!({"displayName": "Lamp"}));
    let ladder = [1u64, 1, 10, 100, 1000];
    rx.wait_for(1, Duration::from_secs(5)).await;
    for (i, minutes) in ladder.iter().enumerate() {
        env.wait_for_attempts(i + 1).await;
        assert_eq!(env.admin.subscriptions().len(), 1, "still there after {} failures", i + 1);
        env.admin.advance_clock(Duration::from_secs(minutes * 60 + 1));
        rx.wait_for(i + 2, Duration::from_secs(5)).await;
    }
    env.wait_for_attempts(6).await;
    assert_eq!(rx.notifications().len(), 6);
    assert!(env.admin.subscriptions().is_empty(), "the sixth failure deletes it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_retryable_answer_deletes_every_subscription_on_the_url() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let other = Receiver::start().await;
    subscribe(&env, &rx, "customers").await;
    subscribe(&env, &rx, "items").await;
    subscribe(&env, &other, "customers").await;
    rx.answer(&[410]);
    env.customer("Gone", "g@example.com");
    env.admin.create_item(&env.company, json!({"displayName": "Lamp"}));
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(items(&got[0]).len(), 2, "one POST per notificationUrl for both subscriptions");
    other.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let left = env.admin.subscriptions();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["notificationUrl"], other.url);
    env.customer("Again", "a@example.com");
    other.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(rx.notifications().len(), 1, "nothing more for the deleted subscriptions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_expiry_and_delete() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let sub = subscribe(&env, &rx, "customers").await;
    let id = sub["subscriptionId"].as_str().unwrap().to_string();
    let path = format!("/subscriptions('{id}')");
    env.admin.advance_clock(Duration::from_secs(2 * 24 * 3600));
    let r = env.patch(&path, json!({"clientState": "renewed"}), None).await;
    assert_eq!(r.status, 400, "If-Match required");
    let r = env.patch(&path, json!({"clientState": "renewed"}), Some(sub["@odata.etag"].as_str().unwrap())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(rx.handshakes().len(), 2, "renewal repeats the handshake");
    let old: jiff::Timestamp = sub["expirationDateTime"].as_str().unwrap().parse().unwrap();
    let new: jiff::Timestamp = r.body["expirationDateTime"].as_str().unwrap().parse().unwrap();
    assert!(new.as_second() - old.as_second() >= 2 * 24 * 3600 - 5);
    assert_eq!(r.body["clientState"], "renewed");
    let renewed = r.body.clone();
    let r = env.patch(&path, json!({}), Some(sub["@odata.etag"].as_str().unwrap())).await;
    assert_eq!(r.status, 409, "stale etag");
    // Past the (renewed) expiry: nothing is sent, the next job purges it, PATCH cannot revive it.
    env.admin.advance_clock(Duration::from_secs(3 * 24 * 3600 + 60));
    env.customer("Late", "l@example.com");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !env.admin.subscriptions().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(env.admin.subscriptions().is_empty(), "purged by the job");
    assert!(rx.notifications().is_empty());
    let r = env.patch(&path, json!({}), Some("*")).await;
    assert_eq!(r.status, 404);
    // DELETE: quoted key and If-Match.
    let sub = subscribe(&env, &rx, "customers").await;
    let id = sub["subscriptionId"].as_str().unwrap();
    assert_eq!(env.delete(&format!("/subscriptions({id})"), Some("*")).await.status, 400);
    assert_eq!(env.delete(&format!("/subscriptions('{id}')"), None).await.status, 400);
    assert_eq!(
        env.delete(&format!("/subscriptions('{id}')"), Some(renewed["@odata.etag"].as_str().unwrap())).await.status,
        409
    );
    assert_eq!(
        env.delete(&format!("/subscriptions('{id}')"), Some(sub["@odata.etag"].as_str().unwrap())).await.status,
        204
    );
    assert!(env.admin.subscriptions().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consent_changes_notify_both_pages_of_the_customer_table() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let customer = env.customer("Contoso", "c@example.com");
    let id = customer["id"].as_str().unwrap();
    let custom = env.api.replace("/api/v2.0", "/api/contoso/marketing/v1.0");
    let r = env
        .post(
            &format!("{custom}/subscriptions"),
            json!({"notificationUrl": rx.url, "resource": format!("api/contoso/marketing/v1.0/companies({})/customerConsents", env.company)}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["resource"], format!("api/contoso/marketing/v1.0/companies({})/customerConsents", env.company));
    subscribe(&env, &rx, "customers").await;
    let consent = env.admin.consent(&env.company, id).unwrap();
    let r = env
        .patch(
            &format!("{custom}/companies({})/customerConsents({id})", env.company),
            json!({"marketingConsent": true}),
            Some(consent["@odata.etag"].as_str().unwrap()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let mut resources: Vec<String> =
        items(&got[0]).iter().map(|n| n["resource"].as_str().unwrap().to_string()).collect();
    resources.sort();
    assert_eq!(
        resources,
        [
            format!("api/contoso/marketing/v1.0/companies({})/customerConsents({id})", env.company),
            format!("api/v2.0/companies({})/customers({id})", env.company),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_notifies_an_update_with_the_same_id() {
    let env = Env::with(config()).await;
    let rx = Receiver::start().await;
    let customer = env.customer("Fabrikam", "f@example.com");
    let item = env.admin.create_item(&env.company, json!({"displayName": "Lamp", "unitPrice": 5}));
    let invoice = env.admin.create_sales_invoice(
        &env.company,
        json!({"customerId": customer["id"]}),
        vec![json!({"itemId": item["id"], "quantity": 2})],
    );
    subscribe(&env, &rx, "salesInvoices").await;
    let id = invoice["id"].as_str().unwrap();
    let posted = env.admin.post_sales_invoice(&env.company, id);
    assert_eq!(posted["id"], id);
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let value = items(&got[0]);
    assert_eq!(value.len(), 1);
    assert_eq!(value[0]["changeType"], "updated");
    assert_eq!(value[0]["resource"], format!("api/v2.0/companies({})/salesInvoices({id})", env.company));
}
