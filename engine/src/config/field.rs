//! Field specifications: the shape of the body a pipeline renders.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One value of the rendered body.
///
/// In YAML: a string is a template; a number, boolean or null is itself; a mapping with a
/// `for_each` key builds a list; any other mapping is a nested object; a list is a list of
/// values.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldSpec {
    /// A minijinja template. A template that is one `{{ expression }}` keeps its JSON type.
    Template(String),
    /// A number, boolean or null, written as is.
    Literal(Value),
    /// A list built from the items a JSONPath selects.
    ForEach(ForEachSpec),
    /// A nested object.
    Object(BTreeMap<String, FieldSpec>),
    /// A list of values.
    List(Vec<FieldSpec>),
}

/// A list built from the items a JSONPath selects, one element per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ForEachSpec {
    /// A JSONPath (RFC 9535) over the record that selects the items, e.g.
    /// `$.salesInvoiceLines[*]`. Inside, `item` is the current item and `index` its position.
    pub for_each: String,
    /// Keep only items for which this expression is true, e.g. `item.quantity > 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The fields of each element (an object per item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, FieldSpec>>,
    /// The value of each element, when elements are not objects (e.g. a list of tag names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Box<FieldSpec>>,
}

impl FieldSpec {
    fn from_json(value: Value) -> Result<Self, String> {
        Ok(match value {
            Value::String(s) => FieldSpec::Template(s),
            v @ (Value::Number(_) | Value::Bool(_) | Value::Null) => FieldSpec::Literal(v),
            Value::Array(items) => {
                FieldSpec::List(items.into_iter().map(FieldSpec::from_json).collect::<Result<_, _>>()?)
            }
            Value::Object(map) if map.contains_key("for_each") => {
                FieldSpec::ForEach(serde_json::from_value(Value::Object(map)).map_err(|e| e.to_string())?)
            }
            Value::Object(map) => FieldSpec::Object(
                map.into_iter().map(|(k, v)| Ok((k, FieldSpec::from_json(v)?))).collect::<Result<_, String>>()?,
            ),
        })
    }
}

impl<'de> Deserialize<'de> for FieldSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        FieldSpec::from_json(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for FieldSpec {
    fn schema_name() -> Cow<'static, str> {
        "FieldSpec".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let for_each = generator.subschema_for::<ForEachSpec>();
        let this = generator.subschema_for::<FieldSpec>();
        // if/then/else rather than anyOf: a typo inside a `for_each` block is then reported at
        // the offending key, not as "matches none of the alternatives".
        json_schema!({
            "description": "A template string, a literal (number, boolean, null), a nested object, a list, or a `for_each` list builder.",
            "if": { "type": "object", "required": ["for_each"] },
            "then": for_each,
            "else": {
                "type": ["string", "number", "boolean", "null", "object", "array"],
                "additionalProperties": this,
                "items": this
            }
        })
    }
}
