//! Test fixtures: example Clusters and Topics, a fake [`BrokerAdmin`], and a mock API server
//! (`tower_test::mock::pair`) whose [`ApiServerVerifier`] checks each request the reconcilers
//! make, in order: method, path, field manager and body.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::ObjectMeta;
use kube::client::Body;
use serde_json::{Value, json};
use strom_admin::{
    AdminError, AlteredConfigs, BrokerAdmin, ClusterAdmin, ClusterDescription, ConfigAdmin,
    ConfigChanges, ConfigResource, DescribedBroker, DescribedConfigs, ElectionType, KafkaError,
    LogDir, LogDirReplica, ObservedTopic, OngoingReassignment, PartitionResults, PartitionState,
    ReplicaAdmin, ResponseError, TopicPartition,
};
use strom_crds::cluster::{
    ControllerSpec, ImageSpec, ListenersSpec, MetricsSpec, OperationsSpec, PodTemplateOverrides,
    PullPolicy, RackSpec, StorageSpec,
};
use strom_crds::topic::{ClusterRef, DeletionPolicy, TOPIC_FINALIZER};
use strom_crds::{Cluster, ClusterSpec, Topic, TopicSpec};
use tower_test::mock::{Handle, SendResponse};

use crate::clock::FixedClock;
use crate::cluster::builders::BuildDefaults;
use crate::context::{AdminFactory, Context};
use crate::metrics::Metrics;

pub(crate) const NAMESPACE: &str = "kafka";

fn meta(name: &str, uid: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(NAMESPACE.to_owned()),
        uid: Some(uid.to_owned()),
        generation: Some(1),
        ..ObjectMeta::default()
    }
}

/// Three brokers, 10Gi each, everything else defaulted.
pub(crate) fn minimal_cluster() -> Cluster {
    let mut cluster = Cluster::new(
        "demo",
        ClusterSpec {
            replicas: 3,
            image: None,
            version: None,
            controller: ControllerSpec::default(),
            storage: StorageSpec {
                size: "10Gi".to_owned(),
                storage_class_name: None,
                delete_claim: false,
            },
            resources: None,
            config: BTreeMap::new(),
            listeners: ListenersSpec::default(),
            rack: None,
            template: None,
            metrics: MetricsSpec::default(),
            paused: false,
            operations: OperationsSpec::default(),
        },
    );
    cluster.metadata = meta("demo", "7b0f0a6e-3c1d-4c55-9a40-1f1d6f0a0001");
    cluster
}

/// Five brokers with every option set.
pub(crate) fn production_cluster() -> Cluster {
    let mut cluster = minimal_cluster();
    cluster.metadata = meta("prod", "7b0f0a6e-3c1d-4c55-9a40-1f1d6f0a0002");
    cluster.spec = ClusterSpec {
        replicas: 5,
        image: Some(ImageSpec {
            repository: Some("registry.example.org/strom/broker".to_owned()),
            tag: None,
            pull_policy: Some(PullPolicy::IfNotPresent),
        }),
        version: Some("0.1.0".to_owned()),
        controller: ControllerSpec { voters: 5 },
        storage: StorageSpec {
            size: "500Gi".to_owned(),
            storage_class_name: Some("fast-ssd".to_owned()),
            delete_claim: true,
        },
        resources: Some(ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("2".to_owned())),
                ("memory".to_owned(), Quantity("8Gi".to_owned())),
            ])),
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("8Gi".to_owned()),
            )])),
            ..ResourceRequirements::default()
        }),
        config: BTreeMap::from([
            ("auto.create.topics.enable".to_owned(), "false".to_owned()),
            ("min.insync.replicas".to_owned(), "2".to_owned()),
            ("default.replication.factor".to_owned(), "3".to_owned()),
        ]),
        listeners: ListenersSpec::default(),
        rack: Some(RackSpec {
            topology_key: "topology.kubernetes.io/zone".to_owned(),
        }),
        template: Some(PodTemplateOverrides {
            labels: BTreeMap::from([("team".to_owned(), "streaming".to_owned())]),
            annotations: BTreeMap::from([("example.org/owner".to_owned(), "streaming".to_owned())]),
            node_selector: BTreeMap::from([("node-pool".to_owned(), "kafka".to_owned())]),
            tolerations: vec![Toleration {
                key: Some("dedicated".to_owned()),
                operator: Some("Equal".to_owned()),
                value: Some("kafka".to_owned()),
                effect: Some("NoSchedule".to_owned()),
                ..Toleration::default()
            }],
            affinity: None,
            priority_class_name: Some("streaming-critical".to_owned()),
        }),
        metrics: MetricsSpec {
            enabled: true,
            service_monitor: true,
        },
        paused: false,
        operations: OperationsSpec::default(),
    };
    cluster
}

