//! ETags and `If-Match`. BC's ETag is weak and opaque: `W/"<base64>"` of `'<n>;<digits>;00;'`
//! (decoded from recorded payloads). It changes with every write of the row. PATCH needs
//! `If-Match` (missing or malformed → 400 `BadRequest_InvalidToken`, stale → 409
//! `Request_EntityChanged`, `*` matches anything) [MS-ERR][MS-HTTP].

use axum::http::HeaderMap;
use base64::Engine as _;

use crate::errors::ApiError;

/// The ETag of a row at a version.
pub(crate) fn etag(id: &str, version: u64) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes().chain(version.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let digits = format!("{hash}{}", version % 10);
    let inner = format!("'{};{digits};00;'", digits.len());
    format!("W/\"{}\"", base64::engine::general_purpose::STANDARD.encode(inner))
}

/// What a request's `If-Match` says.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum IfMatch {
    /// No header.
    Missing,
    /// `*`.
    Any,
    /// One or more entity tags (as sent, `W/` prefix kept).
    Tags(Vec<String>),
}

/// Reads `If-Match`.
pub(crate) fn if_match(headers: &HeaderMap) -> IfMatch {
    let Some(value) = headers.get("if-match").and_then(|v| v.to_str().ok()) else { return IfMatch::Missing };
    let value = value.trim();
    if value == "*" {
        return IfMatch::Any;
    }
    if value.is_empty() {
        return IfMatch::Missing;
    }
    IfMatch::Tags(split_tags(value))
}

/// Splits a list of entity tags at commas outside quotes.
fn split_tags(value: &str) -> Vec<String> {
    let (mut tags, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in value.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => tags.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    tags.push(current.trim().to_string());
    tags.retain(|t| !t.is_empty());
    tags
}

/// Whether a tag has BC's shape (so a mismatch is "stale", not "malformed").
fn well_formed(tag: &str) -> bool {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let Some(inner) = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else { return false };
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(inner) else { return false };
    let Ok(text) = String::from_utf8(bytes) else { return false };
    let parts: Vec<&str> = text.trim_matches('\'').split(';').collect();
    text.starts_with('\'') && text.ends_with('\'') && parts.len() >= 3 && parts[1].chars().all(|c| c.is_ascii_digit())
}

/// Checks a required `If-Match` against the current ETag.
pub(crate) fn check(if_match: &IfMatch, current: &str) -> Result<(), ApiError> {
    match if_match {
        IfMatch::Missing => Err(ApiError::invalid_token()),
        IfMatch::Any => Ok(()),
        IfMatch::Tags(tags) => {
            let bare = |t: &str| t.strip_prefix("W/").unwrap_or(t).to_string();
            if tags.iter().any(|t| bare(t) == bare(current)) {
                Ok(())
            } else if tags.iter().all(|t| well_formed(t)) {
                Err(ApiError::entity_changed())
            } else {
                Err(ApiError::invalid_token())
            }
        }
    }
}

/// Checks an optional `If-Match` (DELETE of ordinary entities works without one).
pub(crate) fn check_optional(if_match: &IfMatch, current: &str) -> Result<(), ApiError> {
    match if_match {
        IfMatch::Missing => Ok(()),
        other => check(other, current),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_shape_matches_recordings() {
        let tag = etag("b37406e8-eaf1-ef11-9b20-d99fd2b71a0f", 7);
        assert!(tag.starts_with("W/\"Jz"), "{tag}");
        assert!(well_formed(&tag));
        assert!(well_formed("W/\"JzE4Ozg5MDM2MzYwNDgyMzQ1NjE0MjE7MDA7Jw==\""));
        assert_ne!(tag, etag("b37406e8-eaf1-ef11-9b20-d99fd2b71a0f", 8));
    }

    #[test]
    fn if_match_rules() {
        let current = etag("x", 1);
        assert_eq!(check(&IfMatch::Missing, &current), Err(ApiError::invalid_token()));
        assert!(check(&IfMatch::Any, &current).is_ok());
        assert!(check(&IfMatch::Tags(vec![current.clone()]), &current).is_ok());
        assert_eq!(check(&IfMatch::Tags(vec![etag("x", 2)]), &current).unwrap_err().status, 409);
        assert_eq!(check(&IfMatch::Tags(vec!["\"nonsense\"".into()]), &current).unwrap_err().status, 400);
        assert!(check_optional(&IfMatch::Missing, &current).is_ok());
    }
}
