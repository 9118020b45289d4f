//! Helpers: a sandbox with one audience and a client, and a tiny webhook receiver.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use md5::{Digest, Md5};
use reqwest::Client;
use sandbox_mailchimp::{Admin, DEFAULT_API_KEY, Sandbox, SandboxConfig};
use serde_json::Value;

/// A running sandbox, its admin handle, a client and one audience.
pub struct Env {
    /// Kept alive for the test (dropping it stops the server).
    #[allow(dead_code)]
    pub sandbox: Sandbox,
    pub admin: Admin,
    pub client: Client,
    pub base: String,
    pub list: String,
}

impl Env {
    pub async fn new() -> Env {
        Env::with(SandboxConfig::default()).await
    }

    pub async fn with(config: SandboxConfig) -> Env {
        let sandbox = Sandbox::start(config, "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let admin = sandbox.admin();
        let list = admin.create_list("Test audience");
        let client = Client::builder().no_proxy().timeout(Duration::from_secs(20)).build().unwrap();
        Env { base: sandbox.base_url(), sandbox, admin, client, list }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/3.0{path}", self.base)
    }

    /// A request with Bearer auth.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(DEFAULT_API_KEY)
    }

    /// Sends and returns (status, JSON body or Null).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PUT, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call(Method::DELETE, path, None).await
    }

    /// `/lists/{list}/members/{hash(email)}`.
    pub fn member_path(&self, email: &str) -> String {
        format!("/lists/{}/members/{}", self.list, hash(email))
    }
}

pub fn hash(email: &str) -> String {
    Md5::digest(email.trim().to_lowercase().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until `check` holds (or panics after `secs`).
pub async fn eventually(secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "condition not reached in {secs}s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One request a webhook receiver got.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub headers: HeaderMap,
    pub body: String,
}

struct ReceiverState {
    hits: Mutex<Vec<Hit>>,
    /// POSTs still to fail with 500.
    failures: AtomicUsize,
    /// The status of the validation GET.
    get_status: u16,
}

/// A webhook receiver on 127.0.0.1:0.
pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(fail_first_posts: usize, get_status: u16) -> Receiver {
        let state = Arc::new(ReceiverState {
            hits: Mutex::new(Vec::new()),
            failures: AtomicUsize::new(fail_first_posts),
            get_status,
        });
        async fn handle(
            State(state): State<Arc<ReceiverState>>,
            method: Method,
            headers: HeaderMap,
            body: Bytes,
        ) -> StatusCode {
            state.hits.lock().unwrap().push(Hit {
                method: method.to_string(),
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            });
            if method == Method::GET {
                return StatusCode::from_u16(state.get_status).unwrap();
            }
            let fail = state.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
            if fail { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::OK }
        }
        let app = axum::Router::new().route("/hook", axum::routing::any(handle)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, state }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    pub fn posts(&self) -> Vec<Hit> {
        self.hits().into_iter().filter(|h| h.method == "POST").collect()
    }
}

/// Form pairs of a webhook body.
pub fn form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes()).into_owned().collect()
}

/// The value of a form field.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
