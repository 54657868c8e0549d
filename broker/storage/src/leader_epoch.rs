//! The leader-epoch cache: for each leader epoch that wrote to the log, the offset of its first
//! batch (Kafka's `LeaderEpochFileCache`). A follower that changes leader asks the new leader
//! for the end offset of its own latest epoch (OffsetForLeaderEpoch, KIP-101/KIP-279) and
//! truncates whatever it holds beyond that, so a diverged tail never survives a failover.
//!
//! Persisted as Kafka's `leader-epoch-checkpoint` in the partition directory — a version line
//! `0`, the entry count, then one `epoch start_offset` line per entry — replaced atomically
//! (`checkpoint::write_atomically`) whenever an entry is added or removed. On open the file is
//! checked against the log and rebuilt from the batch headers when it is missing, damaged or
//! inconsistent with what recovery left (see [`load`]).

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::checkpoint::{self, TEMP_SUFFIX};
use crate::error::{StorageError, io_err};
use crate::log::{Inner, PartitionLog};
use crate::segment::Segment;

pub(crate) const LEADER_EPOCH_CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
const VERSION: &str = "0";

/// One cache entry: `epoch` wrote its first batch at `start_offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEntry {
    pub(crate) epoch: i32,
    pub(crate) start_offset: i64,
}

