//! Partition leadership on a real single-voter quorum: elections and ISR changes when brokers
//! are fenced, unfenced, re-registered or shut down, and AlterPartition from leaders.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use strom_metadata::AlterPartitionRequest;
use strom_metadata::ConfigOp;
use strom_metadata::ConfigResource;
use strom_metadata::Controller;
use strom_metadata::ControllerError;
use strom_metadata::ControllerOptions;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataQuorum;
use strom_metadata::PartitionImage;
use strom_metadata::QuorumConfig;
use strom_metadata::controller_ops::BrokerRegistrationRequest;
use strom_metadata::controller_ops::HeartbeatRequest;
use uuid::Uuid;

/// A controller with brokers 1..=`brokers` registered and unfenced; their incarnations.
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

/// Creates `name` with the given replicas per partition and optional configs.
async fn create(
    controller: &Controller,
    name: &str,
    replicas: &[&[i32]],
    configs: &[(&str, &str)],
) -> Uuid {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        assignments: Some((0..).zip(replicas).map(|(p, r)| (p, r.to_vec())).collect()),
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
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

async fn heartbeat(
    controller: &Controller,
    node_id: i32,
    incarnation: Uuid,
    want_shutdown: bool,
) -> strom_metadata::controller_ops::HeartbeatReply {
    controller
        .heartbeat(HeartbeatRequest {
            node_id,
            incarnation,
            metadata_offset: controller.quorum().image().offset,
            want_shutdown,
        })
        .await
        .expect("heartbeat accepted")
}

/// Registers a new incarnation of `node_id` (a restart), which is fenced until it heartbeats.
async fn restart(controller: &Controller, node_id: i32) -> Uuid {
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
        .expect("re-registration accepted");
    incarnation
}

fn alter(
    topic_id: Uuid,
    p: &PartitionImage,
    broker_id: i32,
    incarnation: Uuid,
    new_isr: &[i32],
) -> AlterPartitionRequest {
    AlterPartitionRequest {
        broker_id,
        incarnation,
        topic_id,
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: new_isr.to_vec(),
    }
}

/// Shrinks the ISR of partition 0 of `topic` to `isr` through its leader.
async fn shrink(controller: &Controller, topic: &str, topic_id: Uuid, inc: &[Uuid], isr: &[i32]) {
    let p = partition(controller, topic, 0);
    let leader = usize::try_from(p.leader).expect("has a leader");
    controller
        .alter_partition(alter(topic_id, &p, p.leader, inc[leader], isr))
        .await
        .expect("shrink accepted");
}

fn long_session() -> ControllerOptions {
    ControllerOptions {
        session_timeout: Duration::from_secs(600),
        ..ControllerOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_partitions_have_every_replica_in_sync() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, _) = start(dir.path(), 3, long_session()).await;
    create(&controller, "t", &[&[2, 3, 1]], &[]).await;
    let p = partition(&controller, "t", 0);
    assert_eq!(
        (p.leader, p.isr, p.replicas),
        (2, vec![2, 3, 1], vec![2, 3, 1])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_of_the_leader_elects_the_next_isr_member_and_bumps_the_leader_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ControllerOptions {
        session_timeout: Duration::from_millis(300),
        ..ControllerOptions::default()
    };
    let (controller, inc) = start(dir.path(), 3, options).await;
    create(&controller, "t", &[&[1, 3, 2], &[2, 1, 3]], &[]).await;
    let before = partition(&controller, "t", 0);
    // Brokers 2 and 3 keep their sessions; broker 1 stops heartbeating.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !controller
        .quorum()
        .image()
        .broker(1)
        .is_some_and(|b| b.fenced)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker 1 was never fenced"
        );
        heartbeat(&controller, 2, inc[2], false).await;
        heartbeat(&controller, 3, inc[3], false).await;
        controller.fence_expired_brokers().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let led = partition(&controller, "t", 0);
    assert_eq!(
        led.leader, 3,
        "the next replica in replica order that is in the ISR"
    );
    assert_eq!(led.isr, vec![3, 2]);
    assert_eq!(led.leader_epoch, before.leader_epoch + 1);
    assert!(led.partition_epoch > before.partition_epoch);
    let followed = partition(&controller, "t", 1);
    assert_eq!((followed.leader, followed.isr), (2, vec![2, 3]));
    assert_eq!(followed.leader_epoch, 0, "its leader did not change");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sole_isr_leader_that_restarts_leaves_the_partition_leaderless_until_it_is_unfenced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 2, long_session()).await;
    let topic_id = create(&controller, "t", &[&[1, 2]], &[]).await;
    shrink(&controller, "t", topic_id, &inc, &[1]).await;
    let before = partition(&controller, "t", 0);

    let again = restart(&controller, 1).await;
    let offline = partition(&controller, "t", 0);
    assert_eq!(offline.leader, -1, "no live ISR member: no leader");
    assert_eq!(offline.isr, vec![1], "the last ISR member stays");
    assert_eq!(offline.leader_epoch, before.leader_epoch + 1);

    let reply = heartbeat(&controller, 1, again, false).await;
    assert!(!reply.fenced);
    let back = partition(&controller, "t", 0);
    assert_eq!((back.leader, back.isr), (1, vec![1]));
    assert_eq!(back.leader_epoch, before.leader_epoch + 2);
    assert_eq!(controller.unclean_leader_elections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unclean_election_happens_only_where_enabled_and_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 2, long_session()).await;
    let clean = create(&controller, "clean", &[&[1, 2]], &[]).await;
    let later = create(&controller, "later", &[&[1, 2]], &[]).await;
    let unclean = create(
        &controller,
        "unclean",
        &[&[1, 2]],
        &[("unclean.leader.election.enable", "true")],
    )
    .await;
    for (name, id) in [("clean", clean), ("later", later), ("unclean", unclean)] {
        shrink(&controller, name, id, &inc, &[1]).await;
    }
    restart(&controller, 1).await;

    let p = partition(&controller, "clean", 0);
    assert_eq!((p.leader, p.isr), (-1, vec![1]));
    let p = partition(&controller, "unclean", 0);
    assert_eq!(
        (p.leader, p.isr),
        (2, vec![2]),
        "the live replica outside the ISR"
    );
    assert_eq!(controller.unclean_leader_elections(), 1);

    // Enabling it on a leaderless topic elects at the next duty round.
    controller
        .incremental_alter_configs(
            ConfigResource::Topic("later".into()),
            vec![ConfigOp::Set(
                "unclean.leader.election.enable".into(),
                "true".into(),
            )],
            false,
        )
        .await
        .expect("config set");
    controller.elect_offline_leaders().await;
    let p = partition(&controller, "later", 0);
    assert_eq!((p.leader, p.isr), (2, vec![2]));
    assert_eq!(partition(&controller, "clean", 0).leader, -1);
    assert_eq!(controller.unclean_leader_elections(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_default_enables_unclean_election_for_topics_that_do_not_set_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = ControllerOptions {
        unclean_leader_election_enable: true,
        ..long_session()
    };
    let (controller, inc) = start(dir.path(), 2, options).await;
    let default = create(&controller, "default", &[&[1, 2]], &[]).await;
    let off = create(
        &controller,
        "off",
        &[&[1, 2]],
        &[("unclean.leader.election.enable", "false")],
    )
    .await;
    shrink(&controller, "default", default, &inc, &[1]).await;
    shrink(&controller, "off", off, &inc, &[1]).await;
    restart(&controller, 1).await;
    assert_eq!(partition(&controller, "default", 0).leader, 2);
    assert_eq!(partition(&controller, "off", 0).leader, -1);
    assert_eq!(controller.unclean_leader_elections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controlled_shutdown_moves_leaderships_before_the_broker_may_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 3, long_session()).await;
    create(&controller, "t", &[&[1, 2, 3], &[2, 1, 3], &[3, 1, 2]], &[]).await;
    let sole = create(&controller, "sole", &[&[1, 2]], &[]).await;
    shrink(&controller, "sole", sole, &inc, &[1]).await;

    let first = heartbeat(&controller, 1, inc[1], true).await;
    assert!(first.fenced);
    let image = controller.quorum().image();
    let leaders: Vec<i32> = (0..3)
        .map(|p| image.partition("t", p).map_or(-2, |p| p.leader))
        .collect();
    assert_eq!(leaders, vec![2, 2, 3], "every leadership of broker 1 moved");
    for p in 0..3 {
        let isr = &partition(&controller, "t", p).isr;
        assert!(!isr.contains(&1), "broker 1 left the ISR of t-{p}: {isr:?}");
    }
    let p = partition(&controller, "sole", 0);
    assert_eq!((p.leader, p.isr), (-1, vec![1]));
    assert!(
        !first.shutdown_ready,
        "the other brokers have not applied the new leaderships yet"
    );

    heartbeat(&controller, 2, inc[2], false).await;
    let waiting = heartbeat(&controller, 1, inc[1], true).await;
    assert!(!waiting.shutdown_ready, "broker 3 has not caught up");
    heartbeat(&controller, 3, inc[3], false).await;
    let ready = heartbeat(&controller, 1, inc[1], true).await;
    assert!(ready.shutdown_ready);
    // Nothing elects the shutting-down broker again.
    controller.elect_offline_leaders().await;
    assert_eq!(partition(&controller, "sole", 0).leader, -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_shrinks_and_expands_the_isr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 3, long_session()).await;
    let topic_id = create(&controller, "t", &[&[1, 2, 3]], &[]).await;
    let p = partition(&controller, "t", 0);

    let shrunk = controller
        .alter_partition(alter(topic_id, &p, 1, inc[1], &[1, 3]))
        .await
        .expect("shrink");
    assert_eq!(shrunk.isr, vec![1, 3]);
    assert_eq!(shrunk.leader, 1);
    assert_eq!(
        shrunk.leader_epoch, p.leader_epoch,
        "the leader did not change"
    );
    assert_eq!(shrunk.partition_epoch, p.partition_epoch + 1);
    let committed = partition(&controller, "t", 0);
    assert_eq!(committed.isr, shrunk.isr);
    assert_eq!(committed.partition_epoch, shrunk.partition_epoch);

    let expanded = controller
        .alter_partition(alter(topic_id, &committed, 1, inc[1], &[1, 3, 2]))
        .await
        .expect("expand");
    assert_eq!(expanded.isr, vec![1, 3, 2]);
    assert_eq!(expanded.partition_epoch, p.partition_epoch + 2);

    // Asking for the current ISR again changes nothing and answers the partition as it is.
    let current = partition(&controller, "t", 0);
    let same = controller
        .alter_partition(alter(topic_id, &current, 1, inc[1], &[2, 1, 3]))
        .await
        .expect("no-op");
    assert_eq!(same.partition_epoch, current.partition_epoch);
    assert_eq!(partition(&controller, "t", 0), current);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_of_many_partitions_commits_them_in_one_batch_and_answers_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 3, long_session()).await;
    let topic_id = create(&controller, "t", &[&[1, 2, 3], &[1, 3, 2], &[1, 2, 3]], &[]).await;
    let at = |index: i32| partition(&controller, "t", index);
    let request = |index: i32, isr: &[i32], partition_epoch: i32| AlterPartitionRequest {
        partition: index,
        partition_epoch,
        ..alter(topic_id, &at(index), 1, inc[1], isr)
    };
    let before = controller.quorum().image().offset;
    let results = controller
        .alter_partitions(vec![
            request(0, &[1, 2], at(0).partition_epoch),
            // A view one epoch old: refused, the others still go through.
            request(1, &[1, 3], at(1).partition_epoch - 1),
            request(2, &[1, 3], at(2).partition_epoch),
        ])
        .await;
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].as_ref().expect("accepted").isr, vec![1, 2]);
    assert!(matches!(
        results[1],
        Err(ControllerError::InvalidUpdateVersion { .. })
    ));
    assert_eq!(results[2].as_ref().expect("accepted").isr, vec![1, 3]);
    assert_eq!(
        (at(0).isr, at(1).isr, at(2).isr),
        (vec![1, 2], vec![1, 3, 2], vec![1, 3])
    );
    assert_eq!(
        controller.quorum().image().offset,
        before + 1,
        "both changes are one entry of the metadata log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_partition_refuses_stale_and_invalid_requests_with_kafka_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (controller, inc) = start(dir.path(), 4, long_session()).await;
    let topic_id = create(&controller, "t", &[&[1, 2, 3]], &[]).await;
    controller
        .alter_partition(alter(
            topic_id,
            &partition(&controller, "t", 0),
            1,
            inc[1],
            &[1, 2],
        ))
        .await
        .expect("shrink");
    // Broker 3 restarts: its new registration is fenced.
    let new_3 = restart(&controller, 3).await;
    let p = partition(&controller, "t", 0);
    let ok = alter(topic_id, &p, 1, inc[1], &[1]);
    let cases: Vec<(&str, AlterPartitionRequest, i16)> = vec![
        (
            "stale leader epoch",
            AlterPartitionRequest {
                leader_epoch: p.leader_epoch - 1,
                ..ok.clone()
            },
            74,
        ),
        (
            "future leader epoch",
            AlterPartitionRequest {
                leader_epoch: p.leader_epoch + 1,
                ..ok.clone()
            },
            74,
        ),
        (
            "not the leader",
            AlterPartitionRequest {
                broker_id: 2,
                incarnation: inc[2],
                new_isr: vec![2],
                ..ok.clone()
            },
            74,
        ),
        (
            "stale partition epoch",
            AlterPartitionRequest {
                partition_epoch: p.partition_epoch - 1,
                ..ok.clone()
            },
            82,
        ),
        (
            "previous incarnation",
            AlterPartitionRequest {
                incarnation: Uuid::new_v4(),
                ..ok.clone()
            },
            77,
        ),
        (
            "fenced broker added",
            AlterPartitionRequest {
                new_isr: vec![1, 2, 3],
                ..ok.clone()
            },
            107,
        ),
        (
            "not a replica",
            AlterPartitionRequest {
                new_isr: vec![1, 2, 4],
                ..ok.clone()
            },
            107,
        ),
        (
            "empty",
            AlterPartitionRequest {
                new_isr: vec![],
                ..ok.clone()
            },
            42,
        ),
        (
            "without the leader",
            AlterPartitionRequest {
                new_isr: vec![2],
                ..ok.clone()
            },
            42,
        ),
        (
            "duplicate",
            AlterPartitionRequest {
                new_isr: vec![1, 2, 2],
                ..ok.clone()
            },
            42,
        ),
        (
            "unknown partition",
            AlterPartitionRequest {
                partition: 7,
                ..ok.clone()
            },
            3,
        ),
        (
            "unknown topic",
            AlterPartitionRequest {
                topic_id: Uuid::new_v4(),
                ..ok.clone()
            },
            3,
        ),
    ];
    for (what, request, code) in cases {
        let result = controller.alter_partition(request).await;
        assert_eq!(
            result
                .as_ref()
                .err()
                .map_or(0, ControllerError::kafka_error_code),
            code,
            "{what}: {result:?}"
        );
        assert_eq!(partition(&controller, "t", 0), p, "{what} changed nothing");
    }
    // Once broker 3 is unfenced it may join.
    heartbeat(&controller, 3, new_3, false).await;
    let joined = controller
        .alter_partition(alter(topic_id, &p, 1, inc[1], &[1, 2, 3]))
        .await
        .expect("an unfenced replica joins");
    assert_eq!(joined.isr, vec![1, 2, 3]);
}
