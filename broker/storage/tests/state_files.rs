//! The log's state files (log start offset checkpoint, producer-state snapshots, clean-shutdown
//! marker, `partition.metadata`) are replaced atomically: a torn temporary file left by a crash
//! in the middle of a write never replaces the good file, and is cleared on the next open.

mod common;

use std::fs;

use common::{Spec, batch, open, small_config};
use strom_storage::partition_metadata::{read_topic_id, write_topic_id};

#[test]
fn torn_temporary_files_never_replace_good_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t-0");
    let producers_before = {
        let log = open(&path, small_config(1 << 20));
        for (i, tag) in (0..4u8).enumerate() {
            let spec = Spec::new(5, 10).tag(tag).producer(7, 0, (i * 5) as i32);
            log.append(&batch(&spec), 0, 1_000_000).expect("append");
        }
        assert_eq!(log.delete_records_before(3).expect("delete records"), 3);
        write_topic_id(&path, "good-id").expect("partition.metadata");
        log.close().expect("close");
        log.producer_state()
    };
    let snapshots: Vec<String> = fs::read_dir(&path)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".snapshot"))
        .collect();
    assert_eq!(snapshots.len(), 1, "close wrote one producer snapshot");
    // A crash in the middle of the next write of each file leaves a torn temporary file.
    for torn in [
        "log-start-offset.tmp".to_string(),
        "partition.metadata.tmp".to_string(),
        format!("{}.tmp", snapshots[0]),
        "clean-shutdown.tmp".to_string(),
    ] {
        fs::write(path.join(torn), b"0\n9").expect("torn temporary file");
    }

    let log = open(&path, small_config(1 << 20));
    assert_eq!(log.log_start_offset(), 3, "checkpoint intact");
    assert_eq!(log.log_end_offset(), 20);
    let producers = log.producer_state();
    assert!(producers.entry(7).is_some(), "producer 7 survives");
    assert_eq!(producers, producers_before, "producer snapshot intact");
    assert_eq!(
        read_topic_id(&path).expect("read").as_deref(),
        Some("good-id")
    );
    let leftovers: Vec<String> = fs::read_dir(&path)
        .expect("list")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files cleared: {leftovers:?}"
    );
}

#[test]
fn a_new_partition_directory_is_created_with_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("new-0");
    let log = open(&path, small_config(1 << 20));
    write_topic_id(&path, "id-1").expect("write");
    write_topic_id(&path, "id-2").expect("overwrite");
    assert_eq!(read_topic_id(&path).expect("read").as_deref(), Some("id-2"));
    assert_eq!(log.log_end_offset(), 0);
}
