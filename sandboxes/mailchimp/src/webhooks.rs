//! List webhooks: the management endpoints (with the validation GET Mailchimp sends on create),
//! the form-encoded event payloads of reference §7.3, HMAC-SHA256 signing
//! (`X-Mailchimp-Signature: t=…,v1=…`) and delivery with retries at increasing intervals.
//!
//! Deliveries to one webhook start in event order (one worker per webhook); a failed delivery is
//! retried on its own schedule so it does not hold up later events.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::errors::ApiError;
use crate::lists::List;
use crate::members::Member;
use crate::query::{Page, Query};
use crate::state::Shared;
use crate::util::{iso, short_id, token};
use crate::validate::{Checker, Kind, body_object};

/// The event flags of a webhook.
pub(crate) const EVENTS: [&str; 6] = ["subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"];
/// The source flags of a webhook.
pub(crate) const SOURCES: [&str; 3] = ["user", "admin", "api"];
/// Delivery attempts in all (the first included).
const MAX_ATTEMPTS: u32 = 7;
/// How long Mailchimp waits for a webhook receiver.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Who caused a change, for the `sources` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The subscriber (forms, unsubscribe links).
    User,
    /// An account user in the app.
    Admin,
    /// The API.
    Api,
    /// The platform itself (bounces): not filtered by source.
    System,
}

impl Source {
    fn key(self) -> Option<&'static str> {
        match self {
            Source::User => Some("user"),
            Source::Admin => Some("admin"),
            Source::Api => Some("api"),
            Source::System => None,
        }
    }
}

/// A webhook of a list.
#[derive(Clone, Debug)]
pub(crate) struct Webhook {
    /// The 10-hex-digit id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// All six event flags.
    pub events: Map<String, Value>,
    /// All three source flags.
    pub sources: Map<String, Value>,
    /// The HMAC key, shown once, in the create response.
    pub secret: String,
}

impl Webhook {
    fn render(&self, list_id: &str, with_secret: bool) -> Value {
        let mut out = json!({
            "id": self.id,
            "url": self.url,
            "list_id": list_id,
            "events": self.events,
            "sources": self.sources,
            "signing_enabled": true,
            "_links": [],
        });
        if with_secret {
            out["signing_secret"] = Value::from(self.secret.clone());
        }
        out
    }

    fn wants(&self, event: &str, source: Source) -> bool {
        self.events.get(event) == Some(&Value::Bool(true))
            && source.key().is_none_or(|key| self.sources.get(key) == Some(&Value::Bool(true)))
    }
}

/// A member change that webhooks report.
#[derive(Clone, Debug)]
pub(crate) enum MemberEvent {
    Subscribe,
    /// `action` is `unsub` or `delete`.
    Unsubscribe {
        action: &'static str,
    },
    Cleaned,
    Profile,
    UpEmail {
        old_email: String,
    },
}

/// A delivery to make: decided under the state lock, sent after it.
#[derive(Clone, Debug)]
pub(crate) struct Outgoing {
    /// The list whose webhook this is (retries stop if it is deleted).
    pub list_id: String,
    /// The webhook, for its queue and the delivery record.
    pub webhook_id: String,
    /// Where deliveries go.
    pub url: String,
    /// The key the body is signed with.
    pub secret: String,
    /// The event type, for the delivery record.
    pub event: &'static str,
    /// The form-encoded body, signed as is.
    pub body: String,
}

/// One delivery attempt, as the receiver saw it.
#[derive(Clone, Debug, Serialize)]
pub struct Delivery {
    /// The webhook delivered for.
    pub webhook_id: String,
    /// The URL posted to.
    pub url: String,
    /// The event type (`subscribe`, …).
    pub event: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The raw form-encoded body.
    pub body: String,
    /// The `X-Mailchimp-Signature` header sent.
    pub signature: String,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer (connection refused, timeout).
    pub error: Option<String>,
    /// When the attempt was made (ISO 8601).
    pub at: String,
}

/// The `v1` signature: hex HMAC-SHA256 keyed by the signing secret over `"{timestamp}.{body}"`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    crate::util::hex(&mac.finalize().into_bytes())
}

/// Form-encodes pairs the way the payloads are sent (brackets percent-encoded, spaces as `+`).
fn encode(pairs: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        serializer.append_pair(k, v);
    }
    serializer.finish()
}

