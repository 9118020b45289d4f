//! OAuth 2 for Mailchimp: the authorize URL, the code exchange, and the metadata lookup that
//! tells which data center a token reaches. Mailchimp tokens do not expire (`expires_in: 0`).

use engine::connector::ConnectorError;
use reqwest::Client;
use serde::Deserialize;
use serde_json::Value;

/// What the metadata endpoint says about a token.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub dc: String,
    /// `https://us6.api.mailchimp.com` (no `/3.0`).
    pub api_endpoint: String,
    #[serde(default)]
    pub accountname: String,
}

/// Looks a token up. The endpoint answers 200 even for a bad token, with
/// `{"error": "invalid_token"}`: that is an authentication failure, not a success.
pub async fn metadata(http: &Client, login_base: &str, token: &str) -> Result<Metadata, ConnectorError> {
    let mut auth = reqwest::header::HeaderValue::try_from(format!("OAuth {token}"))
        .map_err(|_| ConnectorError::new("the OAuth token holds invalid characters"))?;
    auth.set_sensitive(true);
    let response = http
        .get(format!("{login_base}/oauth2/metadata"))
        .header(reqwest::header::AUTHORIZATION, auth)
        .send()
        .await
        .map_err(|e| {
            ConnectorError::new(format!(
                "cannot reach the Mailchimp OAuth metadata endpoint: {}",
                connector_http::client::failure_from_error(&e).message
            ))
        })?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .map_err(|_| ConnectorError::new(format!("the OAuth metadata endpoint answered {status} without JSON")))?;
    if let Some(error) = body.get("error").and_then(Value::as_str) {
        return Err(ConnectorError::new(format!(
            "Mailchimp refused the OAuth token ({error}); connect the account again with `ml-connector connect mailchimp`"
        )));
    }
    if !status.is_success() {
        return Err(ConnectorError::new(format!("the OAuth metadata endpoint answered {status}")));
    }
    serde_json::from_value(body).map_err(|e| ConnectorError::new(format!("unexpected OAuth metadata: {e}")))
}

/// The URL the account owner opens to grant access.
pub fn authorize_url(login_base: &str, client_id: &str, redirect_uri: &str, state: &str) -> String {
    format!(
        "{login_base}/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&state={}",
        encode(client_id),
        encode(redirect_uri),
        encode(state)
    )
}

/// Exchanges an authorization code for an access token.
pub async fn exchange_code(
    http: &Client,
    login_base: &str,
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
    code: &str,
) -> Result<String, ConnectorError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("redirect_uri", redirect_uri),
        ("code", code),
    ];
    let response = http.post(format!("{login_base}/oauth2/token")).form(&form).send().await.map_err(|e| {
        ConnectorError::new(format!(
            "cannot reach the Mailchimp token endpoint: {}",
            connector_http::client::failure_from_error(&e).message
        ))
    })?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body.get("access_token").and_then(Value::as_str) {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => {
            let error = body.get("error").and_then(Value::as_str).unwrap_or("no access token");
            Err(ConnectorError::new(format!("Mailchimp refused the authorization code ({status}, {error})")))
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
