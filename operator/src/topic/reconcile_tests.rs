//! The Topic reconciler against a mock API server and a fake Kafka admin.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use serde_json::Value;
use strom_admin::ObservedTopic;
use strom_crds::{Topic, TopicStatus};

use super::reconcile;
use crate::fixtures::{
    AdminCall, ApiServerVerifier, FakeAdmin, NAMESPACE, minimal_cluster, run_scenario,
    test_context, test_now, topic,
};

pub(super) const BOOTSTRAP: &str = "demo-bootstrap.kafka.svc:9092";

pub(super) fn cluster_path() -> String {
    format!("/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo")
}

pub(super) fn status_path() -> String {
    format!("/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/topics/orders/status")
}

pub(super) fn topics_path() -> String {
    format!("/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/topics")
}

pub(super) fn topic_path() -> String {
    format!("/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/topics/orders")
}

/// Answers the Topic list of the namespace with `topics`.
pub(super) async fn list_topics(api: &mut ApiServerVerifier, topics: &[Topic]) {
    api.expect(Method::GET, &topics_path()).await.respond(
        http::StatusCode::OK,
        &serde_json::json!({
            "apiVersion": "strom.io/v1alpha1",
            "kind": "TopicList",
            "metadata": {},
            "items": topics,
        }),
    );
}

pub(super) fn cluster_json() -> Value {
    serde_json::to_value(minimal_cluster()).expect("cluster serializes")
}

pub(super) fn topic_json() -> Value {
    serde_json::to_value(topic()).expect("topic serializes")
}

pub(super) fn ready_condition(status: &Value) -> Value {
    status["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("Ready condition")
        .clone()
}

pub(super) fn existing(partitions: i32, configs: &[(&str, &str)]) -> ObservedTopic {
    ObservedTopic {
        name: "orders".to_owned(),
        topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".to_owned(),
        partitions,
        replication_factor: 3,
        configs: configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

#[tokio::test]
async fn new_topic_is_created_and_reported_ready() {
    let admin = FakeAdmin::default();
    let (ctx, mut api) = test_context(admin.clone());
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        let event = api.expect_event("Created").await;
        assert!(
            event["note"]
                .as_str()
                .expect("note")
                .contains("6 partitions")
        );
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(status.body["status"]["topicId"], "q7XkR0bBQ9OZ7J6m9m1yFw");
        assert_eq!(status.body["status"]["partitions"], 6);
        assert_eq!(status.body["status"]["replicationFactor"], 3);
        assert_eq!(
            status.body["status"]["managedConfigKeys"],
            serde_json::json!(["retention.ms"])
        );
        assert_eq!(ready_condition(&status.body)["status"], "True");
        status.echo_status_onto(topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(topic()), ctx), verify)
        .await
        .expect("reconcile succeeds");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert_eq!(
        admin.calls(),
        vec![
            AdminCall::Connect(BOOTSTRAP.to_owned()),
            AdminCall::Describe("orders".to_owned()),
            AdminCall::Create {
                name: "orders".to_owned(),
                partitions: 6,
                replication_factor: 3,
                configs: BTreeMap::from([("retention.ms".to_owned(), "86400000".to_owned())]),
            },
            AdminCall::Describe("orders".to_owned()),
        ]
    );
}

#[tokio::test]
async fn lowered_partitions_are_refused_without_an_admin_change() {
    let admin = FakeAdmin::with_topic(existing(12, &[("retention.ms", "86400000")]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut topic = topic();
    topic.spec.partitions = 6;
    topic.status = Some(TopicStatus {
        partitions: Some(12),
        managed_config_keys: vec!["retention.ms".to_owned()],
        ..TopicStatus::default()
    });
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        let event = api.expect_event("PartitionDecreaseRefused").await;
        assert_eq!(event["type"], "Warning");
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("PartitionDecreaseRefused"))
        );
        let message = status.body["status"]["message"]
            .as_str()
            .expect("message")
            .to_owned();
        assert!(message.contains("cannot remove partitions"), "{message}");
        assert_eq!(
            status.body["status"]["partitions"], 12,
            "status reports the real count"
        );
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(topic), ctx), verify)
        .await
        .expect("a refusal is not an error");
    assert_eq!(
        admin.calls(),
        vec![
            AdminCall::Connect(BOOTSTRAP.to_owned()),
            AdminCall::Describe("orders".to_owned())
        ],
        "only reads"
    );
}

