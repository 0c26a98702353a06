//! Distinct ids of a bucket in bounded space: exact id sets while they are small,
//! HyperLogLog registers beyond. The order analytics count customers with it
//! ([`ShardSet`], [`Distinct`]); storefront activity counts sessions and customers
//! ([`crate::activity`]) with the same shards, limits and sketch ([`ShardSetOf`],
//! [`DistinctOf`] over any [`Member`]).
//!
//! A bucket's ids (customers, sessions) are split into [`SHARDS`] by [`crate::shard::shard_of`] (the low
//! bits of the stable hash), one stored item each. A shard keeps its ids exactly up to
//! [`EXACT_LIMIT`]; past that it becomes [`REGISTERS`] one-byte HyperLogLog registers
//! (register = the next 8 bits of the hash, rank = trailing zeros of the remaining 50 + 1).
//! Together the shards' registers are one HyperLogLog of 64 × 256 = 16,384 registers:
//! 1.04 / √16384 ≈ 0.81 % standard error. Both forms merge idempotently (set union,
//! register maximum), so a record applied twice changes nothing, and an item never exceeds
//! 64 ids of ≤ 64 bytes (4 KB) or 256 bytes, whatever ids clients choose.

use crate::ids::{CustomerId, SessionId};
use crate::shard::stable_hash;
use std::collections::{BTreeMap, BTreeSet};

/// An id that can be counted distinctly: its text is what is hashed (shard and register)
/// and stored, so one id always lands in the same shard and register.
pub trait Member: Ord + Clone {
    fn key(&self) -> &str;
    /// The id a stored key spells; `None` when it is not one (stored data is not trusted).
    fn from_key(key: &str) -> Option<Self>;
}

impl Member for CustomerId {
    fn key(&self) -> &str {
        self.as_str()
    }
    fn from_key(key: &str) -> Option<Self> {
        CustomerId::parse(key).ok()
    }
}

impl Member for SessionId {
    fn key(&self) -> &str {
        self.as_str()
    }
    fn from_key(key: &str) -> Option<Self> {
        SessionId::parse(key).ok()
    }
}

/// Shards per bucket (customers, sessions) (a power of two: the shard takes the hash's low bits).
pub const SHARDS: u32 = 64;
/// Ids a shard keeps exactly; one more and it is a sketch.
pub const EXACT_LIMIT: usize = 64;
/// HyperLogLog registers per shard.
pub const REGISTERS: usize = 256;

const SHARD_BITS: u32 = SHARDS.trailing_zeros();
const REGISTER_BITS: u32 = REGISTERS.trailing_zeros();
const _: () = assert!(SHARDS.is_power_of_two() && REGISTERS.is_power_of_two());

/// One shard's HyperLogLog registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers(Vec<u8>);

impl Default for Registers {
    fn default() -> Self {
        Self(vec![0; REGISTERS])
    }
}

impl Registers {
    /// Registers as stored; `None` when `bytes` is not a register array.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (bytes.len() == REGISTERS).then(|| Self(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn insert(&mut self, id: &str) {
        let hash = stable_hash(id) >> SHARD_BITS;
        let register = (hash % REGISTERS as u64) as usize;
        let rest = hash >> REGISTER_BITS;
        let width = 64 - SHARD_BITS - REGISTER_BITS;
        // Trailing zeros of the remaining bits, capped at their width: geometric, p = 1/2.
        let rank = (rest.trailing_zeros().min(width) + 1) as u8;
        self.0[register] = self.0[register].max(rank);
    }

    pub fn merge(&mut self, other: &Registers) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = (*a).max(*b);
        }
    }
}

/// What one shard of a bucket holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardSetOf<T> {
    Exact(BTreeSet<T>),
    Sketch(Registers),
}

/// A shard of a bucket's customers (the order analytics).
pub type ShardSet = ShardSetOf<CustomerId>;

impl<T> Default for ShardSetOf<T> {
    fn default() -> Self {
        ShardSetOf::Exact(BTreeSet::new())
    }
}

