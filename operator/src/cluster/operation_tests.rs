//! Day-2 passes of the Cluster reconciler against a mock API server and a fake Kafka admin: the
//! pods it evicts, the StatefulSet replicas it applies and patches, the claims it grows and
//! the Events it publishes, pass after pass, with the status of each pass read back by the
//! next as an operator restarted between them would.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use strom_crds::Cluster;

use super::builders::{BuildDefaults, StatefulSetInputs, stateful_set};
use super::reconcile;
use crate::day2::plan::RESTART_TIMEOUT_SECONDS;
use crate::day2::revision::REVISION_ANNOTATION;
use crate::fixtures::{
    AdminCall, FakeAdmin, FakeReplicas, NAMESPACE, cluster_view, demo_bootstrap,
    demo_broker_address, minimal_cluster, run_scenario, test_context,
};

/// The day-2 target of `cluster` under the test context's operator defaults.
fn desired(cluster: &Cluster) -> crate::day2::Desired {
    super::builders::desired(
        cluster,
        &BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0"),
    )
}

/// One broker pod as the mock API server lists it.
#[derive(Debug, Clone)]
struct PodSpec {
    id: i32,
    revision: String,
    ready: bool,
    crash_looping: bool,
    /// Bumped each time the StatefulSet recreates the pod.
    generation: u32,
}

impl PodSpec {
    fn new(id: i32, revision: &str) -> Self {
        Self {
            id,
            revision: revision.to_owned(),
            ready: true,
            crash_looping: false,
            generation: 0,
        }
    }

    fn uid(&self) -> String {
        format!("uid-{}-{}", self.id, self.generation)
    }

    fn json(&self) -> Value {
        let mut status = json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": if self.ready { "True" } else { "False" }}],
        });
        if self.crash_looping {
            status["containerStatuses"] = json!([{
                "name": "broker",
                "image": "ghcr.io/strom-io/strom-broker:0.1.0",
                "imageID": "",
                "ready": false,
                "restartCount": 6,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
            }]);
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("demo-broker-{}", self.id),
                "namespace": NAMESPACE,
                "uid": self.uid(),
                "annotations": {REVISION_ANNOTATION: self.revision},
            },
            "status": status,
        })
    }
}

/// The Kubernetes side of one pass: what exists, and how the API server answers.
struct World {
    /// The StatefulSet's `spec.replicas` and claim size; `None`: no StatefulSet yet.
    stateful_set: Option<(i32, String)>,
    pods: Vec<PodSpec>,
    /// Claim name to its requested size.
    claims: BTreeMap<String, String>,
    /// Claims whose status has `FileSystemResizePending=True`.
    resize_pending: Vec<String>,
    /// How the API server answers evictions.
    evictions: Eviction,
}

/// How the API server answers an eviction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eviction {
    /// 201: the pod goes.
    Granted,
    /// 429: the PodDisruptionBudget allows no disruption now.
    Refused,
    /// 409: the uid precondition failed, the pod was recreated since it was observed.
    Replaced,
    /// 404: the pod is gone (deleted since it was observed, not recreated yet).
    Gone,
}

/// What the operator asked of the API server in one pass.
#[derive(Debug, Default)]
struct Pass {
    /// `spec.replicas` of the applied StatefulSet.
    applied_replicas: Option<i64>,
    /// The revision on the applied pod template.
    applied_revision: Option<String>,
    /// The storage request of the applied volume claim template.
    applied_claim_size: Option<String>,
    /// Pods evicted, with the uid precondition each eviction carried.
    evictions: Vec<(String, Option<String>)>,
    /// `spec.replicas` of each merge patch of the StatefulSet.
    scaled_to: Vec<i64>,
    /// Claims patched, with the size asked for.
    claims_grown: Vec<(String, String)>,
    /// Reasons of the Events published, in order, with their notes.
    events: Vec<(String, String)>,
    /// The status written.
    status: Value,
}

impl Pass {
    fn event(&self, reason: &str) -> Option<&str> {
        self.events
            .iter()
            .find(|(r, _)| r == reason)
            .map(|(_, note)| note.as_str())
    }

    fn operation(&self) -> &Value {
        &self.status["operation"]
    }

