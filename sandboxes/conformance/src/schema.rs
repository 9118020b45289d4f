//! OpenAPI 3.0 Schema Objects → JSON Schema draft 4, and the corrections applied to known spec bugs.
//!
//! OpenAPI 3.0 schemas are a dialect of draft 4 (boolean `exclusiveMaximum`, `$ref` siblings ignored),
//! so the translation keeps the draft 4 validation keywords and drops the rest:
//!
//! - annotations (`title`, `description`, `example`, `default`, `format`, `deprecated`, `xml`,
//!   `externalDocs`, `discriminator`) and every `x-*` extension are dropped. `format` is an annotation
//!   here: it is never asserted;
//! - `nullable: true` allows `null` (added to `type` and `enum`, or the schema wrapped in `anyOf`);
//! - `readOnly` properties are removed from `required` when checking requests, `writeOnly` ones when
//!   checking responses (they stay allowed: the API ignores them);
//! - a `$ref` replaces its schema (siblings are ignored, as OpenAPI 3.0 says).

use serde_json::{Map, Value, json};

/// Which message the schema checks: the direction decides what `readOnly`/`writeOnly` mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Direction {
    Request,
    Response,
}

/// The `$ref` prefix of component schemas; the only kind of schema reference OpenAPI 3.0 allows
/// besides external documents (which are not supported).
pub(crate) const SCHEMA_REF_PREFIX: &str = "#/components/schemas/";

/// Draft 4 validation keywords copied as they are.
const COPIED: &[&str] = &[
    "type",
    "enum",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
];

/// Translates one OpenAPI Schema Object. `components` holds the raw (untranslated) component
/// schemas, used to see whether a `$ref`'d property is read-only or write-only.
pub(crate) fn translate(schema: &Value, direction: Direction, components: &Map<String, Value>) -> Value {
    let Value::Object(object) = schema else {
        // Not a Schema Object (OpenAPI 3.0 has no boolean schemas): accept anything.
        return match schema {
            Value::Bool(false) => json!({"not": {}}),
            _ => json!({}),
        };
    };
    if let Some(reference) = object.get("$ref") {
        return json!({ "$ref": reference });
    }
    let mut out = Map::new();
    for (key, value) in object {
        match key.as_str() {
            "properties" => {
                if let Value::Object(properties) = value {
                    let translated = properties
                        .iter()
                        .map(|(name, property)| (name.clone(), translate(property, direction, components)))
                        .collect();
                    out.insert(key.clone(), Value::Object(translated));
                }
            }
            "items" | "additionalItems" => {
                let translated = match value {
                    Value::Array(items) => {
                        Value::Array(items.iter().map(|item| translate(item, direction, components)).collect())
                    }
                    Value::Bool(allowed) => Value::Bool(*allowed),
                    other => translate(other, direction, components),
                };
                out.insert(key.clone(), translated);
            }
            "additionalProperties" => {
                let translated = match value {
                    Value::Bool(allowed) => Value::Bool(*allowed),
                    other => translate(other, direction, components),
                };
                out.insert(key.clone(), translated);
            }
            "not" => {
                out.insert(key.clone(), translate(value, direction, components));
            }
            "allOf" | "anyOf" | "oneOf" => {
                if let Value::Array(schemas) = value {
                    let translated = schemas.iter().map(|schema| translate(schema, direction, components)).collect();
                    out.insert(key.clone(), Value::Array(translated));
                }
            }
            "required" => {
                if let Value::Array(names) = value {
                    let properties = object.get("properties").and_then(Value::as_object);
                    let kept: Vec<Value> = names
                        .iter()
                        .filter(|name| {
                            let property = name.as_str().and_then(|name| properties.and_then(|p| p.get(name)));
                            !property.is_some_and(|p| excluded_from_required(p, direction, components))
                        })
                        .cloned()
                        .collect();
                    if !kept.is_empty() {
                        out.insert(key.clone(), Value::Array(kept));
                    }
                }
            }
            key if COPIED.contains(&key) => {
                out.insert(key.to_owned(), value.clone());
            }
            _ => {}
        }
    }
    if object.get("nullable") == Some(&Value::Bool(true)) {
        return allow_null(out);
    }
    Value::Object(out)
}

/// Whether a property must not be required in this direction: read-only properties are never sent
/// in requests, write-only ones never returned in responses.
fn excluded_from_required(property: &Value, direction: Direction, components: &Map<String, Value>) -> bool {
    let flag = match direction {
        Direction::Request => "readOnly",
        Direction::Response => "writeOnly",
    };
    let mut current = property;
    // Follow a few `$ref` hops: the flag can sit on the referenced schema.
    for _ in 0..8 {
        if current.get(flag) == Some(&Value::Bool(true)) {
            return true;
        }
        match current.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX)) {
            Some(name) => match components.get(&unescape_pointer_token(name)) {
                Some(target) => current = target,
                None => return false,
            },
            None => return false,
        }
    }
    false
}

