//! Fault injection: offline, slow responses, server errors and connection resets. Rates are
//! drawn from a seeded xorshift generator, so a failing test replays exactly.

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
}

/// The current faults and their generator, replaced together (the state the sandboxes share;
/// what is drawn is [`Decision`]'s).
pub type FaultState = sandbox_common::faults::FaultState<Decision>;

impl Draw for Decision {
    type Faults = Faults;

    fn seed(faults: &Faults) -> u64 {
        faults.seed
    }

    /// Always two draws, so outcomes do not shift the sequence.
    fn draw(faults: &Faults, rng: &mut XorShift) -> Decision {
        let internal = rng.hit(faults.rate_500);
        let reset = rng.hit(faults.rate_reset);
        Decision { delay: Duration::from_millis(faults.slow_ms), internal, reset }
    }
}

#[cfg(test)]
mod tests {
    use sandbox_common::faults::check_replays;

    use super::*;

    #[test]
    fn deterministic_and_roughly_fair() {
        check_replays::<Decision>(Faults { rate_500: 0.5, seed: 7, ..Faults::default() }, |d| d.internal);
    }
}
