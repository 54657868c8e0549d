//! The cleaner threads: they find the dirty compacted logs and clean them (tombstones too once
//! their delete horizon passes), leave other logs alone, mark a failing log uncleanable without
//! retrying it, and stop promptly.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::keyed::{NOW, assert_compacted, compacted_config, scan, workload, write_all};
use kafka_protocol::records::Compression;
use strom_storage::cleaner::{CleanableLog, CleanerConfig, LogCleaner, LogSource};
use strom_storage::{LogConfig, PartitionLog};

struct Partition {
    name: String,
    log: PartitionLog,
    /// Calls of `cleanable_end`: the cleaner asks it whenever it considers or cleans the log.
    looks: AtomicUsize,
}

impl CleanableLog for Partition {
    fn log(&self) -> &PartitionLog {
        &self.log
    }
    fn cleanable_end(&self) -> i64 {
        self.looks.fetch_add(1, Ordering::SeqCst);
        self.log.log_end_offset()
    }
    fn name(&self) -> String {
        self.name.clone()
    }
}

fn partition(dir: &std::path::Path, name: &str, config: LogConfig) -> Arc<Partition> {
    Arc::new(Partition {
        name: name.to_string(),
        log: PartitionLog::open(&dir.join(name), config, NOW).expect("open"),
        looks: AtomicUsize::new(0),
    })
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

type Partitions = Arc<Mutex<Vec<Arc<Partition>>>>;

fn source_of(logs: Partitions, calls: Arc<AtomicUsize>) -> LogSource {
    Arc::new(move || {
        calls.fetch_add(1, Ordering::SeqCst);
        logs.lock()
            .expect("lock")
            .iter()
            .map(|p| Arc::clone(p) as Arc<dyn CleanableLog>)
            .collect()
    })
}

fn source(logs: Vec<Arc<Partition>>, calls: Arc<AtomicUsize>) -> LogSource {
    source_of(Arc::new(Mutex::new(logs)), calls)
}

fn fast_config() -> CleanerConfig {
    CleanerConfig {
        threads: 2,
        dedupe_buffer_bytes: 1 << 20,
        backoff: Duration::from_millis(20),
        ..CleanerConfig::default()
    }
}

#[test]
fn threads_clean_dirty_compacted_logs_then_their_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (batches, model) = workload(5_000, 300, 10);
    let a = partition(dir.path(), "a-0", compacted_config(16 * 1024));
    let b = partition(dir.path(), "b-0", compacted_config(16 * 1024));
    let kept = partition(
        dir.path(),
        "deleted-0",
        LogConfig {
            segment_ms: 1_000,
            ..common::small_config(16 * 1024)
        },
    );
    for p in [&a, &b] {
        write_all(&p.log, &batches, Compression::Snappy);
    }
    write_all(&kept.log, &batches, Compression::None);
    let kept_size = kept.log.size_bytes();
    let calls = Arc::new(AtomicUsize::new(0));
    let cleaner = LogCleaner::start(
        fast_config(),
        source(
            vec![Arc::clone(&a), Arc::clone(&b), Arc::clone(&kept)],
            calls,
        ),
    );
    for p in [&a, &b] {
        wait_until("the log's tombstones are gone", || {
            let records = scan(&p.log);
            let live = model.values().filter(|v| v.is_some()).count();
            records.len() == live
        });
        assert_compacted(&scan(&p.log), &model, true);
    }
    // A pass counts in the statistics once it returns, just after its swap changed the log.
    wait_until("the passes are counted", || {
        cleaner.stats().runs_completed >= 4
    });
    let stats = cleaner.stats();
    cleaner.shutdown();
    assert!(stats.bytes_read > 0 && stats.bytes_written > 0, "{stats:?}");
    let tombstones = model.values().filter(|v| v.is_none()).count() as u64;
    assert_eq!(
        stats.records_removed,
        2 * (5_000 - 300 + tombstones),
        "superseded records, then tombstones, of both logs: {stats:?}"
    );
    assert!(stats.last_run_end_ms > 0);
    // The last passes only removed tombstones: their maps were empty.
    assert!((0.0..=100.0).contains(&stats.max_buffer_utilization_percent));
    assert_eq!(stats.uncleanable_partitions, 0);
    assert_eq!(
        kept.log.size_bytes(),
        kept_size,
        "a delete-policy log is not cleaned"
    );
}

#[test]
fn a_log_whose_pass_fails_is_marked_uncleanable_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (batches, model) = workload(2_000, 100, 10);
    let bad = partition(dir.path(), "bad-0", compacted_config(16 * 1024));
    let good = partition(dir.path(), "good-0", compacted_config(16 * 1024));
    write_all(&bad.log, &batches, Compression::None);
    // Damage the first segment's second batch length: the pass cannot walk past it.
    let segment = bad.log.dir().join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).expect("read");
    let second = 12 + i32::from_be_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
    bytes[second + 8..second + 12].copy_from_slice(&(-7i32).to_be_bytes());
    std::fs::write(&segment, &bytes).expect("damage");

    let calls = Arc::new(AtomicUsize::new(0));
    let partitions: Partitions = Arc::new(Mutex::new(vec![Arc::clone(&bad), Arc::clone(&good)]));
    let cleaner = LogCleaner::start(
        fast_config(),
        source_of(Arc::clone(&partitions), Arc::clone(&calls)),
    );
    wait_until("the failing log is uncleanable", || {
        cleaner.stats().uncleanable_partitions == 1
    });
    let looks = bad.looks.load(Ordering::SeqCst);
    write_all(&good.log, &batches, Compression::None);
    wait_until("the other log is cleaned", || {
        scan(&good.log).len() == model.len()
    });
    let seen = calls.load(Ordering::SeqCst);
    wait_until("the cleaner looked for work a few more times", || {
        calls.load(Ordering::SeqCst) >= seen + 5
    });
    assert_eq!(
        bad.looks.load(Ordering::SeqCst),
        looks,
        "an uncleanable log is not looked at again"
    );
    let stats = cleaner.stats();
    assert_eq!(stats.uncleanable_partitions, 1);
    assert!(stats.runs_completed >= 1);
    assert_compacted(&scan(&good.log), &model, false);
    // Once the log is gone from the broker, it is forgotten.
    partitions
        .lock()
        .expect("lock")
        .retain(|p| p.name != "bad-0");
    wait_until("the removed log is no longer counted", || {
        cleaner.stats().uncleanable_partitions == 0
    });
}

#[test]
fn a_disabled_cleaner_runs_no_thread() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cleaner = LogCleaner::start(
        CleanerConfig {
            enabled: false,
            ..CleanerConfig::default()
        },
        source(Vec::new(), Arc::clone(&calls)),
    );
    cleaner.shutdown();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn shutdown_wakes_threads_waiting_out_their_backoff() {
    let calls = Arc::new(AtomicUsize::new(0));
    let cleaner = LogCleaner::start(
        CleanerConfig {
            backoff: Duration::from_secs(3_600),
            ..fast_config()
        },
        source(Vec::new(), Arc::clone(&calls)),
    );
    wait_until("both threads looked for work", || {
        calls.load(Ordering::SeqCst) >= 2
    });
    // With nothing to clean both threads now sleep for an hour; shutdown must not wait it out.
    cleaner.shutdown();
}
