//! Merge fields: the audience's custom contact fields (FNAME, ADDRESS, …), their CRUD endpoints,
//! and the validation of member `merge_fields` values, with the messages real Mailchimp returns
//! ("This field does not exist", "Please enter a complete address", "Please enter a value").

use serde_json::{Map, Value, json};

use crate::errors::{ApiError, FieldError};
use crate::lists::List;
use crate::query::{Page, Query};
use crate::validate::{Checker, Kind, body_object, schema_message};

/// The merge field types Mailchimp knows.
pub(crate) const TYPES: &[&str] =
    &["text", "number", "address", "phone", "date", "url", "imageurl", "radio", "dropdown", "birthday", "zip"];

/// The longest merge tag.
const MAX_TAG: usize = 10;

/// One merge field of an audience.
#[derive(Clone, Debug)]
pub(crate) struct MergeField {
    /// Stable numeric id; EMAIL is 0, so fields start at 1.
    pub merge_id: u64,
    /// The key in member `merge_fields` (`FNAME`).
    pub tag: String,
    /// The label.
    pub name: String,
    /// One of [`TYPES`].
    pub kind: String,
    /// Whether members must have a value (enforced unless `skip_merge_validation`).
    pub required: bool,
    /// The value forms prefill.
    pub default_value: String,
    /// Whether the field shows on signup forms.
    pub public: bool,
    /// Position on forms (EMAIL is 1).
    pub display_order: u64,
    /// Type-specific options (`date_format`, `choices`, …).
    pub options: Map<String, Value>,
    /// Help shown on forms.
    pub help_text: String,
}

impl MergeField {
    fn new(merge_id: u64, tag: &str, name: &str, kind: &str, options: Value) -> MergeField {
        MergeField {
            merge_id,
            tag: tag.into(),
            name: name.into(),
            kind: kind.into(),
            required: false,
            default_value: String::new(),
            public: true,
            display_order: merge_id + 1,
            options: options.as_object().cloned().unwrap_or_default(),
            help_text: String::new(),
        }
    }

    /// As the API returns it.
    pub(crate) fn render(&self, list_id: &str) -> Value {
        json!({
            "merge_id": self.merge_id,
            "tag": self.tag,
            "name": self.name,
            "type": self.kind,
            "required": self.required,
            "default_value": self.default_value,
            "public": self.public,
            "display_order": self.display_order,
            "options": self.options,
            "help_text": self.help_text,
            "list_id": list_id,
            "_links": [],
        })
    }
}

/// The fields of a new audience (FNAME, LNAME, ADDRESS, PHONE, BIRTHDAY).
pub(crate) fn defaults() -> Vec<MergeField> {
    vec![
        MergeField::new(1, "FNAME", "First Name", "text", json!({"size": 25})),
        MergeField::new(2, "LNAME", "Last Name", "text", json!({"size": 25})),
        MergeField::new(3, "ADDRESS", "Address", "address", json!({"default_country": 164})),
        MergeField::new(4, "PHONE", "Phone Number", "phone", json!({"phone_format": "none"})),
        MergeField::new(5, "BIRTHDAY", "Birthday", "birthday", json!({"date_format": "MM/DD"})),
    ]
}

/// GET /lists/{id}/merge-fields.
pub(crate) fn list(list: &List, query: &Query) -> Result<Value, ApiError> {
    let page = Page::from_query(query)?;
    let matching: Vec<&MergeField> = list
        .merge_fields
        .iter()
        .filter(|f| query.get("type").is_none_or(|t| f.kind == t))
        .filter(|f| query.get("required").is_none_or(|r| f.required == (r == "true")))
        .collect();
    let total = matching.len();
    let items: Vec<Value> = page.slice(matching).into_iter().map(|f| f.render(&list.id)).collect();
    Ok(json!({"merge_fields": items, "list_id": list.id, "total_items": total, "_links": []}))
}

/// GET /lists/{id}/merge-fields/{merge_id}.
pub(crate) fn get(list: &List, merge_id: &str) -> Result<Value, ApiError> {
    find(list, merge_id).map(|f| f.render(&list.id))
}

fn find<'a>(list: &'a List, merge_id: &str) -> Result<&'a MergeField, ApiError> {
    list.merge_fields.iter().find(|f| f.merge_id.to_string() == merge_id).ok_or_else(ApiError::not_found)
}

