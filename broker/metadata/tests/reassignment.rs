//! Reassignments (KIP-455), ElectLeaders (KIP-460) and the preferred leader rebalance on a
//! real single-voter quorum.

mod common;

use std::path::Path;
use std::time::Duration;

use strom_metadata::AlterPartitionRequest;
use strom_metadata::Controller;
use strom_metadata::ControllerError;
use strom_metadata::ControllerOptions;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataQuorum;
use strom_metadata::PartitionImage;
use strom_metadata::PartitionReassignment;
use strom_metadata::QuorumConfig;
use strom_metadata::controller_ops::BrokerRegistrationRequest;
use strom_metadata::controller_ops::HeartbeatRequest;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn start(dir: &Path, brokers: i32, options: ControllerOptions) -> (Controller, Vec<Uuid>) {
    let quorum = MetadataQuorum::start(QuorumConfig::single_voter(1, dir, "127.0.0.1:9093"))
        .await
        .expect("single-voter quorum starts");
    let controller = Controller::with_options(quorum, options);
    let mut incarnations = vec![Uuid::nil()];
    for node_id in 1..=brokers {
        let incarnation =
            common::register_live(&controller, node_id, &format!("b{node_id}"), 9092, None)
                .await
                .expect("broker registers");
        incarnations.push(incarnation);
    }
    (controller, incarnations)
}

fn options() -> ControllerOptions {
    ControllerOptions {
        session_timeout: Duration::from_secs(600),
        ..ControllerOptions::default()
    }
}

async fn create(controller: &Controller, name: &str, replicas: &[&[i32]]) -> Uuid {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        assignments: Some((0..).zip(replicas).map(|(p, r)| (p, r.to_vec())).collect()),
        ..Default::default()
    };
    let created = controller.create_topics(vec![request], false).await;
    created
        .into_iter()
        .next()
        .and_then(|r| r.result.ok())
        .expect("topic created")
        .topic_id
}

fn partition(controller: &Controller, topic: &str, index: i32) -> PartitionImage {
    controller
        .quorum()
        .image()
        .partition(topic, index)
        .cloned()
        .expect("partition exists")
}

/// (replicas, isr, leader, adding, removing) of partition 0 of `topic`.
fn layout(controller: &Controller, topic: &str) -> (Vec<i32>, Vec<i32>, i32, Vec<i32>, Vec<i32>) {
    let p = partition(controller, topic, 0);
    (
        p.replicas,
        p.isr,
        p.leader,
        p.adding_replicas,
        p.removing_replicas,
    )
}

/// The ISR change partition 0's leader asks for.
async fn set_isr(
    controller: &Controller,
    topic: &str,
    topic_id: Uuid,
    inc: &[Uuid],
    isr: &[i32],
) -> strom_metadata::PartitionState {
    let p = partition(controller, topic, 0);
    let leader = usize::try_from(p.leader).expect("has a leader");
    controller
        .alter_partition(AlterPartitionRequest {
            broker_id: p.leader,
            incarnation: inc[leader],
            topic_id,
            partition: 0,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            new_isr: isr.to_vec(),
        })
        .await
        .expect("ISR change accepted")
}

async fn reassign(controller: &Controller, topic: &str, target: Option<&[i32]>) -> i16 {
    let results = controller
        .alter_partition_reassignments(vec![(topic.to_owned(), 0, target.map(<[i32]>::to_vec))])
        .await;
    assert_eq!(results.len(), 1);
    results[0]
        .as_ref()
        .err()
        .map_or(0, ControllerError::kafka_error_code)
}

