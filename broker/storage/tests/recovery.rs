//! Crash recovery: what survives a restart, and what a torn or corrupt tail becomes.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::*;
use strom_storage::LogConfig;

fn segment_logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn cut(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open")
        .set_len(len)
        .expect("truncate");
}

#[test]
fn reopen_gives_the_same_offsets_and_bytes_with_and_without_close() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = small_config(2048);
        let (bytes, leo) = {
            let log = open(dir.path(), config.clone());
            for i in 0..50u8 {
                log.append(&batch(&Spec::new(usize::from(i % 4) + 1, 30).tag(i)), 0, 1)
                    .expect("append");
            }
            if clean {
                log.close().expect("close");
            }
            (read_all(&log, 0), log.log_end_offset())
        };
        let log = open(dir.path(), config);
        assert_eq!(log.log_end_offset(), leo, "clean shutdown: {clean}");
        assert_eq!(read_all(&log, 0), bytes, "clean shutdown: {clean}");
        assert_eq!(
            log.append(&batch(&Spec::new(1, 1)), 0, 1)
                .expect("append")
                .first_offset,
            leo
        );
        // Reads from every offset still find their batch through the reloaded indexes.
        for offset in 0..leo {
            let r = log.read(offset, 1, i64::MAX, true).expect("read");
            let (base, last) = batch_offsets(&r.records)[0];
            assert!(base <= offset && offset <= last);
        }
    }
}

#[test]
fn a_tail_cut_anywhere_recovers_to_the_last_whole_batch() {
    for clean in [false, true] {
        tail_cut_anywhere(clean);
    }
}

/// `clean`: the log was closed (clean-shutdown marker present) before its tail was damaged.
fn tail_cut_anywhere(clean: bool) {
    let template = tempfile::tempdir().expect("tempdir");
    let config = small_config(1 << 20);
    let (bytes, boundaries) = {
        let log = open(template.path(), config.clone());
        let mut boundaries = vec![(0u64, 0i64)];
        for i in 0..12u8 {
            let info = log
                .append(&batch(&Spec::new(usize::from(i % 3) + 1, 25).tag(i)), 0, 1)
                .expect("append");
            boundaries.push((log.size_bytes(), info.last_offset + 1));
        }
        if clean {
            log.close().expect("close");
        }
        (read_all(&log, 0), boundaries)
    };
    let total = bytes.len() as u64;
    // Every cut point in a spread of positions, including batch edges and header bytes.
    let mut points: Vec<u64> = (0..total).step_by(13).collect();
    points.extend(
        boundaries
            .iter()
            .flat_map(|(b, _)| [*b, b.saturating_sub(1), b + 1, b + 12, b + 60]),
    );
    for point in points.into_iter().filter(|p| *p <= total) {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in fs::read_dir(template.path()).expect("list") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
        let logs = segment_logs(dir.path());
        cut(&logs[0], point);
        let &(valid_bytes, leo) = boundaries
            .iter()
            .rev()
            .find(|(b, _)| *b <= point)
            .expect("0 is a boundary");
        let log = open(dir.path(), config.clone());
        assert_eq!(log.log_end_offset(), leo, "cut at {point}, clean {clean}");
        assert_eq!(
            log.size_bytes(),
            valid_bytes,
            "cut at {point}, clean {clean}"
        );
        assert_eq!(
            read_all(&log, 0),
            bytes[..valid_bytes as usize].to_vec(),
            "cut at {point}, clean {clean}"
        );
        let next = log
            .append(&batch(&Spec::new(2, 5)), 0, 1)
            .expect("append after recovery");
        assert_eq!(next.first_offset, leo, "cut at {point}, clean {clean}");
        drop(log);
        assert_eq!(open(dir.path(), config.clone()).log_end_offset(), leo + 2);
    }
}

#[test]
fn a_corrupt_batch_in_the_active_segment_truncates_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig::default();
    let one = batch(&Spec::new(2, 40));
    {
        let log = open(dir.path(), config.clone());
        for _ in 0..5 {
            log.append(&one, 0, 1).expect("append");
        }
    }
    let path = &segment_logs(dir.path())[0];
    let mut data = fs::read(path).expect("read");
    data[one.len() * 3 + 70] ^= 0x55; // inside the records of the 4th batch
    fs::write(path, &data).expect("write");
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.size_bytes(), one.len() as u64 * 3);
}

