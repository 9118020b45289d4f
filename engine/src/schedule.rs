//! A pipeline's schedule, compiled at load time: when `ml-connector serve` runs it next.
//!
//! Cron expressions are parsed (and checked to fire at all) when the project loads, so a typo is
//! a configuration error with a position, never a service that silently never runs. They are
//! evaluated in a time zone because "month-end at 23:00" is the customer's month-end.

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{ClockConfig, ScheduleConfig};

/// When a pipeline runs in the service: on events, on a clock, or both (events, with the clock
/// as a safety poll for a notification that was lost).
#[derive(Debug, Clone)]
pub struct Schedule {
    on_events: bool,
    clock: Option<Clock>,
}

/// The clock of a schedule.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Every so often, counted from the start of the previous run.
    Every(std::time::Duration),
    /// At the times a cron expression names, read in `zone`.
    Cron { cron: Box<Cron>, zone: TimeZone, text: String },
}

impl Schedule {
    /// When events for its source arrive, and once at start-up for what arrived meanwhile.
    pub fn webhook() -> Schedule {
        Schedule { on_events: true, clock: None }
    }

    /// Every so often, counted from the start of the previous run.
    pub fn every(every: std::time::Duration) -> Schedule {
        Schedule { on_events: false, clock: Some(Clock::Every(every)) }
    }

    /// Compiles a schedule. The error names the key at fault (`every`, `cron` or `timezone`)
    /// and why.
    pub fn compile(config: &ScheduleConfig) -> Result<Schedule, (&'static str, String)> {
        let clock = match &config.clock {
            None => None,
            Some(ClockConfig::Every(every)) if every.0.is_zero() => {
                return Err(("every", "must be longer than 0".to_owned()));
            }
            Some(ClockConfig::Every(every)) => Some(Clock::Every(every.0)),
            Some(ClockConfig::Cron { expression, timezone }) => {
                let zone = match timezone {
                    None => TimeZone::UTC,
                    Some(name) => TimeZone::get(name)
                        .map_err(|_| ("timezone", format!("`{name}` is not a known IANA time zone")))?,
                };
                let cron = parse_cron(expression).map_err(|e| ("cron", e))?;
                let clock = Clock::Cron { cron: Box::new(cron), zone, text: expression.clone() };
                // `0 0 31 2 *` parses but never fires; say so now rather than wait forever.
                if clock.next_after(Timestamp::now()).is_none() {
                    return Err(("cron", format!("`{expression}` never fires (no such date)")));
                }
                Some(clock)
            }
        };
        Ok(Schedule { on_events: config.webhook, clock })
    }

    /// The first time strictly after `after` at which the clock makes the pipeline due; `None`
    /// without a clock (or for an expression with no further occurrence).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        self.clock.as_ref().and_then(|c| c.next_after(after))
    }

    /// Whether the pipeline runs on a clock (alone or beside events).
    pub fn is_timed(&self) -> bool {
        self.clock.is_some()
    }

    /// Whether events for its source make the pipeline run.
    pub fn on_events(&self) -> bool {
        self.on_events
    }

    /// The clock, if any.
    pub fn clock(&self) -> Option<&Clock> {
        self.clock.as_ref()
    }
}

impl Clock {
    fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Clock::Every(every) => after.checked_add(*every).ok(),
            Clock::Cron { cron, zone, .. } => {
                cron.find_next_occurrence(&after.to_zoned(zone.clone()), false).ok().map(|z| z.timestamp())
            }
        }
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Clock::Every(every) => write!(f, "every {}", crate::config::Duration(*every)),
            Clock::Cron { text, zone, .. } => write!(f, "cron `{text}` ({})", zone.iana_name().unwrap_or("UTC")),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.clock, self.on_events) {
            (None, _) => f.write_str("webhook"),
            (Some(clock), false) => clock.fmt(f),
            (Some(clock), true) => write!(f, "webhook, and {clock}"),
        }
    }
}

