//! Deterministic sample data shared by `demo` and `bench`: the same seed gives the same records,
//! so two demos tell the same story and two bench runs compare.

/// A small deterministic generator (xorshift64*): variety, not randomness.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed.max(1))
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n.max(1)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// First names for people.
pub const FIRST: &[&str] = &[
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "Ken",
    "Margaret",
    "Dennis",
    "Radia",
    "John",
    "Hedy",
    "Claude",
    "Katherine",
    "Tim",
    "Sophie",
    "Linus",
    "Anita",
    "Guido",
    "Carol",
    "Niklaus",
    "Joan",
    "Bjarne",
];

/// Last names for people (and the shops named after them).
pub const LAST: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "McCarthy",
    "Lamarr",
    "Shannon",
    "Johnson",
    "Berners",
    "Wilson",
    "Torvalds",
    "Borg",
    "Rossum",
    "Shaw",
    "Wirth",
    "Clarke",
    "Stroustrup",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dice_are_deterministic_and_in_range() {
        let (mut a, mut b) = (Dice::new(7), Dice::new(7));
        let rolls: Vec<usize> = (0..1000).map(|_| a.below(6)).collect();
        assert_eq!(rolls, (0..1000).map(|_| b.below(6)).collect::<Vec<_>>());
        assert!(rolls.iter().all(|r| *r < 6));
        // Every face comes up: the generator is not stuck.
        assert!((0..6).all(|face| rolls.contains(&face)));
    }
}
