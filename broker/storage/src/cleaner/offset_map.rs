//! The cleaner's key -> latest offset map, bounded in bytes (Kafka's `SkimpyOffsetMap`).
//!
//! Keys are not stored: each entry is a 16-byte digest of the key and the offset, 24 bytes in
//! all, in one open-addressing table allocated once. The digest is two SipHash values under
//! independent random keys, so two keys share an entry only with probability about 2^-128
//! per pair, the same bet Kafka makes with MD5. The table is filled to
//! [`OffsetMap::LOAD_FACTOR`] of its slots (`log.cleaner.io.buffer.load.factor`), after which
//! new keys are refused: the pass then cleans up to where the map filled.

use std::hash::{BuildHasher, RandomState};

const EMPTY: i64 = -1;

/// A bounded map from key digests to the latest offset seen for the key.
#[derive(Debug)]
pub struct OffsetMap {
    digests: Vec<u128>,
    offsets: Vec<i64>,
    entries: usize,
    max_entries: usize,
    first_hasher: RandomState,
    second_hasher: RandomState,
}

impl OffsetMap {
    /// Bytes one entry takes: a 16-byte key digest and an 8-byte offset.
    pub const ENTRY_BYTES: usize = 24;

    /// Kafka's default `log.cleaner.io.buffer.load.factor`.
    pub const LOAD_FACTOR: f64 = 0.9;

    /// A map using at most `bytes` of memory (at least two entries).
    pub fn new(bytes: usize) -> OffsetMap {
        let slots = (bytes / Self::ENTRY_BYTES).max(2);
        let max_entries = ((slots as f64 * Self::LOAD_FACTOR) as usize).clamp(1, slots - 1);
        OffsetMap {
            digests: vec![0; slots],
            offsets: vec![EMPTY; slots],
            entries: 0,
            max_entries,
            first_hasher: RandomState::new(),
            second_hasher: RandomState::new(),
        }
    }

    /// Number of slots in the table.
    pub fn slots(&self) -> usize {
        self.offsets.len()
    }

    /// How many keys the map takes before it is full.
    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    /// Keys in the map.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when no key is in the map.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Share of the slots in use (Kafka's buffer utilisation), 0.0 to 1.0.
    pub fn utilization(&self) -> f64 {
        self.entries as f64 / self.slots() as f64
    }

    /// Forgets every key.
    pub fn clear(&mut self) {
        self.offsets.fill(EMPTY);
        self.entries = 0;
    }

    fn digest(&self, key: &[u8]) -> u128 {
        let a = self.first_hasher.hash_one(key);
        let b = self.second_hasher.hash_one(key);
        (u128::from(a) << 64) | u128::from(b)
    }

    /// The slot holding `digest`, or the empty slot where it would go.
    fn slot(&self, digest: u128) -> usize {
        let slots = self.slots();
        // The low half is an independent hash: use it for the start position.
        let mut i = (digest as u64 % slots as u64) as usize;
        loop {
            if self.offsets[i] == EMPTY || self.digests[i] == digest {
                return i;
            }
            i = if i + 1 == slots { 0 } else { i + 1 };
        }
    }

    /// Records `offset` as the latest for `key`. False when the key is new and the map full
    /// (nothing changes then).
    pub fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let digest = self.digest(key);
        let i = self.slot(digest);
        if self.offsets[i] == EMPTY {
            if self.entries >= self.max_entries {
                return false;
            }
            self.entries += 1;
            self.digests[i] = digest;
        }
        self.offsets[i] = self.offsets[i].max(offset);
        true
    }

    /// The latest offset recorded for `key`.
    pub fn get(&self, key: &[u8]) -> Option<i64> {
        let i = self.slot(self.digest(key));
        let offset = self.offsets[i];
        (offset != EMPTY).then_some(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_per_key() {
        let mut map = OffsetMap::new(1024);
        assert!(map.put(b"a", 5));
        assert!(map.put(b"b", 6));
        assert!(map.put(b"a", 9));
        assert_eq!(map.get(b"a"), Some(9));
        assert_eq!(map.get(b"b"), Some(6));
        assert_eq!(map.get(b"c"), None);
        assert_eq!(map.len(), 2);
        map.clear();
        assert_eq!(map.get(b"a"), None);
        assert!(map.is_empty());
    }

    #[test]
    fn refuses_new_keys_when_full_but_updates_known_ones() {
        let mut map = OffsetMap::new(10 * OffsetMap::ENTRY_BYTES);
        assert_eq!(map.slots(), 10);
        assert_eq!(map.max_entries(), 9);
        for i in 0..9u8 {
            assert!(map.put(&[i], i64::from(i)));
        }
        assert!(!map.put(b"new", 100), "full");
        assert_eq!(map.get(b"new"), None);
        assert!(map.put(&[3], 200), "a known key still updates");
        assert_eq!(map.get(&[3]), Some(200));
        for i in 0..9u8 {
            assert!(map.get(&[i]).is_some());
        }
        assert!((map.utilization() - 0.9).abs() < 1e-9);
    }
}
