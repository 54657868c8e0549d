//! A Topic's replication-factor change against a mock API server and a fake Kafka admin. The
//! tests play the controller: the reassignments a pass asks for start, then complete, when the
//! test says so.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use kube::runtime::controller::Action;
use serde_json::Value;
use strom_admin::{ConfigResource, ObservedTopic, TopicPartition};
use strom_crds::{Topic, TopicStatus};

use super::reconcile;
use super::reconcile_tests::{
    BOOTSTRAP, cluster_path, list_topics, ready_condition, status_path, topic_json,
};
use crate::fixtures::{
    AdminCall, ApiServerVerifier, FakeAdmin, cluster_view, minimal_cluster, run_scenario,
    test_context, topic,
};

/// Cluster `demo` moving at most two partitions at once.
fn cluster_json() -> Value {
    let mut cluster = minimal_cluster();
    cluster.spec.operations.max_concurrent_moves = 2;
    serde_json::to_value(cluster).expect("cluster serializes")
}

/// Topic `orders`, 3 partitions on brokers 0-2 with two replicas each (1024 bytes each, as
/// the fake's log directories report every replica).
fn two_replica_cluster() -> FakeAdmin {
    let admin = FakeAdmin::with_topic(observed(2));
    admin.set_cluster_view(BOOTSTRAP, cluster_view("c1", Some(0), &[0, 1, 2]));
    admin.with_replicas(|r| r.add_topic("orders", 1, &[&[0, 1], &[1, 2], &[2, 0]]));
    admin
}

/// DescribeTopic's view: the lowest partition's replica count.
fn observed(replication_factor: i16) -> ObservedTopic {
    ObservedTopic {
        name: "orders".to_owned(),
        topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".to_owned(),
        partitions: 3,
        replication_factor,
        configs: BTreeMap::from([("retention.ms".to_owned(), "86400000".to_owned())]),
    }
}

fn wanting(rf: i16, status: Option<TopicStatus>) -> Topic {
    let mut topic = topic();
    topic.spec.partitions = 3;
    topic.spec.replication_factor = Some(rf);
    topic.status = Some(status.unwrap_or_else(|| TopicStatus {
        topic_id: Some("AAAAAAAAAAAAAAAAAAAAAQ".to_owned()),
        partitions: Some(3),
        replication_factor: Some(2),
        managed_config_keys: vec!["retention.ms".to_owned()],
        ..TopicStatus::default()
    }));
    topic
}

/// One pass: answers the Topic list and the Cluster, then hands the rest to `rest`; returns
/// the status written and the pass's outcome.
async fn pass<V, Fut>(admin: &FakeAdmin, topic: Topic, rest: V) -> (TopicStatus, Action, String)
where
    V: FnOnce(ApiServerVerifier) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Value> + Send,
{
    let (ctx, mut api) = test_context(admin.clone());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        let status = rest(api).await;
        sender.send(status).expect("receiver waits");
    };
    let action = run_scenario(reconcile(Arc::new(topic), ctx.clone()), verify)
        .await
        .expect("reconcile succeeds");
    let status = receiver.await.expect("status sent");
    let status: TopicStatus =
        serde_json::from_value(status["status"].clone()).expect("status parses");
    (status, action, ctx.metrics.encode().expect("metrics"))
}

async fn expect_status(mut api: ApiServerVerifier) -> Value {
    let status = api.expect_apply(&status_path()).await;
    let body = status.body.clone();
    status.echo_status_onto(topic_json());
    body
}

/// The AlterPartitionReassignments requests made so far, in order.
fn requests(admin: &FakeAdmin) -> Vec<BTreeMap<TopicPartition, Option<Vec<i32>>>> {
    admin
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            AdminCall::Reassign(request) => Some(request),
            _ => None,
        })
        .collect()
}

/// The throttle configs set on the fake cluster, by resource.
fn throttles(admin: &FakeAdmin) -> BTreeMap<ConfigResource, BTreeMap<String, String>> {
    admin.replicas.lock().expect("lock").configs.clone()
}

