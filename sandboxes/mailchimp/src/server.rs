//! The HTTP server: the router, and everything that happens to a `/3.0` request before and
//! after the API handles it — the request log, authentication, the per-account connection limit,
//! injected faults, problem+json rendering.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use sandbox_common::net::Conn;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::api::{self, ApiRequest};
use crate::config::SandboxConfig;
use crate::errors::ApiError;
use crate::oauth;
use crate::query::Query;
use crate::state::Shared;

/// How long a response is held after a committed write (Mailchimp's own API timeout); the
/// connection is then dropped without an answer.
const COMMIT_HOLD: Duration = Duration::from_secs(120);
/// The largest request body (batch requests can be big).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A running sandbox. Dropping it stops the server too.
pub struct Sandbox {
    /// The state the server and the admin handle share.
    shared: Arc<Shared>,
    /// Tells the server and background tasks to stop.
    stop: watch::Sender<bool>,
    /// The serving task.
    server: JoinHandle<()>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves in a background task.
    pub async fn start(config: SandboxConfig, addr: SocketAddr) -> io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, format!("http://127.0.0.1:{port}"), stopped.clone()));
        let app = router(shared.clone());
        let server = sandbox_common::net::serve(listener, app, stopped, "mailchimp");
        Ok(Sandbox { shared, stop, server })
    }

    /// `http://127.0.0.1:PORT`: the API is under `/3.0`, OAuth under `/oauth2`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The in-process admin handle.
    pub fn admin(&self) -> Admin {
        Admin::new(self.shared.clone())
    }

    /// Stops accepting, ends background work (batches, webhook retries, held responses) and
    /// waits briefly for open connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server).await.is_err() {
            self.server.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.server.abort();
    }
}

/// Starts a sandbox on `127.0.0.1:port` with the default configuration, pre-creates the lists
/// of the seed file (`{"lists": [{"id": "...", "name": "..."}]}`), prints one line and serves
/// until Ctrl-C.
pub async fn run_cli(port: u16, seed: Option<PathBuf>) -> io::Result<()> {
    let config = SandboxConfig::default();
    let key = config.api_keys.first().cloned().unwrap_or_default();
    let sandbox = Sandbox::start(config, SocketAddr::from(([127, 0, 0, 1], port))).await?;
    if let Some(path) = seed {
        let seed: Value = serde_json::from_str(&std::fs::read_to_string(path)?).map_err(io::Error::other)?;
        for list in seed.get("lists").and_then(Value::as_array).into_iter().flatten() {
            let name = list.get("name").and_then(Value::as_str).unwrap_or("Sandbox audience");
            match list.get("id").and_then(Value::as_str) {
                Some(id) => {
                    sandbox.admin().create_list_with_id(id, name);
                }
                None => {
                    sandbox.admin().create_list(name);
                }
            }
        }
    }
    println!("mailchimp sandbox listening on {} (api key: {key})", sandbox.base_url());
    use std::io::Write as _;
    io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/3.0", any(api_request))
        .route("/3.0/", any(api_request))
        .route("/3.0/{*rest}", any(api_request))
        .route("/oauth2/authorize", get(oauth::authorize))
        .route("/oauth2/token", post(oauth::token))
        .route("/oauth2/metadata", get(oauth::metadata))
        .merge(admin::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    problem(&shared, &shared.request_id(), &ApiError::not_found())
}

/// A problem+json response with Mailchimp's headers.
pub(crate) fn problem(shared: &Shared, request_id: &str, error: &ApiError) -> Response {
    let mut response = (
        StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        error.body(request_id).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json; charset=utf-8"));
    let link = format!(
        "<https://{}.api.mailchimp.com/schema/3.0/ProblemDetailDocument.json>; rel=\"describedBy\"",
        shared.config.dc
    );
    if let Ok(link) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, link);
    }
    if let Some(allow) = error.allow.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        headers.insert(header::ALLOW, allow);
    }
    set_request_id(headers, request_id);
    response
}

fn set_request_id(headers: &mut HeaderMap, request_id: &str) {
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-request-id", id);
    }
}

/// A JSON (or empty 204) response.
fn success(request_id: &str, status: u16, body: Option<&Value>) -> Response {
    let mut response = match body {
        Some(body) => {
            let mut response =
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body.to_string()).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
            response
        }
        None => Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).unwrap_or_default(),
    };
    set_request_id(response.headers_mut(), request_id);
    response
}

/// What becomes of a request.
enum Outcome {
    /// An answer.
    Answer(Result<api::Reply, ApiError>),
    /// No answer: the connection is reset.
    Reset,
    /// The write is applied but the answer (status, body) is held, then the connection dropped.
    Hold(Option<Value>),
}

/// Holds one of the account's connection slots while alive.
struct Permit(Arc<Shared>);

