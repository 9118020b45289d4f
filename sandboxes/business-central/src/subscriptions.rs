//! Webhook subscriptions and the notification engine [MS-WH][AL-SEND][AL-MGT][MS-SRV].
//!
//! - `POST …/subscriptions` validates the resource (a company's collection on the same API
//!   route; not `salesInvoiceLines`, a temporary table), then synchronously calls the
//!   notificationUrl with `?validationToken=…` (POST, empty body); only a 200 echoing the token
//!   within 5 s creates the subscription. It expires 3 days later (virtual clock). PATCH (with
//!   `If-Match`) repeats the handshake and renews; DELETE needs the quoted id and `If-Match`.
//!   200 subscriptions per environment at most.
//! - Changes register a pending notification per matching subscription; the first one schedules
//!   a job `notification_delay` later. A job purges expired subscriptions, collapses repeated
//!   `updated` of one entity (latest time), turns more than `collection_threshold` notifications
//!   into one `collection` notification (filtered by `lastModifiedDateTime gt first − 50 ms`
//!   unless something was deleted), and POSTs one `{"value":[…]}` per notificationUrl.
//! - 2xx: done. 408, 429, 5xx, timeout (30 s) or no answer: retried after 1, 1, 10, 100, 1000
//!   minutes (virtual clock); the sixth failure deletes the subscriptions. Any other status
//!   deletes every subscription on that notificationUrl at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::{add, fmt_ms, fmt_s, sub_ms};
use crate::entities::{Change, ChangeType, Mode, TableId, normalize};
use crate::errors::ApiError;
use crate::json::Out;
use crate::odata::Row;
use crate::odata::etag::{IfMatch, check, etag};
use crate::odata::path::{Key, parse_segment};
use crate::schema::{Route, SUBSCRIPTION};
use crate::state::{Data, Shared};
use crate::util::{guid, hex32};

/// How long BC waits for the handshake (`ApiSubscriptionNotificationUrlTimeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long BC waits for a notification POST.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(30);
/// Subscription lifetime.
const LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);
/// Subscriptions per environment (online).
const MAX_SUBSCRIPTIONS: usize = 200;
/// Retries before the subscription is deleted.
const MAX_ATTEMPTS: u32 = 5;

/// The collections that can be subscribed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Watched {
    Customers,
    Items,
    Contacts,
    SalesInvoices,
    CustomerConsents,
}

impl Watched {
    fn parse(route: Route, set: &str) -> Option<Watched> {
        match (route, set) {
            (Route::V2, "customers") => Some(Watched::Customers),
            (Route::V2, "items") => Some(Watched::Items),
            (Route::V2, "contacts") => Some(Watched::Contacts),
            (Route::V2, "salesInvoices") => Some(Watched::SalesInvoices),
            (Route::Custom, "customerConsents") => Some(Watched::CustomerConsents),
            _ => None,
        }
    }

    /// The table whose changes the page reports.
    fn table(self) -> TableId {
        match self {
            Watched::Customers | Watched::CustomerConsents => TableId::Customer,
            Watched::Items => TableId::Item,
            Watched::Contacts => TableId::Contact,
            Watched::SalesInvoices => TableId::SalesInvoice,
        }
    }
}

/// A webhook subscription.
#[derive(Clone, Debug)]
pub(crate) struct Subscription {
    /// 32 hex digits, server-generated.
    pub id: String,
    /// Where handshakes and notifications go.
    pub notification_url: String,
    /// Canonical relative resource: `api/v2.0/companies(<id>)/customers`.
    pub resource: String,
    /// Echoed in every notification so receivers can check it.
    pub client_state: String,
    /// The company whose table is watched.
    pub company: String,
    /// The watched collection.
    pub watched: Watched,
    /// The app that created it (`userId`).
    pub user_id: String,
    /// `systemCreatedAt`.
    pub created: Timestamp,
    /// `lastModifiedDateTime` (second precision).
    pub modified: Timestamp,
    /// `expirationDateTime`: three days after the last handshake.
    pub expires: Timestamp,
    /// Row version behind the ETag and `timestamp`.
    pub version: u64,
}

