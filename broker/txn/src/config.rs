//! Coordinator configuration, with Kafka's broker defaults.

use std::time::Duration;

/// Configuration of the transaction coordinator (Kafka broker config names in the field docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state`.
    pub transaction_state_partitions: i32,
    /// `transaction.max.timeout.ms`: longest transaction timeout a producer may ask for.
    pub max_transaction_timeout: Duration,
    /// `transactional.id.expiration.ms`: how long an idle transactional id is kept.
    pub transactional_id_expiration: Duration,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_timed_out_check_interval: Duration,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`.
    pub remove_expired_check_interval: Duration,
    /// `offsets.topic.num.partitions`: AddOffsetsToTxn adds the group's partition of
    /// `__consumer_offsets`, found by hashing onto this many partitions.
    pub offsets_topic_partitions: i32,
    /// First wait before markers are sent again to partitions that could not take them;
    /// doubled up to [`TxnConfig::marker_retry_backoff_max`].
    pub marker_retry_backoff: Duration,
    /// Longest wait between marker retries.
    pub marker_retry_backoff_max: Duration,
    /// Bytes asked for per read while loading a partition (`transaction.state.log.load.buffer.size`).
    pub load_buffer_size: usize,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            transaction_state_partitions: 50,
            max_transaction_timeout: Duration::from_millis(900_000),
            transactional_id_expiration: Duration::from_millis(604_800_000),
            abort_timed_out_check_interval: Duration::from_millis(10_000),
            remove_expired_check_interval: Duration::from_millis(3_600_000),
            offsets_topic_partitions: 50,
            marker_retry_backoff: Duration::from_millis(100),
            marker_retry_backoff_max: Duration::from_millis(5_000),
            load_buffer_size: 5 * 1024 * 1024,
        }
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
