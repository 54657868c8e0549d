//! The statistics that tell a live cleaner from a dead one: the time of the last look for work
//! keeps moving while the threads run with nothing to clean, and a thread that panics is
//! counted as dead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use strom_storage::cleaner::{CleanableLog, CleanerConfig, LogCleaner, LogSource};
use strom_storage::{CleanupPolicy, LogConfig, PartitionLog};

/// A compacted log whose high watermark cannot be read: asking for it panics.
struct Broken {
    log: PartitionLog,
}

impl CleanableLog for Broken {
    fn log(&self) -> &PartitionLog {
        &self.log
    }
    fn cleanable_end(&self) -> i64 {
        panic!("the high watermark of this partition cannot be read");
    }
    fn name(&self) -> String {
        "broken-0".to_owned()
    }
}

fn config() -> CleanerConfig {
    CleanerConfig {
        threads: 1,
        dedupe_buffer_bytes: 1 << 16,
        backoff: Duration::from_millis(10),
        ..CleanerConfig::default()
    }
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_idle_cleaner_keeps_reporting_that_it_looked_for_work() {
    let source: LogSource = Arc::new(Vec::new);
    let cleaner = LogCleaner::start(config(), source);
    let first = cleaner.stats().last_check_ms;
    wait_until("a later look for work", || {
        cleaner.stats().last_check_ms > first
    });
    let stats = cleaner.stats();
    assert_eq!(stats.dead_threads, 0);
    assert_eq!(stats.runs_completed, 0, "nothing was there to clean");
    cleaner.shutdown();
}

#[test]
fn a_thread_that_panics_is_counted_dead() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(
        &dir.path().join("broken-0"),
        LogConfig {
            cleanup_policy: CleanupPolicy {
                delete: false,
                compact: true,
            },
            ..LogConfig::default()
        },
        0,
    )
    .expect("open");
    let broken = Arc::new(Broken { log });
    let source: LogSource = Arc::new(move || vec![Arc::clone(&broken) as Arc<dyn CleanableLog>]);
    let cleaner = LogCleaner::start(config(), source);
    wait_until("the thread to be counted dead", || {
        cleaner.stats().dead_threads == 1
    });
    let looked = cleaner.stats().last_check_ms;
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        cleaner.stats().last_check_ms,
        looked,
        "a dead thread no longer looks for work"
    );
    cleaner.shutdown();
}
