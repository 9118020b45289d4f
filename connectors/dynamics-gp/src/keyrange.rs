//! Reading a GP list in key ranges, because GP's lists cannot page.
//!
//! `Get…List` returns every match at once, and its criteria have no row limit. What they have is
//! a string range on the key (`Id` / `DocumentId`: `GreaterThan`, `LessThan`). So the reader asks
//! for `Id > cursor AND Id < bound`, where `cursor` is the highest key seen so far and `bound` a
//! string it picks to hold about one page of records, adapting to the density it observes
//! (narrower after a crowded range, wider after a sparse one). Why this is exact without knowing
//! whether GP's `From`/`To` are inclusive: both ends are exclusive, and the next range starts at
//! the highest key *seen* (below the old bound), not at the old bound, so a key equal to a bound
//! lands in the next range. Every key is read once, and the ranges end with an unbounded one.
//!
//! Bounds use only `0-9` and `A-Z`, where byte order and SQL Server's collations agree (GP keys
//! are upper case); a key with other characters is still read (the last range is unbounded and
//! each range starts at the highest key seen), it only makes a range's size less predictable.

use crate::soap::KeyRange;

const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const BASE: u128 = 36;

/// The state of a key-range read.
#[derive(Debug, Clone)]
pub struct KeyRanges {
    /// The highest key seen: the next range's `GreaterThan`.
    cursor: Option<String>,
    /// Every key below this has been asked for: the last range's `LessThan`.
    floor: String,
    /// Bound length in characters, and the bound's step in units of its last character.
    depth: usize,
    span: u128,
    /// Records wanted per range.
    target: usize,
    /// The longest bound used (the key's length: 15 for customers, 21 for documents).
    max_depth: usize,
    /// The shortest bound, and the growth factor after an empty range: see [`KeyRanges::new`].
    min_depth: usize,
    growth: u128,
    done: bool,
    /// Ranges asked so far (for logs and tests).
    pub ranges_read: usize,
}

impl KeyRanges {
    /// A read aiming at `target` records per range, for keys up to `max_depth` characters.
    ///
    /// `sparse` says most ranges will be empty (an incremental read: only changed records
    /// match), so ranges may grow fast and span several leading characters: an empty poll costs
    /// a handful of requests. Otherwise (a full read) a range grows by half as much and never
    /// spans more than one leading character's width: growing blindly through an empty stretch
    /// (`0-9` when keys are names) must not land on a dense one with a huge range.
    pub fn new(target: usize, max_depth: usize, sparse: bool) -> Self {
        let max_depth = max_depth.max(1);
        KeyRanges {
            cursor: None,
            floor: String::new(),
            depth: 2.min(max_depth),
            span: 1,
            target: target.max(1),
            max_depth,
            min_depth: if sparse { 1 } else { 2.min(max_depth) },
            growth: if sparse { 4 } else { 2 },
            done: false,
            ranges_read: 0,
        }
    }

    /// True when the unbounded last range has been read.
    pub fn done(&self) -> bool {
        self.done
    }

    /// The next range to ask for, or `None` when every key has been read.
    pub fn next_range(&self) -> Option<KeyRange> {
        if self.done {
            return None;
        }
        Some(KeyRange { after: self.cursor.clone(), before: self.bound() })
    }

    /// The next `LessThan`: `floor`'s first `depth` characters, moved up by `span` in the last
    /// one; `None` (unbounded) when that passes `ZZ…`.
    fn bound(&self) -> Option<String> {
        let mut digits = vec![0u128; self.depth];
        let bytes = self.floor.as_bytes();
        let mut carry = false;
        for (i, d) in digits.iter_mut().enumerate() {
            let Some(&c) = bytes.get(i) else { break };
            match ALPHABET.iter().position(|&a| a == c) {
                Some(p) => *d = p as u128,
                // Below `0`: `0` is already above it; the rest can stay `0`.
                None if c < b'0' => break,
                // Between `9` and `A`: `A` is above it.
                None if c < b'A' => {
                    *d = 10;
                    break;
                }
                // Above `Z`: everything with this prefix is below the next prefix.
                None => {
                    carry = true;
                    break;
                }
            }
        }
        let mut value = digits.iter().fold(0u128, |v, d| v * BASE + d);
        if carry {
            // Drop the positions from the offending one on, and step the prefix before it.
            let i = bytes.iter().position(|c| !ALPHABET.contains(c)).unwrap_or(0).min(self.depth);
            if i == 0 {
                return None;
            }
            let unit = BASE.pow((self.depth - i) as u32);
            value = (value / unit + 1) * unit;
        }
        value += self.span;
        if value >= BASE.pow(self.depth as u32) {
            return None;
        }
        let mut s = vec![b'0'; self.depth];
        for slot in s.iter_mut().rev() {
            *slot = ALPHABET[(value % BASE) as usize];
            value /= BASE;
        }
        Some(String::from_utf8(s).expect("the alphabet is ASCII"))
    }

