//! The HTTP/1.1 server: accept loop, per-connection NTLM context, routing, faults, request log.
//!
//! Built on hyper's `http1::Builder::serve_connection` + `service_fn` rather than axum: NTLM
//! authenticates the TCP connection, so the security context must live with the connection
//! (here, in the service closure), which a per-request router does not expose. HTTP/2 is not
//! offered at all — Windows authentication does not work over it (reference §2.2).

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sandbox_common::net::KillableStream;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::auth::{self, ConnAuth, Outcome};
use crate::body::Body;
use crate::clock::Clock;
use crate::config::{DEFAULT_DOMAIN, SandboxConfig};
use crate::faults::FaultState;
use crate::log::{LoggedRequest, RequestLog};
use crate::sba;
use crate::schema;
use crate::soap::{self, Fault};
use crate::state::{ListenerSlot, Shared};

/// The largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// The SOAP endpoint path (matched case-insensitively, as IIS/HTTP.sys does).
pub const SOAP_PATH: &str = "/DynamicsGPWebServices/DynamicsGPService.asmx";

/// How long a never-answered request is held (longer than any sane client timeout; IIS's own
/// request limit is 110 s).
const HANG: std::time::Duration = std::time::Duration::from_secs(120);

/// A running sandbox. Dropping it stops the server too; [`Sandbox::shutdown`] also waits.
pub struct Sandbox {
    /// The state shared with the server and the admin handle.
    shared: Arc<Shared>,
    /// The accept loop.
    task: Option<JoinHandle<()>>,
}