impl<T: Member> ShardSetOf<T> {
    /// This shard with `ids` added, in the form it is stored in: exact while it holds at
    /// most [`EXACT_LIMIT`] ids, a sketch after (and forever: a sketch cannot go back).
    pub fn bounded_union<'a>(&self, ids: impl IntoIterator<Item = &'a T>) -> Self
    where
        T: 'a,
    {
        let mut out = self.clone();
        out.union_ids(ids);
        out.into_bounded()
    }

    /// The stored form of this shard (see [`ShardSetOf::bounded_union`]).
    pub fn into_bounded(self) -> Self {
        match self {
            ShardSetOf::Exact(ids) if ids.len() > EXACT_LIMIT => {
                let mut registers = Registers::default();
                for id in &ids {
                    registers.insert(id.key());
                }
                ShardSetOf::Sketch(registers)
            }
            other => other,
        }
    }

    /// Union without a size bound (a report's window, held in memory only).
    pub fn union(&mut self, other: &Self) {
        match other {
            ShardSetOf::Exact(ids) => self.union_ids(ids),
            ShardSetOf::Sketch(theirs) => {
                let mut registers = match self {
                    ShardSetOf::Sketch(ours) => std::mem::take(ours),
                    ShardSetOf::Exact(ids) => {
                        let mut r = Registers::default();
                        for id in ids.iter() {
                            r.insert(id.key());
                        }
                        r
                    }
                };
                registers.merge(theirs);
                *self = ShardSetOf::Sketch(registers);
            }
        }
    }

    fn union_ids<'a>(&mut self, ids: impl IntoIterator<Item = &'a T>)
    where
        T: 'a,
    {
        match self {
            ShardSetOf::Exact(set) => set.extend(ids.into_iter().cloned()),
            ShardSetOf::Sketch(registers) => {
                for id in ids {
                    registers.insert(id.key());
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            ShardSetOf::Exact(ids) => ids.is_empty(),
            ShardSetOf::Sketch(registers) => registers.0.iter().all(|&r| r == 0),
        }
    }
}

/// A distinct count, and whether it is an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub value: u64,
    pub approximate: bool,
}

/// The ids of a bucket (or of a window: the union of its buckets), by shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctOf<T> {
    shards: BTreeMap<u32, ShardSetOf<T>>,
}

/// The customers of a bucket or window (the order analytics).
pub type Distinct = DistinctOf<CustomerId>;

impl<T> Default for DistinctOf<T> {
    fn default() -> Self {
        Self {
            shards: BTreeMap::new(),
        }
    }
}

impl<T: Member> DistinctOf<T> {
    /// Adds what shard `shard` holds.
    pub fn add_shard(&mut self, shard: u32, set: &ShardSetOf<T>) {
        if !set.is_empty() {
            self.shards.entry(shard).or_default().union(set);
        }
    }

    pub fn merge(&mut self, other: &Self) {
        for (shard, set) in &other.shards {
            self.add_shard(*shard, set);
        }
    }

    /// Every shard in its stored form (what a bucket of these customers holds).
    pub fn bounded(&self) -> Self {
        Self {
            shards: self
                .shards
                .iter()
                .map(|(s, set)| (*s, set.clone().into_bounded()))
                .collect(),
        }
    }

    /// What shard `shard` holds (empty when nothing).
    pub fn shard(&self, shard: u32) -> ShardSetOf<T> {
        self.shards.get(&shard).cloned().unwrap_or_default()
    }

    /// Each shard as it is (unbounded: exact sets stay exact).
    pub fn shards(&self) -> impl Iterator<Item = (u32, &ShardSetOf<T>)> {
        self.shards.iter().map(|(s, set)| (*s, set))
    }

