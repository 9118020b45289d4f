//! Fault injection for API requests: latency, 429s, 503/504s (as BC's gateway sends them),
//! connection resets, writes whose answer never arrives, slow responses. Decisions come from a
//! seeded xorshift generator, so a failing test replays exactly.

use std::sync::Mutex;
use std::time::Duration;

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

/// xorshift64*: tiny, deterministic, good enough for coin flips.
#[derive(Debug)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }

    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
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

/// The current faults and their generator.
pub(crate) struct FaultState {
    /// The faults and the generator, drawn together.
    inner: Mutex<(Faults, XorShift)>,
}

impl FaultState {
    pub(crate) fn new() -> FaultState {
        FaultState { inner: Mutex::new((Faults::default(), XorShift::new(0))) }
    }

    /// Replaces the faults and reseeds the generator.
    pub(crate) fn set(&self, faults: Faults) {
        let rng = XorShift::new(faults.seed);
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    /// Draws the fate of one request (always the same number of draws).
    pub(crate) fn decide(&self) -> Decision {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *guard;
        let mut hit = |rate: f64| {
            let roll = rng.unit();
            rate > 0.0 && roll < rate
        };
        let too_many = hit(faults.rate_429);
        let server_error = hit(faults.rate_5xx);
        let gateway = hit(0.5);
        let reset = hit(faults.rate_reset);
        let timeout_after_commit = hit(faults.rate_timeout_after_commit);
        let slow = hit(faults.rate_slow);
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
    use super::*;

    #[test]
    fn deterministic_and_roughly_fair() {
        let state = FaultState::new();
        state.set(Faults { rate_5xx: 0.5, seed: 7, ..Faults::default() });
        let first: Vec<Option<u16>> = (0..200).map(|_| state.decide().server_error).collect();
        state.set(Faults { rate_5xx: 0.5, seed: 7, ..Faults::default() });
        let second: Vec<Option<u16>> = (0..200).map(|_| state.decide().server_error).collect();
        assert_eq!(first, second);
        let hits = first.iter().filter(|h| h.is_some()).count();
        assert!((60..140).contains(&hits), "{hits}");
        assert!(first.contains(&Some(503)) && first.contains(&Some(504)));
        state.set(Faults::default());
        assert_eq!(state.decide(), Decision::default());
    }
}
