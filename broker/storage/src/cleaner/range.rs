//! Which part of a log a cleaning pass may touch, and how dirty it is (Kafka's
//! `LogCleanerManager.cleanableOffsets` and `LogToClean`).
//!
//! The clean part runs from the log start to the first dirty offset (the cleaner checkpoint);
//! the dirty part from there to the first uncleanable offset: the lowest of the active
//! segment's base (never cleaned), the caller's `cleanable_end` (the high watermark) and the
//! base of the first segment holding a record younger than `min.compaction.lag.ms`.

use crate::config::LogConfig;
use crate::error::StorageError;
use crate::log::{LogSnapshot, PartitionLog};

use super::checkpoint;

/// The clean and dirty parts of a log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanableRange {
    /// First offset not yet cleaned.
    pub first_dirty_offset: i64,
    /// The cleaner must not clean at or past this offset.
    pub first_uncleanable_offset: i64,
    /// Bytes of the sealed segments wholly below the first dirty offset.
    pub clean_bytes: u64,
    /// Bytes of the sealed segments from the first dirty offset to the first uncleanable one.
    pub dirty_bytes: u64,
    /// `dirty_bytes / (clean_bytes + dirty_bytes)`, 0 when both are 0.
    pub dirty_ratio: f64,
    /// Timestamp of the first batch of the dirty part, for `max.compaction.lag.ms`.
    pub first_dirty_timestamp: Option<i64>,
    /// Earliest delete horizon of a tombstone kept in the clean part: once passed, a pass
    /// removes it.
    pub earliest_delete_horizon_ms: Option<i64>,
}

impl CleanableRange {
    /// Whether the cleaner should clean the log now: its dirty ratio reached
    /// `min.cleanable.dirty.ratio`, its oldest uncleaned record is older than
    /// `max.compaction.lag.ms`, or a kept tombstone's delete horizon passed.
    pub fn needs_cleaning(&self, config: &LogConfig, now_ms: i64) -> bool {
        let ratio = self.dirty_bytes > 0 && self.dirty_ratio >= config.min_cleanable_dirty_ratio;
        let overdue = self.dirty_bytes > 0
            && self
                .first_dirty_timestamp
                .is_some_and(|ts| now_ms.saturating_sub(ts) > config.max_compaction_lag_ms);
        let horizon = self
            .earliest_delete_horizon_ms
            .is_some_and(|horizon| now_ms >= horizon);
        ratio || overdue || horizon
    }
}

impl PartitionLog {
    /// The clean and dirty parts of the log as the cleaner sees them now (see
    /// [`CleanableRange`]). `cleanable_end` is the offset the cleaner must not clean at or past
    /// (the high watermark).
    pub fn cleanable_range(
        &self,
        cleanable_end: i64,
        now_ms: i64,
    ) -> Result<CleanableRange, StorageError> {
        let config = self.config();
        let snap = self.snapshot.load_full();
        self.cleanable_range_of(&snap, &config, cleanable_end, now_ms)
    }

    pub(crate) fn cleanable_range_of(
        &self,
        snap: &LogSnapshot,
        config: &LogConfig,
        cleanable_end: i64,
        now_ms: i64,
    ) -> Result<CleanableRange, StorageError> {
        let saved = checkpoint::read(&self.dir)?;
        let start = snap.log_start_offset;
        let first_dirty = saved
            .map(|c| c.first_dirty_offset)
            .filter(|o| (start..=snap.log_end_offset).contains(o))
            .unwrap_or(start);
        let segments = &snap.segments;
        let active_base = segments[segments.len() - 1].base_offset();
        let mut uncleanable = active_base.min(cleanable_end.max(start));
        let lag_bound = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
        let mut clean_bytes = 0;
        let mut dirty_bytes = 0;
        let mut first_dirty_timestamp = None;
        for (i, segment) in segments.iter().enumerate().take(segments.len() - 1) {
            if snap.below_start(i) {
                continue;
            }
            let next_base = segments[i + 1].base_offset();
            if next_base <= first_dirty {
                clean_bytes += segment.size();
                continue;
            }
            if segment.base_offset() >= uncleanable {
                break;
            }
            if config.min_compaction_lag_ms > 0 && segment.max_timestamp().0 > lag_bound {
                uncleanable = uncleanable.min(segment.base_offset().max(first_dirty));
                break;
            }
            if first_dirty_timestamp.is_none() {
                first_dirty_timestamp = segment
                    .header_at(0, segment.size())?
                    .map(|h| h.max_timestamp);
            }
            dirty_bytes += segment.size();
        }
        let uncleanable = uncleanable.max(first_dirty);
        let total = clean_bytes + dirty_bytes;
        Ok(CleanableRange {
            first_dirty_offset: first_dirty,
            first_uncleanable_offset: uncleanable,
            clean_bytes,
            dirty_bytes,
            dirty_ratio: if total == 0 {
                0.0
            } else {
                dirty_bytes as f64 / total as f64
            },
            first_dirty_timestamp,
            earliest_delete_horizon_ms: saved.and_then(|c| c.earliest_delete_horizon_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(dirty_ratio: f64, dirty_bytes: u64) -> CleanableRange {
        CleanableRange {
            first_dirty_offset: 0,
            first_uncleanable_offset: 10,
            clean_bytes: 100,
            dirty_bytes,
            dirty_ratio,
            first_dirty_timestamp: Some(1_000),
            earliest_delete_horizon_ms: None,
        }
    }

    #[test]
    fn what_makes_a_log_need_cleaning() {
        let config = LogConfig {
            min_cleanable_dirty_ratio: 0.5,
            max_compaction_lag_ms: 10_000,
            ..LogConfig::default()
        };
        let cases: Vec<(&str, CleanableRange, i64, bool)> = vec![
            ("dirty enough", range(0.5, 100), 2_000, true),
            ("not dirty enough", range(0.4, 60), 2_000, false),
            ("too long uncleaned", range(0.1, 10), 11_001, true),
            ("just within the lag", range(0.1, 10), 11_000, false),
            ("nothing dirty", range(0.0, 0), 1_000_000, false),
            (
                "a kept tombstone's horizon passed",
                CleanableRange {
                    earliest_delete_horizon_ms: Some(5_000),
                    ..range(0.0, 0)
                },
                5_000,
                true,
            ),
            (
                "the horizon not yet",
                CleanableRange {
                    earliest_delete_horizon_ms: Some(5_000),
                    ..range(0.0, 0)
                },
                4_999,
                false,
            ),
        ];
        for (name, r, now, want) in cases {
            assert_eq!(r.needs_cleaning(&config, now), want, "{name}");
        }
    }
}
