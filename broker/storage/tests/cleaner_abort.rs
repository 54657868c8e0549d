//! A log closed, truncated or trimmed while a cleaning pass runs: the pass aborts, removes its
//! files, and nothing is lost.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::keyed::{KeyedRecord, NOW, compacted_config, read_compacted, scan, write_all};
use kafka_protocol::records::Compression;
use strom_storage::cleaner::{CleanOutcome, OffsetMap, Throttle};
use strom_storage::{PartitionLog, StorageError};

fn files_with(dir: &Path, suffix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(suffix))
        .collect()
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A log of distinct keys (nothing to remove, so every record must stay) and a pass running
/// on it, slowed by the throttle; returns once the pass is writing a cleaned segment.
fn slow_pass(
    dir: &Path,
) -> (
    Arc<PartitionLog>,
    std::thread::JoinHandle<Result<CleanOutcome, StorageError>>,
) {
    let log = Arc::new(PartitionLog::open(dir, compacted_config(16 * 1024), NOW).expect("open"));
    let batches: Vec<Vec<KeyedRecord>> = (0..500)
        .map(|b| {
            (0..10)
                .map(|i| {
                    (
                        format!("key-{b}-{i}"),
                        Some(format!("value-{b}-{i}-{}", "x".repeat(100))),
                    )
                })
                .collect()
        })
        .collect();
    write_all(&log, &batches, Compression::None);
    let pass = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut map = OffsetMap::new(1 << 20);
            let end = log.log_end_offset();
            log.clean(end, NOW + 20_000, &mut map, &Throttle::new(400_000.0))
        })
    };
    wait_until("the pass writes a cleaned segment", || {
        !files_with(dir, ".cleaned").is_empty()
    });
    (log, pass)
}

fn assert_aborted(result: Result<CleanOutcome, StorageError>, dir: &Path) {
    assert!(
        matches!(result, Err(StorageError::CleaningAborted { .. })),
        "the pass aborts: {result:?}"
    );
    assert!(
        files_with(dir, ".cleaned").is_empty(),
        "its files are removed"
    );
    assert!(files_with(dir, ".swap").is_empty());
}

#[test]
fn truncation_during_a_pass_aborts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, pass) = slow_pass(dir.path());
    let expected: Vec<_> = scan(&log).into_iter().filter(|r| r.0 < 1_234).collect();
    log.truncate_to(1_234).expect("truncate");
    assert_aborted(pass.join().expect("pass thread"), dir.path());
    assert!(
        scan(&log) == expected,
        "every record below the truncation point is there"
    );
    assert_eq!(log.log_end_offset(), 1_234);
    drop(log);
    let log = PartitionLog::open(dir.path(), compacted_config(16 * 1024), NOW).expect("reopen");
    assert!(scan(&log) == expected, "and after a restart");
}

#[test]
fn closing_during_a_pass_aborts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, pass) = slow_pass(dir.path());
    log.close().expect("close");
    let expected = read_compacted(&log);
    assert_aborted(pass.join().expect("pass thread"), dir.path());
    drop(log);
    let log = PartitionLog::open(dir.path(), compacted_config(16 * 1024), NOW).expect("reopen");
    assert!(read_compacted(&log) == expected, "the log is as it was");
    assert_eq!(scan(&log).len(), 5_000, "every record is there");
}

#[test]
fn trimming_during_a_pass_aborts_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, pass) = slow_pass(dir.path());
    let expected: Vec<_> = scan(&log).into_iter().filter(|r| r.0 >= 2_000).collect();
    log.delete_records_before(2_000).expect("delete records");
    assert_aborted(pass.join().expect("pass thread"), dir.path());
    assert!(
        scan(&log) == expected,
        "every record from the new log start is there"
    );
}