impl Subscription {
    fn view(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("subscriptionId".into(), Value::from(self.id.clone()));
        v.insert("notificationUrl".into(), Value::from(self.notification_url.clone()));
        v.insert("resource".into(), Value::from(self.resource.clone()));
        v.insert("timestamp".into(), Value::from(self.version));
        v.insert("userId".into(), Value::from(self.user_id.clone()));
        v.insert("lastModifiedDateTime".into(), Value::from(fmt_s(self.modified)));
        v.insert("clientState".into(), Value::from(self.client_state.clone()));
        v.insert("expirationDateTime".into(), Value::from(fmt_s(self.expires)));
        v.insert("systemCreatedAt".into(), Value::from(fmt_ms(self.created)));
        v.insert("systemCreatedBy".into(), Value::from(self.user_id.clone()));
        v.insert("systemModifiedAt".into(), Value::from(fmt_ms(self.modified)));
        v.insert("systemModifiedBy".into(), Value::from(self.user_id.clone()));
        v
    }

    pub(crate) fn row(&self) -> Row {
        Row { view: self.view(), etag: Some(etag(&self.id, self.version)) }
    }
}

/// One pending notification.
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    /// Registration order.
    seq: u64,
    /// The subscription to notify.
    subscription: String,
    /// The changed row's id.
    entity: String,
    /// What happened to it.
    kind: ChangeType,
    /// When the change was registered (the notification's `lastModifiedDateTime`).
    at: Timestamp,
    /// Failed deliveries so far.
    attempt: u32,
    /// Not before this instant.
    due: Timestamp,
    /// In a POST right now.
    sending: bool,
}

/// The engine's state.
#[derive(Debug, Default)]
pub(crate) struct Hooks {
    /// Notifications not yet delivered.
    pending: Vec<Pending>,
    /// When the next job runs.
    next_run: Option<Timestamp>,
    /// Every handshake and notification attempt, for tests.
    pub deliveries: Vec<Delivery>,
    /// The last registration number.
    seq: u64,
}

/// A call the sandbox made to a notificationUrl: a handshake or a notification POST.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// `handshake` or `notification`.
    pub kind: String,
    /// The URL called (with `validationToken` for handshakes).
    pub url: String,
    /// The subscriptions the call was for (empty for the handshake of a new subscription).
    pub subscription_ids: Vec<String>,
    /// 1 for the first attempt of these notifications.
    pub attempt: u32,
    /// The notification payload.
    pub body: Option<Value>,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// The receiver's body (handshakes).
    pub response: Option<String>,
    /// Why there was no usable answer (timeout, connection refused).
    pub error: Option<String>,
    /// When (virtual clock).
    pub at: String,
}

/// Registers changes for matching live subscriptions; true when the engine should look.
pub(crate) fn register(data: &mut Data, changes: &[Change], now: Timestamp, delay: Duration) -> bool {
    let mut added = false;
    for change in changes {
        let matching: Vec<&Subscription> = data
            .subscriptions
            .values()
            .filter(|s| s.company == change.company && s.watched.table() == change.table)
            .collect();
        // Any subscription on the table schedules the job (which purges expired ones); only live
        // ones get notifications.
        added |= !matching.is_empty();
        let targets: Vec<String> = matching.iter().filter(|s| s.expires >= now).map(|s| s.id.clone()).collect();
        for subscription in targets {
            data.hooks.seq += 1;
            let seq = data.hooks.seq;
            data.hooks.pending.push(Pending {
                seq,
                subscription,
                entity: change.id.clone(),
                kind: change.kind,
                at: now,
                attempt: 0,
                due: now,
                sending: false,
            });
            added = true;
        }
    }
    if added && data.hooks.next_run.is_none() {
        data.hooks.next_run = Some(add(now, delay));
    }
    added
}