/// `data[merges][…]` pairs: EMAIL first, then every merge field in order.
fn merges(list: &List, member: &Member, pairs: &mut Vec<(String, String)>) {
    pairs.push(("data[merges][EMAIL]".into(), member.email.clone()));
    for field in &list.merge_fields {
        let key = format!("data[merges][{}]", field.tag);
        match member.merges.get(&field.tag) {
            Some(Value::Object(parts)) => {
                for (part, value) in parts {
                    pairs.push((
                        format!("{key}[{part}]"),
                        value.as_str().map_or_else(|| value.to_string(), str::to_string),
                    ));
                }
            }
            Some(Value::String(s)) => pairs.push((key, s.clone())),
            Some(Value::Number(n)) => pairs.push((key, n.to_string())),
            _ => pairs.push((key, String::new())),
        }
    }
}

/// Queues the deliveries of a member event to every webhook of the list that wants it.
pub(crate) fn member_event(list: &List, hash: &str, event: MemberEvent, source: Source, out: &mut Vec<Outgoing>) {
    let Some(member) = list.members.get(hash) else { return };
    let kind = match &event {
        MemberEvent::Subscribe => "subscribe",
        MemberEvent::Unsubscribe { .. } => "unsubscribe",
        MemberEvent::Cleaned => "cleaned",
        MemberEvent::Profile => "profile",
        MemberEvent::UpEmail { .. } => "upemail",
    };
    let hooks: Vec<&Webhook> = list.webhooks.iter().filter(|w| w.wants(kind, source)).collect();
    if hooks.is_empty() {
        return;
    }
    let fired_at = Timestamp::now().strftime("%Y-%m-%d %H:%M:%S").to_string();
    let mut pairs: Vec<(String, String)> = vec![("type".into(), kind.into()), ("fired_at".into(), fired_at)];
    let p = |k: &str, v: &str| (format!("data[{k}]"), v.to_string());
    let identity = |pairs: &mut Vec<(String, String)>| {
        pairs.push(p("id", &member.unique_email_id));
        pairs.push(p("list_id", &list.id));
        pairs.push(p("email", &member.email));
        pairs.push(p("email_type", &member.email_type));
        merges(list, member, pairs);
    };
    match &event {
        MemberEvent::Subscribe => {
            identity(&mut pairs);
            pairs.push(p("ip_opt", &member.ip_opt));
            pairs.push(p("ip_signup", &member.ip_signup));
            pairs.push(p("web_id", &member.web_id.to_string()));
        }
        MemberEvent::Unsubscribe { action } => {
            pairs.push(p("action", action));
            pairs.push(p("reason", "manual"));
            identity(&mut pairs);
            pairs.push(p("ip_opt", &member.ip_opt));
            pairs.push(p("web_id", &member.web_id.to_string()));
            pairs.push(p("campaign_id", ""));
        }
        MemberEvent::Profile => {
            identity(&mut pairs);
            pairs.push(p("ip_opt", &member.ip_opt));
            pairs.push(p("web_id", &member.web_id.to_string()));
        }
        MemberEvent::Cleaned => {
            pairs.push(p("list_id", &list.id));
            pairs.push(p("campaign_id", ""));
            pairs.push(p("reason", "hard"));
            pairs.push(p("email", &member.email));
        }
        MemberEvent::UpEmail { old_email } => {
            pairs.push(p("list_id", &list.id));
            pairs.push(p("new_id", &member.unique_email_id));
            pairs.push(p("new_email", &member.email));
            pairs.push(p("old_email", old_email));
        }
    }
    let body = encode(&pairs);
    for hook in hooks {
        out.push(Outgoing {
            list_id: list.id.clone(),
            webhook_id: hook.id.clone(),
            url: hook.url.clone(),
            secret: hook.secret.clone(),
            event: kind,
            body: body.clone(),
        });
    }
}

/// Hands deliveries to the per-webhook workers.
pub(crate) fn send(shared: &Arc<Shared>, out: Vec<Outgoing>) {
    if out.is_empty() {
        return;
    }
    let mut queues = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
    for outgoing in out {
        let sender = queues.entry(outgoing.webhook_id.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            shared.runtime.spawn(worker(shared.clone(), rx));
            tx
        });
        let _ = sender.send(outgoing);
    }
}

