//! The HTTP server: the router, and what happens to an API request around the API itself —
//! the request log, path parsing (with or without the tenant segment, environment names
//! case-insensitive), bearer authentication, per-user throttling, injected faults, and BC's
//! response headers (`OData-Version: 4.0`, OData JSON content type, `request-id`).

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
use axum::routing::{any, post};
use sandbox_common::net::Conn;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::api::{self, ApiRequest, Reply, ReplyBody};
use crate::auth;
use crate::config::SandboxConfig;
use crate::errors::ApiError;
use crate::odata::path::parse_segment;
use crate::odata::query::QueryOptions;
use crate::schema::Route;
use crate::state::Shared;
use crate::util::{guid, percent_decode};

/// How long a response is held after a committed write before the connection is dropped.
const COMMIT_HOLD: Duration = Duration::from_secs(120);
/// The largest request body (BC: 350 MB; the sandbox needs far less).
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// A running sandbox. Dropping it stops the server too.
pub struct Sandbox {
    /// State shared with handlers and the engine.
    shared: Arc<Shared>,
    /// Tells the server and the engine to stop.
    stop: watch::Sender<bool>,
    /// The HTTP server task.
    server: JoinHandle<()>,
    /// The notification engine task.
    engine: JoinHandle<()>,
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port) and serves in background tasks.
    pub async fn start(config: SandboxConfig, addr: SocketAddr) -> io::Result<Sandbox> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let port = listener.local_addr()?.port();
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared::new(config, format!("http://127.0.0.1:{port}"), stopped.clone()));
        let app = router(shared.clone());
        let server = sandbox_common::net::serve(listener, app, stopped, "business central");
        let engine = tokio::spawn(crate::subscriptions::engine(shared.clone()));
        Ok(Sandbox { shared, stop, server, engine })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `{base}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.shared.base_url, self.shared.config.tenant)
    }

    /// `{base}/v2.0/{tenant}/{environment}/api/v2.0`.
    pub fn api_base(&self) -> String {
        format!(
            "{}/v2.0/{}/{}/api/v2.0",
            self.shared.base_url, self.shared.config.tenant, self.shared.config.environment
        )
    }

    /// The in-process admin handle.
    pub fn admin(&self) -> Admin {
        Admin::new(self.shared.clone())
    }

    /// Stops accepting, ends background work and waits briefly for open connections.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server).await.is_err() {
            self.server.abort();
        }
        self.engine.abort();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.server.abort();
        self.engine.abort();
    }
}

/// Starts a sandbox on `127.0.0.1:port` with the default configuration, loads the seed file,
/// prints one line and serves until Ctrl-C.
///
/// Seed: `{"customers": [...], "items": [...], "invoices": [...]}` for the default company, and/or
/// `{"companies": {"<name>": {same keys}}}`; an invoice is `{<header fields>, "lines": [...],
/// "post": true|false}`; invoice lines may name items by `lineObjectNumber`.
pub async fn run_cli(port: u16, seed: Option<PathBuf>) -> io::Result<()> {
    let config = SandboxConfig::default();
    let sandbox = Sandbox::start(config.clone(), SocketAddr::from(([127, 0, 0, 1], port))).await?;
    if let Some(path) = seed {
        let seed: Value = serde_json::from_str(&std::fs::read_to_string(path)?).map_err(io::Error::other)?;
        load_seed(&sandbox, &seed).map_err(io::Error::other)?;
    }
    println!(
        "business-central sandbox listening on {} (tenant {}, environment {}, client id {}, client secret {})",
        sandbox.base_url(),
        config.tenant,
        config.environment,
        config.client_id,
        config.client_secret
    );
    use std::io::Write as _;
    io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}

/// Applies a seed document.
fn load_seed(sandbox: &Sandbox, seed: &Value) -> Result<(), String> {
    let mut companies: Vec<(String, &Value)> = Vec::new();
    if seed.get("customers").is_some() || seed.get("items").is_some() || seed.get("invoices").is_some() {
        companies.push((sandbox.shared.config.companies.first().cloned().unwrap_or_default(), seed));
    }
    if let Some(map) = seed.get("companies").and_then(Value::as_object) {
        companies.extend(map.iter().map(|(k, v)| (k.clone(), v)));
    }
    let admin = sandbox.admin();
    for (name, content) in companies {
        let id = {
            let mut data = sandbox.shared.lock();
            data.add_company(&name, sandbox.shared.clock.now())
        };
        let check = |v: Value| match v.get("error") {
            Some(e) => Err(format!("seed for {name}: {e}")),
            None => Ok(v),
        };
        for customer in content.get("customers").and_then(Value::as_array).into_iter().flatten() {
            check(admin.create_customer(&id, customer.clone()))?;
        }
        for item in content.get("items").and_then(Value::as_array).into_iter().flatten() {
            check(admin.create_item(&id, item.clone()))?;
        }
        for invoice in content.get("invoices").and_then(Value::as_array).into_iter().flatten() {
            let mut fields = invoice.clone();
            let object = fields.as_object_mut().ok_or("an invoice must be an object")?;
            let lines = object.remove("lines").and_then(|l| l.as_array().cloned()).unwrap_or_default();
            let post = object.remove("post").and_then(|p| p.as_bool()).unwrap_or(false);
            let created = check(admin.create_sales_invoice(&id, fields, lines))?;
            if post {
                check(admin.post_sales_invoice(&id, created["id"].as_str().unwrap_or_default()))?;
            }
        }
    }
    Ok(())
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(auth::token).get(auth::token_wrong_method))
        .route("/v2.0/{*rest}", any(api_entry))
        .merge(admin::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn not_found(uri: Uri) -> Response {
    let segment = uri.path().trim_matches('/').split('/').next_back().unwrap_or("").to_string();
    error_response(&ApiError::segment_not_found(&segment), &guid(), "")
}

/// An error in BC's shape (plain `application/json`, as recorded).
fn error_response(error: &ApiError, correlation: &str, tenant: &str) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, error.body(correlation).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = error.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.challenge
        && let Ok(value) = HeaderValue::from_str(&auth::challenge(tenant))
    {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    set_request_id(headers, correlation);
    response
}

fn set_request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        headers.insert("request-id", value);
    }
}