/// One POST to a notificationUrl.
struct Outgoing {
    /// The notificationUrl.
    url: String,
    /// `{"value": [...]}`.
    body: Out,
    /// The pending notifications it carries.
    seqs: Vec<u64>,
    /// The subscriptions it is for.
    subscriptions: Vec<String>,
    /// Failures so far (the highest among its notifications).
    attempt: u32,
}

/// The background task: runs jobs when due, until the sandbox stops.
pub(crate) async fn engine(shared: Arc<Shared>) {
    let mut stopped = shared.stopped.clone();
    loop {
        let next = shared.lock().hooks.next_run;
        let wait =
            next.map(|t| shared.clock.until(t)).unwrap_or(Duration::from_millis(25)).min(Duration::from_millis(25));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shared.wake.notified() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let due = shared.lock().hooks.next_run.is_some_and(|t| t <= shared.clock.now());
        if due {
            run_job(&shared).await;
        }
    }
}

async fn run_job(shared: &Arc<Shared>) {
    let now = shared.clock.now();
    let batch = prepare(&mut shared.lock(), now, shared.config.collection_threshold);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, out) in batch.iter().enumerate() {
        let (http, url, body) = (shared.http.clone(), out.url.clone(), out.body.to_json());
        tasks.spawn(async move { (index, send(&http, &url, body).await) });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    let now = shared.clock.now();
    let mut data = shared.lock();
    for (index, result) in results {
        finish(&mut data, &batch[index], result, now);
    }
}

/// Purges expired subscriptions and builds the POSTs of the due notifications.
fn prepare(data: &mut Data, now: Timestamp, threshold: usize) -> Vec<Outgoing> {
    data.hooks.next_run = None;
    data.subscriptions.retain(|_, s| s.expires >= now);
    let subscriptions = &data.subscriptions;
    data.hooks.pending.retain(|p| subscriptions.contains_key(&p.subscription));
    let mut per_subscription: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in data.hooks.pending.iter().enumerate() {
        if !p.sending && p.due <= now {
            per_subscription.entry(p.subscription.clone()).or_default().push(i);
        }
    }
    let mut per_url: BTreeMap<String, Outgoing> = BTreeMap::new();
    for (id, indexes) in per_subscription {
        let Some(sub) = data.subscriptions.get(&id) else { continue };
        let pendings: Vec<&Pending> = indexes.iter().map(|i| &data.hooks.pending[*i]).collect();
        let notifications = aggregate(sub, &pendings, threshold);
        let out = per_url.entry(sub.notification_url.clone()).or_insert_with(|| Outgoing {
            url: sub.notification_url.clone(),
            body: Out::A(Vec::new()),
            seqs: Vec::new(),
            subscriptions: Vec::new(),
            attempt: 0,
        });
        if let Out::A(items) = &mut out.body {
            items.extend(notifications);
        }
        out.seqs.extend(pendings.iter().map(|p| p.seq));
        out.subscriptions.push(id.clone());
        out.attempt = out.attempt.max(pendings.iter().map(|p| p.attempt).max().unwrap_or(0));
    }
    let sending: Vec<u64> = per_url.values().flat_map(|o| o.seqs.iter().copied()).collect();
    for p in data.hooks.pending.iter_mut() {
        if sending.contains(&p.seq) {
            p.sending = true;
        }
    }
    per_url
        .into_values()
        .map(|mut o| {
            let mut body = Out::object();
            body.push("value", std::mem::replace(&mut o.body, Out::A(Vec::new())));
            o.body = body;
            o
        })
        .collect()
}

