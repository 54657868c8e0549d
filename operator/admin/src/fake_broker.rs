//! An in-process fake broker for the unit tests: a TCP listener on 127.0.0.1:0 that decodes
//! request frames with `kafka-protocol` (its `broker` feature) and answers through a handler.
//! [`FakeKafka`] is a handler that keeps topics in memory like a tiny Kafka cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId,
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeLogDirsRequest, ElectLeadersRequest,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ListPartitionReassignmentsRequest, MetadataRequest, MetadataResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, Message, StrBytes, decode_request_header_from_buffer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

mod replicas;

pub(crate) use replicas::{FakeLogDir, FakePartition};

/// What the fake broker does with one request.
pub(crate) enum Reply {
    /// Write this response (header + body) in a size-prefixed frame.
    Frame(Bytes),
    /// Write these bytes as they are (for malformed frames).
    Raw(Bytes),
    /// Never answer; keep the connection open.
    Silent,
}

pub(crate) type Handler = Arc<dyn Fn(&RequestHeader, Bytes) -> Reply + Send + Sync>;

/// A bound listener not serving yet, so brokers can learn each other's addresses first.
pub(crate) struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub(crate) async fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener address");
        Self { listener, addr }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn serve(self, handler: Handler) -> FakeBroker {
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept task ends them all.
            let mut tasks = JoinSet::new();
            while let Ok((stream, _)) = self.listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                tasks.spawn(serve_connection(stream, Arc::clone(&handler)));
            }
        });
        FakeBroker {
            addr: self.addr,
            connections,
            task,
        }
    }
}

/// A running fake broker; stops when dropped.
pub(crate) struct FakeBroker {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FakeBroker {
    pub(crate) async fn start(handler: Handler) -> Self {
        Bound::new().await.serve(handler)
    }

