//! `cleanup.policy`: time and size retention only run with `delete`.

mod common;

use common::{Spec, batch, small_config};
use strom_storage::{CleanupPolicy, PartitionLog};

fn log_with(policy: CleanupPolicy, dir: &std::path::Path) -> PartitionLog {
    let config = strom_storage::LogConfig {
        retention_ms: 10,
        retention_bytes: 1,
        cleanup_policy: policy,
        ..small_config(1024)
    };
    let log = PartitionLog::open(dir, config, 1_000).expect("open");
    for tag in 0..10u8 {
        log.append(&batch(&Spec::new(2, 200).ts(1_000).tag(tag)), 0, 1_000)
            .expect("append");
    }
    assert!(log.segment_count() > 2);
    log
}

#[test]
fn compact_only_keeps_expired_and_oversized_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_with(
        CleanupPolicy {
            delete: false,
            compact: true,
        },
        dir.path(),
    );
    let before = (log.segment_count(), log.size_bytes());
    let outcome = log.apply_retention(1_000_000).expect("retention");
    assert_eq!(outcome.deleted_segments, 0);
    assert_eq!((log.segment_count(), log.size_bytes()), before);
    assert_eq!(log.log_start_offset(), 0);
    // DeleteRecords works whatever the policy.
    assert_eq!(log.delete_records_before(6).expect("delete records"), 6);
}

#[test]
fn compact_and_delete_applies_retention() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = log_with(
        CleanupPolicy {
            delete: true,
            compact: true,
        },
        dir.path(),
    );
    let outcome = log.apply_retention(1_000_000).expect("retention");
    assert!(outcome.deleted_segments > 0);
    assert!(log.log_start_offset() > 0);
}

#[test]
fn max_compaction_lag_rolls_the_active_segment_of_a_compacted_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = strom_storage::LogConfig {
        segment_ms: 1_000_000,
        max_compaction_lag_ms: 500,
        cleanup_policy: CleanupPolicy {
            delete: false,
            compact: true,
        },
        ..small_config(1 << 20)
    };
    let log = PartitionLog::open(dir.path(), config.clone(), 1_000).expect("open");
    log.append(&batch(&Spec::new(1, 10)), 0, 1_000)
        .expect("append");
    assert!(!log.maybe_roll(1_400).expect("roll check"));
    assert!(
        log.maybe_roll(1_500).expect("roll check"),
        "records in the active segment cannot be cleaned, so it rolls within the lag"
    );
    // Without compaction the lag does not apply.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = strom_storage::LogConfig {
        cleanup_policy: CleanupPolicy::default(),
        ..config
    };
    let log = PartitionLog::open(dir.path(), config, 1_000).expect("open");
    log.append(&batch(&Spec::new(1, 10)), 0, 1_000)
        .expect("append");
    assert!(!log.maybe_roll(1_500).expect("roll check"));
}
