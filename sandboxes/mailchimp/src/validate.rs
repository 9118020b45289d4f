//! Request body checks in the style of Mailchimp's JSON-schema validation: required fields are
//! reported together ("Required fields were not provided: …"), type mismatches as "Schema
//! describes string, integer found instead", enums as "Data presented is not one of the accepted
//! values: …".

use serde_json::{Map, Value};

use crate::errors::{ApiError, FieldError};
use crate::util::as_number;

/// What a field must be.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Str,
    Bool,
    /// A JSON integer.
    Int,
    /// A number or a numeric string (money, quantities of goods).
    Num,
    Obj,
    Arr,
    /// A string from a fixed set.
    Enum(&'static [&'static str]),
}

/// The JSON-schema name of a value's type.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// "Schema describes object, array found instead".
pub(crate) fn schema_message(expected: &str, found: &Value) -> String {
    format!("Schema describes {expected}, {} found instead", type_name(found))
}

/// "Data presented is not one of the accepted values: a, b."
pub(crate) fn enum_message(values: &[&str]) -> String {
    format!("Data presented is not one of the accepted values: {}.", values.join(", "))
}

/// The request body as an object: no body is a JSON parse error (Mailchimp needs one), and any
/// other JSON type is a schema error.
pub(crate) fn body_object(body: Option<&Value>) -> Result<&Map<String, Value>, ApiError> {
    match body {
        None => Err(ApiError::json_parse()),
        Some(Value::Object(map)) => Ok(map),
        Some(other) => Err(ApiError::invalid_field("", schema_message("object", other))),
    }
}

/// Collects missing fields and field errors, then reports them as one Invalid Resource.
#[derive(Default)]
pub(crate) struct Checker {
    /// Required fields absent, in dot notation.
    missing: Vec<String>,
    /// Everything else found wrong.
    errors: Vec<FieldError>,
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}.{name}") }
}

impl Checker {
    pub(crate) fn new() -> Checker {
        Checker::default()
    }

    /// Notes each of `names` absent from `obj`.
    pub(crate) fn require(&mut self, obj: &Map<String, Value>, prefix: &str, names: &[&str]) {
        for name in names {
            if !obj.contains_key(*name) {
                self.missing.push(join(prefix, name));
            }
        }
    }

    /// Checks the type of `name` if present; true when present and valid.
    pub(crate) fn check(&mut self, obj: &Map<String, Value>, prefix: &str, name: &str, kind: Kind) -> bool {
        let Some(value) = obj.get(name) else { return false };
        let field = join(prefix, name);
        let ok = match kind {
            Kind::Str => value.is_string(),
            Kind::Bool => value.is_boolean(),
            Kind::Int => value.is_i64() || value.is_u64(),
            Kind::Num => as_number(value).is_some(),
            Kind::Obj => value.is_object(),
            Kind::Arr => value.is_array(),
            Kind::Enum(values) => match value.as_str() {
                Some(s) if values.contains(&s) => true,
                Some(_) => {
                    self.errors.push(FieldError::new(field, enum_message(values)));
                    return false;
                }
                None => false,
            },
        };
        if !ok {
            let expected = match kind {
                Kind::Str | Kind::Enum(_) => "string",
                Kind::Bool => "boolean",
                Kind::Int => "integer",
                Kind::Num => "number",
                Kind::Obj => "object",
                Kind::Arr => "array",
            };
            self.errors.push(FieldError::new(field, schema_message(expected, value)));
        }
        ok
    }

    /// Checks several fields.
    pub(crate) fn check_all(&mut self, obj: &Map<String, Value>, prefix: &str, fields: &[(&str, Kind)]) {
        for (name, kind) in fields {
            self.check(obj, prefix, name, *kind);
        }
    }

    /// Adds an error of its own.
    pub(crate) fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Whether nothing was found wrong so far.
    pub(crate) fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.errors.is_empty()
    }

    /// One Invalid Resource for everything found, missing fields first.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.is_clean() {
            return Ok(());
        }
        let mut errors = Vec::new();
        if !self.missing.is_empty() {
            errors.push(FieldError::new("", format!("Required fields were not provided: {}", self.missing.join(", "))));
        }
        errors.extend(self.errors);
        Err(ApiError::invalid(errors))
    }
}

/// Turns numeric strings in `names` into JSON numbers (after a successful [`Kind::Num`] check).
pub(crate) fn normalize_numbers(obj: &mut Map<String, Value>, names: &[&str]) {
    for name in names {
        if let Some(value) = obj.get_mut(*name)
            && let Some(n) = as_number(value)
        {
            *value = Value::Number(n);
        }
    }
}

/// The fields of `obj` named in `allowed` (what a resource stores of a request body).
pub(crate) fn pick(obj: &Map<String, Value>, allowed: &[&str]) -> Map<String, Value> {
    obj.iter().filter(|(k, _)| allowed.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_missing_then_types() {
        let body = json!({"id": 5, "status": "nope", "price": "12.5", "qty": "x"});
        let obj = body.as_object().unwrap();
        let mut c = Checker::new();
        c.require(obj, "", &["id", "currency_code", "name"]);
        c.check_all(
            obj,
            "",
            &[("id", Kind::Str), ("status", Kind::Enum(&["a", "b"])), ("price", Kind::Num), ("qty", Kind::Num)],
        );
        let error = c.finish().unwrap_err();
        let messages: Vec<String> = error.errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
        assert_eq!(
            messages,
            [
                ": Required fields were not provided: currency_code, name",
                "id: Schema describes string, integer found instead",
                "status: Data presented is not one of the accepted values: a, b.",
                "qty: Schema describes number, string found instead",
            ]
        );
        assert_eq!(
            body_object(Some(&json!([]))).unwrap_err().errors[0].message,
            "Schema describes object, array found instead"
        );
    }
}