/// `nullable: true`: `null` joins the allowed types (and the enum, which would reject it otherwise).
fn allow_null(mut schema: Map<String, Value>) -> Value {
    let typed = match schema.get_mut("type") {
        Some(Value::String(single)) => {
            let single = std::mem::take(single);
            schema.insert("type".into(), json!([single, "null"]));
            true
        }
        Some(Value::Array(types)) => {
            if !types.iter().any(|t| t == "null") {
                types.push(json!("null"));
            }
            true
        }
        _ => false,
    };
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
    let composite = ["allOf", "anyOf", "oneOf", "not"].iter().any(|k| schema.contains_key(*k));
    if typed && !composite {
        Value::Object(schema)
    } else {
        json!({"anyOf": [{"type": "null"}, Value::Object(schema)]})
    }
}

/// The component schema names a translated schema refers to directly.
pub(crate) fn direct_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                if key == "$ref" {
                    if let Some(name) = value.as_str().and_then(|r| r.strip_prefix(SCHEMA_REF_PREFIX)) {
                        out.push(unescape_pointer_token(name));
                    }
                } else {
                    direct_refs(value, out);
                }
            }
        }
        Value::Array(values) => values.iter().for_each(|value| direct_refs(value, out)),
        _ => {}
    }
}

/// Decodes one JSON Pointer reference token (`~1` → `/`, `~0` → `~`).
pub(crate) fn unescape_pointer_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Corrects known bugs of the document in place, so the oracle is not stricter than the real API.
/// Returns one line per correction kind with the number of places it touched.
///
/// - **merge field values**: the Ballerina flattening turned Mailchimp's `merge_fields`
///   `additionalProperties` (a `oneOf` of string, number and address object) into
///   `{"type": "object"}`, which would reject `{"FNAME": "Ada"}`. Corrected to
///   `{"type": ["string", "number", "object"]}`.
pub(crate) fn apply_patches(document: &mut Value) -> Vec<String> {
    let mut merge_fields = 0;
    patch_merge_fields(document, &mut merge_fields);
    let mut applied = Vec::new();
    if merge_fields > 0 {
        applied.push(format!(
            "merge_fields.additionalProperties {{\"type\": \"object\"}} → string | number | object ({merge_fields} schemas)"
        ));
    }
    applied
}

fn patch_merge_fields(value: &mut Value, count: &mut usize) {
    match value {
        Value::Object(object) => {
            if let Some(Value::Object(merge_fields)) =
                object.get_mut("properties").and_then(|p| p.get_mut("merge_fields"))
                && let Some(Value::Object(values)) = merge_fields.get_mut("additionalProperties")
                && values.get("type") == Some(&json!("object"))
                && !values.contains_key("properties")
            {
                values.insert("type".into(), json!(["string", "number", "object"]));
                *count += 1;
            }
            object.values_mut().for_each(|value| patch_merge_fields(value, count));
        }
        Value::Array(values) => values.iter_mut().for_each(|value| patch_merge_fields(value, count)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(schema: Value, direction: Direction) -> Value {
        translate(&schema, direction, &Map::new())
    }

    #[test]
    fn drops_annotations_and_extensions_but_not_property_names() {
        let schema = json!({
            "type": "object", "title": "T", "description": "d", "x-ballerina-name": "n", "example": {},
            "properties": {
                "title": {"type": "string", "format": "date-time", "x-title": "x"},
                "example": {"type": "integer", "example": 3, "maximum": 5}
            }
        });
        assert_eq!(
            t(schema, Direction::Request),
            json!({"type": "object", "properties": {"title": {"type": "string"}, "example": {"type": "integer", "maximum": 5}}})
        );
    }

    #[test]
    fn read_only_is_not_required_in_requests_and_write_only_not_in_responses() {
        let components = json!({"Id": {"type": "string", "readOnly": true}});
        let schema = json!({
            "type": "object", "required": ["id", "ref_id", "secret", "name"],
            "properties": {
                "id": {"type": "string", "readOnly": true},
                "ref_id": {"$ref": "#/components/schemas/Id"},
                "secret": {"type": "string", "writeOnly": true},
                "name": {"type": "string"}
            }
        });
        let components = components.as_object().unwrap();
        let request = translate(&schema, Direction::Request, components);
        assert_eq!(request["required"], json!(["secret", "name"]));
        let response = translate(&schema, Direction::Response, components);
        assert_eq!(response["required"], json!(["id", "ref_id", "name"]));
    }

    #[test]
    fn nullable_allows_null() {
        assert_eq!(
            t(json!({"type": "string", "nullable": true}), Direction::Request),
            json!({"type": ["string", "null"]})
        );
        assert_eq!(
            t(json!({"type": "string", "enum": ["a"], "nullable": true}), Direction::Request),
            json!({"type": ["string", "null"], "enum": ["a", null]})
        );
        assert_eq!(
            t(json!({"allOf": [{"$ref": "#/components/schemas/X"}], "nullable": true}), Direction::Request),
            json!({"anyOf": [{"type": "null"}, {"allOf": [{"$ref": "#/components/schemas/X"}]}]})
        );
    }

    #[test]
    fn ref_siblings_are_ignored() {
        assert_eq!(
            t(json!({"$ref": "#/components/schemas/X", "description": "d", "type": "string"}), Direction::Response),
            json!({"$ref": "#/components/schemas/X"})
        );
    }
}