    fn condition(&self, type_: &str) -> Option<&Value> {
        self.status["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)
    }
}

fn sts_json(cluster: &Cluster, replicas: i32, claim_size: &str) -> Value {
    let inputs = StatefulSetInputs {
        replicas,
        revision: "rev-of-the-running-template".to_owned(),
        claim_size: claim_size.to_owned(),
    };
    let defaults = BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0");
    let mut value = serde_json::to_value(stateful_set(cluster, &defaults, &inputs))
        .expect("StatefulSet serializes");
    value["apiVersion"] = json!("apps/v1");
    value["kind"] = json!("StatefulSet");
    value
}

fn claim_json(name: &str, size: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}},
    })
}

/// A claim whose volume grew and whose filesystem grows when its pod starts again.
fn resize_pending_claim_json(name: &str, size: &str) -> Value {
    let mut claim = claim_json(name, size);
    claim["status"] = json!({
        "phase": "Bound",
        "capacity": {"storage": size},
        "conditions": [{"type": "FileSystemResizePending", "status": "True",
                        "message": "Waiting for user to (re-)start a pod to finish file system resize of volume on node."}],
    });
    claim
}

/// Runs one reconcile of `cluster` against `world` and `admin`, answering every request the
/// way the API server would, and returns what was asked. A request outside what a Cluster
/// pass may make fails the test.
async fn pass(cluster: &Cluster, world: &World, admin: &FakeAdmin) -> Pass {
    let (ctx, mut api) = test_context(admin.clone());
    let base = format!("/api/v1/namespaces/{NAMESPACE}");
    let sts_path = format!("/apis/apps/v1/namespaces/{NAMESPACE}/statefulsets/demo-broker");
    let status_path =
        format!("/apis/strom.io/v1alpha1/namespaces/{NAMESPACE}/clusters/demo/status");
    let sts = world
        .stateful_set
        .as_ref()
        .map(|(replicas, size)| sts_json(cluster, *replicas, size));
    let pods: Vec<Value> = world.pods.iter().map(PodSpec::json).collect();
    let claims: Vec<Value> = world
        .claims
        .iter()
        .map(|(name, size)| {
            if world.resize_pending.contains(name) {
                resize_pending_claim_json(name, size)
            } else {
                claim_json(name, size)
            }
        })
        .collect();
    let answer = world.evictions;
    let cluster_value = serde_json::to_value(cluster).expect("cluster serializes");
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let verify = async move {
        let mut record = Pass::default();
        loop {
            let received = api.next().await;
            let (method, path) = (received.method.clone(), received.path.clone());
            if method == Method::GET && path == sts_path {
                match &sts {
                    Some(body) => received.respond(StatusCode::OK, body),
                    None => received.not_found(),
                }
            } else if method == Method::GET && path == format!("{base}/pods") {
                received.respond(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}),
                );
            } else if method == Method::PATCH
                && path == sts_path
                && received.query.contains("force=true")
            {
                record.applied_replicas = received.body["spec"]["replicas"].as_i64();
                record.applied_revision =
                    received.body["spec"]["template"]["metadata"]["annotations"]
                        [REVISION_ANNOTATION]
                        .as_str()
                        .map(str::to_owned);
                record.applied_claim_size = received.body["spec"]["volumeClaimTemplates"][0]
                    ["spec"]["resources"]["requests"]["storage"]
                    .as_str()
                    .map(str::to_owned);
                received.echo();
            } else if method == Method::PATCH && path == sts_path {
                assert!(
                    received.query.contains("fieldManager=strom-operator"),
                    "{}",
                    received.query
                );
                let replicas = received.body["spec"]["replicas"]
                    .as_i64()
                    .expect("a scale patch sets spec.replicas");
                record.scaled_to.push(replicas);
                let mut body = sts.clone().expect("only an existing StatefulSet is scaled");
                body["spec"]["replicas"] = json!(replicas);
                received.respond(StatusCode::OK, &body);
            } else if method == Method::POST
                && path.starts_with(&format!("{base}/pods/"))
                && path.ends_with("/eviction")
            {
                let pod = path
                    .trim_start_matches(&format!("{base}/pods/"))
                    .trim_end_matches("/eviction")
                    .to_owned();
                assert_eq!(received.body["kind"], "Eviction", "{}", received.body);
                assert_eq!(received.body["metadata"]["name"], pod.as_str());
                let uid = received.body["deleteOptions"]["preconditions"]["uid"]
                    .as_str()
                    .map(str::to_owned);
                record.evictions.push((pod.clone(), uid.clone()));
                match answer {
                    Eviction::Granted => received.respond(
                        StatusCode::CREATED,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
                    ),
                    Eviction::Refused => received.respond(
                        StatusCode::TOO_MANY_REQUESTS,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": "Cannot evict pod as it would violate the pod's disruption budget.",
                                "reason": "TooManyRequests", "code": 429}),
                    ),
                    Eviction::Replaced => received.respond(
                        StatusCode::CONFLICT,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": format!("Precondition failed: UID in precondition: {}, UID in object meta: uid-new", uid.clone().unwrap_or_default()),
                                "reason": "Conflict", "code": 409}),
                    ),
                    Eviction::Gone => received.respond(
                        StatusCode::NOT_FOUND,
                        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                "message": format!("pods \"{pod}\" not found"),
                                "reason": "NotFound", "code": 404}),
                    ),
                }
            } else if method == Method::GET && path == format!("{base}/persistentvolumeclaims") {
                received.respond(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "PersistentVolumeClaimList", "metadata": {}, "items": claims}),
                );
            } else if method == Method::PATCH
                && path.starts_with(&format!("{base}/persistentvolumeclaims/"))
            {
                let name = path.rsplit('/').next().expect("claim name").to_owned();
                let size = received.body["spec"]["resources"]["requests"]["storage"]
                    .as_str()
                    .expect("the patch sets requests.storage")
                    .to_owned();
                record.claims_grown.push((name.clone(), size.clone()));
                received.respond(StatusCode::OK, &claim_json(&name, &size));
            } else if method == Method::POST
                && path == format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events")
            {
                let reason = received.body["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let note = received.body["note"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                record.events.push((reason, note));
                received.echo();
            } else if method == Method::PATCH && path == status_path {
                record.status = received.body["status"].clone();
                received.echo_status_onto(cluster_value.clone());
                break;
            } else if method == Method::PATCH && received.query.contains("force=true") {
                // ConfigMap, Services, PodDisruptionBudget.
                received.echo();
            } else {
                panic!("a Cluster pass makes no {method} {path}");
            }
        }
        sender.send(record).expect("test waits for the pass");
    };
    run_scenario(reconcile(Arc::new(cluster.clone()), ctx), verify)
        .await
        .expect("reconcile succeeds");
    receiver.await.expect("pass recorded")
}