/// Restarts `node_id`: a new incarnation, fenced, then caught up and unfenced.
async fn restart(controller: &Controller, node_id: i32, heartbeat: bool) -> Uuid {
    let incarnation = Uuid::new_v4();
    controller
        .register(BrokerRegistrationRequest {
            node_id,
            incarnation,
            host: format!("b{node_id}"),
            port: 9092,
            rack: None,
        })
        .await
        .expect("registered");
    if heartbeat {
        controller
            .heartbeat(HeartbeatRequest {
                node_id,
                incarnation,
                metadata_offset: controller.quorum().image().offset,
                want_shutdown: false,
            })
            .await
            .expect("heartbeat");
    }
    incarnation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassignment_adds_replicas_then_completes_when_they_are_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 4, options()).await;
    let topic_id = create(&controller, "t", &[&[1, 2, 3]]).await;
    let before = partition(&controller, "t", 0);

    assert_eq!(reassign(&controller, "t", Some(&[2, 3, 4])).await, 0);
    assert_eq!(
        layout(&controller, "t"),
        (vec![2, 3, 4, 1], vec![1, 2, 3], 1, vec![4], vec![1])
    );
    let listed = controller
        .list_partition_reassignments(None)
        .expect("listed");
    assert_eq!(
        listed,
        vec![PartitionReassignment {
            topic: "t".into(),
            partition: 0,
            replicas: vec![2, 3, 4, 1],
            adding_replicas: vec![4],
            removing_replicas: vec![1],
        }]
    );
    assert_eq!(
        controller
            .list_partition_reassignments(Some(&[("t".into(), 1), ("other".into(), 0)]))
            .expect("listed"),
        Vec::new(),
        "partitions not reassigning are left out"
    );
    assert_eq!(
        partition(&controller, "t", 0).leader_epoch,
        before.leader_epoch
    );

    // Broker 4 caught up: the leader adds it, which completes the reassignment and moves the
    // leadership off broker 1, which is removed.
    let state = set_isr(&controller, "t", topic_id, &inc, &[1, 2, 3, 4]).await;
    assert_eq!(
        (state.replicas.clone(), state.isr.clone(), state.leader),
        (vec![2, 3, 4], vec![2, 3, 4], 2)
    );
    assert_eq!(state.leader_epoch, before.leader_epoch + 1);
    assert_eq!(
        layout(&controller, "t"),
        (vec![2, 3, 4], vec![2, 3, 4], 2, vec![], vec![])
    );
    assert!(
        controller
            .list_partition_reassignments(None)
            .expect("listed")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassignment_that_only_removes_replicas_completes_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, _) = start(dir.path(), 3, options()).await;
    create(&controller, "t", &[&[1, 2, 3]]).await;
    assert_eq!(reassign(&controller, "t", Some(&[3, 2])).await, 0);
    assert_eq!(
        layout(&controller, "t"),
        (vec![3, 2], vec![2, 3], 3, vec![], vec![]),
        "broker 1 removed, its leadership handed to the first target replica in the ISR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_reassignment_midway_restores_the_original_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 4, options()).await;
    let topic_id = create(&controller, "t", &[&[1, 2]]).await;
    assert_eq!(reassign(&controller, "t", Some(&[3, 4])).await, 0);
    // Broker 3 caught up, broker 4 not yet.
    set_isr(&controller, "t", topic_id, &inc, &[1, 2, 3]).await;
    assert_eq!(
        layout(&controller, "t"),
        (vec![3, 4, 1, 2], vec![1, 2, 3], 1, vec![3, 4], vec![1, 2])
    );

    assert_eq!(reassign(&controller, "t", None).await, 0);
    assert_eq!(
        layout(&controller, "t"),
        (vec![1, 2], vec![1, 2], 1, vec![], vec![])
    );
    assert_eq!(
        reassign(&controller, "t", None).await,
        85,
        "nothing left to cancel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_reassignments_are_refused_with_kafka_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, _) = start(dir.path(), 3, options()).await;
    create(&controller, "t", &[&[1, 2]]).await;
    let before = partition(&controller, "t", 0);
    let results = controller
        .alter_partition_reassignments(vec![
            ("t".into(), 0, Some(vec![])),
            ("t".into(), 1, Some(vec![1])),
            ("nope".into(), 0, Some(vec![1])),
            ("t".into(), 0, Some(vec![9])),
            ("t".into(), 0, Some(vec![2, 2])),
            ("t".into(), 0, None),
        ])
        .await;
    let codes: Vec<i16> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .err()
                .map_or(0, ControllerError::kafka_error_code)
        })
        .collect();
    assert_eq!(
        codes,
        vec![42, 3, 3, 42, 42, 42],
        "partition 0 is listed more than once"
    );
    let results = controller
        .alter_partition_reassignments(vec![
            ("t".into(), 0, Some(vec![9])),
            ("t".into(), 1, Some(vec![1])),
            ("nope".into(), 0, Some(vec![1])),
        ])
        .await;
    let codes: Vec<i16> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .err()
                .map_or(0, ControllerError::kafka_error_code)
        })
        .collect();
    assert_eq!(codes, vec![39, 3, 3]);
    for target in [vec![], vec![2, 2]] {
        assert_eq!(
            reassign(&controller, "t", Some(&target)).await,
            39,
            "{target:?}"
        );
    }
    assert_eq!(reassign(&controller, "t", None).await, 85);
    assert_eq!(partition(&controller, "t", 0), before, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferred_election_returns_leadership_to_the_first_replica() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 2, options()).await;
    let topic_id = create(&controller, "t", &[&[1, 2]]).await;
    let mut inc = inc;
    inc[1] = restart(&controller, 1, true).await;
    assert_eq!(layout(&controller, "t").2, 2, "failed over to broker 2");

    let all = controller
        .elect_leaders(true, Some(vec![("t".into(), 0)]))
        .await
        .expect("answered");
    assert_eq!(
        all[0]
            .2
            .as_ref()
            .err()
            .map(ControllerError::kafka_error_code),
        Some(80),
        "broker 1 is not in the ISR yet"
    );
    set_isr(&controller, "t", topic_id, &inc, &[2, 1]).await;
    let elected = controller
        .elect_leaders(true, Some(vec![("t".into(), 0)]))
        .await
        .expect("answered");
    assert_eq!(elected, vec![("t".to_owned(), 0, Ok(()))]);
    assert_eq!(layout(&controller, "t").2, 1);
    let again = controller
        .elect_leaders(true, Some(vec![("t".into(), 0), ("t".into(), 5)]))
        .await
        .expect("answered");
    let codes: Vec<i16> = again
        .iter()
        .map(|(_, _, r)| {
            r.as_ref()
                .err()
                .map_or(0, ControllerError::kafka_error_code)
        })
        .collect();
    assert_eq!(codes, vec![84, 3]);
    // For all partitions, those that need no election are left out.
    assert_eq!(controller.elect_leaders(true, None).await, Ok(Vec::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclean_election_on_request_elects_a_live_replica_outside_the_isr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 2, options()).await;
    let topic_id = create(&controller, "t", &[&[1, 2]]).await;
    set_isr(&controller, "t", topic_id, &inc, &[1]).await;
    restart(&controller, 1, false).await;
    assert_eq!(layout(&controller, "t").2, -1);

    let outcome = controller
        .elect_leaders(false, None)
        .await
        .expect("answered");
    assert_eq!(outcome, vec![("t".to_owned(), 0, Ok(()))]);
    let (_, isr, leader, _, _) = layout(&controller, "t");
    assert_eq!((leader, isr), (2, vec![2]));
    assert_eq!(controller.unclean_leader_elections(), 1);
    let again = controller
        .elect_leaders(false, Some(vec![("t".into(), 0)]))
        .await
        .expect("answered");
    assert_eq!(
        again[0]
            .2
            .as_ref()
            .err()
            .map(ControllerError::kafka_error_code),
        Some(84)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duty_loop_rebalances_leaders_back_to_their_preferred_replicas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(
        dir.path(),
        2,
        ControllerOptions {
            leader_imbalance_check_interval: Duration::from_millis(200),
            ..options()
        },
    )
    .await;
    let topic_id = create(&controller, "t", &[&[1, 2]]).await;
    let mut inc = inc;
    inc[1] = restart(&controller, 1, true).await;
    set_isr(&controller, "t", topic_id, &inc, &[2, 1]).await;
    assert_eq!(layout(&controller, "t").2, 2);

    let cancel = CancellationToken::new();
    let duties = tokio::spawn(controller.clone().run_duties(cancel.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while layout(&controller, "t").2 != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader never moved back to broker 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel.cancel();
    duties.await.expect("duty loop ends");
}
