//! The connection limit, injected faults and the request log.

use std::time::{Duration, Instant};

use axum::http::Method;
use sandbox_mailchimp::Faults;
use serde_json::{Value, json};

use crate::common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_ten_requests_in_flight_get_429_without_retry_after() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { latency_ms: 1000, ..Faults::default() });
    let requests = (0..15).map(|_| {
        let request = env.request(Method::GET, "/ping");
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let retry_after = response.headers().get("retry-after").is_some();
            (response.status().as_u16(), retry_after, response.json::<Value>().await.unwrap())
        })
    });
    let mut answers = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        answers.push(request.await.unwrap());
    }
    let ok = answers.iter().filter(|(s, _, _)| *s == 200).count();
    let throttled: Vec<&(u16, bool, Value)> = answers.iter().filter(|(s, _, _)| *s == 429).collect();
    assert_eq!(ok + throttled.len(), 15);
    assert!(ok <= 10, "{ok} served");
    assert!(throttled.len() >= 5, "{} throttled", throttled.len());
    for (_, retry_after, body) in throttled {
        assert!(!retry_after);
        assert_eq!(body["title"], "Too Many Requests");
        assert_eq!(body["detail"], "You have exceeded the limit of 10 simultaneous connections.");
    }
    let counters = env.admin.counters();
    assert!(counters.peak_concurrency <= 10 && counters.peak_concurrency >= 5, "{counters:?}");
    assert_eq!(counters.status_429 as usize, 15 - ok);
    assert_eq!(counters.in_flight, 0);
    // Once the slots are free, requests are served again.
    env.admin.set_faults(Faults::default());
    assert_eq!(env.get("/ping").await.0, 200);
}

#[tokio::test]
async fn server_errors_and_429s_can_be_injected() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { rate_5xx: 1.0, ..Faults::default() });
    let path = env.member_path("e@example.com");
    let (status, body) = env.put(&path, json!({"email_address": "e@example.com", "status_if_new": "subscribed"})).await;
    assert_eq!((status, body["title"].as_str()), (500, Some("Internal Server Error")));
    assert_eq!(
        body["detail"],
        "An unexpected internal error has occurred. Please contact Support for more information."
    );
    env.admin.set_faults(Faults { rate_429: 1.0, ..Faults::default() });
    let response = env.request(Method::GET, &path).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    env.admin.set_faults(Faults::default());
    assert!(env.admin.member(&env.list, "e@example.com").is_none(), "nothing was applied");
}

#[tokio::test]
async fn resets_close_the_connection_without_a_response() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { rate_reset: 1.0, ..Faults::default() });
    let path = env.member_path("r@example.com");
    let error = env
        .request(Method::PUT, &path)
        .json(&json!({"email_address": "r@example.com", "status_if_new": "subscribed"}))
        .send()
        .await
        .unwrap_err();
    assert!(!error.is_timeout() && error.status().is_none(), "{error:?}");
    env.admin.set_faults(Faults::default());
    assert!(env.admin.member(&env.list, "r@example.com").is_none());
    let logged = env.admin.requests();
    assert_eq!((logged[0].status, logged[0].method.as_str()), (0, "PUT"));
    assert_eq!(env.admin.counters().dropped, 1);
}

#[tokio::test]
async fn timeouts_after_commit_apply_the_write() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { rate_timeout_after_commit: 1.0, ..Faults::default() });
    let members = format!("/lists/{}/members", env.list);
    let body = json!({"email_address": "t@example.com", "status": "subscribed"});
    let started = Instant::now();
    let error =
        env.request(Method::POST, &members).timeout(Duration::from_millis(1500)).json(&body).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    env.admin.set_faults(Faults::default());
    assert_eq!(env.admin.member(&env.list, "t@example.com").unwrap()["status"], "subscribed");
    // The retry of a non-idempotent create meets the committed write.
    let (status, error) = env.post(&members, body).await;
    assert_eq!((status, error["title"].as_str()), (400, Some("Member Exists")));
    assert_eq!(env.admin.requests()[0].response.as_ref().unwrap()["status"], "subscribed");
}

#[tokio::test]
async fn slow_responses_and_latency_delay() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { rate_slow: 1.0, slow_ms: 250, latency_ms: 50, ..Faults::default() });
    let started = Instant::now();
    assert_eq!(env.get("/ping").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn the_request_log_records_what_was_sent_and_answered() {
    let env = Env::new().await;
    let path = env.member_path("log@example.com");
    env.put(&path, json!({"email_address": "log@example.com", "status_if_new": "subscribed"})).await;
    env.get(&format!("{path}?fields=status")).await;
    env.client.get(env.url("/ping")).send().await.unwrap();
    let log = env.admin.requests();
    assert_eq!(log.len(), 3);
    assert_eq!((log[0].method.as_str(), log[0].path.clone()), ("PUT", format!("/3.0{path}")));
    assert_eq!(log[0].body.as_ref().unwrap()["email_address"], "log@example.com");
    assert_eq!(log[0].response.as_ref().unwrap()["status"], "subscribed");
    assert_eq!(
        (log[1].query.as_str(), log[1].response.clone()),
        ("fields=status", Some(json!({"status": "subscribed"})))
    );
    assert_eq!((log[2].status, log[2].response.as_ref().unwrap()["title"].as_str()), (401, Some("API Key Missing")));
    let counters = env.admin.counters();
    assert_eq!((counters.total, counters.status_2xx, counters.status_4xx), (3, 2, 1));
}
