//! A crash at each step of a cleaner swap (files left as the crash would leave them) loses
//! nothing: on open the swap is rolled back or completed, offsets and indexes are intact, and
//! cleaning goes on.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::dir_files;
use common::keyed::{NOW, assert_compacted, compacted_config, scan, workload, write_all};
use kafka_protocol::records::Compression;
use strom_storage::PartitionLog;
use strom_storage::batch::Batches;
use strom_storage::cleaner::{OffsetMap, Throttle};

type Files = BTreeMap<String, Vec<u8>>;

fn open(dir: &Path) -> PartitionLog {
    PartitionLog::open(dir, compacted_config(16 * 1024), NOW).expect("open")
}

fn clean(log: &PartitionLog) {
    let mut map = OffsetMap::new(1 << 20);
    log.clean(
        log.log_end_offset(),
        NOW + 20_000,
        &mut map,
        &Throttle::unlimited(),
    )
    .expect("clean");
}

fn base_of(name: &str) -> i64 {
    name[..20].parse().expect("a segment file name")
}

fn logs(files: &Files) -> Vec<i64> {
    files
        .keys()
        .filter(|n| n.ends_with(".log"))
        .map(|n| base_of(n))
        .collect()
}

/// The directory after a first pass (`before`) and after a second pass that groups small
/// segments (`after`), with the model of the workload.
struct Fixture {
    before: Files,
    after: Files,
    model: BTreeMap<String, Option<String>>,
    /// Base of the first cleaned segment of the second pass, and the old segments it replaces.
    base: i64,
    replaced: Vec<i64>,
    end: i64,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let (batches, model) = workload(5_000, 300, 10);
    let log = open(dir.path());
    write_all(&log, &batches, Compression::Lz4);
    clean(&log);
    let end = log.log_end_offset();
    log.close().expect("close");
    drop(log);
    let before = dir_files(dir.path());
    let log = open(dir.path());
    clean(&log);
    log.close().expect("close");
    drop(log);
    let after = dir_files(dir.path());
    let new_logs = logs(&after);
    let (base, next) = (new_logs[0], new_logs[1]);
    let replaced: Vec<i64> = logs(&before)
        .into_iter()
        .filter(|b| (base..next).contains(b))
        .collect();
    assert!(
        replaced.len() > 1,
        "the second pass groups segments: {replaced:?}"
    );
    Fixture {
        before,
        after,
        model,
        base,
        replaced,
        end,
    }
}

fn name(base: i64, suffix: &str) -> String {
    format!("{base:020}{suffix}")
}

/// Writes `files` as a crashed log directory (no clean-shutdown marker).
fn crashed_dir(files: &Files) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in files {
        if name != "clean-shutdown" {
            std::fs::write(dir.path().join(name), bytes).expect("write");
        }
    }
    dir
}

/// The log files a completed swap of the first group leaves.
fn completed(f: &Fixture) -> Files {
    let mut files: Files = f
        .before
        .iter()
        .filter(|(n, _)| n.ends_with(".log") && !f.replaced.contains(&base_of(n)))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect();
    let new = name(f.base, ".log");
    files.insert(new.clone(), f.after[&new].clone());
    files
}

fn only_logs(files: &Files) -> Files {
    files
        .iter()
        .filter(|(n, _)| n.ends_with(".log"))
        .map(|(n, b)| (n.clone(), b.clone()))
        .collect()
}

fn check(f: &Fixture, state: &str, files: Files, expect_logs: &Files) {
    let dir = crashed_dir(&files);
    let log = open(dir.path());
    let now = dir_files(dir.path());
    assert!(
        !now.keys()
            .any(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted")),
        "{state}: no file of the interrupted pass is left: {:?}",
        now.keys().collect::<Vec<_>>()
    );
    assert!(
        only_logs(&now) == *expect_logs,
        "{state}: the segments are the expected ones"
    );
    assert_eq!(log.log_end_offset(), f.end, "{state}");
    let records = scan(&log);
    assert_compacted(&records, &f.model, false);
    // Every offset is found through the indexes: its record's batch or the next one.
    for offset in (0..f.end).step_by(13) {
        let r = log.read(offset, 1, i64::MAX, true).expect("read");
        if let Some(item) = Batches::new(&r.records).next() {
            let batch = item.expect("whole").1;
            let next = records
                .iter()
                .find(|(o, _, _)| *o >= offset)
                .expect("a record")
                .0;
            assert!(
                batch.base_offset() <= next && batch.last_offset() >= next,
                "{state}: offset {offset}"
            );
        }
    }
    // Cleaning resumes.
    clean(&log);
    assert_compacted(&scan(&log), &f.model, false);
}

#[test]
fn a_crash_at_each_step_of_a_swap_loses_nothing() {
    let f = fixture();
    let cleaned = |suffix: &str, kind: &str| {
        (
            name(f.base, &format!("{kind}{suffix}")),
            f.after[&name(f.base, kind)].clone(),
        )
    };
    let rolled_back = only_logs(&f.before);
    let done = completed(&f);

    // 1. Cleaned files written (whole, or cut short): rolled back.
    let mut files = f.before.clone();
    files.extend([
        cleaned(".cleaned", ".index"),
        cleaned(".cleaned", ".timeindex"),
        cleaned(".cleaned", ".log"),
    ]);
    check(&f, "cleaned files written", files, &rolled_back);
    let mut files = f.before.clone();
    let (n, bytes) = cleaned(".cleaned", ".log");
    files.insert(n, bytes[..bytes.len() / 2].to_vec());
    check(&f, "cleaned log cut short", files, &rolled_back);

    // 2. Indexes renamed to .swap, the log not yet: the swap never committed.
    let mut files = f.before.clone();
    files.extend([
        cleaned(".swap", ".index"),
        cleaned(".swap", ".timeindex"),
        cleaned(".cleaned", ".log"),
    ]);
    check(&f, "indexes renamed to swap", files, &rolled_back);

    // 3. All renamed to .swap: committed, completed on open.
    let mut swapped = f.before.clone();
    swapped.extend([
        cleaned(".swap", ".index"),
        cleaned(".swap", ".timeindex"),
        cleaned(".swap", ".log"),
    ]);
    check(&f, "swap committed", swapped.clone(), &done);

    // 4. Some old segments deleted.
    let mut files = swapped.clone();
    for kind in [".log", ".index", ".timeindex"] {
        files.remove(&name(f.replaced[1], kind));
    }
    check(&f, "old segments partly deleted", files, &done);

    // 4b. Some old segments retired (renamed to .deleted, waiting for file.delete.delay.ms),
    // one only in part: the .deleted files are deleted, never taken for segments.
    let mut files = swapped.clone();
    for (i, &old) in f.replaced[1..].iter().enumerate() {
        let kinds: &[&str] = if i == 0 {
            &[".log"]
        } else {
            &[".log", ".index", ".timeindex"]
        };
        for kind in kinds {
            let bytes = files.remove(&name(old, kind)).expect("an old segment file");
            files.insert(name(old, &format!("{kind}.{i}.deleted")), bytes);
        }
    }
    check(&f, "old segments retired", files, &done);

    // 5. Old segments deleted and the indexes in place; only the log still .swap.
    let mut files = swapped;
    for &old in &f.replaced[1..] {
        for kind in [".log", ".index", ".timeindex"] {
            files.remove(&name(old, kind));
        }
    }
    for kind in [".index", ".timeindex"] {
        files.remove(&name(f.base, &format!("{kind}.swap")));
        let (n, b) = cleaned("", kind);
        files.insert(n, b);
    }
    check(&f, "only the log left to rename", files, &done);
}
