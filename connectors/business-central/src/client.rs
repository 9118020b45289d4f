//! The Business Central HTTP client: URLs, tokens, retries and OData errors.

use std::time::Duration;

use connector_http::budget::RequestBudget;
use connector_http::client::{HttpFailure, RetryPolicy, build_client, send_with_retry_by};
use engine::connector::{ConnectorError, SecretResolver};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::auth::{Credential, TokenSource, encoding_key};
use crate::settings::{BcCredential, BcSettings};

/// A client bound to one company of one environment.
pub struct BcClient {
    http: reqwest::Client,
    /// `https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>`.
    environment_base: String,
    tokens: TokenSource,
    /// The company's id (resolved from its name when needed).
    pub company_id: String,
    pub company_name: String,
    retry: RetryPolicy,
    /// Every API request draws on it (token requests go to Entra, not BC, and do not).
    budget: RequestBudget,
}

/// Business Central's request limit per user: 6,000 OData requests in any five minutes
/// (then 429). Kept on the client, which is one per connection and shared by every run.
const REQUESTS_PER_WINDOW: usize = 6_000;
const REQUEST_WINDOW: Duration = Duration::from_secs(300);

/// A failed request, with Business Central's error code.
#[derive(Debug, Clone)]
pub struct BcError {
    pub status: Option<u16>,
    /// `Request_EntityChanged`, `BadRequest_NotFound`, `Authentication_InvalidCredentials`, ...
    pub code: String,
    pub message: String,
    pub transient: bool,
}

impl std::fmt::Display for BcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "{s} {}: {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl BcError {
    fn from_failure(f: HttpFailure) -> Self {
        let body: Option<Value> = serde_json::from_str(&f.body).ok();
        let error = body.as_ref().and_then(|b| b.get("error"));
        let text = |k: &str| error.and_then(|e| e.get(k)).and_then(Value::as_str).map(str::to_owned);
        BcError {
            status: f.status,
            code: text("code").unwrap_or_else(|| f.class.clone()),
            message: text("message").unwrap_or(f.message),
            transient: f.transient,
        }
    }

    pub fn stale_etag(&self) -> bool {
        self.status == Some(409) && self.code == "Request_EntityChanged"
    }

    /// The dead-letter class of a permanent failure.
    pub fn class(&self) -> String {
        match (self.status, self.code.as_str()) {
            (_, "Request_EntityChanged") => "conflict".into(),
            (Some(401), _) | (_, "Authentication_InvalidCredentials") => "auth".into(),
            (Some(403), _) => "permission".into(),
            (Some(404), _) => "not_found".into(),
            (_, c) if c.starts_with("Application_") || c.starts_with("BadRequest_") => "validation".into(),
            (Some(s), _) => format!("http_{s}"),
            (None, _) => "network".into(),
        }
    }
}

