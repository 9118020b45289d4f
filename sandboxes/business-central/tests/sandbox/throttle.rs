//! Per-user throttling and injected faults.

use std::time::Duration;

use sandbox_business_central::{Faults, SandboxConfig};
use serde_json::json;

use crate::common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_queue_then_429() {
    let env = Env::with(SandboxConfig { concurrency: 2, queue: 3, ..SandboxConfig::default() }).await;
    env.admin.set_faults(Faults { latency_ms: 1000, ..Faults::default() });
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, url, token) = (env.client.clone(), format!("{}/companies", env.api), env.token.clone());
        tasks.push(tokio::spawn(async move {
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            let retry_after = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry_after, r.json::<serde_json::Value>().await.unwrap())
        }));
    }
    let mut ok = 0;
    let mut throttled = 0;
    for task in tasks {
        let (status, retry_after, body) = task.await.unwrap();
        match status {
            200 => ok += 1,
            429 => {
                throttled += 1;
                assert!(!retry_after, "BC documents Retry-After for 502/503 only");
                assert_eq!(body["error"]["code"], "Application_TooManyRequests");
                assert!(body["error"]["message"].as_str().unwrap().starts_with("Too many requests reached.  Actual ("));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 5, "2 processed + 3 queued");
    assert_eq!(throttled, 15);
    assert_eq!(env.admin.peak_concurrency(), 2, "never more than `concurrency` processed at once");
    assert_eq!(env.admin.requests().iter().filter(|r| r.status == 429).count(), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults() {
    let env = Env::new().await;
    env.admin.set_faults(Faults { rate_5xx: 1.0, seed: 3, ..Faults::default() });
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let r = env.get("/companies").await;
        assert!(r.status == 503 || r.status == 504, "{}", r.status);
        if r.status == 503 {
            assert!(r.header("retry-after").is_some());
        }
        seen.insert(r.status);
    }
    assert_eq!(seen.len(), 2, "both 503 and 504");
    env.admin.set_faults(Faults { rate_429: 1.0, ..Faults::default() });
    assert_eq!(env.get("/companies").await.status, 429);
    env.admin.set_faults(Faults { rate_reset: 1.0, ..Faults::default() });
    let r = env.client.get(format!("{}/companies", env.api)).bearer_auth(&env.token).send().await;
    assert!(r.is_err(), "connection reset");
    // Applied, never answered.
    env.admin.set_faults(Faults { rate_timeout_after_commit: 1.0, ..Faults::default() });
    let r = env
        .client
        .post(format!("{}{}", env.api, env.co("customers")))
        .bearer_auth(&env.token)
        .timeout(Duration::from_millis(500))
        .json(&json!({"displayName": "Ghost"}))
        .send()
        .await;
    assert!(r.is_err());
    assert_eq!(env.admin.customers(&env.company).len(), 1, "the write happened");
    let logged = env.admin.requests().into_iter().find(|r| r.method == "POST").unwrap();
    assert_eq!(logged.status, 0);
    assert_eq!(logged.response.unwrap()["displayName"], "Ghost");
    env.admin.set_faults(Faults::default());
    assert_eq!(env.get("/companies").await.status, 200);
}
