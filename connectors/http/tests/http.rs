//! The HTTP layer against a real server on 127.0.0.1:0.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use connector_http::HttpConnector;
use connector_http::client::{RetryPolicy, build_client, send_with_retry};
use engine::config::SecretRef;
use engine::connector::{ConnectContext, Connector, SecretResolver, TargetRequest, WriteOutcome};
use serde_json::{Map, Value, json};

/// Answers each request with the next scripted status; records the Authorization header.
#[derive(Clone, Default)]
struct Script {
    statuses: Arc<Vec<(u16, &'static str)>>,
    calls: Arc<AtomicUsize>,
    auth: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn handler(State(s): State<Script>, headers: HeaderMap) -> (StatusCode, HeaderMap, String) {
    let n = s.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(a) = headers.get("authorization") {
        s.auth.lock().unwrap().push(a.to_str().unwrap().to_owned());
    }
    let (status, body) = s.statuses.get(n).copied().unwrap_or((200, "{\"id\":\"last\"}"));
    let mut out = HeaderMap::new();
    if status == 429 {
        out.insert("retry-after", "0".parse().unwrap());
    }
    (StatusCode::from_u16(status).unwrap(), out, body.to_owned())
}

async fn serve(statuses: Vec<(u16, &'static str)>) -> (String, Script) {
    let script = Script { statuses: Arc::new(statuses), ..Default::default() };
    let app = Router::new().route("/{*path}", put(handler)).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, script)
}

fn fast() -> RetryPolicy {
    RetryPolicy { attempts: 3, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) }
}

#[tokio::test]
async fn throttling_and_outages_are_retried_until_success() {
    let (url, script) = serve(vec![(429, "slow down"), (503, "maintenance"), (200, "{\"id\":\"c-1\"}")]).await;
    let client = build_client(Duration::from_secs(5));
    let response = send_with_retry(|| client.put(format!("{url}/x")).json(&json!({})), fast()).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_client_error_is_permanent_and_not_retried() {
    let (url, script) = serve(vec![(400, "{\"detail\":\"email_address is invalid\"}")]).await;
    let client = build_client(Duration::from_secs(5));
    let failure = send_with_retry(|| client.put(format!("{url}/x")), fast()).await.unwrap_err();
    assert!(!failure.transient);
    assert_eq!(failure.status, Some(400));
    assert_eq!(failure.class, "http_400");
    assert!(failure.message.contains("email_address is invalid"), "{}", failure.message);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retries_give_up_with_a_transient_failure() {
    let (url, script) = serve(vec![(503, ""), (503, ""), (503, ""), (503, "")]).await;
    let client = build_client(Duration::from_secs(5));
    let failure = send_with_retry(|| client.put(format!("{url}/x")), fast()).await.unwrap_err();
    assert!(failure.transient);
    assert_eq!(failure.message, "503 Service Unavailable");
    assert_eq!(script.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_refused_connection_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = build_client(Duration::from_secs(5));
    let failure = send_with_retry(|| client.put(format!("{url}/x?apikey=SECRET")), fast()).await.unwrap_err();
    assert!(failure.transient);
    assert_eq!(failure.class, "connect");
    assert!(!failure.message.contains("SECRET"), "{}", failure.message);
}

struct OneSecret;
impl SecretResolver for OneSecret {
    fn resolve(&self, reference: &SecretRef) -> Result<String, String> {
        match reference {
            SecretRef::Secret(name) if name == "api_token" => Ok("tok-123".into()),
            other => Err(format!("{} is not set", other.describe())),
        }
    }
}

#[tokio::test]
async fn the_connector_authenticates_and_reports_the_target_id() {
    let (url, script) = serve(vec![(200, "{\"id\":42}")]).await;
    let settings: Map<String, Value> = serde_json::from_value(json!({
        "base_url": format!("{url}/api/"),
        "auth": {"type": "bearer", "token": {"secret": "api_token"}},
    }))
    .unwrap();
    let context = ConnectContext { project_dir: ".".into(), secrets: Arc::new(OneSecret) };
    let conn = HttpConnector.connect(&settings, &context).await.unwrap();
    let outcome = conn.write(&TargetRequest::new("PUT", "/contacts/7", json!({"a": 1}))).await;
    assert_eq!(outcome, WriteOutcome::Written { target_id: Some("42".into()), status: Some(200) });
    assert_eq!(script.auth.lock().unwrap().as_slice(), ["Bearer tok-123"]);
}

#[tokio::test]
async fn a_missing_secret_fails_the_connection_by_name() {
    let settings: Map<String, Value> = serde_json::from_value(json!({
        "base_url": "http://127.0.0.1:9",
        "auth": {"type": "basic", "username": "u", "password": {"secret": "other"}},
    }))
    .unwrap();
    let context = ConnectContext { project_dir: ".".into(), secrets: Arc::new(OneSecret) };
    let err = HttpConnector.connect(&settings, &context).await.err().unwrap();
    assert_eq!(err.to_string(), "vault secret `other` is not set");
}
