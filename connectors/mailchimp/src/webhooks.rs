//! Mailchimp list webhooks: registration (with `sources.api = false`, so our own writes do not
//! come back as events), and the receiving side: form-encoded bodies with PHP-style keys,
//! secret URL tokens, and HMAC signatures.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::client::{McClient, McError};

/// The events a webhook can carry.
pub const EVENTS: [&str; 6] = ["subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign"];

/// A registered webhook.
#[derive(Clone, Serialize, Deserialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub list_id: String,
    /// Whether Mailchimp signs its deliveries (webhooks created before signing existed do not).
    #[serde(default)]
    pub signing_enabled: bool,
    /// Returned only when the webhook is created.
    #[serde(default)]
    pub signing_secret: Option<String>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("url", &"<redacted: holds a token>")
            .field("list_id", &self.list_id)
            .field("signing_enabled", &self.signing_enabled)
            .field("signing_secret", &self.signing_secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Registers a webhook for `events` on `list_id`, from people and admins but not from the API.
pub async fn register(client: &McClient, list_id: &str, url: &str, events: &[&str]) -> Result<Webhook, McError> {
    let events: Map<String, Value> = EVENTS.iter().map(|e| ((*e).to_owned(), json!(events.contains(e)))).collect();
    let body = json!({"url": url, "events": events, "sources": {"user": true, "admin": true, "api": false}});
    let (_, v) = client.send(Method::POST, &format!("/lists/{list_id}/webhooks"), &[], Some(&body)).await?;
    serde_json::from_value(v).map_err(|e| McError {
        status: None,
        title: "Unexpected Response".into(),
        detail: e.to_string(),
        errors: Vec::new(),
        transient: false,
    })
}

/// The webhooks of a list.
pub async fn list(client: &McClient, list_id: &str) -> Result<Vec<Webhook>, McError> {
    let (_, v) = client.send(Method::GET, &format!("/lists/{list_id}/webhooks"), &[], None).await?;
    Ok(v["webhooks"]
        .as_array()
        .map(|a| a.iter().filter_map(|w| serde_json::from_value(w.clone()).ok()).collect())
        .unwrap_or_default())
}

/// Deletes a webhook.
pub async fn delete(client: &McClient, list_id: &str, id: &str) -> Result<(), McError> {
    client.send(Method::DELETE, &format!("/lists/{list_id}/webhooks/{id}"), &[], None).await.map(|_| ())
}

/// Decodes `application/x-www-form-urlencoded` into nested JSON: `data[merges][FNAME]=Ada`
/// becomes `{"data": {"merges": {"FNAME": "Ada"}}}`. Brackets may arrive percent-encoded or
/// not. Errors on invalid UTF-8 or malformed nesting, never panics.
pub fn parse_form(body: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let mut root = Map::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k)?;
        let value = percent_decode(v)?;
        let mut segments = Vec::new();
        let (head, mut rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (key.as_str(), ""),
        };
        if head.is_empty() {
            return Err(format!("malformed key `{key}`"));
        }
        segments.push(head.to_owned());
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(|| format!("malformed key `{key}`"))?;
            if !rest.starts_with('[') {
                return Err(format!("malformed key `{key}`"));
            }
            segments.push(rest[1..close].to_owned());
            rest = &rest[close + 1..];
        }
        if segments.len() > 8 {
            return Err(format!("key `{key}` is nested too deeply"));
        }
        insert(&mut root, &segments, value)?;
    }
    Ok(Value::Object(root))
}

fn insert(map: &mut Map<String, Value>, segments: &[String], value: String) -> Result<(), String> {
    let (first, rest) = segments.split_first().expect("at least one segment");
    if rest.is_empty() {
        map.insert(first.clone(), Value::String(value));
        return Ok(());
    }
    let child = map.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
    match child {
        Value::Object(m) => insert(m, rest, value),
        _ => Err(format!("`{first}` is both a value and a group")),
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(hex.ok_or_else(|| "bad percent-encoding".to_owned())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "the body is not UTF-8".to_owned())
}

/// A webhook event as a record for the return-flow pipelines: `type`, `fired_at` (RFC 3339 UTC),
/// `list_id`, `email` (for `upemail`: the new address), `old_email`, `reason`, `action`,
/// `merges`, and the raw `data`.
pub fn event_record(form: &Value) -> Result<Value, String> {
    let kind = form["type"].as_str().ok_or("the event has no `type`")?;
    let data = form.get("data").cloned().unwrap_or(Value::Object(Map::new()));
    let fired = form["fired_at"].as_str().unwrap_or("");
    let fired_at = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", fired)
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp().to_string())
        .unwrap_or_else(|| fired.to_owned());
    let s = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
    let email = if kind == "upemail" { s("new_email") } else { s("email") };
    Ok(json!({
        "type": kind,
        "fired_at": fired_at,
        "list_id": s("list_id"),
        "email": email,
        "old_email": s("old_email"),
        "reason": s("reason"),
        "action": s("action"),
        "merges": data.get("merges").cloned().unwrap_or(Value::Object(Map::new())),
        "data": data,
    }))
}

