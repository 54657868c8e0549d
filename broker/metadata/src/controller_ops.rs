//! Controller operations as data: what a broker asks of the active controller, and the answer.
//!
//! Every metadata change a broker needs goes through [`ControllerRequest`], whether the active
//! controller runs in the same process or is reached over the controller listener
//! ([`ControllerClient`](crate::controller_client::ControllerClient) picks). The types are the
//! JSON payloads of the `Controller/Call` method, so fields added later must be
//! `#[serde(default)]`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::controller::ConfigOp;
use crate::controller::Controller;
use crate::controller::CreateTopicRequest;
use crate::controller::NewPartitions;
use crate::controller_error::ControllerError;
use crate::image::PartitionImage;
use crate::records::ConfigResource;

/// A broker's registration: who it is and where clients reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistrationRequest {
    pub node_id: i32,
    /// Fresh for every process start (KIP-631's incarnation id).
    pub incarnation: Uuid,
    /// Advertised Kafka listener.
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
}

/// A broker's periodic heartbeat (KIP-631's BrokerHeartbeat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub node_id: i32,
    pub incarnation: Uuid,
    /// The metadata offset the broker has applied.
    pub metadata_offset: u64,
    /// The broker is shutting down: the controller fences it so clients stop being sent to it.
    pub want_shutdown: bool,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// Whether the broker is fenced now.
    pub fenced: bool,
    /// The controller's applied metadata offset: how far the broker may be behind.
    pub controller_offset: u64,
    /// A shutting-down broker may exit.
    pub shutdown_ready: bool,
}

/// One voter or observer as DescribeQuorum (KIP-595) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumReplica {
    pub node_id: i32,
    /// The last log offset the leader knows this replica holds, -1 if unknown.
    pub log_end_offset: i64,
    /// Milliseconds since the epoch of its last acknowledged replication, -1 if none.
    pub last_fetch_timestamp: i64,
    /// Milliseconds since the epoch when it last held the leader's whole log, -1 if never.
    pub last_caught_up_timestamp: i64,
    /// Its controller listener `host:port`, as the quorum membership records it.
    #[serde(default)]
    pub address: Option<String>,
}

/// The quorum's state, from the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumDescription {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<QuorumReplica>,
    pub observers: Vec<QuorumReplica>,
}

/// What one created topic reports back; its configs follow from the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedTopicSummary {
    pub topic_id: Uuid,
    pub num_partitions: i32,
    pub replication_factor: i16,
}

/// A partition leader asks to change the partition's ISR (KIP-497's AlterPartition): shrink
/// it when a follower lags, expand it when one caught up. The epochs are those of the
/// leader's view of the partition; a stale view is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlterPartitionRequest {
    /// The leader sending the request.
    pub broker_id: i32,
    /// Its registration's incarnation (KIP-631), standing for Kafka's broker epoch.
    pub incarnation: Uuid,
    pub topic_id: Uuid,
    pub partition: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The whole ISR asked for, the leader included.
    pub new_isr: Vec<i32>,
}

/// A partition's leadership and replicas, as the controller holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// -1 when the partition has no leader.
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
    pub replicas: Vec<i32>,
}

impl From<&PartitionImage> for PartitionState {
    fn from(p: &PartitionImage) -> Self {
        Self {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr: p.isr.clone(),
            replicas: p.replicas.clone(),
        }
    }
}

/// One partition of AlterPartitionReassignments: (topic, partition, target replicas with the
/// preferred leader first; `None` cancels the reassignment in progress).
pub type ReassignmentTarget = (String, i32, Option<Vec<i32>>);

/// A reassignment in progress, as ListPartitionReassignments reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionReassignment {
    pub topic: String,
    pub partition: i32,
    /// The target replicas followed by the original ones leaving.
    pub replicas: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
}

/// The outcome of ElectLeaders for one partition.
pub type ElectionOutcome = (String, i32, Result<(), ControllerError>);

