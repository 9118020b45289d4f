//! Ordering and server-driven paging [MS-PAGING][ISS-1528][ISS-1871][ISS-AL6858].
//!
//! Rows come in the source table's key order (or `$orderby`, with the key as tie-breaker). A
//! page holds at most `max_page_size` rows (BC: 20,000), fewer with `Prefer:
//! odata.maxpagesize=N` (echoed in `Preference-Applied`). When more rows follow, the page ends
//! with `@odata.nextLink` carrying an opaque `$skiptoken` that encodes the sort key of the last
//! row sent — keyset paging, like BC's "key of the last entity": rows inserted or changed during a
//! read never shift later pages, a row is never sent twice for the same key, and a row whose key
//! moves behind the cursor is simply not in this read (an incremental reader finds it through
//! its `lastModifiedDateTime` on the next run). `$top` returns at most that many rows and no
//! nextLink.

use std::cmp::Ordering;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::errors::ApiError;
use crate::odata::filter::parse_datetime;
use crate::schema::{Edm, EntityType, Prop};

/// One sort key.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SortKey {
    /// The property ordered by.
    pub prop: &'static Prop,
    /// Descending.
    pub desc: bool,
}

/// `$orderby` plus the default order plus the key: a total order over rows.
pub(crate) fn sort_keys(ty: &'static EntityType, orderby: Option<&str>) -> Result<Vec<SortKey>, ApiError> {
    let mut keys: Vec<SortKey> = Vec::new();
    if let Some(text) = orderby {
        for item in text.split(',') {
            let mut words = item.split_whitespace();
            let name = words.next().ok_or_else(|| ApiError::query(format!("Syntax error in '$orderby={text}'.")))?;
            let desc = match words.next() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(_) => return Err(ApiError::query(format!("Syntax error in '$orderby={text}'."))),
            };
            if words.next().is_some() {
                return Err(ApiError::query(format!("Syntax error in '$orderby={text}'.")));
            }
            let prop = ty.prop(name).ok_or_else(|| ApiError::unknown_property(name, ty.name))?;
            keys.push(SortKey { prop, desc });
        }
    }
    for name in ty.order.iter().chain(std::iter::once(&ty.key)) {
        if let Some(prop) = ty.prop(name)
            && !keys.iter().any(|k| k.prop.name == prop.name)
        {
            keys.push(SortKey { prop, desc: false });
        }
    }
    Ok(keys)
}

/// Compares two values of one property.
fn cmp_values(prop: &Prop, a: &Value, b: &Value) -> Ordering {
    match prop.ty {
        Edm::Decimal | Edm::Int32 | Edm::Int64 => {
            a.as_f64().unwrap_or(0.0).partial_cmp(&b.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal)
        }
        Edm::Boolean => a.as_bool().cmp(&b.as_bool()),
        Edm::DateTimeOffset => a.as_str().and_then(parse_datetime).cmp(&b.as_str().and_then(parse_datetime)),
        Edm::Enum(e) => {
            let rank = |v: &Value| e.members.iter().find(|(m, _)| Some(*m) == v.as_str()).map(|(_, r)| *r);
            rank(a).cmp(&rank(b))
        }
        Edm::Guid => a.as_str().map(str::to_ascii_lowercase).cmp(&b.as_str().map(str::to_ascii_lowercase)),
        Edm::String | Edm::Date => a.as_str().cmp(&b.as_str()),
    }
}