/// Sends first attempts in order; failures go to their own retry task.
async fn worker(shared: Arc<Shared>, mut queue: mpsc::UnboundedReceiver<Outgoing>) {
    while let Some(Some(outgoing)) = shared.until_shutdown(queue.recv()).await {
        match shared.until_shutdown(attempt(&shared, &outgoing, 1)).await {
            None => return,
            Some(true) => {}
            Some(false) => {
                shared.runtime.spawn(retry(shared.clone(), outgoing));
            }
        }
    }
}

/// Attempts 2..=7, after `webhook_retry`, then doubling; stops when the webhook is deleted.
async fn retry(shared: Arc<Shared>, outgoing: Outgoing) {
    let mut delay = shared.config.webhook_retry;
    for n in 2..=MAX_ATTEMPTS {
        if shared.until_shutdown(tokio::time::sleep(delay)).await.is_none() {
            return;
        }
        let exists = {
            let data = shared.lock();
            data.lists.get(&outgoing.list_id).is_some_and(|l| l.webhooks.iter().any(|w| w.id == outgoing.webhook_id))
        };
        if !exists {
            return;
        }
        match shared.until_shutdown(attempt(&shared, &outgoing, n)).await {
            None | Some(true) => return,
            Some(false) => delay *= 2,
        }
    }
}

