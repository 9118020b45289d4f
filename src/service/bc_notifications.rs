//! Business Central webhook intake: `GET|POST /hooks/business-central/{token}`.
//!
//! Business Central calls the subscription's `notificationUrl` for two things
//! (`shared/reference/business-central.md` §5):
//!
//! - the **validation handshake**, inside every subscription create and renew: a POST (GET is
//!   accepted too) with `?validationToken=<random>` and no body, which must be answered 200 with
//!   the token as the whole `text/plain` body within 5 seconds, or the subscription is refused.
//!   It is answered before anything touches the disk.
//! - **notifications**: `{"value":[{subscriptionId, clientState, expirationDateTime, resource,
//!   changeType, lastModifiedDateTime}, …]}`, one POST per notification URL aggregating every
//!   subscription that shares it. They are pointers ("customer X changed"), stored in the inbox
//!   (source [`INBOX_SOURCE`], de-duplicated) before the 202, after which the service is told
//!   which entity of which connection changed, so it runs the pipelines reading it (an
//!   incremental read by `lastModifiedDateTime` fetches the change itself).
//!
//! Status codes are chosen around one rule of Business Central's: **any non-2xx answer other
//! than 408, 429 and 5xx deletes the subscription, and every other subscription on the same
//! URL, at once**. Hence:
//!
//! - a wrong URL token is a bare 404: that URL is not ours to keep alive;
//! - a notification whose `clientState` does not match is dropped with a log line but the
//!   delivery is still acknowledged (a stale subscription, e.g. after the clientState secret
//!   was rotated, is fixed by the next renewal; answering 4xx would delete the good ones too);
//! - an entry that lacks fields is skipped the same way; only a body that is not JSON at all
//!   (which Business Central never sends) is a 400;
//! - the content type is not checked (a 415 would also delete the subscription);
//! - the body limit ([`BODY_LIMIT`]) is far above the largest delivery Business Central builds
//!   (it collapses more than 1,000 notifications of a subscription into one `collection`);
//! - a storage failure is a 503, which Business Central retries (1, 1, 10, 100, 1000 minutes).
//!
//! One router serves every project of the service: each project has its own URL token (and so
//! its own notification URL, subscriptions and inbox); the token picks the project.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use connector_mailchimp::webhooks::token_matches;
use inbox::Inbox;
use serde_json::{Map, Value, json};

/// The inbox source notifications are stored under (the `inbox` connector's entity).
pub const INBOX_SOURCE: &str = "business-central";

/// The route, relative to the service's root.
pub const ROUTE: &str = "/hooks/business-central/{token}";

/// Bodies larger than this are refused (413). A notification is about 350 bytes and Business
/// Central sends at most 1,000 per subscription per delivery before collapsing them into one
/// `collection` notification, so this leaves room for a dozen subscriptions on one URL.
pub const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Validation tokens longer than this are refused: Business Central's are GUIDs, and the token
/// is echoed back, so an unbounded one would be a free reflection service.
const MAX_VALIDATION_TOKEN: usize = 1024;

/// The notification URL of a project: what Business Central must reach.
pub fn notification_url(public_url: &str, token: &str) -> String {
    format!("{}/hooks/business-central/{token}", public_url.trim_end_matches('/'))
}

/// "Entity `entity` of connection `connection` in project `project` changed": what the service
/// acts on by running the pipelines whose source that is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BcChange {
    /// The project's name (`name:` in its project file).
    pub project: String,
    /// The `business-central` connection, when the subscription is known (see [`Routes`]);
    /// `None` means "whichever connection reads `entity`".
    pub connection: Option<String>,
    /// The source entity as pipelines name it: `customers`, or `publisher/group/version/set`.
    pub entity: String,
}

/// How the service is told about changes. Called after the notifications are stored, once per
/// distinct changed entity of a delivery; it must not block (send on a channel, set a flag).
pub type ChangeTrigger = Arc<dyn Fn(BcChange) + Send + Sync>;

/// A [`ChangeTrigger`] that sends on an unbounded channel, and its receiver.
pub fn channel_trigger() -> (ChangeTrigger, tokio::sync::mpsc::UnboundedReceiver<BcChange>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    (Arc::new(move |change| drop(tx.send(change))), rx)
}