/// `cluster` with the status a pass wrote, as the next pass (or a restarted operator) reads it.
fn after(cluster: &Cluster, pass: &Pass) -> Cluster {
    let mut next = cluster.clone();
    next.status = Some(serde_json::from_value(pass.status.clone()).expect("status reads back"));
    next
}

/// A fake admin for brokers `registered` of `demo`, controller `controller`, with topic
/// `orders` (min.insync.replicas 2) on `assignments`.
fn cluster_admin(controller: i32, registered: &[i32], assignments: &[&[i32]]) -> FakeAdmin {
    let admin = FakeAdmin::default();
    let view = cluster_view("c1", Some(controller), registered);
    admin.set_cluster_view(&demo_bootstrap(), view.clone());
    for id in registered {
        admin.set_cluster_view(&demo_broker_address(*id), view.clone());
    }
    admin.with_replicas(|r| r.add_topic("orders", 2, assignments));
    admin
}

/// Replaces the fake cluster's partitions with `orders` on `assignments`, all in sync.
fn reset_topic(admin: &FakeAdmin, assignments: &[&[i32]]) {
    admin.with_replicas(|r| {
        *r = FakeReplicas::default();
        r.add_topic("orders", 2, assignments);
    });
}

const RF3: &[&[i32]] = &[&[0, 1, 2], &[1, 2, 0], &[2, 0, 1]];

/// The StatefulSet recreates an evicted pod from the current template.
fn recreate(world: &mut World, id: i32, revision: &str) {
    let pod = world
        .pods
        .iter_mut()
        .find(|p| p.id == id)
        .expect("the pod exists");
    pod.revision = revision.to_owned();
    pod.generation += 1;
    pod.ready = true;
    pod.crash_looping = false;
}