    pub(crate) fn address(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections were accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for FakeBroker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(mut stream: TcpStream, handler: Handler) {
    loop {
        let Ok(size) = stream.read_i32().await else {
            return;
        };
        let Ok(len) = usize::try_from(size) else {
            return;
        };
        let mut frame = vec![0; len];
        if stream.read_exact(&mut frame).await.is_err() {
            return;
        }
        let mut frame = Bytes::from(frame);
        let Ok(header) = decode_request_header_from_buffer(&mut frame) else {
            return;
        };
        let written = match handler(&header, frame) {
            Reply::Frame(body) => {
                let mut out = BytesMut::with_capacity(body.len() + 4);
                out.put_i32(i32::try_from(body.len()).expect("small test frame"));
                out.put_slice(&body);
                stream.write_all(&out).await
            }
            Reply::Raw(bytes) => stream.write_all(&bytes).await,
            Reply::Silent => Ok(()),
        };
        if written.is_err() {
            return;
        }
    }
}

/// Encodes `body` as the response to `header`, with `correlation_id` in the response header.
pub(crate) fn respond_with_correlation<T: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &T,
) -> Reply {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, T::header_version(version))
        .expect("encode response header");
    body.encode(&mut buf, version).expect("encode response");
    Reply::Frame(buf.freeze())
}

/// Encodes `body` as the response to `header`.
pub(crate) fn respond<T: Encodable + HeaderVersion>(header: &RequestHeader, body: &T) -> Reply {
    respond_with_correlation(header.correlation_id, header.request_api_version, body)
}

/// Decodes a request body the client sent.
pub(crate) fn decode<T: Decodable>(header: &RequestHeader, mut body: Bytes) -> T {
    T::decode(&mut body, header.request_api_version).expect("client sent a decodable request")
}

/// An ApiVersions response listing `ranges`.
pub(crate) fn api_versions(ranges: &BTreeMap<i16, (i16, i16)>) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|(&key, &(min, max))| {
                ApiVersion::default()
                    .with_api_key(key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// Every API the admin client uses, at every version `kafka-protocol` implements.
pub(crate) fn all_versions() -> BTreeMap<i16, (i16, i16)> {
    fn range<M: Message>() -> (i16, i16) {
        (M::VERSIONS.min, M::VERSIONS.max)
    }
    BTreeMap::from([
        (ApiKey::ApiVersions as i16, range::<ApiVersionsRequest>()),
        (ApiKey::Metadata as i16, range::<MetadataRequest>()),
        (ApiKey::CreateTopics as i16, range::<CreateTopicsRequest>()),
        (ApiKey::DeleteTopics as i16, range::<DeleteTopicsRequest>()),
        (
            ApiKey::CreatePartitions as i16,
            range::<CreatePartitionsRequest>(),
        ),
        (
            ApiKey::DescribeConfigs as i16,
            range::<DescribeConfigsRequest>(),
        ),
        (
            ApiKey::IncrementalAlterConfigs as i16,
            range::<IncrementalAlterConfigsRequest>(),
        ),
        (
            ApiKey::DescribeCluster as i16,
            range::<DescribeClusterRequest>(),
        ),
        (
            ApiKey::DescribeLogDirs as i16,
            range::<DescribeLogDirsRequest>(),
        ),
        (
            ApiKey::AlterPartitionReassignments as i16,
            range::<AlterPartitionReassignmentsRequest>(),
        ),
        (
            ApiKey::ListPartitionReassignments as i16,
            range::<ListPartitionReassignmentsRequest>(),
        ),
        (ApiKey::ElectLeaders as i16, range::<ElectLeadersRequest>()),
    ])
}

/// A topic in [`FakeKafka`].
#[derive(Debug, Clone)]
pub(crate) struct FakeTopic {
    pub(crate) id: [u8; 16],
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i16,
    pub(crate) configs: BTreeMap<String, String>,
    /// Partitions whose state differs from [`FakeTopic::partition`]'s default.
    pub(crate) states: BTreeMap<i32, FakePartition>,
}

/// One request as a [`FakeKafka`] node received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received {
    pub(crate) node_id: i32,
    pub(crate) api_key: i16,
    pub(crate) version: i16,
}

/// Shared state of a fake cluster: topics, the brokers, the controller, and a log of requests.
pub(crate) struct FakeKafka {
    state: Mutex<State>,
}

struct State {
    versions: BTreeMap<i16, (i16, i16)>,
    /// Whether an UNSUPPORTED_VERSION ApiVersions answer lists the ApiVersions range (KIP-511).
    list_api_versions_on_error: bool,
    brokers: Vec<(i32, SocketAddr)>,
    controller_id: i32,
    cluster_id: String,
    racks: BTreeMap<i32, String>,
    fenced: BTreeSet<i32>,
    topics: BTreeMap<String, FakeTopic>,
    next_topic_id: u8,
    received: Vec<Received>,
    /// Per broker, its log directories.
    log_dirs: BTreeMap<i32, Vec<FakeLogDir>>,
    /// Reassignments in progress: (topic, partition) → (original replicas, target replicas).
    reassignments: BTreeMap<(String, i32), (Vec<i32>, Vec<i32>)>,
    /// Per broker, its dynamic configs (BROKER resources).
    broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
}

/// A broker-level default every topic reports unless it overrides it; the client must leave
/// it out of [`crate::ObservedTopic::configs`].
const DEFAULT_CONFIG: (&str, &str) = ("cleanup.policy", "delete");
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const INVALID_REQUEST: i16 = 42;
/// The cluster id a [`FakeKafka`] reports in DescribeCluster.
pub(crate) const FAKE_CLUSTER_ID: &str = "MkU3OEVBNTcwNTJENDM2Qg";

impl FakeKafka {
    pub(crate) fn new(brokers: Vec<(i32, SocketAddr)>, controller_id: i32) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                versions: all_versions(),
                list_api_versions_on_error: true,
                brokers,
                controller_id,
                cluster_id: FAKE_CLUSTER_ID.to_owned(),
                racks: BTreeMap::new(),
                fenced: BTreeSet::new(),
                topics: BTreeMap::new(),
                next_topic_id: 1,
                received: Vec::new(),
                log_dirs: BTreeMap::new(),
                reassignments: BTreeMap::new(),
                broker_configs: BTreeMap::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake cluster state")
    }

    pub(crate) fn set_versions(&self, key: ApiKey, min: i16, max: i16) {
        self.state().versions.insert(key as i16, (min, max));
    }

    pub(crate) fn set_list_api_versions_on_error(&self, list: bool) {
        self.state().list_api_versions_on_error = list;
    }

    /// Gives broker `node_id` a rack, reported in DescribeCluster.
    pub(crate) fn set_rack(&self, node_id: i32, rack: &str) {
        self.state().racks.insert(node_id, rack.to_owned());
    }

    /// Marks broker `node_id` fenced: DescribeCluster lists it as fenced (v2, when asked) or
    /// not at all.
    pub(crate) fn set_fenced(&self, node_id: i32) {
        self.state().fenced.insert(node_id);
    }

    /// Sets the controller id Metadata and DescribeCluster report (-1: none).
    pub(crate) fn set_controller(&self, controller_id: i32) {
        self.state().controller_id = controller_id;
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.state().received.clone()
    }

    pub(crate) fn topic(&self, name: &str) -> Option<FakeTopic> {
        self.state().topics.get(name).cloned()
    }

    /// Broker `node_id`'s dynamic configs.
    pub(crate) fn broker_configs(&self, node_id: i32) -> BTreeMap<String, String> {
        self.state()
            .broker_configs
            .get(&node_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The handler for broker `node_id` of this cluster.
    pub(crate) fn handler(self: &Arc<Self>, node_id: i32) -> Handler {
        let cluster = Arc::clone(self);
        Arc::new(move |header, body| cluster.handle(node_id, header, body))
    }

    fn handle(&self, node_id: i32, header: &RequestHeader, body: Bytes) -> Reply {
        let mut state = self.state();
        state.received.push(Received {
            node_id,
            api_key: header.request_api_key,
            version: header.request_api_version,
        });
        let Ok(key) = ApiKey::try_from(header.request_api_key) else {
            return Reply::Silent;
        };
        let not_controller = node_id != state.controller_id;
        match key {
            ApiKey::ApiVersions => state.api_versions(header),
            ApiKey::Metadata => respond(header, &state.metadata(header, decode(header, body))),
            ApiKey::CreateTopics => {
                let request: CreateTopicsRequest = decode(header, body);
                respond(header, &state.create_topics(request, not_controller))
            }
            ApiKey::CreatePartitions => {
                let request: CreatePartitionsRequest = decode(header, body);
                respond(header, &state.create_partitions(request, not_controller))
            }
            ApiKey::DeleteTopics => {
                let request: DeleteTopicsRequest = decode(header, body);
                let version = header.request_api_version;
                respond(
                    header,
                    &state.delete_topics(request, version, not_controller),
                )
            }
            ApiKey::DescribeConfigs => respond(
                header,
                &state.describe_configs(node_id, decode(header, body)),
            ),
            ApiKey::IncrementalAlterConfigs => {
                respond(header, &state.alter_configs(node_id, decode(header, body)))
            }
            ApiKey::DescribeCluster => {
                respond(header, &state.describe_cluster(decode(header, body)))
            }
            ApiKey::DescribeLogDirs => {
                let version = header.request_api_version;
                respond(
                    header,
                    &state.describe_log_dirs(node_id, decode(header, body), version),
                )
            }
            ApiKey::AlterPartitionReassignments => {
                let request = decode(header, body);
                respond(header, &state.alter_reassignments(request, not_controller))
            }
            ApiKey::ListPartitionReassignments => {
                let request = decode(header, body);
                respond(header, &state.list_reassignments(request, not_controller))
            }
            ApiKey::ElectLeaders => {
                let version = header.request_api_version;
                let request = decode(header, body);
                respond(
                    header,
                    &state.elect_leaders(request, version, not_controller),
                )
            }
            _ => Reply::Silent,
        }
    }
}

fn name_of(name: &TopicName) -> String {
    name.0.to_string()
}

fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

impl State {
    fn api_versions(&self, header: &RequestHeader) -> Reply {
        let (_, max) = self.versions[&(ApiKey::ApiVersions as i16)];
        if header.request_api_version > max {
            let listed = if self.list_api_versions_on_error {
                BTreeMap::from([(
                    ApiKey::ApiVersions as i16,
                    self.versions[&(ApiKey::ApiVersions as i16)],
                )])
            } else {
                BTreeMap::new()
            };
            let response = api_versions(&listed).with_error_code(35);
            // KIP-511: the error answer is always encoded as v0.
            return respond_with_correlation(header.correlation_id, 0, &response);
        }
        respond(header, &api_versions(&self.versions))
    }

    fn metadata(&self, header: &RequestHeader, request: MetadataRequest) -> MetadataResponse {
        let brokers = self
            .brokers
            .iter()
            .map(|(node_id, addr)| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(*node_id))
                    .with_host(str_bytes(&addr.ip().to_string()))
                    .with_port(i32::from(addr.port()))
            })
            .collect();
        assert!(
            header.request_api_version < 4 || !request.allow_auto_topic_creation,
            "the admin client must never ask for auto-creation"
        );
        // Null asks for every topic.
        let names: Vec<String> = match request.topics {
            Some(topics) => topics
                .into_iter()
                .filter_map(|t| t.name)
                .map(|name| name_of(&name))
                .collect(),
            None => self.topics.keys().cloned().collect(),
        };
        let topics = names
            .into_iter()
            .map(|name| {
                let Some(topic) = self.topics.get(&name) else {
                    return MetadataResponseTopic::default()
                        .with_name(Some(TopicName(str_bytes(&name))))
                        .with_error_code(3);
                };
                let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect();
                let partitions = (0..topic.partitions)
                    .rev() // the client must not rely on partition order
                    .map(|index| {
                        let state = topic.partition(index);
                        MetadataResponsePartition::default()
                            .with_error_code(state.error_code)
                            .with_partition_index(index)
                            .with_leader_id(BrokerId(state.leader.unwrap_or(-1)))
                            .with_leader_epoch(state.leader_epoch)
                            .with_replica_nodes(ids(&state.replicas))
                            .with_isr_nodes(ids(&state.isr))
                            .with_offline_replicas(ids(&state.offline))
                    })
                    .collect();
                let mut entry = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(str_bytes(&name))))
                    .with_partitions(partitions);
                if header.request_api_version >= 10 {
                    entry = entry.with_topic_id(uuid::Uuid::from_bytes(topic.id));
                }
                entry
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_controller_id(BrokerId(self.controller_id))
            .with_topics(topics)
    }

    fn describe_cluster(&self, request: DescribeClusterRequest) -> DescribeClusterResponse {
        let brokers = self
            .brokers
            .iter()
            .filter(|(node_id, _)| request.include_fenced_brokers || !self.fenced.contains(node_id))
            .map(|(node_id, addr)| {
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(*node_id))
                    .with_host(str_bytes(&addr.ip().to_string()))
                    .with_port(i32::from(addr.port()))
                    .with_rack(self.racks.get(node_id).map(|rack| str_bytes(rack)))
                    .with_is_fenced(self.fenced.contains(node_id))
            })
            .collect();
        DescribeClusterResponse::default()
            .with_cluster_id(str_bytes(&self.cluster_id))
            .with_controller_id(BrokerId(self.controller_id))
            .with_brokers(brokers)
    }

