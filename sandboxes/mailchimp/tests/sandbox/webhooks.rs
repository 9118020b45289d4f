//! Webhooks: validation on create, signed form-encoded deliveries, retries.

use std::time::Duration;

use sandbox_mailchimp::{SandboxConfig, signature};
use serde_json::{Value, json};

use crate::common::{Env, Receiver, eventually, field, form};

fn config() -> SandboxConfig {
    SandboxConfig { webhook_retry: Duration::from_millis(50), ..SandboxConfig::default() }
}

fn all_events() -> Value {
    json!({"subscribe": true, "unsubscribe": true, "profile": true, "cleaned": true, "upemail": true, "campaign": true})
}

async fn hook(env: &Env, url: &str, sources: Value) -> Value {
    let body = json!({"url": url, "events": all_events(), "sources": sources});
    let (status, created) = env.post(&format!("/lists/{}/webhooks", env.list), body).await;
    assert_eq!(status, 200, "{created}");
    created
}

fn verify(hit: &crate::common::Hit, secret: &str) {
    let header = hit.headers["x-mailchimp-signature"].to_str().unwrap();
    let (t, v1) = header.split_once(',').unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    assert_eq!(v1.strip_prefix("v1=").unwrap(), signature(secret, t, &hit.body));
}

#[tokio::test]
async fn create_validates_the_url_and_shows_the_secret_once() {
    let env = Env::with(config()).await;
    let receiver = Receiver::start(0, 200).await;
    let created = hook(&env, &receiver.url, json!({"user": true, "admin": true, "api": true})).await;
    let get = receiver.hits().into_iter().find(|h| h.method == "GET").expect("validation GET");
    assert_eq!(get.headers["user-agent"], "MailChimp.com WebHook Validator");
    assert_eq!(
        (created["url"].as_str(), created["signing_enabled"].as_bool()),
        (Some(receiver.url.as_str()), Some(true))
    );
    assert!(created["signing_secret"].as_str().unwrap().len() >= 16);
    assert_eq!(created["events"], all_events());

    let path = format!("/lists/{}/webhooks/{}", env.list, created["id"].as_str().unwrap());
    let (_, fetched) = env.get(&path).await;
    assert!(fetched.get("signing_secret").is_none());
    let (_, listed) = env.get(&format!("/lists/{}/webhooks", env.list)).await;
    assert_eq!(listed["total_items"], 1);
    let (_, patched) = env.patch(&path, json!({"events": {"campaign": false}})).await;
    assert_eq!(
        (patched["events"]["campaign"].as_bool(), patched["events"]["subscribe"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(env.delete(&path).await.0, 204);
    assert_eq!(env.get(&path).await.0, 404);

    let refusing = Receiver::start(0, 404).await;
    let (status, body) = env.post(&format!("/lists/{}/webhooks", env.list), json!({"url": refusing.url})).await;
    assert_eq!((status, body["title"].as_str()), (400, Some("Invalid Resource")));
    assert_eq!(body["errors"][0]["field"], "url");
    let (status, _) =
        env.post(&format!("/lists/{}/webhooks", env.list), json!({"url": "http://127.0.0.1:9/none"})).await;
    assert_eq!(status, 400);
    let (_, body) = env.post(&format!("/lists/{}/webhooks", env.list), json!({"events": {}})).await;
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: url");
}

#[tokio::test]
async fn api_and_person_changes_are_delivered_signed() {
    let env = Env::with(config()).await;
    let receiver = Receiver::start(0, 200).await;
    let created = hook(&env, &receiver.url, json!({"user": true, "admin": true, "api": true})).await;
    let secret = created["signing_secret"].as_str().unwrap();

    let path = env.member_path("w@example.com");
    let body =
        json!({"email_address": "w@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "Wanda"}});
    env.put(&path, body).await;
    eventually(5, || receiver.posts().len() == 1).await;
    let hit = &receiver.posts()[0];
    assert_eq!(hit.headers["user-agent"], "MailChimp.com");
    assert_eq!(hit.headers["content-type"], "application/x-www-form-urlencoded");
    assert!(hit.body.contains("data%5Bmerges%5D%5BFNAME%5D=Wanda"), "{}", hit.body);
    verify(hit, secret);
    let pairs = form(&hit.body);
    assert_eq!(pairs[0], ("type".into(), "subscribe".into()));
    let fired_at = field(&pairs, "fired_at").unwrap();
    assert_eq!((fired_at.len(), &fired_at[10..11]), (19, " "));
    assert_eq!(field(&pairs, "data[email]"), Some("w@example.com"));
    assert_eq!(field(&pairs, "data[list_id]"), Some(env.list.as_str()));
    assert_eq!(field(&pairs, "data[merges][EMAIL]"), Some("w@example.com"));

    // A profile change through the API, then what the person does.
    env.patch(&path, json!({"merge_fields": {"LNAME": "Maximoff"}})).await;
    env.admin.unsubscribe(&env.list, "w@example.com");
    env.admin.resubscribe(&env.list, "w@example.com");
    env.admin.edit_profile(&env.list, "w@example.com", json!({"FNAME": "W"}));
    env.admin.change_email(&env.list, "w@example.com", "w2@example.com");
    env.admin.bounce(&env.list, "w2@example.com");
    eventually(5, || receiver.posts().len() == 8).await;
    let posts: Vec<Vec<(String, String)>> = receiver.posts().iter().map(|h| form(&h.body)).collect();
    let types: Vec<&str> = posts.iter().map(|p| field(p, "type").unwrap()).collect();
    assert_eq!(types, ["subscribe", "profile", "unsubscribe", "subscribe", "profile", "upemail", "profile", "cleaned"]);
    assert_eq!(field(&posts[2], "data[action]"), Some("unsub"));
    assert_eq!(field(&posts[2], "data[reason]"), Some("manual"));
    assert_eq!(field(&posts[4], "data[merges][FNAME]"), Some("W"));
    assert_eq!(field(&posts[5], "data[old_email]"), Some("w@example.com"));
    assert_eq!(field(&posts[5], "data[new_email]"), Some("w2@example.com"));
    assert_eq!(field(&posts[7], "data[reason]"), Some("hard"));
    for hit in receiver.posts() {
        verify(&hit, secret);
    }
    let deliveries = env.admin.webhook_deliveries();
    assert_eq!(deliveries.len(), 8);
    assert!(deliveries.iter().all(|d| d.status == Some(200) && d.attempt == 1));
}

#[tokio::test]
async fn sources_filter_what_is_delivered() {
    let env = Env::with(config()).await;
    let receiver = Receiver::start(0, 200).await;
    hook(&env, &receiver.url, json!({"user": true, "admin": true, "api": false})).await;
    let path = env.member_path("s@example.com");
    env.put(&path, json!({"email_address": "s@example.com", "status_if_new": "subscribed"})).await;
    env.patch(&path, json!({"status": "unsubscribed"})).await;
    env.admin.resubscribe(&env.list, "s@example.com");
    eventually(5, || receiver.posts().len() == 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let posts = receiver.posts();
    assert_eq!(posts.len(), 1, "API writes are not echoed");
    assert_eq!(field(&form(&posts[0].body), "type"), Some("subscribe"));
}

#[tokio::test]
async fn failed_deliveries_are_retried() {
    let env = Env::with(config()).await;
    let receiver = Receiver::start(2, 200).await;
    let created = hook(&env, &receiver.url, json!({"user": true, "admin": true, "api": true})).await;
    env.put(
        &env.member_path("retry@example.com"),
        json!({"email_address": "retry@example.com", "status_if_new": "subscribed"}),
    )
    .await;
    eventually(10, || receiver.posts().len() == 3).await;
    let deliveries = env.admin.webhook_deliveries();
    let summary: Vec<(u32, Option<u16>)> = deliveries.iter().map(|d| (d.attempt, d.status)).collect();
    assert_eq!(summary, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    assert!(deliveries.iter().all(|d| d.body == deliveries[0].body && d.event == "subscribe"));
    for hit in receiver.posts() {
        verify(&hit, created["signing_secret"].as_str().unwrap());
    }
}
