//! The filters ml-connector adds to minijinja's built-ins.
//!
//! Each filter is documented in [`CUSTOM_FILTERS`]; README's mapping reference is checked
//! against that table by a test, so a filter cannot be added without being documented.

use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind};

/// The documentation of one filter.
#[derive(Debug, Clone, Copy)]
pub struct FilterDoc {
    pub name: &'static str,
    pub signature: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

/// Every filter ml-connector adds, with its documentation.
pub const CUSTOM_FILTERS: &[FilterDoc] = &[
    FilterDoc {
        name: "md5",
        signature: "text | md5",
        description: "Lower-case hex MD5 of the text.",
        example: r#""abc" | md5 → "900150983cd24fb0d6963f7d28e17f72""#,
    },
    FilterDoc {
        name: "sha256",
        signature: "text | sha256",
        description: "Lower-case hex SHA-256 of the text.",
        example: r#""abc" | sha256 → "ba7816bf…""#,
    },
    FilterDoc {
        name: "subscriber_hash",
        signature: "email | subscriber_hash",
        description: "Mailchimp's member id: MD5 of the trimmed, lower-cased email.",
        example: r#"" Ada@Example.com" | subscriber_hash → "md5 of ada@example.com""#,
    },
    FilterDoc {
        name: "email",
        signature: "text | email",
        description: "The trimmed, lower-cased email; fails the record when it is not a valid address.",
        example: r#"" Ada@Example.COM " | email → "ada@example.com""#,
    },
    FilterDoc {
        name: "first_email",
        signature: "text | first_email",
        description: "The first valid address in a list separated by `;` or `,` (GP keeps several in one field), lower-cased; fails the record when there is none.",
        example: r#""bad; ada@example.com; x@y.z" | first_email → "ada@example.com""#,
    },
    FilterDoc {
        name: "first_name",
        signature: "name | first_name",
        description: "The given name of a full name: the first word, or what follows the comma in `Last, First`.",
        example: r#""Ada King Lovelace" | first_name → "Ada""#,
    },
    FilterDoc {
        name: "last_name",
        signature: "name | last_name",
        description: "The family name of a full name: all but the first word, or what precedes the comma in `Last, First`.",
        example: r#""Ada King Lovelace" | last_name → "King Lovelace""#,
    },
    FilterDoc {
        name: "format_date",
        signature: "date | format_date(format=\"%Y-%m-%d\")",
        description: "Formats a date or timestamp (RFC 3339; no offset means UTC) with strftime directives.",
        example: r#""2026-03-01T10:00:00Z" | format_date("%d/%m/%Y") → "01/03/2026""#,
    },
    FilterDoc {
        name: "iso8601",
        signature: "date | iso8601",
        description: "A date or timestamp as an RFC 3339 UTC timestamp with `Z` (a bare date is midnight UTC).",
        example: r#""2026-03-01T10:00:00+01:00" | iso8601 → "2026-03-01T09:00:00Z""#,
    },
    FilterDoc {
        name: "decimal",
        signature: "number | decimal(places=2)",
        description: "A number (or numeric text) rounded half away from zero to `places` decimals, as a number. Rounds the decimal digits you see, so 2.675 → 2.68.",
        example: r#""2.675" | decimal → 2.68"#,
    },
    FilterDoc {
        name: "required",
        signature: "value | required(message=\"...\")",
        description: "Fails the record when the value is undefined, null or empty text, with the message given.",
        example: r#"record.currencyCode | required("invoice has no currency")"#,
    },
    FilterDoc {
        name: "digits",
        signature: "text | digits",
        description: "Only the digits of the text (phone numbers, zip codes).",
        example: r#""+1 (555) 010-99" | digits → "155501099""#,
    },
    FilterDoc {
        name: "max_chars",
        signature: "text | max_chars(n)",
        description: "The text cut to at most `n` characters (APIs limit field lengths; Mailchimp merge fields take 255).",
        example: r#""abcdef" | max_chars(3) → "abc""#,
    },
];

pub(crate) fn register(env: &mut Environment<'static>) {
    env.add_filter("md5", |s: String| hex(&<md5::Md5 as md5::Digest>::digest(s.as_bytes())));
    env.add_filter("sha256", |s: String| hex(&<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes())));
    env.add_filter("subscriber_hash", |s: String| subscriber_hash(&s));
    env.add_filter("email", |s: String| {
        normalize_email(&s).ok_or_else(|| invalid(format!("`{}` is not a valid email address", shorten(&s))))
    });
    env.add_filter("first_email", first_email);
    env.add_filter("first_name", |s: String| split_name(&s).0);
    env.add_filter("last_name", |s: String| split_name(&s).1);
    env.add_filter("format_date", format_date);
    env.add_filter("iso8601", |s: String| parse_timestamp(&s).map(|ts| ts.to_string()));
    env.add_filter("decimal", decimal);
    env.add_filter("required", required);
    env.add_filter("digits", |s: String| s.chars().filter(char::is_ascii_digit).collect::<String>());
    env.add_filter("max_chars", |s: String, n: usize| s.chars().take(n).collect::<String>());
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mailchimp's subscriber hash: MD5 of the lower-cased, trimmed address.
pub fn subscriber_hash(email: &str) -> String {
    hex(&<md5::Md5 as md5::Digest>::digest(email.trim().to_lowercase().as_bytes()))
}

/// A pragmatic email check: what Mailchimp and BC accept in practice, not all of RFC 5322.
/// One `@`, a non-empty local part without spaces, a domain with a dot and no empty labels.
pub fn normalize_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let ok_local = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let ok_domain =
        domain.contains('.') && domain.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    let no_bad_chars = !email.chars().any(|c| c.is_whitespace() || c.is_control() || "()<>[]\\,;:\"".contains(c))
        && !domain.contains('@');
    (ok_local && ok_domain && no_bad_chars && email.len() <= 254).then_some(email)
}