fn three_pods(revision: &str) -> Vec<PodSpec> {
    (0..3).map(|id| PodSpec::new(id, revision)).collect()
}

#[tokio::test]
async fn old_revision_pods_are_evicted_one_at_a_time_each_after_the_last_caught_up() {
    let cluster = minimal_cluster();
    let revision = desired(&cluster).revision;
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let mut world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods("rev-old"),
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };

    let first = pass(&cluster, &world, &admin).await;
    assert_eq!(first.applied_revision.as_deref(), Some(revision.as_str()));
    assert_eq!(first.applied_replicas, Some(3));
    // Exactly one pod, not the active controller (broker 0), with the uid it was observed with.
    assert_eq!(
        first.evictions,
        [("demo-broker-1".to_owned(), Some("uid-1-0".to_owned()))]
    );
    assert!(
        first
            .event("PodEvicted")
            .is_some_and(|note| note.contains("demo-broker-1") && note.contains(&revision)),
        "{:?}",
        first.events
    );
    assert_eq!(first.operation()["kind"], "RollingUpgrade");
    assert_eq!(first.operation()["broker"], 1);

    // Broker 1 is back on the new revision and ready, but not in sync yet: nothing is evicted.
    let cluster = after(&cluster, &first);
    recreate(&mut world, 1, &revision);
    admin.with_replicas(|r| r.out_of_sync(1));
    let waiting = pass(&cluster, &world, &admin).await;
    assert!(waiting.evictions.is_empty(), "{:?}", waiting.evictions);
    assert_eq!(waiting.operation()["broker"], 1);
    assert!(waiting.event("PodEvicted").is_none());

    // An operator restarted now reads the same status and still waits.
    let cluster = after(&cluster, &waiting);
    let again = pass(&cluster, &world, &admin).await;
    assert!(again.evictions.is_empty(), "{:?}", again.evictions);

    // Broker 1 caught up: the next broker goes, still not the controller.
    let cluster = after(&cluster, &again);
    reset_topic(&admin, RF3);
    let second = pass(&cluster, &world, &admin).await;
    assert_eq!(
        second.evictions,
        [("demo-broker-2".to_owned(), Some("uid-2-0".to_owned()))]
    );
    assert_eq!(second.operation()["done"], json!([1]));
}

#[tokio::test]
async fn a_crash_looping_pod_is_evicted_first() {
    let cluster = minimal_cluster();
    let admin = cluster_admin(0, &[0, 1], &[&[0, 1, 2], &[1, 0, 2], &[0, 1, 2]]);
    admin.with_replicas(|r| r.out_of_sync(2));
    let mut pods = three_pods("rev-old");
    pods[2].ready = false;
    pods[2].crash_looping = true;
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods,
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };
    let first = pass(&cluster, &world, &admin).await;
    assert_eq!(
        first.evictions,
        [("demo-broker-2".to_owned(), Some("uid-2-0".to_owned()))]
    );
}

#[tokio::test]
async fn a_refused_eviction_is_retried_later_and_not_counted_as_a_restart() {
    let cluster = minimal_cluster();
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods("rev-old"),
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Refused,
    };
    let refused = pass(&cluster, &world, &admin).await;
    assert_eq!(refused.evictions.len(), 1);
    assert!(
        refused.event("EvictionRefused").is_some(),
        "{:?}",
        refused.events
    );
    assert_eq!(refused.operation()["attempts"], 0);
    assert_ne!(refused.operation()["step"], "Restarting");
    assert!(
        refused.operation()["message"]
            .as_str()
            .is_some_and(|m| m.contains("PodDisruptionBudget")),
        "{}",
        refused.operation()
    );
    // The next pass tries the same broker again.
    let again = pass(&after(&cluster, &refused), &world, &admin).await;
    assert_eq!(
        again.evictions.first().map(|e| e.0.as_str()),
        Some("demo-broker-1")
    );
}