const FIELD_RULES: &[(&str, Kind)] = &[
    ("name", Kind::Str),
    ("tag", Kind::Str),
    ("required", Kind::Bool),
    ("default_value", Kind::Str),
    ("public", Kind::Bool),
    ("display_order", Kind::Int),
    ("options", Kind::Obj),
    ("help_text", Kind::Str),
];

/// POST /lists/{id}/merge-fields.
pub(crate) fn create(list: &mut List, body: Option<&Value>) -> Result<Value, ApiError> {
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["name", "type"]);
    check.check_all(obj, "", FIELD_RULES);
    check.check(obj, "", "type", Kind::Enum(TYPES));
    check.finish()?;
    let merge_id = list.next_merge_id;
    let tag = match obj.get("tag").and_then(Value::as_str) {
        Some(tag) => checked_tag(list, tag, None)?,
        None => derived_tag(list, obj["name"].as_str().unwrap_or_default(), merge_id),
    };
    let kind = obj["type"].as_str().unwrap_or("text");
    let mut field = MergeField::new(merge_id, &tag, obj["name"].as_str().unwrap_or_default(), kind, json!({}));
    field.options = default_options(kind);
    apply(&mut field, obj);
    list.next_merge_id += 1;
    list.merge_fields.push(field.clone());
    Ok(field.render(&list.id))
}

/// PATCH /lists/{id}/merge-fields/{merge_id} (`name` is required, the type cannot change).
pub(crate) fn patch(list: &mut List, merge_id: &str, body: Option<&Value>) -> Result<Value, ApiError> {
    let index =
        list.merge_fields.iter().position(|f| f.merge_id.to_string() == merge_id).ok_or_else(ApiError::not_found)?;
    let obj = body_object(body)?;
    let mut check = Checker::new();
    check.require(obj, "", &["name"]);
    check.check_all(obj, "", FIELD_RULES);
    check.finish()?;
    let tag = match obj.get("tag").and_then(Value::as_str) {
        Some(tag) => Some(checked_tag(list, tag, Some(index))?),
        None => None,
    };
    let old_tag = list.merge_fields[index].tag.clone();
    if let Some(tag) = &tag
        && *tag != old_tag
    {
        for member in list.members.values_mut() {
            if let Some(value) = member.merges.remove(&old_tag) {
                member.merges.insert(tag.clone(), value);
            }
        }
        list.merge_fields[index].tag = tag.clone();
    }
    apply(&mut list.merge_fields[index], obj);
    Ok(list.merge_fields[index].render(&list.id))
}

/// DELETE /lists/{id}/merge-fields/{merge_id}: the values go with it.
pub(crate) fn delete(list: &mut List, merge_id: &str) -> Result<(), ApiError> {
    let index =
        list.merge_fields.iter().position(|f| f.merge_id.to_string() == merge_id).ok_or_else(ApiError::not_found)?;
    let field = list.merge_fields.remove(index);
    for member in list.members.values_mut() {
        member.merges.remove(&field.tag);
    }
    Ok(())
}

fn default_options(kind: &str) -> Map<String, Value> {
    let options = match kind {
        "text" => json!({"size": 25}),
        "address" => json!({"default_country": 164}),
        "phone" => json!({"phone_format": "none"}),
        "date" => json!({"date_format": "MM/DD/YYYY"}),
        "birthday" => json!({"date_format": "MM/DD"}),
        "radio" | "dropdown" => json!({"choices": []}),
        _ => json!({}),
    };
    options.as_object().cloned().unwrap_or_default()
}

fn apply(field: &mut MergeField, obj: &Map<String, Value>) {
    if let Some(v) = obj.get("name").and_then(Value::as_str) {
        field.name = v.into();
    }
    if let Some(v) = obj.get("required").and_then(Value::as_bool) {
        field.required = v;
    }
    if let Some(v) = obj.get("default_value").and_then(Value::as_str) {
        field.default_value = v.into();
    }
    if let Some(v) = obj.get("public").and_then(Value::as_bool) {
        field.public = v;
    }
    if let Some(v) = obj.get("display_order").and_then(Value::as_u64) {
        field.display_order = v;
    }
    if let Some(v) = obj.get("help_text").and_then(Value::as_str) {
        field.help_text = v.into();
    }
    if let Some(Value::Object(options)) = obj.get("options") {
        for (k, v) in options {
            field.options.insert(k.clone(), v.clone());
        }
    }
}

