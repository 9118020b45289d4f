//! Small helpers shared by the resources: hashes and ids, Mailchimp's timestamp formats, email
//! syntax, numbers.

use jiff::Timestamp;
use md5::{Digest, Md5};
use serde_json::{Number, Value};

/// Lowercase hex MD5 of a string.
pub(crate) fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

/// Lowercase hex of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The member id: MD5 of the lowercased email (reference §3.1; clients trim too).
pub(crate) fn subscriber_hash(email: &str) -> String {
    md5_hex(&email.trim().to_lowercase())
}

/// A 10-hex-digit id (lists, stores, webhooks, batches, unique email ids), derived from a kind
/// and a sequence number so runs are reproducible.
pub(crate) fn short_id(kind: &str, seq: u64) -> String {
    md5_hex(&format!("{kind}:{seq}"))[..10].to_string()
}

/// A UUID-shaped id (request ids, `instance`), derived from a sequence number and the clock.
pub(crate) fn uuid_like(seq: u64) -> String {
    let h = md5_hex(&format!("request:{seq}:{}", Timestamp::now().as_nanosecond()));
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A secret-looking token: 32 hex digits that are not guessable from the outside.
pub(crate) fn token(kind: &str, seq: u64) -> String {
    md5_hex(&format!("{kind}:{seq}:{}:{:p}", Timestamp::now().as_nanosecond(), &seq))
}

/// Now, truncated to whole seconds (Mailchimp's timestamps have no fractions).
pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// ISO 8601 as Mailchimp writes it: `2015-10-21T15:41:36+00:00`.
pub(crate) fn iso(ts: Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Parses the timestamps clients send in filters: RFC 3339 / ISO 8601 with an offset, or a
/// civil date-time or date taken as UTC.
pub(crate) fn parse_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    let civil = text.replace(' ', "T");
    if let Ok(dt) = civil.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp());
    }
    text.parse::<jiff::civil::Date>().ok()?.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Email syntax as Mailchimp checks it before anything else: one `@`, a non-empty local part, a
/// dotted domain with a top-level domain of two letters or more, no spaces.
pub(crate) fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    if local.is_empty() || domain.contains('@') || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && labels.iter().all(|l| l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii()))
        && labels.last().is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_alphabetic()))
}

/// A JSON number from a number or a numeric string (money may arrive either way).
pub(crate) fn as_number(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return None;
            }
            if let Ok(i) = s.parse::<i64>() {
                return Some(Number::from(i));
            }
            s.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64)
        }
        _ => None,
    }
}

/// A number as f64 (for sums), treating anything else as 0.
pub(crate) fn as_f64(value: &Value) -> f64 {
    as_number(value).and_then(|n| n.as_f64()).unwrap_or(0.0)
}

/// A rounded money total as a JSON number.
pub(crate) fn money(total: f64) -> Value {
    Number::from_f64((total * 100.0).round() / 100.0).map(Value::Number).unwrap_or(Value::from(0))
}

/// Percent-decodes a path segment (`%40` → `@`); `+` stays a plus in paths. Shared with the
/// other sandboxes, which decode their paths the same way.
pub(crate) use sandbox_common::util::percent_decode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_reference_example() {
        assert_eq!(subscriber_hash("Urist.McVankab@freddiesjokes.com "), "62eeb292278cc15f5817cb78f7790b08");
    }

    #[test]
    fn email_syntax() {
        assert!(valid_email("a.b+c@example.co.uk"));
        for bad in ["", "a", "a@b", "a@b.c", "@x.com", "a b@x.com", "a@@x.com", "a@x..com", "a@-x.com"] {
            assert!(!valid_email(bad), "{bad}");
        }
    }

    #[test]
    fn numbers_from_strings() {
        assert_eq!(as_number(&Value::from("19.99")).unwrap().to_string(), "19.99");
        assert_eq!(as_number(&Value::from("3")).unwrap().to_string(), "3");
        assert!(as_number(&Value::from("x")).is_none());
    }

    #[test]
    fn times() {
        let ts = parse_time("2015-10-21T15:41:36+00:00").unwrap();
        assert_eq!(iso(ts), "2015-10-21T15:41:36+00:00");
        assert_eq!(parse_time("2015-10-21 15:41:36"), Some(ts));
        assert!(parse_time("yesterday").is_none());
        assert_eq!(percent_decode("a%40b.com%2"), "a@b.com%2");
    }
}