/// Topic `orders` on Cluster `demo`, 6 partitions, finalizer already in place.
pub(crate) fn topic() -> Topic {
    let mut topic = Topic::new(
        "orders",
        TopicSpec {
            cluster_ref: ClusterRef {
                name: "demo".to_owned(),
            },
            topic_name: None,
            partitions: 6,
            replication_factor: Some(3),
            config: BTreeMap::from([("retention.ms".to_owned(), "86400000".to_owned())]),
            deletion_policy: DeletionPolicy::Delete,
            managed: true,
        },
    );
    topic.metadata = meta("orders", "7b0f0a6e-3c1d-4c55-9a40-1f1d6f0a0003");
    topic.metadata.finalizers = Some(vec![TOPIC_FINALIZER.to_owned()]);
    topic
}

/// A call the fake admin received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AdminCall {
    Connect(String),
    Describe(String),
    Create {
        name: String,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    },
    CreatePartitions {
        name: String,
        total: i32,
    },
    AlterConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: BTreeSet<String>,
    },
    Delete(String),
    /// DescribeCluster on the broker at this address.
    DescribeCluster(String),
    /// AlterPartitionReassignments: per partition its target, `None` to cancel.
    Reassign(BTreeMap<TopicPartition, Option<Vec<i32>>>),
    /// ElectLeaders (preferred) of these partitions (`None`: all).
    ElectPreferred(Option<Vec<TopicPartition>>),
    /// IncrementalAlterConfigs.
    AlterResourceConfigs(BTreeMap<ConfigResource, ConfigChanges>),
}

/// The partitions and log directories the fake cluster reports to day-2 observations.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeReplicas {
    /// Per topic, its partitions (Metadata).
    pub(crate) partitions: BTreeMap<String, Vec<PartitionState>>,
    /// Reassignments in progress.
    pub(crate) reassignments: BTreeMap<TopicPartition, OngoingReassignment>,
    /// Per broker, the replicas in its one log directory (none for a broker not here).
    pub(crate) log_dirs: BTreeMap<i32, Vec<TopicPartition>>,
    /// Brokers that do not answer DescribeLogDirs.
    pub(crate) silent: BTreeSet<i32>,
    /// Per resource, its configs as DescribeConfigs reports them.
    pub(crate) configs: BTreeMap<ConfigResource, BTreeMap<String, String>>,
    /// Bytes each replica of a partition holds on disk (1024 when not here).
    pub(crate) sizes: BTreeMap<TopicPartition, i64>,
    /// Partitions whose reassignment and election the cluster refuses, with the error.
    pub(crate) partition_errors: BTreeMap<TopicPartition, ResponseError>,
}

impl FakeReplicas {
    /// Topic `name` with one partition per entry of `assignments` (replicas, preferred leader
    /// first; all in sync, led by the first), `min.insync.replicas` of `min_isr`, and every
    /// replica on its broker's log directory.
    pub(crate) fn add_topic(&mut self, name: &str, min_isr: i32, assignments: &[&[i32]]) {
        let states = assignments
            .iter()
            .enumerate()
            .map(|(index, replicas)| PartitionState {
                partition: i32::try_from(index).expect("few partitions"),
                leader: replicas.first().copied(),
                leader_epoch: Some(0),
                replicas: replicas.to_vec(),
                isr: replicas.to_vec(),
                offline_replicas: Vec::new(),
                error: None,
            })
            .collect::<Vec<_>>();
        for state in &states {
            for broker in &state.replicas {
                self.log_dirs
                    .entry(*broker)
                    .or_default()
                    .push(TopicPartition::new(name, state.partition));
            }
        }
        self.partitions.insert(name.to_owned(), states);
        self.configs.insert(
            ConfigResource::Topic(name.to_owned()),
            BTreeMap::from([("min.insync.replicas".to_owned(), min_isr.to_string())]),
        );
    }

