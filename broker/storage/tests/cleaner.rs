//! Cleaning passes over real logs: the latest value of each key survives with its offset,
//! tombstones go after `delete.retention.ms`, a dedupe buffer too small for the keys cleans
//! over several passes, codecs are kept, and readers during a pass miss nothing.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::keyed::{
    NOW, assert_compacted, compacted_config, keyed_batch, scan, workload, write_all,
};
use kafka_protocol::records::Compression;
use strom_storage::batch::Batches;
use strom_storage::cleaner::{OffsetMap, Throttle};
use strom_storage::{PartitionLog, StorageError};

const BIG_MAP: usize = 1 << 20;

fn open(dir: &std::path::Path) -> PartitionLog {
    PartitionLog::open(dir, compacted_config(16 * 1024), NOW).expect("open")
}

/// Runs passes until the whole cleanable part is clean; returns how many it took.
fn clean_fully(log: &PartitionLog, map: &mut OffsetMap, now_ms: i64) -> usize {
    let end = log.log_end_offset();
    for passes in 1..=1_000 {
        let outcome = log
            .clean(end, now_ms, map, &Throttle::unlimited())
            .expect("clean");
        let range = log.cleanable_range(end, now_ms).expect("range");
        if range.first_dirty_offset >= range.first_uncleanable_offset {
            assert_eq!(outcome.first_dirty_offset_after, range.first_dirty_offset);
            return passes;
        }
    }
    panic!("the log never got clean");
}

#[test]
fn twenty_thousand_records_compact_to_the_latest_value_of_each_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let (batches, model) = workload(20_000, 1_000, 10);
    write_all(&log, &batches, Compression::None);
    let before = log.size_bytes();
    let segments_before = log.segment_count();
    let end = log.log_end_offset();
    assert_eq!(end, 20_000);

    let range = log.cleanable_range(end, NOW + 20_000).expect("range");
    assert_eq!(range.first_dirty_offset, 0);
    assert_eq!(range.first_uncleanable_offset, end, "everything is sealed");
    assert!((range.dirty_ratio - 1.0).abs() < 1e-9);

    let mut map = OffsetMap::new(BIG_MAP);
    let outcome = log
        .clean(end, NOW + 20_000, &mut map, &Throttle::unlimited())
        .expect("clean");
    assert_eq!(outcome.first_dirty_offset_after, end);
    assert_eq!(outcome.map_entries, 1_000);
    assert_eq!(outcome.records_removed, 20_000 - 1_000);
    // Groups are formed by the segments' sizes before cleaning (as Kafka does): full segments
    // are cleaned one by one, and merged by the next pass once small.
    assert_eq!(outcome.segments_after, outcome.segments_before);
    let after = log.size_bytes();
    println!(
        "cleaned {before} bytes in {segments_before} segments to {after} bytes in {} segments",
        log.segment_count()
    );
    assert!(after * 10 < before, "{after} bytes left of {before}");
    let records = scan(&log);
    assert_compacted(&records, &model, false);
    assert_eq!(log.log_end_offset(), end, "the log end does not move");
    assert_eq!(log.log_start_offset(), 0);

    // Tombstones stay until delete.retention.ms after this pass first saw them.
    let horizon = outcome
        .earliest_delete_horizon_ms
        .expect("tombstones were kept");
    assert_eq!(horizon, NOW + 20_000 + 1_000);
    let range = log.cleanable_range(end, horizon - 1).expect("range");
    assert!(!range.needs_cleaning(&log.config(), horizon - 1));
    assert!(range.needs_cleaning(&log.config(), horizon));
    let outcome = log
        .clean(end, horizon - 1, &mut map, &Throttle::unlimited())
        .expect("clean before the horizon");
    assert_eq!(outcome.records_removed, 0);
    assert!(
        outcome.segments_after < outcome.segments_before,
        "small cleaned segments are grouped: {outcome:?}"
    );
    assert_eq!(outcome.earliest_delete_horizon_ms, Some(horizon));
    assert_compacted(&scan(&log), &model, false);
    let outcome = log
        .clean(end, horizon, &mut map, &Throttle::unlimited())
        .expect("clean at the horizon");
    let tombstones = model.values().filter(|v| v.is_none()).count();
    assert_eq!(outcome.records_removed, tombstones as u64);
    assert_eq!(outcome.earliest_delete_horizon_ms, None);
    let records = scan(&log);
    assert_compacted(&records, &model, true);

    // The cleaned files are whole: a reopened log reads the same, through rebuilt or loaded
    // indexes, and every offset finds its record or the next one.
    log.close().expect("close");
    drop(log);
    let log = open(dir.path());
    assert_eq!(scan(&log), records);
    for offset in (0..end).step_by(97) {
        let r = log.read(offset, 1, i64::MAX, true).expect("read");
        let first = Batches::new(&r.records)
            .next()
            .expect("a batch")
            .expect("whole")
            .1;
        let expected = records
            .iter()
            .find(|(o, _, _)| *o >= offset)
            .map(|(o, _, _)| *o);
        if let Some(expected) = expected {
            assert!(first.base_offset() <= expected && first.last_offset() >= expected);
        }
    }
}

