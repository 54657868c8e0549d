//! The Cluster reconciler against a mock API server: the requests it makes, in order.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use kube::runtime::controller::Action;
use serde_json::json;
use strom_crds::Cluster;

use super::builders::{BuildDefaults, StatefulSetInputs, stateful_set};
use super::reconcile;
use crate::day2::revision::REVISION_ANNOTATION;
use crate::fixtures::{
    AdminCall, ApiServerVerifier, FakeAdmin, NAMESPACE, cluster_view, demo_bootstrap,
    demo_broker_address, minimal_cluster, run_scenario, test_context,
};

/// The day-2 target of `cluster` under the test context's operator defaults.
fn desired(cluster: &Cluster) -> crate::day2::Desired {
    super::builders::desired(
        cluster,
        &BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0"),
    )
}

fn cluster_json() -> serde_json::Value {
    serde_json::to_value(minimal_cluster()).expect("cluster serializes")
}

fn empty_pod_list() -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": []})
}

/// A pass starts by observing the workload: the StatefulSet (none yet), the broker pods and
/// the claims (none), listed by the Cluster's selector labels.
async fn expect_observation(api: &mut ApiServerVerifier, pods: &serde_json::Value) {
    expect_observation_of(api, None, pods).await;
}

/// The observation of a workload whose StatefulSet is `sts`.
async fn expect_observation_of(
    api: &mut ApiServerVerifier,
    sts: Option<&serde_json::Value>,
    pods: &serde_json::Value,
) {
    let get = api
        .expect(
            Method::GET,
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
        )
        .await;
    match sts {
        Some(sts) => get.respond(StatusCode::OK, sts),
        None => get.not_found(),
    }
    let list = api
        .expect(Method::GET, &format!("/api/v1/namespaces/{NAMESPACE}/pods"))
        .await;
    assert!(
        list.query
            .contains("labelSelector=app.kubernetes.io%2Fcomponent%3Dbroker"),
        "{}",
        list.query
    );
    list.respond(StatusCode::OK, pods);
    let claims = api
        .expect(
            Method::GET,
            &format!("/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims"),
        )
        .await;
    assert!(
        claims
            .query
            .contains("labelSelector=app.kubernetes.io%2Fcomponent%3Dbroker"),
        "{}",
        claims.query
    );
    claims.respond(
        StatusCode::OK,
        &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaimList", "metadata": {}, "items": []}),
    );
}