/// Entries ordered by epoch; epochs and start offsets both strictly increase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub(crate) fn entries(&self) -> Vec<(i32, i64)> {
        self.entries
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    pub(crate) fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Whether [`LeaderEpochCache::assign`] would change anything (Kafka's `isUpdateNeeded`).
    pub(crate) fn needs_update(&self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        self.entries
            .last()
            .is_none_or(|last| epoch != last.epoch || start_offset < last.start_offset)
    }

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`): a no-op for the latest
    /// epoch at or after its start, and for negative epochs (batches written without one).
    /// Entries that would break monotonicity — an epoch at or above `epoch`, or a start at or
    /// after `start_offset` — are removed first. Returns whether the cache changed.
    pub(crate) fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if !self.needs_update(epoch, start_offset) {
            return false;
        }
        while self
            .entries
            .last()
            .is_some_and(|e| e.epoch >= epoch || e.start_offset >= start_offset)
        {
            let removed = self.entries.pop();
            if let Some(removed) = removed.filter(|r| r.start_offset != start_offset) {
                tracing::warn!(
                    epoch,
                    start_offset,
                    removed_epoch = removed.epoch,
                    removed_start_offset = removed.start_offset,
                    "a new leader epoch entry removed a conflicting one"
                );
            }
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Kafka's `endOffsetFor`: the largest epoch `<=` `requested` and the offset where it
    /// ended (the start of the next cached epoch, or `log_end_offset` for the latest epoch).
    /// `None` stands for Kafka's `(UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET)` = (-1, -1): the
    /// requested epoch is -1, above every cached epoch, or the cache is empty. An epoch below
    /// every cached one answers `(requested, start of the first epoch)`.
    pub(crate) fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> Option<(i32, i64)> {
        if requested == -1 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some((requested, log_end_offset));
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        match self.entries.iter().rev().find(|e| e.epoch <= requested) {
            None => Some((requested, higher.start_offset)),
            Some(floor) => Some((floor.epoch, higher.start_offset)),
        }
    }

    /// Removes the entries starting at or after `end_offset` (the log was truncated there).
    pub(crate) fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// The log now starts at `start_offset`: entries starting at or before it are removed,
    /// except that the last of them stays, moved to `start_offset` (Kafka's
    /// `truncateFromStart`), since its epoch still holds the log's first batch.
    pub(crate) fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let below = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        if below == 0 {
            return false;
        }
        let last_removed = self.entries[below - 1];
        if below == 1 && last_removed.start_offset == start_offset {
            return false;
        }
        self.entries.drain(..below);
        self.entries.insert(
            0,
            EpochEntry {
                epoch: last_removed.epoch,
                start_offset,
            },
        );
        true
    }

    pub(crate) fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// Kafka's text format.
    pub(crate) fn encode(&self) -> String {
        let mut out = format!("{VERSION}\n{}\n", self.entries.len());
        for e in &self.entries {
            out.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
        }
        out
    }

    /// Parses Kafka's text format; the entries must be well formed and strictly increasing.
    pub(crate) fn decode(text: &str) -> Result<Self, String> {
        let mut lines = text.lines();
        match lines.next() {
            Some(VERSION) => {}
            Some(other) => return Err(format!("line 1: version {other:?}, expected \"0\"")),
            None => return Err("the file is empty".to_string()),
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| "line 2: expected the entry count".to_string())?;
        let mut cache = LeaderEpochCache::default();
        for i in 0..count {
            let line_no = i + 3;
            let line = lines
                .next()
                .ok_or_else(|| format!("{count} entries announced, {i} present"))?;
            let mut fields = line.split_whitespace();
            let parsed = match (fields.next(), fields.next(), fields.next()) {
                (Some(epoch), Some(offset), None) => {
                    epoch.parse::<i32>().ok().zip(offset.parse::<i64>().ok())
                }
                _ => None,
            };
            let Some((epoch, start_offset)) = parsed.filter(|&(e, o)| e >= 0 && o >= 0) else {
                return Err(format!(
                    "line {line_no}: expected \"epoch start_offset\", found {line:?}"
                ));
            };
            if let Some(last) = cache.entries.last()
                && (epoch <= last.epoch || start_offset <= last.start_offset)
            {
                return Err(format!(
                    "line {line_no}: entry ({epoch}, {start_offset}) does not follow ({}, {})",
                    last.epoch, last.start_offset
                ));
            }
            cache.entries.push(EpochEntry {
                epoch,
                start_offset,
            });
        }
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(format!("more lines than the {count} entries announced"));
        }
        Ok(cache)
    }
}

impl PartitionLog {
    /// The latest leader epoch that wrote to the log (or was assigned with
    /// [`PartitionLog::assign_epoch_start_offset`]); `None` when no epoch is known.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.inner.lock().epochs.latest_epoch()
    }

    /// The leader-epoch cache: `(epoch, start_offset)` pairs, both strictly increasing.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.inner.lock().epochs.entries()
    }

    /// OffsetForLeaderEpoch, with Kafka's `LeaderEpochFileCache.endOffsetFor` semantics: the
    /// largest cached epoch `<= epoch` and the offset where it ended — the start offset of the
    /// next cached epoch, or the log end offset when `epoch` is the latest. An epoch below
    /// every cached one answers `(epoch, start offset of the first cached epoch)`. `None` means
    /// Kafka's `UNDEFINED_EPOCH` / `UNDEFINED_EPOCH_OFFSET` (-1, -1): `epoch` is -1, above the
    /// latest cached epoch, or no epoch is cached.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        let inner = self.inner.lock();
        inner.epochs.end_offset_for(epoch, inner.log_end_offset)
    }

    /// Records that `epoch` starts at the current log end offset, as a new leader does before
    /// its first append (Kafka's `maybeAssignEpochStartOffset` on becoming leader), so that
    /// OffsetForLeaderEpoch for the previous epoch answers where it ended even before the new
    /// epoch writes. Appends record their epoch themselves; this is a no-op when `epoch` is
    /// already the latest, and negative epochs are ignored.
    pub fn assign_epoch_start_offset(&self, epoch: i32) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        if inner.closed {
            return Err(StorageError::Closed {
                dir: self.dir.clone(),
            });
        }
        let leo = inner.log_end_offset;
        self.assign_epochs(&mut inner, std::iter::once((epoch, leo)))
    }

    /// Assigns `(epoch, start_offset)` pairs in order and persists the cache when it changed.
    /// The file is written before the batches the entries describe, so a crash in between
    /// leaves an entry at the log end (harmless) rather than a batch without its entry.
    pub(crate) fn assign_epochs(
        &self,
        inner: &mut Inner,
        pairs: impl Iterator<Item = (i32, i64)> + Clone,
    ) -> Result<(), StorageError> {
        if !pairs.clone().any(|(e, o)| inner.epochs.needs_update(e, o)) {
            return Ok(());
        }
        self.update_epochs(inner, |cache| {
            let mut changed = false;
            for (epoch, start_offset) in pairs {
                changed |= cache.assign(epoch, start_offset);
            }
            changed
        })
    }

    /// Applies `change` to a copy of the cache; when it reports a change the copy is written
    /// to the checkpoint file and only then replaces the cache.
    pub(crate) fn update_epochs(
        &self,
        inner: &mut Inner,
        change: impl FnOnce(&mut LeaderEpochCache) -> bool,
    ) -> Result<(), StorageError> {
        let mut next = inner.epochs.clone();
        if change(&mut next) {
            write(&self.dir, &next)?;
            inner.epochs = next;
        }
        Ok(())
    }
}

/// Atomically replaces the checkpoint file with `cache`.
pub(crate) fn write(dir: &Path, cache: &LeaderEpochCache) -> Result<(), StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
    let tmp = dir.join(format!("{LEADER_EPOCH_CHECKPOINT_FILE}{TEMP_SUFFIX}"));
    checkpoint::write_atomically(dir, &path, &tmp, cache.encode().as_bytes())
}

/// Loads the cache of a just-recovered log: the checkpoint file when it agrees with the log,
/// otherwise a cache rebuilt from the batch headers (and written back).
///
/// The file is rejected when it is missing or does not parse, when an entry starts beyond the
/// log end offset (recovery cut the data it described), or when the log's last batch carries
/// an epoch above the latest cached one (the entry was lost, e.g. the file was deleted).
/// Entries starting at the log end are then dropped and the first entry is moved up to the log
/// start, as Kafka does on load.
pub(crate) fn load(
    dir: &Path,
    segments: &[Arc<Segment>],
    log_start_offset: i64,
    log_end_offset: i64,
) -> Result<LeaderEpochCache, StorageError> {
    let path = dir.join(LEADER_EPOCH_CHECKPOINT_FILE);
    let from_file = match fs::read_to_string(&path) {
        Ok(text) => LeaderEpochCache::decode(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err("the file is missing".to_string()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err("the file is not text".to_string()),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    let last_batch_epoch = last_batch_epoch(segments)?;
    let checked = from_file.and_then(|cache| {
        if let Some(e) = cache
            .entries
            .iter()
            .find(|e| e.start_offset > log_end_offset)
        {
            return Err(format!(
                "epoch {} starts at {}, beyond the log end offset {log_end_offset}",
                e.epoch, e.start_offset
            ));
        }
        if let Some(epoch) = last_batch_epoch.filter(|&e| e >= 0)
            && cache.latest_epoch().is_none_or(|latest| latest < epoch)
        {
            return Err(format!(
                "the last batch has leader epoch {epoch}, which the file does not hold"
            ));
        }
        Ok(cache)
    });
    let mut cache = match checked {
        Ok(cache) => cache,
        Err(reason) => {
            if last_batch_epoch.is_some() || path.exists() {
                tracing::info!(
                    file = %path.display(),
                    %reason,
                    "rebuilding the leader epoch cache from the log"
                );
            }
            let cache = rebuild(segments)?;
            write(dir, &cache)?;
            cache
        }
    };
    // As Kafka's log loading does: an epoch starting at the log end holds no batch (a leader
    // assigned it before writing, or its batches were lost with a torn tail); it is assigned
    // again when that epoch next writes or leads.
    let from_end = cache.truncate_from_end(log_end_offset);
    if cache.truncate_from_start(log_start_offset) | from_end {
        write(dir, &cache)?;
    }
    Ok(cache)
}

/// The leader epoch of the log's last batch, `None` when the log is empty.
fn last_batch_epoch(segments: &[Arc<Segment>]) -> Result<Option<i32>, StorageError> {
    for segment in segments.iter().rev() {
        let next = segment.next_offset();
        if next <= segment.base_offset() {
            continue;
        }
        if let Some((_, header)) = segment.find_batch(next - 1, segment.size())? {
            return Ok(Some(header.partition_leader_epoch));
        }
    }
    Ok(None)
}

/// A cache built from every batch header of the log.
pub(crate) fn rebuild(segments: &[Arc<Segment>]) -> Result<LeaderEpochCache, StorageError> {
    let mut cache = LeaderEpochCache::default();
    for segment in segments {
        let end = segment.size();
        let mut position = 0;
        while let Some(header) = segment.header_at(position, end)? {
            cache.assign(header.partition_leader_epoch, header.base_offset);
            position += header.size as u64;
        }
    }
    Ok(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requested epoch, expected answer, why.
    type Case = (i32, Option<(i32, i64)>, &'static str);

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(e, o), "assign ({e}, {o})");
        }
        c
    }

    #[test]
    fn end_offset_for_follows_kafka() {
        let c = cache(&[(2, 10), (4, 30), (7, 50)]);
        let leo = 80;
        let cases: &[Case] = &[
            (-1, None, "undefined epoch"),
            (7, Some((7, 80)), "latest epoch ends at the log end"),
            (8, None, "above every cached epoch"),
            (100, None, "far above"),
            (
                4,
                Some((4, 50)),
                "a cached epoch ends where the next starts",
            ),
            (2, Some((2, 30)), "the first cached epoch"),
            (5, Some((4, 50)), "between cached epochs: the floor epoch"),
            (3, Some((2, 30)), "between the first two"),
            (1, Some((1, 10)), "below the first: the first start"),
            (0, Some((0, 10)), "zero, below the first"),
        ];
        for &(requested, want, why) in cases {
            assert_eq!(c.end_offset_for(requested, leo), want, "{why}");
        }
        assert_eq!(LeaderEpochCache::default().end_offset_for(0, 5), None);
        assert_eq!(
            cache(&[(3, 0)]).end_offset_for(3, 5),
            Some((3, 5)),
            "one entry"
        );
        assert_eq!(cache(&[(3, 0)]).end_offset_for(2, 5), Some((2, 0)));
    }

    #[test]
    fn assign_keeps_the_cache_monotonic() {
        let mut c = cache(&[(1, 0), (2, 5)]);
        assert!(!c.assign(2, 9), "same epoch, later offset");
        assert!(!c.assign(-1, 9), "no epoch");
        assert!(c.assign(3, 9));
        assert_eq!(c.entries(), vec![(1, 0), (2, 5), (3, 9)]);
        assert!(c.assign(2, 7), "a lower epoch removes the entries above it");
        assert_eq!(c.entries(), vec![(1, 0), (2, 7)]);
        assert!(
            c.assign(5, 3),
            "an earlier start removes the entries after it"
        );
        assert_eq!(c.entries(), vec![(1, 0), (5, 3)]);
    }

    #[test]
    fn truncation_from_either_end() {
        let mut c = cache(&[(1, 0), (2, 5), (4, 9)]);
        assert!(!c.truncate_from_end(10));
        assert!(c.truncate_from_end(9), "an entry starting at the cut goes");
        assert_eq!(c.entries(), vec![(1, 0), (2, 5)]);
        assert!(!c.truncate_from_start(0));
        assert!(c.truncate_from_start(3));
        assert_eq!(c.entries(), vec![(1, 3), (2, 5)]);
        assert!(c.truncate_from_start(6));
        assert_eq!(c.entries(), vec![(2, 6)]);
        assert!(!c.truncate_from_start(6));
        assert!(c.clear());
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn file_format_round_trip_and_damage() {
        let c = cache(&[(0, 0), (3, 17), (9, 123456789012)]);
        let text = c.encode();
        assert_eq!(text, "0\n3\n0 0\n3 17\n9 123456789012\n");
        assert_eq!(LeaderEpochCache::decode(&text), Ok(c));
        assert_eq!(
            LeaderEpochCache::decode("0\n0\n"),
            Ok(LeaderEpochCache::default())
        );
        for bad in [
            "",
            "1\n0\n",
            "0\n",
            "0\nx\n",
            "0\n2\n1 0\n",
            "0\n1\n1\n",
            "0\n1\n1 0 7\n",
            "0\n1\n-1 0\n",
            "0\n2\n3 5\n2 9\n",
            "0\n2\n3 5\n4 5\n",
            "0\n1\n3 5\n4 9\n",
        ] {
            assert!(LeaderEpochCache::decode(bad).is_err(), "{bad:?} must fail");
        }
    }
}
