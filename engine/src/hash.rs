//! Canonical JSON and payload hashes.
//!
//! The ledger skips a write when the payload hash equals the last one written. The hash must
//! therefore not depend on the order keys arrived in: objects are serialized with sorted keys.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Compact JSON with object keys sorted at every level.
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Writes straight into one buffer: a string per key and value was most of the hash's cost.
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("a string always serializes");
                out.push(b':');
                write_canonical(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => serde_json::to_writer(&mut *out, other).expect("a scalar always serializes"),
    }
}

/// [`payload_hash`] of the object with these fields (sorted by name), without building it: a
/// request's body is hashed where it lies instead of being copied into a new value first.
pub fn payload_hash_of(fields: &[(&str, &Value)]) -> String {
    debug_assert!(fields.windows(2).all(|w| w[0].0 < w[1].0), "fields must be sorted by name");
    let mut out = vec![b'{'];
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut out, name).expect("a string always serializes");
        out.push(b':');
        write_canonical(value, &mut out);
    }
    out.push(b'}');
    hex_sha256(&out)
}

/// Lower-case hex SHA-256 of the canonical JSON of `value`.
pub fn payload_hash(value: &Value) -> String {
    hex_sha256(canonical_json(value).as_bytes())
}

fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Ledgers keep these hashes: the canonical form must never change.
    #[test]
    fn the_canonical_form_and_its_hash_are_stable() {
        let v = json!({"b": [1, 2.5, "x\"y\n\u{1}é"], "a": {"d": null, "c": true}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":true,"d":null},"b":[1,2.5,"x\"y\n\u0001é"]}"#);
        assert_eq!(payload_hash(&v), "314f85c9c8f390699306b3f471ef75244f860a9cc46eec4ff08937867de56879");
        assert_eq!(payload_hash_of(&[("a", &v["a"]), ("b", &v["b"])]), payload_hash(&v));
    }
}