fn success(reply: Reply, correlation: &str) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = match reply.body {
        ReplyBody::Json(out) => {
            let mut r = (status, out.to_json()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; odata.metadata=minimal; odata.streaming=true"),
            );
            r
        }
        ReplyBody::Xml(text) => {
            let mut r = (status, text).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
            r
        }
        ReplyBody::Text(text) => {
            let mut r = (status, text).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            r
        }
        ReplyBody::Empty => Response::builder().status(StatusCode::NO_CONTENT).body(Body::empty()).unwrap_or_default(),
    };
    let headers = response.headers_mut();
    headers.insert("odata-version", HeaderValue::from_static("4.0"));
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    set_request_id(headers, correlation);
    response
}

fn logged_body(reply: &Reply) -> Option<Value> {
    match &reply.body {
        ReplyBody::Json(out) => Some(out.to_value()),
        _ => None,
    }
}

/// What becomes of a request.
enum Outcome {
    Answer(Result<Reply, ApiError>),
    /// No answer: the connection is killed. Holds what would have been sent, if anything.
    Drop(Option<(u16, Option<Value>)>),
}

/// Every `/v2.0/...` request.
async fn api_entry(
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
    let correlation = guid();
    match serve(&shared, ticket, method, &path, &query, headers, parsed).await {
        Outcome::Answer(Ok(reply)) => {
            shared.recorder.finish(ticket, reply.status, logged_body(&reply));
            success(reply, &correlation)
        }
        Outcome::Answer(Err(error)) => {
            shared.recorder.finish(ticket, error.status, Some(error.body(&correlation)));
            error_response(&error, &correlation, &shared.config.tenant)
        }
        Outcome::Drop(would_have_sent) => {
            conn.kill();
            shared.recorder.finish(ticket, 0, would_have_sent.and_then(|(_, body)| body));
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The parts of an API path.
struct ApiPath {
    /// The tenant segment, when the URL has one.
    tenant: Option<String>,
    /// The environment as the client wrote it.
    environment: String,
    /// The API route, when it is one the sandbox serves.
    route: Option<Route>,
    /// Raw segments after the route.
    rest: Vec<String>,
    /// The first segment that did not resolve, for the 404.
    unknown: Option<String>,
}

fn parse_path(path: &str) -> Option<ApiPath> {
    let rest = path.strip_prefix("/v2.0/")?;
    let mut segments: Vec<&str> = rest.split('/').collect();
    if segments.last() == Some(&"") {
        segments.pop();
    }
    let (tenant, environment, after) = if segments.get(1) == Some(&"api") {
        (None, segments[0], &segments[2..])
    } else if segments.get(2) == Some(&"api") {
        (Some(percent_decode(segments[0])), segments[1], &segments[3..])
    } else {
        return None;
    };
    let mut api =
        ApiPath { tenant, environment: percent_decode(environment), route: None, rest: Vec::new(), unknown: None };
    if after.first() == Some(&"v2.0") {
        api.route = Some(Route::V2);
        api.rest = after[1..].iter().map(|s| s.to_string()).collect();
    } else if after.len() >= 3 && after[..3].join("/") == Route::Custom.path() {
        api.route = Some(Route::Custom);
        api.rest = after[3..].iter().map(|s| s.to_string()).collect();
    } else {
        api.unknown = Some(after.first().map(|s| percent_decode(s)).unwrap_or_else(|| "api".into()));
    }
    Some(api)
}

/// Authentication, path checks, throttling, faults, then the API.
async fn serve(
    shared: &Arc<Shared>,
    ticket: u64,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    body: Result<Option<Value>, ()>,
) -> Outcome {
    let parsed = parse_path(path);
    let user = match auth::authenticate(shared, &headers, parsed.as_ref().and_then(|p| p.tenant.as_deref())) {
        Ok(user) => user,
        Err(e) => return Outcome::Answer(Err(e)),
    };
    let Some(parsed) = parsed else {
        let last = path.trim_matches('/').rsplit('/').next().unwrap_or("");
        return Outcome::Answer(Err(ApiError::segment_not_found(&percent_decode(last))));
    };
    if !parsed.environment.eq_ignore_ascii_case(&shared.config.environment) {
        return Outcome::Answer(Err(ApiError::segment_not_found(&parsed.environment)));
    }
    let Some(route) = parsed.route else {
        return Outcome::Answer(Err(ApiError::segment_not_found(parsed.unknown.as_deref().unwrap_or("api"))));
    };
    let permit = match shared.throttle.acquire(&user, shared.clock.now()).await {
        Ok(p) => p,
        Err(e) => return Outcome::Answer(Err(e)),
    };
    let fate = shared.faults.decide();
    if !fate.latency.is_zero() && shared.until_shutdown(tokio::time::sleep(fate.latency)).await.is_none() {
        return Outcome::Drop(None);
    }
    if fate.too_many {
        let limit = shared.config.concurrency + shared.config.queue;
        return Outcome::Answer(Err(ApiError::too_many_requests(limit + 1, limit)));
    }
    match fate.server_error {
        Some(503) => return Outcome::Answer(Err(ApiError::unavailable())),
        Some(_) => return Outcome::Answer(Err(ApiError::gateway_timeout())),
        None => {}
    }
    if fate.reset {
        return Outcome::Drop(None);
    }
    if let Some(delay) = fate.slow
        && shared.until_shutdown(tokio::time::sleep(delay)).await.is_none()
    {
        return Outcome::Drop(None);
    }
    let options = match QueryOptions::parse(query) {
        Ok(o) => o,
        Err(e) => return Outcome::Answer(Err(e)),
    };
    let mut segments = Vec::new();
    for raw in &parsed.rest {
        match parse_segment(raw) {
            Ok(s) => segments.push(s),
            Err(e) => return Outcome::Answer(Err(e)),
        }
    }
    let tenant_part = parsed.tenant.as_deref().map(|t| format!("{t}/")).unwrap_or_default();
    let request = ApiRequest {
        method,
        route,
        segments,
        options,
        headers,
        body,
        api_base: format!("{}/v2.0/{tenant_part}{}/api/{}", shared.base_url, parsed.environment, route.path()),
        user,
    };
    let result = api::dispatch(shared, request).await;
    drop(permit);
    if fate.timeout_after_commit {
        let would_have_sent = match &result {
            Ok(reply) => (reply.status, logged_body(reply)),
            Err(error) => (error.status, Some(error.body(""))),
        };
        shared.recorder.finish(ticket, 0, would_have_sent.1.clone());
        let _ = shared.until_shutdown(tokio::time::sleep(COMMIT_HOLD)).await;
        return Outcome::Drop(Some(would_have_sent));
    }
    Outcome::Answer(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_and_without_tenant() {
        let p = parse_path("/v2.0/t1/Production/api/v2.0/companies").unwrap();
        assert_eq!(p.tenant.as_deref(), Some("t1"));
        assert_eq!(p.environment, "Production");
        assert_eq!(p.route, Some(Route::V2));
        assert_eq!(p.rest, ["companies"]);
        let p = parse_path("/v2.0/production/api/contoso/marketing/v1.0/companies(x)/customerConsents").unwrap();
        assert_eq!(p.tenant, None);
        assert_eq!(p.route, Some(Route::Custom));
        assert_eq!(p.rest.len(), 2);
        let p = parse_path("/v2.0/t/e/api/microsoft/automate/v1.0/x").unwrap();
        assert_eq!(p.route, None);
        assert_eq!(p.unknown.as_deref(), Some("microsoft"));
        assert!(parse_path("/v2.0/nothing").is_none());
    }
}