/// The notifications of one subscription in this run.
fn aggregate(sub: &Subscription, pendings: &[&Pending], threshold: usize) -> Vec<Out> {
    let mut items: Vec<(String, ChangeType, Timestamp)> = Vec::new();
    let mut sorted: Vec<&&Pending> = pendings.iter().collect();
    sorted.sort_by_key(|p| p.seq);
    for p in sorted {
        if p.kind == ChangeType::Updated
            && let Some(existing) = items.iter_mut().find(|(e, k, _)| *e == p.entity && *k == ChangeType::Updated)
        {
            existing.2 = existing.2.max(p.at);
            continue;
        }
        items.push((p.entity.clone(), p.kind, p.at));
    }
    let notification = |resource: String, change: &str, at: Timestamp| {
        let mut n = Out::object();
        n.push("subscriptionId", Value::from(sub.id.clone()));
        n.push("clientState", Value::from(sub.client_state.clone()));
        n.push("expirationDateTime", Value::from(fmt_s(sub.expires)));
        n.push("resource", Value::from(resource));
        n.push("changeType", Value::from(change));
        n.push("lastModifiedDateTime", Value::from(fmt_ms(at)));
        n
    };
    if items.len() > threshold {
        let first = items.iter().map(|i| i.2).min().unwrap_or(Timestamp::UNIX_EPOCH);
        let last = items.iter().map(|i| i.2).max().unwrap_or(Timestamp::UNIX_EPOCH);
        let deleted = items.iter().any(|i| i.1 == ChangeType::Deleted);
        let resource = if deleted {
            sub.resource.clone()
        } else {
            format!("{}?$filter=lastModifiedDateTime%20gt%20{}", sub.resource, fmt_ms(sub_ms(first, 50)))
        };
        return vec![notification(resource, "collection", last)];
    }
    items
        .into_iter()
        .map(|(entity, kind, at)| notification(format!("{}({entity})", sub.resource), kind.as_str(), at))
        .collect()
}

