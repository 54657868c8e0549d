//! The log cleaner's series: Kafka's `LogCleaner` and `LogCleanerManager` gauges under their
//! JMX-exporter names, plus counters of its work that Kafka has no MBean for (`strom_`).

use prometheus::{Gauge, IntCounter, IntGauge, Registry};
use strom_storage::cleaner::CleanerStats;

use super::{catch_up, counter, gauge, registered};

/// The cleaner's families; refreshed from [`CleanerStats`] before each scrape.
#[derive(Debug)]
pub(super) struct CleanerMetrics {
    max_dirty_percent: Gauge,
    time_since_last_run_ms: IntGauge,
    uncleanable_partitions: IntGauge,
    max_clean_time_secs: Gauge,
    max_buffer_utilization_percent: Gauge,
    recopy_percent: Gauge,
    dead_threads: IntGauge,
    runs: IntCounter,
    bytes_read: IntCounter,
    bytes_written: IntCounter,
    records_removed: IntCounter,
}

fn float_gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    match Gauge::new(name, help) {
        Ok(g) => registered(registry, g),
        Err(e) => panic!("metric definition {name} is invalid: {e}"),
    }
}

impl CleanerMetrics {
    pub(super) fn new(r: &Registry) -> CleanerMetrics {
        CleanerMetrics {
            max_dirty_percent: float_gauge(
                r,
                "kafka_log_logcleanermanager_max_dirty_percent",
                "The largest share of uncleaned bytes, in percent, among this broker's compacted logs.",
            ),
            time_since_last_run_ms: gauge(
                r,
                "kafka_log_logcleanermanager_time_since_last_run_ms",
                "Milliseconds since a cleaner thread last looked for a log to clean; grows without bound when the cleaner is stuck or dead.",
            ),
            uncleanable_partitions: gauge(
                r,
                "kafka_log_logcleanermanager_uncleanable_partitions_count",
                "Compacted logs whose cleaning failed with an error and that are no longer cleaned.",
            ),
            max_clean_time_secs: float_gauge(
                r,
                "kafka_log_logcleaner_max_clean_time_secs",
                "The longest of the cleaner threads' last passes, in seconds.",
            ),
            max_buffer_utilization_percent: float_gauge(
                r,
                "kafka_log_logcleaner_max_buffer_utilization_percent",
                "The fullest key map of the cleaner threads' last passes, in percent of its share of log.cleaner.dedupe.buffer.size.",
            ),
            recopy_percent: float_gauge(
                r,
                "kafka_log_logcleaner_cleaner_recopy_percent",
                "Bytes the cleaner wrote as a percentage of the bytes it read, over all its passes.",
            ),
            dead_threads: gauge(
                r,
                "kafka_log_logcleaner_deadthreadcount",
                "Cleaner threads that stopped on an unexpected failure.",
            ),
            runs: counter(
                r,
                "strom_log_cleaner_runs_total",
                "Cleaning passes completed.",
            ),
            bytes_read: counter(
                r,
                "strom_log_cleaner_read_bytes_total",
                "Bytes of log the cleaner read.",
            ),
            bytes_written: counter(
                r,
                "strom_log_cleaner_written_bytes_total",
                "Bytes of cleaned segments the cleaner wrote.",
            ),
            records_removed: counter(
                r,
                "strom_log_cleaner_removed_records_total",
                "Records the cleaner removed: superseded values and expired tombstones.",
            ),
        }
    }

    /// Sets every series from the cleaner's running totals; `now_ms` is the wall clock.
    pub(super) fn set(&self, stats: &CleanerStats, now_ms: i64) {
        self.max_dirty_percent.set(stats.max_dirty_percent);
        self.time_since_last_run_ms
            .set(now_ms.saturating_sub(stats.last_check_ms).max(0));
        self.uncleanable_partitions
            .set(i64::try_from(stats.uncleanable_partitions).unwrap_or(i64::MAX));
        self.max_clean_time_secs
            .set(stats.max_clean_time_ms as f64 / 1000.0);
        self.max_buffer_utilization_percent
            .set(stats.max_buffer_utilization_percent);
        self.recopy_percent.set(if stats.bytes_read == 0 {
            0.0
        } else {
            stats.bytes_written as f64 * 100.0 / stats.bytes_read as f64
        });
        self.dead_threads
            .set(i64::try_from(stats.dead_threads).unwrap_or(i64::MAX));
        catch_up(&self.runs, stats.runs_completed);
        catch_up(&self.bytes_read, stats.bytes_read);
        catch_up(&self.bytes_written, stats.bytes_written);
        catch_up(&self.records_removed, stats.records_removed);
    }
}