/// Which connection and entity a subscribed resource belongs to, shared between the upkeep
/// (which creates the subscriptions and so knows) and the receiver (which routes
/// notifications). Keys are the subscription's resource (`api/v2.0/companies(<id>)/customers`)
/// in lower case.
#[derive(Clone, Default)]
pub struct Routes(Arc<RwLock<HashMap<String, (String, String)>>>);

impl Routes {
    /// Records that `resource` is `entity` of `connection`.
    pub fn insert(&self, resource: &str, connection: &str, entity: &str) {
        let key = collection_of(resource);
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(key, (connection.to_owned(), entity.to_owned()));
    }

    /// The connection and entity of a notification's resource (an entity, a filtered or bare
    /// collection), if its subscription is known.
    pub fn lookup(&self, resource: &str) -> Option<(String, String)> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(&collection_of(resource)).cloned()
    }
}

/// The subscribed collection of a notification resource, lower-cased: the query (`collection`
/// notifications carry a `$filter`) and the last segment's key (`customers(<id>)`) removed.
fn collection_of(resource: &str) -> String {
    let path = resource.trim().trim_start_matches('/');
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let (head, last) = path.rsplit_once('/').unwrap_or(("", path));
    let last = last.split_once('(').map_or(last, |(name, _)| name);
    let joined = if head.is_empty() { last.to_owned() } else { format!("{head}/{last}") };
    joined.to_ascii_lowercase()
}

/// The entity as pipelines name it, read from the resource itself (for notifications of a
/// subscription the upkeep has not routed yet): `api/v2.0/companies(…)/customers(…)` →
/// `customers`; `api/contoso/marketing/v1.0/companies(…)/customerConsents` →
/// `contoso/marketing/v1.0/customerConsents`.
fn entity_of(resource: &str) -> Option<String> {
    let path = resource.trim().trim_start_matches('/');
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    let rest = path.strip_prefix("api/")?;
    let (api, tail) = rest.split_once("/companies(")?;
    let set = tail.rsplit_once('/')?.1;
    let set = set.split_once('(').map_or(set, |(name, _)| name);
    if set.is_empty() {
        return None;
    }
    Some(if api == "v2.0" { set.to_owned() } else { format!("{api}/{set}") })
}

/// One project's receiving end.
pub struct BcReceiver {
    /// The project's name, passed on in [`BcChange`].
    pub project: String,
    /// The secret token in the notification URL (16 characters at least).
    pub token: String,
    /// The `clientState` the project's subscriptions were created with (from the vault).
    pub client_state: String,
    /// Where notifications are stored.
    pub inbox: Inbox,
    /// Resource → connection and entity, filled by the upkeep.
    pub routes: Routes,
}

impl std::fmt::Debug for BcReceiver {
    /// Never prints the token or the client state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BcReceiver").field("project", &self.project).finish_non_exhaustive()
    }
}

/// The Business Central webhook intake of the service.
///
/// ```ignore
/// let (trigger, mut changes) = bc_notifications::channel_trigger();
/// let receivers = vec![BcReceiver { project, token, client_state, inbox, routes: routes.clone() }];
/// let app = other_routes.merge(BcNotifications::new(receivers, trigger).router());
/// // elsewhere: while let Some(change) = changes.recv().await { run the pipelines of change }
/// ```
pub struct BcNotifications {
    receivers: Vec<BcReceiver>,
    trigger: ChangeTrigger,
    observer: Option<DeliveryObserver>,
}

/// What became of the notifications of one delivery, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Stored, new.
    pub stored: usize,
    /// Already stored (Business Central delivers at least once).
    pub duplicate: usize,
    /// Refused: a body that is not a notification list, a wrong clientState, an incomplete entry,
    /// or a storage failure.
    pub refused: usize,
}

/// Hears, per project, what became of each delivery's notifications.
pub type DeliveryObserver = Arc<dyn Fn(&str, DeliveryCounts) + Send + Sync>;

impl BcNotifications {
    /// An intake for these projects; `trigger` hears of every stored change.
    pub fn new(receivers: Vec<BcReceiver>, trigger: ChangeTrigger) -> BcNotifications {
        BcNotifications { receivers, trigger, observer: None }
    }

    /// Reports every delivery of a known project to `observer` (the service's metrics).
    pub fn observed_by(mut self, observer: DeliveryObserver) -> BcNotifications {
        self.observer = Some(observer);
        self
    }

