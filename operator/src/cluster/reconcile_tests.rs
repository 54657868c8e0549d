//! The Cluster reconciler against a mock API server: the requests it makes, in order.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use kube::runtime::controller::Action;
use serde_json::json;

use super::reconcile;
use crate::fixtures::{FakeAdmin, NAMESPACE, minimal_cluster, run_scenario, test_context};

fn cluster_json() -> serde_json::Value {
    serde_json::to_value(minimal_cluster()).expect("cluster serializes")
}

#[tokio::test]
async fn new_cluster_applies_its_children_and_reports_provisioning() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let cluster = Arc::new(minimal_cluster());
    let verify = async move {
        let cm = api
            .expect_apply(&format!(
                "/api/v1/namespaces/{NAMESPACE}/configmaps/demo-config"
            ))
            .await;
        assert_eq!(cm.body["kind"], "ConfigMap");
        assert_eq!(cm.body["metadata"]["ownerReferences"][0]["kind"], "Cluster");
        assert_eq!(
            cm.body["metadata"]["ownerReferences"][0]["controller"],
            true
        );
        assert!(cm.body["data"]["server.properties"].is_string());
        cm.echo();
        let headless = api
            .expect_apply(&format!(
                "/api/v1/namespaces/{NAMESPACE}/services/demo-brokers"
            ))
            .await;
        assert_eq!(headless.body["spec"]["clusterIP"], "None");
        headless.echo();
        let bootstrap = api
            .expect_apply(&format!(
                "/api/v1/namespaces/{NAMESPACE}/services/demo-bootstrap"
            ))
            .await;
        assert_eq!(bootstrap.body["spec"]["ports"][0]["port"], 9092);
        bootstrap.echo();
        let sts = api
            .expect_apply(&format!(
                "/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"
            ))
            .await;
        assert_eq!(sts.body["spec"]["replicas"], 3);
        assert_eq!(sts.body["spec"]["updateStrategy"]["type"], "OnDelete");
        assert_eq!(sts.body["spec"]["serviceName"], "demo-brokers");
        sts.echo();
        let pdb = api
            .expect_apply(&format!(
                "/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/demo-broker"
            ))
            .await;
        assert_eq!(pdb.body["spec"]["maxUnavailable"], 1);
        pdb.echo();
        let pods = api
            .expect(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"))
            .await;
        assert!(
            pods.query
                .contains("labelSelector=app.kubernetes.io%2Fcomponent%3Dbroker"),
            "{}",
            pods.query
        );
        pods.respond(
            StatusCode::OK,
            &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
        );
        let event = api.expect_event("Applied").await;
        assert_eq!(event["type"], "Normal");
        let status = api
            .expect_apply(&format!(
                "/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status"
            ))
            .await;
        let s = &status.body["status"];
        assert_eq!(s["replicas"], 3);
        assert_eq!(s["readyReplicas"], 0);
        assert_eq!(s["observedGeneration"], 1);
        assert_eq!(s["bootstrapServers"], "demo-bootstrap.kafka.svc:9092");
        assert_eq!(s["operation"]["kind"], "Provisioning");
        let ready = s["conditions"]
            .as_array()
            .expect("conditions")
            .iter()
            .find(|c| c["type"] == "Ready")
            .expect("Ready");
        assert_eq!(ready["status"], "False");
        status.echo_status_onto(cluster_json());
    };
    let action = run_scenario(reconcile(cluster, ctx.clone()), verify)
        .await
        .expect("reconcile succeeds");
    assert_eq!(
        action,
        Action::requeue(Duration::from_secs(15)),
        "a provisioning cluster is checked again soon"
    );
    let metrics = ctx.metrics.encode().expect("metrics");
    assert!(
        metrics.contains("strom_operator_operations_in_progress{kind=\"Provisioning\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn disallowed_config_key_is_reported_and_nothing_is_applied() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let mut cluster = minimal_cluster();
    cluster
        .spec
        .config
        .insert("node.id".to_owned(), "7".to_owned());
    cluster
        .spec
        .config
        .insert("log.retention.ms".to_owned(), "1000".to_owned());
    let verify = async move {
        let event = api.expect_event("InvalidConfig").await;
        assert_eq!(event["type"], "Warning");
        assert!(event["note"].as_str().expect("note").contains("node.id"));
        let status = api
            .expect_apply(&format!(
                "/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status"
            ))
            .await;
        let conditions = status.body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .clone();
        let degraded = conditions
            .iter()
            .find(|c| c["type"] == "Degraded")
            .expect("Degraded");
        assert_eq!(
            (degraded["status"].as_str(), degraded["reason"].as_str()),
            (Some("True"), Some("InvalidConfig"))
        );
        assert!(
            degraded["message"]
                .as_str()
                .expect("message")
                .contains("node.id")
        );
        assert!(
            degraded["message"]
                .as_str()
                .expect("message")
                .starts_with("spec.config has keys a Cluster may not set: node.id;"),
            "only the disallowed key is named as the problem"
        );
        status.echo_status_onto(cluster_json());
    };
    let action = run_scenario(reconcile(Arc::new(cluster), ctx.clone()), verify)
        .await
        .expect("no crash loop: Ok");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    assert!(
        ctx.metrics
            .encode()
            .expect("metrics")
            .contains("reason=\"invalid_config\"} 1")
    );
}

#[tokio::test]
async fn paused_cluster_is_observed_but_not_changed() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let mut cluster = minimal_cluster();
    cluster.spec.paused = true;
    let verify = async move {
        api.expect(
            Method::GET,
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
        )
        .await
        .not_found();
        api.expect(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"))
            .await
            .respond(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            );
        let status = api
            .expect_apply(&format!(
                "/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status"
            ))
            .await;
        let conditions = status.body["status"]["conditions"]
            .as_array()
            .expect("conditions")
            .clone();
        let progressing = conditions
            .iter()
            .find(|c| c["type"] == "Progressing")
            .expect("Progressing");
        assert_eq!(progressing["reason"], "Paused");
        status.echo_status_onto(cluster_json());
    };
    run_scenario(reconcile(Arc::new(cluster), ctx), verify)
        .await
        .expect("reconcile succeeds");
}

#[tokio::test]
async fn service_monitor_without_its_crd_is_skipped_with_an_event() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let mut cluster = minimal_cluster();
    cluster.spec.metrics.service_monitor = true;
    let verify = async move {
        for path in [
            format!("/api/v1/namespaces/{NAMESPACE}/configmaps/demo-config"),
            format!("/api/v1/namespaces/{NAMESPACE}/services/demo-brokers"),
            format!("/api/v1/namespaces/{NAMESPACE}/services/demo-bootstrap"),
            format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
            format!("/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/demo-broker"),
        ] {
            api.expect_apply(&path).await.echo();
        }
        api.expect(
            Method::GET,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com",
        )
        .await
        .not_found();
        api.expect_event("ServiceMonitorUnavailable").await;
        api.expect(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"))
            .await
            .respond(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []}),
            );
        api.expect_event("Applied").await;
        api.expect_apply(&format!(
            "/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status"
        ))
        .await
        .echo_status_onto(cluster_json());
    };
    run_scenario(reconcile(Arc::new(cluster), ctx), verify)
        .await
        .expect("reconcile succeeds");
}
