//! Webhook subscriptions: Business Central deletes them after 3 days (and after a receiver
//! answers a non-retryable 4xx), so they are renewed well before expiry and recreated when
//! gone. `ensure` is idempotent: call it on start and on a schedule.

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{BcClient, BcError};

/// One subscription as Business Central reports it.
#[derive(Clone, Serialize)]
pub struct Subscription {
    pub id: String,
    pub resource: String,
    pub notification_url: String,
    pub expiration: String,
    pub etag: String,
    /// Echoed in every notification; compared by the receiver.
    #[serde(skip)]
    pub client_state: String,
}

/// By hand, so the client state (a secret) never reaches a log line.
impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("resource", &self.resource)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl Subscription {
    fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Subscription {
            id: s("subscriptionId")?,
            resource: s("resource")?,
            notification_url: s("notificationUrl")?,
            expiration: s("expirationDateTime").unwrap_or_default(),
            etag: s("@odata.etag").unwrap_or_else(|| "*".into()),
            client_state: s("clientState").unwrap_or_default(),
        })
    }
}

/// What `ensure` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnsureReport {
    pub created: Vec<String>,
    pub renewed: Vec<String>,
    pub kept: Vec<String>,
}

/// The relative resource of a company-scoped entity set, as subscriptions name it.
pub fn resource_for(client: &BcClient, api: &str, entity_set: &str) -> String {
    format!("api/{api}/companies({})/{entity_set}", client.company_id)
}

fn subscriptions_url(client: &BcClient, api: &str) -> String {
    format!("{}/subscriptions", client.api_url(api))
}

pub async fn list(client: &BcClient, api: &str) -> Result<Vec<Subscription>, BcError> {
    let v = client.get(&subscriptions_url(client, api), None).await?;
    Ok(v["value"].as_array().into_iter().flatten().filter_map(Subscription::from_json).collect())
}

/// Creates a subscription; Business Central calls `notification_url` with a validation token
/// first, which the receiver must echo within 5 seconds.
pub async fn create(
    client: &BcClient,
    api: &str,
    resource: &str,
    notification_url: &str,
    client_state: &str,
) -> Result<Subscription, BcError> {
    let body = json!({"notificationUrl": notification_url, "resource": resource, "clientState": client_state});
    let (_, v) = client.send(Method::POST, &subscriptions_url(client, api), &[], Some(&body)).await?;
    Subscription::from_json(&v).ok_or_else(|| BcError {
        status: None,
        code: "Unexpected".into(),
        message: "the created subscription has no id".into(),
        transient: false,
    })
}

/// Renews a subscription (a PATCH restarts its 3 days; the handshake runs again).
pub async fn renew(
    client: &BcClient,
    api: &str,
    sub: &Subscription,
    client_state: &str,
) -> Result<Subscription, BcError> {
    let url = format!("{}('{}')", subscriptions_url(client, api), sub.id);
    let body = json!({"notificationUrl": sub.notification_url, "resource": sub.resource, "clientState": client_state});
    let (_, v) = client.send(Method::PATCH, &url, &[("If-Match", sub.etag.clone())], Some(&body)).await?;
    Subscription::from_json(&v).ok_or_else(|| BcError {
        status: None,
        code: "Unexpected".into(),
        message: "the renewed subscription has no id".into(),
        transient: false,
    })
}

pub async fn delete(client: &BcClient, api: &str, sub: &Subscription) -> Result<(), BcError> {
    let url = format!("{}('{}')", subscriptions_url(client, api), sub.id);
    client.send(Method::DELETE, &url, &[("If-Match", sub.etag.clone())], None).await.map(|_| ())
}

/// Makes sure each of `resources` has a live subscription to `notification_url`: creates
/// missing ones, renews those expiring within `renew_within` of `now`, keeps the rest.
pub async fn ensure(
    client: &BcClient,
    api: &str,
    resources: &[String],
    notification_url: &str,
    client_state: &str,
    now: jiff::Timestamp,
    renew_within: jiff::SignedDuration,
) -> Result<EnsureReport, BcError> {
    let existing = list(client, api).await?;
    let mut report = EnsureReport::default();
    for resource in resources {
        let same = |s: &&Subscription| {
            s.notification_url == notification_url
                && s.resource.trim_start_matches('/') == resource.trim_start_matches('/')
        };
        match existing.iter().find(same) {
            None => {
                create(client, api, resource, notification_url, client_state).await?;
                report.created.push(resource.clone());
            }
            Some(sub) => {
                let expires: Option<jiff::Timestamp> = sub.expiration.parse().ok();
                // A rotated client state is renewed at once: the receiver refuses the old one.
                let due =
                    expires.is_none_or(|e| e.duration_since(now) < renew_within) || sub.client_state != client_state;
                if !due {
                    report.kept.push(resource.clone());
                    continue;
                }
                match renew(client, api, sub, client_state).await {
                    Ok(_) => report.renewed.push(resource.clone()),
                    // Expired and purged meanwhile: a PATCH cannot bring it back; create anew.
                    Err(e) if e.status == Some(404) => {
                        create(client, api, resource, notification_url, client_state).await?;
                        report.created.push(resource.clone());
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(report)
}
