//! Ordered JSON output. serde_json's map sorts keys (the workspace does not enable
//! `preserve_order`), but BC writes `@odata.context` first, `@odata.etag` first in each entity
//! and properties in `$metadata` order; clients and humans reading logs expect that.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON value whose objects keep insertion order.
#[derive(Clone, Debug)]
pub(crate) enum Out {
    /// A leaf (or an unordered object, for nested plain values).
    V(Value),
    /// An object with ordered keys.
    O(Vec<(String, Out)>),
    /// An array.
    A(Vec<Out>),
}

impl Out {
    /// An empty ordered object.
    pub(crate) fn object() -> Out {
        Out::O(Vec::new())
    }

    /// Appends a key (objects only).
    pub(crate) fn push(&mut self, key: impl Into<String>, value: impl Into<Out>) {
        if let Out::O(pairs) = self {
            pairs.push((key.into(), value.into()));
        }
    }

    /// The value with objects as serde_json maps (for the request log and in-process callers).
    pub(crate) fn to_value(&self) -> Value {
        match self {
            Out::V(v) => v.clone(),
            Out::O(pairs) => Value::Object(pairs.iter().map(|(k, v)| (k.clone(), v.to_value())).collect()),
            Out::A(items) => Value::Array(items.iter().map(Out::to_value).collect()),
        }
    }

    /// Compact JSON text in order.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl From<Value> for Out {
    fn from(v: Value) -> Out {
        Out::V(v)
    }
}

impl Serialize for Out {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::V(v) => v.serialize(serializer),
            Out::O(pairs) => {
                let mut map = serializer.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Out::A(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order() {
        let mut o = Out::object();
        o.push("z", Value::from(1));
        o.push("a", Out::A(vec![Out::V(Value::from("x"))]));
        assert_eq!(o.to_json(), r#"{"z":1,"a":["x"]}"#);
        assert_eq!(o.to_value()["z"], 1);
    }
}
