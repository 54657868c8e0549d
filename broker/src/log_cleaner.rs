//! The log cleaner of compacted topics on this broker: `strom-storage`'s [`LogCleaner`] threads
//! over every hosted replica, leader or follower (each replica compacts its own log, as in
//! Kafka), never past the partition's high watermark, so that nothing a truncation could still
//! remove is compacted.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_storage::PartitionLog;
use strom_storage::cleaner::{CleanableLog, CleanerConfig, CleanerStats, LogCleaner};

use crate::config::BrokerProps;
use crate::replica::{Partition, ReplicaManager};

impl CleanableLog for Partition {
    fn log(&self) -> &PartitionLog {
        Partition::log(self)
    }

    fn cleanable_end(&self) -> i64 {
        self.high_watermark()
    }

    fn name(&self) -> String {
        format!("{}-{}", self.topic, self.index)
    }
}

/// The cleaner threads, stopped before the logs close.
#[derive(Debug, Default)]
pub struct Cleaner {
    running: Mutex<Option<LogCleaner>>,
}

impl Cleaner {
    /// Starts `log.cleaner.threads` threads unless `log.cleaner.enable` is false.
    pub fn start(props: &BrokerProps, replicas: Arc<ReplicaManager>) -> Cleaner {
        if !props.log_cleaner_enable {
            return Cleaner::default();
        }
        let config = cleaner_config(props);
        let source = Arc::new(move || {
            replicas
                .all_partitions()
                .into_iter()
                .map(|partition| partition as Arc<dyn CleanableLog>)
                .collect()
        });
        Cleaner {
            running: Mutex::new(Some(LogCleaner::start(config, source))),
        }
    }

    /// What the cleaner threads have done so far; `None` when the cleaner is disabled.
    pub fn stats(&self) -> Option<CleanerStats> {
        self.running.lock().as_ref().map(LogCleaner::stats)
    }

    /// Stops the threads and waits for them; a pass in progress is abandoned, its files removed.
    pub async fn stop(&self) {
        let Some(cleaner) = self.running.lock().take() else {
            return;
        };
        if let Err(error) = tokio::task::spawn_blocking(move || cleaner.shutdown()).await {
            tracing::error!(%error, "stopping the log cleaner");
        }
    }
}

/// The broker's `log.cleaner.*` keys as the storage layer's settings.
fn cleaner_config(props: &BrokerProps) -> CleanerConfig {
    CleanerConfig {
        threads: usize::try_from(props.log_cleaner_threads)
            .unwrap_or(1)
            .max(1),
        dedupe_buffer_bytes: usize::try_from(props.log_cleaner_dedupe_buffer_size)
            .unwrap_or(usize::MAX),
        io_max_bytes_per_second: props.log_cleaner_io_max_bytes_per_second,
        backoff: Duration::from_millis(u64::try_from(props.log_cleaner_backoff_ms).unwrap_or(0)),
        enabled: props.log_cleaner_enable,
    }
}
