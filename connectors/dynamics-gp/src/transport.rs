//! HTTP/1.1 with Windows authentication, on connections we own.
//!
//! Why not reqwest: NTLM authenticates a *connection*, in three legs (NEGOTIATE, CHALLENGE,
//! AUTHENTICATE) that must travel on the same TCP connection, and reqwest can neither pin one
//! nor tell which one answered. So each connection here is a hyper HTTP/1.1 client connection
//! (`hyper::client::conn::http1`) with its own NTLM context; a small pool keeps up to
//! `max_in_flight` authenticated connections for reuse. A 401 on a connection that was
//! authenticated (the server dropped its security context, or authenticates every request, as
//! WCF's HttpListener does by default) runs the handshake again on it; a connection the server
//! closed is replaced by a fresh one, which handshakes anew.
//!
//! Retries follow `connector_http::client::RetryPolicy`: network failures, timeouts, 408, 429
//! and 5xx (except a 500 that carries a SOAP fault: that is GP's answer, not an outage) are
//! tried again with exponential backoff and jitter, honouring `Retry-After`. A rejected
//! credential is never retried: it would only lock the account.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use connector_http::client::RetryPolicy;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    AUTHORIZATION, HOST, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT, WWW_AUTHENTICATE,
};
use hyper::{Method, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::sync::{Mutex, Semaphore};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// No answer body is read past this (GP's lists have no paging; key ranges keep them small).
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Connecting (DNS, TCP, TLS) gets this long, whatever the request timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://` (TLS) rather than `http://`.
    pub https: bool,
    /// The host as written (no brackets around IPv6).
    pub host: String,
    /// The port (the scheme's default when the URL names none).
    pub port: u16,
    /// The path, without a trailing `/` (may be empty).
    pub path: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL. A query or fragment is refused: nothing GP needs
    /// goes there, and a stray one would end up in every request.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url.trim().parse().map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(format!("`{url}`: the scheme `{other}` is not supported (http or https)")),
            None => return Err(format!("`{url}` has no scheme (http:// or https://)")),
        };
        let host = uri.host().ok_or_else(|| format!("`{url}` has no host"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        if uri.query().is_some() {
            return Err(format!("`{url}`: the URL must not carry a query"));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Ok(Endpoint { https, host, port, path: uri.path().trim_end_matches('/').to_owned() })
    }

    /// The `Host` header: the port is left out when it is the scheme's default.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match (self.https, self.port) {
            (false, 80) | (true, 443) => host,
            _ => format!("{host}:{}", self.port),
        }
    }

    /// True when the host is a loopback address (`localhost`, 127.0.0.0/8, ::1).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// How requests authenticate.
#[derive(Clone)]
pub enum Credentials {
    /// NTLM (or raw NTLM inside Negotiate), handshaken per connection.
    Windows {
        /// The account's domain (may be empty).
        domain: String,
        /// The account's user name.
        user: String,
        /// The password (never logged: the tokens derived from it go in sensitive headers).
        password: String,
        /// Carry NTLM under `Negotiate` even when `NTLM` is offered.
        prefer_negotiate: bool,
    },
    /// `Authorization: Basic`, sent with every request.
    Basic {
        /// The ready `Basic …` value, marked sensitive.
        header: HeaderValue,
    },
}

/// One request; the body is kept so a handshake leg or a retry can send it again.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET (SBA) or POST (SOAP).
    pub method: Method,
    /// Origin form: `/path?query`.
    pub path: String,
    /// Headers besides `Host`, `User-Agent` and `Authorization`, which the transport sets.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (empty for GET).
    pub body: Bytes,
}

/// An answer with its body read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The final status (after any handshake).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What went wrong below HTTP semantics, or with authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// Another failure to connect (unreachable network, reset).
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// No answer in time.
    Timeout,
    /// The connection broke during a request.
    Closed,
    /// The server answered something that is not HTTP/1.1 or not a valid NTLM message.
    Protocol,
    /// Authentication failed; the message says how.
    Unauthorized(AuthFailure),
}

/// How authentication failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// The handshake completed and the server still said 401: the password (or account) is
    /// wrong, or the account may not log on.
    Rejected,
    /// The server never sent an NTLM challenge for our NEGOTIATE (with only `Negotiate` offered,
    /// that means it wants Kerberos).
    NoChallenge,
    /// The server offers no scheme we speak.
    NoScheme,
    /// A 401 with no `WWW-Authenticate` at all.
    NoOffer,
}