fn first_email(s: String) -> Result<String, Error> {
    s.split([';', ',']).find_map(normalize_email).ok_or_else(|| invalid(format!("`{s}` holds no valid email address")))
}

/// Splits a full name into (given, family). `Last, First` is recognised by its comma.
pub fn split_name(full: &str) -> (String, String) {
    let full = full.trim();
    if let Some((last, first)) = full.split_once(',') {
        return (first.trim().to_owned(), last.trim().to_owned());
    }
    let mut words = full.split_whitespace();
    let first = words.next().unwrap_or("").to_owned();
    let last = words.collect::<Vec<_>>().join(" ");
    (first, last)
}

/// Parses an RFC 3339 timestamp, a timestamp without offset (taken as UTC, as Business Central
/// and GP write them), or a bare date (midnight UTC).
pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, Error> {
    let s = s.trim();
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = s.parse::<jiff::civil::DateTime>() {
        return dt.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).map_err(|e| invalid(e.to_string()));
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).map_err(|e| invalid(e.to_string()));
    }
    Err(invalid(format!("`{s}` is not a date or timestamp")))
}

fn format_date(s: String, format: Option<String>) -> Result<String, Error> {
    let ts = parse_timestamp(&s)?;
    let format = format.as_deref().unwrap_or("%Y-%m-%d");
    let zoned = ts.to_zoned(jiff::tz::TimeZone::UTC);
    jiff::fmt::strtime::format(format, &zoned).map_err(|e| invalid(format!("bad date format `{format}`: {e}")))
}

fn required(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let message: Option<String> = kwargs.get("message")?;
    kwargs.assert_all_used()?;
    if value.is_undefined() || value.is_none() || value.as_str().is_some_and(|s| s.trim().is_empty()) {
        return Err(invalid(message.unwrap_or_else(|| "a required value is missing".to_owned())));
    }
    Ok(value)
}

/// Digits before the point a `decimal` keeps exactly (a double's 15 significant digits).
const MAX_DECIMAL_DIGITS: usize = 15;

/// A value for an error message: at most 40 characters.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn decimal(value: Value, places: Option<u32>) -> Result<Value, Error> {
    let places = places.unwrap_or(2);
    if places > 12 {
        return Err(invalid(format!("decimal: at most 12 places, not {places}")));
    }
    let text = match value.as_str() {
        Some(s) => s.trim().to_owned(),
        None if value.is_number() => value.to_string(),
        None => return Err(invalid(format!("decimal: `{}` is not a number", shorten(&value.to_string())))),
    };
    let shown = shorten(&text);
    let rounded =
        round_decimal_text(&text, places).ok_or_else(|| invalid(format!("decimal: `{shown}` is not a number")))?;
    // A double keeps 15 significant digits: beyond that an amount would change silently.
    let digits = rounded.trim_start_matches('-').split('.').next().unwrap_or("").trim_start_matches('0').len();
    if digits > MAX_DECIMAL_DIGITS {
        return Err(invalid(format!(
            "decimal: `{shown}` has more than {MAX_DECIMAL_DIGITS} digits before the point; it cannot be kept exactly"
        )));
    }
    if places == 0
        && let Ok(i) = rounded.parse::<i64>()
    {
        return Ok(Value::from(i));
    }
    rounded.parse::<f64>().map(Value::from).map_err(|_| invalid(format!("decimal: `{shown}` is not a number")))
}

/// Rounds a decimal number written as text to `places` decimals, half away from zero, working
/// on the digits themselves so binary floating point never turns 2.675 into 2.67.
pub fn round_decimal_text(text: &str, places: u32) -> Option<String> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let places = places as usize;
    let mut kept: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes().chain(std::iter::repeat(b'0')).take(places))
        .map(|b| b - b'0')
        .collect();
    if kept.is_empty() {
        kept.push(0);
    }
    let round_up = frac_part.as_bytes().get(places).is_some_and(|b| *b >= b'5');
    if round_up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let split = kept.len() - places;
    let int_digits: String = kept[..split].iter().map(|d| char::from(b'0' + d)).collect();
    let int_digits = int_digits.trim_start_matches('0');
    let int_digits = if int_digits.is_empty() { "0" } else { int_digits };
    let frac_digits: String = kept[split..].iter().map(|d| char::from(b'0' + d)).collect();
    let is_zero = int_digits == "0" && frac_digits.chars().all(|c| c == '0');
    let sign = if negative && !is_zero { "-" } else { "" };
    Some(if places == 0 { format!("{sign}{int_digits}") } else { format!("{sign}{int_digits}.{frac_digits}") })
}
