//! One fault at a time, each with what users rely on through it.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::ServerState;
use strom_metadata::ControllerClient;
use strom_metadata::ControllerError;
use strom_metadata::CreateTopicRequest;
use strom_metadata::QuorumOptions;
use strom_metadata::testing::Rpc;
use strom_metadata::testing::TestCluster;
use strom_metadata::testing::test_options;

use crate::NodeId;
use crate::assert_identical;
use crate::assert_one_leader_per_term;
use crate::create_topic;
use crate::others;
use crate::register_brokers;
use crate::term_of;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_elect_exactly_one_leader() {
    let cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");

    let leading: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|&id| {
            cluster
                .quorum(id)
                .expect("runs")
                .raft()
                .metrics()
                .borrow()
                .state
                == ServerState::Leader
        })
        .collect();
    assert_eq!(leading, vec![leader], "exactly one voter leads");
    let term = term_of(&cluster, leader);
    for &id in &all {
        assert_eq!(
            term_of(&cluster, id),
            term,
            "node {id} is in the leader's term"
        );
        let quorum = cluster.quorum(id).expect("runs");
        assert_eq!(
            quorum.leader_id(),
            Some(leader),
            "node {id} names the leader"
        );
        assert_eq!(
            quorum.is_leader(),
            id == leader,
            "only the leader is the active controller"
        );
    }
    let cluster_ids: Vec<String> = cluster.running().map(|q| q.cluster_id()).collect();
    assert!(
        !cluster_ids[0].is_empty(),
        "the first controller fixed the cluster id"
    );
    assert!(
        cluster_ids.iter().all(|id| *id == cluster_ids[0]),
        "one cluster id: {cluster_ids:?}"
    );
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_on_the_leader_is_applied_identically_on_every_voter() {
    let cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;

    let topic_id = create_topic(&cluster, leader, "orders")
        .await
        .expect("topic created");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    let image = assert_identical(&images);

    let topic = image.topic("orders").expect("every voter has the topic");
    assert_eq!(topic.topic_id, topic_id);
    assert_eq!(topic.partitions.len(), 3);
    for (index, partition) in &topic.partitions {
        let mut replicas = partition.replicas.clone();
        replicas.sort_unstable();
        assert_eq!(
            replicas,
            vec![1, 2, 3],
            "partition {index} is on all three brokers"
        );
        assert_eq!(
            partition.isr.len(),
            3,
            "partition {index} starts fully in sync"
        );
    }
    assert_eq!(image.brokers.len(), 3);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_cannot_commit_and_follows_after_healing() {
    let cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let old = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, old).await;
    let old_term = term_of(&cluster, old);

    cluster.router().isolate(old);
    // The old leader does not know it is cut off: it still takes a proposal, which no
    // majority can accept.
    let lost = {
        let controller = cluster.controller(old).expect("runs").clone();
        tokio::spawn(async move {
            let request = CreateTopicRequest {
                name: "lost".to_owned(),
                num_partitions: Some(1),
                replication_factor: Some(3),
                ..Default::default()
            };
            controller.create_topics(vec![request], false).await
        })
    };
    let rest = others(&cluster, old);
    let new = cluster.wait_for_leader(&rest).await.expect("a new leader");
    assert_ne!(new, old);
    assert!(
        term_of(&cluster, new) > old_term,
        "the new leader has a higher term"
    );
    let kept_id = create_topic(&cluster, new, "kept")
        .await
        .expect("the majority commits");
    assert!(!lost.is_finished(), "the isolated leader committed nothing");

    cluster.router().heal(old);
    let outcome = tokio::time::timeout(Duration::from_secs(20), lost)
        .await
        .expect("the stale proposal is answered once the old leader hears the new one")
        .expect("the proposal task ran");
    assert!(
        outcome[0].result.is_err(),
        "the isolated leader's proposal must fail: {outcome:?}"
    );
    let leader = cluster
        .wait_for_leader(&all)
        .await
        .expect("one leader again");
    assert_ne!(
        leader, old,
        "the old leader does not take over with a shorter log"
    );
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    let image = assert_identical(&images);
    assert!(
        image.topic("lost").is_none(),
        "the uncommitted topic never applies"
    );
    assert_eq!(image.topic("kept").map(|t| t.topic_id), Some(kept_id));
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_stops_acting_as_the_controller() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    cluster.set_deadline(Duration::from_secs(10));
    let all = cluster.voters();
    let old = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, old).await;

    cluster.router().isolate(old);
    let rest = others(&cluster, old);
    let new = cluster.wait_for_leader(&rest).await.expect("a new leader");
    // KIP-595's leader progress timeout: a leader no majority hears from resigns, so a broker
    // cut off with it neither names it as the controller nor counts it as active.
    cluster
        .wait_for("the isolated leader to stop claiming the controller", |c| {
            let quorum = c.quorum(old).ok()?;
            (!quorum.is_leader() && quorum.leader_id() != Some(old)).then_some(())
        })
        .await
        .expect("the isolated leader resigns");
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        create_topic(&cluster, old, "refused"),
    )
    .await
    .expect("the isolated node answers instead of waiting for a majority");
    assert!(
        matches!(refused, Err(ControllerError::NotController { .. })),
        "{refused:?}"
    );
    create_topic(&cluster, new, "kept")
        .await
        .expect("the majority commits");

    cluster.router().heal(old);
    let leader = cluster
        .wait_for_leader(&all)
        .await
        .expect("one leader again");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    let image = assert_identical(&images);
    assert!(image.topic("refused").is_none());
    assert!(image.topic("kept").is_some());
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_taken_by_a_leader_that_is_cut_off_ends_at_its_deadline() {
    let cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let old = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, old).await;
    let deadline = Duration::from_secs(2);
    let client = ControllerClient::new(cluster.controller(old).expect("runs").clone(), deadline);

    // Cut off before it knows: the leader takes the request itself, and no majority can
    // commit it.
    cluster.router().isolate(old);
    let request = CreateTopicRequest {
        name: "unanswered".to_owned(),
        num_partitions: Some(1),
        replication_factor: Some(3),
        ..Default::default()
    };
    let results = tokio::time::timeout(
        deadline + Duration::from_secs(10),
        client.create_topics(vec![request], false),
    )
    .await
    .expect("the request ends once its deadline has passed");
    assert!(
        matches!(
            results[0].result,
            Err(ControllerError::ControllerUnavailable { .. })
        ),
        "REQUEST_TIMED_OUT, which clients retry: {results:?}"
    );
    cluster.router().heal(old);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_from_its_log() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    create_topic(&cluster, leader, "before")
        .await
        .expect("created");
    let follower = others(&cluster, leader)[0];

    cluster.stop(follower).await.expect("follower stops");
    let mut created = BTreeMap::new();
    for i in 0..5 {
        let name = format!("while-down-{i}");
        let id = create_topic(&cluster, leader, &name)
            .await
            .expect("majority commits");
        created.insert(name, id);
    }
    cluster.restart(follower).await.expect("follower restarts");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    let image = assert_identical(&images);
    for (name, id) in &created {
        assert_eq!(image.topic(name).map(|t| t.topic_id), Some(*id), "{name}");
    }
    assert_eq!(
        cluster.router().delivered(follower, Rpc::InstallSnapshot),
        0,
        "the log still held every entry it missed"
    );
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_quorum_restarted_on_its_directories_keeps_its_metadata() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    let orders = create_topic(&cluster, leader, "orders")
        .await
        .expect("created");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let before = assert_identical(
        &cluster
            .wait_in_sync(&all, committed)
            .await
            .expect("in sync"),
    );

    for &id in &all {
        cluster.stop(id).await.expect("voter stops");
    }
    for &id in &all {
        cluster.restart(id).await.expect("voter restarts");
    }
    let leader = cluster
        .wait_for_leader(&all)
        .await
        .expect("a leader after the restart");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    // openraft lets a leader restarted with its committed vote resume its own term, so the
    // log may not have grown.
    assert!(committed >= before.offset);
    let after = assert_identical(
        &cluster
            .wait_in_sync(&all, committed)
            .await
            .expect("in sync"),
    );
    assert_eq!(after.cluster_id, before.cluster_id);
    assert_eq!(after.topics, before.topics);
    assert_eq!(after.brokers, before.brokers);
    assert_eq!(after.topic("orders").map(|t| t.topic_id), Some(orders));
    create_topic(&cluster, leader, "after-restart")
        .await
        .expect("the restarted quorum commits");
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_observer_catches_up_from_its_directory() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    cluster.add_observer(4).await.expect("observer joins");
    let voters = cluster.voters();
    let leader = cluster.wait_for_leader(&voters).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    create_topic(&cluster, leader, "before")
        .await
        .expect("created");

    cluster.stop(4).await.expect("observer stops");
    create_topic(&cluster, leader, "while-down")
        .await
        .expect("the voters commit without the observer");
    cluster.restart(4).await.expect("observer restarts");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let everyone = cluster.node_ids();
    let image = assert_identical(
        &cluster
            .wait_in_sync(&everyone, committed)
            .await
            .expect("in sync"),
    );
    assert!(image.topic("while-down").is_some());
    assert!(cluster.is_learner(4), "it rejoins as an observer");
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_purged_log_catches_up_by_snapshot_and_keeps_it() {
    let options = QuorumOptions {
        snapshot_interval: 5,
        logs_to_keep_after_snapshot: 0,
        ..test_options()
    };
    let mut cluster = TestCluster::start_with(1..=3, options)
        .await
        .expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    let follower = others(&cluster, leader)[0];
    let follower_end = cluster
        .quorum(follower)
        .expect("runs")
        .raft()
        .metrics()
        .borrow()
        .last_log_index
        .unwrap_or(0);

    cluster.stop(follower).await.expect("follower stops");
    for i in 0..12 {
        create_topic(&cluster, leader, &format!("t{i}"))
            .await
            .expect("majority commits");
    }
    cluster
        .wait_for("the leader to purge the entries the follower lacks", |c| {
            let metrics = c.quorum(leader).ok()?.raft().metrics().borrow().clone();
            (metrics.purged?.index > follower_end).then_some(())
        })
        .await
        .expect("log purged");

    cluster.restart(follower).await.expect("follower restarts");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    let image = assert_identical(&images);
    assert_eq!(image.topics.len(), 12);
    assert!(
        cluster.router().delivered(follower, Rpc::InstallSnapshot) > 0,
        "the follower needed the leader's snapshot"
    );

    // The installed snapshot is the follower's own now: restarted cut off from the others, it
    // opens with the image it had.
    cluster.stop(follower).await.expect("follower stops");
    cluster.router().isolate(follower);
    cluster.restart(follower).await.expect("follower restarts");
    let reopened = cluster.quorum(follower).expect("runs").image();
    assert_eq!(reopened.topics, image.topics);
    assert_eq!(reopened.brokers, image.brokers);
    cluster.router().heal(follower);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_never_elects() {
    let cluster = TestCluster::start(5).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    let followers = others(&cluster, leader);
    let minority = vec![followers[0], followers[1]];
    let majority: Vec<NodeId> = all
        .iter()
        .copied()
        .filter(|id| !minority.contains(id))
        .collect();
    let term_before = term_of(&cluster, leader);

    cluster.router().partition(&minority, &majority);
    // Both nodes of the minority campaign, and may vote for each other, more than once.
    cluster
        .wait_for("the minority to campaign twice", |c| {
            minority
                .iter()
                .all(|&id| term_of(c, id) >= term_before + 2)
                .then_some(())
        })
        .await
        .expect("the minority campaigns");
    let during = cluster.leaders_by_term();
    for (term, leaders) in &during {
        assert!(
            leaders.iter().all(|l| !minority.contains(l)),
            "minority node led in term {term}: {leaders:?}"
        );
    }
    assert_eq!(
        cluster.wait_for_leader(&majority).await.expect("majority"),
        leader
    );
    assert_eq!(
        term_of(&cluster, leader),
        term_before,
        "the majority kept its leader"
    );
    create_topic(&cluster, leader, "majority")
        .await
        .expect("the majority still commits");

    cluster.router().heal_all();
    let leader = cluster
        .wait_for_leader(&all)
        .await
        .expect("one leader again");
    assert!(
        !minority.contains(&leader),
        "a node with a shorter log does not win"
    );
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    assert!(assert_identical(&images).topic("majority").is_some());
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_follows_the_log_across_a_leader_change_and_never_votes() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    cluster.add_observer(4).await.expect("observer joins");
    let voters = cluster.voters();
    let everyone = cluster.node_ids();
    let leader = cluster.wait_for_leader(&voters).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    create_topic(&cluster, leader, "first")
        .await
        .expect("created");

    cluster.router().isolate(leader);
    let rest = others(&cluster, leader);
    let new = cluster.wait_for_leader(&rest).await.expect("a new leader");
    create_topic(&cluster, new, "second")
        .await
        .expect("created");
    let committed = cluster.quorum(new).expect("runs").image().offset;
    let mut followers = rest.clone();
    followers.push(4);
    let images = cluster
        .wait_in_sync(&followers, committed)
        .await
        .expect("observer follows");
    assert!(assert_identical(&images).topic("second").is_some());

    cluster.router().heal(leader);
    let leader = cluster.wait_for_leader(&voters).await.expect("one leader");
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&everyone, committed)
        .await
        .expect("in sync");
    assert_identical(&images);
    assert!(cluster.is_learner(4), "the observer stays a learner");
    let membership = cluster
        .quorum(leader)
        .expect("runs")
        .raft()
        .metrics()
        .borrow()
        .membership_config
        .clone();
    let voter_ids: Vec<NodeId> = membership.membership().voter_ids().collect();
    assert_eq!(voter_ids, voters, "the observer is not a voter");
    let learners: Vec<NodeId> = membership.membership().learner_ids().collect();
    assert_eq!(learners, vec![4]);
    for leaders in cluster.leaders_by_term().values() {
        assert!(!leaders.contains(&4), "the observer never leads");
    }
    assert_one_leader_per_term(&cluster);
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_quorum_shows_every_voter_in_sync_and_the_observer() {
    let mut cluster = TestCluster::start(3).await.expect("cluster starts");
    cluster.add_observer(4).await.expect("observer joins");
    let voters = cluster.voters();
    let leader = cluster.wait_for_leader(&voters).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    create_topic(&cluster, leader, "orders")
        .await
        .expect("created");

    let quorum = cluster.quorum(leader).expect("runs");
    let description = cluster
        .wait_for("every replica to reach the high watermark", |_| {
            let d = quorum.describe().ok()?;
            d.voters
                .iter()
                .chain(&d.observers)
                .all(|r| r.log_end_offset == d.high_watermark)
                .then_some(d)
        })
        .await
        .expect("in sync");
    assert_eq!(
        description.leader_id,
        i32::try_from(leader).expect("small id")
    );
    assert_eq!(
        i64::try_from(quorum.image().offset + 1).expect("small offset"),
        description.high_watermark,
        "the high watermark is the end of the applied log"
    );
    let ids = |replicas: &[strom_metadata::controller_ops::QuorumReplica]| {
        replicas.iter().map(|r| r.node_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(&description.voters), vec![1, 2, 3]);
    assert_eq!(ids(&description.observers), vec![4]);
    for replica in description.voters.iter().chain(&description.observers) {
        assert!(
            replica.last_caught_up_timestamp > 0,
            "node {} caught up: {replica:?}",
            replica.node_id
        );
    }
    for &follower in &others(&cluster, leader) {
        assert!(
            cluster.quorum(follower).expect("runs").describe().is_err(),
            "only the leader describes the quorum"
        );
    }
    cluster.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_delays_a_follower_without_losing_entries() {
    let cluster = TestCluster::start(3).await.expect("cluster starts");
    let all = cluster.voters();
    let leader = cluster.wait_for_leader(&all).await.expect("a leader");
    register_brokers(&cluster, leader).await;
    let slow = others(&cluster, leader)[0];
    // Under the heartbeat interval, which also bounds one AppendEntries.
    cluster
        .router()
        .set_delay(leader, slow, Duration::from_millis(40));
    for i in 0..5 {
        create_topic(&cluster, leader, &format!("t{i}"))
            .await
            .expect("created");
    }
    let committed = cluster.quorum(leader).expect("runs").image().offset;
    let images = cluster
        .wait_in_sync(&all, committed)
        .await
        .expect("in sync");
    assert_eq!(assert_identical(&images).topics.len(), 5);
    assert_eq!(
        cluster.wait_for_leader(&all).await.expect("leader"),
        leader,
        "a slow follower does not unseat the leader"
    );
    cluster.shutdown().await.expect("shutdown");
}

/// Voters started at once all initialize the quorum and campaign in term 1, so the first
/// elections split their votes. Kafka's leader epoch (the term, in DescribeQuorum) must still
/// name one controller: every term has at most one leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_started_together_elect_one_leader_per_term() {
    for round in 0..60 {
        let cluster = TestCluster::start_together(1..=3, test_options())
            .await
            .expect("cluster starts");
        cluster
            .wait_for_leader(&cluster.voters())
            .await
            .expect("a leader");
        let by_term = cluster.leaders_by_term();
        assert!(
            by_term.values().all(|leaders| leaders.len() <= 1),
            "start {round}: leaders by term {by_term:?}"
        );
        cluster.shutdown().await.expect("shutdown");
    }
}

/// Two voters left by an isolated leader campaign at the same moment, in the same term, and
/// split their votes. With one leader per term the next round must be started by one of them
/// a vote's delivery earlier than the other: each draws a new random timeout for it, and backs
/// off further after every split. The election timeouts here are all but equal (500–501 ms),
/// as two voters' draws can be, and every message takes 50 ms to arrive (a loaded disk's
/// fsync before the answer). openraft's own timer draws one whole number of milliseconds per
/// process, waits it after every campaign and looks at it on a tick of 1.5 heartbeats, so both
/// would campaign 600 ms after their last campaign, less than a vote's delivery apart, in
/// every term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voters_that_split_their_votes_elect_a_leader_in_a_later_round() {
    let options = QuorumOptions {
        election_timeout_min: Duration::from_millis(500),
        election_timeout_max: Duration::from_millis(501),
        // Above the round trip: openraft gives an AppendEntries one heartbeat to be answered.
        heartbeat_interval: Duration::from_millis(200),
        ..test_options()
    };
    for round in 0..5 {
        let cluster = TestCluster::start_with(1..=3, options.clone())
            .await
            .expect("cluster starts");
        let all = cluster.voters();
        let old = cluster.wait_for_leader(&all).await.expect("a leader");
        let rest = others(&cluster, old);
        cluster.router().isolate(old);
        let vote_delivery = Duration::from_millis(50);
        cluster.router().set_delay(rest[0], rest[1], vote_delivery);
        cluster.router().set_delay(rest[1], rest[0], vote_delivery);
        let term = term_of(&cluster, rest[0]).max(term_of(&cluster, rest[1]));
        // Both campaign at once in the next term: a split vote.
        let (a, b) = (
            cluster.quorum(rest[0]).expect("runs"),
            cluster.quorum(rest[1]).expect("runs"),
        );
        let (ta, tb) = (a.raft().trigger(), b.raft().trigger());
        let (ra, rb) = tokio::join!(ta.elect(), tb.elect());
        ra.expect("elects");
        rb.expect("elects");
        let leader = cluster
            .wait_for_leader(&rest)
            .await
            .unwrap_or_else(|e| panic!("round {round}: no leader after the split vote: {e}"));
        assert!(rest.contains(&leader));
        assert!(
            term_of(&cluster, leader) > term,
            "round {round}: a later term"
        );
        assert_one_leader_per_term(&cluster);
        cluster.router().heal(old);
        cluster.shutdown().await.expect("shutdown");
    }
}