/// POSTs a payload; the receiver's status, or why there was none.
async fn send(http: &reqwest::Client, url: &str, body: String) -> Result<u16, String> {
    let id = guid();
    let request = http
        .post(url)
        .header("content-type", "application/json")
        .header("clientRequestId", id.clone())
        .header("x-ms-correlation-id", id)
        .timeout(NOTIFY_TIMEOUT)
        .body(body);
    match request.send().await {
        Ok(response) => Ok(response.status().as_u16()),
        Err(e) if e.is_timeout() => Err("timeout".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// The delay before retry `attempt` (1-based count of failures).
fn retry_delay(attempt: u32) -> Duration {
    let minutes = match attempt {
        0..=2 => 1,
        3 => 10,
        4 => 100,
        _ => 1000,
    };
    Duration::from_secs(minutes * 60)
}

fn finish(data: &mut Data, out: &Outgoing, result: Result<u16, String>, now: Timestamp) {
    data.hooks.deliveries.push(Delivery {
        kind: "notification".into(),
        url: out.url.clone(),
        subscription_ids: out.subscriptions.clone(),
        attempt: out.attempt + 1,
        body: Some(out.body.to_value()),
        status: result.as_ref().ok().copied(),
        response: None,
        error: result.as_ref().err().cloned(),
        at: fmt_ms(now),
    });
    let retryable = match &result {
        Ok(s) if (200..300).contains(s) => {
            data.hooks.pending.retain(|p| !out.seqs.contains(&p.seq));
            return;
        }
        Ok(s) => *s == 408 || *s == 429 || (500..600).contains(s),
        Err(_) => true,
    };
    if !retryable {
        data.subscriptions.retain(|_, s| s.notification_url != out.url);
    } else {
        let attempt = out.attempt + 1;
        if attempt > MAX_ATTEMPTS {
            data.subscriptions.retain(|id, _| !out.subscriptions.contains(id));
        } else {
            let due = add(now, retry_delay(attempt));
            for p in data.hooks.pending.iter_mut().filter(|p| out.seqs.contains(&p.seq)) {
                p.attempt = attempt;
                p.due = due;
                p.sending = false;
            }
            data.hooks.next_run = Some(data.hooks.next_run.map_or(due, |t| t.min(due)));
        }
    }
    let subscriptions = &data.subscriptions;
    data.hooks.pending.retain(|p| subscriptions.contains_key(&p.subscription));
}

/// Validates a resource for a route; returns (company id, watched set, canonical resource).
fn parse_resource(data: &Data, route: Route, resource: &str) -> Result<(String, Watched, String), ApiError> {
    let invalid = || {
        ApiError::new(400, "BadRequest", format!("The resource '{resource}' is not valid for a webhook subscription."))
    };
    let mut rest = resource.trim();
    if rest.contains("://") {
        rest = rest.find("/api/").map(|i| &rest[i + 1..]).ok_or_else(invalid)?;
    }
    rest = rest.trim_start_matches('/');
    if let Some(after) = rest.strip_prefix("api/") {
        rest = after.strip_prefix(route.path()).and_then(|r| r.strip_prefix('/')).ok_or_else(invalid)?;
    }
    if rest.contains('?') {
        return Err(invalid());
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let [company, set] = segments.as_slice() else { return Err(invalid()) };
    let company = parse_segment(company).map_err(|_| invalid())?;
    let set = parse_segment(set).map_err(|_| invalid())?;
    let (Some(Key::Guid(company_id)), None) = (company.key, set.key) else { return Err(invalid()) };
    if company.name != "companies" {
        return Err(invalid());
    }
    let index = data.company_index(&company_id).ok_or_else(invalid)?;
    let watched = Watched::parse(route, &set.name).ok_or_else(invalid)?;
    let company_id = data.companies[index].id.clone();
    Ok((company_id.clone(), watched, format!("api/{}/companies({company_id})/{}", route.path(), set.name)))
}

fn check_url(url: &str) -> Result<(), ApiError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() > "https://".len()
        && !url.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(400, "BadRequest", format!("The notificationUrl '{url}' is not a valid absolute URL.")))
    }
}

/// The validation handshake.
async fn handshake(shared: &Shared, url: &str, client_state: &str, subscription: Option<&str>) -> Result<(), ApiError> {
    let token = guid();
    let separator = if url.contains('?') { '&' } else { '?' };
    let full = format!("{url}{separator}validationToken={token}");
    let mut request = shared.http.post(&full).header("content-length", "0").timeout(HANDSHAKE_TIMEOUT);
    if !client_state.is_empty() {
        request = request.header("ClientState", client_state);
    }
    let result = match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            Ok((status, text))
        }
        Err(e) if e.is_timeout() => Err("timeout".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let mut data = shared.lock();
    data.hooks.deliveries.push(Delivery {
        kind: "handshake".into(),
        url: full,
        subscription_ids: subscription.map(|s| vec![s.to_string()]).unwrap_or_default(),
        attempt: 1,
        body: None,
        status: result.as_ref().ok().map(|(s, _)| *s),
        response: result.as_ref().ok().map(|(_, t)| t.clone()),
        error: result.as_ref().err().cloned(),
        at: fmt_ms(shared.clock.now()),
    });
    drop(data);
    let failure =
        |detail: String| ApiError::new(400, "BadRequest", format!("The subscription could not be validated: {detail}"));
    match result {
        Ok((200, text)) if text.trim() == token => Ok(()),
        Ok((200, _)) => Err(failure("the notification URL did not return the validation token.".into())),
        Ok((status, _)) => Err(failure(format!(
            "the remote server returned an error: ({status}) {}.",
            reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("")
        ))),
        Err(e) if e == "timeout" => Err(failure("the notification URL did not respond within 5 seconds.".into())),
        Err(e) => Err(failure(format!("the notification URL could not be reached ({e})."))),
    }
}

/// POST `subscriptions`.
pub(crate) async fn create(shared: &Shared, route: Route, user: &str, body: &Value) -> Result<Row, ApiError> {
    let fields = normalize(&SUBSCRIPTION, body, Mode::Create, None)?.fields;
    let url = fields
        .get("notificationUrl")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::required("notificationUrl"))?
        .to_string();
    let resource =
        fields.get("resource").and_then(Value::as_str).ok_or_else(|| ApiError::required("resource"))?.to_string();
    let client_state = fields.get("clientState").and_then(Value::as_str).unwrap_or("").to_string();
    check_url(&url)?;
    let (company, watched, canonical) = {
        let data = shared.lock();
        if data.subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(ApiError::dialog(format!(
                "You cannot create more than {MAX_SUBSCRIPTIONS} webhook subscriptions."
            )));
        }
        parse_resource(&data, route, &resource)?
    };
    handshake(shared, &url, &client_state, None).await?;
    let now = shared.clock.now();
    let mut data = shared.lock();
    data.version += 1;
    let sub = Subscription {
        id: hex32(),
        notification_url: url,
        resource: canonical,
        client_state,
        company,
        watched,
        user_id: crate::auth::user_id(user),
        created: now,
        modified: now,
        expires: add(now, LIFETIME),
        version: data.version,
    };
    let row = sub.row();
    data.subscriptions.insert(sub.id.clone(), sub);
    Ok(row)
}