    /// Exact ids plus the HyperLogLog estimate of the sketched shards, whose registers
    /// together form one HyperLogLog (linear counting while registers are mostly empty).
    pub fn count(&self) -> Count {
        let mut exact = 0u64;
        let mut registers = 0usize;
        let mut harmonic = 0f64;
        let mut zeros = 0usize;
        for set in self.shards.values() {
            match set {
                ShardSetOf::Exact(ids) => exact += ids.len() as u64,
                ShardSetOf::Sketch(r) => {
                    registers += REGISTERS;
                    for &rank in &r.0 {
                        harmonic += 2f64.powi(-i32::from(rank));
                        zeros += usize::from(rank == 0);
                    }
                }
            }
        }
        if registers == 0 {
            return Count {
                value: exact,
                approximate: false,
            };
        }
        let m = registers as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let raw = alpha * m * m / harmonic;
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        Count {
            value: exact + estimate.round() as u64,
            approximate: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::shard_of;

    fn id(s: &str) -> CustomerId {
        CustomerId::parse(s).unwrap()
    }

    fn distinct_of(ids: impl Iterator<Item = String>) -> Distinct {
        // As the aggregate stores them: per shard, bounded, one id at a time.
        let mut stored: BTreeMap<u32, ShardSet> = BTreeMap::new();
        for s in ids {
            let c = id(&s);
            let set = stored.entry(shard_of(&s, SHARDS)).or_default();
            *set = set.bounded_union([&c]);
        }
        let mut d = Distinct::default();
        for (shard, set) in &stored {
            d.add_shard(*shard, set);
        }
        d
    }

    #[test]
    fn small_sets_are_exact() {
        let d = distinct_of((0..2_000).map(|i| format!("c-{i}")).chain(["c-1".into()]));
        assert!(d.shards().all(|(_, s)| matches!(s, ShardSet::Exact(_))));
        assert_eq!(
            d.count(),
            Count {
                value: 2_000,
                approximate: false
            }
        );
    }

    #[test]
    fn large_sets_are_estimated_within_one_percent_on_average() {
        let mut errors = Vec::new();
        for (n, salt) in [
            (10_000, "a"),
            (100_000, "b"),
            (1_000_000, "c"),
            (300_000, "d"),
        ] {
            let d = distinct_of((0..n).map(|i| format!("{salt}-{i}")));
            let count = d.count();
            assert!(count.approximate);
            let error = (count.value as f64 - n as f64).abs() / n as f64;
            assert!(error < 0.025, "{n}: {} ({error})", count.value); // 3 standard errors
            errors.push(error);
        }
        let mean = errors.iter().sum::<f64>() / errors.len() as f64;
        assert!(mean < 0.01, "{errors:?}");
    }

    #[test]
    fn a_flood_of_one_shard_stays_small_and_counted() {
        // Ids chosen to hash to one shard (what an adversary can do: the hash is public).
        let flood: Vec<String> = (0..400_000)
            .map(|i| format!("x-{i}"))
            .filter(|s| shard_of(s, SHARDS) == 7)
            .collect();
        let d = distinct_of(flood.iter().cloned());
        let (_, set) = d.shards().next().unwrap();
        assert!(matches!(set, ShardSet::Sketch(r) if r.as_bytes().len() == REGISTERS));
        let n = flood.len() as f64;
        let error = (d.count().value as f64 - n).abs() / n;
        // One shard alone is a 256-register sketch: ~6.5 % standard error.
        assert!(error < 0.2, "{} of {n}", d.count().value);
    }

    #[test]
    fn union_is_idempotent_and_order_free() {
        // Large enough that every shard of each is a sketch.
        let a = distinct_of((0..20_000).map(|i| format!("c-{i}")));
        let b = distinct_of((10_000..30_000).map(|i| format!("c-{i}")));
        let small = distinct_of((0..10).map(|i| format!("c-{i}")));
        let mut ab = a.clone();
        ab.merge(&b);
        ab.merge(&small);
        let mut ba = b.clone();
        ba.merge(&small);
        ba.merge(&a);
        ba.merge(&a);
        assert_eq!(ab.count(), ba.count());
        let all = distinct_of((0..30_000).map(|i| format!("c-{i}")));
        assert_eq!(
            ab.count(),
            all.count(),
            "a union of sketches is the sketch of the union"
        );
    }

    #[test]
    fn registers_round_trip_and_reject_other_lengths() {
        let mut r = Registers::default();
        r.insert("c-1");
        assert_eq!(Registers::from_bytes(r.as_bytes()), Some(r));
        assert_eq!(Registers::from_bytes(&[0; 10]), None);
    }
}
