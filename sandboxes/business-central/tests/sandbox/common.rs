//! Helpers: a sandbox with a token and a client, and a tiny webhook receiver.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use reqwest::{Client, Method};
use sandbox_business_central::{Admin, Sandbox, SandboxConfig};
use serde_json::Value;

/// A running sandbox, its admin handle, a client, a token and the default company.
pub struct Env {
    pub sandbox: Sandbox,
    pub admin: Admin,
    pub client: Client,
    /// `{base}/v2.0/{tenant}/{env}/api/v2.0`.
    pub api: String,
    pub token: String,
    pub company: String,
}

/// One response: status, headers, JSON body (Null when empty or not JSON).
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

pub fn client() -> Client {
    Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

/// Fetches a token with the default credentials.
pub async fn fetch_token(client: &Client, token_url: &str) -> String {
    let response = client
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "bc-client"),
            ("client_secret", "bc-secret"),
            ("scope", "https://api.businesscentral.dynamics.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

impl Env {
    pub async fn new() -> Env {
        Env::with(SandboxConfig::default()).await
    }

    pub async fn with(config: SandboxConfig) -> Env {
        let sandbox = Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let admin = sandbox.admin();
        let client = client();
        let token = fetch_token(&client, &sandbox.token_url()).await;
        let company = admin.company_id("CRONUS USA, Inc.").unwrap();
        Env { api: sandbox.api_base(), sandbox, admin, client, token, company }
    }

    /// Waits until the sandbox has recorded the outcome of `n` notification attempts. The
    /// receiver sees a POST before the sandbox reads the answer and schedules the retry, so a
    /// test that moves the clock right after the receiver saw it can move it too early.
    pub async fn wait_for_attempts(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let done = self.admin.notifications().iter().filter(|d| d.kind == "notification").count();
            if done >= n {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {done} of {n} notification attempts recorded");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// `{api}/companies({company})/{path}`.
    pub fn co(&self, path: &str) -> String {
        format!("/companies({})/{path}", self.company)
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Resp {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.api) };
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Resp { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: Value, if_match: Option<&str>) -> Resp {
        match if_match {
            Some(tag) => self.send(Method::PATCH, path, Some(body), &[("If-Match", tag)]).await,
            None => self.send(Method::PATCH, path, Some(body), &[]).await,
        }
    }

    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Resp {
        match if_match {
            Some(tag) => self.send(Method::DELETE, path, None, &[("If-Match", tag)]).await,
            None => self.send(Method::DELETE, path, None, &[]).await,
        }
    }

    /// Creates a customer through the admin and returns it.
    pub fn customer(&self, name: &str, email: &str) -> Value {
        let c = self.admin.create_customer(&self.company, serde_json::json!({"displayName": name, "email": email}));
        assert!(c.get("error").is_none(), "{c}");
        c
    }
}

/// How the receiver answers handshakes.
#[derive(Clone, Debug)]
pub enum Handshake {
    Echo,
    Wrong,
    Status(u16),
    Slow(Duration),
}

/// A request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Default)]
struct ReceiverState {
    handshake: Mutex<Option<Handshake>>,
    statuses: Mutex<VecDeque<u16>>,
    handshakes: Mutex<Vec<Received>>,
    notifications: Mutex<Vec<Received>>,
}

/// A webhook receiver on a local port.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new().fallback(receive).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, state }
    }

    pub fn set_handshake(&self, mode: Handshake) {
        *self.state.handshake.lock().unwrap() = Some(mode);
    }

    /// Statuses for the next notifications (then 200).
    pub fn answer(&self, statuses: &[u16]) {
        self.state.statuses.lock().unwrap().extend(statuses);
    }

    pub fn handshakes(&self) -> Vec<Received> {
        self.state.handshakes.lock().unwrap().clone()
    }

    pub fn notifications(&self) -> Vec<Received> {
        self.state.notifications.lock().unwrap().clone()
    }

    /// Waits until at least `n` notifications arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.notifications();
            if got.len() >= n || tokio::time::Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let query = query.unwrap_or_default();
    let received = Received { query: query.clone(), headers, body: String::from_utf8_lossy(&body).into_owned() };
    if let Some(token) = query.split('&').find_map(|p| p.strip_prefix("validationToken=")) {
        state.handshakes.lock().unwrap().push(received);
        let mode = state.handshake.lock().unwrap().clone().unwrap_or(Handshake::Echo);
        return match mode {
            Handshake::Echo => (StatusCode::OK, token.to_string()),
            Handshake::Wrong => (StatusCode::OK, "not-the-token".to_string()),
            Handshake::Status(s) => (StatusCode::from_u16(s).unwrap(), String::new()),
            Handshake::Slow(d) => {
                tokio::time::sleep(d).await;
                (StatusCode::OK, token.to_string())
            }
        };
    }
    state.notifications.lock().unwrap().push(received);
    let status = state.statuses.lock().unwrap().pop_front().unwrap_or(200);
    (StatusCode::from_u16(status).unwrap(), String::new())
}

/// Pages through a collection with `Prefer: odata.maxpagesize`, returning every row.
pub async fn read_all(env: &Env, first: &str, page: usize) -> (Vec<Value>, usize) {
    let mut url = first.to_string();
    let mut rows = Vec::new();
    let mut pages = 0;
    loop {
        let prefer = format!("odata.maxpagesize={page}");
        let r = env.send(Method::GET, &url, None, &[("Prefer", &prefer)]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        rows.extend(r.body["value"].as_array().unwrap().iter().cloned());
        match r.body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => return (rows, pages),
        }
    }
}
