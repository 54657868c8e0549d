//! The coordinator over an in-memory `__consumer_offsets`: the flows clients drive, persistence
//! across a coordinator move, deletion and retention. Time is tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    DescribeGroupsRequest, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, OffsetFetchResponse, ProducerId, SyncGroupRequest, TopicName,
    TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::Encodable;
use strom_group::records::{RecordKey, parse_batches};
use strom_group::{
    ClientInfo, CommittedOffset, CoordinatorOptions, GroupConfig, GroupCoordinator, GroupError,
    MemoryOffsetsLog, OffsetsLog, OffsetsLogError, TopicLookup,
};
use tokio_util::sync::CancellationToken;

mod common;

use common::*;

const SESSION_MS: i32 = 10_000;
const REBALANCE_MS: i32 = 30_000;

fn join_request(
    group: &str,
    member_id: &str,
    instance: Option<&str>,
    protocols: &[(&str, &[u8])],
) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(SESSION_MS)
        .with_rebalance_timeout_ms(REBALANCE_MS)
        .with_member_id(s(member_id))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(
            protocols
                .iter()
                .map(|(name, meta)| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(name))
                        .with_metadata(Bytes::copy_from_slice(meta))
                })
                .collect(),
        )
}

/// A new member's join the way v4+ clients do it: MEMBER_ID_REQUIRED, then again with the id.
async fn join_new<L: OffsetsLog>(c: &GroupCoordinator<L>, group: &str) -> JoinGroupResponse {
    let client = ClientInfo {
        client_id: "test-client".into(),
        client_host: "/127.0.0.1".into(),
    };
    let first = c
        .join_group_with_client(
            join_request(group, "", None, &[("range", b"sub")]),
            9,
            client.clone(),
        )
        .await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    assert!(
        first.member_id.as_str().starts_with("test-client-"),
        "{:?}",
        first.member_id
    );
    c.join_group_with_client(
        join_request(group, first.member_id.as_str(), None, &[("range", b"sub")]),
        9,
        client,
    )
    .await
}

async fn sync<L: OffsetsLog>(
    c: &GroupCoordinator<L>,
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> (i16, Bytes) {
    let req = SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        );
    let resp = c.sync_group(req, 5).await;
    (resp.error_code, resp.assignment)
}

async fn heartbeat<L: OffsetsLog>(
    c: &GroupCoordinator<L>,
    group: &str,
    member: &str,
    generation: i32,
) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(s(member))
        .with_generation_id(generation);
    c.heartbeat(req, 4).await.error_code
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64, &str)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset, metadata) in offsets {
        let p = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(7)
            .with_committed_metadata(Some(s(metadata)));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics)
}

async fn commit<L: OffsetsLog>(
    c: &GroupCoordinator<L>,
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64, &str)],
) -> Vec<i16> {
    let resp = c
        .offset_commit(commit_request(group, member, generation, offsets), 8)
        .await;
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// (topic, partition, offset, leader epoch, metadata) of the group, v7 form.
async fn fetch<L: OffsetsLog>(
    c: &GroupCoordinator<L>,
    group: &str,
    topics: Option<&[(&str, &[i32])]>,
) -> (i16, Vec<(String, i32, i64, i32, String)>) {
    let req = OffsetFetchRequest::default()
        .with_group_id(gid(group))
        .with_topics(topics.map(|topics| {
            topics
                .iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s(t)))
                        .with_partition_indexes(ps.to_vec())
                })
                .collect()
        }));
    let resp: OffsetFetchResponse = c.offset_fetch(req, 7).await;
    let rows = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.as_str().to_owned(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.metadata
                        .as_ref()
                        .map(|m| m.as_str().to_owned())
                        .unwrap_or_default(),
                )
            })
        })
        .collect();
    (resp.error_code, rows)
}