    fn create_topics(
        &mut self,
        request: CreateTopicsRequest,
        not_controller: bool,
    ) -> CreateTopicsResponse {
        let topics = request
            .topics
            .into_iter()
            .map(|topic| {
                let name = name_of(&topic.name);
                let result = CreatableTopicResult::default().with_name(topic.name.clone());
                if not_controller {
                    return result.with_error_code(41);
                }
                if self.topics.contains_key(&name) {
                    return result
                        .with_error_code(36)
                        .with_error_message(Some(str_bytes(&format!(
                            "Topic '{name}' already exists."
                        ))));
                }
                let mut id = [0; 16];
                id[15] = self.next_topic_id;
                self.next_topic_id += 1;
                let configs = topic
                    .configs
                    .into_iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value?.to_string())))
                    .collect();
                self.topics.insert(
                    name,
                    FakeTopic {
                        id,
                        partitions: topic.num_partitions,
                        replication_factor: topic.replication_factor,
                        configs,
                        states: BTreeMap::new(),
                    },
                );
                result.with_topic_id(uuid::Uuid::from_bytes(id))
            })
            .collect();
        CreateTopicsResponse::default().with_topics(topics)
    }

    fn create_partitions(
        &mut self,
        request: CreatePartitionsRequest,
        not_controller: bool,
    ) -> CreatePartitionsResponse {
        let results = request
            .topics
            .into_iter()
            .map(|topic| {
                let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
                if not_controller {
                    return result.with_error_code(41);
                }
                match self.topics.get_mut(&name_of(&topic.name)) {
                    None => result.with_error_code(3),
                    Some(existing) if topic.count <= existing.partitions => result
                        .with_error_code(37)
                        .with_error_message(Some(str_bytes(&format!(
                            "Topic currently has {} partitions, which is higher than the \
                             requested {}.",
                            existing.partitions, topic.count
                        )))),
                    Some(existing) => {
                        existing.partitions = topic.count;
                        result
                    }
                }
            })
            .collect();
        CreatePartitionsResponse::default().with_results(results)
    }

    fn delete_topics(
        &mut self,
        request: DeleteTopicsRequest,
        version: i16,
        not_controller: bool,
    ) -> DeleteTopicsResponse {
        let names: Vec<TopicName> = if version >= 6 {
            request.topics.into_iter().filter_map(|t| t.name).collect()
        } else {
            request.topic_names
        };
        let responses = names
            .into_iter()
            .map(|name| {
                let result = DeletableTopicResult::default().with_name(Some(name.clone()));
                if not_controller {
                    result.with_error_code(41)
                } else if self.topics.remove(&name_of(&name)).is_none() {
                    result.with_error_code(3)
                } else {
                    result
                }
            })
            .collect();
        DeleteTopicsResponse::default().with_responses(responses)
    }

    fn describe_configs(
        &self,
        node_id: i32,
        request: DescribeConfigsRequest,
    ) -> DescribeConfigsResponse {
        let results = request
            .resources
            .into_iter()
            .map(|resource| {
                let result = DescribeConfigsResult::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                if resource.resource_type == RESOURCE_BROKER {
                    let Some(configs) = self.broker_resource(node_id, &resource.resource_name)
                    else {
                        return result.with_error_code(INVALID_REQUEST);
                    };
                    let configs = configs
                        .iter()
                        .map(|(name, value)| {
                            DescribeConfigsResourceResult::default()
                                .with_name(str_bytes(name))
                                .with_value(Some(str_bytes(value)))
                                .with_config_source(SOURCE_DYNAMIC_BROKER)
                        })
                        .collect();
                    return result.with_configs(configs);
                }
                let Some(topic) = self.topics.get(resource.resource_name.as_str()) else {
                    return result.with_error_code(3);
                };
                let entry = |name: &str, value: &str, source| {
                    DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(name))
                        .with_value(Some(str_bytes(value)))
                        .with_config_source(source)
                };
                let mut configs: Vec<_> = topic
                    .configs
                    .iter()
                    .map(|(name, value)| entry(name, value, SOURCE_TOPIC))
                    .collect();
                if !topic.configs.contains_key(DEFAULT_CONFIG.0) {
                    configs.push(entry(DEFAULT_CONFIG.0, DEFAULT_CONFIG.1, SOURCE_DEFAULT));
                }
                result.with_configs(configs)
            })
            .collect();
        DescribeConfigsResponse::default().with_results(results)
    }

    /// The configs of BROKER resource `name`, which only that broker answers for.
    fn broker_resource(&self, node_id: i32, name: &StrBytes) -> Option<&BTreeMap<String, String>> {
        static EMPTY: BTreeMap<String, String> = BTreeMap::new();
        let id: i32 = name.parse().ok()?;
        (id == node_id).then(|| self.broker_configs.get(&id).unwrap_or(&EMPTY))
    }

    fn alter_configs(
        &mut self,
        node_id: i32,
        request: IncrementalAlterConfigsRequest,
    ) -> IncrementalAlterConfigsResponse {
        let responses = request
            .resources
            .into_iter()
            .map(|resource| {
                let result = AlterConfigsResourceResponse::default()
                    .with_resource_type(resource.resource_type)
                    .with_resource_name(resource.resource_name.clone());
                let configs = if resource.resource_type == RESOURCE_BROKER {
                    match resource.resource_name.parse::<i32>() {
                        Ok(id) if id == node_id => self.broker_configs.entry(id).or_default(),
                        _ => return result.with_error_code(INVALID_REQUEST),
                    }
                } else {
                    match self.topics.get_mut(resource.resource_name.as_str()) {
                        Some(topic) => &mut topic.configs,
                        None => return result.with_error_code(3),
                    }
                };
                for op in resource.configs {
                    let name = op.name.to_string();
                    match (op.config_operation, op.value) {
                        (0, Some(value)) => {
                            configs.insert(name, value.to_string());
                        }
                        (1, _) => {
                            configs.remove(&name);
                        }
                        _ => return result.with_error_code(INVALID_REQUEST),
                    }
                }
                result
            })
            .collect();
        IncrementalAlterConfigsResponse::default().with_responses(responses)
    }
}

/// A handler answering ApiVersions like a broker supporting [`all_versions`], and every other
/// request through `other`.
pub(crate) fn versions_then(
    other: impl Fn(&RequestHeader, Bytes) -> Reply + Send + Sync + 'static,
) -> Handler {
    Arc::new(move |header, body| {
        if header.request_api_key == ApiKey::ApiVersions as i16 {
            respond(header, &api_versions(&all_versions()))
        } else {
            other(header, body)
        }
    })
}
