//! Selection: JSONPath (RFC 9535) over a record, parsed once at load time.

use jsonpath_rust::parser::model::JpQuery;
use serde_json::Value;

/// A parsed JSONPath.
#[derive(Debug, Clone)]
pub struct JsonPath {
    text: String,
    query: JpQuery,
}

impl JsonPath {
    /// Parses a path; the error is the parser's message (it points at the offending place).
    pub fn parse(text: &str) -> Result<Self, String> {
        let query =
            jsonpath_rust::parser::parse_json_path(text).map_err(|e| format!("invalid JSONPath `{text}`: {e}"))?;
        Ok(JsonPath { text: text.to_owned(), query })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The values the path selects, in document order. A path that selects nothing yields an
    /// empty list (an invoice without lines), not an error.
    pub fn select<'a>(&self, doc: &'a Value) -> Result<Vec<&'a Value>, String> {
        jsonpath_rust::query::js_path_process(&self.query, doc)
            .map(|refs| refs.into_iter().map(|r| r.val()).collect())
            .map_err(|e| format!("JSONPath `{}` failed: {e}", self.text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_lines_in_order_and_nothing_when_absent() {
        let p = JsonPath::parse("$.lines[*].sku").unwrap();
        let doc = json!({"lines": [{"sku": "A"}, {"sku": "B"}]});
        assert_eq!(p.select(&doc).unwrap(), vec![&json!("A"), &json!("B")]);
        assert!(p.select(&json!({})).unwrap().is_empty());
    }

    #[test]
    fn filter_expressions_work() {
        let p = JsonPath::parse("$.lines[?@.qty > 1]").unwrap();
        let doc = json!({"lines": [{"qty": 1}, {"qty": 3}]});
        assert_eq!(p.select(&doc).unwrap(), vec![&json!({"qty": 3})]);
    }

    #[test]
    fn rejects_broken_paths() {
        assert!(JsonPath::parse("$.lines[").unwrap_err().starts_with("invalid JSONPath"));
        assert!(JsonPath::parse("lines").is_err());
    }
}
