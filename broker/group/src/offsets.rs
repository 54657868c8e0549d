//! Committed offsets of one group.

use std::collections::BTreeMap;

/// A committed offset as the coordinator keeps and persists it (`OffsetCommitValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub(crate) offset: i64,
    pub(crate) leader_epoch: i32,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp: i64,
    /// Offset in `__consumer_offsets` of the record that wrote it: when a transaction commits,
    /// its offsets replace only older records (Kafka orders by log position, so compaction
    /// cannot change which commit is materialized).
    pub(crate) record_offset: i64,
}

/// Offsets by (topic, partition), ordered so responses and lag metrics are stable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct OffsetStore {
    entries: BTreeMap<(String, i32), OffsetEntry>,
}

impl OffsetStore {
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(crate) fn get(&self, topic: &str, partition: i32) -> Option<&OffsetEntry> {
        self.entries.get(&(topic.to_owned(), partition))
    }

    pub(crate) fn put(&mut self, topic: String, partition: i32, entry: OffsetEntry) {
        self.entries.insert((topic, partition), entry);
    }

    /// Stores `entry` unless the partition holds an offset written later in the log.
    pub(crate) fn put_if_newer(&mut self, topic: String, partition: i32, entry: OffsetEntry) {
        match self.entries.get(&(topic.clone(), partition)) {
            Some(current) if current.record_offset > entry.record_offset => {}
            _ => self.put(topic, partition, entry),
        }
    }

    pub(crate) fn remove(&mut self, topic: &str, partition: i32) -> Option<OffsetEntry> {
        self.entries.remove(&(topic.to_owned(), partition))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&(String, i32), &OffsetEntry)> {
        self.entries.iter()
    }

    /// Offsets whose age, measured from `base(entry)`, reached `retention_ms`, skipping topics
    /// for which `keep(topic)` holds.
    pub(crate) fn expired(
        &self,
        now: i64,
        retention_ms: i64,
        base: impl Fn(&OffsetEntry) -> i64,
        keep: impl Fn(&str) -> bool,
    ) -> Vec<(String, i32)> {
        self.entries
            .iter()
            .filter(|((topic, _), entry)| {
                !keep(topic) && now.saturating_sub(base(entry)) >= retention_ms
            })
            .map(|(key, _)| key.clone())
            .collect()
    }
}
