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

/// The largest `segment.bytes` accepted: index entries hold file positions as `u32`, and Kafka
/// bounds the setting to an `int`.
pub const MAX_SEGMENT_BYTES: u64 = i32::MAX as u64;

/// Configuration of one partition log. Field names follow Kafka's topic configs.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
    }
}

impl LogConfig {
    /// `segment_bytes` bounded to what the `u32` index positions can address.
    pub fn effective_segment_bytes(&self) -> u64 {
        self.segment_bytes.clamp(1, MAX_SEGMENT_BYTES)
    }
}
