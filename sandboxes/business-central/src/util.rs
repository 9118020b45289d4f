//! Small helpers shared by every module: random identifiers in the shapes BC uses, percent
//! decoding of path segments, and decimal rounding.

use std::sync::atomic::{AtomicU64, Ordering};

/// The state of a splitmix64 sequence; seeded from the wall clock on first use so two sandboxes
/// never hand out the same ids.
static STATE: AtomicU64 = AtomicU64::new(0);

/// A random 64-bit number (splitmix64 over an atomic counter: lock-free and good enough for ids).
pub(crate) fn random_u64() -> u64 {
    if STATE.load(Ordering::Relaxed) == 0 {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x1234_5678)
            ^ u64::from(std::process::id()).rotate_left(32);
        let _ = STATE.compare_exchange(0, seed | 1, Ordering::SeqCst, Ordering::SeqCst);
    }
    let mut z = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A lowercase GUID with dashes, as BC prints SystemIds.
pub(crate) fn guid() -> String {
    let (a, b) = (random_u64(), random_u64());
    let hex = format!("{a:016x}{b:016x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// 32 lowercase hex digits without dashes (subscription ids look like this).
pub(crate) fn hex32() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// The all-zero GUID BC uses for "no value".
pub(crate) const EMPTY_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Whether `s` is a GUID in the 8-4-4-4-12 form (either case).
pub(crate) fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Percent-decodes a path segment (`+` stays a plus, unlike in query strings). Shared with the
/// other sandboxes, which decode their paths the same way.
pub(crate) use sandbox_common::util::percent_decode;

/// Rounds an amount to cents, as BC's amount rounding precision does (0.01).
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A JSON number for a decimal: integers print without a fraction (`0`, `2000`), as BC does.
pub(crate) fn decimal(x: f64) -> serde_json::Value {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        serde_json::Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map(serde_json::Value::Number).unwrap_or(serde_json::Value::from(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_bc_shapes() {
        let g = guid();
        assert!(is_guid(&g), "{g}");
        assert_eq!(g, g.to_lowercase());
        assert_eq!(hex32().len(), 32);
        assert_ne!(guid(), guid());
        assert!(!is_guid("not-a-guid"));
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(
            percent_decode("companies(name=%27CRONUS%20USA%2C%20Inc.%27)"),
            "companies(name='CRONUS USA, Inc.')"
        );
        assert_eq!(percent_decode("a+b%"), "a+b%");
    }

    #[test]
    fn decimals_print_like_bc() {
        assert_eq!(decimal(2000.0).to_string(), "2000");
        assert_eq!(decimal(12.5).to_string(), "12.5");
        assert_eq!(round2(0.125 + 0.0001), 0.13);
    }
}
