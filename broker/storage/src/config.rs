//! Per-partition log configuration, named after Kafka's topic configs.

/// `message.timestamp.type`: which clock the batches' timestamps come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampType {
    /// Keep the producer's timestamps (`CreateTime`, Kafka's default).
    #[default]
    CreateTime,
    /// Overwrite every batch's timestamp with the broker's clock when appended.
    LogAppendTime,
}

/// `cleanup.policy`: what removes old data from the log. Kafka accepts `delete`, `compact` and
/// both (`compact,delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: `retention.ms` and `retention.bytes` remove whole old segments.
    pub delete: bool,
    /// `compact`: the log cleaner keeps only the latest record of each key.
    pub compact: bool,
}

impl Default for CleanupPolicy {
    /// Kafka's default, `delete`.
    fn default() -> Self {
        CleanupPolicy {
            delete: true,
            compact: false,
        }
    }
}

impl CleanupPolicy {
    /// Parses Kafka's value: a comma-separated list of `delete` and `compact` (e.g.
    /// `compact,delete`); `None` for anything else.
    pub fn parse(value: &str) -> Option<CleanupPolicy> {
        let mut policy = CleanupPolicy {
            delete: false,
            compact: false,
        };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        Some(policy)
    }

    /// Kafka's spelling: `delete`, `compact` or `compact,delete`.
    pub fn as_kafka_str(&self) -> &'static str {
        match (self.compact, self.delete) {
            (true, true) => "compact,delete",
            (true, false) => "compact",
            _ => "delete",
        }
    }
}

/// `compression.type`: the codec batches are stored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionType {
    /// Keep the codec the producer chose (Kafka's default).
    #[default]
    Producer,
    /// Store batches uncompressed.
    Uncompressed,
    /// gzip.
    Gzip,
    /// snappy (xerial framing, as Kafka's clients write it).
    Snappy,
    /// lz4 (the LZ4 frame format).
    Lz4,
    /// zstd.
    Zstd,
}

impl CompressionType {
    /// Parses Kafka's value (`producer`, `uncompressed`, `gzip`, `snappy`, `lz4`, `zstd`).
    pub fn parse(value: &str) -> Option<CompressionType> {
        Some(match value {
            "producer" => CompressionType::Producer,
            "uncompressed" => CompressionType::Uncompressed,
            "gzip" => CompressionType::Gzip,
            "snappy" => CompressionType::Snappy,
            "lz4" => CompressionType::Lz4,
            "zstd" => CompressionType::Zstd,
            _ => return None,
        })
    }

    /// Kafka's spelling of the value.
    pub fn as_kafka_str(self) -> &'static str {
        match self {
            CompressionType::Producer => "producer",
            CompressionType::Uncompressed => "uncompressed",
            CompressionType::Gzip => "gzip",
            CompressionType::Snappy => "snappy",
            CompressionType::Lz4 => "lz4",
            CompressionType::Zstd => "zstd",
        }
    }

    /// The codec the broker stores batches in, or `None` for `producer` (keep the client's).
    pub fn codec(self) -> Option<crate::records::Codec> {
        use crate::records::Codec;
        match self {
            CompressionType::Producer => None,
            CompressionType::Uncompressed => Some(Codec::None),
            CompressionType::Gzip => Some(Codec::Gzip),
            CompressionType::Snappy => Some(Codec::Snappy),
            CompressionType::Lz4 => Some(Codec::Lz4),
            CompressionType::Zstd => Some(Codec::Zstd),
        }
    }
}

/// The largest `segment.bytes` accepted: index entries hold file positions as `u32`, and Kafka
/// bounds the setting to an `int`.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Configuration of one partition log. Field names follow Kafka's topic configs.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before the active one would exceed this size.
    /// Values above [`MAX_SEGMENT_BYTES`] are treated as that.
    pub segment_bytes: u64,
    /// `segment.ms`: roll when the active segment is older than this (its first append).
    pub segment_ms: i64,
    /// `retention.bytes`: keep at most this many bytes (whole segments); -1 = unlimited.
    pub retention_bytes: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older than this; -1 = unlimited.
    pub retention_ms: i64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `index.interval.bytes`: bytes of log between two sparse index entries.
    pub index_interval_bytes: usize,
    /// `flush.messages`: fdatasync after this many records; `u64::MAX` = never by count.
    pub flush_messages: u64,
    /// `flush.ms`: fdatasync when the last flush is older than this; `i64::MAX` = never.
    pub flush_ms: i64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms`: with `CreateTime`, the furthest a record timestamp may
    /// lie before the broker's clock.
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: with `CreateTime`, the furthest a record timestamp may
    /// lie after the broker's clock.
    pub message_timestamp_after_max_ms: i64,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long a tombstone stays in a compacted log after the cleaner
    /// first saw it, so consumers reading from the start see the delete.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a log whose oldest uncleaned record is older than this is
    /// cleaned whatever its dirty ratio; it also bounds the active segment's age.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of uncleaned bytes that makes a log worth cleaning.
    pub min_cleanable_dirty_ratio: f64,
    /// `compression.type`.
    pub compression_type: CompressionType,
    /// `file.delete.delay.ms`: how long the files of a segment removed from the log (retention,
    /// DeleteRecords, cleaning, truncation) stay on disk under a `.deleted` name, so readers
    /// that started before can finish; 0 deletes them at once.
    pub file_delete_delay_ms: i64,
}

/// Kafka's default `message.timestamp.before.max.ms` (KIP-937): no limit.
pub const DEFAULT_TIMESTAMP_BEFORE_MAX_MS: i64 = i64::MAX;
/// Kafka's default `message.timestamp.after.max.ms`: one hour (since Kafka 4.0, KIP-1030).
pub const DEFAULT_TIMESTAMP_AFTER_MAX_MS: i64 = 3_600_000;

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_bytes: -1,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            flush_messages: u64::MAX,
            flush_ms: i64::MAX,
            message_timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
            message_timestamp_after_max_ms: DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            cleanup_policy: CleanupPolicy::default(),
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            compression_type: CompressionType::Producer,
            file_delete_delay_ms: 60_000,
        }
    }
}

impl LogConfig {
    /// `segment_bytes` bounded to what the `u32` index positions can address.
    pub fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }

    /// The age at which the active segment rolls: `segment.ms`, and on a compacted log also
    /// `max.compaction.lag.ms` (records in the active segment cannot be cleaned, so Kafka rolls
    /// it in time for the lag to hold).
    pub fn effective_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compact && self.max_compaction_lag_ms > 0 {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_values_parse_and_print() {
        for (text, delete, compact) in [
            ("delete", true, false),
            ("compact", false, true),
            ("compact,delete", true, true),
            ("delete, compact", true, true),
        ] {
            let p = CleanupPolicy::parse(text).expect(text);
            assert_eq!((p.delete, p.compact), (delete, compact), "{text}");
            assert_eq!(CleanupPolicy::parse(p.as_kafka_str()), Some(p));
        }
        assert_eq!(CleanupPolicy::parse("compacted"), None);
        assert_eq!(CleanupPolicy::parse(""), None);
        for t in [
            CompressionType::Producer,
            CompressionType::Uncompressed,
            CompressionType::Gzip,
            CompressionType::Snappy,
            CompressionType::Lz4,
            CompressionType::Zstd,
        ] {
            assert_eq!(CompressionType::parse(t.as_kafka_str()), Some(t));
        }
        assert_eq!(
            CompressionType::parse("none"),
            None,
            "Kafka's topic value is uncompressed"
        );
    }
}
