//! Cursor values: comparing them and moving a watermark back by the lookback.

use std::cmp::Ordering;

use serde_json::Value;

use crate::config::{CursorKind, Duration};
use crate::template::filters_parse_timestamp as parse_timestamp;

/// Normalizes a cursor value so that stored watermarks compare the same way whatever the
/// source's formatting: timestamps become RFC 3339 UTC with `Z`, numbers stay numbers.
pub fn normalize(kind: CursorKind, value: &Value) -> Result<Value, String> {
    match kind {
        CursorKind::Timestamp => {
            let text = value.as_str().ok_or_else(|| format!("cursor value {value} is not a timestamp"))?;
            parse_timestamp(text)
                .map(|ts| Value::String(ts.to_string()))
                .map_err(|e| format!("cursor value {value}: {e}"))
        }
        CursorKind::Number => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("cursor value {value} is not a number")),
            _ => Err(format!("cursor value {value} is not a number")),
        },
    }
}

/// Compares two normalized cursor values.
pub fn compare(kind: CursorKind, a: &Value, b: &Value) -> Ordering {
    match kind {
        CursorKind::Timestamp => {
            let pa = a.as_str().and_then(|s| parse_timestamp(s).ok());
            let pb = b.as_str().and_then(|s| parse_timestamp(s).ok());
            pa.cmp(&pb)
        }
        CursorKind::Number => {
            let fa = a.as_f64().unwrap_or(f64::NEG_INFINITY);
            let fb = b.as_f64().unwrap_or(f64::NEG_INFINITY);
            fa.total_cmp(&fb)
        }
    }
}

/// Where an incremental read starts: the watermark moved back by the lookback (timestamps only).
pub fn read_from(kind: CursorKind, watermark: &Value, lookback: Duration) -> Value {
    match (kind, watermark.as_str().and_then(|s| parse_timestamp(s).ok())) {
        (CursorKind::Timestamp, Some(ts)) => {
            let span = jiff::SignedDuration::try_from(lookback.0).unwrap_or(jiff::SignedDuration::ZERO);
            Value::String(ts.checked_sub(span).unwrap_or(ts).to_string())
        }
        _ => watermark.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_normalize_to_utc_and_compare_as_instants() {
        let a = normalize(CursorKind::Timestamp, &json!("2026-01-01T10:00:00+01:00")).unwrap();
        assert_eq!(a, json!("2026-01-01T09:00:00Z"));
        let b = normalize(CursorKind::Timestamp, &json!("2026-01-01T09:30:00")).unwrap();
        assert_eq!(compare(CursorKind::Timestamp, &a, &b), Ordering::Less);
        assert!(normalize(CursorKind::Timestamp, &json!(5)).is_err());
    }

    #[test]
    fn lookback_moves_timestamps_back_only() {
        let w = json!("2026-01-01T09:00:00Z");
        assert_eq!(read_from(CursorKind::Timestamp, &w, Duration::from_secs(300)), json!("2026-01-01T08:55:00Z"));
        assert_eq!(read_from(CursorKind::Number, &json!(42), Duration::from_secs(300)), json!(42));
    }

    #[test]
    fn numbers_compare_numerically() {
        let a = normalize(CursorKind::Number, &json!("10")).unwrap();
        assert_eq!(compare(CursorKind::Number, &a, &json!(9)), Ordering::Greater);
    }
}
