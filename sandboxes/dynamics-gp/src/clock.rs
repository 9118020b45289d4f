//! The sandbox clock and GP's date/time conventions.
//!
//! - `DEX_ROW_TS` is a SQL Server `datetime` set to `GETUTCDATE()` by triggers: UTC, stored in
//!   1/300 s ticks and surfaced by .NET in whole milliseconds (`.437`, never `.4366`). The clock
//!   rounds the same way, so a connector's watermark comparisons meet real precision.
//! - `MODIFDT`, `CREATDDT`, `DOCDATE` … are date-only (CHECK constraints force 00:00:00), and
//!   "no date" is `1900-01-01`.
//! - Criteria take `xs:dateTime` "in UTC, with both date and time portions" (reference §2.4):
//!   a date alone is refused; a value without offset is UTC; an offset is honoured.
//!
//! The clock can be moved forward by the admin API (tests of "modified since" need time to
//! pass without sleeping).

use std::sync::Mutex;

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp};

/// GP's "empty date".
pub const NO_DATE: Date = jiff::civil::date(1900, 1, 1);

/// Real time plus an adjustable offset.
#[derive(Debug, Default)]
pub struct Clock {
    /// How far the sandbox is ahead of the wall clock.
    offset: Mutex<SignedDuration>,
}

impl Clock {
    /// Now, at SQL `datetime` precision.
    pub fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        sql_datetime(Timestamp::now().checked_add(offset).unwrap_or(Timestamp::MAX))
    }

    /// Moves the clock forward (or back, for a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset = offset.saturating_add(by);
    }
}

/// Rounds to SQL Server `datetime` ticks (1/300 s), then to the whole millisecond .NET reports.
pub fn sql_datetime(ts: Timestamp) -> Timestamp {
    let secs = ts.as_second();
    let nanos = i64::from(ts.subsec_nanosecond());
    let ticks = (nanos * 300 + 500_000_000) / 1_000_000_000; // 0..=300
    let millis = (ticks * 1000 + 150) / 300; // 0..=1000
    Timestamp::new(secs, 0).expect("in range") + SignedDuration::from_millis(millis)
}

/// UTC civil time of a timestamp.
pub fn utc(ts: Timestamp) -> DateTime {
    ts.to_zoned(jiff::tz::TimeZone::UTC).datetime()
}

/// `xs:dateTime` as the GP service writes it: UTC wall time without an offset, fractional
/// seconds only when non-zero and without trailing zeros (.NET's `FFFFFFF`).
pub fn format_ts(ts: Timestamp) -> String {
    format_civil(utc(ts))
}

/// A date-only column as `xs:dateTime` (midnight).
pub fn format_date(date: Date) -> String {
    format_civil(date.to_datetime(jiff::civil::time(0, 0, 0, 0)))
}

fn format_civil(dt: DateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.subsec_nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out
}

/// Parses an `xs:dateTime`: `YYYY-MM-DDTHH:MM:SS[.fff][Z|±HH:MM]`. No offset means UTC.
pub fn parse_xs_datetime(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    let bad = || format!("'{text}' is not a valid xs:dateTime (both the date and the time are required)");
    let t = text.find('T').ok_or_else(bad)?;
    let (civil, offset) = if let Some(stripped) = text.strip_suffix('Z') {
        (stripped, SignedDuration::ZERO)
    } else if text.len() > t + 6 && matches!(text.as_bytes()[text.len() - 6], b'+' | b'-') {
        let (civil, zone) = text.split_at(text.len() - 6);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let hours: i64 = zone[1..3].parse().map_err(|_| bad())?;
        let minutes: i64 = zone[4..6].parse().map_err(|_| bad())?;
        if &zone[3..4] != ":" || hours > 14 || minutes > 59 {
            return Err(bad());
        }
        (civil, SignedDuration::from_secs(sign * (hours * 3600 + minutes * 60)))
    } else {
        (text, SignedDuration::ZERO)
    };
    // jiff accepts a few forms XML Schema does not; insist on the canonical shape.
    let bytes = civil.as_bytes();
    let shape_ok = bytes.len() >= 19
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && (bytes.len() == 19 || (bytes[19] == b'.' && bytes.len() > 20 && bytes[20..].iter().all(u8::is_ascii_digit)));
    if !shape_ok {
        return Err(bad());
    }
    let dt: DateTime = civil.parse().map_err(|_| bad())?;
    let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).map_err(|_| bad())?.timestamp();
    ts.checked_sub(offset).map_err(|_| bad())
}

/// Parses `YYYY-MM-DD` (admin inputs).
pub fn parse_date(text: &str) -> Result<Date, String> {
    text.trim().parse().map_err(|_| format!("'{text}' is not a date (YYYY-MM-DD)"))
}

/// SQL Server `datetime` range: a criterion outside it fails in SQL ("SqlDateTime overflow").
pub fn in_sql_range(ts: Timestamp) -> bool {
    let dt = utc(ts);
    dt.year() >= 1753 && dt.year() <= 9999
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_precision() {
        let ts: Timestamp = "2024-05-02T13:14:15.4366Z".parse().unwrap();
        assert_eq!(format_ts(sql_datetime(ts)), "2024-05-02T13:14:15.437");
        let ts: Timestamp = "2024-05-02T13:14:15.9990Z".parse().unwrap();
        assert_eq!(format_ts(sql_datetime(ts)), "2024-05-02T13:14:16");
        let ts: Timestamp = "2024-05-02T13:14:15.002Z".parse().unwrap();
        assert_eq!(format_ts(sql_datetime(ts)), "2024-05-02T13:14:15.003");
    }

    #[test]
    fn xs_datetime_forms() {
        let utc = parse_xs_datetime("2024-05-01T10:00:00").unwrap();
        assert_eq!(utc, "2024-05-01T10:00:00Z".parse::<Timestamp>().unwrap());
        assert_eq!(parse_xs_datetime("2024-05-01T10:00:00Z").unwrap(), utc);
        assert_eq!(parse_xs_datetime("2024-05-01T12:00:00+02:00").unwrap(), utc);
        assert_eq!(parse_xs_datetime(" 2024-05-01T10:00:00.5 ").unwrap(), utc + SignedDuration::from_millis(500));
        for bad in ["2024-05-01", "2024-05-01 10:00:00", "2024-5-1T10:00:00", "yesterday", "2024-05-01T10:00:00+0200"] {
            assert!(parse_xs_datetime(bad).is_err(), "{bad}");
        }
        assert_eq!(format_date(jiff::civil::date(2017, 4, 12)), "2017-04-12T00:00:00");
    }

    #[test]
    fn clock_moves() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(SignedDuration::from_hours(2));
        assert!(clock.now() >= before + SignedDuration::from_hours(2));
    }
}
