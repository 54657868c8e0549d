//! What the cleaner threads report, for Kafka's `kafka.log:type=LogCleaner` and
//! `LogCleanerManager` metrics (the broker exports them).

/// A snapshot of the cleaner's statistics. Plain numbers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CleanerStats {
    /// Passes completed (aborted passes not counted).
    pub runs_completed: u64,
    /// Passes aborted because the log changed meanwhile.
    pub runs_aborted: u64,
    /// Bytes of log read by all passes.
    pub bytes_read: u64,
    /// Bytes of cleaned segments written by all passes.
    pub bytes_written: u64,
    /// Records removed by all passes.
    pub records_removed: u64,
    /// Kafka's `max-dirty-percent`: the largest dirty ratio, in percent, among the compacted
    /// logs at the last look for work.
    pub max_dirty_percent: f64,
    /// Wall clock (ms since the epoch) when the last pass ended; -1 before the first.
    pub last_run_end_ms: i64,
    /// Wall clock (ms since the epoch) when a thread last looked for a log to clean, as Kafka's
    /// `LogCleanerManager` records it (`time-since-last-run-ms` is now minus this): it keeps
    /// moving while the threads are alive, even with nothing to clean.
    pub last_check_ms: i64,
    /// Kafka's `DeadThreadCount`: cleaner threads that ended on a panic.
    pub dead_threads: usize,
    /// Kafka's `uncleanable-partitions-count`: logs whose pass failed with an error and which
    /// are no longer cleaned.
    pub uncleanable_partitions: usize,
    /// Kafka's `max-clean-time-secs`, in ms: the longest of the threads' last passes.
    pub max_clean_time_ms: u64,
    /// Kafka's `max-buffer-utilization-percent`: the fullest offset map of the threads' last
    /// passes, in percent.
    pub max_buffer_utilization_percent: f64,
}