/// A transport failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportError {
    /// What failed.
    pub kind: ErrorKind,
    /// Plain words, for the person reading `check` or a run's error.
    pub message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl TransportError {
    fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TransportError { kind, message: message.into() }
    }

    /// Whether a retry (in this run, after a wait) can help.
    pub fn transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Dns | ErrorKind::Refused | ErrorKind::Connect | ErrorKind::Timeout | ErrorKind::Closed
        )
    }
}

/// One `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `NTLM`, `Negotiate`, `Basic`…
    pub scheme: String,
    /// The token68 after the scheme (an NTLM CHALLENGE), if any.
    pub token: Option<String>,
}

/// Parses every challenge of every `WWW-Authenticate` header. A header may hold several,
/// comma-separated (`Negotiate, NTLM`); auth-params (`realm="GP"`) belong to the scheme before
/// them and are skipped.
pub fn parse_challenges(headers: &HeaderMap) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in headers.get_all(WWW_AUTHENTICATE) {
        let Ok(value) = value.to_str() else { continue };
        for piece in split_outside_quotes(value) {
            let piece = piece.trim();
            if piece.is_empty() {
                continue;
            }
            let (first, rest) = piece.split_once(char::is_whitespace).unwrap_or((piece, ""));
            if first.contains('=') {
                continue; // an auth-param of the previous challenge
            }
            let rest = rest.trim();
            let is_token68 = !rest.is_empty()
                && rest.trim_end_matches('=').chars().all(|c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
            out.push(Challenge { scheme: first.to_owned(), token: is_token68.then(|| rest.to_owned()) });
        }
    }
    out
}

fn split_outside_quotes(s: &str) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The scheme to carry NTLM in: `NTLM` when offered (unless `Negotiate` is preferred and
/// offered too), else `Negotiate` with raw NTLM tokens (RFC 4559 lets SPNEGO be skipped; Windows
/// acceptors take a bare NTLMSSP token under `Negotiate`); `None` when neither is offered.
pub fn choose_scheme(challenges: &[Challenge], prefer_negotiate: bool) -> Option<&'static str> {
    let has = |s: &str| challenges.iter().any(|c| c.scheme.eq_ignore_ascii_case(s));
    match (has("NTLM"), has("Negotiate")) {
        (_, true) if prefer_negotiate => Some("Negotiate"),
        (true, _) => Some("NTLM"),
        (false, true) => Some("Negotiate"),
        (false, false) => None,
    }
}

/// Names the offered schemes for a message: `NTLM, Negotiate`.
pub fn offered_list(challenges: &[Challenge]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for c in challenges {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(&c.scheme)) {
            names.push(&c.scheme);
        }
    }
    names.join(", ")
}

/// An open HTTP/1.1 connection and whether its NTLM handshake completed.
struct Conn {
    id: u64,
    sender: SendRequest<Full<Bytes>>,
    authenticated: bool,
}

/// Counters for tests and diagnostics.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections opened.
    pub connections: AtomicU64,
    /// NTLM handshakes completed.
    pub handshakes: AtomicU64,
}

/// The transport to one server.
pub struct Transport {
    endpoint: Endpoint,
    credentials: Credentials,
    /// `DOMAIN\user`, for messages.
    account: String,
    timeout: Duration,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    tls: Option<tokio_rustls::TlsConnector>,
    next_id: AtomicU64,
    /// The scheme of the last completed handshake (`NTLM`, `Negotiate`), for `check`.
    scheme: std::sync::Mutex<Option<String>>,
    /// Connections opened and handshakes completed.
    pub stats: Stats,
}

impl Transport {
    /// A transport; nothing is connected yet.
    pub fn new(
        endpoint: Endpoint,
        credentials: Credentials,
        account: String,
        timeout: Duration,
        max_in_flight: usize,
    ) -> Result<Transport, String> {
        let tls = if endpoint.https {
            use rustls_platform_verifier::ConfigVerifierExt;
            let config = tokio_rustls::rustls::ClientConfig::with_platform_verifier()
                .map_err(|e| format!("cannot set up TLS: {e}"))?;
            Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
        } else {
            None
        };
        Ok(Transport {
            endpoint,
            credentials,
            account,
            timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(max_in_flight.max(1)),
            tls,
            next_id: AtomicU64::new(1),
            scheme: std::sync::Mutex::new(None),
            stats: Stats::default(),
        })
    }