/// A request to the active controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerRequest {
    CreateTopics {
        topics: Vec<CreateTopicRequest>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    CreatePartitions {
        topics: Vec<NewPartitions>,
        validate_only: bool,
    },
    AlterConfigs {
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    },
    IncrementalAlterConfigs {
        resource: ConfigResource,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    },
    AllocateProducerIds {
        node_id: i32,
        count: i64,
    },
    RegisterBroker(BrokerRegistrationRequest),
    Heartbeat(HeartbeatRequest),
    /// A `broker`-only node asks to follow the metadata log as an observer (a Raft learner).
    AddObserver {
        node_id: u64,
        address: String,
    },
    DescribeQuorum,
    /// ISR changes of several partitions, from one leader, committed together (Kafka's
    /// AlterPartition carries many partitions too).
    AlterPartition {
        partitions: Vec<AlterPartitionRequest>,
    },
    /// KIP-455: start, change or cancel reassignments.
    AlterPartitionReassignments {
        reassignments: Vec<ReassignmentTarget>,
    },
    /// KIP-455: the reassignments in progress among `partitions` (all when `None`).
    ListPartitionReassignments {
        #[serde(default)]
        partitions: Option<Vec<(String, i32)>>,
    },
    /// KIP-460: preferred (`preferred`) or unclean leader election for `partitions` (every
    /// partition when `None`; then partitions that need no election are left out).
    ElectLeaders {
        preferred: bool,
        #[serde(default)]
        partitions: Option<Vec<(String, i32)>>,
    },
}

impl ControllerRequest {
    /// Whether the broker that forwards this request answers its client only once its own
    /// image shows the change (admin operations whose client reads the result back at once).
    /// Lifecycle requests are not: an observer asking to join has no log to catch up with yet.
    /// Nor is AlterPartition: its answer carries the partition's new state for the leader.
    pub fn reads_own_writes(&self) -> bool {
        matches!(
            self,
            ControllerRequest::CreateTopics { .. }
                | ControllerRequest::DeleteTopics { .. }
                | ControllerRequest::CreatePartitions { .. }
                | ControllerRequest::AlterConfigs { .. }
                | ControllerRequest::IncrementalAlterConfigs { .. }
                | ControllerRequest::AlterPartitionReassignments { .. }
                | ControllerRequest::ElectLeaders { .. }
        )
    }
}

/// The answer to a [`ControllerRequest`] of the same name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControllerResponse {
    CreateTopics(Vec<(String, Result<CreatedTopicSummary, ControllerError>)>),
    DeleteTopics(Vec<Result<Uuid, ControllerError>>),
    CreatePartitions(Vec<Result<(), ControllerError>>),
    Configs(Result<(), ControllerError>),
    ProducerIds(Result<i64, ControllerError>),
    Registered(Result<(), ControllerError>),
    Heartbeat(Result<HeartbeatReply, ControllerError>),
    ObserverAdded(Result<(), ControllerError>),
    Quorum(Result<QuorumDescription, ControllerError>),
    /// One result per partition, in request order.
    AlterPartition(Vec<Result<PartitionState, ControllerError>>),
    /// One result per reassignment, in request order.
    AlterPartitionReassignments(Vec<Result<(), ControllerError>>),
    ListPartitionReassignments(Result<Vec<PartitionReassignment>, ControllerError>),
    ElectLeaders(Result<Vec<ElectionOutcome>, ControllerError>),
}

impl ControllerResponse {
    /// The response for `request` when no controller could take it.
    pub fn refused(request: &ControllerRequest, error: ControllerError) -> ControllerResponse {
        fn e<T>(error: &ControllerError) -> Result<T, ControllerError> {
            Err(error.clone())
        }
        match request {
            ControllerRequest::CreateTopics { topics, .. } => ControllerResponse::CreateTopics(
                topics.iter().map(|t| (t.name.clone(), e(&error))).collect(),
            ),
            ControllerRequest::DeleteTopics { names } => {
                ControllerResponse::DeleteTopics(names.iter().map(|_| e(&error)).collect())
            }
            ControllerRequest::CreatePartitions { topics, .. } => {
                ControllerResponse::CreatePartitions(topics.iter().map(|_| e(&error)).collect())
            }
            ControllerRequest::AlterConfigs { .. }
            | ControllerRequest::IncrementalAlterConfigs { .. } => {
                ControllerResponse::Configs(e(&error))
            }
            ControllerRequest::AllocateProducerIds { .. } => {
                ControllerResponse::ProducerIds(e(&error))
            }
            ControllerRequest::RegisterBroker(_) => ControllerResponse::Registered(e(&error)),
            ControllerRequest::Heartbeat(_) => ControllerResponse::Heartbeat(e(&error)),
            ControllerRequest::AddObserver { .. } => ControllerResponse::ObserverAdded(e(&error)),
            ControllerRequest::DescribeQuorum => ControllerResponse::Quorum(e(&error)),
            ControllerRequest::AlterPartition { partitions } => {
                ControllerResponse::AlterPartition(partitions.iter().map(|_| e(&error)).collect())
            }
            ControllerRequest::AlterPartitionReassignments { reassignments } => {
                ControllerResponse::AlterPartitionReassignments(
                    reassignments.iter().map(|_| e(&error)).collect(),
                )
            }
            ControllerRequest::ListPartitionReassignments { .. } => {
                ControllerResponse::ListPartitionReassignments(e(&error))
            }
            ControllerRequest::ElectLeaders { .. } => ControllerResponse::ElectLeaders(e(&error)),
        }
    }