    /// Drops `broker` from the ISR of every partition it hosts (it has not caught up).
    pub(crate) fn out_of_sync(&mut self, broker: i32) {
        for state in self.partitions.values_mut().flatten() {
            state.isr.retain(|id| *id != broker);
            if state.leader == Some(broker) {
                state.leader = state.isr.first().copied();
            }
        }
    }
}

/// A Kafka cluster in memory that records every call.
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeAdmin {
    pub(crate) topics: Arc<Mutex<BTreeMap<String, ObservedTopic>>>,
    pub(crate) calls: Arc<Mutex<Vec<AdminCall>>>,
    /// When true, `connect` fails as an unreachable cluster does.
    pub(crate) unreachable: bool,
    /// When true, CreateTopics fails with `INVALID_CONFIG` as Kafka does for an unknown key.
    pub(crate) reject_configs: bool,
    /// What the broker at each address answers to DescribeCluster; an address not here does
    /// not answer.
    pub(crate) cluster_views: Arc<Mutex<BTreeMap<String, ClusterDescription>>>,
    /// The address `connect` was given, on the client it returned.
    pub(crate) connected: Option<String>,
    /// Partitions, reassignments, log directories and configs.
    pub(crate) replicas: Arc<Mutex<FakeReplicas>>,
}

impl FakeAdmin {
    pub(crate) fn with_topic(topic: ObservedTopic) -> Self {
        let admin = Self::default();
        admin
            .topics
            .lock()
            .expect("fake admin lock")
            .insert(topic.name.clone(), topic);
        admin
    }

    /// Makes the broker at `address` answer DescribeCluster with `view`.
    pub(crate) fn set_cluster_view(&self, address: &str, view: ClusterDescription) {
        self.cluster_views
            .lock()
            .expect("fake admin lock")
            .insert(address.to_owned(), view);
    }

    pub(crate) fn calls(&self) -> Vec<AdminCall> {
        self.calls.lock().expect("fake admin lock").clone()
    }

    /// Changes what the fake cluster reports to day-2 observations.
    pub(crate) fn with_replicas(&self, change: impl FnOnce(&mut FakeReplicas)) {
        change(&mut self.replicas.lock().expect("fake admin lock"));
    }

    /// The reassignments, elections and config changes asked for, in order.
    pub(crate) fn day2_calls(&self) -> Vec<AdminCall> {
        self.calls()
            .into_iter()
            .filter(|c| {
                matches!(
                    c,
                    AdminCall::Reassign(_)
                        | AdminCall::ElectPreferred(_)
                        | AdminCall::AlterResourceConfigs(_)
                )
            })
            .collect()
    }

    fn record(&self, call: AdminCall) {
        self.calls.lock().expect("fake admin lock").push(call);
    }

    /// The client `connect(address)` returns, for tests that call the admin API directly.
    pub(crate) fn connected_to(&self, address: &str) -> Self {
        Self {
            connected: Some(address.to_owned()),
            ..self.clone()
        }
    }

    /// Per partition asked for, its refusal from [`FakeReplicas::partition_errors`] or success.
    fn results<'a>(&self, asked: impl Iterator<Item = &'a TopicPartition>) -> PartitionResults {
        let replicas = self.replicas.lock().expect("fake admin lock");
        asked
            .map(|tp| {
                let result = match replicas.partition_errors.get(tp) {
                    Some(e) => Err(KafkaError::new(e.code(), None)),
                    None => Ok(()),
                };
                (tp.clone(), result)
            })
            .collect()
    }
}