    fn observe(&self, project: &str, counts: DeliveryCounts) {
        if let Some(observer) = &self.observer {
            observer(project, counts);
        }
    }

    /// The routes ([`ROUTE`], GET and POST), with their body limit, ready to `merge` into the
    /// service's router.
    pub fn router(self) -> Router {
        Router::new()
            .route(ROUTE, get(receive).post(receive))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::new(self))
    }

    /// The receiver whose token this is. Every token is compared (in constant time), so the
    /// answer's timing says nothing about which project, or how much of a token, matched.
    fn receiver(&self, token: &str) -> Option<&BcReceiver> {
        let mut found = None;
        for r in &self.receivers {
            if token_matches(&r.token, token) && found.is_none() {
                found = Some(r);
            }
        }
        found
    }
}

/// Both the handshake and notifications.
async fn receive(
    State(intake): State<Arc<BcNotifications>>,
    Path(token): Path<String>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
    body: Bytes,
) -> Response {
    let Some(receiver) = intake.receiver(&token) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    if let Some(validation) = query.get("validationToken") {
        return handshake(receiver, validation);
    }
    if body.is_empty() {
        tracing::warn!(project = %receiver.project, "Refused a Business Central call with neither a validation token nor a body.");
        return StatusCode::BAD_REQUEST.into_response();
    }
    let (response, counts) = notifications(&intake, receiver, &body).await;
    intake.observe(&receiver.project, counts);
    response
}