/// Compares rows by the sort keys.
pub(crate) fn cmp_rows(keys: &[SortKey], a: &Map<String, Value>, b: &Map<String, Value>) -> Ordering {
    for key in keys {
        let ordering = cmp_values(
            key.prop,
            a.get(key.prop.name).unwrap_or(&Value::Null),
            b.get(key.prop.name).unwrap_or(&Value::Null),
        );
        let ordering = if key.desc { ordering.reverse() } else { ordering };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// Compares a row with a cursor tuple.
pub(crate) fn cmp_cursor(keys: &[SortKey], row: &Map<String, Value>, cursor: &[Value]) -> Ordering {
    for (key, at) in keys.iter().zip(cursor) {
        let ordering = cmp_values(key.prop, row.get(key.prop.name).unwrap_or(&Value::Null), at);
        let ordering = if key.desc { ordering.reverse() } else { ordering };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

/// The cursor of a row.
pub(crate) fn cursor(keys: &[SortKey], row: &Map<String, Value>) -> Vec<Value> {
    keys.iter().map(|k| row.get(k.prop.name).cloned().unwrap_or(Value::Null)).collect()
}

/// A fingerprint of what defines the row sequence, so a token is only valid for its query.
pub(crate) fn fingerprint(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Encodes a cursor as an opaque token.
pub(crate) fn encode_token(cursor: &[Value], fingerprint: &str) -> String {
    let text = json!({"v": 1, "q": fingerprint, "k": cursor}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Decodes a token produced for the same query.
pub(crate) fn decode_token(token: &str, fingerprint: &str, len: usize) -> Result<Vec<Value>, ApiError> {
    let invalid = || ApiError::new(400, "BadRequest_InvalidToken", format!("The skip token '{token}' is not valid."));
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_matches('\'')).map_err(|_| invalid())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if value["v"] != 1 || value["q"] != fingerprint {
        return Err(invalid());
    }
    match value["k"].as_array() {
        Some(k) if k.len() == len => Ok(k.clone()),
        _ => Err(invalid()),
    }
}

/// Reads `Prefer: odata.maxpagesize=N` (among other preferences).
pub(crate) fn preferred_page_size(prefer: Option<&str>) -> Option<usize> {
    prefer?
        .split(',')
        .find_map(|p| {
            let (name, value) = p.trim().split_once('=')?;
            (name.trim().eq_ignore_ascii_case("odata.maxpagesize"))
                .then(|| value.trim().trim_matches('"').parse::<usize>().ok())?
        })
        .filter(|n| *n > 0)
}

/// Percent-encodes a query value the way OData links are usually written (`%20`, not `+`).
pub(crate) fn encode_query_value(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'\''
            | b'('
            | b')'
            | b','
            | b':'
            | b'$' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::CUSTOMER;

    #[test]
    fn tokens_round_trip_and_are_bound_to_the_query() {
        let cursor = vec![Value::from("C00010"), Value::from("b37406e8-eaf1-ef11-9b20-d99fd2b71a0f")];
        let token = encode_token(&cursor, "abc");
        assert!(!token.contains("C00010"));
        assert_eq!(decode_token(&token, "abc", 2).unwrap(), cursor);
        assert!(decode_token(&token, "abd", 2).is_err());
        assert!(decode_token("garbage!", "abc", 2).is_err());
    }

    #[test]
    fn default_order_is_number_then_id() {
        let keys = sort_keys(&CUSTOMER, None).unwrap();
        assert_eq!(keys.iter().map(|k| k.prop.name).collect::<Vec<_>>(), ["number", "id"]);
        let keys = sort_keys(&CUSTOMER, Some("lastModifiedDateTime desc,number")).unwrap();
        assert_eq!(keys.iter().map(|k| k.prop.name).collect::<Vec<_>>(), ["lastModifiedDateTime", "number", "id"]);
        assert!(sort_keys(&CUSTOMER, Some("nope")).is_err());
    }

    #[test]
    fn prefer_header() {
        assert_eq!(preferred_page_size(Some("odata.maxpagesize=50")), Some(50));
        assert_eq!(preferred_page_size(Some("return=minimal, odata.maxpagesize=7")), Some(7));
        assert_eq!(preferred_page_size(Some("odata.maxpagesize=0")), None);
        assert_eq!(preferred_page_size(None), None);
        assert_eq!(encode_query_value("a b+c'"), "a%20b%2Bc'");
    }
}
