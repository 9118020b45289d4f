//! Fault injection for API requests: latency, 429s, 503/504s (as BC's gateway sends them),
//! connection resets, writes whose answer never arrives, slow responses. Decisions come from a
//! seeded xorshift generator, so a failing test replays exactly.

use std::time::Duration;

use sandbox_common::faults::{Draw, XorShift};
use serde::{Deserialize, Serialize};

/// What can go wrong with each API request. Rates are probabilities in `0..=1`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every request while it holds its processing slot.
    pub latency_ms: u64,
    /// Requests answered 429 (the throttling body, no `Retry-After`).
    pub rate_429: f64,
    /// Requests answered 503 (with `Retry-After`) or 504, half each, before anything is applied.
    pub rate_5xx: f64,
    /// Requests whose connection is reset without any response (nothing applied).
    pub rate_reset: f64,
    /// Requests applied, then never answered: the response is held, then the connection dropped.
    pub rate_timeout_after_commit: f64,
    /// Requests delayed by `slow_ms` before being handled.
    pub rate_slow: f64,
    /// The delay of a slow request.
    pub slow_ms: u64,
    /// The generator's seed (0 picks a fixed default).
    pub seed: u64,
}

/// The fate of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Decision {
    /// Delay while holding the slot.
    pub latency: Duration,
    /// Answer 429.
    pub too_many: bool,
    /// 503 or 504.
    pub server_error: Option<u16>,
    /// Reset the connection.
    pub reset: bool,
    /// Apply, then never answer.
    pub timeout_after_commit: bool,
    /// Extra delay before handling.
    pub slow: Option<Duration>,
}

/// The current faults and their generator (the state the sandboxes share; what is drawn is
/// [`Decision`]'s).
pub(crate) type FaultState = sandbox_common::faults::FaultState<Decision>;

impl Draw for Decision {
    type Faults = Faults;

    fn seed(faults: &Faults) -> u64 {
        faults.seed
    }

    /// Always the same number of draws (503 or 504 is drawn even when there is no error).
    fn draw(faults: &Faults, rng: &mut XorShift) -> Decision {
        let too_many = rng.hit(faults.rate_429);
        let server_error = rng.hit(faults.rate_5xx);
        let gateway = rng.hit(0.5);
        let reset = rng.hit(faults.rate_reset);
        let timeout_after_commit = rng.hit(faults.rate_timeout_after_commit);
        let slow = rng.hit(faults.rate_slow);
        Decision {
            latency: Duration::from_millis(faults.latency_ms),
            too_many,
            server_error: server_error.then_some(if gateway { 504 } else { 503 }),
            reset,
            timeout_after_commit,
            slow: slow.then(|| Duration::from_millis(faults.slow_ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use sandbox_common::faults::check_replays;

    use super::*;

    #[test]
    fn deterministic_and_roughly_fair() {
        let first = check_replays::<Decision>(Faults { rate_5xx: 0.5, seed: 7, ..Faults::default() }, |d| {
            d.server_error.is_some()
        });
        let codes: Vec<Option<u16>> = first.iter().map(|d| d.server_error).collect();
        assert!(codes.contains(&Some(503)) && codes.contains(&Some(504)));
    }
}