/// Joins one member and completes its first rebalance; returns (member id, generation).
async fn stable_single_member<L: OffsetsLog>(
    c: &GroupCoordinator<L>,
    group: &str,
) -> (String, i32) {
    let joined = join_new(c, group).await;
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.as_str().to_owned();
    assert_eq!(joined.leader.as_str(), member);
    let (error, assignment) = sync(
        c,
        group,
        &member,
        joined.generation_id,
        &[(&member, b"all-of-it")],
    )
    .await;
    assert_eq!((error, assignment.as_ref()), (0, b"all-of-it".as_ref()));
    (member, joined.generation_id)
}

#[tokio::test(start_paused = true)]
async fn committed_offsets_and_group_survive_a_coordinator_move() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let (member, generation) = stable_single_member(c, "g").await;
    let errors = commit(
        c,
        "g",
        &member,
        generation,
        &[
            ("orders", 0, 42, "meta-0"),
            ("orders", 1, 7, ""),
            ("payments", 3, 1_000, "x"),
        ],
    )
    .await;
    assert_eq!(errors, vec![0, 0, 0]);
    assert_eq!(
        c.committed_offsets(),
        vec![
            CommittedOffset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 0,
                offset: 42
            },
            CommittedOffset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 1,
                offset: 7
            },
            CommittedOffset {
                group: "g".into(),
                topic: "payments".into(),
                partition: 3,
                offset: 1_000
            },
        ]
    );
    let before = fetch(c, "g", None).await;
    broker.stop().await;

    // Another coordinator over the same log: everything is loaded back.
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let after = fetch(c, "g", None).await;
    assert_eq!(after, before);
    assert_eq!(
        after.1,
        vec![
            ("orders".into(), 0, 42, 7, "meta-0".into()),
            ("orders".into(), 1, 7, 7, "".into()),
            ("payments".into(), 3, 1_000, 7, "x".into()),
        ]
    );
    let requested = fetch(c, "g", Some(&[("orders", &[0, 5])])).await;
    assert_eq!(
        requested.1,
        vec![
            ("orders".into(), 0, 42, 7, "meta-0".into()),
            ("orders".into(), 5, -1, -1, "".into())
        ]
    );

    // The group itself came back Stable, with its member and assignment.
    let described = c
        .describe_groups(
            DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
            5,
        )
        .await;
    let g = &described.groups[0];
    assert_eq!(
        (
            g.error_code,
            g.group_state.as_str(),
            g.protocol_data.as_str()
        ),
        (0, "Stable", "range")
    );
    assert_eq!(g.members.len(), 1);
    assert_eq!(g.members[0].member_id.as_str(), member);
    assert_eq!(g.members[0].client_id.as_str(), "test-client");
    assert_eq!(g.members[0].member_assignment.as_ref(), b"all-of-it");
    assert_eq!(heartbeat(c, "g", &member, generation).await, 0);
    let (error, assignment) = sync(c, "g", &member, generation, &[]).await;
    assert_eq!((error, assignment.as_ref()), (0, b"all-of-it".as_ref()));
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn two_members_share_the_group_and_a_silent_one_is_expired() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(log, config()).await;
    let c = &broker.coordinator;
    let (m1, g1) = stable_single_member(c, "g").await;

    // m2 joins; m1 learns about the rebalance from its heartbeat and rejoins.
    let second = tokio::spawn({
        let c = c.clone();
        async move { join_new(&c, "g").await }
    });
    let mut hb = 0;
    for _ in 0..50 {
        hb = heartbeat(c, "g", &m1, g1).await;
        if hb != 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hb, code(ResponseError::RebalanceInProgress));
    let rejoin = c
        .join_group(join_request("g", &m1, None, &[("range", b"sub")]), 9)
        .await;
    let joined2 = second.await.expect("join task");
    assert_eq!((rejoin.error_code, joined2.error_code), (0, 0));
    assert_eq!(rejoin.generation_id, g1 + 1);
    assert_eq!(joined2.generation_id, g1 + 1);
    assert_eq!(rejoin.leader.as_str(), m1);
    assert_eq!(rejoin.members.len(), 2, "the leader sees both members");
    assert!(joined2.members.is_empty());
    let m2 = joined2.member_id.as_str().to_owned();
    let g2 = rejoin.generation_id;

    let follower = tokio::spawn({
        let (c, m2) = (c.clone(), m2.clone());
        async move { sync(&c, "g", &m2, g2, &[]).await }
    });
    tokio::task::yield_now().await;
    let leader = sync(c, "g", &m1, g2, &[(&m1, b"p0,p1,p2"), (&m2, b"p3,p4,p5")]).await;
    assert_eq!(leader, (0, Bytes::from_static(b"p0,p1,p2")));
    assert_eq!(
        follower.await.expect("sync task"),
        (0, Bytes::from_static(b"p3,p4,p5"))
    );

    // m2 goes silent; m1 keeps heartbeating and is told to rejoin once m2's session expired.
    let started = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let error = heartbeat(c, "g", &m1, g2).await;
        if error == code(ResponseError::RebalanceInProgress) {
            break;
        }
        assert_eq!(error, 0);
        assert!(
            started.elapsed() < Duration::from_millis(SESSION_MS as u64 * 2),
            "m2 never expired"
        );
    }
    assert!(started.elapsed() >= Duration::from_millis(SESSION_MS as u64 - 1_000));
    let rejoin = c
        .join_group(join_request("g", &m1, None, &[("range", b"sub")]), 9)
        .await;
    assert_eq!(
        (
            rejoin.error_code,
            rejoin.generation_id,
            rejoin.members.len()
        ),
        (0, g2 + 1, 1)
    );
    assert_eq!(
        heartbeat(c, "g", &m2, g2).await,
        code(ResponseError::UnknownMemberId)
    );
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_keeps_assignment_and_fences_old_instance() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(log, config()).await;
    let c = &broker.coordinator;
    let first = c
        .join_group(
            join_request("g", "", Some("pod-0"), &[("range", b"sub")]),
            9,
        )
        .await;
    assert_eq!(
        first.error_code, 0,
        "static members skip MEMBER_ID_REQUIRED"
    );
    let old = first.member_id.as_str().to_owned();
    assert!(old.starts_with("pod-0-"));
    assert_eq!(
        sync(c, "g", &old, first.generation_id, &[(&old, b"mine")])
            .await
            .0,
        0
    );

    let again = c
        .join_group(
            join_request("g", "", Some("pod-0"), &[("range", b"sub")]),
            9,
        )
        .await;
    assert_eq!(
        (again.error_code, again.generation_id),
        (0, first.generation_id),
        "no rebalance"
    );
    let new = again.member_id.as_str().to_owned();
    assert_ne!(new, old);
    let (error, assignment) = sync(c, "g", &new, again.generation_id, &[]).await;
    assert_eq!((error, assignment.as_ref()), (0, b"mine".as_ref()));

    let fenced = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&old))
        .with_group_instance_id(Some(s("pod-0")))
        .with_generation_id(first.generation_id);
    assert_eq!(
        c.heartbeat(fenced, 4).await.error_code,
        code(ResponseError::FencedInstanceId)
    );
    let fenced_commit = commit_request("g", &old, first.generation_id, &[("t", 0, 1, "")])
        .with_group_instance_id(Some(s("pod-0")));
    let resp = c.offset_commit(fenced_commit, 8).await;
    assert_eq!(
        resp.topics[0].partitions[0].error_code,
        code(ResponseError::FencedInstanceId)
    );

    // Removing the static member by instance id (kafka-consumer-groups --delete-members).
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_group_instance_id(Some(s("pod-0"))),
        ]);
    let resp = c.leave_group(leave, 5).await;
    assert_eq!((resp.error_code, resp.members[0].error_code), (0, 0));
    let described = c
        .describe_groups(
            DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
            5,
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn standalone_commits_and_multi_group_fetch() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(log, config()).await;
    let c = &broker.coordinator;
    assert_eq!(
        commit(c, "simple", "", -1, &[("t", 0, 5, "m")]).await,
        vec![0]
    );
    assert_eq!(
        commit(c, "unknown-gen", "", 3, &[("t", 0, 5, "m")]).await,
        vec![code(ResponseError::IllegalGeneration)]
    );
    let req = OffsetFetchRequest::default().with_groups(vec![
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("simple"))
            .with_topics(None),
        OffsetFetchRequestGroup::default()
            .with_group_id(gid("nobody"))
            .with_topics(Some(vec![
                kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics::default()
                    .with_name(TopicName(s("t")))
                    .with_partition_indexes(vec![0]),
            ])),
    ]);
    let resp = c.offset_fetch(req, 8).await;
    assert_eq!(resp.groups.len(), 2);
    let simple = &resp.groups[0];
    assert_eq!(simple.error_code, 0);
    assert_eq!(simple.topics[0].partitions[0].committed_offset, 5);
    assert_eq!(
        simple.topics[0].partitions[0]
            .metadata
            .as_ref()
            .map(|m| m.as_str()),
        Some("m")
    );
    assert_eq!(resp.groups[1].topics[0].partitions[0].committed_offset, -1);

    let listed = c.list_groups(ListGroupsRequest::default(), 5).await;
    let names: Vec<(&str, &str)> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(names, vec![("simple", "Empty")]);
    let filtered = c
        .list_groups(
            ListGroupsRequest::default().with_states_filter(vec![s("stable")]),
            5,
        )
        .await;
    assert!(filtered.groups.is_empty());
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn delete_groups_writes_tombstones_that_survive_reload() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(Arc::clone(&log), config()).await;
    let c = &broker.coordinator;
    let (member, generation) = stable_single_member(c, "g").await;
    assert_eq!(
        commit(c, "g", &member, generation, &[("t", 0, 10, "")]).await,
        vec![0]
    );
    let delete =
        || DeleteGroupsRequest::default().with_groups_names(vec![gid("g"), gid("missing")]);
    let resp = c.delete_groups(delete(), 2).await;
    assert_eq!(
        resp.results[0].error_code,
        code(ResponseError::NonEmptyGroup)
    );
    assert_eq!(
        resp.results[1].error_code,
        code(ResponseError::GroupIdNotFound)
    );

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(s(&member));
    assert_eq!(c.leave_group(leave, 2).await.error_code, 0);
    let resp = c.delete_groups(delete(), 2).await;
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(fetch(c, "g", Some(&[("t", &[0])])).await.1[0].2, -1);

    // The last batch holds the tombstones: the offset and the group metadata, null values.
    let partition = c.partition_for("g");
    let (_, last) = log.batches(partition).pop().expect("batches written");
    let parsed = parse_batches(last).expect("valid batch");
    let keys: Vec<(RecordKey, bool)> = parsed
        .records
        .iter()
        .map(|r| {
            (
                RecordKey::decode(r.key.as_deref().expect("key"))
                    .expect("decodes")
                    .expect("known"),
                r.value.is_none(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            (
                RecordKey::OffsetCommit {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 0
                },
                true
            ),
            (RecordKey::GroupMetadata { group: "g".into() }, true),
        ]
    );
    broker.stop().await;

    let broker = Broker::start(log, config()).await;
    let c = &broker.coordinator;
    assert!(c.committed_offsets().is_empty());
    assert!(
        c.list_groups(ListGroupsRequest::default(), 5)
            .await
            .groups
            .is_empty()
    );
    let described = c
        .describe_groups(
            DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
            5,
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Dead");
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn offsets_of_empty_groups_expire_after_retention() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let config = GroupConfig {
        offsets_retention: Duration::from_secs(3_600),
        offsets_retention_check_interval: Duration::from_secs(60),
        ..config()
    };
    let broker = Broker::start(Arc::clone(&log), config.clone()).await;
    let c = &broker.coordinator;
    assert_eq!(commit(c, "old", "", -1, &[("t", 0, 1, "")]).await, vec![0]);
    tokio::time::sleep(Duration::from_secs(1_800)).await;
    assert_eq!(
        commit(c, "young", "", -1, &[("t", 0, 2, "")]).await,
        vec![0]
    );
    tokio::time::sleep(Duration::from_secs(1_800 + 120)).await;
    let left: Vec<String> = c.committed_offsets().into_iter().map(|o| o.group).collect();
    assert_eq!(
        left,
        vec!["young".to_owned()],
        "only the offset older than retention expired"
    );
    tokio::time::sleep(Duration::from_secs(1_800)).await;
    assert!(c.committed_offsets().is_empty());
    assert!(
        c.list_groups(ListGroupsRequest::default(), 5)
            .await
            .groups
            .is_empty(),
        "groups left without offsets go"
    );
    broker.stop().await;

    let broker = Broker::start(log, config).await;
    assert!(
        broker.coordinator.committed_offsets().is_empty(),
        "tombstones survive the reload"
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
async fn commits_to_unknown_partitions_and_offset_delete() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let options = CoordinatorOptions {
        topic_lookup: Some(Arc::new(KnownTopics)),
        ..CoordinatorOptions::default()
    };
    let c = GroupCoordinator::with_options(config(), log, options);
    for p in 0..PARTITIONS {
        c.load_partition(p).await.expect("loads");
    }
    let long_metadata = "x".repeat(5_000);
    let errors = commit(
        &c,
        "g",
        "",
        -1,
        &[
            ("orders", 0, 1, ""),
            ("orders", 9, 1, ""),
            ("nope", 0, 1, ""),
            ("orders", 1, 1, &long_metadata),
        ],
    )
    .await;
    assert_eq!(
        errors,
        // Grouped by topic as the request carries them: orders 0, 9, 1, then nope 0.
        vec![
            0,
            code(ResponseError::UnknownTopicOrPartition),
            code(ResponseError::OffsetMetadataTooLarge),
            code(ResponseError::UnknownTopicOrPartition)
        ]
    );
    let delete = OffsetDeleteRequest::default()
        .with_group_id(gid("g"))
        .with_topics(vec![
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(s("orders")))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(0),
                ]),
        ]);
    let resp = c.offset_delete(delete.clone(), 0).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    assert!(c.committed_offsets().is_empty());
    let resp = c.offset_delete(delete, 0).await;
    assert_eq!(
        resp.error_code,
        code(ResponseError::GroupIdNotFound),
        "the empty group without offsets is gone"
    );
    c.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn groups_of_unowned_partitions_are_not_coordinated_here() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let c = GroupCoordinator::new(config(), Arc::clone(&log));
    let resp = c
        .join_group(join_request("g", "", None, &[("range", b"")]), 9)
        .await;
    assert_eq!(resp.error_code, code(ResponseError::NotCoordinator));
    assert_eq!(
        fetch(&c, "g", None).await.0,
        code(ResponseError::NotCoordinator)
    );
    assert!(matches!(
        c.load_partition(PARTITIONS).await,
        Err(GroupError::UnknownPartition { .. })
    ));

    // Coordinating a partition, then resigning it.
    let p = c.partition_for("g");
    let key = RecordKey::GroupMetadata { group: "g".into() }
        .encode()
        .expect("key");
    let batch = strom_group::records::build_batch(&[(key, None)], 0).expect("batch");
    log.append(p, batch.clone()).await.expect("append");
    c.load_partition(p).await.expect("whole batches load");
    assert_eq!(fetch(&c, "g", None).await.0, 0);
    c.unload_partition(p).await;
    assert_eq!(
        fetch(&c, "g", None).await.0,
        code(ResponseError::NotCoordinator)
    );

    // A torn batch at the end of the partition fails the load; the partition stays unowned.
    let mut torn = BytesMut::from(&batch[..]);
    torn.truncate(batch.len() - 5);
    log.append(p, torn.freeze()).await.expect("append");
    assert!(matches!(
        c.load_partition(p).await,
        Err(GroupError::CorruptBatch { .. })
    ));
    assert_eq!(
        fetch(&c, "g", None).await.0,
        code(ResponseError::NotCoordinator)
    );

    let failing = Arc::new(FailingLog);
    let c = GroupCoordinator::new(config(), failing);
    assert!(matches!(
        c.load_partition(0).await,
        Err(GroupError::Load { partition: 0, .. })
    ));
    let resp = c.list_groups(ListGroupsRequest::default(), 5).await;
    assert_eq!(resp.error_code, 0, "a failed load leaves nothing loading");
}