#[tokio::test]
async fn a_pod_replaced_since_it_was_observed_is_not_evicted_again() {
    for answer in [Eviction::Replaced, Eviction::Gone] {
        let cluster = minimal_cluster();
        let admin = cluster_admin(0, &[0, 1, 2], RF3);
        let world = World {
            stateful_set: Some((3, "10Gi".to_owned())),
            pods: three_pods("rev-old"),
            claims: BTreeMap::new(),
            resize_pending: Vec::new(),
            evictions: answer,
        };
        let replaced = pass(&cluster, &world, &admin).await;
        assert_eq!(
            replaced.evictions,
            [("demo-broker-1".to_owned(), Some("uid-1-0".to_owned()))],
            "{answer:?}"
        );
        for not_published in ["EvictionRefused", "StepFailed", "PodEvicted"] {
            assert!(
                replaced.event(not_published).is_none(),
                "{answer:?}: {:?}",
                replaced.events
            );
        }
        assert!(
            replaced
                .event("PodAlreadyReplaced")
                .is_some_and(|note| note.contains("demo-broker-1") && note.contains("not evicted")),
            "{answer:?}: {:?}",
            replaced.events
        );
        assert_eq!(replaced.operation()["broker"], 1);
        assert_eq!(replaced.operation()["step"], "Restarting");
    }
}

#[tokio::test]
async fn scale_down_keeps_four_replicas_until_broker_3_is_empty_then_lowers_to_three() {
    let cluster = minimal_cluster();
    let revision = desired(&cluster).revision;
    let with_broker_3: &[&[i32]] = &[&[0, 1, 3], &[1, 3, 2], &[3, 2, 0], &[2, 0, 1]];
    let admin = cluster_admin(0, &[0, 1, 2, 3], with_broker_3);
    let world = World {
        stateful_set: Some((4, "10Gi".to_owned())),
        pods: (0..4).map(|id| PodSpec::new(id, &revision)).collect(),
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };

    // While broker 3 holds replicas, the StatefulSet stays at 4 and the replicas move.
    let mut cluster_now = cluster.clone();
    let mut moved = Vec::new();
    for _ in 0..3 {
        let drain = pass(&cluster_now, &world, &admin).await;
        assert_eq!(
            drain.applied_replicas,
            Some(4),
            "the apply keeps the running count"
        );
        assert!(drain.scaled_to.is_empty(), "{:?}", drain.scaled_to);
        assert!(drain.evictions.is_empty());
        assert_eq!(drain.operation()["kind"], "ScaleDown");
        moved.extend(admin.day2_calls().into_iter().filter_map(|c| match c {
            AdminCall::Reassign(moves) => Some(moves),
            _ => None,
        }));
        cluster_now = after(&cluster_now, &drain);
    }
    let targets: Vec<&Vec<i32>> = moved
        .iter()
        .flat_map(|m| m.values())
        .map(|target| target.as_ref().expect("moves, not cancels"))
        .collect();
    assert!(
        !targets.is_empty(),
        "the drain moves the replicas off broker 3"
    );
    assert!(
        targets.iter().all(|t| !t.contains(&3) && t.len() == 3),
        "{targets:?}"
    );

    // The fake cluster reports broker 3 empty: then, and only then, 3 replicas and an Event.
    reset_topic(&admin, RF3);
    let mut lowered = None;
    for _ in 0..3 {
        let step = pass(&cluster_now, &world, &admin).await;
        cluster_now = after(&cluster_now, &step);
        if !step.scaled_to.is_empty() {
            lowered = Some(step);
            break;
        }
        assert_eq!(step.applied_replicas, Some(4));
    }
    let lowered = lowered.expect("the StatefulSet is lowered once broker 3 is empty");
    assert_eq!(lowered.scaled_to, [3]);
    let note = lowered
        .event("ReplicasLowered")
        .expect("an Event says the replicas were lowered");
    assert!(note.contains("from 4 to 3") && note.contains('3'), "{note}");
}

#[tokio::test]
async fn scale_down_below_a_topic_replication_factor_is_refused_with_a_condition() {
    let mut cluster = minimal_cluster();
    cluster.spec.replicas = 2;
    cluster.spec.controller.voters = 1;
    let revision = desired(&cluster).revision;
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods(&revision),
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };
    let refused = pass(&cluster, &world, &admin).await;
    assert!(refused.scaled_to.is_empty());
    assert_eq!(refused.applied_replicas, Some(3));
    let condition = refused
        .condition("ScaleDownRefused")
        .expect("a ScaleDownRefused condition");
    assert_eq!(condition["status"], "True");
    assert!(
        refused.event("ScaleDownRefused").is_some(),
        "{:?}",
        refused.events
    );
    assert!(
        admin
            .day2_calls()
            .iter()
            .all(|c| !matches!(c, AdminCall::Reassign(_))),
        "nothing moves"
    );
}

