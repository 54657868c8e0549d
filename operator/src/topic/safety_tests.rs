//! The Topic reconciler's safety rules against a mock API server and a fake Kafka admin: two
//! Topics on one Kafka topic, a topic re-created out of band, an unmanaged Topic, and a deleted
//! Topic whose Cluster is going away.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::SignedDuration;
use kube::runtime::controller::Action;
use serde_json::Value;
use strom_crds::topic::{ACCEPT_TOPIC_ID_ANNOTATION, MANAGED_ANNOTATION};
use strom_crds::{Topic, TopicStatus};

use super::reconcile;
use super::reconcile_tests::{
    BOOTSTRAP, cluster_json, cluster_path, existing, list_topics, ready_condition, status_path,
    topic_json, topic_path,
};
use crate::conditions::set_condition;
use crate::fixtures::{AdminCall, FakeAdmin, run_scenario, test_context, test_now, topic};

const OLD_ID: &str = "Zm9yZ290dGVuLXRvcGljAA";
const KAFKA_ID: &str = "AAAAAAAAAAAAAAAAAAAAAQ";

fn created_at(mut topic: Topic, second_offset: i64) -> Topic {
    let at = test_now()
        .checked_add(SignedDuration::from_secs(second_offset))
        .expect("in range");
    topic.metadata.creation_timestamp = Some(Time(at));
    topic
}

/// Topic `orders-legacy` naming Kafka topic `orders`, created an hour before `orders`.
fn older_rival() -> Topic {
    let mut rival = created_at(topic(), -3600);
    rival.metadata.name = Some("orders-legacy".to_owned());
    rival.metadata.uid = Some("7b0f0a6e-3c1d-4c55-9a40-1f1d6f0a0009".to_owned());
    rival.spec.topic_name = Some("orders".to_owned());
    rival
}

fn younger_rival() -> Topic {
    let mut rival = older_rival();
    rival.metadata.name = Some("orders-copy".to_owned());
    created_at(rival, 60)
}

fn deleting(mut topic: Topic, seconds_ago: i64) -> Topic {
    let at = test_now()
        .checked_sub(SignedDuration::from_secs(seconds_ago))
        .expect("in range");
    topic.metadata.deletion_timestamp = Some(Time(at));
    topic
}

fn managing(mut topic: Topic, topic_id: &str) -> Topic {
    topic.status = Some(TopicStatus {
        topic_id: Some(topic_id.to_owned()),
        partitions: Some(6),
        replication_factor: Some(3),
        managed_config_keys: vec!["retention.ms".to_owned()],
        ..TopicStatus::default()
    });
    topic
}

fn annotate(mut topic: Topic, key: &str, value: &str) -> Topic {
    topic
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.to_owned(), value.to_owned());
    topic
}

/// Expects the finalizer helper's JSON patch that drops `strom.io/topic`, and answers it.
async fn expect_finalizer_removed(api: &mut crate::fixtures::ApiServerVerifier) {
    let patch = api.expect(Method::PATCH, &topic_path()).await;
    let ops = patch.body.as_array().expect("JSON patch").clone();
    assert!(
        ops.iter()
            .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
        "finalizer removed: {ops:?}"
    );
    let mut released = topic_json();
    released["metadata"]["finalizers"] = Value::Array(Vec::new());
    patch.respond(StatusCode::OK, &released);
}

#[tokio::test]
async fn second_topic_on_one_kafka_topic_is_a_conflict_and_changes_nothing() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut ours = created_at(topic(), 0);
    ours.spec.partitions = 12;
    let all = vec![ours.clone(), older_rival()];
    let verify = async move {
        list_topics(&mut api, &all).await;
        let event = api.expect_event("ResourceConflict").await;
        assert_eq!(event["type"], "Warning");
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("ResourceConflict"))
        );
        let message = ready["message"].as_str().expect("message").to_owned();
        assert!(message.contains("Topic orders-legacy"), "{message}");
        assert!(
            status.body["status"]["topicId"].is_null(),
            "nothing recorded"
        );
        status.echo_status_onto(topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("a conflict is not an error");
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    assert!(admin.calls().is_empty(), "the loser never talks to Kafka");
    assert_eq!(admin.topics.lock().expect("lock")["orders"].partitions, 6);
}

