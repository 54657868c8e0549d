//! The way every broker reaches the active controller (KIP-590's forwarding).
//!
//! [`ControllerClient`] takes a [`ControllerRequest`] and finds the controller for it: this
//! process when its quorum node leads (no serialization, no network), otherwise the leader's
//! controller listener. A NOT_CONTROLLER answer, an unreachable controller or an election in
//! progress are retried with backoff against the controller the quorum reports next, until the
//! call's deadline; only then does the caller see an error (REQUEST_TIMED_OUT, which clients
//! retry). So a request sent to any broker, before or across a controller change, behaves as
//! if sent to the controller, and NOT_CONTROLLER never reaches a client.
//!
//! A node whose metadata log failed answers every request at once with the failure
//! (KAFKA_STORAGE_ERROR): it is stopping.
//!
//! The typed methods mirror [`Controller`]'s, so request handlers do not care where the
//! controller runs.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use uuid::Uuid;

use crate::controller::ConfigOp;
use crate::controller::Controller;
use crate::controller::CreateTopicRequest;
use crate::controller::CreateTopicResult;
use crate::controller::CreatedTopic;
use crate::controller::NewPartitions;
use crate::controller::TopicDefaults;
use crate::controller_error::ControllerError;
use crate::controller_ops::AlterPartitionRequest;
use crate::controller_ops::BrokerRegistrationRequest;
use crate::controller_ops::ControllerRequest;
use crate::controller_ops::ControllerResponse;
use crate::controller_ops::ElectionOutcome;
use crate::controller_ops::HeartbeatReply;
use crate::controller_ops::HeartbeatRequest;
use crate::controller_ops::PartitionReassignment;
use crate::controller_ops::PartitionState;
use crate::controller_ops::QuorumDescription;
use crate::controller_ops::ReassignmentTarget;
use crate::grpc::envelope::Envelope;
use crate::grpc::envelope::paths;
use crate::grpc::peer::Peer;
use crate::quorum::MetadataQuorum;
use crate::records::ConfigResource;
use crate::topic_config::effective_topic_configs;

/// The longest a single forwarded call may wait for its answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(25);
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// A handle to "the active controller", wherever it runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    local: Controller,
    /// Controller listener addresses of the voters, for when no leader is known yet.
    voters: BTreeMap<u64, String>,
    peers: Mutex<HashMap<String, Peer>>,
    deadline: Duration,
}

impl ControllerClient {
    /// A client that uses `local` when this node leads and forwards otherwise, giving up on a
    /// request after `deadline`.
    pub fn new(local: Controller, deadline: Duration) -> ControllerClient {
        let voters = local.quorum().config().voters.clone();
        ControllerClient {
            inner: Arc::new(Inner {
                local,
                voters,
                peers: Mutex::default(),
                deadline,
            }),
        }
    }

    pub fn quorum(&self) -> &MetadataQuorum {
        self.inner.local.quorum()
    }

    pub fn defaults(&self) -> TopicDefaults {
        self.inner.local.defaults()
    }

    /// How many unclean leader elections this node committed while it was the active
    /// controller.
    pub fn local_unclean_leader_elections(&self) -> u64 {
        self.inner.local.unclean_leader_elections()
    }

    /// Sends `request` to the active controller, retrying across elections and controller
    /// changes until the deadline.
    pub async fn call(&self, request: ControllerRequest) -> ControllerResponse {
        self.call_within(request, self.inner.deadline).await
    }

