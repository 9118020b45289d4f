//! Microsoft Entra ID client credentials: a token per app, cached and refreshed before expiry.

use std::time::{Duration, Instant};

use engine::connector::ConnectorError;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Client;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

/// The scope of every Business Central token.
pub const SCOPE: &str = "https://api.businesscentral.dynamics.com/.default";

/// A token is renewed this long before it expires, so no request carries one that expires in
/// flight.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// How the app authenticates, with its secret material resolved.
pub enum Credential {
    Secret(String),
    Certificate { key: EncodingKey, thumbprint_sha256: String },
}

/// Gets and caches access tokens.
pub struct TokenSource {
    http: Client,
    token_url: String,
    client_id: String,
    credential: Credential,
    cached: Mutex<Option<(String, Instant)>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

impl TokenSource {
    pub fn new(http: Client, token_url: String, client_id: String, credential: Credential) -> Self {
        TokenSource { http, token_url, client_id, credential, cached: Mutex::new(None) }
    }

    /// A valid token: the cached one while it has more than the margin left, else a new one.
    pub async fn token(&self) -> Result<String, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + REFRESH_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.request().await?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Forgets the cached token (after a 401: it was revoked or the clock lied).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn request(&self) -> Result<(String, Duration), ConnectorError> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.client_id.clone()),
            ("scope", SCOPE.to_owned()),
        ];
        match &self.credential {
            Credential::Secret(secret) => form.push(("client_secret", secret.clone())),
            Credential::Certificate { key, thumbprint_sha256 } => {
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", self.assertion(key, thumbprint_sha256)?));
            }
        }
        let started = std::time::Instant::now();
        let sent = self.http.post(&self.token_url).form(&form).send().await;
        let status = sent.as_ref().ok().map(|r| r.status().as_u16());
        engine::telemetry::api_call("microsoft_entra", status, started.elapsed());
        let response = sent.map_err(|e| {
            ConnectorError::new(format!(
                "cannot reach the token endpoint: {}",
                connector_http::client::failure_from_error(&e).message
            ))
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(token) = body.get("access_token").and_then(Value::as_str).filter(|_| status.is_success()) {
            let seconds =
                body.get("expires_in").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(3599);
            return Ok((token.to_owned(), Duration::from_secs(seconds)));
        }
        Err(ConnectorError::new(explain_token_error(status.as_u16(), &body)))
    }

    fn assertion(&self, key: &EncodingKey, thumbprint: &str) -> Result<String, ConnectorError> {
        let now = jiff::Timestamp::now().as_second();
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.x5t_s256 = Some(thumbprint.to_owned());
        let claims = Assertion {
            aud: &self.token_url,
            iss: &self.client_id,
            sub: &self.client_id,
            jti: engine::executor::new_run_id(),
            nbf: now,
            iat: now,
            exp: now + 600,
        };
        jsonwebtoken::encode(&header, &claims, key)
            .map_err(|e| ConnectorError::new(format!("cannot sign the client assertion: {e}")))
    }
}

/// Entra's error, in plain words. The `error` code is stable; AADSTS numbers and descriptions
/// are for humans (Microsoft says not to branch on them), so they are quoted, not parsed.
pub fn explain_token_error(status: u16, body: &Value) -> String {
    let error = body.get("error").and_then(Value::as_str).unwrap_or("");
    let description =
        body.get("error_description").and_then(Value::as_str).unwrap_or("").lines().next().unwrap_or("").to_owned();
    let plain = match error {
        "invalid_client" => {
            "the app's client id or credential was refused (wrong secret, expired secret, or unknown certificate)"
        }
        "unauthorized_client" => "the app is not allowed to use client credentials in this tenant",
        "invalid_scope" => "the scope was refused",
        "invalid_request" => "the token request was refused (is the tenant right?)",
        "invalid_grant" => "the grant was refused",
        "temporarily_unavailable" => "Microsoft Entra ID is temporarily unavailable",
        "" => "the token endpoint answered without a token",
        _ => "the token request failed",
    };
    if description.is_empty() {
        format!("{plain} ({status} {error})")
    } else {
        format!("{plain} ({status} {error}: {description})")
    }
}

/// Reads a PEM RSA private key.
pub fn encoding_key(pem: &str) -> Result<EncodingKey, ConnectorError> {
    EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| ConnectorError::new("the certificate's private key is not an RSA key in PEM form"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_errors_are_explained_without_parsing_aadsts_numbers() {
        let body = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x", "error_codes": [7000215]});
        assert_eq!(
            explain_token_error(401, &body),
            "the app's client id or credential was refused (wrong secret, expired secret, or unknown certificate) (401 invalid_client: AADSTS7000215: Invalid client secret provided.)"
        );
        assert!(explain_token_error(400, &json!({"error": "invalid_scope"})).starts_with("the scope was refused"));
    }
}
