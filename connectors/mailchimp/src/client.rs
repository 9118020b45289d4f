//! The Mailchimp HTTP client: base URL and data center, authentication, retries, and
//! problem+json errors.

use std::time::Duration;

use connector_http::client::{HttpFailure, RetryPolicy, build_client, send_with_retry_by};
use engine::connector::{ConnectorError, SecretResolver};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Client, Method, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::settings::{MailchimpAuth, MailchimpSettings};

/// The production OAuth host.
pub const LOGIN_BASE: &str = "https://login.mailchimp.com";

/// A client bound to one Mailchimp account.
#[derive(Clone)]
pub struct McClient {
    http: Client,
    /// `https://<dc>.api.mailchimp.com/3.0` or an override.
    api_base: String,
    /// The credential, marked sensitive so no Debug output shows it.
    auth: HeaderValue,
    /// The data center (`us6`).
    pub dc: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for McClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McClient").field("api_base", &self.api_base).field("dc", &self.dc).finish_non_exhaustive()
    }
}

/// A failed Mailchimp request, with the problem document's title and detail when there is one.
#[derive(Debug, Clone)]
pub struct McError {
    pub status: Option<u16>,
    /// `Member Exists`, `Member In Compliance State`, `Invalid Resource`, ...
    pub title: String,
    pub detail: String,
    /// Field errors of an `Invalid Resource`.
    pub errors: Vec<(String, String)>,
    pub transient: bool,
}

impl std::fmt::Display for McError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s} {}", self.title)?,
            None => write!(f, "{}", self.title)?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        for (field, message) in &self.errors {
            write!(f, "; {field}: {message}")?;
        }
        Ok(())
    }
}

impl McError {
    fn from_failure(f: HttpFailure) -> Self {
        let problem: Option<Value> = serde_json::from_str(&f.body).ok();
        let text = |k: &str| problem.as_ref().and_then(|p| p.get(k)).and_then(Value::as_str).map(str::to_owned);
        let errors = problem
            .as_ref()
            .and_then(|p| p.get("errors"))
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|e| {
                        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                        (s("field"), s("message"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        McError {
            status: f.status,
            title: text("title").unwrap_or_else(|| f.class.clone()),
            detail: text("detail").unwrap_or_else(|| if problem.is_some() { String::new() } else { f.message.clone() }),
            errors,
            transient: f.transient,
        }
    }

    /// The error of one operation of a batch (`/batches`): its status and the problem document
    /// the results archive holds as a string. Throttling and 5xx stay transient, as they are
    /// for a request of our own.
    pub fn from_operation(status: u16, response: &str) -> Self {
        let transient = StatusCode::from_u16(status).is_ok_and(connector_http::client::is_transient_status);
        McError::from_failure(HttpFailure {
            transient,
            status: Some(status),
            class: format!("http_{status}"),
            message: response.chars().take(500).collect(),
            body: response.to_owned(),
        })
    }

    /// True for "already exists" answers to a create (duplicate e-commerce ids).
    pub fn already_exists(&self) -> bool {
        self.status == Some(400) && self.detail.contains("already exists")
    }

    /// True when Mailchimp refuses to subscribe the contact for compliance reasons.
    pub fn is_compliance(&self) -> bool {
        self.title == "Member In Compliance State" || self.title == "Forgotten Email Not Subscribed"
    }

    /// The dead-letter class of a permanent failure.
    pub fn class(&self) -> String {
        if self.is_compliance() {
            return "compliance".to_owned();
        }
        if self.title == "Store Linked To Another Audience" {
            return "store_audience".to_owned();
        }
        match self.status {
            Some(400) if self.title == "Invalid Resource" => "validation".to_owned(),
            Some(401 | 403) => "auth".to_owned(),
            Some(404) => "not_found".to_owned(),
            Some(s) => format!("http_{s}"),
            None => "network".to_owned(),
        }
    }
}

/// Mailchimp throttles with 429 and, "at exceptionally high volumes", with a 403 that has no
/// JSON body; both are retried, as are timeouts and 5xx. A 403 with a problem document is a real
/// permission error.
fn is_transient(status: StatusCode, headers: &HeaderMap) -> bool {
    let json = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.contains("json"));
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
        || (status == StatusCode::FORBIDDEN && !json)
}

/// Who the credentials reach.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    pub dc: String,
    pub api_base: String,
}

/// The data center of an API key: what follows its last `-`.
pub fn dc_of_key(key: &str) -> Result<String, ConnectorError> {
    match key.rsplit_once('-') {
        Some((_, dc)) if !dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric()) => Ok(dc.to_owned()),
        _ => Err(ConnectorError::new("the Mailchimp API key has no data-center suffix (it should end like `-us6`)")),
    }
}

fn sensitive(value: String) -> Result<HeaderValue, ConnectorError> {
    let mut v = HeaderValue::try_from(value)
        .map_err(|_| ConnectorError::new("the credential holds characters a header cannot carry"))?;
    v.set_sensitive(true);
    Ok(v)
}

