//! Mailchimp webhook intake: `GET|POST /hooks/mailchimp/{token}`.
//!
//! A delivery is checked (the secret URL token picks the project; the HMAC signature when the
//! project has a signing secret), stored in that project's inbox, and only then acknowledged;
//! then the pipelines reading Mailchimp events are told to run. Deliveries are at least once,
//! so each event has a de-duplication key and a repeat is acknowledged and dropped.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use connector_mailchimp::webhooks::{event_record, parse_form, token_matches, verify_signature};

use super::Service;
use super::metrics::Delivery;
use super::project::{Arrival, Served};

/// The inbox source (the `inbox` connector's entity) Mailchimp events are stored under.
pub const SOURCE: &str = inbox::MAILCHIMP_SOURCE;

/// Bodies larger than this are refused: a Mailchimp event is a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

/// The routes, with their body limit.
pub fn routes() -> Router<Arc<Service>> {
    Router::new().route("/hooks/mailchimp/{token}", get(validate).post(event)).layer(DefaultBodyLimit::max(BODY_LIMIT))
}

/// The project whose token this is. Every project's token is compared (in constant time), so
/// the answer's timing tells nothing about which project, or how much of a token, matched.
fn project_for<'a>(service: &'a Service, token: &str) -> Option<&'a Arc<Served>> {
    let mut found = None;
    for served in &service.projects {
        if served.mailchimp.as_ref().is_some_and(|m| token_matches(&m.token, token)) && found.is_none() {
            found = Some(served);
        }
    }
    found
}

/// Mailchimp checks a webhook URL with a GET before it saves the webhook.
async fn validate(State(service): State<Arc<Service>>, Path(token): Path<String>) -> StatusCode {
    if project_for(&service, &token).is_some() { StatusCode::OK } else { StatusCode::NOT_FOUND }
}

/// One event: authenticate, store, acknowledge, trigger. A wrong token gets a bare 404 (nothing
/// to learn from); a body that cannot be parsed is 400 and logged; a storage failure is 503 so
/// Mailchimp retries.
async fn event(
    State(service): State<Arc<Service>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let Some(served) = project_for(&service, &token) else { return StatusCode::NOT_FOUND };
    let hook = served.mailchimp.as_ref().expect("a project found by its token has a hook");
    let refused = |status: StatusCode| {
        service.metrics.webhook(&served.name, SOURCE, Delivery::Refused);
        status
    };
    if let Some(secret) = hook.signing.get() {
        let header = headers.get("x-mailchimp-signature").and_then(|v| v.to_str().ok());
        let now = jiff::Timestamp::now().as_second();
        if let Err(e) = verify_signature(&secret, header, &body, now) {
            tracing::warn!(project = %served.name, reason = ?e, "Refused a Mailchimp delivery with a bad signature.");
            return refused(StatusCode::UNAUTHORIZED);
        }
    }
    let record = match parse_form(&body).and_then(|form| event_record(&form)) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(project = %served.name, error = %e, "Refused a malformed Mailchimp delivery.");
            return refused(StatusCode::BAD_REQUEST);
        }
    };
    let s = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let key =
        format!("{}|{}|{}|{}", s("type"), s("email").to_lowercase(), s("old_email").to_lowercase(), s("fired_at"));
    match served.inbox.put(SOURCE, &key, &record) {
        Ok(stored) => {
            tracing::info!(project = %served.name, kind = %s("type"), seq = ?stored, new = stored.is_some(), "Stored a Mailchimp event.");
            if stored.is_some() {
                service.metrics.webhook(&served.name, SOURCE, Delivery::Stored);
                served.arrived(Arrival::Events { source: SOURCE.to_owned() });
            } else {
                service.metrics.webhook(&served.name, SOURCE, Delivery::Duplicate);
            }
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(project = %served.name, error = %e, "Could not store a Mailchimp event.");
            refused(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}