/// An explicit tag: upper-cased, at most 10 letters, digits or underscores, not taken.
fn checked_tag(list: &List, tag: &str, except: Option<usize>) -> Result<String, ApiError> {
    let tag = tag.trim().to_uppercase();
    if tag.is_empty() || tag.len() > MAX_TAG || !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(ApiError::invalid_field(
            "tag",
            format!("The merge tag must be 1 to {MAX_TAG} letters, digits or underscores."),
        ));
    }
    let taken = tag == "EMAIL" || list.merge_fields.iter().enumerate().any(|(i, f)| Some(i) != except && f.tag == tag);
    if taken {
        return Err(ApiError::invalid_detail(format!(
            "A Merge Field with the tag \"{tag}\" already exists for this list."
        )));
    }
    Ok(tag)
}

/// A tag derived from the name (upper-cased, alphanumerics, ≤10), or `MMERGE{id}` when taken.
fn derived_tag(list: &List, name: &str, merge_id: u64) -> String {
    let tag: String = name.to_uppercase().chars().filter(|c| c.is_ascii_alphanumeric()).take(MAX_TAG).collect();
    if tag.is_empty() || tag == "EMAIL" || list.merge_fields.iter().any(|f| f.tag == tag) {
        format!("MMERGE{merge_id}")
    } else {
        tag
    }
}

/// Every field of the audience with the member's value, `""` when unset (as GET shows them).
pub(crate) fn render_values(fields: &[MergeField], values: &Map<String, Value>) -> Map<String, Value> {
    fields.iter().map(|f| (f.tag.clone(), values.get(&f.tag).cloned().unwrap_or(Value::from("")))).collect()
}

/// Validates member `merge_fields` and returns the member's new values.
///
/// Schema errors (not an object, unknown tag, a value that is neither string, number nor object)
/// are reported as Invalid Resource whatever `skip`; value errors (incomplete address, bad date,
/// missing required value) as "Your merge fields were invalid." unless `skip`
/// (`skip_merge_validation=true`). Required values are enforced on creation and whenever
/// `merge_fields` is sent.
pub(crate) fn apply_values(
    fields: &[MergeField],
    current: &Map<String, Value>,
    input: Option<&Value>,
    creating: bool,
    skip: bool,
) -> Result<Map<String, Value>, ApiError> {
    let mut values = current.clone();
    let mut schema = Vec::new();
    let mut invalid = Vec::new();
    if let Some(input) = input {
        let Value::Object(given) = input else {
            return Err(ApiError::invalid_field("merge_fields", schema_message("object", input)));
        };
        for (tag, value) in given {
            let Some(field) = fields.iter().find(|f| f.tag == *tag) else {
                schema.push(FieldError::new(format!("merge_fields.{tag}"), "This field does not exist"));
                continue;
            };
            let shape_ok = match value {
                Value::String(_) | Value::Number(_) => true,
                Value::Object(_) => field.kind == "address",
                _ => false,
            };
            if !shape_ok {
                schema.push(FieldError::new(
                    format!("merge_fields.{tag}"),
                    "Data did not match any of the schemas described in anyOf.",
                ));
                continue;
            }
            match normalize(field, value) {
                Ok(v) => {
                    values.insert(tag.clone(), v);
                }
                Err(message) if skip => {
                    let _ = message;
                    values.insert(tag.clone(), value.clone());
                }
                Err(message) => invalid.push(FieldError::new(tag.clone(), message)),
            }
        }
    }
    if !schema.is_empty() {
        return Err(ApiError::invalid(schema));
    }
    if !skip && (creating || input.is_some()) {
        for field in fields.iter().filter(|f| f.required) {
            let empty = values.get(&field.tag).is_none_or(|v| v.is_null() || v.as_str() == Some(""));
            if empty && !invalid.iter().any(|e| e.field == field.tag) {
                invalid.push(FieldError::new(field.tag.clone(), "Please enter a value"));
            }
        }
    }
    if !invalid.is_empty() {
        return Err(ApiError::merge_fields(invalid));
    }
    Ok(values)
}

/// One value checked and normalized for its field type; `""` always clears.
fn normalize(field: &MergeField, value: &Value) -> Result<Value, &'static str> {
    if value.as_str() == Some("") {
        return Ok(Value::from(""));
    }
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    match field.kind.as_str() {
        "number" => crate::util::as_number(value).map(Value::Number).ok_or("Please enter a number"),
        "address" => address(value).ok_or("Please enter a complete address"),
        "date" => {
            let format = field.options.get("date_format").and_then(Value::as_str).unwrap_or("MM/DD/YYYY");
            date(&text, format).map(Value::from).ok_or("Please enter the date")
        }
        "birthday" => {
            let format = field.options.get("date_format").and_then(Value::as_str).unwrap_or("MM/DD");
            birthday(&text, format).map(Value::from).ok_or("Please enter a month (01-12) and a day (01-31)")
        }
        _ => Ok(Value::from(text)),
    }
}