#[tokio::test]
async fn a_lasting_conflict_is_not_announced_again() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let mut ours = created_at(topic(), 0);
    let mut status = TopicStatus::default();
    set_condition(
        &mut status.conditions,
        "Ready",
        false,
        "ResourceConflict",
        "before",
        Some(1),
        test_now(),
    );
    ours.status = Some(status);
    let all = vec![ours.clone(), older_rival()];
    let verify = async move {
        list_topics(&mut api, &all).await;
        // The next request is the status, not an Event.
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(ready_condition(&status.body)["reason"], "ResourceConflict");
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("reconcile succeeds");
}

#[tokio::test]
async fn the_older_topic_keeps_managing_despite_a_younger_rival() {
    let admin = FakeAdmin::with_topic(existing(6, &[("retention.ms", "86400000")]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut ours = managing(created_at(topic(), 0), KAFKA_ID);
    ours.spec.partitions = 8;
    let all = vec![younger_rival(), ours.clone()];
    let verify = async move {
        list_topics(&mut api, &all).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        api.expect_event("PartitionsIncreased").await;
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(ready_condition(&status.body)["status"], "True");
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("reconcile succeeds");
    assert_eq!(admin.topics.lock().expect("lock")["orders"].partitions, 8);
}

#[tokio::test]
async fn a_topic_recreated_out_of_band_is_reported_and_left_alone() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut ours = managing(topic(), OLD_ID);
    ours.spec.partitions = 12;
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        let event = api.expect_event("TopicIdChanged").await;
        assert_eq!(event["type"], "Warning");
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("TopicIdChanged"))
        );
        let message = ready["message"].as_str().expect("message").to_owned();
        assert!(
            message.contains(&format!("strom.io/accept-topic-id={KAFKA_ID}")),
            "{message}"
        );
        assert_eq!(
            status.body["status"]["topicId"], OLD_ID,
            "the pin is not moved"
        );
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("a changed id is not an error");
    assert_eq!(
        admin.calls(),
        vec![
            AdminCall::Connect(BOOTSTRAP.to_owned()),
            AdminCall::Describe("orders".to_owned())
        ],
        "no partitions added, no configs set"
    );
}

#[tokio::test]
async fn an_accepted_new_topic_is_adopted_and_its_id_recorded() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let ours = annotate(
        managing(topic(), OLD_ID),
        ACCEPT_TOPIC_ID_ANNOTATION,
        KAFKA_ID,
    );
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        let event = api.expect_event("TopicIdAccepted").await;
        assert!(event["note"].as_str().expect("note").contains(OLD_ID));
        api.expect_event("ConfigsAltered").await;
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(status.body["status"]["topicId"], KAFKA_ID);
        assert_eq!(ready_condition(&status.body)["status"], "True");
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("reconcile succeeds");
}

#[tokio::test]
async fn a_topic_deleted_out_of_band_is_created_again_and_the_new_id_pinned() {
    let admin = FakeAdmin::default();
    let (ctx, mut api) = test_context(admin.clone());
    let ours = managing(topic(), OLD_ID);
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        let event = api.expect_event("Recreated").await;
        assert!(event["note"].as_str().expect("note").contains(OLD_ID));
        api.expect_event("Created").await;
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(status.body["status"]["topicId"], "q7XkR0bBQ9OZ7J6m9m1yFw");
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("reconcile succeeds");
    assert!(admin.topics.lock().expect("lock").contains_key("orders"));
}