impl McClient {
    /// Builds a client from settings: resolves the credential, then the data center (from the
    /// key, or from the OAuth metadata endpoint for a token).
    pub async fn connect(
        settings: &MailchimpSettings,
        secrets: &dyn SecretResolver,
    ) -> Result<McClient, ConnectorError> {
        let http = build_client(Duration::from_secs(settings.timeout_seconds.max(1)));
        let retry = RetryPolicy { attempts: settings.max_attempts.max(1), ..RetryPolicy::default() };
        let trim = |u: &str| u.trim_end_matches('/').to_owned();
        match &settings.auth {
            MailchimpAuth::ApiKey { key } => {
                let key = secrets.resolve(key).map_err(ConnectorError::new)?;
                let dc = dc_of_key(&key)?;
                let base =
                    settings.base_url.as_deref().map(trim).unwrap_or_else(|| format!("https://{dc}.api.mailchimp.com"));
                let auth = sensitive(connector_http::client::basic_credentials("ml-connector", &key))?;
                Ok(McClient { http, api_base: format!("{base}/3.0"), auth, dc, retry })
            }
            MailchimpAuth::Oauth { token } => {
                let token = secrets.resolve(token).map_err(ConnectorError::new)?;
                let login = settings.oauth_base_url.as_deref().map(trim).unwrap_or_else(|| LOGIN_BASE.to_owned());
                let meta = crate::oauth::metadata(&http, &login, &token).await?;
                let base = settings.base_url.as_deref().map(trim).unwrap_or(meta.api_endpoint);
                Ok(McClient {
                    http,
                    api_base: format!("{base}/3.0"),
                    auth: sensitive(format!("Bearer {token}"))?,
                    dc: meta.dc,
                    retry,
                })
            }
        }
    }

    /// Sends one request to `path` (relative to `/3.0`), retrying what a retry can fix. Returns
    /// the status and the JSON body (`Null` for 204).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), McError> {
        let url = format!("{}{path}", self.api_base);
        let build = || {
            let mut r = self.http.request(method.clone(), &url).header(AUTHORIZATION, self.auth.clone());
            if !query.is_empty() {
                r = r.query(query);
            }
            if let Some(b) = body {
                r = r.json(b);
            }
            r
        };
        match send_with_retry_by("mailchimp", build, self.retry, is_transient).await {
            Ok(response) => Ok(connector_http::client::read_json(response).await),
            Err(failure) => Err(McError::from_failure(failure)),
        }
    }

    /// Downloads a finished batch's results archive. `response_body_url` is a pre-signed link to
    /// storage outside the API, so no credentials are sent and the download does not take one of
    /// the account's connections; it is counted apart (`mailchimp_results`) for that reason.
    pub async fn download(&self, url: &str) -> Result<Vec<u8>, McError> {
        let build = || self.http.get(url);
        let transient = |status: StatusCode, _: &HeaderMap| connector_http::client::is_transient_status(status);
        let response = send_with_retry_by("mailchimp_results", build, self.retry, transient)
            .await
            .map_err(McError::from_failure)?;
        match response.bytes().await {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => Err(McError::from_failure(connector_http::client::failure_from_error(&e))),
        }
    }

    /// GET, treating 404 as "absent".
    pub async fn get_optional(&self, path: &str) -> Result<Option<Value>, McError> {
        match self.send(Method::GET, path, &[], None).await {
            Ok((_, v)) => Ok(Some(v)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The account the credentials reach (`GET /3.0/`).
    pub async fn account(&self) -> Result<Account, McError> {
        let (_, root) = self.send(Method::GET, "/", &[("fields", "account_id,account_name".to_owned())], None).await?;
        let s = |k: &str| root.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        Ok(Account {
            account_id: s("account_id"),
            account_name: s("account_name"),
            dc: self.dc.clone(),
            api_base: self.api_base.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_center_is_the_key_suffix() {
        assert_eq!(dc_of_key("0123456789abcdef-us6").unwrap(), "us6");
        assert_eq!(dc_of_key("a-b-us21").unwrap(), "us21");
        assert!(dc_of_key("nodatacenter").is_err());
        assert!(dc_of_key("key-").is_err());
    }

    #[test]
    fn bare_403_is_throttling_but_a_json_403_is_not() {
        let mut json = HeaderMap::new();
        json.insert(CONTENT_TYPE, "application/problem+json; charset=utf-8".parse().unwrap());
        assert!(is_transient(StatusCode::FORBIDDEN, &HeaderMap::new()));
        assert!(!is_transient(StatusCode::FORBIDDEN, &json));
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS, &json));
        assert!(is_transient(StatusCode::BAD_GATEWAY, &json));
        assert!(!is_transient(StatusCode::BAD_REQUEST, &json));
    }

    #[test]
    fn problem_documents_become_errors_with_class() {
        let failure = HttpFailure {
            transient: false,
            status: Some(400),
            class: "http_400".into(),
            message: String::new(),
            body: r#"{"type":"t","title":"Member In Compliance State","status":400,"detail":"a@b.co is in a compliance state","instance":""}"#.into(),
        };
        let e = McError::from_failure(failure);
        assert!(e.is_compliance());
        assert_eq!(e.class(), "compliance");
        assert_eq!(e.to_string(), "400 Member In Compliance State: a@b.co is in a compliance state");
    }
}
