//! Coordinator configuration, with Kafka's broker defaults.

use std::time::Duration;

/// Configuration of the group coordinator (Kafka broker config names in the field docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets`.
    pub offsets_topic_partitions: i32,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout: Duration,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members.
    pub initial_rebalance_delay: Duration,
    /// `offsets.retention.minutes`: how long the offsets of an empty group are kept.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval: Duration,
    /// `offset.metadata.max.bytes`: longest committed metadata string.
    pub offset_metadata_max_bytes: usize,
    /// How long a member that joined but never completed a rebalance is kept (KIP-394);
    /// Kafka's fixed 5 minutes.
    pub new_member_join_timeout: Duration,
    /// Bytes asked for per read while loading a partition (`offsets.load.buffer.size`).
    pub load_buffer_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            offsets_topic_partitions: 50,
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            initial_rebalance_delay: Duration::from_millis(3_000),
            offsets_retention: Duration::from_secs(7 * 24 * 60 * 60),
            offsets_retention_check_interval: Duration::from_millis(600_000),
            offset_metadata_max_bytes: 4096,
            new_member_join_timeout: Duration::from_millis(300_000),
            load_buffer_size: 5 * 1024 * 1024,
        }
    }
}

/// The same settings in the millisecond integers the state machine computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) min_session_timeout_ms: i64,
    pub(crate) max_session_timeout_ms: i64,
    pub(crate) initial_rebalance_delay_ms: i64,
    pub(crate) new_member_join_timeout_ms: i64,
}

impl From<&GroupConfig> for Timeouts {
    fn from(config: &GroupConfig) -> Self {
        Self {
            min_session_timeout_ms: millis(config.min_session_timeout),
            max_session_timeout_ms: millis(config.max_session_timeout),
            initial_rebalance_delay_ms: millis(config.initial_rebalance_delay),
            new_member_join_timeout_ms: millis(config.new_member_join_timeout),
        }
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// `__consumer_offsets` partition that coordinates `group_id`: Kafka's
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`, with Java's `String.hashCode`
/// over UTF-16 code units, so a client or tool computing it the Kafka way agrees.
pub fn coordinator_partition(group_id: &str, partitions: i32) -> i32 {
    let hash = group_id.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    // Kafka's Utils.abs maps Integer.MIN_VALUE to 0 instead of overflowing.
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::coordinator_partition;

    #[test]
    fn partition_matches_java_string_hash_code() {
        // Values of Java's "...".hashCode(): "" = 0, "a" = 97, "group" = 98629247,
        // "my-group" = -1906497762, "polygenelubricants" = Integer.MIN_VALUE.
        let cases = [
            ("", 50, 0),
            ("a", 50, 97 % 50),
            ("group", 50, 98_629_247 % 50),
            ("my-group", 50, 1_906_497_762 % 50),
            ("polygenelubricants", 50, 0),
            ("my-group", 1, 0),
        ];
        for (group, partitions, expected) in cases {
            assert_eq!(
                coordinator_partition(group, partitions),
                expected,
                "group {group:?}"
            );
        }
    }
}