#[tokio::test]
async fn unmanaged_topic_is_let_go_without_a_kafka_call() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut ours = managing(topic(), KAFKA_ID);
    ours.spec.managed = false;
    ours.spec.partitions = 12;
    ours.metadata.resource_version = Some("41".to_owned());
    let verify = async move {
        let event = api.expect_event("Unmanaged").await;
        assert_eq!(event["type"], "Normal");
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(ready_condition(&status.body)["reason"], "Unmanaged");
        assert_eq!(status.body["status"]["topicId"], KAFKA_ID, "the pin stays");
        status.echo_status_onto(topic_json());
        let patch = api.expect(Method::PATCH, &topic_path()).await;
        assert_eq!(
            patch.body["metadata"]["finalizers"],
            serde_json::json!([]),
            "finalizer removed: {}",
            patch.body
        );
        assert_eq!(patch.body["metadata"]["resourceVersion"], "41");
        patch.respond(StatusCode::OK, &topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("reconcile succeeds");
    assert_eq!(action, Action::await_change());
    assert!(admin.calls().is_empty());
}

#[tokio::test]
async fn unmanaged_topic_deleted_keeps_the_kafka_topic() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(annotate(topic(), MANAGED_ANNOTATION, "false"), 0);
    let verify = async move {
        api.expect_event("Unmanaged").await;
        expect_finalizer_removed(&mut api).await;
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert!(admin.calls().is_empty());
    assert!(admin.topics.lock().expect("lock").contains_key("orders"));
}

#[tokio::test]
async fn deleting_the_conflicting_topic_keeps_the_owners_kafka_topic() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(created_at(topic(), 0), 0);
    let all = vec![ours.clone(), older_rival()];
    let verify = async move {
        list_topics(&mut api, &all).await;
        api.expect_event("ResourceConflict").await;
        expect_finalizer_removed(&mut api).await;
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert!(admin.calls().is_empty());
    assert!(admin.topics.lock().expect("lock").contains_key("orders"));
}

#[tokio::test]
async fn deleting_the_owner_hands_the_kafka_topic_to_the_other_topic() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(created_at(topic(), 0), 0);
    let all = vec![ours.clone(), younger_rival()];
    let verify = async move {
        list_topics(&mut api, &all).await;
        let event = api.expect_event("HandedOver").await;
        assert!(
            event["note"]
                .as_str()
                .expect("note")
                .contains("orders-copy")
        );
        expect_finalizer_removed(&mut api).await;
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert!(admin.topics.lock().expect("lock").contains_key("orders"));
}

#[tokio::test]
async fn deleting_a_topic_whose_kafka_topic_was_recreated_keeps_the_new_topic() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(managing(topic(), OLD_ID), 0);
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        api.expect_event("TopicIdChanged").await;
        expect_finalizer_removed(&mut api).await;
    };
    run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert_eq!(
        admin.calls(),
        vec![
            AdminCall::Connect(BOOTSTRAP.to_owned()),
            AdminCall::Describe("orders".to_owned())
        ]
    );
    assert!(admin.topics.lock().expect("lock").contains_key("orders"));
}

fn leaving_cluster_json() -> Value {
    let mut cluster = cluster_json();
    cluster["metadata"]["deletionTimestamp"] =
        serde_json::to_value(Time(test_now())).expect("time serializes");
    cluster["metadata"]["finalizers"] = serde_json::json!(["example.org/keep"]);
    cluster
}

#[tokio::test]
async fn a_leaving_cluster_holds_the_finalizer_until_the_deadline() {
    let admin = FakeAdmin {
        unreachable: true,
        ..FakeAdmin::with_topic(existing(6, &[]))
    };
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(topic(), 60);
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &leaving_cluster_json());
        let event = api.expect_event("DeleteFailed").await;
        assert!(
            event["note"].as_str().expect("note").contains("240s more"),
            "{event}"
        );
    };
    let result = run_scenario(reconcile(Arc::new(ours), ctx), verify).await;
    assert!(
        result.is_err(),
        "an error keeps the finalizer for a retry: {result:?}"
    );
}

#[tokio::test]
async fn a_leaving_cluster_releases_the_finalizer_after_the_deadline() {
    let admin = FakeAdmin {
        unreachable: true,
        ..FakeAdmin::with_topic(existing(6, &[]))
    };
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(topic(), 301);
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &leaving_cluster_json());
        let event = api.expect_event("FinalizerDeadline").await;
        assert_eq!(event["type"], "Warning");
        expect_finalizer_removed(&mut api).await;
    };
    let action = run_scenario(reconcile(Arc::new(ours), ctx), verify)
        .await
        .expect("released");
    assert_eq!(action, Action::await_change());
}

#[tokio::test]
async fn a_live_cluster_that_fails_the_deletion_keeps_retrying_past_the_deadline() {
    let admin = FakeAdmin {
        unreachable: true,
        ..FakeAdmin::with_topic(existing(6, &[]))
    };
    let (ctx, mut api) = test_context(admin.clone());
    let ours = deleting(topic(), 3600);
    let verify = async move {
        list_topics(&mut api, &[topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(StatusCode::OK, &cluster_json());
        api.expect_event("DeleteFailed").await;
    };
    let result = run_scenario(reconcile(Arc::new(ours), ctx), verify).await;
    assert!(result.is_err(), "the finalizer stays: {result:?}");
}