#[tokio::test]
async fn deleted_topic_is_deleted_in_kafka_then_released() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut topic = topic();
    topic.metadata.deletion_timestamp = Some(Time(test_now()));
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        api.expect_event("Deleted").await;
        let patch = api.expect(Method::PATCH, &topic_path()).await;
        let ops = patch.body.as_array().expect("JSON patch").clone();
        assert!(
            ops.iter()
                .any(|op| op["op"] == "remove" && op["path"] == "/metadata/finalizers/0"),
            "finalizer removed: {ops:?}"
        );
        let mut released =
            serde_json::to_value(crate::fixtures::topic()).expect("topic serializes");
        released["metadata"]["finalizers"] = Value::Array(Vec::new());
        patch.respond(http::StatusCode::OK, &released);
    };
    let action = run_scenario(reconcile(Arc::new(topic), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert_eq!(action, Action::await_change());
    assert_eq!(
        admin.calls(),
        vec![
            AdminCall::Connect(BOOTSTRAP.to_owned()),
            AdminCall::Describe("orders".to_owned()),
            AdminCall::Delete("orders".to_owned())
        ]
    );
    assert!(
        admin.topics.lock().expect("lock").is_empty(),
        "the Kafka topic is gone"
    );
}

#[tokio::test]
async fn retained_topic_is_released_without_deleting() {
    let admin = FakeAdmin::with_topic(existing(6, &[]));
    let (ctx, mut api) = test_context(admin.clone());
    let mut topic = topic();
    topic.spec.deletion_policy = strom_crds::topic::DeletionPolicy::Retain;
    topic.metadata.deletion_timestamp = Some(Time(test_now()));
    let verify = async move {
        api.expect_event("Retained").await;
        let patch = api.expect(Method::PATCH, &topic_path()).await;
        patch.respond(http::StatusCode::OK, &topic_json());
    };
    run_scenario(reconcile(Arc::new(topic), ctx), verify)
        .await
        .expect("cleanup succeeds");
    assert!(admin.calls().is_empty(), "Retain never talks to Kafka");
}

#[tokio::test]
async fn missing_cluster_is_reported_and_retried() {
    let admin = FakeAdmin::default();
    let (ctx, mut api) = test_context(admin.clone());
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path()).await.not_found();
        let event = api.expect_event("ClusterNotFound").await;
        assert_eq!(event["type"], "Warning");
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(ready["reason"], "ClusterNotFound");
        assert!(
            ready["message"]
                .as_str()
                .expect("message")
                .contains("Cluster demo does not exist")
        );
        status.echo_status_onto(topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(topic()), ctx.clone()), verify)
        .await
        .expect("no crash loop: Ok");
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert!(admin.calls().is_empty());
    assert!(
        ctx.metrics
            .encode()
            .expect("metrics")
            .contains("reason=\"ClusterNotFound\"} 1")
    );
}

#[tokio::test]
async fn unreachable_cluster_is_reported_and_retried() {
    let admin = FakeAdmin {
        unreachable: true,
        ..FakeAdmin::default()
    };
    let (ctx, mut api) = test_context(admin.clone());
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        api.expect_event("ClusterUnreachable").await;
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(ready["reason"], "ClusterUnreachable");
        assert!(
            ready["message"]
                .as_str()
                .expect("message")
                .contains(BOOTSTRAP)
        );
        status.echo_status_onto(topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(topic()), ctx), verify)
        .await
        .expect("no crash loop: Ok");
    assert_eq!(action, Action::requeue(Duration::from_secs(30)));
    assert_eq!(
        admin.calls(),
        vec![AdminCall::Connect(BOOTSTRAP.to_owned())]
    );
}

#[tokio::test]
async fn drift_on_a_managed_key_is_put_back_and_removed_keys_reset() {
    // retention.ms was changed by hand; segment.bytes was ours and left the spec; cleanup.policy
    // was set by someone else.
    let admin = FakeAdmin::with_topic(existing(
        6,
        &[
            ("retention.ms", "1"),
            ("segment.bytes", "1048576"),
            ("cleanup.policy", "compact"),
        ],
    ));
    let (ctx, mut api) = test_context(admin.clone());
    let mut topic = topic();
    topic.status = Some(TopicStatus {
        partitions: Some(6),
        managed_config_keys: vec!["retention.ms".to_owned(), "segment.bytes".to_owned()],
        ..TopicStatus::default()
    });
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        api.expect_event("ConfigsAltered").await;
        let status = api.expect_apply(&status_path()).await;
        assert_eq!(
            status.body["status"]["managedConfigKeys"],
            serde_json::json!(["retention.ms"])
        );
        status.echo_status_onto(topic_json());
    };
    run_scenario(reconcile(Arc::new(topic), ctx), verify)
        .await
        .expect("reconcile succeeds");
    let configs = admin.topics.lock().expect("lock")["orders"].configs.clone();
    assert_eq!(
        configs,
        BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("retention.ms".to_owned(), "86400000".to_owned()),
        ])
    );
}

#[tokio::test]
async fn unknown_topic_config_key_rejected_by_kafka_is_reported() {
    let admin = FakeAdmin {
        reject_configs: true,
        ..FakeAdmin::default()
    };
    let (ctx, mut api) = test_context(admin.clone());
    let mut topic = topic();
    topic.spec.config = BTreeMap::from([("retention.mss".to_owned(), "1".to_owned())]);
    let verify = async move {
        list_topics(&mut api, &[crate::fixtures::topic()]).await;
        api.expect(Method::GET, &cluster_path())
            .await
            .respond(http::StatusCode::OK, &cluster_json());
        let event = api.expect_event("KafkaRejected").await;
        assert!(
            event["note"]
                .as_str()
                .expect("note")
                .contains("retention.mss")
        );
        let status = api.expect_apply(&status_path()).await;
        let ready = ready_condition(&status.body);
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some("KafkaRejected"))
        );
        assert!(
            ready["message"]
                .as_str()
                .expect("message")
                .contains("INVALID_CONFIG")
        );
        status.echo_status_onto(topic_json());
    };
    let action = run_scenario(reconcile(Arc::new(topic), ctx), verify)
        .await
        .expect("no crash loop: Ok");
    assert_eq!(action, Action::requeue(Duration::from_secs(120)));
}