#[derive(Debug)]
struct FailingLog;

impl OffsetsLog for FailingLog {
    async fn append(&self, partition: i32, _batch: Bytes) -> Result<i64, OffsetsLogError> {
        Err(OffsetsLogError::NotLeader { partition })
    }

    fn read(
        &self,
        partition: i32,
        _offset: i64,
        _max_bytes: usize,
    ) -> Result<(Bytes, i64), OffsetsLogError> {
        Err(OffsetsLogError::Storage {
            partition,
            reason: "disk gone".into(),
        })
    }
}

#[tokio::test(start_paused = true)]
async fn failed_offset_write_is_reported_and_not_applied() {
    #[derive(Debug, Default)]
    struct ReadOnly(MemoryOffsetsLog);
    impl OffsetsLog for ReadOnly {
        async fn append(&self, partition: i32, _batch: Bytes) -> Result<i64, OffsetsLogError> {
            Err(OffsetsLogError::NotLeader { partition })
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
    let c = GroupCoordinator::new(config(), Arc::new(ReadOnly::default()));
    for p in 0..PARTITIONS {
        c.load_partition(p).await.expect("loads");
    }
    assert_eq!(
        commit(&c, "g", "", -1, &[("t", 0, 1, "")]).await,
        vec![code(ResponseError::NotCoordinator)]
    );
    assert!(c.committed_offsets().is_empty());
    c.shutdown().await;
    assert_eq!(
        commit(&c, "g", "", -1, &[("t", 0, 1, "")]).await,
        vec![code(ResponseError::CoordinatorNotAvailable)]
    );
}

/// Every response the coordinator builds encodes at every version it advertises.
#[tokio::test(start_paused = true)]
async fn responses_encode_at_every_supported_version() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let broker = Broker::start(
        log,
        GroupConfig {
            initial_rebalance_delay: Duration::ZERO,
            ..config()
        },
    )
    .await;
    let c = &broker.coordinator;
    let (member, generation) = stable_single_member(c, "g").await;
    commit(c, "g", &member, generation, &[("t", 0, 1, "m")]).await;
    fn encodes<T: Encodable>(message: &T, version: i16, api: &str) {
        let mut buf = BytesMut::new();
        message
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("{api} v{version}: {e}"));
    }
    for &(api, min, max) in GroupCoordinator::<MemoryOffsetsLog>::supported_versions() {
        for v in min..=max {
            match api {
                8 => encodes(
                    &c.offset_commit(
                        commit_request("g", &member, generation, &[("t", 0, 2, "m")]),
                        v,
                    )
                    .await,
                    v,
                    "OffsetCommit",
                ),
                9 => {
                    let req = if v >= 8 {
                        OffsetFetchRequest::default().with_groups(vec![
                            OffsetFetchRequestGroup::default().with_group_id(gid("g")),
                        ])
                    } else {
                        OffsetFetchRequest::default()
                            .with_group_id(gid("g"))
                            .with_topics(Some(vec![
                                OffsetFetchRequestTopic::default()
                                    .with_name(TopicName(s("t")))
                                    .with_partition_indexes(vec![0]),
                            ]))
                    };
                    encodes(&c.offset_fetch(req, v).await, v, "OffsetFetch")
                }
                11 => encodes(
                    &c.join_group(join_request("other", "", None, &[("range", b"")]), v)
                        .await,
                    v,
                    "JoinGroup",
                ),
                12 => encodes(
                    &c.heartbeat(
                        HeartbeatRequest::default()
                            .with_group_id(gid("g"))
                            .with_member_id(s(&member))
                            .with_generation_id(generation),
                        v,
                    )
                    .await,
                    v,
                    "Heartbeat",
                ),
                13 => encodes(
                    &c.leave_group(
                        LeaveGroupRequest::default()
                            .with_group_id(gid("nobody"))
                            .with_member_id(s("x")),
                        v,
                    )
                    .await,
                    v,
                    "LeaveGroup",
                ),
                14 => encodes(
                    &c.sync_group(
                        SyncGroupRequest::default()
                            .with_group_id(gid("g"))
                            .with_member_id(s(&member))
                            .with_generation_id(generation),
                        v,
                    )
                    .await,
                    v,
                    "SyncGroup",
                ),
                15 => encodes(
                    &c.describe_groups(
                        DescribeGroupsRequest::default()
                            .with_groups(vec![gid("g"), gid("none")])
                            .with_include_authorized_operations(v >= 3),
                        v,
                    )
                    .await,
                    v,
                    "DescribeGroups",
                ),
                16 => encodes(
                    &c.list_groups(ListGroupsRequest::default(), v).await,
                    v,
                    "ListGroups",
                ),
                28 => encodes(
                    &c.txn_offset_commit(
                        TxnOffsetCommitRequest::default()
                            .with_transactional_id(TransactionalId(s("t")))
                            .with_group_id(gid("g"))
                            .with_producer_id(ProducerId(7))
                            .with_topics(vec![
                                TxnOffsetCommitRequestTopic::default()
                                    .with_name(TopicName(s("t")))
                                    .with_partitions(vec![
                                        TxnOffsetCommitRequestPartition::default()
                                            .with_committed_offset(1),
                                    ]),
                            ]),
                        v,
                    )
                    .await,
                    v,
                    "TxnOffsetCommit",
                ),
                42 => encodes(
                    &c.delete_groups(
                        DeleteGroupsRequest::default().with_groups_names(vec![gid("none")]),
                        v,
                    )
                    .await,
                    v,
                    "DeleteGroups",
                ),
                47 => encodes(
                    &c.offset_delete(OffsetDeleteRequest::default().with_group_id(gid("none")), v)
                        .await,
                    v,
                    "OffsetDelete",
                ),
                other => panic!("unexpected api key {other}"),
            }
        }
    }
    broker.stop().await;
}