    /// Whether the request should go to another controller: it was refused, as a whole or in
    /// any of its items, because this node is not, or stopped being, the active controller. A
    /// batch whose commit failed that way carries NOT_CONTROLLER only in the items that were
    /// valid, after the refusals of the invalid ones; it is retried whole, and the controller
    /// that takes it validates every item again.
    pub fn not_controller(&self) -> Option<Option<u64>> {
        fn errors<'a, T: 'a>(
            items: impl IntoIterator<Item = &'a Result<T, ControllerError>>,
        ) -> Vec<&'a ControllerError> {
            items.into_iter().filter_map(|r| r.as_ref().err()).collect()
        }
        let errors: Vec<&ControllerError> = match self {
            ControllerResponse::CreateTopics(items) => errors(items.iter().map(|(_, r)| r)),
            ControllerResponse::DeleteTopics(items) => errors(items),
            ControllerResponse::CreatePartitions(items) => errors(items),
            ControllerResponse::Configs(r)
            | ControllerResponse::Registered(r)
            | ControllerResponse::ObserverAdded(r) => errors([r]),
            ControllerResponse::ProducerIds(r) => errors([r]),
            ControllerResponse::Heartbeat(r) => errors([r]),
            ControllerResponse::Quorum(r) => errors([r]),
            ControllerResponse::AlterPartition(items) => errors(items),
            ControllerResponse::AlterPartitionReassignments(items) => errors(items),
            ControllerResponse::ListPartitionReassignments(r) => errors([r]),
            ControllerResponse::ElectLeaders(r) => errors([r]),
        };
        errors.into_iter().find_map(|error| match error {
            ControllerError::NotController { leader } => Some(*leader),
            _ => None,
        })
    }
}