#[test]
fn lost_indexes_and_stray_files_are_handled_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config(1500);
    let bytes = {
        let log = open(dir.path(), config.clone());
        for i in 0..40u8 {
            log.append(
                &batch(&Spec::new(2, 30).tag(i).ts(1_000 + i64::from(i))),
                0,
                1,
            )
            .expect("append");
        }
        log.close().expect("close");
        read_all(&log, 0)
    };
    let segments = segment_logs(dir.path());
    assert!(segments.len() >= 3);
    for (i, seg) in segments.iter().enumerate() {
        match i % 3 {
            0 => fs::remove_file(seg.with_extension("index")).expect("remove index"),
            1 => fs::write(seg.with_extension("timeindex"), b"garbage").expect("damage time index"),
            _ => {}
        }
    }
    fs::write(dir.path().join("00000000000000000000.log.deleted"), b"x").expect("stray");
    fs::write(dir.path().join("log-start-offset.tmp"), b"x").expect("stray");
    let log = open(dir.path(), config);
    assert_eq!(read_all(&log, 0), bytes);
    assert_eq!(log.log_end_offset(), 80);
    assert_eq!(
        log.offset_for_timestamp(1_020)
            .expect("lookup")
            .map(|t| t.offset),
        Some(38)
    );
    assert!(!dir.path().join("log-start-offset.tmp").exists());
    assert!(!dir.path().join("00000000000000000000.log.deleted").exists());
}

#[test]
fn a_torn_sealed_segment_drops_the_segments_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = batch(&Spec::new(2, 30));
    let config = small_config(one.len() as u64 * 3);
    {
        let log = open(dir.path(), config.clone());
        for _ in 0..9 {
            log.append(&one, 0, 1).expect("append");
        }
        log.close().expect("close");
    }
    let segments = segment_logs(dir.path());
    assert_eq!(segments.len(), 3);
    cut(&segments[1], one.len() as u64 * 2 + 5);
    let log = open(dir.path(), config);
    assert_eq!(
        log.log_end_offset(),
        10,
        "segment 1 keeps two whole batches"
    );
    assert_eq!(log.segment_count(), 2);
    assert_eq!(log.append(&one, 0, 1).expect("append").first_offset, 10);
}

#[test]
fn the_clean_shutdown_marker_is_used_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = small_config(1 << 20);
    let one = batch(&Spec::new(2, 30));
    {
        let log = open(dir.path(), config.clone());
        log.append(&one, 0, 1).expect("append");
        log.close().expect("close");
        assert!(matches!(
            log.append(&one, 0, 1),
            Err(strom_storage::StorageError::Closed { .. })
        ));
    }
    assert!(dir.path().join("clean-shutdown").exists());
    {
        let log = open(dir.path(), config.clone());
        assert!(
            !dir.path().join("clean-shutdown").exists(),
            "consumed on open"
        );
        log.append(&one, 0, 1).expect("append");
        // Dropped without close: a crash.
    }
    // Damage the CRC of the last batch: only a full recovery notices it.
    let path = &segment_logs(dir.path())[0];
    let mut data = fs::read(path).expect("read");
    let last = data.len() - 1;
    data[last] ^= 0x01;
    fs::write(path, &data).expect("write");
    let log = open(dir.path(), config);
    assert_eq!(log.log_end_offset(), 2, "the corrupt batch was dropped");
}

#[test]
fn index_files_are_in_kafka_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LogConfig {
        index_interval_bytes: 200,
        ..small_config(3000)
    };
    {
        let log = open(dir.path(), config);
        for i in 0..60i64 {
            let ts = 10_000 + (i * 37) % 500; // not monotonic
            log.append(&batch(&Spec::new(2, 20).ts(ts)), 0, 1)
                .expect("append");
        }
        log.close().expect("close");
    }
    let mut checked_entries = 0;
    for log_path in segment_logs(dir.path()) {
        let base: i64 = log_path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .expect("20-digit base offset");
        let data = fs::read(&log_path).expect("read log");
        let index = fs::read(log_path.with_extension("index")).expect("read index");
        assert_eq!(index.len() % 8, 0);
        for entry in index.chunks_exact(8) {
            let rel = u32::from_be_bytes(entry[..4].try_into().expect("4 bytes"));
            let pos = u32::from_be_bytes(entry[4..].try_into().expect("4 bytes")) as usize;
            let b = strom_storage::batch::RecordBatch::parse(&data[pos..])
                .expect("a batch starts there");
            assert_eq!(b.last_offset(), base + i64::from(rel));
            checked_entries += 1;
        }
        let time = fs::read(log_path.with_extension("timeindex")).expect("read time index");
        assert_eq!(time.len() % 12, 0);
        let mut previous = i64::MIN;
        for entry in time.chunks_exact(12) {
            let ts = i64::from_be_bytes(entry[..8].try_into().expect("8 bytes"));
            let rel = u32::from_be_bytes(entry[8..].try_into().expect("4 bytes"));
            assert!(ts > previous, "time index timestamps increase");
            previous = ts;
            let offset = base + i64::from(rel);
            let holder = strom_storage::batch::Batches::new(&data)
                .map(|b| b.expect("whole batches").1)
                .find(|b| b.base_offset() == offset)
                .expect("time index entries point at a batch start");
            assert_eq!(holder.max_timestamp(), ts);
        }
        assert!(
            !time.is_empty(),
            "a sealed or closed segment records its max timestamp"
        );
    }
    assert!(checked_entries > 10);
}
