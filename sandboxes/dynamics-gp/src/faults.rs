//! Fault injection: offline, slow responses, server errors (GP's and IIS's), connection resets,
//! stalled and never-answered requests. Rates are drawn from a seeded xorshift generator, so a
//! failing test replays exactly.

use std::time::Duration;

use sandbox_common::faults::{Draw, XorShift};
use serde::{Deserialize, Serialize};

/// What goes wrong. Set with [`crate::Admin::set_faults`] or `PUT /_sandbox/faults`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The service is down: the listening socket is closed, so connections are refused, and
    /// open connections are dropped. (The HTTP admin API goes down with it; use the in-process
    /// [`crate::Admin`] or `PUT /_sandbox/faults?for_ms=N` to come back.)
    pub offline: bool,
    /// Added before every authenticated request is handled.
    pub slow_ms: u64,
    /// Share of authenticated requests answered `500` with a SOAP fault (JSON for SBA), as when
    /// GP's SQL Server is unreachable. Nothing is applied.
    pub rate_500: f64,
    /// Share of authenticated requests whose connection is reset without any response.
    pub rate_reset: f64,
    /// Share of authenticated requests answered `503 Service Unavailable` by IIS (the
    /// application pool's queue is full), an HTML page, before GP sees them.
    pub rate_503: f64,
    /// Share of authenticated requests delayed by a further `stall_ms` (a slow SQL query).
    pub rate_stall: f64,
    /// The delay of a stalled request.
    pub stall_ms: u64,
    /// Share of authenticated requests never answered: held (as a query that never returns)
    /// until the client gives up, then the connection is dropped.
    pub rate_hang: f64,
    /// The generator's seed (0 picks a fixed default).
    pub seed: u64,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Decision {
    /// Delay before handling.
    pub delay: Duration,
    /// Answer 500.
    pub internal: bool,
    /// Reset the connection.
    pub reset: bool,
    /// Answer IIS's 503.
    pub unavailable: bool,
    /// Extra delay before handling.
    pub stall: Option<Duration>,
    /// Never answer.
    pub hang: bool,
}

/// The current faults and their generator, replaced together (the state the sandboxes share;
/// what is drawn is [`Decision`]'s).
pub type FaultState = sandbox_common::faults::FaultState<Decision>;

impl Draw for Decision {
    type Faults = Faults;

    fn seed(faults: &Faults) -> u64 {
        faults.seed
    }

    /// Always five draws, so outcomes do not shift the sequence.
    fn draw(faults: &Faults, rng: &mut XorShift) -> Decision {
        let internal = rng.hit(faults.rate_500);
        let reset = rng.hit(faults.rate_reset);
        let unavailable = rng.hit(faults.rate_503);
        let stall = rng.hit(faults.rate_stall);
        let hang = rng.hit(faults.rate_hang);
        Decision {
            delay: Duration::from_millis(faults.slow_ms),
            internal,
            reset,
            unavailable,
            stall: stall.then(|| Duration::from_millis(faults.stall_ms)),
            hang,
        }
    }
}

#[cfg(test)]
mod tests {
    use sandbox_common::faults::check_replays;

    use super::*;

    #[test]
    fn deterministic_and_roughly_fair() {
        check_replays::<Decision>(Faults { rate_500: 0.5, seed: 7, ..Faults::default() }, |d| d.internal);
        check_replays::<Decision>(Faults { rate_hang: 0.5, seed: 7, ..Faults::default() }, |d| d.hang);
        check_replays::<Decision>(Faults { rate_503: 0.5, seed: 9, ..Faults::default() }, |d| d.unavailable);
    }
}