/// Finds a live subscription by its quoted key.
fn live<'a>(data: &'a Data, id: &str, now: Timestamp) -> Result<&'a Subscription, ApiError> {
    data.subscriptions.get(id).filter(|s| s.expires >= now).ok_or_else(|| ApiError::segment_not_found("subscriptions"))
}

/// PATCH `subscriptions('<id>')`: handshake again, renew for 3 days.
pub(crate) async fn update(
    shared: &Shared,
    route: Route,
    id: &str,
    if_match: &IfMatch,
    body: &Value,
) -> Result<Row, ApiError> {
    let (current, url, client_state, target) = {
        let data = shared.lock();
        let sub = live(&data, id, shared.clock.now())?;
        check(if_match, &etag(&sub.id, sub.version))?;
        let view = sub.view();
        let fields = normalize(&SUBSCRIPTION, body, Mode::Update, Some(&view))?.fields;
        let url = fields.get("notificationUrl").and_then(Value::as_str).unwrap_or(&sub.notification_url).to_string();
        let state = fields.get("clientState").and_then(Value::as_str).unwrap_or(&sub.client_state).to_string();
        let target = match fields.get("resource").and_then(Value::as_str) {
            Some(r) => parse_resource(&data, route, r)?,
            None => (sub.company.clone(), sub.watched, sub.resource.clone()),
        };
        (sub.version, url, state, target)
    };
    check_url(&url)?;
    handshake(shared, &url, &client_state, Some(id)).await?;
    let now = shared.clock.now();
    let mut data = shared.lock();
    data.version += 1;
    let version = data.version;
    let sub = data.subscriptions.get_mut(id).ok_or_else(|| ApiError::segment_not_found("subscriptions"))?;
    if sub.version != current {
        return Err(ApiError::entity_changed());
    }
    sub.notification_url = url;
    sub.client_state = client_state;
    (sub.company, sub.watched, sub.resource) = target;
    sub.modified = now;
    sub.expires = add(now, LIFETIME);
    sub.version = version;
    Ok(sub.row())
}

/// DELETE `subscriptions('<id>')` (If-Match required).
pub(crate) fn delete(shared: &Shared, id: &str, if_match: &IfMatch) -> Result<(), ApiError> {
    let mut data = shared.lock();
    let sub = live(&data, id, shared.clock.now())?;
    check(if_match, &etag(&sub.id, sub.version))?;
    data.subscriptions.remove(id);
    data.hooks.pending.retain(|p| p.subscription != id);
    Ok(())
}

/// One subscription (GET by key).
pub(crate) fn get(shared: &Shared, id: &str) -> Result<Row, ApiError> {
    let data = shared.lock();
    data.subscriptions.get(id).map(Subscription::row).ok_or_else(|| ApiError::segment_not_found("subscriptions"))
}

/// Removes a subscription and its pending notifications (the admin's delete).
pub(crate) fn forget(data: &mut Data, id: &str) {
    data.subscriptions.remove(id);
    data.hooks.pending.retain(|p| p.subscription != id);
}

/// All subscriptions (expired ones stay listed until a job purges them).
pub(crate) fn rows(shared: &Shared) -> Vec<Row> {
    shared.lock().subscriptions.values().map(Subscription::row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_ladder() {
        let minutes: Vec<u64> = (1..=5).map(|a| retry_delay(a).as_secs() / 60).collect();
        assert_eq!(minutes, [1, 1, 10, 100, 1000]);
    }
}
