//! OData details: literals, XML-encoded enum names, and query strings.

use serde_json::Value;

/// A string literal: single-quoted, quotes doubled (`O'Brien` → `'O''Brien'`).
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A filter literal for a JSON value: GUIDs, numbers and booleans bare, text quoted.
pub fn literal(v: &Value) -> String {
    match v {
        Value::String(s) if is_guid(s) => s.clone(),
        Value::String(s) => quote(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// A DateTimeOffset literal: UTC with `Z`, unquoted, as Business Central requires.
pub fn datetime(ts: &jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Decodes XML-encoded names (`In_x0020_Review` → `In Review`, `_x0020_` → ` `,
/// `Non_x002D_Inventory` → `Non-Inventory`).
pub fn decode_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("_x") {
        let candidate = &rest[i..];
        let hex = candidate.get(2..6).filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
        match (hex, candidate.as_bytes().get(6)) {
            (Some(h), Some(b'_')) => {
                out.push_str(&rest[..i]);
                out.push(u32::from_str_radix(h, 16).ok().and_then(char::from_u32).unwrap_or('?'));
                rest = &candidate[7..];
            }
            _ => {
                out.push_str(&rest[..i + 2]);
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Encodes a caption as Business Central's wire name, for filters and writes.
pub fn encode_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c.to_string() } else { format!("_x{:04X}_", c as u32) })
        .collect()
}

/// Enum-typed properties of the entities the connector reads (from the `$metadata`).
pub const ENUM_FIELDS: &[&str] =
    &["status", "type", "blocked", "lineType", "contactType", "contactBusinessRelation", "consentStatus"];

/// Decodes the enum values of a record (and of expanded child records) in place.
pub fn decode_enums(record: &mut Value) {
    let Some(obj) = record.as_object_mut() else { return };
    for (k, v) in obj.iter_mut() {
        match v {
            Value::String(s) if ENUM_FIELDS.contains(&k.as_str()) => *s = decode_name(s),
            Value::Array(items) => items.iter_mut().for_each(decode_enums),
            Value::Object(_) => decode_enums(v),
            _ => {}
        }
    }
}

/// Percent-encodes a query value (spaces as `%20`, as BC writes them itself).
pub fn encode_query(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'('
            | b')'
            | b','
            | b'$'
            | b'\''
            | b':' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Builds `?$filter=…&$select=…&$expand=…` from its parts (empty parts left out).
pub fn query(parts: &[(&str, String)]) -> String {
    let kept: Vec<String> =
        parts.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", encode_query(v))).collect();
    if kept.is_empty() { String::new() } else { format!("?{}", kept.join("&")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn enum_names_decode_and_encode() {
        assert_eq!(decode_name("In_x0020_Review"), "In Review");
        assert_eq!(decode_name("_x0020_"), " ");
        assert_eq!(decode_name("Non_x002D_Inventory"), "Non-Inventory");
        assert_eq!(decode_name("Fixed_x0020_Asset"), "Fixed Asset");
        assert_eq!(decode_name("Open"), "Open");
        assert_eq!(decode_name("a_xZZZZ_b"), "a_xZZZZ_b");
        assert_eq!(encode_name("In Review"), "In_x0020_Review");
        assert_eq!(encode_name("Non-Inventory"), "Non_x002D_Inventory");
    }

    #[test]
    fn records_and_their_lines_are_decoded() {
        let mut inv = json!({"status": "In_x0020_Review", "displayName": "A_x0020_B", "salesInvoiceLines": [{"lineType": "Fixed_x0020_Asset"}]});
        decode_enums(&mut inv);
        assert_eq!(
            inv,
            json!({"status": "In Review", "displayName": "A_x0020_B", "salesInvoiceLines": [{"lineType": "Fixed Asset"}]})
        );
    }

    #[test]
    fn literals_follow_odata() {
        assert_eq!(literal(&json!("O'Brien@x.com")), "'O''Brien@x.com'");
        assert_eq!(literal(&json!("e802e7d1-5408-f011-9afa-6045bdabb318")), "e802e7d1-5408-f011-9afa-6045bdabb318");
        assert_eq!(literal(&json!(5)), "5");
        let ts: jiff::Timestamp = "2026-01-02T03:04:05.6Z".parse().unwrap();
        assert_eq!(datetime(&ts), "2026-01-02T03:04:05.600Z");
        assert_eq!(
            query(&[
                ("$filter", "lastModifiedDateTime gt 2026-01-02T03:04:05.600Z".into()),
                ("$select", String::new())
            ]),
            "?$filter=lastModifiedDateTime%20gt%202026-01-02T03:04:05.600Z"
        );
    }
}