impl AdminFactory for FakeAdmin {
    type Admin = FakeAdmin;

    async fn connect(&self, bootstrap: &str) -> Result<FakeAdmin, AdminError> {
        self.record(AdminCall::Connect(bootstrap.to_owned()));
        if self.unreachable {
            return Err(AdminError::Unreachable {
                bootstrap: bootstrap.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ),
            });
        }
        Ok(Self {
            connected: Some(bootstrap.to_owned()),
            ..self.clone()
        })
    }
}

impl ClusterAdmin for FakeAdmin {
    async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        let address = self.connected.clone().unwrap_or_default();
        self.record(AdminCall::DescribeCluster(address.clone()));
        let views = self.cluster_views.lock().expect("fake admin lock");
        address
            .split(',')
            .find_map(|a| views.get(a))
            .cloned()
            .ok_or_else(|| AdminError::Timeout {
                api: "DescribeCluster",
                after: Duration::from_secs(10),
            })
    }
}

/// The bootstrap address of the `demo` cluster, where the day-2 pass reaches its admin API.
pub(crate) fn demo_bootstrap() -> String {
    format!("demo-bootstrap.{NAMESPACE}.svc:9092")
}

/// Address of broker `id` of the `demo` cluster, as the operator asks it.
pub(crate) fn demo_broker_address(id: i32) -> String {
    format!("demo-broker-{id}.demo-brokers.{NAMESPACE}.svc:9092")
}

/// A DescribeCluster answer of cluster `cluster_id` with `controller` and these unfenced
/// brokers of `demo`, in rack `zone-<id>`.
pub(crate) fn cluster_view(
    cluster_id: &str,
    controller: Option<i32>,
    brokers: &[i32],
) -> ClusterDescription {
    ClusterDescription {
        cluster_id: cluster_id.to_owned(),
        controller_id: controller,
        brokers: brokers
            .iter()
            .map(|&id| DescribedBroker {
                node_id: id,
                host: format!("demo-broker-{id}.demo-brokers.{NAMESPACE}.svc"),
                port: 9092,
                rack: Some(format!("zone-{id}")),
                fenced: false,
            })
            .collect(),
    }
}

impl BrokerAdmin for FakeAdmin {
    async fn describe_topic(&self, name: &str) -> Result<Option<ObservedTopic>, AdminError> {
        self.record(AdminCall::Describe(name.to_owned()));
        Ok(self
            .topics
            .lock()
            .expect("fake admin lock")
            .get(name)
            .cloned())
    }

    async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<String, AdminError> {
        self.record(AdminCall::Create {
            name: name.to_owned(),
            partitions,
            replication_factor,
            configs: configs.clone(),
        });
        if self.reject_configs {
            return Err(AdminError::Kafka {
                api: "CreateTopics",
                code: 40,
                name: "INVALID_CONFIG",
                message: Some(format!(
                    "Unknown topic config name: {}",
                    configs.keys().next().cloned().unwrap_or_default()
                )),
            });
        }
        let topic_id = "q7XkR0bBQ9OZ7J6m9m1yFw".to_owned();
        self.topics.lock().expect("fake admin lock").insert(
            name.to_owned(),
            ObservedTopic {
                name: name.to_owned(),
                topic_id: topic_id.clone(),
                partitions,
                replication_factor: if replication_factor < 0 {
                    1
                } else {
                    replication_factor
                },
                configs: configs.clone(),
            },
        );
        Ok(topic_id)
    }

    async fn create_partitions(&self, name: &str, total: i32) -> Result<(), AdminError> {
        self.record(AdminCall::CreatePartitions {
            name: name.to_owned(),
            total,
        });
        if let Some(topic) = self.topics.lock().expect("fake admin lock").get_mut(name) {
            topic.partitions = total;
        }
        Ok(())
    }