#[tokio::test]
async fn raising_the_storage_size_grows_each_smaller_claim() {
    let mut cluster = minimal_cluster();
    cluster.spec.storage.size = "20Gi".to_owned();
    let revision = desired(&cluster).revision;
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods(&revision),
        claims: BTreeMap::from([
            ("data-demo-broker-0".to_owned(), "10Gi".to_owned()),
            ("data-demo-broker-1".to_owned(), "50Gi".to_owned()),
            ("data-demo-broker-2".to_owned(), "10Gi".to_owned()),
        ]),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };
    let grown = pass(&cluster, &world, &admin).await;
    assert_eq!(
        grown.claims_grown,
        [
            ("data-demo-broker-0".to_owned(), "20Gi".to_owned()),
            ("data-demo-broker-2".to_owned(), "20Gi".to_owned()),
        ],
        "the 50Gi claim someone resized is left alone"
    );
    assert!(
        grown
            .event("VolumesExpanded")
            .is_some_and(|n| n.contains("data-demo-broker-0")),
        "{:?}",
        grown.events
    );
    // The StatefulSet's claim template cannot change: it keeps the size it was made with.
    assert_eq!(grown.applied_claim_size.as_deref(), Some("10Gi"));
    assert_eq!(grown.applied_replicas, Some(3));
}

#[tokio::test]
async fn a_claim_whose_filesystem_resize_waits_for_a_restart_gets_its_broker_restarted_once() {
    let mut cluster = minimal_cluster();
    cluster.spec.storage.size = "20Gi".to_owned();
    let revision = desired(&cluster).revision;
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let claims: BTreeMap<String, String> = (0..3)
        .map(|id| (format!("data-demo-broker-{id}"), "20Gi".to_owned()))
        .collect();
    let mut world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods(&revision),
        claims,
        resize_pending: vec!["data-demo-broker-2".to_owned()],
        evictions: Eviction::Granted,
    };

    // Every broker runs the desired revision; only broker 2's claim waits for a restart.
    let first = pass(&cluster, &world, &admin).await;
    assert_eq!(
        first.evictions,
        [("demo-broker-2".to_owned(), Some("uid-2-0".to_owned()))]
    );
    assert!(first.claims_grown.is_empty(), "{:?}", first.claims_grown);
    assert!(
        first.event("PodEvicted").is_some_and(
            |note| note.contains("demo-broker-2") && note.contains("filesystem resize")
        ),
        "{:?}",
        first.events
    );
    assert_eq!(first.operation()["kind"], "RollingUpgrade");
    let progressing = first
        .condition("Progressing")
        .expect("a Progressing condition");
    assert_eq!(progressing["status"], "True");
    assert!(
        progressing["message"]
            .as_str()
            .is_some_and(|m| m.contains("broker 2") && m.contains("FileSystemResizePending")),
        "{progressing}"
    );

    // The pod is being recreated and the condition is still there: nothing else is evicted.
    let cluster = after(&cluster, &first);
    world.pods[2].ready = false;
    world.pods[2].generation += 1;
    let starting = pass(&cluster, &world, &admin).await;
    assert!(starting.evictions.is_empty(), "{:?}", starting.evictions);

    // The pod runs again and its filesystem grew: the condition is gone, nothing more happens.
    let mut cluster = after(&cluster, &starting);
    recreate(&mut world, 2, &revision);
    world.resize_pending.clear();
    for _ in 0..3 {
        let settled = pass(&cluster, &world, &admin).await;
        assert!(settled.evictions.is_empty(), "{:?}", settled.evictions);
        assert!(settled.event("PodEvicted").is_none());
        cluster = after(&cluster, &settled);
    }
    assert!(
        cluster
            .status
            .as_ref()
            .is_some_and(|s| s.operation.is_none()),
        "{:?}",
        cluster.status.as_ref().map(|s| &s.operation)
    );
}