#[tokio::test]
async fn new_cluster_applies_its_children_and_reports_provisioning() {
    let (ctx, mut api) = test_context(FakeAdmin::default());
    let cluster = Arc::new(minimal_cluster());
    let verify = async move {
        expect_observation(&mut api, &empty_pod_list()).await;
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
        // Created without brokers: the day-2 plan starts them right after.
        assert_eq!(sts.body["spec"]["replicas"], 0);
        assert_eq!(sts.body["spec"]["updateStrategy"]["type"], "OnDelete");
        assert_eq!(sts.body["spec"]["serviceName"], "demo-brokers");
        assert_eq!(
            sts.body["spec"]["template"]["metadata"]["annotations"][REVISION_ANNOTATION],
            desired(&minimal_cluster()).revision
        );
        let created = sts.body.clone();
        sts.echo();
        let pdb = api
            .expect_apply(&format!(
                "/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/demo-broker"
            ))
            .await;
        assert_eq!(pdb.body["spec"]["maxUnavailable"], 1);
        pdb.echo();
        let scale = api
            .expect(
                Method::PATCH,
                &format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
            )
            .await;
        assert_eq!(scale.body, json!({"spec": {"replicas": 3}}));
        let mut scaled = created;
        scaled["spec"]["replicas"] = json!(3);
        scale.respond(StatusCode::OK, &scaled);
        let raised = api.expect_event("ReplicasRaised").await;
        assert!(
            raised["note"]
                .as_str()
                .is_some_and(|n| n.contains("from 0 to 3")),
            "{raised}"
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
        metrics.contains(
            "strom_operator_operations_in_progress{cluster=\"kafka/demo\",kind=\"Provisioning\"} 1"
        ),
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
        expect_observation(&mut api, &empty_pod_list()).await;
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
        expect_observation(&mut api, &empty_pod_list()).await;
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
        api.expect(
            Method::PATCH,
            &format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
        )
        .await
        .respond(StatusCode::OK, &running_stateful_set(3));
        api.expect_event("ReplicasRaised").await;
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

/// The `demo` StatefulSet running `replicas` brokers on the desired revision.
fn running_stateful_set(replicas: i32) -> serde_json::Value {
    let cluster = minimal_cluster();
    let inputs = StatefulSetInputs {
        replicas,
        ..StatefulSetInputs::new_for(&cluster, desired(&cluster).revision)
    };
    let defaults = BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0");
    let mut sts = serde_json::to_value(stateful_set(&cluster, &defaults, &inputs))
        .expect("StatefulSet serializes");
    sts["apiVersion"] = json!("apps/v1");
    sts["kind"] = json!("StatefulSet");
    sts
}

/// The `demo` cluster's three broker pods, on the desired revision; those in `not_ready` fail
/// their readiness probe.
fn pod_list(not_ready: &[i32]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = (0..3)
        .map(|id| {
            let ready = if not_ready.contains(&id) {
                "False"
            } else {
                "True"
            };
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": format!("demo-broker-{id}"),
                    "namespace": NAMESPACE,
                    "annotations": {REVISION_ANNOTATION: desired(&minimal_cluster()).revision},
                },
                "status": {"conditions": [{"type": "Ready", "status": ready}]},
            })
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": items})
}

/// One reconcile of `demo` whose three pods are all ready, with the brokers answering
/// DescribeCluster as `admin` says; returns the status written and the requeue.
async fn reconcile_with_ready_pods(admin: &FakeAdmin) -> (serde_json::Value, Action) {
    reconcile_with_pods(admin, pod_list(&[])).await
}

async fn reconcile_with_pods(
    admin: &FakeAdmin,
    pods: serde_json::Value,
) -> (serde_json::Value, Action) {
    let (ctx, mut api) = test_context(admin.clone());
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let running = running_stateful_set(3);
    let verify = async move {
        expect_observation_of(&mut api, Some(&running), &pods).await;
        for path in [
            format!("/api/v1/namespaces/{NAMESPACE}/configmaps/demo-config"),
            format!("/api/v1/namespaces/{NAMESPACE}/services/demo-brokers"),
            format!("/api/v1/namespaces/{NAMESPACE}/services/demo-bootstrap"),
            format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker"),
            format!("/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets/demo-broker"),
        ] {
            api.expect_apply(&path).await.echo();
        }
        api.expect_event("Applied").await;
        let status = api
            .expect_apply(&format!(
                "/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status"
            ))
            .await;
        let written = status.body["status"].clone();
        status.echo_status_onto(cluster_json());
        sender.send(written).expect("test waits for the status");
    };
    let action = run_scenario(reconcile(Arc::new(minimal_cluster()), ctx), verify)
        .await
        .expect("reconcile succeeds");
    (receiver.await.expect("status written"), action)
}

fn ready_condition(status: &serde_json::Value) -> (String, String, String) {
    let ready = status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Ready")
        .expect("Ready");
    let text = |key: &str| ready[key].as_str().expect("string field").to_owned();
    (text("status"), text("reason"), text("message"))
}

/// A fake whose three brokers each answer with `view(id)`.
fn brokers_answering(view: impl Fn(i32) -> strom_admin::ClusterDescription) -> FakeAdmin {
    let admin = FakeAdmin::default();
    for id in 0..3 {
        admin.set_cluster_view(&demo_broker_address(id), view(id));
    }
    // The day-2 pass reaches the admin API through the bootstrap Service, which lands on
    // broker 0.
    admin.set_cluster_view(&demo_bootstrap(), view(0));
    admin
}

#[tokio::test]
async fn ready_waits_until_every_broker_is_registered() {
    // All three pods are ready, but the brokers list only brokers 0 and 1.
    let admin = brokers_answering(|_| cluster_view("c1", Some(0), &[0, 1]));
    let (status, action) = reconcile_with_ready_pods(&admin).await;
    assert_eq!(status["readyReplicas"], 3);
    assert_eq!(
        ready_condition(&status),
        (
            "False".to_owned(),
            "BrokersNotRegistered".to_owned(),
            "2 of 3 brokers registered and unfenced: broker 2 is not registered".to_owned()
        )
    );
    assert!(status.get("clusterId").is_none(), "{status}");
    let per_broker: Vec<(bool, Option<&str>)> = status["brokers"]
        .as_array()
        .expect("brokers")
        .iter()
        .map(|b| (b["registered"] == true, b["rack"].as_str()))
        .collect();
    assert_eq!(
        per_broker,
        [
            (true, Some("zone-0")),
            (true, Some("zone-1")),
            (false, None)
        ]
    );
    assert_eq!(action, Action::requeue(Duration::from_secs(15)));
    // Each broker was asked at its own stable address.
    let asked: Vec<AdminCall> = admin
        .calls()
        .into_iter()
        .filter(|c| matches!(c, AdminCall::DescribeCluster(a) if *a != demo_bootstrap()))
        .collect();
    assert_eq!(
        asked,
        (0..3)
            .map(|id| AdminCall::DescribeCluster(demo_broker_address(id)))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn ready_is_false_while_brokers_report_two_cluster_ids() {
    let admin = brokers_answering(|id| {
        if id == 0 {
            cluster_view("first", Some(0), &[0])
        } else {
            cluster_view("second", Some(1), &[1, 2])
        }
    });
    let (status, _) = reconcile_with_ready_pods(&admin).await;
    let (ready, reason, message) = ready_condition(&status);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "ClusterIdMismatch")
    );
    assert!(
        message.ends_with("first (broker 0), second (brokers 1, 2)"),
        "{message}"
    );
}

#[tokio::test]
async fn ready_is_false_without_an_active_controller() {
    let admin = brokers_answering(|_| cluster_view("c1", None, &[0, 1, 2]));
    let (status, _) = reconcile_with_ready_pods(&admin).await;
    assert_eq!(
        ready_condition(&status),
        (
            "False".to_owned(),
            "NoActiveController".to_owned(),
            "Brokers 0, 1, 2 know of no active controller".to_owned()
        )
    );
}

#[tokio::test]
async fn ready_is_false_while_a_broker_does_not_answer() {
    let admin = brokers_answering(|_| cluster_view("c1", Some(0), &[0, 1, 2]));
    admin
        .cluster_views
        .lock()
        .expect("fake admin lock")
        .remove(&demo_broker_address(1));
    let (status, _) = reconcile_with_ready_pods(&admin).await;
    let (ready, reason, message) = ready_condition(&status);
    assert_eq!(
        (ready.as_str(), reason.as_str()),
        ("False", "BrokersUnreachable")
    );
    assert!(
        message.starts_with("no admin API answer from broker 1 (DescribeCluster"),
        "{message}"
    );
}

#[tokio::test]
async fn ready_when_all_brokers_agree_on_one_cluster() {
    let admin = brokers_answering(|_| cluster_view("c1", Some(2), &[0, 1, 2]));
    let (status, action) = reconcile_with_ready_pods(&admin).await;
    assert_eq!(
        ready_condition(&status),
        (
            "True".to_owned(),
            "BrokersReady".to_owned(),
            "3/3 brokers ready, registered and unfenced in cluster c1; active controller: broker 2"
                .to_owned()
        )
    );
    assert_eq!(status["clusterId"], "c1");
    assert_eq!(status["controllerId"], 2);
    assert!(status.get("operation").is_none(), "{status}");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
}

#[tokio::test]
async fn brokers_of_pods_that_are_not_ready_are_not_asked() {
    let admin = brokers_answering(|_| cluster_view("c1", Some(0), &[0, 1, 2]));
    let (status, _) = reconcile_with_pods(&admin, pod_list(&[2])).await;
    assert_eq!(
        ready_condition(&status),
        (
            "False".to_owned(),
            "BrokersNotReady".to_owned(),
            "2/3 brokers ready; not ready: 2".to_owned()
        )
    );
    let asked: Vec<AdminCall> = admin
        .calls()
        .into_iter()
        .filter(|c| matches!(c, AdminCall::DescribeCluster(a) if *a != demo_bootstrap()))
        .collect();
    assert_eq!(
        asked,
        [0, 1].map(|id| AdminCall::DescribeCluster(demo_broker_address(id)))
    );
}