    /// Where the server is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How the last request authenticated: `NTLM`, `Negotiate`, `Basic`, or `None` when the
    /// server asked for nothing yet.
    pub fn scheme(&self) -> Option<String> {
        match &self.credentials {
            Credentials::Basic { .. } => Some("Basic".into()),
            Credentials::Windows { .. } => self.scheme.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Drops every idle connection (the next request connects and handshakes anew).
    pub async fn close_idle(&self) {
        self.idle.lock().await.clear();
    }

    /// Sends a request, retrying what a retry can fix.
    pub async fn send(&self, request: &Request, policy: RetryPolicy) -> Result<Response, TransportError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = self.send_once(request).await;
            let (transient, retry_after) = match &outcome {
                Ok(r) => (is_transient_response(r), retry_after(&r.headers)),
                Err(e) => (e.transient(), None),
            };
            if !transient || attempt >= policy.attempts.max(1) {
                return outcome;
            }
            let backoff = policy.base_delay.saturating_mul(1 << (attempt - 1).min(16));
            let wait = retry_after.unwrap_or_else(|| jitter(backoff)).min(policy.max_delay);
            match &outcome {
                Ok(r) => tracing::debug!(attempt, status = r.status.as_u16(), ?wait, "GP: retrying"),
                Err(e) => tracing::debug!(attempt, error = %e, ?wait, "GP: retrying"),
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt. A reused keep-alive connection the server closed meanwhile is replaced once
    /// without counting an attempt: that is ordinary, not a failure.
    async fn send_once(&self, request: &Request) -> Result<Response, TransportError> {
        let _permit = self.permits.acquire().await.expect("the semaphore is never closed");
        let mut first_try = true;
        loop {
            let (mut conn, reused) = match self.take_idle().await {
                Some(c) => (c, true),
                None => (self.open().await?, false),
            };
            match self.exchange(&mut conn, request).await {
                Ok(response) => {
                    if !conn.sender.is_closed() && !closes(&response.headers) {
                        self.idle.lock().await.push(conn);
                    }
                    return Ok(response);
                }
                Err(e) if reused && first_try && e.kind == ErrorKind::Closed => {
                    tracing::debug!(conn = conn.id, "GP: a kept-alive connection was closed; reconnecting");
                    first_try = false;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().await;
        while let Some(c) = idle.pop() {
            if !c.sender.is_closed() {
                return Some(c);
            }
        }
        None
    }

    /// Connects (DNS, TCP, TLS) and starts an HTTP/1.1 client connection.
    async fn open(&self) -> Result<Conn, TransportError> {
        let ep = &self.endpoint;
        let target = format!("{}:{}", ep.host, ep.port);
        let addrs: Vec<SocketAddr> =
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((ep.host.as_str(), ep.port))).await {
                Ok(Ok(a)) => a.collect(),
                Ok(Err(e)) => {
                    return Err(TransportError::new(
                        ErrorKind::Dns,
                        format!("cannot resolve `{}` (DNS): {e}", ep.host),
                    ));
                }
                Err(_) => {
                    return Err(TransportError::new(
                        ErrorKind::Dns,
                        format!("resolving `{}` (DNS) timed out", ep.host),
                    ));
                }
            };
        let mut last = TransportError::new(ErrorKind::Dns, format!("`{}` resolves to no address (DNS)", ep.host));
        let mut stream = None;
        for addr in addrs {
            match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    stream = Some(s);
                    break;
                }
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    last = TransportError::new(
                        ErrorKind::Refused,
                        format!(
                            "connection refused by {target} ({addr}): nothing listens there; is the GP service running, and is the port right?"
                        ),
                    );
                }
                Ok(Err(e)) => {
                    last = TransportError::new(ErrorKind::Connect, format!("cannot connect to {target} ({addr}): {e}"))
                }
                Err(_) => {
                    last = TransportError::new(
                        ErrorKind::Timeout,
                        format!(
                            "no answer from {target} ({addr}) within {} s (a firewall?)",
                            CONNECT_TIMEOUT.as_secs()
                        ),
                    )
                }
            }
        }
        let stream = stream.ok_or(last)?;
        let _ = stream.set_nodelay(true);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        let sender = match &self.tls {
            None => handshake(stream).await?,
            Some(tls) => {
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(ep.host.clone()).map_err(|e| {
                    TransportError::new(ErrorKind::Tls, format!("`{}` is not a valid TLS server name: {e}", ep.host))
                })?;
                let io = tokio::time::timeout(CONNECT_TIMEOUT, tls.connect(name, stream))
                    .await
                    .map_err(|_| TransportError::new(ErrorKind::Timeout, format!("the TLS handshake with {target} timed out")))?
                    .map_err(|e| {
                        TransportError::new(
                            ErrorKind::Tls,
                            format!("the TLS handshake with {target} failed: {e} (is the certificate trusted and issued for `{}`? does the server speak https on this port?)", ep.host),
                        )
                    })?;
                handshake(io).await?
            }
        };
        tracing::debug!(conn = id, %target, "GP: connected");
        Ok(Conn { id, sender, authenticated: false })
    }

    /// Sends the request on one connection, running the NTLM handshake when the server asks.
    async fn exchange(&self, conn: &mut Conn, request: &Request) -> Result<Response, TransportError> {
        enum Stage {
            Plain,
            SentNegotiate(String, Box<ntlm::Client>),
            SentAuthenticate(String),
        }
        let mut stage = Stage::Plain;
        let mut auth = match &self.credentials {
            Credentials::Basic { header } => Some(header.clone()),
            Credentials::Windows { .. } => None,
        };
        loop {
            let response = self.round_trip(conn, request, auth.take()).await?;
            if response.status != StatusCode::UNAUTHORIZED {
                if let Stage::SentAuthenticate(scheme) = &stage {
                    conn.authenticated = true;
                    self.stats.handshakes.fetch_add(1, Ordering::Relaxed);
                    *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) = Some(scheme.clone());
                    tracing::debug!(conn = conn.id, %scheme, "GP: authenticated");
                }
                return Ok(response);
            }
            let challenges = parse_challenges(&response.headers);
            let offered = offered_list(&challenges);
            let Credentials::Windows { domain, user, password, prefer_negotiate } = &self.credentials else {
                return Err(self.unauthorized(AuthFailure::Rejected, "Basic", &offered));
            };
            stage = match stage {
                Stage::Plain => {
                    if challenges.is_empty() {
                        return Err(self.unauthorized(AuthFailure::NoOffer, "", ""));
                    }
                    let Some(scheme) = choose_scheme(&challenges, *prefer_negotiate) else {
                        return Err(self.unauthorized(AuthFailure::NoScheme, "", &offered));
                    };
                    if conn.authenticated {
                        tracing::debug!(conn = conn.id, "GP: the server asks to authenticate again");
                        conn.authenticated = false;
                    }
                    let mut client = Box::new(ntlm::Client::new(domain.clone(), user.clone(), password.clone()));
                    auth = Some(sensitive(&format!("{scheme} {}", B64.encode(client.negotiate())))?);
                    Stage::SentNegotiate(scheme.to_owned(), client)
                }
                Stage::SentNegotiate(scheme, mut client) => {
                    let token = challenges
                        .iter()
                        .find(|c| c.scheme.eq_ignore_ascii_case(&scheme) && c.token.is_some())
                        .and_then(|c| c.token.clone());
                    let Some(token) = token else {
                        return Err(self.unauthorized(AuthFailure::NoChallenge, &scheme, &offered));
                    };
                    let challenge = B64.decode(token.as_bytes()).map_err(|_| {
                        TransportError::new(
                            ErrorKind::Protocol,
                            format!("the server's {scheme} challenge is not base64"),
                        )
                    })?;
                    let message = client.authenticate(&challenge).map_err(|e| {
                        TransportError::new(
                            ErrorKind::Protocol,
                            format!("the server's {scheme} challenge cannot be answered: {e}"),
                        )
                    })?;
                    auth = Some(sensitive(&format!("{scheme} {}", B64.encode(message)))?);
                    Stage::SentAuthenticate(scheme)
                }
                Stage::SentAuthenticate(scheme) => {
                    return Err(self.unauthorized(AuthFailure::Rejected, &scheme, &offered));
                }
            };
            if conn.sender.is_closed() {
                return Err(TransportError::new(
                    ErrorKind::Closed,
                    "the server closed the connection in the middle of the NTLM handshake",
                ));
            }
        }
    }

    fn unauthorized(&self, failure: AuthFailure, scheme: &str, offered: &str) -> TransportError {
        let account = &self.account;
        let message = match &failure {
            AuthFailure::Rejected if scheme == "Basic" => format!(
                "the server refused Basic credentials for {account} (401; it offers: {}): wrong password, or Basic is not enabled",
                if offered.is_empty() { "nothing" } else { offered }
            ),
            AuthFailure::Rejected => format!(
                "wrong password for {account}, or the account is disabled, locked or not allowed to log on: the {scheme} handshake completed and the server still answered 401"
            ),
            AuthFailure::NoChallenge if scheme == "Negotiate" && !offered.to_ascii_lowercase().contains("ntlm") => {
                "the server offers Negotiate only and did not accept NTLM inside it: it wants Kerberos, which this connector does not implement (enable NTLM on the GP service's binding, or Windows authentication's NTLM provider)".to_owned()
            }
            AuthFailure::NoChallenge => format!(
                "the server answered our {scheme} NEGOTIATE with no challenge (it offers: {offered}); NTLM may be disabled for {account}'s domain"
            ),
            AuthFailure::NoScheme => format!(
                "the server offers {offered} only; this connection speaks NTLM (or raw NTLM inside Negotiate){}",
                if offered.to_ascii_lowercase().contains("basic") { ": set `auth: basic`" } else { "" }
            ),
            AuthFailure::NoOffer => "the server answered 401 without any WWW-Authenticate challenge".into(),
        };
        TransportError::new(ErrorKind::Unauthorized(failure), message)
    }

    /// One HTTP request/response on a connection, body read, within the timeout.
    async fn round_trip(
        &self,
        conn: &mut Conn,
        request: &Request,
        auth: Option<HeaderValue>,
    ) -> Result<Response, TransportError> {
        let mut builder = hyper::Request::builder().method(request.method.clone()).uri(request.path.as_str());
        let headers = builder.headers_mut().expect("a fresh builder has headers");
        headers.insert(HOST, HeaderValue::from_str(&self.endpoint.authority()).map_err(|_| bad_host())?);
        headers.insert(USER_AGENT, HeaderValue::from_static(connector_http::client::USER_AGENT));
        for (k, v) in &request.headers {
            headers.insert(k.clone(), v.clone());
        }
        if let Some(a) = auth {
            headers.insert(AUTHORIZATION, a);
        }
        let req = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| TransportError::new(ErrorKind::Protocol, format!("cannot build the request: {e}")))?;
        let timeout = self.timeout;
        let work = async {
            conn.sender.ready().await.map_err(|e| hyper_error(&e))?;
            let response = conn.sender.send_request(req).await.map_err(|e| hyper_error(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY).collect().await.map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TransportError::new(
                        ErrorKind::Protocol,
                        format!("the answer is larger than {} MiB", MAX_BODY >> 20),
                    )
                } else {
                    TransportError::new(ErrorKind::Closed, format!("the answer's body could not be read: {e}"))
                }
            })?;
            Ok(Response { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(timeout, work).await;
        let status = match &outcome {
            Ok(Ok(r)) => Some(r.status.as_u16()),
            _ => None,
        };
        engine::telemetry::api_call("dynamics_gp", status, started.elapsed());
        match outcome {
            Ok(r) => r,
            Err(_) => Err(TransportError::new(
                ErrorKind::Timeout,
                format!("no answer from {}:{} within {} s", self.endpoint.host, self.endpoint.port, timeout.as_secs()),
            )),
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, TransportError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| hyper_error(&e))?;
    // The connection task ends when the server closes or the sender is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "GP: connection ended");
        }
    });
    Ok(sender)
}