#[tokio::test(start_paused = true)]
async fn requests_during_a_load_are_told_to_wait_or_rejoin() {
    let log = Arc::new(MemoryOffsetsLog::new());
    let p =
        GroupCoordinator::<MemoryOffsetsLog>::new(config(), Arc::clone(&log)).partition_for("g");
    // Enough batches that the load takes many reads (and yields between them).
    for i in 0..500 {
        let offset = strom_group::records::OffsetCommitValue {
            offset: i,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        };
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        };
        let batch = strom_group::records::build_batch(
            &[(
                key.encode().expect("key"),
                Some(offset.encode().expect("value")),
            )],
            0,
        )
        .expect("batch");
        log.append(p, batch).await.expect("append");
    }
    let config = GroupConfig {
        load_buffer_size: 1024,
        ..config()
    };
    let c = GroupCoordinator::new(config, log);
    let loading = tokio::spawn({
        let c = c.clone();
        async move { c.load_partition(p).await }
    });
    tokio::task::yield_now().await;
    let join = c
        .join_group(join_request("g", "", None, &[("range", b"")]), 9)
        .await;
    assert_eq!(
        join.error_code,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(
        fetch(&c, "g", None).await.0,
        code(ResponseError::CoordinatorLoadInProgress)
    );
    // Members of a moving group: heartbeats pass, a sync makes them rejoin.
    assert_eq!(heartbeat(&c, "g", "m", 1).await, 0);
    assert_eq!(
        sync(&c, "g", "m", 1, &[]).await.0,
        code(ResponseError::RebalanceInProgress)
    );
    loading.await.expect("load task").expect("load succeeds");
    let (error, rows) = fetch(&c, "g", None).await;
    assert_eq!(error, 0);
    assert_eq!(
        rows,
        vec![("t".to_owned(), 0, 499, -1, String::new())],
        "the last commit wins"
    );
}

