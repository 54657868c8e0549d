//! Transactional offset commits (TxnOffsetCommit, KIP-98/KIP-447) over an in-memory
//! `__consumer_offsets`: offsets stay invisible until the producer's transaction commits,
//! markers in the log are replayed on load, and plain commits interleave by log position.
//! Time is tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, JoinGroupRequest, OffsetCommitRequest, OffsetFetchRequest, ProducerId,
    SyncGroupRequest, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use strom_group::records::{RecordKey, build_marker_batch, parse_batches};
use strom_group::{
    CoordinatorOptions, GroupConfig, GroupCoordinator, MemoryOffsetsLog, OffsetsLog,
    OffsetsLogError, TopicLookup,
};

mod common;

use common::*;

const PRODUCER: i64 = 4_000;
const EPOCH: i16 = 3;

const NONE: i16 = 0;

/// A TxnOffsetCommit of `offsets` (topic, partition, offset, metadata) by `producer`, without
/// group membership (generation -1).
fn txn_request(
    group: &str,
    producer: i64,
    offsets: &[(&str, i32, i64, &str)],
) -> TxnOffsetCommitRequest {
    let mut topics: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in offsets {
        let p = TxnOffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(5)
            .with_committed_metadata(Some(s(metadata)));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    TxnOffsetCommitRequest::default()
        .with_transactional_id(TransactionalId(s("txn-1")))
        .with_group_id(gid(group))
        .with_producer_id(ProducerId(producer))
        .with_producer_epoch(EPOCH)
        .with_topics(topics)
}

async fn txn_commit_with(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> Vec<i16> {
    let resp = c.txn_offset_commit(req, version).await;
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

async fn txn_commit(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    producer: i64,
    offsets: &[(&str, i32, i64, &str)],
) -> Vec<i16> {
    txn_commit_with(c, txn_request(group, producer, offsets), 4).await
}

/// Writes `producer`'s COMMIT/ABORT marker to the group's partition, as the broker does, and
/// tells the coordinator.
async fn end_txn(
    log: &MemoryOffsetsLog,
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    producer: i64,
    commit: bool,
) {
    let p = c.partition_for(group);
    let marker = build_marker_batch(producer, EPOCH, 0, commit, 0).expect("marker");
    log.append(p, marker).await.expect("marker written");
    c.complete_transaction(p, producer, EPOCH, commit).await;
}

async fn plain_commit(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    offsets: &[(&str, i32, i64)],
) {
    let topics = offsets
        .iter()
        .map(|(topic, partition, offset)| {
            OffsetCommitRequestTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(*partition)
                        .with_committed_offset(*offset),
                ])
        })
        .collect();
    let resp = c
        .offset_commit(
            OffsetCommitRequest::default()
                .with_group_id(gid(group))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(topics),
            8,
        )
        .await;
    for t in resp.topics {
        for p in t.partitions {
            assert_eq!(p.error_code, NONE, "plain commit accepted");
        }
    }
}

/// (offset, error) of one partition, fetched with OffsetFetch v7.
async fn fetch_v7(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    topic: &str,
    partition: i32,
    require_stable: bool,
) -> (i64, i16) {
    let resp = c
        .offset_fetch(
            OffsetFetchRequest::default()
                .with_group_id(gid(group))
                .with_require_stable(require_stable)
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partition_indexes(vec![partition]),
                ])),
            7,
        )
        .await;
    assert_eq!(resp.error_code, NONE);
    let p = &resp.topics[0].partitions[0];
    (p.committed_offset, p.error_code)
}

