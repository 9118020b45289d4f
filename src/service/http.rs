//! The service's HTTP surface: operations endpoints and the webhook intakes.
//!
//! - `GET /healthz`: the process answers (liveness);
//! - `GET /readyz`: 200 when every project's state store and inbox answer and the service is
//!   not shutting down, else 503 with the reason (readiness: a load balancer stops sending);
//! - `GET /metrics`: Prometheus text;
//! - `/hooks/…`: the intakes. While shutting down they answer 503 before looking at anything,
//!   so senders (Mailchimp, Business Central) keep the delivery and retry later.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Service;
use super::metrics::{family, label};

/// The whole application: operations, the Mailchimp intake, and `hooks` (further intakes,
/// e.g. Business Central notifications, each a router with its own state).
pub fn router(service: Arc<Service>, hooks: Router) -> Router {
    let intakes = super::intake_mailchimp::routes()
        .with_state(service.clone())
        .merge(hooks)
        .layer(from_fn_with_state(service.clone(), refuse_while_stopping));
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(service)
        .merge(intakes)
}

async fn refuse_while_stopping(State(service): State<Arc<Service>>, request: Request, next: Next) -> Response {
    if service.shutdown.is_begun() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    next.run(request).await
}

/// Why the service is not ready, if it is not.
fn not_ready(service: &Service) -> Option<String> {
    if service.shutdown.is_begun() {
        return Some("shutting down".to_owned());
    }
    for p in &service.projects {
        if let Err(e) = p.store.watermarks() {
            return Some(format!("project `{}`: {e}", p.name));
        }
        if let Err(e) = p.inbox.count(super::intake_mailchimp::SOURCE) {
            return Some(format!("project `{}`: {e}", p.name));
        }
    }
    None
}

async fn readyz(State(service): State<Arc<Service>>) -> (StatusCode, String) {
    match not_ready(&service) {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let mut out = String::new();
    service.metrics.render(&mut out);
    family(&mut out, "mlc_inbox_depth", "gauge", "Inbox events not yet read by every pipeline reading them.");
    for p in &service.projects {
        for (source, depth) in p.inbox_depth() {
            out.push_str(&format!(
                "mlc_inbox_depth{{project=\"{}\",source=\"{}\"}} {depth}\n",
                label(&p.name),
                label(&source)
            ));
        }
    }
    family(&mut out, "mlc_ready", "gauge", "1 when the service takes work, 0 when not ready or shutting down.");
    out.push_str(&format!("mlc_ready {}\n", u8::from(not_ready(&service).is_none())));
    engine::telemetry::render_prometheus(&mut out);
    if let Some(upkeep) = &service.upkeep {
        out.push_str(&upkeep.metrics());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
