//! List webhooks end to end: registration (the sandbox validates the URL with a GET), signed
//! form-encoded deliveries of what a person does, and no echo of our own API writes.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::get;
use common::*;
use connector_mailchimp::McClient;
use connector_mailchimp::webhooks::{self, event_record, parse_form, verify_signature};
use sandbox_mailchimp::DEFAULT_API_KEY;
use serde_json::json;

type Received = Arc<Mutex<Vec<(Option<String>, Vec<u8>)>>>;

async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    async fn post(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
        let sig = headers.get("x-mailchimp-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
        r.lock().unwrap().push((sig, body.to_vec()));
        "ok"
    }
    let app = Router::new()
        .route("/hooks/mailchimp/secret-token", get(|| async { "ok" }).post(post))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/mailchimp/secret-token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn wait_for(received: &Received, n: usize) {
    for _ in 0..100 {
        if received.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {n} deliveries, got {}", received.lock().unwrap().len());
}

#[tokio::test]
async fn person_actions_arrive_signed_and_our_own_writes_do_not_echo() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let settings: connector_mailchimp::MailchimpSettings =
        serde_json::from_value(serde_json::Value::Object(settings(&sb, json!({})))).unwrap();
    let client = McClient::connect(&settings, &Secrets([("mc_key".to_owned(), DEFAULT_API_KEY.to_owned())].into()))
        .await
        .unwrap();
    let (url, received) = receiver().await;

    let hook = webhooks::register(&client, &list, &url, &["subscribe", "unsubscribe", "profile", "cleaned", "upemail"])
        .await
        .unwrap();
    let secret = hook.signing_secret.clone().expect("the secret comes with the creation response");
    assert_eq!(webhooks::list(&client, &list).await.unwrap().len(), 1);

    // Our own write: sources.api is off, so nothing is delivered for it.
    let conn = connect(&sb).await;
    assert_written(&conn.write(&member(&list, "ada@example.com", "Ada")).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.lock().unwrap().is_empty(), "an API write echoed back");

    sb.admin().unsubscribe(&list, "ada@example.com");
    sb.admin().change_email(&list, "ada@example.com", "ada.king@example.com");
    wait_for(&received, 3).await; // unsubscribe, upemail, profile

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let events: Vec<serde_json::Value> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(sig, body)| {
            verify_signature(&secret, sig.as_deref(), body, now)
                .expect("every delivery is signed with the webhook's secret");
            assert!(verify_signature("wrong-secret", sig.as_deref(), body, now).is_err());
            event_record(&parse_form(body).unwrap()).unwrap()
        })
        .collect();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"unsubscribe") && types.contains(&"upemail"), "{types:?}");
    let unsub = events.iter().find(|e| e["type"] == "unsubscribe").unwrap();
    assert_eq!(unsub["email"], "ada@example.com");
    assert_eq!(unsub["action"], "unsub");
    let upemail = events.iter().find(|e| e["type"] == "upemail").unwrap();
    assert_eq!(upemail["old_email"], "ada@example.com");
    assert_eq!(upemail["email"], "ada.king@example.com");

    webhooks::delete(&client, &list, &hook.id).await.unwrap();
    assert!(webhooks::list(&client, &list).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_webhook_url_is_refused_at_registration() {
    let sb = sandbox().await;
    let list = sb.admin().create_list("Customers");
    let settings: connector_mailchimp::MailchimpSettings =
        serde_json::from_value(serde_json::Value::Object(settings(&sb, json!({})))).unwrap();
    let client = McClient::connect(&settings, &Secrets([("mc_key".to_owned(), DEFAULT_API_KEY.to_owned())].into()))
        .await
        .unwrap();
    let err =
        webhooks::register(&client, &list, "http://127.0.0.1:9/nothing-listens", &["unsubscribe"]).await.unwrap_err();
    assert_eq!(err.status, Some(400), "{err}");
}