/// Binds a non-blocking std listener (std sets `SO_REUSEADDR`, so re-binding after an outage
/// works while old connections linger in `TIME_WAIT`).
pub(crate) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Percent-encodes a URL path segment (everything but RFC 3986 unreserved characters).
pub fn encode_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Sandbox {
    /// Binds `addr` (port 0 picks a free port), seeds the sample companies and serves in a
    /// background task.
    pub async fn start(config: SandboxConfig, addr: SocketAddr) -> io::Result<Sandbox> {
        let listener = bind(addr)?;
        let addr = listener.local_addr()?;
        let host = if addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { addr.ip().to_string() };
        let accounts: Vec<(String, String, String)> = config.users.clone();
        let nb_domain = accounts.first().map(|(d, ..)| d.to_uppercase()).unwrap_or_else(|| DEFAULT_DOMAIN.into());
        let dns_domain = format!("{}.local", nb_domain.to_lowercase());
        let ntlm = ntlm::Server::new(accounts).with_names(
            &nb_domain,
            "GPSERVER",
            &dns_domain,
            &format!("gpserver.{dns_domain}"),
        );
        let shared = Arc::new(Shared {
            config,
            ntlm,
            db: Mutex::new(Default::default()),
            clock: Clock::default(),
            faults: FaultState::default(),
            log: RequestLog::default(),
            addr,
            base_url: format!("http://{host}:{}", addr.port()),
            offline: watch::channel(false).0,
            slot: Mutex::new(ListenerSlot { waiting: Some(listener), listening: false }),
            slot_notify: Notify::new(),
            stop: watch::channel(false).0,
        });
        crate::seed::default_seed(&Admin::new(shared.clone()));
        let task = tokio::spawn(accept_loop(shared.clone()));
        Ok(Sandbox { shared, task: Some(task) })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The legacy SOAP endpoint.
    pub fn soap_url(&self) -> String {
        format!("{}{SOAP_PATH}", self.shared.base_url)
    }

    /// The SBA base of a company: `…/GPService/Tenants(<tenant>)/Companies(<name, encoded>)`.
    pub fn sba_url(&self, company: &str) -> String {
        format!(
            "{}/GPService/Tenants({})/Companies({})",
            self.shared.base_url,
            encode_segment(&self.shared.config.tenant),
            encode_segment(company)
        )
    }

    /// The in-process admin handle.
    pub fn admin(&self) -> Admin {
        Admin::new(self.shared.clone())
    }

    /// Stops accepting, drops open connections and waits for the accept loop.
    pub async fn shutdown(mut self) {
        let _ = self.shared.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shared.stop.send_replace(true);
    }
}

/// Accepts connections; closes the listening socket while offline (so connections are refused)
/// and takes it back from the slot, or re-binds, when the outage ends.
async fn accept_loop(shared: Arc<Shared>) {
    let mut stop = shared.stop.subscribe();
    let mut offline = shared.offline.subscribe();
    let mut current: Option<TcpListener> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if *offline.borrow_and_update() {
            {
                let mut slot = shared.slot();
                slot.listening = false;
                slot.waiting = None;
                current = None;
            }
            tokio::select! {
                _ = offline.changed() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        if current.is_none() {
            let std_listener = {
                let mut slot = shared.slot();
                let listener = slot.waiting.take().map(Ok).unwrap_or_else(|| bind(shared.addr));
                slot.listening = listener.is_ok();
                listener
            };
            match std_listener.and_then(TcpListener::from_std) {
                Ok(listener) => current = Some(listener),
                Err(error) => {
                    shared.slot().listening = false;
                    tracing::warn!(%error, "Cannot listen again; retrying.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let Some(listener) = current.as_ref() else { continue };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if *offline.borrow() {
                        let _ = stream.set_zero_linger();
                        continue;
                    }
                    tokio::spawn(serve_connection(shared.clone(), stream));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            _ = offline.changed() => {}
            _ = stop.changed() => return,
            _ = shared.slot_notify.notified() => {}
        }
    }
}

/// Serves one keep-alive connection with its own NTLM context.
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (stream, kill) = KillableStream::new(stream);
    let conn_auth = Arc::new(Mutex::new(ConnAuth::default()));
    let service_shared = shared.clone();
    let service = hyper::service::service_fn(move |request| {
        let (shared, conn_auth, kill) = (service_shared.clone(), conn_auth.clone(), kill.clone());
        async move { handle(shared, conn_auth, kill, request).await }
    });
    let connection =
        hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), service);
    let mut stop = shared.stop.subscribe();
    let mut offline = shared.offline.subscribe();
    tokio::select! {
        _ = connection => {}
        _ = stop.wait_for(|s| *s) => {}
        _ = offline.wait_for(|o| *o) => {}
    }
}

/// Reads the whole request body (up to [`BODY_LIMIT`]; `None` beyond).
async fn read_body(mut body: Incoming) -> io::Result<Option<Vec<u8>>> {
    use hyper::body::Body as _;
    let mut out = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(io::Error::other)?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
            if out.len() > BODY_LIMIT {
                return Ok(None);
            }
        }
    }
    Ok(Some(out))
}

fn response(status: u16, content_type: &str, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(header::SERVER, HeaderValue::from_static("Microsoft-HTTPAPI/2.0"));
    response
}

fn html(status: u16, title: &str) -> Response<Body> {
    response(status, "text/html; charset=utf-8", Body::full(format!("<html><body><h1>{title}</h1></body></html>")))
}

/// Everything about a request the log needs.
struct Entry {
    action: String,
    method: String,
    path: String,
    body: String,
    user: Option<String>,
}

