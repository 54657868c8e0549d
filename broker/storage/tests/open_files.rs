//! Open file descriptors do not grow with the number of segments: sealed segments' files are
//! kept open only through a bounded cache, on append, on open (recovery) and on reads that touch
//! every segment. (Its own test binary: it counts the process's descriptors.)

mod common;

use common::{Spec, batch, batch_offsets, open, read_all, small_config};
use strom_storage::open_files::MAX_OPEN_SEALED_SEGMENTS;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn descriptors_stay_bounded_with_many_segments() {
    let segments = MAX_OPEN_SEALED_SEGMENTS * 2;
    let bound = 3 * MAX_OPEN_SEALED_SEGMENTS + 3 + 16;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many-0");
    let baseline = open_descriptors();
    let one = batch(&Spec::new(1, 50));
    {
        // One batch per segment.
        let log = open(&path, small_config(one.len() as u64));
        for _ in 0..segments {
            log.append(&one, 0, 1_000_000).expect("append");
        }
        assert!(log.segment_count() >= segments);
        assert!(
            open_descriptors() - baseline <= bound,
            "{} descriptors open while appending {segments} segments",
            open_descriptors() - baseline
        );
        log.close().expect("close");
    }
    let log = open(&path, small_config(one.len() as u64));
    assert!(
        open_descriptors() - baseline <= bound,
        "{} descriptors open after recovering {segments} segments",
        open_descriptors() - baseline
    );
    let all = read_all(&log, 0);
    let offsets = batch_offsets(&all);
    assert_eq!(offsets.len(), segments, "every batch reads back");
    assert!(offsets.iter().enumerate().all(|(i, b)| b.0 == i as i64));
    assert!(
        open_descriptors() - baseline <= bound,
        "{} descriptors open after reading {segments} segments",
        open_descriptors() - baseline
    );
}