#[test]
fn keys_beyond_a_tiny_dedupe_buffer_are_cleaned_over_several_passes() {
    let (batches, model) = workload(20_000, 1_000, 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    write_all(&log, &batches, Compression::None);
    // 400 entries of 24 bytes: the map takes 360 of the 1,000 keys per pass.
    let mut map = OffsetMap::new(400 * OffsetMap::ENTRY_BYTES);
    let passes = clean_fully(&log, &mut map, NOW + 20_000);
    println!("{passes} passes with a map of {} keys", map.max_entries());
    assert!(passes > 5, "{passes} passes");
    assert_compacted(&scan(&log), &model, false);
}

#[test]
fn each_codec_stays_compressed_in_its_codec() {
    let (batches, model) = workload(3_000, 200, 20);
    for (compression, id) in [
        (Compression::Gzip, 1),
        (Compression::Snappy, 2),
        (Compression::Lz4, 3),
        (Compression::Zstd, 4),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = open(dir.path());
        write_all(&log, &batches, compression);
        let before = log.size_bytes();
        let mut map = OffsetMap::new(BIG_MAP);
        log.clean(
            log.log_end_offset(),
            NOW + 20_000,
            &mut map,
            &Throttle::unlimited(),
        )
        .expect("clean");
        assert!(log.size_bytes() < before);
        let bytes = common::keyed::read_compacted(&log);
        for item in Batches::new(&bytes) {
            let (_, batch) = item.expect("whole batches");
            assert_eq!(batch.compression(), id, "{compression:?}");
        }
        assert_compacted(&scan(&log), &model, false);
    }
}

#[test]
fn readers_during_passes_see_every_record_that_should_exist() {
    let (batches, model) = workload(20_000, 1_000, 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Arc::new(open(dir.path()));
    write_all(&log, &batches, Compression::None);
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let log = Arc::clone(&log);
        let done = Arc::clone(&done);
        let model = model.clone();
        std::thread::spawn(move || {
            let mut scans = 0;
            while !done.load(Ordering::Acquire) || scans < 3 {
                let records = scan(&log);
                assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
                // Whatever a pass removed, the last record a reader sees of each key is its
                // latest one, and no key is missing.
                let mut last = std::collections::BTreeMap::new();
                for (_, key, value) in records {
                    last.insert(key, value);
                }
                assert!(last == model, "a scan during cleaning lost a latest record");
                scans += 1;
            }
            scans
        })
    };
    let mut map = OffsetMap::new(400 * OffsetMap::ENTRY_BYTES);
    let passes = clean_fully(&log, &mut map, NOW + 20_000);
    done.store(true, Ordering::Release);
    let scans = reader.join().expect("reader");
    println!("{scans} full scans during {passes} passes");
    assert_compacted(&scan(&log), &model, false);
}

#[test]
fn the_last_batch_of_an_idempotent_producer_is_kept_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let p = (7_000, 1, 0);
    let mine = vec![("a".to_string(), Some("old".to_string()))];
    log.append(&keyed_batch(&mine, NOW, Compression::None, Some(p)), 0, NOW)
        .expect("producer's batch");
    let other = vec![("a".to_string(), Some("new".to_string()))];
    log.append(&keyed_batch(&other, NOW, Compression::None, None), 0, NOW)
        .expect("a later value");
    assert!(log.maybe_roll(NOW + 10_000).expect("roll"));
    let mut map = OffsetMap::new(BIG_MAP);
    let outcome = log
        .clean(2, NOW + 20_000, &mut map, &Throttle::unlimited())
        .expect("clean");
    assert_eq!(outcome.records_removed, 1);
    let bytes = common::keyed::read_compacted(&log);
    let batches: Vec<_> = Batches::new(&bytes).map(|b| b.expect("whole").1).collect();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].record_count(), 0, "emptied but kept");
    assert_eq!(batches[0].producer_id(), 7_000);
    assert_eq!((batches[0].base_offset(), batches[0].last_offset()), (0, 0));
    assert_eq!(batches[0].base_sequence(), 0);
    assert_eq!(
        scan(&log),
        vec![(1, "a".to_string(), Some("new".to_string()))]
    );

    // Rebuilt from the log alone, the producer's state still knows its last sequence.
    log.close().expect("close");
    drop(log);
    for entry in std::fs::read_dir(dir.path()).expect("list") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            std::fs::remove_file(path).expect("remove snapshot");
        }
    }
    let log = open(dir.path());
    let retry = keyed_batch(&mine, NOW, Compression::None, Some(p));
    assert!(matches!(
        log.append(&retry, 0, NOW),
        Err(StorageError::DuplicateSequence {
            first_offset: 0,
            last_offset: 0,
            ..
        })
    ));
    let next = keyed_batch(&mine, NOW, Compression::None, Some((7_000, 1, 1)));
    log.append(&next, 0, NOW)
        .expect("the next sequence continues");
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = strom_storage::LogConfig {
        min_compaction_lag_ms: 60_000,
        ..compacted_config(16 * 1024)
    };
    let log = PartitionLog::open(dir.path(), config, NOW).expect("open");
    let (batches, _) = workload(2_000, 100, 10);
    write_all(&log, &batches, Compression::None);
    let end = log.log_end_offset();
    let range = log.cleanable_range(end, NOW + 30_000).expect("range");
    assert_eq!(
        range.first_uncleanable_offset, 0,
        "every record is younger than the lag"
    );
    let mut map = OffsetMap::new(BIG_MAP);
    let outcome = log
        .clean(end, NOW + 30_000, &mut map, &Throttle::unlimited())
        .expect("clean");
    assert_eq!(outcome.records_removed, 0);
    assert_eq!(outcome.segments_before, 0);
    let range = log.cleanable_range(end, NOW + 70_000).expect("range");
    assert_eq!(range.first_uncleanable_offset, end);
}