/// Parses a POSIX five-field expression (croner's extensions `L`, `#`, `W` included). Seconds
/// and years are refused: they are not cron as integrators know it, and a sixth field is more
/// often a mistake than a wish.
fn parse_cron(expression: &str) -> Result<Cron, String> {
    let fields = expression.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "`{expression}` has {fields} field(s); a cron expression has five: minute hour day-of-month month day-of-week"
        ));
    }
    let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
    parser.parse(expression).map_err(|e| format!("`{expression}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration;

    fn cron(expression: &str, zone: Option<&str>) -> Schedule {
        Schedule::compile(&ScheduleConfig::clock(ClockConfig::Cron {
            expression: expression.to_owned(),
            timezone: zone.map(str::to_owned),
        }))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The next `n` fire times after `from`.
    fn fires(schedule: &Schedule, from: &str, n: usize) -> Vec<String> {
        let mut t = at(from);
        (0..n)
            .map(|_| {
                t = schedule.next_after(t).unwrap();
                t.to_string()
            })
            .collect()
    }

    #[test]
    fn month_end_is_the_last_day_of_each_month_including_february_in_leap_years() {
        let month_end = cron("0 23 L * *", None);
        assert_eq!(
            fires(&month_end, "2027-12-15T00:00:00Z", 4),
            ["2027-12-31T23:00:00Z", "2028-01-31T23:00:00Z", "2028-02-29T23:00:00Z", "2028-03-31T23:00:00Z"]
        );
        assert_eq!(fires(&month_end, "2026-02-01T00:00:00Z", 3)[..2], ["2026-02-28T23:00:00Z", "2026-03-31T23:00:00Z"]);
        // 2100 is not a leap year (divisible by 100, not by 400); 2000 was.
        assert_eq!(fires(&month_end, "2100-02-01T00:00:00Z", 1), ["2100-02-28T23:00:00Z"]);
        assert_eq!(fires(&month_end, "2000-02-01T00:00:00Z", 1), ["2000-02-29T23:00:00Z"]);
        assert_eq!(fires(&month_end, "2026-04-30T22:59:59Z", 1), ["2026-04-30T23:00:00Z"], "30-day months");
    }

    #[test]
    fn month_end_is_read_in_the_customers_time_zone() {
        // 23:00 in Amsterdam on the last day: 22:00 UTC in winter, 21:00 UTC in summer.
        let month_end = cron("0 23 L * *", Some("Europe/Amsterdam"));
        assert_eq!(fires(&month_end, "2028-01-15T00:00:00Z", 2), ["2028-01-31T22:00:00Z", "2028-02-29T22:00:00Z"]);
        assert_eq!(fires(&month_end, "2028-06-15T00:00:00Z", 1), ["2028-06-30T21:00:00Z"]);
        // Past 23:00 local on the 31st (but still the 31st in UTC), the next is next month's.
        assert_eq!(fires(&month_end, "2028-01-31T22:30:00Z", 1), ["2028-02-29T22:00:00Z"]);
    }

    #[test]
    fn daily_weekly_and_interval_schedules() {
        assert_eq!(
            fires(&cron("0 2 * * *", None), "2026-03-01T02:00:00Z", 2),
            ["2026-03-02T02:00:00Z", "2026-03-03T02:00:00Z"]
        );
        // 2026-03-02 is a Monday.
        assert_eq!(
            fires(&cron("30 6 * * MON", None), "2026-03-01T00:00:00Z", 2),
            ["2026-03-02T06:30:00Z", "2026-03-09T06:30:00Z"]
        );
        let every = Schedule::compile(&ScheduleConfig::clock(ClockConfig::Every(Duration::from_secs(900)))).unwrap();
        assert_eq!(fires(&every, "2026-03-01T10:00:00Z", 2), ["2026-03-01T10:15:00Z", "2026-03-01T10:30:00Z"]);
        assert!(Schedule::webhook().next_after(at("2026-03-01T00:00:00Z")).is_none());
    }

    #[test]
    fn bad_expressions_and_zones_are_refused_with_the_key_at_fault() {
        let compile = |expression: &str, zone: Option<&str>| {
            Schedule::compile(&ScheduleConfig::clock(ClockConfig::Cron {
                expression: expression.to_owned(),
                timezone: zone.map(str::to_owned),
            }))
            .unwrap_err()
        };
        let (key, message) = compile("61 * * * *", None);
        assert_eq!(key, "cron");
        assert!(message.contains("61 * * * *"), "{message}");
        assert!(compile("0 2 * *", None).1.contains("has 4 field(s)"));
        assert!(compile("0 0 2 * * *", None).1.contains("has 6 field(s)"));
        assert!(compile("0 0 31 2 *", None).1.contains("never fires"));
        assert_eq!(compile("0 2 * * *", Some("Mars/Olympus")).0, "timezone");
        let zero = Schedule::compile(&ScheduleConfig::clock(ClockConfig::Every(Duration::from_secs(0)))).unwrap_err();
        assert_eq!(zero.0, "every");
    }

    #[test]
    fn a_webhook_schedule_with_a_safety_poll_listens_and_ticks() {
        let config = ScheduleConfig { webhook: true, clock: Some(ClockConfig::Every(Duration::from_secs(6 * 3600))) };
        let both = Schedule::compile(&config).unwrap();
        assert!(both.on_events() && both.is_timed());
        assert_eq!(fires(&both, "2026-03-01T10:00:00Z", 2), ["2026-03-01T16:00:00Z", "2026-03-01T22:00:00Z"]);
        assert_eq!(both.to_string(), "webhook, and every 6h");
        let webhook = Schedule::webhook();
        assert!(webhook.on_events() && !webhook.is_timed());
        assert_eq!(webhook.to_string(), "webhook");
        let every = Schedule::every(std::time::Duration::from_secs(60));
        assert!(!every.on_events() && every.is_timed());
    }
}