    async fn alter_topic_configs(
        &self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &BTreeSet<String>,
    ) -> Result<(), AdminError> {
        self.record(AdminCall::AlterConfigs {
            name: name.to_owned(),
            set: set.clone(),
            delete: delete.clone(),
        });
        if let Some(topic) = self.topics.lock().expect("fake admin lock").get_mut(name) {
            for key in delete {
                topic.configs.remove(key);
            }
            topic.configs.extend(set.clone());
        }
        Ok(())
    }

    async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        self.record(AdminCall::Delete(name.to_owned()));
        self.topics.lock().expect("fake admin lock").remove(name);
        Ok(())
    }
}

impl ReplicaAdmin for FakeAdmin {
    async fn describe_topics_partitions(
        &self,
        topics: Option<&[&str]>,
    ) -> Result<BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>, AdminError> {
        let replicas = self.replicas.lock().expect("fake admin lock");
        Ok(replicas
            .partitions
            .iter()
            .filter(|(name, _)| topics.is_none_or(|t| t.contains(&name.as_str())))
            .map(|(name, states)| (name.clone(), Ok(states.clone())))
            .collect())
    }

    async fn describe_log_dirs(
        &self,
        broker_id: i32,
        _partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<LogDir>, AdminError> {
        let replicas = self.replicas.lock().expect("fake admin lock");
        if replicas.silent.contains(&broker_id) {
            return Err(AdminError::Timeout {
                api: "DescribeLogDirs",
                after: Duration::from_secs(10),
            });
        }
        let held = replicas
            .log_dirs
            .get(&broker_id)
            .map_or(&[][..], Vec::as_slice);
        Ok(vec![LogDir {
            path: "/var/lib/strom".to_owned(),
            error: None,
            total_bytes: None,
            usable_bytes: None,
            replicas: held
                .iter()
                .map(|partition| LogDirReplica {
                    partition: partition.clone(),
                    size_bytes: replicas.sizes.get(partition).copied().unwrap_or(1024),
                    offset_lag: 0,
                    is_future: false,
                })
                .collect(),
        }])
    }

    async fn alter_partition_reassignments(
        &self,
        reassignments: &BTreeMap<TopicPartition, Option<Vec<i32>>>,
    ) -> Result<PartitionResults, AdminError> {
        self.record(AdminCall::Reassign(reassignments.clone()));
        Ok(self.results(reassignments.keys()))
    }

    async fn list_partition_reassignments(
        &self,
        _partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, OngoingReassignment>, AdminError> {
        Ok(self
            .replicas
            .lock()
            .expect("fake admin lock")
            .reassignments
            .clone())
    }

    async fn elect_leaders(
        &self,
        _election: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<PartitionResults, AdminError> {
        self.record(AdminCall::ElectPreferred(partitions.map(<[_]>::to_vec)));
        Ok(self.results(partitions.unwrap_or_default().iter()))
    }
}

impl ConfigAdmin for FakeAdmin {
    async fn describe_effective_configs(
        &self,
        resources: &[ConfigResource],
        keys: Option<&[&str]>,
    ) -> Result<DescribedConfigs, AdminError> {
        let replicas = self.replicas.lock().expect("fake admin lock");
        Ok(resources
            .iter()
            .map(|resource| {
                let configs = replicas
                    .configs
                    .get(resource)
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(key, _)| keys.is_none_or(|k| k.contains(&key.as_str())))
                    .collect();
                (resource.clone(), Ok(configs))
            })
            .collect())
    }

    async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, ConfigChanges>,
    ) -> Result<AlteredConfigs, AdminError> {
        self.record(AdminCall::AlterResourceConfigs(changes.clone()));
        let mut replicas = self.replicas.lock().expect("fake admin lock");
        for (resource, change) in changes {
            let configs = replicas.configs.entry(resource.clone()).or_default();
            for key in &change.delete {
                configs.remove(key);
            }
            configs.extend(change.set.clone());
        }
        Ok(changes.keys().map(|r| (r.clone(), Ok(()))).collect())
    }
}

/// Time every test context runs at.
pub(crate) fn test_now() -> Timestamp {
    Timestamp::from_second(1_767_225_600).expect("valid timestamp")
}

/// A context on a mock API server, plus the verifier that answers it.
pub(crate) fn test_context<F>(admin: F) -> (Arc<Context<F>>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, NAMESPACE);
    let ctx = Context::new(
        client,
        Some("strom-operator-0".to_owned()),
        Arc::new(Metrics::new().expect("metrics register")),
        admin,
        BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0"),
        Arc::new(FixedClock::new(test_now())),
    );
    (Arc::new(ctx), ApiServerVerifier(handle))
}