#[test]
fn the_high_watermark_bounds_the_dirty_part() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let (batches, _) = workload(2_000, 100, 10);
    write_all(&log, &batches, Compression::None);
    let mut map = OffsetMap::new(BIG_MAP);
    let outcome = log
        .clean(500, NOW + 20_000, &mut map, &Throttle::unlimited())
        .expect("clean");
    assert_eq!(outcome.first_dirty_offset_after, 500);
    let records = scan(&log);
    assert!(
        records.iter().filter(|(o, _, _)| *o >= 500).count() >= 1_500,
        "records at and past the high watermark are all kept"
    );
}

#[test]
fn a_follower_replicates_a_cleaned_log_with_its_gaps() {
    let (batches, model) = workload(5_000, 300, 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let leader = PartitionLog::open(&dir.path().join("leader"), compacted_config(16 * 1024), NOW)
        .expect("open");
    write_all(&leader, &batches, Compression::Zstd);
    let mut map = OffsetMap::new(BIG_MAP);
    leader
        .clean(
            leader.log_end_offset(),
            NOW + 20_000,
            &mut map,
            &Throttle::unlimited(),
        )
        .expect("clean");
    let follower = PartitionLog::open(
        &dir.path().join("follower"),
        compacted_config(16 * 1024),
        NOW,
    )
    .expect("open");
    loop {
        let fetch = follower.log_end_offset();
        let r = leader
            .read(fetch, 4096, leader.log_end_offset(), true)
            .expect("fetch");
        if r.records.is_empty() {
            break;
        }
        let info = follower
            .append_as_follower(&r.records, NOW)
            .expect("follower append");
        assert!(info.first_offset >= fetch);
    }
    assert_eq!(scan(&follower), scan(&leader));
    assert_compacted(&scan(&follower), &model, false);
}

#[test]
fn data_written_again_after_a_truncation_is_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let key = |i: usize| format!("key-{:05}", i % 100);
    let first: Vec<_> = (0..2_000)
        .map(|i| (key(i), Some(format!("old-{i}"))))
        .collect();
    write_all(
        &log,
        &first.chunks(10).map(<[_]>::to_vec).collect::<Vec<_>>(),
        Compression::None,
    );
    let mut map = OffsetMap::new(BIG_MAP);
    clean_fully(&log, &mut map, NOW + 20_000);
    // A follower's truncation into the cleaned part, then other data at those offsets: keys
    // 0-49 (whose kept records lie just below) at offsets the old first dirty offset covers,
    // then keys 50-99 past it.
    log.truncate_to(1_950).expect("truncate");
    assert_eq!(log.log_end_offset(), 1_950);
    let mut model = std::collections::BTreeMap::new();
    let mut again: Vec<_> = (0..50)
        .map(|i| (key(i), Some(format!("new-{i}"))))
        .collect();
    again.extend((0..500).map(|i| (key(50 + i % 50), Some(format!("newer-{i}")))));
    for (k, v) in &again {
        model.insert(k.clone(), v.clone());
    }
    write_all(
        &log,
        &again.chunks(10).map(<[_]>::to_vec).collect::<Vec<_>>(),
        Compression::None,
    );
    assert!(
        log.log_end_offset() > 2_000,
        "past the old first dirty offset"
    );
    clean_fully(&log, &mut map, NOW + 20_000);
    assert_compacted(&scan(&log), &model, false);
}
