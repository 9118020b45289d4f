//! The deterministic side of fault injection: a seeded xorshift generator and the cell that keeps
//! a sandbox's fault settings together with it. Every sandbox draws its faults this way, so a
//! failing test replays exactly; what the faults are and what a draw decides stays in each
//! sandbox, since that models the service it imitates.

use std::sync::Mutex;

/// The seed used when the configured one is 0 (xorshift never leaves an all-zero state).
const DEFAULT_SEED: u64 = 0x9E37_79B9_7F4A_7C15;

/// xorshift64*: tiny, fast, deterministic, good enough for coin flips.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 picks a fixed default).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 { DEFAULT_SEED } else { seed })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of probability `rate` happens. Always draws, even when `rate` is 0, so
    /// one outcome never shifts the sequence of the others.
    pub fn hit(&mut self, rate: f64) -> bool {
        let roll = self.unit();
        rate > 0.0 && roll < rate
    }
}

/// What one request's fate is, and how it is drawn from a sandbox's fault settings. Each sandbox
/// implements this on its own (private) decision type: what can go wrong, and in which order the
/// draws happen, models the service it imitates.
pub trait Draw: Sized {
    /// The sandbox's fault settings.
    type Faults: Default;

    /// The seed in `faults` (0 picks a fixed default).
    fn seed(faults: &Self::Faults) -> u64;

    /// Draws one request's fate. Draw the same number of times whatever the outcome, so one
    /// outcome never shifts the sequence of the others.
    fn draw(faults: &Self::Faults, rng: &mut XorShift) -> Self;
}

/// A sandbox's current fault settings and their generator, replaced together (setting faults
/// reseeds, so a test that sets a seed replays exactly).
pub struct FaultState<D: Draw> {
    /// The settings and the generator they are drawn from.
    inner: Mutex<(D::Faults, XorShift)>,
}

impl<D: Draw> FaultState<D> {
    /// No faults, drawing from the default seed.
    pub fn new() -> FaultState<D> {
        let faults = D::Faults::default();
        let rng = XorShift::new(D::seed(&faults));
        FaultState { inner: Mutex::new((faults, rng)) }
    }

    /// Replaces the faults and reseeds the generator.
    pub fn set(&self, faults: D::Faults) {
        let rng = XorShift::new(D::seed(&faults));
        *self.inner.lock().unwrap_or_else(|e| e.into_inner()) = (faults, rng);
    }

    /// The current faults.
    pub fn get(&self) -> D::Faults
    where
        D::Faults: Clone,
    {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// Draws the fate of one request (under the lock, so one request's draws stay together even
    /// when requests arrive concurrently).
    pub fn decide(&self) -> D {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (faults, rng) = &mut *guard;
        D::draw(faults, rng)
    }
}

impl<D: Draw> Default for FaultState<D> {
    fn default() -> FaultState<D> {
        FaultState::new()
    }
}

impl<D: Draw> std::fmt::Debug for FaultState<D>
where
    D::Faults: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("FaultState").field("faults", &guard.0).field("rng", &guard.1).finish()
    }
}

/// The check every sandbox's fault tests make: with `half` (one fault at rate 0.5, a fixed
/// seed) the same seed replays the same outcomes and `hit` picks about half of 200 requests;
/// with no faults, nothing happens. Returns the outcomes for further checks.
pub fn check_replays<D>(half: D::Faults, hit: impl Fn(&D) -> bool) -> Vec<D>
where
    D: Draw + Default + PartialEq + std::fmt::Debug,
    D::Faults: Clone,
{
    let state = FaultState::<D>::new();
    state.set(half.clone());
    let first: Vec<D> = (0..200).map(|_| state.decide()).collect();
    state.set(half);
    let second: Vec<D> = (0..200).map(|_| state.decide()).collect();
    assert_eq!(first, second);
    let hits = first.iter().filter(|d| hit(d)).count();
    assert!((60..140).contains(&hits), "{hits}");
    state.set(D::Faults::default());
    assert_eq!(state.decide(), D::default());
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sequences_replay() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let first: Vec<u64> = (0..50).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..50).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        assert_eq!(XorShift::new(0).next_u64(), XorShift::new(DEFAULT_SEED).next_u64());
    }

    #[test]
    fn hit_is_roughly_fair_and_always_draws() {
        let mut rng = XorShift::new(7);
        let hits = (0..200).filter(|_| rng.hit(0.5)).count();
        assert!((60..140).contains(&hits), "{hits}");
        let (mut a, mut b) = (XorShift::new(3), XorShift::new(3));
        assert!(!a.hit(0.0));
        b.unit();
        assert_eq!(a.next_u64(), b.next_u64());
    }

    /// A decision that is just the generator's next number, seeded by the settings.
    #[derive(Debug, PartialEq)]
    struct Next(u64);

    impl Draw for Next {
        type Faults = u64;
        fn seed(faults: &u64) -> u64 {
            *faults
        }
        fn draw(_: &u64, rng: &mut XorShift) -> Next {
            Next(rng.next_u64())
        }
    }

    #[test]
    fn set_reseeds() {
        let state = FaultState::<Next>::new();
        assert_eq!(state.decide(), Next(XorShift::new(0).next_u64()));
        state.set(5);
        let first = state.decide();
        state.decide();
        state.set(5);
        assert_eq!(state.decide(), first);
        assert_eq!(state.get(), 5);
    }
}