/// (group error, offset, partition error) of one partition, fetched with OffsetFetch v8.
async fn fetch_v8(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    topic: &str,
    partition: i32,
) -> (i16, i64, i16) {
    let resp = c
        .offset_fetch(
            OffsetFetchRequest::default()
                .with_require_stable(true)
                .with_groups(vec![
                    OffsetFetchRequestGroup::default()
                        .with_group_id(gid(group))
                        .with_topics(Some(vec![
                            OffsetFetchRequestTopics::default()
                                .with_name(TopicName(s(topic)))
                                .with_partition_indexes(vec![partition]),
                        ])),
                ]),
            8,
        )
        .await;
    let g = &resp.groups[0];
    let p = &g.topics[0].partitions[0];
    (g.error_code, p.committed_offset, p.error_code)
}

fn unstable() -> i16 {
    code(ResponseError::UnstableOffsetCommit)
}

#[tokio::test(start_paused = true)]
async fn transactional_offsets_are_visible_only_after_commit() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;

    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 42, "meta")]).await,
        vec![NONE],
        "a producer outside the group commits into a group that did not exist"
    );
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (-1, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (-1, unstable()));
    assert_eq!(
        fetch_v8(c, "g", "t", 0).await,
        (NONE, -1, unstable()),
        "per partition in v8 too: clients retry only a partition-level error"
    );
    assert!(c.committed_offsets().is_empty());

    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (42, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (42, NONE));
    assert_eq!(fetch_v8(c, "g", "t", 0).await, (NONE, 42, NONE));
    let resp = c
        .offset_fetch(
            OffsetFetchRequest::default()
                .with_group_id(gid("g"))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0]),
                ])),
            7,
        )
        .await;
    let p = &resp.topics[0].partitions[0];
    assert_eq!(
        (
            p.committed_leader_epoch,
            p.metadata.as_ref().map(|m| m.as_str())
        ),
        (5, Some("meta"))
    );

    // A marker of a producer with nothing pending here changes nothing.
    end_txn(&log, c, "g", PRODUCER + 1, false).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (42, NONE));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn aborted_transactions_leave_the_committed_offset() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;

    plain_commit(c, "g", &[("t", 0, 3)]).await;
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 9, "")]).await,
        vec![NONE]
    );
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (3, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (-1, unstable()));
    end_txn(&log, c, "g", PRODUCER, false).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (3, NONE));

    // A group that only ever had the aborted offsets is gone.
    assert_eq!(
        txn_commit(c, "lonely", PRODUCER, &[("t", 1, 5, "")]).await,
        vec![NONE]
    );
    end_txn(&log, c, "lonely", PRODUCER, false).await;
    let groups = c
        .list_groups(Default::default(), 4)
        .await
        .groups
        .into_iter()
        .map(|g| g.group_id.0.as_str().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(groups, vec!["g".to_owned()]);
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn commits_interleave_by_log_position() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;

    // Pending first, plain commit after it: the plain one is later in the log and wins.
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 10, "")]).await,
        vec![NONE]
    );
    plain_commit(c, "g", &[("t", 0, 20)]).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (20, NONE));
    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (20, NONE));

    // Plain commit first, then the transaction: the transaction's offset is later and wins.
    plain_commit(c, "g", &[("t", 1, 20)]).await;
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 1, 10, "")]).await,
        vec![NONE]
    );
    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 1, false).await, (10, NONE));

    // Two producers' transactions on one group end independently.
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 2, 7, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit(c, "g", PRODUCER + 1, &[("t", 3, 8, "")]).await,
        vec![NONE]
    );
    end_txn(&log, c, "g", PRODUCER + 1, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 3, true).await, (8, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 2, true).await, (-1, unstable()));
    broker.stop().await;

    // The reload materializes the same offsets from the log.
    let broker = Broker::start(log, config()).await;
    let c = &broker.coordinator;
    assert_eq!(fetch_v7(c, "g", "t", 0, false).await, (20, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 1, false).await, (10, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 3, false).await, (8, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 2, true).await, (-1, unstable()));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn load_replays_commit_abort_and_open_transactions() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let (committed, aborted, open) = (PRODUCER, PRODUCER + 1, PRODUCER + 2);
    plain_commit(c, "g", &[("t", 1, 100)]).await;
    assert_eq!(
        txn_commit(c, "g", committed, &[("t", 0, 11, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit(c, "g", aborted, &[("t", 1, 12, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit(c, "g", open, &[("t", 2, 13, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit(c, "only-open", open, &[("t", 0, 14, "")]).await,
        vec![NONE]
    );
    end_txn(&log, c, "g", committed, true).await;
    end_txn(&log, c, "g", aborted, false).await;
    broker.stop().await;

    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (11, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 1, true).await, (100, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 2, false).await, (-1, NONE));
    assert_eq!(fetch_v7(c, "g", "t", 2, true).await, (-1, unstable()));
    assert_eq!(
        fetch_v7(c, "only-open", "t", 0, true).await,
        (-1, unstable())
    );

    // The open transaction completes on the new coordinator, for both of its groups (same
    // __consumer_offsets partition or not: each partition gets its own marker).
    end_txn(&log, c, "g", open, true).await;
    if c.partition_for("only-open") != c.partition_for("g") {
        end_txn(&log, c, "only-open", open, true).await;
    }
    assert_eq!(fetch_v7(c, "g", "t", 2, true).await, (13, NONE));
    assert_eq!(fetch_v7(c, "only-open", "t", 0, true).await, (14, NONE));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_written_batch_is_one_transactional_batch_of_the_producer() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let p = c.partition_for("g");
    let before = log.batches(p).len();
    assert_eq!(
        txn_commit(
            c,
            "g",
            PRODUCER,
            &[("t", 0, 1, ""), ("t", 1, 2, ""), ("u", 0, 3, "")]
        )
        .await,
        vec![NONE, NONE, NONE]
    );
    let batches = log.batches(p);
    assert_eq!(batches.len(), before + 1, "one batch for the whole request");
    let (_, batch) = batches.last().expect("batch").clone();
    let mut header = &batch[..61];
    header.advance(16);
    assert_eq!(header.get_u8(), 2, "magic");
    header.advance(4); // crc
    let attributes = header.get_i16();
    assert_eq!(attributes & 0x10, 0x10, "transactional");
    assert_eq!(attributes & 0x20, 0, "not a control batch");
    assert_eq!(header.get_i32(), 2, "last offset delta: three records");
    header.advance(16); // timestamps
    assert_eq!(header.get_i64(), PRODUCER, "producer id");
    assert_eq!(header.get_i16(), EPOCH, "producer epoch");
    assert_eq!(header.get_i32(), -1, "base sequence");
    assert_eq!(header.get_i32(), 3, "record count");

    let parsed = parse_batches(batch).expect("valid batch");
    let keys: Vec<Option<RecordKey>> = parsed
        .records
        .iter()
        .map(|r| RecordKey::decode(r.key.as_deref().expect("key")).expect("key decodes"))
        .collect();
    assert_eq!(
        keys,
        [("t", 0), ("t", 1), ("u", 0)]
            .into_iter()
            .map(|(topic, partition)| Some(RecordKey::OffsetCommit {
                group: "g".into(),
                topic: topic.into(),
                partition,
            }))
            .collect::<Vec<_>>()
    );
    assert!(
        parsed
            .records
            .iter()
            .all(|r| r.transactional && r.producer_id == PRODUCER)
    );
    broker.stop().await;
}

/// Joins a member (static when `instance` is given) and completes the rebalance; returns its
/// (member id, generation).
async fn stable_member(
    c: &GroupCoordinator<MemoryOffsetsLog>,
    group: &str,
    instance: Option<&str>,
) -> (String, i32) {
    let join = |member: String| {
        JoinGroupRequest::default()
            .with_group_id(gid(group))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(&member))
            .with_group_instance_id(instance.map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"sub")),
            ])
    };
    let mut joined = c.join_group(join(String::new()), 9).await;
    if joined.error_code == code(ResponseError::MemberIdRequired) {
        joined = c
            .join_group(join(joined.member_id.as_str().to_owned()), 9)
            .await;
    }
    assert_eq!(joined.error_code, NONE);
    let member = joined.member_id.as_str().to_owned();
    let synced = c
        .sync_group(
            SyncGroupRequest::default()
                .with_group_id(gid(group))
                .with_generation_id(joined.generation_id)
                .with_member_id(s(&member))
                .with_group_instance_id(instance.map(s))
                .with_assignments(vec![
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(&member))
                        .with_assignment(Bytes::from_static(b"all")),
                ]),
            5,
        )
        .await;
    assert_eq!(synced.error_code, NONE);
    (member, joined.generation_id)
}

#[tokio::test(start_paused = true)]
async fn members_are_checked_from_v3() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let (member, generation) = stable_member(c, "g", None).await;
    let (static_member, static_generation) = stable_member(c, "s", Some("pod-0")).await;
    let as_member = |group: &str, member: &str, generation: i32, instance: Option<&str>| {
        txn_request(group, PRODUCER, &[("t", 0, 5, "")])
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_group_instance_id(instance.map(s))
    };
    let p = c.partition_for("g");
    let written = log.log_end_offset(p);

    assert_eq!(
        txn_commit_with(c, as_member("g", &member, generation + 1, None), 3).await,
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(
        txn_commit_with(c, as_member("g", "stranger", generation, None), 3).await,
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        txn_commit_with(
            c,
            as_member("s", "other", static_generation, Some("pod-0")),
            3
        )
        .await,
        vec![code(ResponseError::FencedInstanceId)]
    );
    assert_eq!(
        txn_commit_with(c, as_member("g", "", generation + 1, None), 3).await,
        vec![code(ResponseError::IllegalGeneration)],
        "an empty member id names no member: only the generation is checked"
    );
    assert_eq!(
        txn_commit_with(c, as_member("missing", "m", 1, None), 3).await,
        vec![code(ResponseError::IllegalGeneration)],
        "a group that does not exist is created only without generation"
    );
    assert_eq!(
        log.log_end_offset(p),
        written,
        "refused commits write nothing"
    );
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (-1, NONE));

    assert_eq!(
        txn_commit_with(c, as_member("g", &member, generation, None), 3).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit_with(
            c,
            as_member("s", &static_member, static_generation, Some("pod-0")),
            3
        )
        .await,
        vec![NONE]
    );
    // Before v3 the member fields are not on the wire: the commit is taken from any producer.
    assert_eq!(
        txn_commit_with(c, as_member("g", "stranger", 99, None), 2).await,
        vec![NONE]
    );
    broker.stop().await;
}

#[derive(Debug)]
struct KnownTopics;

impl TopicLookup for KnownTopics {
    fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        topic == "orders" && (0..3).contains(&partition)
    }
}

