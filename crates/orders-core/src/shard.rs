//! The one stable hash of the system: which shard an id lands in (index shards, analytics
//! items) and, for distinct counts, which sketch register it sets.

/// FNV-1a (64-bit) with murmur3's finalizer: stable across processes and releases (unlike
/// `std`'s seeded hasher), and every output bit depends on every input bit, so the low bits
/// choose a shard and the next ones a register independently.
pub fn stable_hash(key: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

/// The shard of `key` among `shards` (fixed for the life of what is stored with it).
pub fn shard_of(key: &str, shards: u32) -> u32 {
    // The remainder is below `shards`, a u32.
    (stable_hash(key) % u64::from(shards)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("c-1", 64), shard_of("c-1", 64));
        for shards in [16u32, 64] {
            let mut counts = vec![0u32; shards as usize];
            let n = 1_000 * shards;
            for i in 0..n {
                counts[shard_of(&format!("cust-{i}"), shards) as usize] += 1;
            }
            assert!(
                counts.iter().all(|&c| (850..1150).contains(&c)),
                "{shards}: {counts:?}"
            );
        }
    }

    #[test]
    fn high_bits_do_not_follow_the_shard() {
        // Ids of one shard must still spread over the bits above the shard's.
        let mut above = [0u32; 16];
        let mut n = 0;
        for i in 0..640_000 {
            let h = stable_hash(&format!("id-{i}"));
            if h % 64 == 5 {
                above[((h >> 6) % 16) as usize] += 1;
                n += 1;
            }
        }
        let expected = n / 16;
        assert!(
            above
                .iter()
                .all(|&c| c > expected * 8 / 10 && c < expected * 12 / 10),
            "{above:?}"
        );
    }
}