/// Answers the requests of a reconcile pass, checking each one.
pub(crate) struct ApiServerVerifier(Handle<Request<Body>, Response<Body>>);

/// A request the verifier received.
pub(crate) struct Received {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) body: Value,
    send: SendResponse<Response<Body>>,
}

impl Received {
    /// Answers with `status` and `body`.
    pub(crate) fn respond(self, status: StatusCode, body: &Value) {
        let bytes = serde_json::to_vec(body).expect("response serializes");
        self.send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(bytes))
                .expect("response builds"),
        );
    }

    /// Answers 200 with the request body (what an apply or create returns).
    pub(crate) fn echo(self) {
        let body = self.body.clone();
        self.respond(StatusCode::OK, &body);
    }

    /// Answers 200 with `object` carrying the status of this status patch, as the API server
    /// returns the whole object from a status subresource patch.
    pub(crate) fn echo_status_onto(self, mut object: Value) {
        object["status"] = self.body["status"].clone();
        self.respond(StatusCode::OK, &object);
    }

    /// Answers 404 as the API server does for a missing object.
    pub(crate) fn not_found(self) {
        self.respond(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404}),
        );
    }
}

impl ApiServerVerifier {
    /// The next request, whatever it is; fails after 5 s without one.
    pub(crate) async fn next(&mut self) -> Received {
        let (request, send) = tokio::time::timeout(Duration::from_secs(5), self.0.next_request())
            .await
            .unwrap_or_else(|_| panic!("no request arrived"))
            .unwrap_or_else(|| panic!("client dropped"));
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body readable");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        Received {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().unwrap_or_default().to_owned(),
            body,
            send,
        }
    }

    /// The next request, which must have `method` and `path`; fails after 5 s without one.
    pub(crate) async fn expect(&mut self, method: Method, path: &str) -> Received {
        let received = self.next().await;
        assert_eq!(
            (&received.method, received.path.as_str()),
            (&method, path),
            "unexpected request; body: {}",
            received.body
        );
        received
    }

    /// The next request must be a server-side apply by `strom-operator` of `path`.
    pub(crate) async fn expect_apply(&mut self, path: &str) -> Received {
        let received = self.expect(Method::PATCH, path).await;
        assert!(
            received.query.contains("fieldManager=strom-operator"),
            "apply without our field manager: {}",
            received.query
        );
        assert!(
            received.query.contains("force=true"),
            "apply must force ownership: {}",
            received.query
        );
        received
    }

    /// The next request must create an Event with `reason`; answers it.
    pub(crate) async fn expect_event(&mut self, reason: &str) -> Value {
        let received = self
            .expect(
                Method::POST,
                &format!("/apis/events.k8s.io/v1/namespaces/{NAMESPACE}/events"),
            )
            .await;
        assert_eq!(received.body["reason"], reason, "event: {}", received.body);
        let body = received.body.clone();
        received.echo();
        body
    }
}

/// Runs `pass` against the mock API server while `verify` answers it; fails if either hangs.
pub(crate) async fn run_scenario<T, V>(pass: impl std::future::Future<Output = T>, verify: V) -> T
where
    V: std::future::Future<Output = ()> + Send + 'static,
{
    let verifier = tokio::spawn(verify);
    let result = tokio::time::timeout(Duration::from_secs(10), pass)
        .await
        .expect("reconcile finished within 10 s");
    tokio::time::timeout(Duration::from_secs(10), verifier)
        .await
        .expect("verifier finished")
        .expect("verifier assertions hold");
    result
}