/// Starts the moves of the last request as the controller does: the partition's replicas are
/// the target plus the ones leaving, the added ones are catching up.
fn start_last_request(admin: &FakeAdmin) {
    let request = requests(admin).pop().expect("a request");
    admin.with_replicas(|r| {
        for (tp, target) in request {
            let target = target.expect("a move");
            let state = r
                .partitions
                .get_mut(&tp.topic)
                .and_then(|s| s.iter_mut().find(|s| s.partition == tp.partition))
                .expect("partition exists");
            let current = state.replicas.clone();
            let adding: Vec<i32> = target
                .iter()
                .copied()
                .filter(|b| !current.contains(b))
                .collect();
            let removing: Vec<i32> = current
                .iter()
                .copied()
                .filter(|b| !target.contains(b))
                .collect();
            let mut assigned = target.clone();
            assigned.extend(removing.iter().copied());
            state.replicas = assigned.clone();
            r.reassignments.insert(
                tp,
                strom_admin::OngoingReassignment {
                    replicas: assigned,
                    adding_replicas: adding,
                    removing_replicas: removing,
                },
            );
        }
    });
}

/// Completes every reassignment in progress; DescribeTopic then reports `lowest` replicas.
fn complete(admin: &FakeAdmin, lowest: i16) {
    admin.with_replicas(|r| {
        for (tp, ongoing) in std::mem::take(&mut r.reassignments) {
            let state = r
                .partitions
                .get_mut(&tp.topic)
                .and_then(|s| s.iter_mut().find(|s| s.partition == tp.partition))
                .expect("partition exists");
            state
                .replicas
                .retain(|b| !ongoing.removing_replicas.contains(b));
            state.isr = state.replicas.clone();
            state.leader = state.replicas.first().copied();
            let held = state.replicas.clone();
            for broker in held {
                let dirs = r.log_dirs.entry(broker).or_default();
                if !dirs.contains(&tp) {
                    dirs.push(tp.clone());
                }
            }
        }
    });
    admin
        .topics
        .lock()
        .expect("lock")
        .insert("orders".to_owned(), observed(lowest));
}

