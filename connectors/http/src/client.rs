//! Building clients and sending with retries.

use std::time::Duration;

use engine::connector::WriteOutcome;
use reqwest::{Client, RequestBuilder, Response, StatusCode};

/// The `User-Agent` every request carries, so API owners can tell who is calling.
pub const USER_AGENT: &str = concat!("ml-connector/", env!("CARGO_PKG_VERSION"));

/// A client with sane timeouts. Proxies from the environment are not used: integrations talk to
/// known hosts, and a stray `HTTP_PROXY` must not route a customer's data elsewhere.
pub fn build_client(timeout: Duration) -> Client {
    Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout)
        .no_proxy()
        .build()
        .expect("a client with these settings always builds")
}

/// The value of an `Authorization: Basic` header.
pub fn basic_credentials(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt; doubled for each further one.
    pub base_delay: Duration,
    /// No single wait is longer than this (a larger `Retry-After` is capped too).
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { attempts: 5, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

/// Why a request did not succeed, after retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpFailure {
    /// A retry later may succeed (throttling, outage); otherwise the request itself is wrong.
    pub transient: bool,
    pub status: Option<u16>,
    /// A short class for grouping dead letters (`http_400`, `timeout`, ...).
    pub class: String,
    /// What the server said, shortened; never the request's headers.
    pub message: String,
    /// The response body (up to 64 KiB), for APIs whose errors carry structure (problem+json).
    pub body: String,
}

impl HttpFailure {
    pub fn into_outcome(self) -> WriteOutcome {
        WriteOutcome::Failed {
            transient: self.transient,
            status: self.status,
            class: self.class,
            message: self.message,
        }
    }
}

/// True for statuses a retry can fix.
pub fn is_transient_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// Sends the request `build` makes, retrying transient failures. `build` is called once per
/// attempt because a request is consumed by sending it.
pub async fn send_with_retry(build: impl Fn() -> RequestBuilder, policy: RetryPolicy) -> Result<Response, HttpFailure> {
    send_with_retry_by("http", build, policy, |status, _| is_transient_status(status)).await
}

/// [`send_with_retry`] with the API's own notion of what a retry can fix (Mailchimp throttles
/// with a bare 403 too). Waits grow exponentially with jitter, so clients throttled together do
/// not come back together; a `Retry-After` is honoured as given. Every attempt is counted in
/// [`engine::telemetry`] under `system`.
pub async fn send_with_retry_by(
    system: &'static str,
    build: impl Fn() -> RequestBuilder,
    policy: RetryPolicy,
    is_transient: impl Fn(StatusCode, &reqwest::header::HeaderMap) -> bool,
) -> Result<Response, HttpFailure> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= policy.attempts.max(1);
        let started = std::time::Instant::now();
        let sent = build().send().await;
        let status = sent.as_ref().ok().map(|r| r.status());
        engine::telemetry::api_call(system, status.map(|s| s.as_u16()), started.elapsed());
        let (failure, retry_after) = match sent {
            Ok(response) if response.status().is_success() => return Ok(response),
            Ok(response) => {
                let transient = is_transient(response.status(), response.headers());
                if transient && matches!(response.status().as_u16(), 403 | 429) {
                    engine::telemetry::throttled(system);
                }
                let retry_after = retry_after(&response);
                let mut failure = failure_from_response(response).await;
                failure.transient = transient;
                if !transient {
                    return Err(failure);
                }
                (failure, retry_after)
            }
            Err(e) => (failure_from_error(&e), None),
        };
        if last || !failure.transient {
            return Err(failure);
        }
        let backoff = policy.base_delay.saturating_mul(1 << (attempt - 1).min(16));
        let wait = retry_after.unwrap_or_else(|| jitter(backoff)).min(policy.max_delay);
        tracing::debug!(attempt, status = ?failure.status, wait_ms = wait.as_millis() as u64, "Retrying after a transient failure.");
        tokio::time::sleep(wait).await;
    }
}

/// A wait between half and all of `d`, from the clock's low bits (no RNG crate for this).
fn jitter(d: Duration) -> Duration {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
    d.mul_f64(fraction)
}

/// A successful response's status and JSON body: `Null` when empty (204), the raw text as a
/// JSON string when it is not JSON.
pub async fn read_json(response: Response) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let json = if text.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
    };
    (status, json)
}

/// `Retry-After` in seconds (the HTTP-date form is rare in APIs and ignored).
fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Reads an error response into a failure, keeping the start of its body.
pub async fn failure_from_response(response: Response) -> HttpFailure {
    let status = response.status();
    let full = response.text().await.unwrap_or_default();
    let body = shorten(full.trim(), 500);
    let reason = status.canonical_reason().unwrap_or("");
    HttpFailure {
        transient: is_transient_status(status),
        status: Some(status.as_u16()),
        class: format!("http_{}", status.as_u16()),
        message: if body.is_empty() {
            format!("{} {reason}", status.as_u16())
        } else {
            format!("{} {reason}: {body}", status.as_u16())
        },
        body: shorten(&full, 64 * 1024),
    }
}

/// A failure to get any response: always transient (the server may be back next run).
pub fn failure_from_error(e: &reqwest::Error) -> HttpFailure {
    let class = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "network"
    };
    // reqwest's message names the URL but never headers; strip the query, which can hold keys.
    let message = e.to_string();
    let mut message = match message.find('?') {
        Some(i) => format!("{}…", &message[..i]),
        None => message,
    };
    // The cause says what went wrong ("invalid peer certificate: UnknownIssuer", "connection
    // refused"); reqwest's own message only says that sending failed.
    let mut cause = std::error::Error::source(e);
    let mut deepest = None;
    while let Some(c) = cause {
        deepest = Some(c.to_string());
        cause = c.source();
    }
    if let Some(deepest) = deepest.filter(|d| !d.is_empty() && !message.contains(d.as_str())) {
        message.push_str(&format!(": {deepest}"));
    }
    HttpFailure { transient: true, status: None, class: class.to_owned(), message, body: String::new() }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_rfc_7617() {
        // RFC 7617's example.
        assert_eq!(basic_credentials("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
    }
}