/// Echoes the validation token: 200, `text/plain`, the token as the whole body.
fn handshake(receiver: &BcReceiver, validation: &str) -> Response {
    if validation.is_empty() || validation.len() > MAX_VALIDATION_TOKEN {
        tracing::warn!(project = %receiver.project, length = validation.len(), "Refused a Business Central validation token of an implausible length.");
        return StatusCode::BAD_REQUEST.into_response();
    }
    tracing::info!(project = %receiver.project, "Answered a Business Central subscription handshake.");
    let mut response = validation.to_owned().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Checks, stores, acknowledges, then triggers.
async fn notifications(intake: &BcNotifications, receiver: &BcReceiver, body: &[u8]) -> (Response, DeliveryCounts) {
    let refused = |n: usize| DeliveryCounts { refused: n, ..Default::default() };
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(project = %receiver.project, error = %e, "Refused a Business Central delivery that is not JSON.");
            return (StatusCode::BAD_REQUEST.into_response(), refused(1));
        }
    };
    let Some(items) = parsed.get("value").and_then(Value::as_array) else {
        tracing::warn!(project = %receiver.project, "Refused a Business Central delivery without a `value` list.");
        return (StatusCode::BAD_REQUEST.into_response(), refused(1));
    };
    let mut events = Vec::with_capacity(items.len());
    let mut changes: BTreeSet<(Option<String>, String)> = BTreeSet::new();
    let (mut wrong_state, mut incomplete) = (0usize, 0usize);
    for item in items {
        let text = |k: &str| item.get(k).and_then(Value::as_str);
        let given_state = text("clientState").unwrap_or("");
        if !token_matches(&receiver.client_state, given_state) {
            wrong_state += 1;
            continue;
        }
        let (Some(subscription), Some(resource), Some(change_type)) =
            (text("subscriptionId"), text("resource"), text("changeType"))
        else {
            incomplete += 1;
            continue;
        };
        let (connection, entity) = match receiver.routes.lookup(resource) {
            Some((c, e)) => (Some(c), e),
            None => match entity_of(resource) {
                Some(e) => (None, e),
                None => {
                    incomplete += 1;
                    continue;
                }
            },
        };
        let modified = text("lastModifiedDateTime").unwrap_or("");
        // Deliveries are at least once: a retried delivery repeats the same four fields.
        let key = format!("{subscription}|{resource}|{change_type}|{modified}");
        // The client state is a secret: it stays out of the inbox, and so out of records,
        // dead letters and logs.
        let mut record = Map::new();
        record.insert("subscriptionId".into(), json!(subscription));
        record.insert("resource".into(), json!(resource));
        record.insert("changeType".into(), json!(change_type));
        record.insert("lastModifiedDateTime".into(), json!(text("lastModifiedDateTime")));
        record.insert("expirationDateTime".into(), json!(text("expirationDateTime")));
        record.insert("connection".into(), json!(connection));
        record.insert("entity".into(), json!(entity));
        events.push((key, Value::Object(record)));
        changes.insert((connection, entity));
    }
    if wrong_state > 0 {
        tracing::warn!(project = %receiver.project, count = wrong_state, "Ignored Business Central notifications with a wrong clientState (acknowledged so the other subscriptions on this URL survive).");
    }
    if incomplete > 0 {
        tracing::warn!(project = %receiver.project, count = incomplete, "Ignored Business Central notifications without subscriptionId, resource or changeType.");
    }
    let ignored = wrong_state + incomplete;
    if events.is_empty() {
        return (StatusCode::ACCEPTED.into_response(), refused(ignored));
    }
    let inbox = receiver.inbox.clone();
    let count = events.len();
    // SQLite with synchronous FULL waits for the disk: off the async workers, so handshakes
    // and other deliveries are answered meanwhile.
    let stored = tokio::task::spawn_blocking(move || inbox.put_batch(INBOX_SOURCE, &events)).await;
    let new = match stored {
        Ok(Ok(ids)) => ids.iter().filter(|id| id.is_some()).count(),
        Ok(Err(e)) => {
            tracing::error!(project = %receiver.project, error = %e, "Could not store Business Central notifications; Business Central will retry.");
            return (StatusCode::SERVICE_UNAVAILABLE.into_response(), refused(ignored + count));
        }
        Err(e) => {
            tracing::error!(project = %receiver.project, error = %e, "Storing Business Central notifications failed; Business Central will retry.");
            return (StatusCode::SERVICE_UNAVAILABLE.into_response(), refused(ignored + count));
        }
    };
    tracing::info!(project = %receiver.project, received = count, new, "Stored Business Central notifications.");
    if new > 0 {
        for (connection, entity) in changes {
            (intake.trigger)(BcChange { project: receiver.project.clone(), connection, entity });
        }
    }
    (StatusCode::ACCEPTED.into_response(), DeliveryCounts { stored: new, duplicate: count - new, refused: ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_map_to_their_subscribed_collection_and_entity() {
        let c = "api/v2.0/companies(A1b2)/customers";
        assert_eq!(collection_of("/api/v2.0/companies(A1b2)/customers(1234-ab)"), c.to_ascii_lowercase());
        assert_eq!(
            collection_of(
                "api/v2.0/companies(a1b2)/customers?$filter=lastModifiedDateTime%20gt%202026-01-01T00:00:00Z"
            ),
            c.to_ascii_lowercase()
        );
        assert_eq!(collection_of(c), c.to_ascii_lowercase());
        assert_eq!(entity_of("api/v2.0/companies(x)/salesInvoices(y)").as_deref(), Some("salesInvoices"));
        assert_eq!(
            entity_of("api/contoso/marketing/v1.0/companies(x)/customerConsents?$filter=a").as_deref(),
            Some("contoso/marketing/v1.0/customerConsents")
        );
        assert_eq!(entity_of("companies(x)/customers"), None);
        assert_eq!(entity_of("api/v2.0/companies(x)/"), None);
        let routes = Routes::default();
        routes.insert("api/v2.0/companies(A1B2)/customers", "bc", "customers");
        assert_eq!(routes.lookup("api/v2.0/companies(a1b2)/customers(9)"), Some(("bc".into(), "customers".into())));
        assert_eq!(routes.lookup("api/v2.0/companies(a1b2)/items(9)"), None);
    }

    #[test]
    fn the_notification_url_joins_without_a_double_slash() {
        assert_eq!(notification_url("https://x.example/", "t"), "https://x.example/hooks/business-central/t");
    }

    use std::time::{Duration, Instant};

    use connector_business_central::subscriptions;
    use tokio::sync::mpsc::UnboundedReceiver;

    use crate::service::test_support::{BC_TOKEN, CLIENT_STATE, bc_client, bc_sandbox, eventually, serve};

    /// The receiver of project `p` on a loopback port.
    struct Rig {
        base: String,
        url: String,
        inbox: Inbox,
        routes: Routes,
        changes: UnboundedReceiver<BcChange>,
        _dir: tempfile::TempDir,
    }

    async fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.db")).unwrap();
        let (trigger, changes) = channel_trigger();
        let routes = Routes::default();
        let receiver = BcReceiver {
            project: "p".into(),
            token: BC_TOKEN.into(),
            client_state: CLIENT_STATE.into(),
            inbox: inbox.clone(),
            routes: routes.clone(),
        };
        let base = serve(BcNotifications::new(vec![receiver], trigger).router()).await;
        Rig { url: notification_url(&base, BC_TOKEN), base, inbox, routes, changes, _dir: dir }
    }

    fn notification(resource: &str, state: &str, modified: &str) -> Value {
        json!({"subscriptionId": "0123456789abcdef0123456789abcdef", "clientState": state,
               "expirationDateTime": "2030-01-04T00:00:00Z", "resource": resource,
               "changeType": "updated", "lastModifiedDateTime": modified})
    }

    #[tokio::test]
    async fn the_handshake_echoes_the_token_as_text_plain_at_once_and_notifications_reach_the_inbox() {
        let mut rig = rig().await;
        // Directly, POST (what Business Central sends) and GET (accepted too).
        let http = reqwest::Client::new();
        for method in [reqwest::Method::POST, reqwest::Method::GET] {
            let started = Instant::now();
            let r = http
                .request(method.clone(), format!("{}?validationToken=a%20b%2Bc", rig.url))
                .header("content-length", "0")
                .send()
                .await
                .unwrap();
            let elapsed = started.elapsed();
            assert_eq!(r.status(), 200, "{method}");
            assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
            assert_eq!(r.text().await.unwrap(), "a b+c");
            assert!(elapsed < Duration::from_secs(1), "answered in {elapsed:?}");
        }

        // Through the sandbox, which refuses the subscription unless its handshake succeeds.
        let sb = bc_sandbox().await;
        let client = bc_client(&sb).await;
        let resource = subscriptions::resource_for(&client, "v2.0", "customers");
        subscriptions::create(&client, "v2.0", &resource, &rig.url, CLIENT_STATE).await.unwrap();
        let handshakes: Vec<_> = sb.admin().notifications().into_iter().filter(|d| d.kind == "handshake").collect();
        assert_eq!(handshakes.len(), 1);
        let token = handshakes[0].url.split("validationToken=").nth(1).unwrap().to_owned();
        assert_eq!(handshakes[0].status, Some(200));
        assert_eq!(handshakes[0].response.as_deref(), Some(token.as_str()));

        // A change in Business Central: stored, acknowledged, then signalled.
        let company = sb.admin().company_id("CRONUS USA, Inc.").unwrap();
        let customer = sb.admin().create_customer(&company, json!({"displayName": "Ada", "email": "ada@example.com"}));
        let change = tokio::time::timeout(Duration::from_secs(10), rig.changes.recv()).await.unwrap().unwrap();
        assert_eq!(change, BcChange { project: "p".into(), connection: None, entity: "customers".into() });
        let events = rig.inbox.read(INBOX_SOURCE, 0, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["changeType"], "created");
        assert_eq!(events[0]["entity"], "customers");
        let id = customer["id"].as_str().unwrap();
        assert!(events[0]["resource"].as_str().unwrap().ends_with(&format!("customers({id})")), "{}", events[0]);
        assert!(events[0].get("clientState").is_none(), "the client state is a secret: {}", events[0]);
        // (The sandbox records the answer once it has it, which is after the trigger.)
        let delivered = eventually(Duration::from_secs(5), || {
            sb.admin().notifications().into_iter().find(|d| d.kind == "notification")
        })
        .await
        .unwrap();
        assert_eq!(delivered.status, Some(202));
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_token_is_a_bare_404_so_nobody_subscribes_with_it() {
        let rig = rig().await;
        let http = reqwest::Client::new();
        let wrong_same_length = format!("{}x", &BC_TOKEN[..BC_TOKEN.len() - 1]);
        for token in [wrong_same_length.as_str(), "short", ""] {
            let base = format!("{}/hooks/business-central/{token}", rig.base);
            let r = http.post(format!("{base}?validationToken=abc")).send().await.unwrap();
            assert!(r.status() == 404 || (token.is_empty() && r.status().is_client_error()), "{token}: {}", r.status());
            assert_eq!(r.text().await.unwrap(), "", "a bare 404");
            let body = json!({"value": [notification("api/v2.0/companies(c)/customers(1)", CLIENT_STATE, "t")]});
            let r = http.post(&base).json(&body).send().await.unwrap();
            assert!(r.status().is_client_error(), "{token}");
        }
        assert_eq!(rig.inbox.count(INBOX_SOURCE).unwrap(), 0);

        let sb = bc_sandbox().await;
        let client = bc_client(&sb).await;
        let resource = subscriptions::resource_for(&client, "v2.0", "customers");
        let wrong = notification_url(&rig.base, &wrong_same_length);
        let refused = subscriptions::create(&client, "v2.0", &resource, &wrong, CLIENT_STATE).await.unwrap_err();
        assert!(refused.message.contains("could not be validated"), "{refused}");
        assert!(sb.admin().subscriptions().is_empty());
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn a_wrong_client_state_is_acknowledged_but_not_stored_and_the_subscription_survives() {
        let mut rig = rig().await;
        let sb = bc_sandbox().await;
        let client = bc_client(&sb).await;
        let resource = subscriptions::resource_for(&client, "v2.0", "items");
        subscriptions::create(&client, "v2.0", &resource, &rig.url, "not-the-project-state").await.unwrap();
        let company = sb.admin().company_id("CRONUS USA, Inc.").unwrap();
        sb.admin().create_item(&company, json!({"displayName": "Bicycle"}));
        let delivered = eventually(Duration::from_secs(10), || {
            sb.admin().notifications().into_iter().find(|d| d.kind == "notification" && d.status.is_some())
        })
        .await
        .expect("a notification was delivered");
        assert_eq!(delivered.status, Some(202), "a 4xx would have deleted every subscription on the URL");
        assert_eq!(rig.inbox.count(INBOX_SOURCE).unwrap(), 0);
        assert!(rig.changes.try_recv().is_err(), "nothing to run");
        assert_eq!(sb.admin().subscriptions().len(), 1, "the subscription is still there");
        sb.shutdown().await;
    }

    #[tokio::test]
    async fn a_repeated_delivery_is_stored_once_and_signalled_once() {
        let mut rig = rig().await;
        rig.routes.insert("api/v2.0/companies(C1)/customers", "bc", "customers");
        let body = json!({"value": [
            notification("api/v2.0/companies(c1)/customers(1)", CLIENT_STATE, "2030-01-01T00:00:00.100Z"),
            notification("api/v2.0/companies(c1)/customers(2)", CLIENT_STATE, "2030-01-01T00:00:00.200Z"),
            notification("api/v2.0/companies(c1)/customers(1)", CLIENT_STATE, "2030-01-01T00:00:00.100Z"),
        ]});
        let http = reqwest::Client::new();
        for _ in 0..2 {
            let r = http.post(&rig.url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 202);
        }
        assert_eq!(rig.inbox.count(INBOX_SOURCE).unwrap(), 2);
        let change = rig.changes.try_recv().unwrap();
        assert_eq!(change, BcChange { project: "p".into(), connection: Some("bc".into()), entity: "customers".into() });
        assert!(rig.changes.try_recv().is_err(), "one signal per delivery with something new");
        assert_eq!(rig.inbox.read(INBOX_SOURCE, 0, 10).unwrap()[0]["connection"], "bc");
    }

    #[tokio::test]
    async fn hostile_bodies_are_refused_without_harm() {
        let rig = rig().await;
        let http = reqwest::Client::new();
        let post = |body: Vec<u8>| http.post(&rig.url).header("content-type", "application/json").body(body).send();
        assert_eq!(post(vec![b' '; BODY_LIMIT + 1]).await.unwrap().status(), 413);
        for (body, status) in [
            (&b"not json"[..], 400),
            (b"{\"value\": 1}", 400),
            (b"[]", 400),
            (b"", 400),
            (&[0xff, 0xfe, 0x00], 400),
            (b"{\"value\": [1, \"x\", null, {\"clientState\": \"client-state-secret-42\"}]}", 202),
        ] {
            let r = post(body.to_vec()).await.unwrap();
            assert_eq!(r.status(), status, "{}", String::from_utf8_lossy(body));
        }
        let long = "x".repeat(MAX_VALIDATION_TOKEN + 1);
        let r = http.post(format!("{}?validationToken={long}", rig.url)).send().await.unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(rig.inbox.count(INBOX_SOURCE).unwrap(), 0);
        // Still serving.
        let r = http.post(format!("{}?validationToken=ok", rig.url)).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok");
    }
}
