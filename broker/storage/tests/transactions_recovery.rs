//! Transaction state across the life of a log: close and reopen, crash recovery (snapshots
//! and `.txnindex` files lost, a torn tail), truncation, a missing `.txnindex` of an older
//! segment, and followers, whose producer state and `.txnindex` files match the leader's.

mod common;

use std::fs;
use std::path::Path;

use common::small_config;
use common::txn::{NOW, TxnView, end_txn, producer_batch, txn_append, txn_index_files, view};
use strom_storage::{AbortedTxn, OpenTxn, PartitionLog};

const SEGMENT_BYTES: u64 = 500;

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, small_config(SEGMENT_BYTES), NOW).expect("open")
}

/// Several producers over several segments: producer 1 aborts, 2 commits, 3 aborts with
/// producer 4 open across it, 5 stays open; plain data in between.
fn workload(log: &PartitionLog) {
    txn_append(log, 1, 0, 2);
    txn_append(log, 2, 0, 1);
    log.append(&producer_batch(-1, -1, -1, 3, false), 0, NOW)
        .expect("plain");
    txn_append(log, 1, 2, 1);
    end_txn(log, 1, false);
    end_txn(log, 2, true);
    txn_append(log, 4, 0, 2);
    txn_append(log, 3, 0, 2);
    end_txn(log, 3, false);
    log.append(&producer_batch(-1, -1, -1, 2, false), 0, NOW)
        .expect("plain");
    txn_append(log, 5, 0, 1);
    txn_append(log, 4, 2, 1);
}

fn names(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

fn expected_view(log: &PartitionLog) -> TxnView {
    let v = view(log);
    assert_eq!(
        v.open.iter().map(|t| t.producer_id).collect::<Vec<_>>(),
        vec![4, 5],
        "{v:?}"
    );
    assert_eq!(
        v.aborted.iter().map(|t| t.producer_id).collect::<Vec<_>>(),
        vec![1, 3]
    );
    v
}

#[test]
fn the_transaction_state_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    workload(&log);
    assert!(log.segment_count() > 2, "{} segments", log.segment_count());
    let before = expected_view(&log);
    let files = txn_index_files(dir.path());
    log.close().expect("close");
    drop(log);
    let log = open(dir.path());
    assert_eq!(view(&log), before);
    assert_eq!(txn_index_files(dir.path()), files);
    // Transactions go on after the restart.
    end_txn(&log, 4, false);
    let v = view(&log);
    assert_eq!(v.open, vec![before.open[1]]);
    assert_eq!(v.aborted.last().map(|t| t.producer_id), Some(4));
}

#[test]
fn crash_recovery_rebuilds_the_producer_state_and_the_txnindex() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    workload(&log);
    let before = expected_view(&log);
    let files = txn_index_files(dir.path());
    drop(log);
    // The crash lost every snapshot and .txnindex, and tore the last batch written.
    for path in names(dir.path(), ".snapshot")
        .into_iter()
        .chain(names(dir.path(), ".txnindex"))
    {
        fs::remove_file(path).expect("remove");
    }
    let last = names(dir.path(), ".log").pop().expect("a segment");
    let mut bytes = fs::read(&last).expect("read");
    bytes.extend_from_slice(&producer_batch(4, 0, 3, 1, true)[..40]);
    fs::write(&last, bytes).expect("tear the tail");

    let log = open(dir.path());
    assert_eq!(view(&log), before);
    assert_eq!(txn_index_files(dir.path()), files, "byte for byte");
}

#[test]
fn a_missing_txnindex_of_an_older_segment_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    workload(&log);
    let before = expected_view(&log);
    let files = txn_index_files(dir.path());
    log.close().expect("close");
    drop(log);
    let with_entries: Vec<_> = files
        .iter()
        .filter(|(_, bytes)| !bytes.is_empty())
        .map(|(name, _)| dir.path().join(name))
        .collect();
    assert!(!with_entries.is_empty());
    for path in &with_entries {
        fs::remove_file(path).expect("remove");
    }
    let log = open(dir.path());
    assert_eq!(view(&log), before);
    assert_eq!(txn_index_files(dir.path()), files);
}

#[test]
fn truncation_removes_entries_past_the_cut_and_reopens_the_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    txn_append(&log, 1, 0, 2); // 0..=1
    txn_append(&log, 2, 0, 2); // 2..=3
    end_txn(&log, 2, false); // 4
    let abort = end_txn(&log, 1, false).first_offset; // 5
    txn_append(&log, 3, 0, 1); // 6
    assert_eq!(log.aborted_transaction_index().expect("index").len(), 2);
    log.truncate_to(abort).expect("truncate");
    assert_eq!(log.log_end_offset(), abort);
    assert_eq!(
        log.aborted_transaction_index().expect("index"),
        vec![AbortedTxn {
            producer_id: 2,
            first_offset: 2,
            last_offset: 4,
            last_stable_offset: 0
        }]
    );
    assert_eq!(
        log.open_transactions(),
        vec![OpenTxn {
            producer_id: 1,
            producer_epoch: 0,
            first_offset: 0,
            last_timestamp: NOW
        }],
        "the marker cut off leaves its transaction open"
    );
    assert_eq!(log.last_stable_offset(abort), 0);
    log.close().expect("close");
    drop(log);
    let log = open(dir.path());
    assert_eq!(log.aborted_transaction_index().expect("index").len(), 1);
    assert_eq!(log.last_stable_offset(abort), 0);

    // Truncating everything restarts the log without transactions.
    log.truncate_fully_and_start_at(10).expect("restart");
    assert!(log.open_transactions().is_empty());
    assert!(log.aborted_transaction_index().expect("index").is_empty());
    assert_eq!(log.last_stable_offset(10), 10);
}

#[test]
fn a_follower_ends_with_the_leaders_producer_state_and_txnindex() {
    let leader_dir = tempfile::tempdir().expect("tempdir");
    let follower_dir = tempfile::tempdir().expect("tempdir");
    let leader = open(leader_dir.path());
    let follower = open(follower_dir.path());
    workload(&leader);
    // Fetches of a few batches each, as a replica fetcher's.
    common::replicate(&leader, &follower, 300);
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.producer_state(), leader.producer_state());
    assert_eq!(
        txn_index_files(follower_dir.path()),
        txn_index_files(leader_dir.path())
    );
    assert_eq!(view(&follower), expected_view(&leader));
    // A marker the follower fetches later closes its transaction there too.
    end_txn(&leader, 5, false);
    common::replicate(&leader, &follower, 1 << 20);
    assert_eq!(view(&follower), view(&leader));
    assert_eq!(
        txn_index_files(follower_dir.path()),
        txn_index_files(leader_dir.path())
    );
}
