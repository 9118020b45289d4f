//! Query parameters shared by every collection: pagination (`count`, `offset`) and partial
//! responses (`fields`, `exclude_fields` in dot notation), applied the way Mailchimp does.

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Decoded query pairs, in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=2` (form encoding, so `+` is a space).
    pub(crate) fn parse(text: &str) -> Query {
        Query(form_urlencoded::parse(text.trim_start_matches('?').as_bytes()).into_owned().collect())
    }

    /// The last value of a parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A boolean flag (`true`/`1`).
    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | "TRUE" | "True"))
    }

    /// Comma-separated values of a parameter, possibly repeated (`fields=a,b&fields=c`).
    fn list(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
            .collect()
    }
}

/// A page of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Page {
    /// Items per page (default 10, at most 1000).
    pub count: usize,
    /// Items skipped.
    pub offset: usize,
}

/// The largest `count` Mailchimp serves (reference §8).
pub(crate) const MAX_COUNT: usize = 1000;

impl Page {
    /// Reads `count` and `offset`; a `count` above 1000 or a non-number is refused.
    pub(crate) fn from_query(query: &Query) -> Result<Page, ApiError> {
        let number = |name: &str, default: usize| -> Result<usize, ApiError> {
            match query.get(name) {
                None | Some("") => Ok(default),
                Some(text) => text.trim().parse::<usize>().map_err(|_| {
                    ApiError::invalid_field(name, format!("Schema describes integer, string \"{text}\" found instead"))
                }),
            }
        };
        let count = number("count", 10)?;
        if count > MAX_COUNT {
            return Err(ApiError::invalid_field("count", format!("count must be less than or equal to {MAX_COUNT}")));
        }
        Ok(Page { count, offset: number("offset", 0)? })
    }

    /// The slice of `items` this page covers.
    pub(crate) fn slice<T>(&self, items: Vec<T>) -> Vec<T> {
        items.into_iter().skip(self.offset).take(self.count).collect()
    }
}

/// Applies `fields` then `exclude_fields` to a response. Every requested path must exist in the
/// response (paths into empty arrays are accepted), else 422 Requested Fields Invalid.
pub(crate) fn apply_fields(value: Value, query: &Query) -> Result<Value, ApiError> {
    let include = query.list("fields");
    let exclude = query.list("exclude_fields");
    if include.is_empty() && exclude.is_empty() {
        return Ok(value);
    }
    for path in include.iter().chain(&exclude) {
        let segments: Vec<&str> = path.split('.').collect();
        if !exists(&value, &segments) {
            return Err(ApiError::requested_fields_invalid());
        }
    }
    let mut value = value;
    if !include.is_empty() {
        let tree = Tree::from_paths(&include);
        value = keep(value, &tree);
    }
    for path in &exclude {
        let segments: Vec<&str> = path.split('.').collect();
        remove(&mut value, &segments);
    }
    Ok(value)
}

/// Whether a dot path names something in `value` (arrays are looked through).
fn exists(value: &Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else { return true };
    match value {
        Value::Object(map) => map.get(*first).is_some_and(|child| exists(child, rest)),
        Value::Array(items) => items.is_empty() || items.iter().any(|item| exists(item, path)),
        _ => false,
    }
}

/// A set of dot paths as a tree; a leaf keeps the whole sub-value.
#[derive(Default)]
struct Tree {
    /// Segment → `true` (keep whole) or a subtree.
    children: Map<String, Value>,
}

impl Tree {
    fn from_paths(paths: &[String]) -> Tree {
        let mut root = Map::new();
        for path in paths {
            let mut node = &mut root;
            let segments: Vec<&str> = path.split('.').collect();
            for (i, segment) in segments.iter().enumerate() {
                let last = i + 1 == segments.len();
                let entry = node.entry(segment.to_string()).or_insert_with(|| Value::Object(Map::new()));
                if last {
                    *entry = Value::Bool(true);
                    break;
                }
                match entry {
                    Value::Object(map) => node = map,
                    _ => break, // an ancestor is already kept whole
                }
            }
        }
        Tree { children: root }
    }
}

/// Keeps only what the tree names.
fn keep(value: Value, tree: &Tree) -> Value {
    fn walk(value: Value, node: &Map<String, Value>) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter_map(|(k, v)| match node.get(&k) {
                        Some(Value::Bool(true)) => Some((k, v)),
                        Some(Value::Object(sub)) => Some((k, walk(v, sub))),
                        _ => None,
                    })
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(|item| walk(item, node)).collect()),
            other => other,
        }
    }
    walk(value, &tree.children)
}

/// Removes one dot path.
fn remove(value: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else { return };
    match value {
        Value::Object(map) => {
            if rest.is_empty() {
                map.remove(*first);
            } else if let Some(child) = map.get_mut(*first) {
                remove(child, rest);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| remove(item, path)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(text: &str) -> Query {
        Query::parse(text)
    }

    #[test]
    fn fields_and_exclusions() {
        let value = json!({"members": [{"id": 1, "email_address": "a", "stats": {"x": 1, "y": 2}}], "total_items": 1, "_links": []});
        let kept = apply_fields(value.clone(), &q("fields=members.email_address,members.stats.x,total_items")).unwrap();
        assert_eq!(kept, json!({"members": [{"email_address": "a", "stats": {"x": 1}}], "total_items": 1}));
        let excluded = apply_fields(value.clone(), &q("exclude_fields=members.stats,_links")).unwrap();
        assert_eq!(excluded, json!({"members": [{"id": 1, "email_address": "a"}], "total_items": 1}));
        assert_eq!(apply_fields(value, &q("fields=members.nope")).unwrap_err().status, 422);
        assert!(apply_fields(json!({"members": []}), &q("fields=members.anything")).is_ok());
    }

    #[test]
    fn pages() {
        assert_eq!(Page::from_query(&q("")).unwrap(), Page { count: 10, offset: 0 });
        assert_eq!(Page::from_query(&q("count=1000&offset=5")).unwrap(), Page { count: 1000, offset: 5 });
        assert_eq!(Page::from_query(&q("count=1001")).unwrap_err().status, 400);
        assert_eq!(Page { count: 2, offset: 1 }.slice(vec![1, 2, 3, 4]), vec![2, 3]);
    }
}