#[tokio::test]
async fn a_new_default_broker_image_of_the_operator_rolls_the_brokers() {
    let cluster = minimal_cluster();
    // The pods were started by an operator whose `--broker-image` was 0.0.9; this one's is 0.1.0.
    let before = super::builders::desired(
        &cluster,
        &BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.0.9"),
    )
    .revision;
    assert_ne!(before, desired(&cluster).revision);
    let admin = cluster_admin(0, &[0, 1, 2], RF3);
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods: three_pods(&before),
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Granted,
    };
    let first = pass(&cluster, &world, &admin).await;
    assert_eq!(
        first.evictions,
        [("demo-broker-1".to_owned(), Some("uid-1-0".to_owned()))]
    );
    assert_eq!(
        first.applied_revision.as_deref(),
        Some(desired(&cluster).revision.as_str())
    );
}

/// `cluster` with its status' operation started `seconds_ago` before the test clock's now.
fn step_started(mut cluster: Cluster, seconds_ago: i64) -> Cluster {
    let at = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(
            crate::fixtures::test_now().as_second() - seconds_ago,
        )
        .expect("valid timestamp"),
    );
    if let Some(op) = cluster.status.as_mut().and_then(|s| s.operation.as_mut()) {
        op.step_started_at = Some(at);
    }
    cluster
}

#[tokio::test]
async fn a_restart_again_the_budget_keeps_refusing_ends_degraded_naming_the_broker() {
    let mut cluster = minimal_cluster();
    cluster.spec.operations.max_restart_attempts = 2;
    let revision = desired(&cluster).revision;
    // Broker 1 was restarted onto the revision once and keeps crashing; the others are done.
    let admin = cluster_admin(0, &[0, 2], RF3);
    admin.with_replicas(|r| r.out_of_sync(1));
    let mut pods = three_pods(&revision);
    pods[1].ready = false;
    pods[1].crash_looping = true;
    let world = World {
        stateful_set: Some((3, "10Gi".to_owned())),
        pods,
        claims: BTreeMap::new(),
        resize_pending: Vec::new(),
        evictions: Eviction::Refused,
    };
    cluster.status = Some(strom_crds::ClusterStatus {
        operation: Some(strom_crds::cluster::OperationStatus {
            kind: strom_crds::cluster::OperationKind::RollingUpgrade,
            started_at: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                crate::fixtures::test_now(),
            ),
            completed_steps: 2,
            total_steps: 3,
            message: None,
            broker: Some(1),
            step: Some("Restarting".to_owned()),
            step_started_at: None,
            attempts: 1,
            done: vec![0, 2],
            revision: Some(revision.clone()),
        }),
        ..strom_crds::ClusterStatus::default()
    });
    let cluster = step_started(cluster, RESTART_TIMEOUT_SECONDS + 60);

    // The restart again is refused: not counted, the roll waits blocked at broker 1.
    let refused = pass(&cluster, &world, &admin).await;
    assert_eq!(
        refused
            .evictions
            .iter()
            .map(|e| e.0.as_str())
            .collect::<Vec<_>>(),
        ["demo-broker-1"]
    );
    assert!(
        refused.event("EvictionRefused").is_some(),
        "{:?}",
        refused.events
    );
    assert_eq!(refused.operation()["step"], "Blocked");
    assert_eq!(refused.operation()["broker"], 1);
    assert_eq!(refused.operation()["attempts"], 1);
    assert!(
        refused
            .condition("Degraded")
            .is_none_or(|c| c["reason"] != "RestartsExhausted"),
        "{:?}",
        refused.condition("Degraded")
    );

    // Still refused a whole restart deadline later: the attempts are used up and the Cluster
    // says which broker, without evicting anything more.
    let later = step_started(after(&cluster, &refused), RESTART_TIMEOUT_SECONDS);
    let reported = pass(&later, &world, &admin).await;
    assert!(reported.evictions.is_empty(), "{:?}", reported.evictions);
    let degraded = reported
        .condition("Degraded")
        .expect("a Degraded condition");
    assert_eq!(degraded["status"], "True");
    assert_eq!(degraded["reason"], "RestartsExhausted");
    assert!(
        degraded["message"]
            .as_str()
            .is_some_and(|m| m.contains("broker 1")),
        "{degraded}"
    );
    assert!(
        reported
            .event("RestartsExhausted")
            .is_some_and(|note| note.contains("broker 1")),
        "{:?}",
        reported.events
    );
}
