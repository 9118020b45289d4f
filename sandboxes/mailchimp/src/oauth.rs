//! OAuth 2 (authorization-code flow) as Mailchimp runs it: tokens never expire
//! (`"expires_in": 0, "scope": null`), and the metadata endpoint answers 200 even for a bad
//! token (`{"error": "invalid_token"}`). Issued tokens work as Bearer tokens on the API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::account;
use crate::state::Shared;
use crate::util;

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (status, axum::Json(json!({"error": code, "error_description": description}))).into_response()
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// GET /oauth2/authorize: a consent page, or with `auto=1` the redirect with a code right away.
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if param("response_type") != "code" {
        return error(StatusCode::BAD_REQUEST, "unsupported_response_type", "response_type must be code");
    }
    if !same(param("client_id"), &shared.config.oauth_client_id) {
        return error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    let redirect_uri = param("redirect_uri");
    if reqwest::Url::parse(redirect_uri).is_err() {
        return error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri must be an absolute URL");
    }
    if param("auto") != "1" {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.iter().filter(|(k, _)| *k != "auto"))
            .append_pair("auto", "1")
            .finish();
        return Html(format!(
            "<!doctype html><html><head><title>Authorize</title></head><body><h1>Allow access to the Mailchimp \
             sandbox account?</h1><p><a id=\"allow\" href=\"/oauth2/authorize?{query}\">Allow</a></p></body></html>"
        ))
        .into_response();
    }
    let code = {
        let mut data = shared.lock();
        let seq = data.next_seq();
        let code = util::token("oauth-code", seq);
        data.oauth_codes.insert(code.clone(), redirect_uri.to_string());
        code
    };
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("code", &code);
    if let Some(state) = params.get("state") {
        pairs.append_pair("state", state);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", pairs.finish());
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// POST /oauth2/token (form): exchanges a code, once, for a token that never expires.
fn token_exchange(shared: &Shared, params: &HashMap<String, String>) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if param("grant_type") != "authorization_code" {
        return error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be authorization_code");
    }
    if !same(param("client_id"), &shared.config.oauth_client_id)
        || !same(param("client_secret"), &shared.config.oauth_client_secret)
    {
        return error(StatusCode::BAD_REQUEST, "invalid_client", "Invalid client credentials");
    }
    let mut data = shared.lock();
    match data.oauth_codes.get(param("code")) {
        Some(redirect) if redirect == param("redirect_uri") => {}
        _ => return error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid authorization code"),
    }
    data.oauth_codes.remove(param("code"));
    let seq = data.next_seq();
    let access_token = util::token("oauth-token", seq);
    data.oauth_tokens.insert(access_token.clone());
    axum::Json(json!({"access_token": access_token, "expires_in": 0, "scope": null})).into_response()
}

/// The axum handler of POST /oauth2/token.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, Form(params): Form<HashMap<String, String>>) -> Response {
    token_exchange(&shared, &params)
}

/// GET /oauth2/metadata with `Authorization: OAuth <token>` (or Bearer).
pub(crate) async fn metadata(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("").trim();
    let token = value.split_once(' ').filter(|(s, _)| matches!(s.to_ascii_lowercase().as_str(), "oauth" | "bearer"));
    let valid = token.is_some_and(|(_, t)| shared.lock().oauth_tokens.contains(t.trim()));
    if !valid {
        return error(StatusCode::OK, "invalid_token", "Invalid token");
    }
    axum::Json(account::metadata(&shared)).into_response()
}