#[tokio::test(start_paused = true)]
async fn refused_partitions_and_groups_write_nothing() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let options = CoordinatorOptions {
        topic_lookup: Some(Arc::new(KnownTopics)),
        ..CoordinatorOptions::default()
    };
    let broker = Broker::with_options(Arc::clone(&log), config(), options).await;
    let c = &broker.coordinator;
    let p = c.partition_for("g");
    let end = log.log_end_offset(p);

    let too_long = "x".repeat(5_000);
    assert_eq!(
        txn_commit(
            c,
            "g",
            PRODUCER,
            &[
                ("nope", 0, 1, ""),
                ("orders", 7, 1, ""),
                ("orders", 1, 1, &too_long)
            ]
        )
        .await,
        vec![
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::OffsetMetadataTooLarge),
        ]
    );
    assert_eq!(log.log_end_offset(p), end, "nothing valid, nothing written");
    assert!(
        c.list_groups(Default::default(), 4).await.groups.is_empty(),
        "the group created for the request goes again"
    );

    assert_eq!(
        txn_commit(
            c,
            "g",
            PRODUCER,
            &[("orders", 9, 1, ""), ("orders", 2, 6, "")]
        )
        .await,
        vec![code(ResponseError::UnknownTopicOrPartition), NONE]
    );
    let batches = log.batches(p);
    let parsed = parse_batches(batches.last().expect("batch").1.clone()).expect("batch parses");
    assert_eq!(
        parsed.records.len(),
        1,
        "only the known partition is written"
    );

    assert_eq!(
        txn_commit(c, "", PRODUCER, &[("orders", 0, 1, "")]).await,
        vec![code(ResponseError::InvalidGroupId)]
    );
    assert_eq!(
        txn_commit(c, "g", -1, &[("orders", 0, 1, "")]).await,
        vec![code(ResponseError::InvalidProducerIdMapping)]
    );
    broker.stop().await;

    let idle = GroupCoordinator::new(config(), Arc::clone(&log));
    assert_eq!(
        txn_commit(&idle, "g", PRODUCER, &[("orders", 0, 1, "")]).await,
        vec![code(ResponseError::NotCoordinator)]
    );
}