    /// Records what the last range (from [`next_range`](Self::next_range)) returned, and sizes the
    /// next one from it.
    pub fn advance(&mut self, range: &KeyRange, keys: &[String]) {
        self.ranges_read += 1;
        if let Some(max) = keys.iter().max()
            && self.cursor.as_ref().is_none_or(|c| max > c)
        {
            self.cursor = Some(max.clone());
        }
        let Some(bound) = &range.before else {
            self.done = true;
            return;
        };
        self.floor = bound.clone();
        let n = keys.len() as u128;
        let target = self.target as u128;
        if n > target {
            if self.span > 1 {
                self.span = (self.span * target / n).max(1);
            } else if self.depth < self.max_depth {
                self.depth += 1;
                self.span = (BASE * target / n).max(1);
            }
        } else if n * 2 < target {
            self.span *= if n == 0 { self.growth } else { 2 };
            while self.span >= BASE && self.depth > self.min_depth {
                self.span /= BASE;
                self.depth -= 1;
            }
            if self.depth == self.min_depth && self.min_depth > 1 {
                self.span = self.span.min(BASE.pow(self.depth as u32 - 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the reader over a sorted key set the way GP would answer (exclusive ends), returning
    /// the keys in the order read and the number of ranges.
    fn read_all(keys: &[&str], target: usize, sparse: bool) -> (Vec<String>, usize, usize) {
        let mut r = KeyRanges::new(target, 15, sparse);
        let mut seen = Vec::new();
        let mut largest = 0;
        while let Some(range) = r.next_range() {
            let hits: Vec<String> = keys
                .iter()
                .filter(|k| range.after.as_deref().is_none_or(|a| **k > a))
                .filter(|k| range.before.as_deref().is_none_or(|b| **k < b))
                .map(|k| k.to_string())
                .collect();
            largest = largest.max(hits.len());
            seen.extend(hits.iter().cloned());
            r.advance(&range, &hits);
            assert!(r.ranges_read < 10_000, "the reader does not end");
        }
        (seen, r.ranges_read, largest)
    }

    /// Customer-like ids (`AARONFIT0001`): a name-ish prefix from a hash, a numeric suffix.
    fn generated(n: usize) -> Vec<String> {
        (0..n as u64)
            .map(|i| {
                let mut h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
                let name: String = (0..8)
                    .map(|_| {
                        h = h.rotate_left(7).wrapping_mul(0x2545_F491_4F6C_DD1D);
                        (b'A' + ((h >> 40) % 26) as u8) as char
                    })
                    .collect();
                format!("{name}{:04}", i % 10_000)
            })
            .collect()
    }

    fn check_exact(mut keys: Vec<String>, target: usize, sparse: bool) -> (usize, usize) {
        keys.sort();
        keys.dedup();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let (mut seen, ranges, largest) = read_all(&refs, target, sparse);
        assert_eq!(seen.len(), keys.len(), "no key twice");
        seen.sort();
        assert_eq!(seen, keys, "every key once");
        (ranges, largest)
    }

    #[test]
    fn every_key_is_read_exactly_once() {
        let mut keys = generated(3000);
        keys.extend(
            ["0", "A", "A0", "AB", "Z", "ZZZZZZZZZZZZZZZ", "a-lower", "~tilde", "!bang", "A-B", "É"].map(String::from),
        );
        let (ranges, largest) = check_exact(keys.clone(), 100, false);
        assert!(largest <= 300, "ranges stay near the target: largest {largest}");
        assert!(ranges < 200, "{ranges} ranges");
        check_exact(keys, 100, true);
    }

    #[test]
    fn clustered_keys_are_read_exactly_once() {
        // Seven long shared prefixes: the worst case for blind bounds (a range may overshoot
        // when it crosses from a gap into a cluster), never for exactness.
        let prefixes = ["AARONFIT", "ADAMPARK", "ADVANCED", "BAKERSEM", "CENTRALC", "MIDWESTS", "ZZTOP"];
        let keys: Vec<String> = (0..2000).map(|i| format!("{}{:04}", prefixes[i % prefixes.len()], i)).collect();
        for sparse in [false, true] {
            let (ranges, _) = check_exact(keys.clone(), 50, sparse);
            assert!(ranges < 400, "{ranges} ranges");
        }
    }

    #[test]
    fn small_and_empty_sets_take_few_requests() {
        // An incremental poll that finds little.
        let (seen, ranges, _) = read_all(&[], 100, true);
        assert!(seen.is_empty());
        assert!(ranges <= 8, "{ranges} ranges for nothing");
        let (seen, ranges, _) = read_all(&["AARONFIT0001", "BAKERSEM0001", "ZZTOP"], 100, true);
        assert_eq!(seen.len(), 3);
        assert!(ranges <= 8, "{ranges} ranges for three keys");
        // A full read of an empty company: about one range per leading character.
        let (_, ranges, _) = read_all(&[], 100, false);
        assert!(ranges <= 45, "{ranges} ranges for a full read of nothing");
    }

    #[test]
    fn bounds_always_move_up() {
        let mut r = KeyRanges::new(1, 15, true);
        let mut last = String::new();
        for floor in ["", "0", "A", "A~", "AZZ", "B!", "Z", "Z~"] {
            r.floor = floor.to_owned();
            for depth in 1..4 {
                r.depth = depth;
                if let Some(b) = r.bound() {
                    assert!(b.as_str() > floor, "bound {b} of floor {floor:?} at depth {depth}");
                    last = b;
                }
            }
        }
        assert!(!last.is_empty());
        r.floor = "ZZ".into();
        r.depth = 2;
        assert_eq!(r.bound(), None);
    }
}