/// The broker runs each connection on its own task: every API future must be `Send`.
#[test]
fn api_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn check<L: OffsetsLog>(c: &GroupCoordinator<L>) {
        send(&c.join_group(JoinGroupRequest::default(), 9));
        send(&c.join_group_with_client(JoinGroupRequest::default(), 9, ClientInfo::default()));
        send(&c.sync_group(SyncGroupRequest::default(), 5));
        send(&c.heartbeat(HeartbeatRequest::default(), 4));
        send(&c.leave_group(LeaveGroupRequest::default(), 5));
        send(&c.offset_commit(OffsetCommitRequest::default(), 8));
        send(&c.offset_fetch(OffsetFetchRequest::default(), 8));
        send(&c.list_groups(ListGroupsRequest::default(), 5));
        send(&c.describe_groups(DescribeGroupsRequest::default(), 5));
        send(&c.delete_groups(DeleteGroupsRequest::default(), 2));
        send(&c.offset_delete(OffsetDeleteRequest::default(), 0));
        send(&c.txn_offset_commit(TxnOffsetCommitRequest::default(), 4));
        send(&c.complete_transaction(0, 1, 0, true));
        send(&c.load_partition(0));
        send(&c.unload_partition(0));
        send(&c.shutdown());
        send(&c.timer().run(CancellationToken::new()));
    }
    let c = GroupCoordinator::new(config(), Arc::new(MemoryOffsetsLog::new()));
    check(&c);
    fn shared<T: Send + Sync + Clone>(_: &T) {}
    shared(&c);
}

