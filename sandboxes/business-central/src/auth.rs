//! Microsoft Entra ID's token endpoint (client credentials, with a secret or a certificate
//! assertion) and bearer validation for the API [ENTRA-CC][ENTRA-CERT][ENTRA-ERR].
//!
//! Errors carry Entra's shape: `error`, `error_description` (`AADSTSnnnn: …` plus trace id,
//! correlation id and timestamp lines), `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`, `error_uri`; 400, or 401 for `invalid_client`. Tokens expire on the virtual
//! clock; a missing, unknown or expired token gets BC's 401 `Authentication_InvalidCredentials`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::clock::{add, fmt_entra};
use crate::errors::ApiError;
use crate::state::Shared;
use crate::util::{guid, random_u64};

/// The only scope this endpoint issues tokens for.
pub(crate) const BC_RESOURCE: &str = "https://api.businesscentral.dynamics.com";
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An issued access token.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// The app the token was issued to (the throttling user).
    pub client_id: String,
    /// The tenant it is valid for.
    pub tenant: String,
    /// When it stops working (virtual clock).
    pub expires: Timestamp,
}

/// An Entra error: status, `error`, AADSTS number and text.
struct EntraError {
    /// 400, or 401 for `invalid_client`.
    status: u16,
    /// The OAuth `error` value.
    error: &'static str,
    /// The AADSTS number.
    code: u32,
    /// The description after `AADSTSnnnn: `.
    text: String,
}

fn entra(status: u16, error: &'static str, code: u32, text: impl Into<String>) -> EntraError {
    EntraError { status, error, code, text: text.into() }
}

fn missing(parameter: &str) -> EntraError {
    entra(
        400,
        "invalid_request",
        900144,
        format!("The request body must contain the following parameter: '{parameter}'."),
    )
}

impl EntraError {
    fn response(&self, now: Timestamp) -> Response {
        let (trace, correlation, ts) = (guid(), guid(), fmt_entra(now));
        let body = json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {ts}",
                self.code, self.text
            ),
            "error_codes": [self.code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        json_response(self.status, &body)
    }
}

fn json_response(status: u16, body: &Value) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store, no-cache"));
    response
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(crate) async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.clock.now();
    match issue(&shared, &tenant, &headers, &body, now) {
        Ok(body) => json_response(200, &body),
        Err(error) => error.response(now),
    }
}

/// Any other method on the token endpoint.
pub(crate) async fn token_wrong_method(State(shared): State<Arc<Shared>>) -> Response {
    entra(400, "invalid_request", 900561, "The endpoint only accepts POST requests. Received a GET request.")
        .response(shared.clock.now())
}