/// One signed POST; true on 2xx.
async fn attempt(shared: &Shared, outgoing: &Outgoing, n: u32) -> bool {
    let t = Timestamp::now().as_second();
    let header = format!("t={t},v1={}", signature(&outgoing.secret, t, &outgoing.body));
    let result = shared
        .http
        .post(&outgoing.url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("User-Agent", "MailChimp.com")
        .header("X-Mailchimp-Signature", &header)
        .timeout(TIMEOUT)
        .body(outgoing.body.clone())
        .send()
        .await;
    let (status, error) = match result {
        Ok(response) => (Some(response.status().as_u16()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    shared.deliveries.lock().unwrap_or_else(|e| e.into_inner()).push(Delivery {
        webhook_id: outgoing.webhook_id.clone(),
        url: outgoing.url.clone(),
        event: outgoing.event.into(),
        attempt: n,
        body: outgoing.body.clone(),
        signature: header,
        status,
        error,
        at: iso(crate::util::now()),
    });
    status.is_some_and(|s| (200..300).contains(&s))
}

/// The GET Mailchimp sends before accepting a webhook URL: it must answer 200.
async fn validate_url(shared: &Shared, url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).ok().filter(|u| matches!(u.scheme(), "http" | "https"));
    if parsed.is_none() {
        return Err(ApiError::invalid_field("url", "Please enter a valid URL, e.g. https://example.com/webhook."));
    }
    let answer = shared
        .http
        .get(url)
        .header("User-Agent", "MailChimp.com WebHook Validator")
        .timeout(TIMEOUT)
        .send()
        .await
        .map(|r| r.status().as_u16());
    match answer {
        Ok(200) => Ok(()),
        Ok(status) => Err(ApiError::invalid_field(
            "url",
            format!("The URL could not be validated: a GET request to it returned HTTP {status}, not 200."),
        )),
        Err(_) => Err(ApiError::invalid_field("url", "The URL could not be validated: it could not be reached.")),
    }
}

/// Checks a create/patch body; returns the URL if given.
fn check_body(obj: &Map<String, Value>, create: bool) -> Result<Option<String>, ApiError> {
    let mut check = Checker::new();
    if create {
        check.require(obj, "", &["url"]);
    }
    check.check_all(obj, "", &[("url", Kind::Str), ("events", Kind::Obj), ("sources", Kind::Obj)]);
    for (name, keys) in [("events", &EVENTS[..]), ("sources", &SOURCES[..])] {
        if let Some(Value::Object(flags)) = obj.get(name) {
            for key in keys {
                check.check(flags, name, key, Kind::Bool);
            }
        }
    }
    check.finish()?;
    Ok(obj.get("url").and_then(Value::as_str).map(str::to_string))
}

/// Flags as given, `false` for the ones left out (omitted flags are undocumented; nothing is
/// implied).
fn flags(given: Option<&Value>, keys: &[&str], current: Option<&Map<String, Value>>) -> Map<String, Value> {
    keys.iter()
        .map(|k| {
            let value = given
                .and_then(|g| g.get(*k))
                .and_then(Value::as_bool)
                .or_else(|| current.and_then(|c| c.get(*k)).and_then(Value::as_bool))
                .unwrap_or(false);
            (k.to_string(), Value::Bool(value))
        })
        .collect()
}

/// POST /lists/{id}/webhooks: validates the URL with a GET, then creates the webhook; the
/// signing secret is in this response only.
pub(crate) async fn create(shared: &Arc<Shared>, list_id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    if !shared.lock().lists.contains_key(list_id) {
        return Err(ApiError::not_found());
    }
    let obj = body_object(body)?;
    let url = check_body(obj, true)?.unwrap_or_default();
    validate_url(shared, &url).await?;
    let mut data = shared.lock();
    let seq = data.next_seq();
    let list = data.lists.get_mut(list_id).ok_or_else(ApiError::not_found)?;
    let hook = Webhook {
        id: short_id("webhook", seq),
        url,
        events: flags(obj.get("events"), &EVENTS, None),
        sources: flags(obj.get("sources"), &SOURCES, None),
        secret: token("signing-secret", seq),
    };
    let out = hook.render(list_id, true);
    list.webhooks.push(hook);
    Ok(out)
}

/// PATCH /lists/{id}/webhooks/{webhook_id}: a new URL is validated again.
pub(crate) async fn patch(
    shared: &Arc<Shared>,
    list_id: &str,
    id: &str,
    body: Option<&Value>,
) -> Result<Value, ApiError> {
    let current = {
        let data = shared.lock();
        let list = data.lists.get(list_id).ok_or_else(ApiError::not_found)?;
        list.webhooks.iter().find(|w| w.id == id).cloned().ok_or_else(ApiError::not_found)?
    };
    let obj = body_object(body)?;
    let url = check_body(obj, false)?;
    if let Some(url) = &url
        && *url != current.url
    {
        validate_url(shared, url).await?;
    }
    let mut data = shared.lock();
    let list = data.lists.get_mut(list_id).ok_or_else(ApiError::not_found)?;
    let hook = list.webhooks.iter_mut().find(|w| w.id == id).ok_or_else(ApiError::not_found)?;
    if let Some(url) = url {
        hook.url = url;
    }
    hook.events = flags(obj.get("events"), &EVENTS, Some(&hook.events));
    hook.sources = flags(obj.get("sources"), &SOURCES, Some(&hook.sources));
    Ok(hook.render(list_id, false))
}

/// GET /lists/{id}/webhooks.
pub(crate) fn list(list: &List, query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let total = list.webhooks.len();
    let items: Vec<Value> = page.slice(list.webhooks.iter().map(|w| w.render(&list.id, false)).collect());
    Ok(json!({"webhooks": items, "list_id": list.id, "total_items": total, "_links": []}))
}

/// GET /lists/{id}/webhooks/{webhook_id} (no secret).
pub(crate) fn get(list: &List, id: &str) -> Result<Value, ApiError> {
    list.webhooks.iter().find(|w| w.id == id).map(|w| w.render(&list.id, false)).ok_or_else(ApiError::not_found)
}

/// DELETE /lists/{id}/webhooks/{webhook_id}: pending retries stop.
pub(crate) fn delete(shared: &Shared, list: &mut List, id: &str) -> Result<(), ApiError> {
    let before = list.webhooks.len();
    list.webhooks.retain(|w| w.id != id);
    if list.webhooks.len() == before {
        return Err(ApiError::not_found());
    }
    shared.queues.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subscribe example of reference §7.3, raw.
    const RAW: &str = "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30&data%5Bip_signup%5D=10.20.10.30";

    #[test]
    fn signature_matches_reference_vector() {
        assert_eq!(
            signature("test_signing_secret", 1_700_000_000, RAW),
            "46e90de712343f81a53acd7380e82e6fc78c34a5fc7a3eec07cf0bb792c2747a"
        );
    }

    #[test]
    fn encoding_matches_reference_body() {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(RAW.as_bytes()).into_owned().collect();
        assert_eq!(pairs[1], ("fired_at".into(), "2009-03-26 21:35:57".into()));
        assert_eq!(pairs[4], ("data[email]".into(), "api@mailchimp.com".into()));
        assert_eq!(encode(&pairs), RAW);
    }
}