#[tokio::test(start_paused = true)]
async fn groups_hash_onto_the_partition_count_the_topic_has() {
    // A topic created with 3 partitions, coordinated by a broker configured for 50: groups
    // hash onto the 3 that exist, or a group hashing onto partition 3..50 would never find a
    // coordinator.
    let log = Arc::new(MemoryOffsetsLog::new());
    let configured = GroupConfig {
        offsets_topic_partitions: 50,
        ..GroupConfig::default()
    };
    let c = GroupCoordinator::new(configured, Arc::clone(&log));
    let group = (0..)
        .map(|i| format!("group-{i}"))
        .find(|g| strom_group::coordinator_partition(g, 50) >= 3)
        .expect("some group hashes beyond partition 2");
    assert_eq!(c.partition_count(), 50);
    assert!(c.set_partition_count(3));
    assert!(!c.set_partition_count(3), "the same count is no change");
    assert_eq!(c.partition_count(), 3);
    assert_eq!(
        c.partition_for(&group),
        strom_group::coordinator_partition(&group, 3)
    );
    for p in 0..3 {
        c.load_partition(p).await.expect("partition loads");
    }
    assert!(matches!(
        c.load_partition(3).await,
        Err(GroupError::UnknownPartition {
            partition: 3,
            partitions: 3
        })
    ));
    assert_eq!(
        commit(&c, &group, "", -1, &[("t", 0, 42, "m")]).await,
        vec![0]
    );
    let (error, rows) = fetch(&c, &group, None).await;
    assert_eq!(error, 0);
    assert_eq!(rows, vec![("t".to_owned(), 0, 42, 7, "m".to_owned())]);

    // The commit went to the partition the group hashes onto under 3: a coordinator that
    // replays only that partition holds it.
    let moved = GroupCoordinator::new(
        GroupConfig {
            offsets_topic_partitions: 50,
            ..GroupConfig::default()
        },
        log,
    );
    moved.set_partition_count(3);
    moved
        .load_partition(moved.partition_for(&group))
        .await
        .expect("partition loads");
    let (error, rows) = fetch(&moved, &group, None).await;
    assert_eq!(error, 0);
    assert_eq!(rows, vec![("t".to_owned(), 0, 42, 7, "m".to_owned())]);
}