/// An address object with addr1, city, state and zip (reference §3.3).
fn address(value: &Value) -> Option<Value> {
    let obj = value.as_object()?;
    let part = |name: &str| match obj.get(name) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        None | Some(Value::Null) => Some(String::new()),
        _ => None,
    };
    let mut out = Map::new();
    for name in ["addr1", "addr2", "city", "state", "zip", "country"] {
        out.insert(name.into(), Value::from(part(name)?));
    }
    let complete = ["addr1", "city", "state", "zip"].iter().all(|n| out[*n].as_str().is_some_and(|s| !s.is_empty()));
    complete.then_some(Value::Object(out))
}

fn two_digits(text: &str, max: u32) -> Option<u32> {
    let n: u32 = text.parse().ok()?;
    (text.len() <= 2 && (1..=max).contains(&n)).then_some(n)
}

/// A date in the field's format (or ISO `YYYY-MM-DD`), returned as `YYYY-MM-DD`.
fn date(text: &str, format: &str) -> Option<String> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return Some(d.to_string());
    }
    let parts: Vec<&str> = text.split('/').collect();
    let [a, b, year] = parts.as_slice() else { return None };
    let (month, day) = if format.starts_with("DD") { (b, a) } else { (a, b) };
    let year: i16 = year.parse().ok().filter(|_| year.len() == 4)?;
    let d = jiff::civil::Date::new(year, two_digits(month, 12)? as i8, two_digits(day, 31)? as i8).ok()?;
    Some(d.to_string())
}

/// A birthday `MM/DD` (or `DD/MM` per the field's format), returned zero-padded.
fn birthday(text: &str, format: &str) -> Option<String> {
    let (a, b) = text.split_once('/')?;
    let (month, day) = if format.starts_with("DD") { (b, a) } else { (a, b) };
    let (month, day) = (two_digits(month, 12)?, two_digits(day, 31)?);
    Some(if format.starts_with("DD") { format!("{day:02}/{month:02}") } else { format!("{month:02}/{day:02}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<MergeField> {
        let mut fields = defaults();
        let mut age = MergeField::new(6, "AGE", "Age", "number", json!({}));
        age.required = true;
        fields.push(age);
        fields
    }

    #[test]
    fn schema_errors_whatever_skip() {
        let error = apply_values(&fields(), &Map::new(), Some(&json!([])), false, true).unwrap_err();
        assert_eq!(error.errors[0].message, "Schema describes object, array found instead");
        let error = apply_values(&fields(), &Map::new(), Some(&json!({"MMERGE10": "x", "FNAME": true})), false, true)
            .unwrap_err();
        assert_eq!(error.detail, crate::errors::INVALID_RESOURCE_DETAIL);
        assert!(error.errors.contains(&FieldError::new("merge_fields.MMERGE10", "This field does not exist")));
        assert!(error.errors.contains(&FieldError::new(
            "merge_fields.FNAME",
            "Data did not match any of the schemas described in anyOf."
        )));
    }

    #[test]
    fn value_errors_unless_skipped() {
        let input = json!({"ADDRESS": {"addr1": "1 Main St", "city": "X"}, "BIRTHDAY": "13/40", "AGE": "abc"});
        let error = apply_values(&fields(), &Map::new(), Some(&input), true, false).unwrap_err();
        assert_eq!(error.detail, "Your merge fields were invalid.");
        let mut got: Vec<(String, String)> =
            error.errors.iter().map(|e| (e.field.clone(), e.message.clone())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("ADDRESS".into(), "Please enter a complete address".into()),
                ("AGE".into(), "Please enter a number".into()),
                ("BIRTHDAY".into(), "Please enter a month (01-12) and a day (01-31)".into()),
            ]
        );
        assert!(apply_values(&fields(), &Map::new(), Some(&input), true, true).is_ok());
        let missing = apply_values(&fields(), &Map::new(), Some(&json!({"FNAME": "A"})), true, false).unwrap_err();
        assert_eq!(missing.errors, [FieldError::new("AGE", "Please enter a value")]);
        let ok =
            apply_values(&fields(), &Map::new(), Some(&json!({"AGE": "42", "BIRTHDAY": "1/5"})), true, false).unwrap();
        assert_eq!(ok["AGE"], json!(42));
        assert_eq!(ok["BIRTHDAY"], json!("01/05"));
    }
}