impl Controller {
    /// Carries out `request` on this node, which must be the active controller (otherwise the
    /// response is NOT_CONTROLLER and the caller retries elsewhere).
    pub async fn handle(&self, request: ControllerRequest) -> ControllerResponse {
        match request {
            ControllerRequest::CreateTopics {
                topics,
                validate_only,
            } => ControllerResponse::CreateTopics(
                self.create_topics(topics, validate_only)
                    .await
                    .into_iter()
                    .map(|r| {
                        let summary = r.result.map(|c| CreatedTopicSummary {
                            topic_id: c.topic_id,
                            num_partitions: c.num_partitions,
                            replication_factor: c.replication_factor,
                        });
                        (r.name, summary)
                    })
                    .collect(),
            ),
            ControllerRequest::DeleteTopics { names } => {
                ControllerResponse::DeleteTopics(self.delete_topics(names).await)
            }
            ControllerRequest::CreatePartitions {
                topics,
                validate_only,
            } => ControllerResponse::CreatePartitions(
                self.create_partitions(topics, validate_only).await,
            ),
            ControllerRequest::AlterConfigs {
                resource,
                configs,
                validate_only,
            } => ControllerResponse::Configs(
                self.alter_configs(resource, configs, validate_only).await,
            ),
            ControllerRequest::IncrementalAlterConfigs {
                resource,
                ops,
                validate_only,
            } => ControllerResponse::Configs(
                self.incremental_alter_configs(resource, ops, validate_only)
                    .await,
            ),
            ControllerRequest::AllocateProducerIds { node_id, count } => {
                ControllerResponse::ProducerIds(self.allocate_producer_ids(node_id, count).await)
            }
            ControllerRequest::RegisterBroker(registration) => {
                ControllerResponse::Registered(self.register(registration).await)
            }
            ControllerRequest::Heartbeat(heartbeat) => {
                ControllerResponse::Heartbeat(self.heartbeat(heartbeat).await)
            }
            ControllerRequest::AddObserver { node_id, address } => {
                ControllerResponse::ObserverAdded(self.add_observer(node_id, address).await)
            }
            ControllerRequest::DescribeQuorum => ControllerResponse::Quorum(self.describe_quorum()),
            ControllerRequest::AlterPartition { partitions } => {
                ControllerResponse::AlterPartition(self.alter_partitions(partitions).await)
            }
            ControllerRequest::AlterPartitionReassignments { reassignments } => {
                ControllerResponse::AlterPartitionReassignments(
                    self.alter_partition_reassignments(reassignments).await,
                )
            }
            ControllerRequest::ListPartitionReassignments { partitions } => {
                ControllerResponse::ListPartitionReassignments(
                    self.list_partition_reassignments(partitions.as_deref()),
                )
            }
            ControllerRequest::ElectLeaders {
                preferred,
                partitions,
            } => ControllerResponse::ElectLeaders(self.elect_leaders(preferred, partitions).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_requests_round_trip_and_optional_fields_default() {
        let requests = vec![
            ControllerRequest::AlterPartition {
                partitions: vec![AlterPartitionRequest {
                    broker_id: 1,
                    incarnation: Uuid::from_u128(1),
                    topic_id: Uuid::from_u128(2),
                    partition: 0,
                    leader_epoch: 3,
                    partition_epoch: 4,
                    new_isr: vec![1, 2],
                }],
            },
            ControllerRequest::AlterPartitionReassignments {
                reassignments: vec![("t".into(), 0, Some(vec![1, 2])), ("t".into(), 1, None)],
            },
            ControllerRequest::ListPartitionReassignments { partitions: None },
            ControllerRequest::ElectLeaders {
                preferred: true,
                partitions: Some(vec![("t".into(), 0)]),
            },
        ];
        for request in requests {
            let json = serde_json::to_string(&request).expect("serializes");
            let back: ControllerRequest = serde_json::from_str(&json).expect("deserializes");
            assert_eq!(back, request);
        }
        let elect: ControllerRequest =
            serde_json::from_str(r#"{"ElectLeaders":{"preferred":false}}"#).expect("decodes");
        assert_eq!(
            elect,
            ControllerRequest::ElectLeaders {
                preferred: false,
                partitions: None
            }
        );
    }

    #[test]
    fn refusals_of_partition_requests_say_not_controller() {
        let not_controller = ControllerError::NotController { leader: Some(2) };
        let requests = [
            ControllerRequest::AlterPartition {
                partitions: vec![AlterPartitionRequest {
                    broker_id: 1,
                    incarnation: Uuid::nil(),
                    topic_id: Uuid::nil(),
                    partition: 0,
                    leader_epoch: 0,
                    partition_epoch: 0,
                    new_isr: vec![1],
                }],
            },
            ControllerRequest::AlterPartitionReassignments {
                reassignments: vec![("t".into(), 0, None)],
            },
            ControllerRequest::ListPartitionReassignments { partitions: None },
            ControllerRequest::ElectLeaders {
                preferred: true,
                partitions: None,
            },
        ];
        for request in &requests {
            let response = ControllerResponse::refused(request, not_controller.clone());
            assert_eq!(response.not_controller(), Some(Some(2)), "{request:?}");
        }
    }

    #[test]
    fn a_batch_that_lost_the_controller_after_refusing_some_items_goes_elsewhere() {
        let moved = || ControllerError::NotController { leader: Some(3) };
        let invalid = || ControllerError::InvalidTopic {
            topic: "bad name!".into(),
            message: "Topic name 'bad name!' is illegal.".into(),
        };
        let created = ControllerResponse::CreateTopics(vec![
            ("bad name!".into(), Err(invalid())),
            ("fine".into(), Err(moved())),
        ]);
        assert_eq!(created.not_controller(), Some(Some(3)));
        let deleted = ControllerResponse::DeleteTopics(vec![
            Err(ControllerError::UnknownTopicOrPartition {
                topic: "gone".into(),
                partition: None,
            }),
            Err(moved()),
        ]);
        assert_eq!(deleted.not_controller(), Some(Some(3)));
        let grown = ControllerResponse::CreatePartitions(vec![Ok(()), Err(moved())]);
        assert_eq!(grown.not_controller(), Some(Some(3)));

        // Refusals for the items' own reasons stay answers.
        let answered = ControllerResponse::CreateTopics(vec![
            ("bad name!".into(), Err(invalid())),
            (
                "taken".into(),
                Err(ControllerError::TopicAlreadyExists {
                    topic: "taken".into(),
                }),
            ),
        ]);
        assert_eq!(answered.not_controller(), None);
    }
}
