//! `ml-connector serve`: the long-running service. This first part is webhook intake: Mailchimp
//! events are checked (secret URL token, optional HMAC signature), stored in the inbox, and only
//! then acknowledged; the return-flow pipelines read them from there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use connector_mailchimp::webhooks::{event_record, parse_form, token_matches, verify_signature};
use engine::config::SecretRef;
use inbox::Inbox;

use super::{FAILED, OK, load_one};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(short, long, default_value = ".")]
    project: PathBuf,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The vault secret holding the token in the Mailchimp webhook URL
    /// (`https://host/hooks/mailchimp/<token>`).
    #[arg(long, default_value = "mailchimp_webhook_token")]
    mailchimp_token: String,
    /// The vault secret holding the webhook's signing secret; when set, unsigned or wrongly
    /// signed deliveries are refused.
    #[arg(long)]
    mailchimp_signing_secret: Option<String>,
}

/// What the handlers need.
struct Intake {
    inbox: Inbox,
    mailchimp_token: String,
    signing_secret: Option<String>,
}

/// Bodies larger than this are refused: a Mailchimp event is a few hundred bytes.
const BODY_LIMIT: usize = 64 * 1024;

pub fn execute(args: &Args) -> u8 {
    let project = match load_one(&args.project) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let secrets = super::secrets::resolver(&project);
    let resolve = |name: &str| secrets.resolve(&SecretRef::Secret(name.to_owned()));
    let token = match resolve(&args.mailchimp_token) {
        Ok(t) if t.len() >= 16 => t,
        Ok(_) => {
            eprintln!(
                "the webhook token `{}` is too short to be a secret (16 characters at least)",
                args.mailchimp_token
            );
            return FAILED;
        }
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    let signing_secret = match args.mailchimp_signing_secret.as_deref().map(resolve).transpose() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    let inbox = match Inbox::open(&project.dir.join(inbox::DEFAULT_PATH)) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            return FAILED;
        }
    };
    let intake = Arc::new(Intake { inbox, mailchimp_token: token, signing_secret });
    let app = router(intake);
    let result = super::runtime().block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!("serving on http://{}", listener.local_addr()?);
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                tokio::signal::ctrl_c().await.ok();
            })
            .await
    });
    match result {
        Ok(()) => OK,
        Err(e) => {
            eprintln!("serve: {e}");
            FAILED
        }
    }
}

fn router(intake: Arc<Intake>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/hooks/mailchimp/{token}", get(mailchimp_validate).post(mailchimp_event))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(intake)
}

/// Mailchimp checks a webhook URL with a GET before it saves the webhook.
async fn mailchimp_validate(State(intake): State<Arc<Intake>>, Path(token): Path<String>) -> StatusCode {
    if token_matches(&intake.mailchimp_token, &token) { StatusCode::OK } else { StatusCode::NOT_FOUND }
}

/// One event: authenticate, store, then acknowledge. A wrong token gets a bare 404 (nothing to
/// learn from); a body that cannot be parsed is 400 and logged; a storage failure is 503 so
/// Mailchimp retries.
async fn mailchimp_event(
    State(intake): State<Arc<Intake>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !token_matches(&intake.mailchimp_token, &token) {
        return StatusCode::NOT_FOUND;
    }
    if let Some(secret) = &intake.signing_secret {
        let header = headers.get("x-mailchimp-signature").and_then(|v| v.to_str().ok());
        let now = jiff::Timestamp::now().as_second();
        if let Err(e) = verify_signature(secret, header, &body, now) {
            tracing::warn!(reason = ?e, "Refused a Mailchimp delivery with a bad signature.");
            return StatusCode::UNAUTHORIZED;
        }
    }
    let record = match parse_form(&body).and_then(|form| event_record(&form)) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "Refused a malformed Mailchimp delivery.");
            return StatusCode::BAD_REQUEST;
        }
    };
    // Deliveries are at least once: the same event again has the same key.
    let s = |k: &str| record.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let key =
        format!("{}|{}|{}|{}", s("type"), s("email").to_lowercase(), s("old_email").to_lowercase(), s("fired_at"));
    match intake.inbox.put("mailchimp", &key, &record) {
        Ok(stored) => {
            tracing::info!(kind = %s("type"), new = stored.is_some(), "Stored a Mailchimp event.");
            StatusCode::OK
        }
        Err(e) => {
            tracing::error!(error = %e, "Could not store a Mailchimp event.");
            StatusCode::SERVICE_UNAVAILABLE
        }
    }
}
