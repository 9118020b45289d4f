//! Fault injection: offline, slow responses, server errors and connection resets. Rates are
//! drawn from a seeded xorshift generator, so a failing test replays exactly.

use std::sync::Mutex;
use std::time::Duration;

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

/// xorshift64*: tiny, deterministic, good enough for coin flips.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
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

/// The current faults and their generator, replaced together.
#[derive(Debug)]
pub struct FaultState {
    /// Faults and generator.
    inner: Mutex<(Faults, XorShift)>,
}

impl Default for FaultState {
    fn default() -> FaultState {
        FaultState { inner: Mutex::new((Faults::default(), XorShift::new(0))) }
    }
}

impl FaultState {
    /// Replaces the faults and reseeds the generator.
    pub fn set(&self, faults: Faults) {
        let rng = XorShift::new(faults.seed);
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    /// The current faults.
    pub fn get(&self) -> Faults {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Draws the fate of one request (always two draws, so outcomes do not shift the sequence).
    pub fn decide(&self) -> Decision {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *guard;
        let (a, b) = (rng.unit(), rng.unit());
        Decision {
            delay: Duration::from_millis(faults.slow_ms),
            internal: faults.rate_500 > 0.0 && a < faults.rate_500,
            reset: faults.rate_reset > 0.0 && b < faults.rate_reset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_roughly_fair() {
        let state = FaultState::default();
        state.set(Faults { rate_500: 0.5, seed: 7, ..Faults::default() });
        let first: Vec<bool> = (0..200).map(|_| state.decide().internal).collect();
        state.set(Faults { rate_500: 0.5, seed: 7, ..Faults::default() });
        let second: Vec<bool> = (0..200).map(|_| state.decide().internal).collect();
        assert_eq!(first, second);
        let hits = first.iter().filter(|h| **h).count();
        assert!((60..140).contains(&hits), "{hits}");
        state.set(Faults::default());
        assert_eq!(state.decide(), Decision::default());
    }
}