fn hyper_error(e: &hyper::Error) -> TransportError {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        TransportError::new(ErrorKind::Protocol, format!("the server's answer is not valid HTTP/1.1: {e}"))
    } else {
        TransportError::new(ErrorKind::Closed, format!("the connection broke: {e}"))
    }
}

fn bad_host() -> TransportError {
    TransportError::new(ErrorKind::Protocol, "the host name cannot go into a Host header")
}

/// An `Authorization` value marked sensitive, so no log or debug print shows it.
fn sensitive(value: &str) -> Result<HeaderValue, TransportError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        TransportError::new(ErrorKind::Protocol, "the credentials hold characters a header cannot carry")
    })?;
    v.set_sensitive(true);
    Ok(v)
}

/// The `Authorization: Basic` value for an account.
pub fn basic_header(user: &str, password: &str) -> Result<HeaderValue, String> {
    sensitive(&connector_http::client::basic_credentials(user, password)).map_err(|e| e.message)
}

fn closes(headers: &HeaderMap) -> bool {
    headers
        .get(hyper::header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// 408, 429 and 5xx are worth another try, except a 500 carrying a SOAP fault: GP's way of
/// saying the request itself is wrong.
fn is_transient_response(r: &Response) -> bool {
    let s = r.status;
    if s == StatusCode::INTERNAL_SERVER_ERROR {
        // A fault is GP's answer, final, unless it reports a passing SQL Server condition.
        let body = String::from_utf8_lossy(&r.body);
        return !crate::soap::looks_like_fault(&body) || crate::soap::is_transient_fault(&body);
    }
    s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// A wait between half and all of `d`, so clients failing together do not return together.
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    d.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(WWW_AUTHENTICATE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn challenges_are_parsed_from_lists_and_params() {
        let h = headers(&["Negotiate, NTLM", r#"Basic realm="GP, the server", charset="UTF-8""#]);
        let c = parse_challenges(&h);
        let names: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(names, ["Negotiate", "NTLM", "Basic"]);
        assert!(c.iter().all(|c| c.token.is_none()));
        assert_eq!(offered_list(&c), "Negotiate, NTLM, Basic");
        let t = parse_challenges(&headers(&["NTLM TlRMTVNTUAACAAAA+/8=="]));
        assert_eq!(t, [Challenge { scheme: "NTLM".into(), token: Some("TlRMTVNTUAACAAAA+/8==".into()) }]);
    }

    #[test]
    fn ntlm_travels_in_the_scheme_the_server_offers() {
        let c = |names: &[&str]| parse_challenges(&headers(names));
        assert_eq!(choose_scheme(&c(&["NTLM"]), false), Some("NTLM"));
        assert_eq!(choose_scheme(&c(&["Negotiate", "NTLM"]), false), Some("NTLM"));
        assert_eq!(choose_scheme(&c(&["Negotiate", "NTLM"]), true), Some("Negotiate"));
        assert_eq!(choose_scheme(&c(&["Negotiate"]), false), Some("Negotiate"), "Negotiate only: raw NTLM inside");
        assert_eq!(choose_scheme(&c(&["NTLM"]), true), Some("NTLM"));
        assert_eq!(choose_scheme(&c(&[r#"Basic realm="x""#]), false), None);
    }

    #[test]
    fn endpoints_parse_with_default_ports() {
        let e = Endpoint::parse("http://gp:48620/DynamicsGPWebServices/DynamicsGPService.asmx").unwrap();
        assert_eq!((e.https, e.host.as_str(), e.port), (false, "gp", 48620));
        assert_eq!(e.path, "/DynamicsGPWebServices/DynamicsGPService.asmx");
        assert_eq!(e.authority(), "gp:48620");
        let s = Endpoint::parse("https://gpweb.contoso.com/").unwrap();
        assert_eq!((s.port, s.path.as_str(), s.authority()), (443, "", "gpweb.contoso.com".to_owned()));
        let v6 = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!((v6.host.as_str(), v6.authority()), ("::1", "[::1]:8080".to_owned()));
        assert!(v6.is_loopback());
        assert!(Endpoint::parse("ftp://gp").is_err());
        assert!(Endpoint::parse("gp:48620").is_err());
        assert!(Endpoint::parse("http://gp/x?y=1").is_err());
    }

    #[test]
    fn faults_in_500s_are_not_retried_but_outages_are() {
        let r = |status: u16, body: &str| Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        };
        let fault = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault/></s:Body></s:Envelope>"#;
        assert!(!is_transient_response(&r(500, fault)));
        assert!(is_transient_response(&r(500, "Internal error")));
        assert!(is_transient_response(&r(503, "")));
        assert!(is_transient_response(&r(429, "")));
        assert!(!is_transient_response(&r(400, "")));
        assert!(!is_transient_response(&r(404, "")));
    }
}