#[tokio::test]
async fn growing_from_two_to_three_replicas_moves_in_bounded_batches_until_every_partition_has_three()
 {
    let admin = two_replica_cluster();

    // Pass 1: two partitions (the limit) start moving.
    let (status, action, _) = pass(&admin, wanting(3, None), |mut api| async move {
        let event = api.expect_event("ReassignmentStarted").await;
        assert!(
            event["note"]
                .as_str()
                .expect("note")
                .contains("moving 2 partitions"),
            "{event}"
        );
        let body = expect_status(api).await;
        let ready = ready_condition(&body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("ReplicationFactorChanging"))
        );
        body
    })
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(10)));
    assert_eq!(status.target_replication_factor, Some(3));
    assert_eq!(status.replication_factor, Some(2));
    let progress = status.reassignment.clone().expect("progress");
    assert_eq!(
        (
            progress.total_partitions,
            progress.done_partitions,
            progress.moving_partitions
        ),
        (3, 0, 2)
    );
    let first = requests(&admin);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].len(), 2, "bounded by maxConcurrentMoves");
    let before: BTreeMap<i32, Vec<i32>> =
        BTreeMap::from([(0, vec![0, 1]), (1, vec![1, 2]), (2, vec![2, 0])]);
    for (tp, target) in &first[0] {
        let target = target.as_ref().expect("a move, not a cancel");
        let distinct: BTreeSet<&i32> = target.iter().collect();
        assert_eq!(distinct.len(), 3, "{tp}: {target:?}");
        assert!(
            before[&tp.partition].iter().all(|r| target.contains(r)),
            "{tp} keeps its replicas: {target:?}"
        );
    }

    start_last_request(&admin);

    // The batch is throttled at the Cluster's default rate on every broker it involves, and
    // the topic names the replicas that serve and fetch the copies.
    let set = throttles(&admin);
    let rate = (50 * 1024 * 1024).to_string();
    for broker in 0..3 {
        let configs = &set[&ConfigResource::Broker(broker)];
        assert_eq!(
            configs.get("leader.replication.throttled.rate"),
            Some(&rate)
        );
        assert_eq!(
            configs.get("follower.replication.throttled.rate"),
            Some(&rate)
        );
    }
    let topic_throttles = &set[&ConfigResource::Topic("orders".to_owned())];
    assert!(topic_throttles.contains_key("follower.replication.throttled.replicas"));
    assert!(topic_throttles.contains_key("leader.replication.throttled.replicas"));

    // Pass 2: both still copying; nothing new starts, the bytes left are reported.
    let (status, _, metrics) = pass(&admin, wanting(3, Some(status)), |api| async move {
        expect_status(api).await
    })
    .await;
    assert_eq!(requests(&admin).len(), 1, "no move while at the limit");
    let progress = status.reassignment.clone().expect("progress");
    assert_eq!(progress.moving_partitions, 2);
    assert_eq!(
        progress.bytes_remaining,
        Some(2048),
        "two new replicas lack 1024 bytes each"
    );
    assert!(
        metrics
            .contains("strom_operator_reassignment_bytes_remaining{cluster=\"kafka/demo\"} 2048"),
        "{metrics}"
    );

    // Pass 3: those finished; the last partition moves.
    complete(&admin, 2);
    let (status, _, _) = pass(&admin, wanting(3, Some(status)), |mut api| async move {
        let event = api.expect_event("ReassignmentStarted").await;
        assert!(
            event["note"]
                .as_str()
                .expect("note")
                .contains("moving 1 partitions")
        );
        expect_status(api).await
    })
    .await;
    assert_eq!(requests(&admin).len(), 2);
    assert_eq!(requests(&admin)[1].len(), 1);
    start_last_request(&admin);
    assert_eq!(
        status.reassignment.as_ref().map(|p| p.done_partitions),
        Some(2)
    );

    // Pass 4: every partition has three replicas: done.
    complete(&admin, 3);
    let (status, action, _) = pass(&admin, wanting(3, Some(status)), |mut api| async move {
        api.expect_event("ReplicationFactorChanged").await;
        let body = expect_status(api).await;
        assert_eq!(ready_condition(&body)["status"], "True");
        body
    })
    .await;
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert_eq!(status.replication_factor, Some(3));
    assert_eq!(status.target_replication_factor, None);
    assert_eq!(status.reassignment, None);
    assert!(
        throttles(&admin)
            .values()
            .all(|configs| configs.keys().all(|k| !k.contains("throttled"))),
        "throttles cleared: {:?}",
        throttles(&admin)
    );
    let replicas = admin.replicas.lock().expect("lock");
    for state in &replicas.partitions["orders"] {
        let distinct: BTreeSet<&i32> = state.replicas.iter().collect();
        assert_eq!(
            distinct.len(),
            3,
            "partition {}: {:?}",
            state.partition,
            state.replicas
        );
    }
}

#[tokio::test]
async fn shrinking_to_one_replica_drops_followers_and_keeps_the_leader() {
    let admin = two_replica_cluster();
    let (status, _, _) = pass(&admin, wanting(1, None), |mut api| async move {
        api.expect_event("ReassignmentStarted").await;
        expect_status(api).await
    })
    .await;
    assert_eq!(status.target_replication_factor, Some(1));
    let first = requests(&admin);
    for (tp, target) in &first[0] {
        let target = target.as_ref().expect("a move");
        assert_eq!(target.len(), 1, "{tp}: {target:?}");
    }
}

#[tokio::test]
async fn more_replicas_than_brokers_is_refused_and_nothing_moves() {
    let admin = two_replica_cluster();
    let (status, _, _) = pass(&admin, wanting(4, None), |mut api| async move {
        let event = api.expect_event("ReplicationFactorRefused").await;
        assert_eq!(event["type"], "Warning");
        let body = expect_status(api).await;
        let ready = ready_condition(&body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("ReplicationFactorRefused"))
        );
        assert!(
            ready["message"]
                .as_str()
                .expect("message")
                .contains("3 registered, unfenced brokers")
        );
        body
    })
    .await;
    assert!(requests(&admin).is_empty());
    assert_eq!(status.replication_factor, Some(2));
}
