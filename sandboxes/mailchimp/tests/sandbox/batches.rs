//! /batches: the asynchronous lifecycle and the tar.gz results.

use std::io::Read;
use std::time::Duration;

use sandbox_mailchimp::SandboxConfig;
use serde_json::{Value, json};

use crate::common::{Env, hash};

fn config() -> SandboxConfig {
    SandboxConfig { batch_step: Duration::from_millis(30), ..SandboxConfig::default() }
}

/// Polls a batch until finished; returns every status seen and the final batch.
async fn wait(env: &Env, id: &str) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..500 {
        let (status, batch) = env.get(&format!("/batches/{id}")).await;
        assert_eq!(status, 200);
        let state = batch["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "finished" {
            return (seen, batch);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("batch {id} did not finish: {seen:?}");
}

/// Downloads and unpacks the results.
async fn results(env: &Env, url: &str) -> Vec<Value> {
    let bytes = env.client.get(url).send().await.unwrap().bytes().await.unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_ref()));
    let mut all = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        assert!(entry.path().unwrap().to_string_lossy().ends_with(".json"));
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        all.extend(serde_json::from_str::<Vec<Value>>(&text).unwrap());
    }
    all
}

#[tokio::test]
async fn batches_run_asynchronously_through_the_same_rules() {
    let env = Env::with(config()).await;
    env.put(
        &env.member_path("held@example.com"),
        json!({"email_address": "held@example.com", "status_if_new": "subscribed"}),
    )
    .await;
    env.admin.unsubscribe(&env.list, "held@example.com");
    let list = &env.list;
    let body = |value: Value| Value::String(value.to_string());
    let operations = json!([
        {"method": "PUT", "path": format!("/lists/{list}/members/{}", hash("a@example.com")), "operation_id": "put-a",
         "body": body(json!({"email_address": "a@example.com", "status_if_new": "subscribed"}))},
        {"method": "POST", "path": format!("/lists/{list}/members"), "operation_id": "post-a",
         "body": body(json!({"email_address": "a@example.com", "status": "subscribed"}))},
        {"method": "PATCH", "path": format!("/lists/{list}/members/{}", hash("held@example.com")), "operation_id": "held",
         "body": body(json!({"status": "subscribed"}))},
        {"method": "GET", "path": format!("/lists/{list}/members"), "operation_id": "list",
         "params": {"count": 1, "fields": "total_items"}},
        {"method": "POST", "path": format!("/lists/{list}/members"), "operation_id": "object-body",
         "body": {"email_address": "b@example.com", "status": "subscribed"}},
        {"method": "POST", "path": format!("/lists/{list}/members"), "operation_id": "broken", "body": "{nope"},
        {"method": "DELETE", "path": format!("/lists/{list}/members/{}", hash("a@example.com"))},
    ]);
    let (status, batch) = env.post("/batches", json!({"operations": operations})).await;
    assert_eq!(status, 200);
    assert_eq!(batch["status"], "pending");
    assert_eq!((batch["total_operations"].as_u64(), batch["finished_operations"].as_u64()), (Some(7), Some(0)));
    assert_eq!((batch["completed_at"].as_str(), batch["response_body_url"].as_str()), (Some(""), Some("")));

    let id = batch["id"].as_str().unwrap();
    let (seen, done) = wait(&env, id).await;
    assert_eq!(seen.first().map(String::as_str), Some("pending"));
    assert!(seen.iter().any(|s| s == "started" || s == "finalizing"), "{seen:?}");
    assert_eq!((done["finished_operations"].as_u64(), done["errored_operations"].as_u64()), (Some(7), Some(4)));
    assert!(!done["completed_at"].as_str().unwrap().is_empty());
    let url = done["response_body_url"].as_str().unwrap();
    assert!(url.starts_with(&env.base) && url.ends_with(".tar.gz"));

    let results = results(&env, url).await;
    let by_id = |op: &str| results.iter().find(|r| r["operation_id"] == op).unwrap().clone();
    let response = |r: &Value| serde_json::from_str::<Value>(r["response"].as_str().unwrap()).unwrap();
    assert_eq!(by_id("put-a")["status_code"], 200);
    assert_eq!(response(&by_id("put-a"))["status"], "subscribed");
    assert_eq!(
        (by_id("post-a")["status_code"].as_u64(), response(&by_id("post-a"))["title"].clone()),
        (Some(400), json!("Member Exists"))
    );
    assert_eq!(response(&by_id("held"))["title"], "Member In Compliance State");
    assert_eq!(response(&by_id("list")), json!({"total_items": 2}));
    assert_eq!(by_id("object-body")["status_code"], 400);
    assert_eq!(response(&by_id("broken"))["title"], "JSON Parse Error");
    let delete = results.iter().find(|r| r["operation_id"].is_null()).unwrap();
    assert_eq!((delete["status_code"].as_u64(), delete["response"].as_str()), (Some(204), Some("")));
    assert_eq!(env.get(&env.member_path("a@example.com")).await.1["status"], "archived");

    let (_, all) = env.get("/batches").await;
    assert_eq!(all["total_items"], 1);
    assert_eq!(env.delete(&format!("/batches/{id}")).await.0, 204);
    assert_eq!(env.get(&format!("/batches/{id}")).await.0, 404);
}

#[tokio::test]
async fn batch_bodies_are_validated_on_submit() {
    let env = Env::with(config()).await;
    let (status, body) =
        env.post("/batches", json!({"operations": [{"method": "FETCH", "path": "/x"}, {"path": "/y"}]})).await;
    assert_eq!(status, 400);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["", "operations.0.method"]);
    assert_eq!(body["errors"][0]["message"], "Required fields were not provided: operations.1.method");
    let (status, batch) = env.post("/batches", json!({"operations": []})).await;
    assert_eq!(status, 200);
    let (_, done) = wait(&env, batch["id"].as_str().unwrap()).await;
    assert!(results(&env, done["response_body_url"].as_str().unwrap()).await.is_empty());
}
