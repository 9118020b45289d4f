//! Fault injection: latency, throttling, server errors, dropped connections, writes whose
//! response never arrives, slow responses. Decisions come from a seeded xorshift generator, so a
//! failing test replays exactly.

use std::time::Duration;

use sandbox_common::faults::{Draw, XorShift};
use serde::{Deserialize, Serialize};

/// What can go wrong with each `/3.0` request. Rates are probabilities in `0..=1`, drawn per
/// request in a fixed order so a seed reproduces the same sequence.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Added to every request, while it holds its connection slot.
    pub latency_ms: u64,
    /// Requests answered 429 Too Many Requests (as the limiter does, no `Retry-After`).
    pub rate_429: f64,
    /// Requests answered 500 Internal Server Error (before anything is applied).
    pub rate_5xx: f64,
    /// Requests whose connection is reset without any response (nothing applied).
    pub rate_reset: f64,
    /// Requests that are applied, then never answered: the response is held past any sane client
    /// timeout, then the connection is dropped. The retry must cope with "already exists".
    pub rate_timeout_after_commit: f64,
    /// Requests delayed by `slow_ms` before being handled.
    pub rate_slow: f64,
    /// The delay of a slow request.
    pub slow_ms: u64,
    /// The generator's seed (0 picks a fixed default).
    pub seed: u64,
}

/// What happens to one request.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Decision {
    /// Added before handling, holding the connection slot.
    pub latency: Duration,
    /// Answer 429.
    pub too_many: bool,
    /// Answer 500.
    pub internal: bool,
    /// Reset the connection, applying nothing.
    pub reset: bool,
    /// Apply, then never answer.
    pub timeout_after_commit: bool,
    /// Delay before handling.
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

    /// Always five draws, so outcomes do not shift the sequence.
    fn draw(faults: &Faults, rng: &mut XorShift) -> Decision {
        let too_many = rng.hit(faults.rate_429);
        let internal = rng.hit(faults.rate_5xx);
        let reset = rng.hit(faults.rate_reset);
        let timeout_after_commit = rng.hit(faults.rate_timeout_after_commit);
        let slow = rng.hit(faults.rate_slow);
        Decision {
            latency: Duration::from_millis(faults.latency_ms),
            too_many,
            internal,
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
        check_replays::<Decision>(Faults { rate_5xx: 0.5, seed: 7, ..Faults::default() }, |d| d.internal);
    }
}