    /// [`ControllerClient::call`] giving up after `within`. A request that is repeated anyway
    /// (a heartbeat) is bounded by its own period, so one attempt stuck on a controller that
    /// became unreachable never outlasts the broker's session: the next one goes to whichever
    /// controller the quorum names by then.
    pub async fn call_within(
        &self,
        request: ControllerRequest,
        within: Duration,
    ) -> ControllerResponse {
        let deadline = tokio::time::Instant::now() + within;
        let quorum = self.quorum();
        let me = quorum.node_id();
        let mut hint: Option<u64> = None;
        let mut backoff = BACKOFF_MIN;
        let mut attempt = 0usize;
        loop {
            // A node whose metadata log failed is stopping: its image no longer follows the
            // log, so it cannot wait for a controller's answer to show in it. It says so at
            // once rather than retrying until the deadline.
            if quorum.fault().is_some() {
                return ControllerResponse::refused(&request, ControllerError::MetadataLogFailed);
            }
            let target = hint.take().or_else(|| quorum.leader_id());
            let answer = match target {
                // Bounded too: a leader cut off from the majority takes the request and
                // cannot commit it, and would otherwise hold the caller until it heals.
                Some(id) if id == me => {
                    tokio::time::timeout_at(deadline, self.inner.local.handle(request.clone()))
                        .await
                        .ok()
                }
                Some(id) => match self.address_of(id) {
                    Some(addr) => self.forward(&addr, &request, deadline).await,
                    None => None,
                },
                // No leader known here (an observer that has not joined yet, an election):
                // ask the voters in turn; a follower among them names the leader.
                None => match self.voter_address(attempt) {
                    Some(addr) => self.forward(&addr, &request, deadline).await,
                    None => None,
                },
            };
            attempt += 1;
            match answer {
                Some(response) => match response.not_controller() {
                    None => return response,
                    Some(leader) => hint = leader.filter(|l| Some(*l) != target),
                },
                None => hint = None,
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let timeout_ms = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
                tracing::warn!(timeout_ms, "no active controller answered");
                return ControllerResponse::refused(
                    &request,
                    ControllerError::ControllerUnavailable { timeout_ms },
                );
            }
            if hint.is_none() {
                tokio::time::sleep(backoff.min(deadline - now)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }

    /// The controller listener address of node `id`, from the quorum membership or the voters.
    fn address_of(&self, id: u64) -> Option<String> {
        let membership = self
            .quorum()
            .raft()
            .metrics()
            .borrow()
            .membership_config
            .clone();
        membership
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .or_else(|| self.inner.voters.get(&id).cloned())
    }

    fn voter_address(&self, attempt: usize) -> Option<String> {
        let me = self.quorum().node_id();
        let others: Vec<&String> = self
            .inner
            .voters
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(_, addr)| addr)
            .collect();
        (!others.is_empty()).then(|| others[attempt % others.len()].clone())
    }

    async fn forward(
        &self,
        addr: &str,
        request: &ControllerRequest,
        deadline: tokio::time::Instant,
    ) -> Option<ControllerResponse> {
        let peer = {
            let mut peers = self.inner.peers.lock();
            match peers.get(addr) {
                Some(peer) => peer.clone(),
                None => {
                    let peer = Peer::new(addr).ok()?;
                    peers.insert(addr.to_owned(), peer.clone());
                    peer
                }
            }
        };
        let quorum = self.quorum();
        let envelope = Envelope::wrap(&quorum.cluster_id(), quorum.node_id(), request).ok()?;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        match peer
            .call(
                paths::CONTROLLER_CALL,
                envelope,
                remaining.min(CALL_TIMEOUT),
            )
            .await
        {
            Ok(reply) => match reply.open::<ControllerResponse>() {
                Ok(response) => {
                    if request.reads_own_writes() && response.not_controller().is_none() {
                        self.catch_up(reply.metadata_offset, deadline).await;
                    }
                    Some(response)
                }
                Err(error) => {
                    tracing::warn!(%addr, %error, "undecodable controller reply");
                    None
                }
            },
            Err(error) => {
                tracing::debug!(%addr, %error, "forwarding to the controller");
                None
            }
        }
    }
}

impl ControllerClient {
    /// Waits (until `deadline`) for the local image to reach `offset`, the controller's
    /// offset when it answered, so what the operation changed is visible here too.
    async fn catch_up(&self, offset: u64, deadline: tokio::time::Instant) {
        let mut images = self.quorum().subscribe();
        let caught_up = async {
            while images.borrow_and_update().offset < offset {
                if images.changed().await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout_at(deadline, caught_up).await.is_err() {
            tracing::warn!(
                offset,
                "the local metadata image did not reach the controller's offset"
            );
        }
    }
}

/// The typed operations, as [`Controller`] has them.
impl ControllerClient {
    pub async fn create_topics(
        &self,
        topics: Vec<CreateTopicRequest>,
        validate_only: bool,
    ) -> Vec<CreateTopicResult> {
        let configs: Vec<BTreeMap<String, String>> =
            topics.iter().map(|t| t.configs.clone()).collect();
        let response = self
            .call(ControllerRequest::CreateTopics {
                topics,
                validate_only,
            })
            .await;
        let ControllerResponse::CreateTopics(items) = response else {
            return mismatched(response, Vec::new());
        };
        items
            .into_iter()
            .zip(configs)
            .map(|((name, result), configs)| CreateTopicResult {
                name,
                result: result.map(|summary| CreatedTopic {
                    topic_id: summary.topic_id,
                    num_partitions: summary.num_partitions,
                    replication_factor: summary.replication_factor,
                    configs: effective_topic_configs(&configs),
                }),
            })
            .collect()
    }

    pub async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, ControllerError>> {
        let count = names.len();
        match self.call(ControllerRequest::DeleteTopics { names }).await {
            ControllerResponse::DeleteTopics(items) => items,
            other => mismatched(other, vec![Err(internal()); count]),
        }
    }

    pub async fn create_partitions(
        &self,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        let count = topics.len();
        match self
            .call(ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            })
            .await
        {
            ControllerResponse::CreatePartitions(items) => items,
            other => mismatched(other, vec![Err(internal()); count]),
        }
    }

    pub async fn alter_configs(
        &self,
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        match self
            .call(ControllerRequest::AlterConfigs {
                resource,
                configs,
                validate_only,
            })
            .await
        {
            ControllerResponse::Configs(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn incremental_alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        match self
            .call(ControllerRequest::IncrementalAlterConfigs {
                resource,
                ops,
                validate_only,
            })
            .await
        {
            ControllerResponse::Configs(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn allocate_producer_ids(
        &self,
        node_id: i32,
        count: i64,
    ) -> Result<i64, ControllerError> {
        match self
            .call(ControllerRequest::AllocateProducerIds { node_id, count })
            .await
        {
            ControllerResponse::ProducerIds(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn register(
        &self,
        registration: BrokerRegistrationRequest,
    ) -> Result<(), ControllerError> {
        match self
            .call(ControllerRequest::RegisterBroker(registration))
            .await
        {
            ControllerResponse::Registered(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    /// One heartbeat, given up after `within` (the next one is due anyway).
    pub async fn heartbeat(
        &self,
        heartbeat: HeartbeatRequest,
        within: Duration,
    ) -> Result<HeartbeatReply, ControllerError> {
        match self
            .call_within(ControllerRequest::Heartbeat(heartbeat), within)
            .await
        {
            ControllerResponse::Heartbeat(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn add_observer(&self, node_id: u64, address: String) -> Result<(), ControllerError> {
        match self
            .call(ControllerRequest::AddObserver { node_id, address })
            .await
        {
            ControllerResponse::ObserverAdded(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    /// AlterPartition for several partitions at once: one result per partition, in order.
    pub async fn alter_partitions(
        &self,
        partitions: Vec<AlterPartitionRequest>,
        within: Duration,
    ) -> Vec<Result<PartitionState, ControllerError>> {
        let count = partitions.len();
        match self
            .call_within(ControllerRequest::AlterPartition { partitions }, within)
            .await
        {
            ControllerResponse::AlterPartition(results) if results.len() == count => results,
            other => mismatched(other, vec![Err(internal()); count]),
        }
    }

    pub async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<ReassignmentTarget>,
    ) -> Vec<Result<(), ControllerError>> {
        let count = reassignments.len();
        match self
            .call(ControllerRequest::AlterPartitionReassignments { reassignments })
            .await
        {
            ControllerResponse::AlterPartitionReassignments(items) => items,
            other => mismatched(other, vec![Err(internal()); count]),
        }
    }

    pub async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionReassignment>, ControllerError> {
        match self
            .call(ControllerRequest::ListPartitionReassignments { partitions })
            .await
        {
            ControllerResponse::ListPartitionReassignments(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionOutcome>, ControllerError> {
        match self
            .call(ControllerRequest::ElectLeaders {
                preferred,
                partitions,
            })
            .await
        {
            ControllerResponse::ElectLeaders(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }

    pub async fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        match self.call(ControllerRequest::DescribeQuorum).await {
            ControllerResponse::Quorum(result) => result,
            other => mismatched(other, Err(internal())),
        }
    }
}

fn internal() -> ControllerError {
    ControllerError::Internal("the controller answered a different request".to_owned())
}

/// A reply of another kind than the request: a controller of an incompatible version.
fn mismatched<T>(response: ControllerResponse, fallback: T) -> T {
    tracing::error!(?response, "the controller answered a different request");
    fallback
}