/// 408, 429 and 5xx (BC answers 503 when its queue waits too long, 504 on timeouts) are worth a
/// retry; `Retry-After` is honoured when present.
fn is_transient(status: StatusCode, _: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

fn looks_like_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

impl BcClient {
    /// Authenticates and resolves the company.
    pub async fn connect(settings: &BcSettings, secrets: &dyn SecretResolver) -> Result<BcClient, ConnectorError> {
        let http = build_client(Duration::from_secs(settings.timeout_seconds.max(1)));
        let credential = match &settings.credential {
            BcCredential::Secret { secret } => {
                Credential::Secret(secrets.resolve(secret).map_err(ConnectorError::new)?)
            }
            BcCredential::Certificate { private_key, thumbprint_sha256 } => Credential::Certificate {
                key: encoding_key(&secrets.resolve(private_key).map_err(ConnectorError::new)?)?,
                thumbprint_sha256: thumbprint_sha256.clone(),
            },
        };
        let token_url = settings
            .token_url
            .clone()
            .unwrap_or_else(|| format!("https://login.microsoftonline.com/{}/oauth2/v2.0/token", settings.tenant));
        let host =
            settings.base_url.as_deref().unwrap_or("https://api.businesscentral.dynamics.com").trim_end_matches('/');
        let mut client = BcClient {
            http: http.clone(),
            environment_base: format!("{host}/v2.0/{}/{}", settings.tenant, settings.environment),
            tokens: TokenSource::new(http, token_url, settings.client_id.clone(), credential),
            company_id: String::new(),
            company_name: String::new(),
            retry: RetryPolicy { attempts: settings.max_attempts.max(1), ..RetryPolicy::default() },
            budget: RequestBudget::new(REQUESTS_PER_WINDOW, REQUEST_WINDOW),
        };
        client.tokens.token().await?;
        let (id, name) = client.resolve_company(&settings.company, &settings.environment).await?;
        client.company_id = id;
        client.company_name = name;
        Ok(client)
    }

    /// `<environment base>/api/<api>`: `api` is `v2.0` or `<publisher>/<group>/<version>`.
    pub fn api_url(&self, api: &str) -> String {
        format!("{}/api/{api}", self.environment_base)
    }

    /// The company-scoped URL of an entity set.
    pub fn entity_url(&self, api: &str, entity: &str) -> String {
        format!("{}/companies({})/{entity}", self.api_url(api), self.company_id)
    }

    /// The environment base, to resolve relative resources in notifications.
    pub fn environment_base(&self) -> &str {
        &self.environment_base
    }

    /// Sends a request to an absolute URL with a fresh token, retrying what a retry can fix,
    /// and once more with a new token after a 401.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), BcError> {
        for attempt in 0..2 {
            let token = self.tokens.token().await.map_err(|e| BcError {
                status: None,
                code: "Authentication_Token".into(),
                message: e.message,
                transient: false,
            })?;
            let mut auth = HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| BcError {
                status: None,
                code: "Authentication_Token".into(),
                message: "the token holds invalid characters".into(),
                transient: false,
            })?;
            auth.set_sensitive(true);
            let build = || {
                let mut r = self.http.request(method.clone(), url).header(AUTHORIZATION, auth.clone());
                for (k, v) in headers {
                    r = r.header(*k, v);
                }
                if let Some(b) = body {
                    r = r.json(b);
                }
                r
            };
            // Retries inside are not charged: they are rare and already spaced by backoff.
            self.budget.acquire().await;
            match send_with_retry_by("business_central", build, self.retry, is_transient).await {
                Ok(response) => return Ok(connector_http::client::read_json(response).await),
                Err(f) if f.status == Some(401) && attempt == 0 => {
                    self.tokens.invalidate().await;
                    continue;
                }
                Err(f) => return Err(BcError::from_failure(f)),
            }
        }
        unreachable!("the loop returns on its second pass")
    }

    /// GET an absolute URL.
    pub async fn get(&self, url: &str, max_page_size: Option<u32>) -> Result<Value, BcError> {
        let headers: Vec<(&str, String)> =
            max_page_size.map(|n| vec![("Prefer", format!("odata.maxpagesize={n}"))]).unwrap_or_default();
        self.send(Method::GET, url, &headers, None).await.map(|(_, v)| v)
    }

    async fn resolve_company(&self, company: &str, environment: &str) -> Result<(String, String), ConnectorError> {
        let url = format!("{}/companies", self.api_url("v2.0"));
        let list = self.get(&url, None).await.map_err(|e| ConnectorError::new(explain_api_error(&e, environment)))?;
        let companies = list["value"].as_array().cloned().unwrap_or_default();
        let by_id = looks_like_guid(company);
        let found = companies.iter().find(|c| {
            if by_id {
                c["id"].as_str().is_some_and(|id| id.eq_ignore_ascii_case(company))
            } else {
                c["name"].as_str() == Some(company)
            }
        });
        match found {
            Some(c) => {
                Ok((c["id"].as_str().unwrap_or_default().to_owned(), c["name"].as_str().unwrap_or_default().to_owned()))
            }
            None => {
                let names: Vec<String> =
                    companies.iter().filter_map(|c| c["name"].as_str().map(|n| format!("`{n}`"))).collect();
                Err(ConnectorError::new(format!(
                    "company `{company}` is not in environment `{environment}` (companies there: {})",
                    names.join(", ")
                )))
            }
        }
    }
}

/// An API error at connection time, in plain words.
pub fn explain_api_error(e: &BcError, environment: &str) -> String {
    match e.status {
        Some(401) => format!(
            "Business Central refused the token: is the app added on the \"Microsoft Entra Applications\" page with permission sets? ({e})"
        ),
        Some(403) => format!(
            "the app lacks permission (API.ReadWrite.All with admin consent, and permission sets in Business Central) ({e})"
        ),
        Some(404) => format!("environment `{environment}` was not found for this tenant ({e})"),
        _ => format!("cannot reach Business Central: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_told_from_names() {
        assert!(looks_like_guid("e802e7d1-5408-f011-9afa-6045bdabb318"));
        assert!(!looks_like_guid("CRONUS USA, Inc."));
        assert!(!looks_like_guid("e802e7d1-5408-f011-9afa-6045bdabb31"));
    }

    #[test]
    fn errors_are_classified() {
        let e = |status, code: &str| BcError {
            status: Some(status),
            code: code.into(),
            message: String::new(),
            transient: false,
        };
        assert_eq!(e(409, "Request_EntityChanged").class(), "conflict");
        assert!(e(409, "Request_EntityChanged").stale_etag());
        assert_eq!(e(400, "Application_FieldValidationException").class(), "validation");
        assert_eq!(e(404, "BadRequest_ResourceNotFound").class(), "not_found");
        assert_eq!(e(401, "Authentication_InvalidCredentials").class(), "auth");
    }
}