fn issue(shared: &Shared, tenant: &str, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<Value, EntraError> {
    let config = &shared.config;
    if !tenant.eq_ignore_ascii_case(&config.tenant) {
        return Err(entra(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        ));
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    let params: Vec<(String, String)> = if is_form {
        form_urlencoded::parse(body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    } else {
        Vec::new()
    };
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let (basic_id, basic_secret) = basic_credentials(headers);

    let grant = param("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(entra(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    let client_id = param("client_id").or(basic_id).ok_or_else(|| missing("client_id"))?;
    let scope = param("scope").ok_or_else(|| missing("scope"))?;
    if client_id != config.client_id {
        return Err(entra(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    match param("client_assertion") {
        Some(assertion) => {
            match param("client_assertion_type") {
                None => return Err(missing("client_assertion_type")),
                Some(t) if t != ASSERTION_TYPE => {
                    return Err(entra(400, "invalid_request", 50027, format!("Invalid client_assertion_type '{t}'.")));
                }
                Some(_) => {}
            }
            check_assertion(shared, &assertion, &client_id, now)?;
        }
        None => {
            let secret = param("client_secret").or(basic_secret).ok_or_else(|| {
                entra(
                    401,
                    "invalid_client",
                    7000218,
                    "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                )
            })?;
            if secret != config.client_secret {
                return Err(entra(
                    401,
                    "invalid_client",
                    7000215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                    ),
                ));
            }
        }
    }
    check_scope(&scope, tenant)?;
    let lifetime = config.token_lifetime.as_secs();
    let expires = add(now, config.token_lifetime);
    let access_token = jwt(&client_id, &config.tenant, now, expires);
    let mut data = shared.lock();
    data.tokens.retain(|_, t| t.expires > now);
    data.tokens.insert(access_token.clone(), Token { client_id, tenant: config.tenant.clone(), expires });
    drop(data);
    Ok(
        json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access_token}),
    )
}

/// The resource must be BC's and end with `/.default` (one resource per request).
fn check_scope(scope: &str, tenant: &str) -> Result<(), EntraError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if scopes.len() != 1 {
        return Err(entra(
            400,
            "invalid_scope",
            70011,
            format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
        ));
    }
    let Some(resource) = scopes[0].strip_suffix("/.default") else {
        return Err(entra(
            400,
            "invalid_scope",
            1002012,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    };
    if resource.trim_end_matches('/') != BC_RESOURCE {
        return Err(entra(
            400,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."
            ),
        ));
    }
    Ok(())
}

/// Checks a client assertion's shape and claims (not its signature: the sandbox has no
/// certificate registry).
fn check_assertion(shared: &Shared, assertion: &str, client_id: &str, now: Timestamp) -> Result<(), EntraError> {
    let malformed = || entra(401, "invalid_client", 50027, "JWT token is invalid or malformed.");
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(malformed());
    }
    let decode = |part: &str| -> Option<Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = decode(parts[0]).ok_or_else(malformed)?;
    let claims = decode(parts[1]).ok_or_else(malformed)?;
    if header.get("alg").and_then(Value::as_str).is_none() {
        return Err(malformed());
    }
    let iss = claims.get("iss").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    if iss != Some(client_id) || sub != Some(client_id) {
        return Err(entra(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .",
        ));
    }
    let tenant = &shared.config.tenant;
    let accepted = [
        format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"),
        format!("{}/{tenant}/oauth2/v2.0/token", shared.base_url),
    ];
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => accepted.iter().any(|x| x.eq_ignore_ascii_case(a)),
        Some(Value::Array(list)) => {
            list.iter().filter_map(Value::as_str).any(|a| accepted.iter().any(|x| x.eq_ignore_ascii_case(a)))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(entra(
            401,
            "invalid_client",
            50027,
            "JWT token is invalid or malformed. The audience of the client assertion is not valid.",
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(malformed)?;
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(i64::MIN);
    let t = now.as_second();
    if exp <= t || nbf > t + 300 {
        return Err(entra(
            401,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {now}, expiry time of assertion {exp}."
            ),
        ));
    }
    Ok(())
}

/// `Authorization: Basic base64(id:secret)` (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> (Option<String>, Option<String>) {
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return (None, None) };
    let Some((scheme, rest)) = value.trim().split_once(' ') else { return (None, None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return (None, None);
    }
    let Some(decoded) =
        base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok().and_then(|b| String::from_utf8(b).ok())
    else {
        return (None, None);
    };
    let decode = |s: &str| form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
    match decoded.split_once(':') {
        Some((id, secret)) => (decode(id), decode(secret)),
        None => (None, None),
    }
}

/// A JWT-shaped token with the claims a BC app token carries (the signature is random: only
/// this sandbox validates it, by lookup).
fn jwt(client_id: &str, tenant: &str, now: Timestamp, expires: Timestamp) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": "sandbox", "kid": "sandbox"});
    let claims = json!({
        "aud": BC_RESOURCE,
        "iss": format!("https://sts.windows.net/{tenant}/"),
        "iat": now.as_second(), "nbf": now.as_second(), "exp": expires.as_second(),
        "appid": client_id, "appidacr": "1", "idp": format!("https://sts.windows.net/{tenant}/"),
        "oid": user_id(client_id), "roles": ["API.ReadWrite.All"], "tid": tenant, "ver": "1.0",
        "uti": crate::util::hex32(),
    });
    let signature: Vec<u8> = (0..32).flat_map(|_| random_u64().to_le_bytes()).take(256).collect();
    format!("{}.{}.{}", b64(&header), b64(&claims), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature))
}

/// The BC user id of an app (stable per client id).
pub(crate) fn user_id(client_id: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in client_id.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    let hex = format!("{hash:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Validates `Authorization: Bearer …` for an API request; returns the app's client id.
pub(crate) fn authenticate(shared: &Shared, headers: &HeaderMap, url_tenant: Option<&str>) -> Result<String, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    let Some((scheme, token)) = value.split_once(' ') else { return Err(ApiError::unauthorized()) };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized());
    }
    let data = shared.lock();
    let issued = data.tokens.get(token.trim()).ok_or_else(ApiError::unauthorized)?;
    if issued.expires <= shared.clock.now() {
        return Err(ApiError::unauthorized());
    }
    if let Some(t) = url_tenant
        && !t.eq_ignore_ascii_case(&issued.tenant)
    {
        return Err(ApiError::unauthorized());
    }
    Ok(issued.client_id.clone())
}

/// The `WWW-Authenticate` challenge sent with 401s.
pub(crate) fn challenge(tenant: &str) -> String {
    format!(
        "Bearer authorization_uri=\"https://login.microsoftonline.com/{tenant}/oauth2/authorize\", resource_id=\"{BC_RESOURCE}\""
    )
}
