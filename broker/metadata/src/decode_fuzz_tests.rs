//! Property tests of what the metadata side reads from disk and from peers: the Raft log file
//! scan (arbitrary bytes never panic and give a consistent valid prefix; a log damaged anywhere
//! keeps exactly the entries before the damage), the record decoder (arbitrary and mutated
//! bytes never panic), and the image (any sequence of records that decodes applies without a
//! panic, unknown ids and negative numbers included).

use openraft::CommittedLeaderId;
use openraft::EntryPayload;
use proptest::prelude::*;
use proptest::sample::Index;
use uuid::Uuid;

use crate::image::MetadataImage;
use crate::log_store::{encode_frame, scan_frames};
use crate::raft_types::{Entry, LogId, MetadataBatch};
use crate::records::{ConfigResource, MetadataRecord};

/// A few ids, so that generated records meet the topics and brokers earlier ones made.
fn topic_id() -> impl Strategy<Value = Uuid> {
    (0u128..4).prop_map(Uuid::from_u128)
}

fn small_int() -> impl Strategy<Value = i32> {
    prop_oneof![-2i32..6, any::<i32>()]
}

fn ids() -> impl Strategy<Value = Vec<i32>> {
    proptest::collection::vec(small_int(), 0..5)
}

fn record() -> impl Strategy<Value = MetadataRecord> {
    prop_oneof![
        (
            small_int(),
            any::<u16>(),
            proptest::option::of("[a-z]{0,3}"),
            topic_id(),
            any::<bool>()
        )
            .prop_map(|(node_id, port, rack, incarnation, fenced)| {
                MetadataRecord::RegisterBroker {
                    node_id,
                    host: "h".to_owned(),
                    port,
                    rack,
                    incarnation,
                    fenced,
                }
            }),
        (
            small_int(),
            topic_id(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(node_id, incarnation, fenced, in_controlled_shutdown)| {
                MetadataRecord::BrokerChange {
                    node_id,
                    incarnation,
                    fenced,
                    in_controlled_shutdown,
                }
            }),
        "[a-z]{0,4}".prop_map(|cluster_id| MetadataRecord::ClusterId { cluster_id }),
        ("[a-c]{1,2}", topic_id())
            .prop_map(|(name, topic_id)| MetadataRecord::Topic { name, topic_id }),
        (
            topic_id(),
            small_int(),
            ids(),
            ids(),
            small_int(),
            small_int(),
            small_int()
        )
            .prop_map(
                |(topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch)| {
                    MetadataRecord::Partition {
                        topic_id,
                        partition,
                        replicas,
                        isr,
                        leader,
                        leader_epoch,
                        partition_epoch,
                    }
                }
            ),
        (
            topic_id(),
            small_int(),
            proptest::option::of(small_int()),
            proptest::option::of(ids()),
            proptest::option::of(ids()),
            proptest::option::of(ids()),
            proptest::option::of(ids()),
        )
            .prop_map(
                |(
                    topic_id,
                    partition,
                    leader,
                    isr,
                    replicas,
                    adding_replicas,
                    removing_replicas,
                )| {
                    MetadataRecord::PartitionChange {
                        topic_id,
                        partition,
                        leader,
                        isr,
                        replicas,
                        adding_replicas,
                        removing_replicas,
                    }
                }
            ),
        (
            prop_oneof![
                "[a-c]{1,2}".prop_map(ConfigResource::Topic),
                small_int().prop_map(ConfigResource::Broker),
                Just(ConfigResource::BrokerDefault)
            ],
            prop_oneof![Just("retention.ms".to_owned()), "[a-z.]{0,12}"],
            proptest::option::of("[0-9a-z-]{0,6}"),
        )
            .prop_map(|(resource, name, value)| MetadataRecord::Config {
                resource,
                name,
                value
            }),
        topic_id().prop_map(|topic_id| MetadataRecord::RemoveTopic { topic_id }),
        (small_int(), any::<i64>()).prop_map(|(node_id, next_producer_id)| {
            MetadataRecord::ProducerIds {
                node_id,
                next_producer_id,
            }
        }),
    ]
}

fn entry(index: u64, records: Vec<MetadataRecord>) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(MetadataBatch { records }),
    }
}

/// The frames of `entries` (indexes 1..) and where each ends.
fn log_bytes(entries: &[Vec<MetadataRecord>]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for (i, records) in entries.iter().enumerate() {
        encode_frame(&entry(i as u64 + 1, records.clone()), &mut bytes).expect("encodes");
        ends.push(bytes.len());
    }
    (bytes, ends)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_bytes_scan_to_a_consistent_valid_prefix(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let (frames, valid) = scan_frames(&bytes);
        prop_assert!(valid as usize <= bytes.len());
        let (again, valid_again) = scan_frames(&bytes[..valid as usize]);
        prop_assert_eq!(valid_again, valid);
        prop_assert_eq!(again.len(), frames.len());
    }

    #[test]
    fn a_damaged_log_keeps_exactly_the_entries_before_the_damage(
        entries in proptest::collection::vec(proptest::collection::vec(record(), 0..4), 1..6),
        at in any::<Index>(),
        damage in prop_oneof![Just(None), (1..=255u8).prop_map(Some)],
    ) {
        let (bytes, ends) = log_bytes(&entries);
        let at = at.index(bytes.len());
        let mut damaged = bytes.clone();
        match damage {
            // A torn write: the file ends at `at`.
            None => damaged.truncate(at),
            // A flipped byte: the frame holding it fails its length or CRC check.
            Some(mask) => damaged[at] ^= mask,
        }
        let whole = ends.iter().take_while(|end| **end <= at).count();
        let (frames, valid) = scan_frames(&damaged);
        prop_assert_eq!(frames.len(), whole);
        prop_assert_eq!(valid as usize, if whole == 0 { 0 } else { ends[whole - 1] });
        for (i, (scanned, _)) in frames.iter().enumerate() {
            prop_assert_eq!(scanned, &entry(i as u64 + 1, entries[i].clone()));
        }
    }

    #[test]
    fn the_record_decoder_never_panics_on_arbitrary_or_mutated_bytes(
        records in proptest::collection::vec(record(), 1..4),
        noise in proptest::collection::vec(any::<u8>(), 0..64),
        edits in proptest::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 0..6),
    ) {
        let _ = serde_json::from_slice::<MetadataRecord>(&noise);
        let _ = serde_json::from_slice::<Entry>(&noise);
        let mut json = serde_json::to_vec(&records).expect("encodes");
        for (at, byte, kind) in edits {
            let at = at.index(json.len() + 1);
            match kind {
                0 if at < json.len() => json[at] = byte,
                1 => json.insert(at, byte),
                _ if at < json.len() => { json.remove(at); }
                _ => {}
            }
        }
        if let Ok(decoded) = serde_json::from_slice::<Vec<MetadataRecord>>(&json) {
            MetadataImage::empty(String::new()).apply_batch(1, &decoded);
        }
    }

    #[test]
    fn any_sequence_of_records_applies_without_a_panic(
        batches in proptest::collection::vec(proptest::collection::vec(record(), 0..6), 1..8),
    ) {
        let mut image = MetadataImage::empty(String::new());
        for (offset, records) in batches.iter().enumerate() {
            image = image.apply_batch(offset as u64 + 1, records);
            // Every image serializes and reads back the same, as snapshots need.
            let json = serde_json::to_vec(&image).expect("serializes");
            let back: MetadataImage = serde_json::from_slice(&json).expect("deserializes");
            prop_assert_eq!(back.checksum(), image.checksum());
        }
    }
}
