//! Transactional offsets of a group that are written but not yet committed or aborted.
//!
//! A TxnOffsetCommit writes its offsets to `__consumer_offsets` inside the producer's
//! transaction; they become the group's committed offsets only when the transaction's COMMIT
//! marker lands on that partition, and vanish on ABORT (Kafka's
//! `pendingTransactionalOffsetCommits`). Until then OffsetFetch does not show them, and with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT for their partitions.

use std::collections::BTreeMap;

use crate::offsets::OffsetEntry;

/// Pending offsets by producer id, then by (topic, partition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PendingOffsets {
    by_producer: BTreeMap<i64, BTreeMap<(String, i32), OffsetEntry>>,
}

impl PendingOffsets {
    pub(crate) fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// Records `entry` as `producer_id`'s pending offset of the partition (a later write of the
    /// same transaction replaces an earlier one, as the log replays them).
    pub(crate) fn put(
        &mut self,
        producer_id: i64,
        topic: String,
        partition: i32,
        entry: OffsetEntry,
    ) {
        self.by_producer
            .entry(producer_id)
            .or_default()
            .insert((topic, partition), entry);
    }

    /// Ends `producer_id`'s transaction for this group: its pending offsets, if any.
    pub(crate) fn take(
        &mut self,
        producer_id: i64,
    ) -> Option<BTreeMap<(String, i32), OffsetEntry>> {
        self.by_producer.remove(&producer_id)
    }

    pub(crate) fn has_producer(&self, producer_id: i64) -> bool {
        self.by_producer.contains_key(&producer_id)
    }

    /// Whether any open transaction holds an offset of the partition.
    pub(crate) fn has_partition(&self, topic: &str, partition: i32) -> bool {
        let key = (topic.to_owned(), partition);
        self.by_producer.values().any(|o| o.contains_key(&key))
    }

    /// Drops every pending offset of the partition (its offset was tombstoned: deleted).
    pub(crate) fn remove_partition(&mut self, topic: &str, partition: i32) {
        let key = (topic.to_owned(), partition);
        for offsets in self.by_producer.values_mut() {
            offsets.remove(&key);
        }
        self.by_producer.retain(|_, offsets| !offsets.is_empty());
    }

    /// Every partition some open transaction holds an offset of, each once, ordered.
    pub(crate) fn partitions(&self) -> Vec<(String, i32)> {
        let mut out: Vec<(String, i32)> = self
            .by_producer
            .values()
            .flat_map(|o| o.keys().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