impl Permit {
    fn acquire(shared: &Arc<Shared>) -> Option<Permit> {
        let mut in_flight = shared.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if *in_flight >= shared.config.max_connections {
            return None;
        }
        *in_flight += 1;
        shared.recorder.in_flight(*in_flight);
        Some(Permit(shared.clone()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut in_flight = self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *in_flight = in_flight.saturating_sub(1);
        self.0.recorder.in_flight(*in_flight);
    }
}

/// Checks the `Authorization` header: Basic (any user, key as password), Bearer, or the legacy
/// `OAuth`/`apikey` schemes; keys of another data center are 403.
fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if value.is_empty() {
        return Err(ApiError::api_key_missing());
    }
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let credential = match scheme.to_ascii_lowercase().as_str() {
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(ApiError::api_key_invalid)?;
            decoded.split_once(':').map(|(_, key)| key.to_string()).ok_or_else(ApiError::api_key_invalid)?
        }
        "bearer" | "oauth" | "apikey" => rest.trim().to_string(),
        _ => return Err(ApiError::api_key_missing()),
    };
    if credential.is_empty() {
        return Err(ApiError::api_key_missing());
    }
    if let Some((_, dc)) = credential.rsplit_once('-')
        && dc.starts_with(|c: char| c.is_ascii_lowercase())
        && dc.ends_with(|c: char| c.is_ascii_digit())
        && dc != shared.config.dc
    {
        return Err(ApiError::wrong_datacenter());
    }
    let is_key = shared.config.api_keys.iter().any(|key| bool::from(key.as_bytes().ct_eq(credential.as_bytes())));
    if is_key || shared.lock().oauth_tokens.contains(&credential) { Ok(()) } else { Err(ApiError::api_key_invalid()) }
}

/// Every `/3.0` request.
async fn api_request(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let query = uri.query().unwrap_or("").to_string();
    let parsed: Result<Option<Value>, ()> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(None)
    } else {
        serde_json::from_slice(&body).map(Some).map_err(|_| ())
    };
    let ticket = shared.recorder.begin(method.as_str(), &path, &query, parsed.clone().ok().flatten());
    let request_id = shared.request_id();
    match serve(&shared, method, &path, &query, &headers, parsed).await {
        Outcome::Answer(Ok(reply)) => {
            shared.recorder.finish(ticket, reply.status, reply.body.clone());
            success(&request_id, reply.status, reply.body.as_ref())
        }
        Outcome::Answer(Err(error)) => {
            shared.recorder.finish(ticket, error.status, Some(error.body(&request_id)));
            problem(&shared, &request_id, &error)
        }
        Outcome::Reset => {
            shared.recorder.finish(ticket, 0, None);
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Outcome::Hold(body) => {
            // Logged first: the client usually gives up (and hyper drops this future) before the end.
            shared.recorder.finish(ticket, 0, body);
            let _ = shared.until_shutdown(tokio::time::sleep(COMMIT_HOLD)).await;
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Authentication, the connection limit, faults, then the API.
async fn serve(
    shared: &Arc<Shared>,
    method: Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Result<Option<Value>, ()>,
) -> Outcome {
    if let Err(error) = authenticate(shared, headers) {
        return Outcome::Answer(Err(error));
    }
    let mut method = method.as_str().to_string();
    if let Some(wanted) = headers.get("x-http-method-override").and_then(|v| v.to_str().ok()) {
        if method != "POST" {
            return Outcome::Answer(Err(ApiError::invalid_method_override()));
        }
        method = wanted.trim().to_ascii_uppercase();
    }
    let Some(permit) = Permit::acquire(shared) else {
        return Outcome::Answer(Err(ApiError::too_many_requests(shared.config.max_connections)));
    };
    let fate = shared.faults.decide();
    if !fate.latency.is_zero() && shared.until_shutdown(tokio::time::sleep(fate.latency)).await.is_none() {
        return Outcome::Reset;
    }
    if fate.too_many {
        return Outcome::Answer(Err(ApiError::too_many_requests(shared.config.max_connections)));
    }
    if fate.internal {
        return Outcome::Answer(Err(ApiError::internal()));
    }
    if fate.reset {
        return Outcome::Reset;
    }
    if let Some(delay) = fate.slow
        && shared.until_shutdown(tokio::time::sleep(delay)).await.is_none()
    {
        return Outcome::Reset;
    }
    let Ok(body) = body else {
        return Outcome::Answer(Err(ApiError::json_parse()));
    };
    let path = path.strip_prefix("/3.0").unwrap_or(path).to_string();
    let request = ApiRequest { method, path, query: Query::parse(query), body };
    let result = api::dispatch(shared, request).await;
    // The work is done, so the slot is free even if the answer is then held back.
    drop(permit);
    if fate.timeout_after_commit {
        return match result {
            Ok(reply) => Outcome::Hold(reply.body),
            Err(error) => Outcome::Hold(Some(error.body(""))),
        };
    }
    Outcome::Answer(result)
}
