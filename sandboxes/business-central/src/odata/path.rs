//! Resource path segments: `customers`, `customers(<guid>)`, `subscriptions('<id>')`,
//! `companies(name='CRONUS USA, Inc.')`. GUID keys are unquoted, string keys quoted with `''`
//! escaping, as OData requires and BC enforces [AL-CUST][ISS-1926].

use crate::errors::ApiError;
use crate::util::{is_guid, percent_decode};

/// A key in parentheses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Key {
    /// An unquoted GUID (lowercased).
    Guid(String),
    /// A quoted string.
    Str(String),
    /// `name=value` pairs (alternate keys).
    Named(Vec<(String, Box<Key>)>),
    /// Anything else (an unquoted word or number): no BC key has this shape.
    Other(String),
}

/// One path segment.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Segment {
    /// The segment name (entity set, navigation, action).
    pub name: String,
    /// The key in parentheses, if any.
    pub key: Option<Key>,
}

/// Parses a raw (still percent-encoded) segment.
pub(crate) fn parse_segment(raw: &str) -> Result<Segment, ApiError> {
    let text = percent_decode(raw);
    let Some(open) = text.find('(') else { return Ok(Segment { name: text, key: None }) };
    let (name, rest) = text.split_at(open);
    let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
        return Err(syntax());
    };
    Ok(Segment { name: name.to_string(), key: Some(parse_key(inner.trim())?) })
}

fn syntax() -> ApiError {
    ApiError::query("Bad Request - Error in query syntax.")
}

fn parse_key(text: &str) -> Result<Key, ApiError> {
    if is_guid(text) {
        return Ok(Key::Guid(text.to_ascii_lowercase()));
    }
    if text.starts_with('\'') {
        return unquote(text).map(Key::Str);
    }
    if text.contains('=') {
        let mut pairs = Vec::new();
        for part in split_top(text) {
            let (name, value) = part.split_once('=').ok_or_else(syntax)?;
            pairs.push((name.trim().to_string(), Box::new(parse_key(value.trim())?)));
        }
        return Ok(Key::Named(pairs));
    }
    if text.is_empty() {
        return Err(syntax());
    }
    Ok(Key::Other(text.to_string()))
}

/// `'it''s'` → `it's`.
fn unquote(text: &str) -> Result<String, ApiError> {
    let inner =
        text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')).filter(|_| text.len() >= 2).ok_or_else(syntax)?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            if chars.peek() == Some(&'\'') {
                chars.next();
            } else {
                return Err(syntax());
            }
        }
        out.push(c);
    }
    Ok(out)
}

/// Splits `a='x,y',b=1` at commas outside quotes.
fn split_top(text: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys() {
        let s = parse_segment("customers(B37406E8-EAF1-EF11-9B20-D99FD2B71A0F)").unwrap();
        assert_eq!(s.name, "customers");
        assert_eq!(s.key, Some(Key::Guid("b37406e8-eaf1-ef11-9b20-d99fd2b71a0f".into())));
        let s = parse_segment("subscriptions(%27abc%27)").unwrap();
        assert_eq!(s.key, Some(Key::Str("abc".into())));
        let s = parse_segment("companies(name='CRONUS USA, Inc.')").unwrap();
        assert_eq!(s.key, Some(Key::Named(vec![("name".into(), Box::new(Key::Str("CRONUS USA, Inc.".into())))])));
        assert_eq!(parse_segment("subscriptions(abc)").unwrap().key, Some(Key::Other("abc".into())));
        assert_eq!(parse_segment("x('it''s')").unwrap().key, Some(Key::Str("it's".into())));
        assert!(parse_segment("x('bad)").is_err());
        assert!(parse_segment("x(1").is_err());
    }
}
