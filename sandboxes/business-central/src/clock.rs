//! The virtual clock. Time flows with the wall clock, but tests can jump it forward (token and
//! subscription expiry, retry ladders measured in minutes, `lastModifiedDateTime`) and freeze
//! the modification stamp to produce equal timestamps on purpose.
//!
//! `lastModifiedDateTime` is BC's `SystemModifiedAt`, a SQL `datetime`: it has 1/300 s ticks, so
//! the milliseconds printed end in 0, 3 or 7 and records changed within ~3 ms share a stamp.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

/// Wall clock plus an offset that only grows, and an optional frozen modification stamp.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// How far virtual time is ahead of the wall clock, in nanoseconds.
    offset: Mutex<i128>,
    /// When set, every modification is stamped with this instant (equal-timestamp tests).
    frozen: Mutex<Option<Timestamp>>,
}

impl Clock {
    /// The current virtual instant.
    pub(crate) fn now(&self) -> Timestamp {
        let offset = *self.offset.lock().unwrap_or_else(|e| e.into_inner());
        from_nanos(Timestamp::now().as_nanosecond() + offset)
    }

    /// Moves virtual time forward.
    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by.as_nanos() as i128;
    }

    /// Freezes (or releases) the stamp given to modified records.
    pub(crate) fn set_override(&self, ts: Option<Timestamp>) {
        *self.frozen.lock().unwrap_or_else(|e| e.into_inner()) = ts;
    }

    /// The `SystemModifiedAt` a change made now receives.
    pub(crate) fn stamp(&self) -> Timestamp {
        match *self.frozen.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(ts) => ts,
            None => sql_datetime(self.now()),
        }
    }

    /// The real time left until the virtual instant `t` (zero when it has passed).
    pub(crate) fn until(&self, t: Timestamp) -> Duration {
        let left = t.as_nanosecond() - self.now().as_nanosecond();
        if left <= 0 { Duration::ZERO } else { Duration::from_nanos(left.min(u64::MAX as i128) as u64) }
    }
}

/// A timestamp from nanoseconds since the epoch, clamped into jiff's range.
pub(crate) fn from_nanos(n: i128) -> Timestamp {
    Timestamp::from_nanosecond(n).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Adds a (possibly large) duration.
pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    from_nanos(t.as_nanosecond() + d.as_nanos() as i128)
}

/// Subtracts milliseconds.
pub(crate) fn sub_ms(t: Timestamp, ms: i64) -> Timestamp {
    from_nanos(t.as_nanosecond() - i128::from(ms) * 1_000_000)
}

/// Rounds to SQL `datetime` precision: 1/300 s ticks printed as whole milliseconds.
pub(crate) fn sql_datetime(t: Timestamp) -> Timestamp {
    const NS: i128 = 1_000_000_000;
    let n = t.as_nanosecond();
    let (secs, sub) = (n.div_euclid(NS), n.rem_euclid(NS));
    let ticks = (sub * 300 + NS / 2) / NS;
    let ms = (ticks * 10 + 1) / 3;
    from_nanos(secs * NS + ms * 1_000_000)
}

/// `2025-02-23T13:34:29.943Z`: how BC prints `Edm.DateTimeOffset` values.
pub(crate) fn fmt_ms(t: Timestamp) -> String {
    format!("{:.3}", truncate_ms(t))
}

/// `2025-09-29T09:58:45Z`: subscriptions print whole seconds.
pub(crate) fn fmt_s(t: Timestamp) -> String {
    format!("{:.0}", from_nanos(t.as_nanosecond().div_euclid(1_000_000_000) * 1_000_000_000))
}

/// `2016-01-09 02:02:12Z`: the Entra error timestamp.
pub(crate) fn fmt_entra(t: Timestamp) -> String {
    fmt_s(t).replacen('T', " ", 1)
}

/// `2025-05-22`: the UTC date of an instant (BC's work date for new documents).
pub(crate) fn date_of(t: Timestamp) -> jiff::civil::Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

fn truncate_ms(t: Timestamp) -> Timestamp {
    from_nanos(t.as_nanosecond().div_euclid(1_000_000) * 1_000_000)
}

/// The blank `Edm.DateTimeOffset` BC prints for an empty DateTime field.
pub(crate) const BLANK_DATETIME: &str = "0001-01-01T00:00:00Z";
/// The blank `Edm.Date` BC prints for an empty Date field.
pub(crate) const BLANK_DATE: &str = "0001-01-01";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_datetime_ticks() {
        let t: Timestamp = "2025-03-24T02:08:05.0671Z".parse().unwrap();
        assert_eq!(fmt_ms(sql_datetime(t)), "2025-03-24T02:08:05.067Z");
        let t: Timestamp = "2025-03-24T02:08:05.6751Z".parse().unwrap();
        assert_eq!(fmt_ms(sql_datetime(t)), "2025-03-24T02:08:05.677Z");
        let t: Timestamp = "2025-03-24T02:08:05.9995Z".parse().unwrap();
        assert_eq!(fmt_ms(sql_datetime(t)), "2025-03-24T02:08:06.000Z");
        for ms in 0..1000 {
            let t = from_nanos(1_700_000_000_000_000_000 + ms * 1_000_000 + 123);
            let last = fmt_ms(sql_datetime(t)).chars().rev().nth(1).unwrap();
            assert!(matches!(last, '0' | '3' | '7'), "{ms}");
        }
    }

    #[test]
    fn formats() {
        let t: Timestamp = "2025-09-29T09:58:45.197Z".parse().unwrap();
        assert_eq!(fmt_s(t), "2025-09-29T09:58:45Z");
        assert_eq!(fmt_ms(t), "2025-09-29T09:58:45.197Z");
        assert_eq!(fmt_entra(t), "2025-09-29 09:58:45Z");
        assert_eq!(date_of(t).to_string(), "2025-09-29");
    }

    #[test]
    fn advances_and_freezes() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(Duration::from_secs(3600));
        assert!(clock.now().as_second() - before.as_second() >= 3600);
        let frozen: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        clock.set_override(Some(frozen));
        assert_eq!(clock.stamp(), frozen);
        clock.set_override(None);
        assert!(clock.stamp() > frozen);
    }
}
