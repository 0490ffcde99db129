//! videoroom patch: the hasher of the maps looked up once or more per RTP packet (the send
//! history's indexes, the per-SSRC stream tables of the TWCC sender, the congestion
//! controller, the sender-report interceptor and the NACK responder).
//!
//! Their keys are SSRCs and sequence numbers, a handful of bytes each, and the std default
//! (SipHash-1-3 with random keys) was a visible part of the cost of every packet sent. Entries
//! are only ever inserted for packets and streams this endpoint sends itself, so a remote cannot
//! choose the keys a table holds; what arrives from the network is only looked up. The maps keep
//! their semantics: only the hash function changes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash's step (rustc's hasher): rotate, mix in the word, multiply by an odd constant. The
/// multiplication spreads the small integers into the high bits hashbrown's control bytes use.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IndexHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IndexHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IndexHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.add(u64::from(byte));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// A `HashMap` with [`IndexHasher`].
pub(crate) type IndexMap<K, V> = HashMap<K, V, BuildHasherDefault<IndexHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_distinct_and_findable() {
        let mut map: IndexMap<(u32, u16), u64> = IndexMap::default();
        for ssrc in [0u32, 1, 0xdead_beef] {
            for seq in [0u16, 1, 2, 0x8000, 0xffff] {
                map.insert((ssrc, seq), u64::from(ssrc) << 16 | u64::from(seq));
            }
        }
        assert_eq!(map.len(), 15);
        assert_eq!(map.get(&(1, 0x8000)), Some(&(1 << 16 | 0x8000)));
        assert_eq!(map.get(&(2, 0)), None);
    }
}