#[tokio::test(start_paused = true)]
async fn open_transactions_keep_offsets_from_retention() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let config = GroupConfig {
        offsets_retention: Duration::from_secs(3_600),
        offsets_retention_check_interval: Duration::from_secs(60),
        ..config()
    };
    let broker = Broker::start(Arc::clone(&log), config.clone()).await;
    let c = &broker.coordinator;
    plain_commit(c, "g", &[("t", 0, 1), ("t", 1, 1)]).await;
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 2, "")]).await,
        vec![NONE]
    );
    assert_eq!(
        txn_commit(c, "pending-only", PRODUCER, &[("t", 0, 3, "")]).await,
        vec![NONE]
    );
    tokio::time::sleep(Duration::from_secs(3 * 3_600)).await;

    assert_eq!(
        fetch_v7(c, "g", "t", 1, false).await,
        (-1, NONE),
        "an offset without open transaction expires"
    );
    assert_eq!(
        fetch_v7(c, "g", "t", 0, false).await,
        (1, NONE),
        "kept while pending"
    );
    let mut groups: Vec<String> = c
        .list_groups(Default::default(), 4)
        .await
        .groups
        .into_iter()
        .map(|g| g.group_id.0.as_str().to_owned())
        .collect();
    groups.sort();
    assert_eq!(groups, vec!["g".to_owned(), "pending-only".to_owned()]);

    end_txn(&log, c, "g", PRODUCER, true).await;
    if c.partition_for("pending-only") != c.partition_for("g") {
        end_txn(&log, c, "pending-only", PRODUCER, true).await;
    }
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (2, NONE));
    assert_eq!(fetch_v7(c, "pending-only", "t", 0, true).await, (3, NONE));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn deleting_a_group_drops_its_open_transaction_offsets() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 2, "")]).await,
        vec![NONE]
    );
    let deleted = c
        .delete_groups(
            DeleteGroupsRequest::default().with_groups_names(vec![gid("g")]),
            2,
        )
        .await;
    assert_eq!(
        deleted.results[0].error_code, NONE,
        "an empty group goes, as in Kafka"
    );
    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (-1, NONE));
    broker.stop().await;

    let broker = Broker::start(log, config()).await;
    assert_eq!(
        fetch_v7(&broker.coordinator, "g", "t", 0, true).await,
        (-1, NONE),
        "the tombstone drops the pending offset on replay too"
    );
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_group_completing_a_rebalance_takes_transactional_commits() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(gid("g"))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(30_000)
            .with_member_id(s(member))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"sub")),
            ])
    };
    let first = c.join_group(join(""), 9).await;
    let joined = c.join_group(join(first.member_id.as_str()), 9).await;
    assert_eq!(joined.error_code, NONE);
    // Joined, no SyncGroup yet: the group is completing its rebalance.
    let member = joined.member_id.as_str().to_owned();
    let plain = c
        .offset_commit(
            OffsetCommitRequest::default()
                .with_group_id(gid("g"))
                .with_member_id(s(&member))
                .with_generation_id_or_member_epoch(joined.generation_id)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(vec![
                            OffsetCommitRequestPartition::default().with_committed_offset(1),
                        ]),
                ]),
            8,
        )
        .await;
    assert_eq!(
        plain.topics[0].partitions[0].error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let txn = txn_request("g", PRODUCER, &[("t", 0, 2, "")])
        .with_member_id(s(&member))
        .with_generation_id(joined.generation_id);
    assert_eq!(
        txn_commit_with(c, txn, 3).await,
        vec![NONE],
        "Kafka takes a transactional commit of the current generation here"
    );
    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (2, NONE));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn offset_delete_drops_offsets_of_open_transactions() {
    use kafka_protocol::messages::OffsetDeleteRequest;
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    plain_commit(c, "g", &[("kept", 0, 1)]).await;
    assert_eq!(
        txn_commit(c, "g", PRODUCER, &[("t", 0, 2, "")]).await,
        vec![NONE]
    );
    let deleted = c
        .offset_delete(
            OffsetDeleteRequest::default()
                .with_group_id(gid("g"))
                .with_topics(vec![
                    OffsetDeleteRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(vec![OffsetDeleteRequestPartition::default()]),
                ]),
            0,
        )
        .await;
    assert_eq!(deleted.error_code, NONE);
    assert_eq!(deleted.topics[0].partitions[0].error_code, NONE);
    assert_eq!(
        fetch_v7(c, "g", "t", 0, true).await,
        (-1, NONE),
        "no longer pending"
    );
    end_txn(&log, c, "g", PRODUCER, true).await;
    assert_eq!(fetch_v7(c, "g", "t", 0, true).await, (-1, NONE));
    assert_eq!(fetch_v7(c, "g", "kept", 0, true).await, (1, NONE));
    broker.stop().await;

    let broker = Broker::start(log, config()).await;
    assert_eq!(
        fetch_v7(&broker.coordinator, "g", "t", 0, true).await,
        (-1, NONE)
    );
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_write_the_log_refuses_is_reported_and_not_pending() {
    /// A log that fences every transactional batch, as storage does for a stale producer epoch.
    #[derive(Debug, Default)]
    struct Fencing(MemoryOffsetsLog);
    impl OffsetsLog for Fencing {
        async fn append(&self, partition: i32, batch: Bytes) -> Result<i64, OffsetsLogError> {
            if batch.get(21..23).is_some_and(|a| a[1] & 0x10 != 0) {
                return Err(OffsetsLogError::Rejected {
                    partition,
                    error_code: code(ResponseError::ProducerFenced),
                    reason: "epoch is stale".into(),
                });
            }
            self.0.append(partition, batch).await
        }
        fn read(
            &self,
            partition: i32,
            offset: i64,
            max_bytes: usize,
        ) -> Result<(Bytes, i64), OffsetsLogError> {
            self.0.read(partition, offset, max_bytes)
        }
    }
    let c = GroupCoordinator::new(config(), Arc::new(Fencing::default()));
    for p in 0..PARTITIONS {
        c.load_partition(p).await.expect("loads");
    }
    let resp = c
        .txn_offset_commit(txn_request("g", PRODUCER, &[("t", 0, 2, "")]), 4)
        .await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        code(ResponseError::ProducerFenced)
    );
    let fetched = c
        .offset_fetch(
            OffsetFetchRequest::default()
                .with_group_id(gid("g"))
                .with_require_stable(true)
                .with_topics(Some(vec![
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partition_indexes(vec![0]),
                ])),
            7,
        )
        .await;
    assert_eq!(
        fetched.topics[0].partitions[0].error_code, NONE,
        "nothing pending"
    );
    assert!(
        c.list_groups(Default::default(), 4).await.groups.is_empty(),
        "the group created for the refused commit goes again"
    );
    c.shutdown().await;
}