/// Compares a URL token in constant time, so response timing reveals nothing about it.
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Missing,
    Malformed,
    /// The timestamp is more than the tolerance away from now (a replay, or a stale retry).
    Stale,
    Mismatch,
}

/// How far a signature's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECONDS: i64 = 300;

/// Verifies `X-Mailchimp-Signature: t=<unix>,v1=<hex>` = HMAC-SHA256(secret, "{t}.{raw body}"),
/// over the raw bytes, before anything is parsed.
pub fn verify_signature(secret: &str, header: Option<&str>, body: &[u8], now_unix: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex_decode(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return Err(SignatureError::Malformed) };
    // `abs_diff`: a hostile `t` (or clock) at the ends of i64 must not overflow.
    if now_unix.abs_diff(t) > SIGNATURE_TOLERANCE_SECONDS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).map_err(|_| SignatureError::Mismatch)
}

/// The signature header for a body (what Mailchimp sends; used by tests and the sandbox side).
pub fn sign(secret: &str, body: &[u8], t: i64) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBSCRIBE: &str = "type=subscribe&fired_at=2009-03-26+21%3A35%3A57&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D=api%40mailchimp.com&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D=api%40mailchimp.com&data%5Bmerges%5D%5BFNAME%5D=Mailchimp&data%5Bmerges%5D%5BLNAME%5D=API&data%5Bmerges%5D%5BINTERESTS%5D=Group1%2CGroup2&data%5Bip_opt%5D=10.20.10.30&data%5Bip_signup%5D=10.20.10.30";

    #[test]
    fn parses_the_documented_subscribe_body() {
        let form = parse_form(SUBSCRIBE.as_bytes()).unwrap();
        assert_eq!(form["type"], "subscribe");
        assert_eq!(form["fired_at"], "2009-03-26 21:35:57");
        assert_eq!(form["data"]["merges"]["FNAME"], "Mailchimp");
        assert_eq!(form["data"]["merges"]["INTERESTS"], "Group1,Group2");
        let record = event_record(&form).unwrap();
        assert_eq!(record["email"], "api@mailchimp.com");
        assert_eq!(record["fired_at"], "2009-03-26T21:35:57Z");
        assert_eq!(record["list_id"], "a6b5da1054");
    }

    #[test]
    fn brackets_may_arrive_unencoded_and_upemail_uses_the_new_address() {
        let body = "type=upemail&fired_at=2009-03-26 22:15:09&data[list_id]=a6b5da1054&data[new_id]=51da8c3259&data[new_email]=api%2Bnew%40mailchimp.com&data[old_email]=api%2Bold%40mailchimp.com";
        let record = event_record(&parse_form(body.as_bytes()).unwrap()).unwrap();
        assert_eq!(record["email"], "api+new@mailchimp.com");
        assert_eq!(record["old_email"], "api+old@mailchimp.com");
    }

    #[test]
    fn hostile_bodies_are_errors_not_panics() {
        for body in [
            &b"data[merges=x"[..],
            b"=x",
            b"a=%zz",
            b"a=%f",
            &[0xff, 0xfe],
            b"a[b]=1&a=2&a[b][c]=3",
            b"a[1][2][3][4][5][6][7][8][9]=x",
        ] {
            let _ = parse_form(body);
        }
        assert!(parse_form(b"data[merges=x").is_err());
        assert!(parse_form(&[0xff]).is_err());
        assert!(parse_form(b"a=1&a[b]=2").is_err());
        assert!(event_record(&parse_form(b"data[email]=x").unwrap()).is_err());
    }

    #[test]
    fn signature_matches_the_reference_vector() {
        let header = sign("test_signing_secret", SUBSCRIBE.as_bytes(), 1_700_000_000);
        assert_eq!(header, "t=1700000000,v1=46e90de712343f81a53acd7380e82e6fc78c34a5fc7a3eec07cf0bb792c2747a");
        assert_eq!(verify_signature("test_signing_secret", Some(&header), SUBSCRIBE.as_bytes(), 1_700_000_100), Ok(()));
    }

    #[test]
    fn signatures_refuse_tampering_staleness_and_garbage() {
        let body = SUBSCRIBE.as_bytes();
        let header = sign("s", body, 1_000_000);
        assert_eq!(verify_signature("s", Some(&header), b"type=unsubscribe", 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature("other", Some(&header), body, 1_000_000), Err(SignatureError::Mismatch));
        assert_eq!(verify_signature("s", Some(&header), body, 1_000_000 + 301), Err(SignatureError::Stale));
        assert_eq!(verify_signature("s", None, body, 1_000_000), Err(SignatureError::Missing));
        assert_eq!(verify_signature("s", Some("t=x,v1=zz"), body, 1_000_000), Err(SignatureError::Malformed));
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(token_matches("abc123", "abc123"));
        assert!(!token_matches("abc123", "abc124"));
        assert!(!token_matches("abc123", "abc12"));
    }
}