impl Entry {
    fn log(self, shared: &Shared, status: u16, criteria: Value, error: Option<String>) {
        shared.log.push(LoggedRequest {
            action: self.action,
            body: self.body,
            status,
            method: self.method,
            path: self.path,
            criteria,
            user: self.user,
            error,
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    conn_auth: Arc<Mutex<ConnAuth>>,
    kill: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> io::Result<Response<Body>> {
    let (parts, incoming) = request.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let Some(body) = read_body(incoming).await? else {
        return Ok(html(413, "413 - Request Entity Too Large"));
    };
    if path == "/_sandbox" || path.starts_with("/_sandbox/") {
        return Ok(admin::handle_http(&shared, &method, &path, query.as_deref(), &body));
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let soap_action = header("soapaction");
    let lower = path.to_ascii_lowercase();
    let is_sba = lower.starts_with("/gpservice/");
    let action = soap_action
        .as_deref()
        .map(|a| a.trim().trim_matches('"').rsplit('/').next().unwrap_or("").to_string())
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| format!("{method} {path}"));
    let path_and_query = match &query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let mut entry = Entry {
        action,
        method: method.clone(),
        path: path_and_query,
        body: String::from_utf8_lossy(&body).into_owned(),
        user: None,
    };

    let outcome = {
        let mut conn = conn_auth.lock().unwrap_or_else(|e| e.into_inner());
        auth::authenticate(&shared, &mut conn, header("authorization").as_deref(), is_sba)
    };
    let final_header = match outcome {
        Outcome::Unauthorized(challenges) => {
            let mut reply = html(401, "401 - Unauthorized: Access is denied due to invalid credentials.");
            for value in challenges {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    reply.headers_mut().append(header::WWW_AUTHENTICATE, value);
                }
            }
            entry.log(&shared, 401, Value::Null, Some("401 Unauthorized".into()));
            return Ok(reply);
        }
        Outcome::Authenticated { user, header } => {
            entry.user = Some(user);
            header
        }
    };

    let decision = shared.faults.decide();
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    if let Some(stall) = decision.stall {
        tokio::time::sleep(stall).await;
    }
    if decision.hang {
        // Logged first: the client gives up (and the connection goes) long before the end.
        entry.log(&shared, 0, Value::Null, Some("never answered (injected)".into()));
        tokio::time::sleep(HANG).await;
        kill.store(true, Ordering::SeqCst);
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    if decision.unavailable {
        entry.log(&shared, 503, Value::Null, Some("503 (injected)".into()));
        return Ok(html(503, "Service Unavailable"));
    }
    if decision.reset {
        kill.store(true, Ordering::SeqCst);
        entry.log(&shared, 0, Value::Null, Some("connection reset (injected)".into()));
        return Err(io::Error::from(io::ErrorKind::ConnectionReset));
    }
    let mut reply = if decision.internal {
        let error = Some("500 (injected)".to_string());
        if is_sba {
            entry.log(&shared, 500, Value::Null, error);
            let body =
                serde_json::json!({"Payload": null, "Messages": [{"Type": "Error", "Text": "An error has occurred."}]});
            response(500, "application/json; charset=utf-8", Body::full(body.to_string()))
        } else {
            entry.log(&shared, 500, Value::Null, error);
            response(500, "text/xml; charset=utf-8", Body::full(Fault::server_error().render()))
        }
    } else {
        route(
            &shared,
            entry,
            &lower,
            query.as_deref(),
            soap_action.as_deref(),
            header("content-type").as_deref(),
            &body,
        )
    };
    if let Some(value) = final_header.and_then(|v| HeaderValue::from_str(&v).ok()) {
        reply.headers_mut().append(header::WWW_AUTHENTICATE, value);
    }
    Ok(reply)
}

/// Routes an authenticated request and logs it.
fn route(
    shared: &Arc<Shared>,
    entry: Entry,
    lower_path: &str,
    query: Option<&str>,
    soap_action: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    let method = entry.method.clone();
    if lower_path == SOAP_PATH.to_ascii_lowercase() {
        return match method.as_str() {
            "POST" => {
                let text = std::str::from_utf8(body).unwrap_or("");
                let reply = soap::handle(shared, soap_action, content_type, text);
                let mut entry = entry;
                entry.action = reply.action.clone();
                entry.log(shared, reply.status, reply.criteria, reply.error);
                response(reply.status, reply.content_type, reply.body)
            }
            "GET" if query.is_some_and(|q| q.eq_ignore_ascii_case("wsdl") || q.eq_ignore_ascii_case("singlewsdl")) => {
                entry.log(shared, 200, Value::Null, None);
                let location = format!("{}{SOAP_PATH}", shared.base_url);
                response(200, "text/xml; charset=utf-8", Body::full(schema::wsdl(&location)))
            }
            "GET" => {
                entry.log(shared, 200, Value::Null, None);
                service_page(shared)
            }
            _ => {
                entry.log(shared, 405, Value::Null, Some("405 Method Not Allowed".into()));
                let mut reply = html(405, "405 - Method Not Allowed");
                reply.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                reply
            }
        };
    }
    if matches!(lower_path, "/dynamicsgpwebservices" | "/dynamicsgpwebservices/") && method == "GET" {
        entry.log(shared, 200, Value::Null, None);
        return service_page(shared);
    }
    if lower_path.starts_with("/gpservice/") {
        let original_path = entry.path.split('?').next().unwrap_or("").to_string();
        let reply = sba::handle(shared, &method, &original_path, query);
        let error = (reply.status >= 400).then(|| reply.body["Messages"][0]["Text"].as_str().unwrap_or("").to_string());
        entry.log(shared, reply.status, Value::Null, error);
        return response(reply.status, "application/json; charset=utf-8", Body::full(reply.body.to_string()));
    }
    entry.log(shared, 404, Value::Null, Some("404 Not Found".into()));
    html(404, "404 - File or directory not found.")
}

fn service_page(shared: &Shared) -> Response<Body> {
    html(
        200,
        &format!(
            "DynamicsGP Service. The WSDL is at <a href=\"{0}{SOAP_PATH}?wsdl\">{0}{SOAP_PATH}?wsdl</a>.",
            shared.base_url
        ),
    )
}

/// Parses `DOMAIN\user:password` (a bare `user:password` gets the default domain).
fn parse_account(text: &str) -> io::Result<(String, String, String)> {
    let (account, password) =
        text.split_once(':').ok_or_else(|| io::Error::other(format!("'{text}' is not DOMAIN\\user:password")))?;
    let (domain, user) = account.split_once('\\').unwrap_or((DEFAULT_DOMAIN, account));
    if user.is_empty() || password.is_empty() {
        return Err(io::Error::other(format!("'{text}' is not DOMAIN\\user:password")));
    }
    Ok((domain.to_string(), user.to_string(), password.to_string()))
}

/// Runs the sandbox on `127.0.0.1:port` until Ctrl-C. `seed` is a JSON file applied over the
/// default data (format: [`crate::SeedFile`]); `users` are `DOMAIN\user:password` accounts
/// replacing the default one. Prints one line with the URL and the first account.
pub async fn run_cli(port: u16, seed: Option<PathBuf>, users: Vec<String>) -> io::Result<()> {
    let mut config = SandboxConfig::default();
    if !users.is_empty() {
        config.users = users.iter().map(|u| parse_account(u)).collect::<io::Result<_>>()?;
    }
    run_with(config, port, seed).await
}

/// [`run_cli`] with a whole configuration (the binary's `--negotiate`, `--basic-for-sba` and
/// `--tenant` flags).
pub async fn run_with(config: SandboxConfig, port: u16, seed: Option<PathBuf>) -> io::Result<()> {
    let sandbox = Sandbox::start(config.clone(), SocketAddr::from(([127, 0, 0, 1], port))).await?;
    if let Some(path) = seed {
        let text = std::fs::read_to_string(&path)?;
        crate::seed::apply_file(&sandbox.admin(), &text).map_err(io::Error::other)?;
    }
    match config.users.first() {
        Some((domain, user, password)) => println!(
            "dynamics-gp sandbox listening on {} (user {domain}\\{user}, password {password})",
            sandbox.base_url()
        ),
        None => println!("dynamics-gp sandbox listening on {} (no accounts)", sandbox.base_url()),
    }
    tokio::signal::ctrl_c().await?;
    sandbox.shutdown().await;
    Ok(())
}

/// Parses the binary's `--user` values (`DOMAIN\user:password`).
pub fn parse_accounts(users: &[String]) -> io::Result<Vec<(String, String, String)>> {
    users.iter().map(|u| parse_account(u)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_segments() {
        assert_eq!(parse_account("CONTOSO\\ann:p:w").unwrap(), ("CONTOSO".into(), "ann".into(), "p:w".into()));
        assert_eq!(parse_account("bob:x").unwrap().0, DEFAULT_DOMAIN);
        assert!(parse_account("nopassword").is_err());
        assert_eq!(encode_segment("Fabrikam, Inc."), "Fabrikam%2C%20Inc.");
    }
}
