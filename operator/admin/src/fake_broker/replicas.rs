//! The replica side of [`FakeKafka`]: partition state, log directories, reassignments and
//! leader elections, answered the way a Kafka controller and broker answer them.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    DescribeLogDirsRequest, DescribeLogDirsResponse, ElectLeadersRequest, ElectLeadersResponse,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};

use super::{FakeKafka, FakeTopic, State, name_of, str_bytes};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const NOT_CONTROLLER: i16 = 41;
const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
const ELIGIBLE_LEADERS_NOT_AVAILABLE: i16 = 83;
const ELECTION_NOT_NEEDED: i16 = 84;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;

/// One partition's state in a [`FakeTopic`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FakePartition {
    pub(crate) leader: Option<i32>,
    pub(crate) leader_epoch: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
    pub(crate) offline: Vec<i32>,
    pub(crate) error_code: i16,
}

/// One log directory of a fake broker.
#[derive(Debug, Clone)]
pub(crate) struct FakeLogDir {
    pub(crate) path: String,
    pub(crate) error_code: i16,
    pub(crate) total_bytes: i64,
    pub(crate) usable_bytes: i64,
    /// (topic, partition, size, offset lag, is future)
    pub(crate) replicas: Vec<(String, i32, i64, i64, bool)>,
}

impl FakeTopic {
    /// The partition's state: the one set, or replicas 1..=RF with broker 1 leading at epoch
    /// 0 and every replica in sync.
    pub(crate) fn partition(&self, index: i32) -> FakePartition {
        self.states.get(&index).cloned().unwrap_or_else(|| {
            let replicas: Vec<i32> = (1..=i32::from(self.replication_factor)).collect();
            FakePartition {
                leader: Some(1),
                leader_epoch: 0,
                isr: replicas.clone(),
                replicas,
                offline: Vec::new(),
                error_code: 0,
            }
        })
    }
}

impl FakeKafka {
    /// Sets the state of partition `index` of `topic`, which must exist.
    pub(crate) fn set_partition(&self, topic: &str, index: i32, state: FakePartition) {
        let mut cluster = self.state();
        let topic = cluster.topics.get_mut(topic).expect("a fake topic");
        topic.states.insert(index, state);
    }

    /// The state of partition `index` of `topic`.
    pub(crate) fn partition(&self, topic: &str, index: i32) -> FakePartition {
        self.state().topics[topic].partition(index)
    }

    /// Gives broker `node_id` these log directories.
    pub(crate) fn set_log_dirs(&self, node_id: i32, dirs: Vec<FakeLogDir>) {
        self.state().log_dirs.insert(node_id, dirs);
    }

    /// Finishes the reassignment of `topic`-`index`: the target replicas are the assignment
    /// and all in sync.
    pub(crate) fn complete_reassignment(&self, topic: &str, index: i32) {
        let mut cluster = self.state();
        let (_, target) = cluster
            .reassignments
            .remove(&(topic.to_owned(), index))
            .expect("a reassignment in progress");
        let topic = cluster.topics.get_mut(topic).expect("a fake topic");
        let mut state = topic.partition(index);
        state.isr = target.clone();
        state.replicas = target;
        topic.states.insert(index, state);
    }
}

impl State {
    fn has_partition(&self, topic: &str, index: i32) -> bool {
        self.topics
            .get(topic)
            .is_some_and(|t| (0..t.partitions).contains(&index))
    }

    pub(super) fn describe_log_dirs(
        &self,
        node_id: i32,
        request: DescribeLogDirsRequest,
        version: i16,
    ) -> DescribeLogDirsResponse {
        let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
            topics
                .into_iter()
                .flat_map(|t| {
                    let name = name_of(&t.topic);
                    t.partitions.into_iter().map(move |p| (name.clone(), p))
                })
                .collect()
        });
        let results = self
            .log_dirs
            .get(&node_id)
            .into_iter()
            .flatten()
            .map(|dir| {
                let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
                for (topic, partition, size, lag, future) in &dir.replicas {
                    let asked = wanted
                        .as_ref()
                        .is_none_or(|w| w.contains(&(topic.clone(), *partition)));
                    if asked {
                        topics.entry(topic).or_default().push(
                            DescribeLogDirsPartition::default()
                                .with_partition_index(*partition)
                                .with_partition_size(*size)
                                .with_offset_lag(*lag)
                                .with_is_future_key(*future),
                        );
                    }
                }
                let result = DescribeLogDirsResult::default()
                    .with_error_code(dir.error_code)
                    .with_log_dir(str_bytes(&dir.path))
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(name, partitions)| {
                                DescribeLogDirsTopic::default()
                                    .with_name(TopicName(str_bytes(name)))
                                    .with_partitions(partitions)
                            })
                            .collect(),
                    );
                if version >= 4 {
                    result
                        .with_total_bytes(dir.total_bytes)
                        .with_usable_bytes(dir.usable_bytes)
                } else {
                    result
                }
            })
            .collect();
        DescribeLogDirsResponse::default().with_results(results)
    }

    pub(super) fn alter_reassignments(
        &mut self,
        request: AlterPartitionReassignmentsRequest,
        not_controller: bool,
    ) -> AlterPartitionReassignmentsResponse {
        if not_controller {
            return AlterPartitionReassignmentsResponse::default().with_error_code(NOT_CONTROLLER);
        }
        let brokers: BTreeSet<i32> = self.brokers.iter().map(|(id, _)| *id).collect();
        let mut responses = Vec::new();
        for topic in request.topics {
            let name = name_of(&topic.name);
            let mut partitions = Vec::new();
            for p in topic.partitions {
                let index = p.partition_index;
                let result = ReassignablePartitionResponse::default().with_partition_index(index);
                let key = (name.clone(), index);
                let outcome = if !self.has_partition(&name, index) {
                    Err((UNKNOWN_TOPIC_OR_PARTITION, None))
                } else {
                    match p.replicas {
                        None => match self.reassignments.remove(&key) {
                            None => Err((NO_REASSIGNMENT_IN_PROGRESS, None)),
                            Some((original, _)) => {
                                self.set_replicas(&name, index, original);
                                Ok(())
                            }
                        },
                        Some(target) => {
                            let target: Vec<i32> = target.into_iter().map(|b| b.0).collect();
                            if target.is_empty() || target.iter().any(|b| !brokers.contains(b)) {
                                Err((
                                    INVALID_REPLICA_ASSIGNMENT,
                                    Some("Replica assignment has brokers that are not alive."),
                                ))
                            } else {
                                let original = match self.reassignments.get(&key) {
                                    Some((original, _)) => original.clone(),
                                    None => self.topics[&name].partition(index).replicas,
                                };
                                let mut replicas = target.clone();
                                replicas.extend(original.iter().filter(|b| !target.contains(b)));
                                self.set_replicas(&name, index, replicas);
                                self.reassignments.insert(key, (original, target));
                                Ok(())
                            }
                        }
                    }
                };
                partitions.push(match outcome {
                    Ok(()) => result,
                    Err((code, message)) => result
                        .with_error_code(code)
                        .with_error_message(message.map(str_bytes)),
                });
            }
            responses.push(
                ReassignableTopicResponse::default()
                    .with_name(topic.name)
                    .with_partitions(partitions),
            );
        }
        AlterPartitionReassignmentsResponse::default()
            .with_allow_replication_factor_change(request.allow_replication_factor_change)
            .with_responses(responses)
    }

    fn set_replicas(&mut self, topic: &str, index: i32, replicas: Vec<i32>) {
        let topic = self.topics.get_mut(topic).expect("a fake topic");
        let mut state = topic.partition(index);
        state.replicas = replicas;
        topic.states.insert(index, state);
    }

    pub(super) fn list_reassignments(
        &self,
        request: ListPartitionReassignmentsRequest,
        not_controller: bool,
    ) -> ListPartitionReassignmentsResponse {
        if not_controller {
            return ListPartitionReassignmentsResponse::default().with_error_code(NOT_CONTROLLER);
        }
        let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
            topics
                .into_iter()
                .flat_map(|t| {
                    let name = name_of(&t.name);
                    t.partition_indexes
                        .into_iter()
                        .map(move |p| (name.clone(), p))
                })
                .collect()
        });
        let mut topics: BTreeMap<&str, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
        for ((topic, index), (original, target)) in &self.reassignments {
            if wanted
                .as_ref()
                .is_some_and(|w| !w.contains(&(topic.clone(), *index)))
            {
                continue;
            }
            let ids = |ids: Vec<i32>| ids.into_iter().map(BrokerId).collect();
            let state = self.topics[topic].partition(*index);
            topics.entry(topic).or_default().push(
                OngoingPartitionReassignment::default()
                    .with_partition_index(*index)
                    .with_replicas(ids(state.replicas))
                    .with_adding_replicas(ids(target
                        .iter()
                        .copied()
                        .filter(|b| !original.contains(b))
                        .collect()))
                    .with_removing_replicas(ids(original
                        .iter()
                        .copied()
                        .filter(|b| !target.contains(b))
                        .collect())),
            );
        }
        ListPartitionReassignmentsResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OngoingTopicReassignment::default()
                        .with_name(TopicName(str_bytes(name)))
                        .with_partitions(partitions)
                })
                .collect(),
        )
    }

    pub(super) fn elect_leaders(
        &mut self,
        request: ElectLeadersRequest,
        version: i16,
        not_controller: bool,
    ) -> ElectLeadersResponse {
        if not_controller && version >= 1 {
            return ElectLeadersResponse::default().with_error_code(NOT_CONTROLLER);
        }
        // v0 has no election type: it elects the preferred leader.
        let unclean = version >= 1 && request.election_type == 1;
        let asked: Vec<(String, i32)> = match request.topic_partitions {
            Some(topics) => topics
                .into_iter()
                .flat_map(|t| {
                    let name = name_of(&t.topic);
                    t.partitions.into_iter().map(move |p| (name.clone(), p))
                })
                .collect(),
            None => self
                .topics
                .iter()
                .flat_map(|(name, t)| (0..t.partitions).map(move |p| (name.clone(), p)))
                .collect(),
        };
        let mut results: BTreeMap<String, Vec<PartitionResult>> = BTreeMap::new();
        for (topic, index) in asked {
            let code = if not_controller {
                NOT_CONTROLLER
            } else if !self.has_partition(&topic, index) {
                UNKNOWN_TOPIC_OR_PARTITION
            } else {
                self.elect(&topic, index, unclean)
            };
            results.entry(topic).or_default().push(
                PartitionResult::default()
                    .with_partition_id(index)
                    .with_error_code(code),
            );
        }
        ElectLeadersResponse::default().with_replica_election_results(
            results
                .into_iter()
                .map(|(name, partitions)| {
                    ReplicaElectionResult::default()
                        .with_topic(TopicName(str_bytes(&name)))
                        .with_partition_result(partitions)
                })
                .collect(),
        )
    }

    /// Elects a leader for one partition as Kafka's controller does; the error code.
    fn elect(&mut self, topic: &str, index: i32, unclean: bool) -> i16 {
        let topic = self.topics.get_mut(topic).expect("a fake topic");
        let mut state = topic.partition(index);
        let chosen = if unclean {
            if state.leader.is_some() {
                return ELECTION_NOT_NEEDED;
            }
            match state.replicas.iter().find(|b| !state.offline.contains(b)) {
                Some(&replica) => replica,
                None => return ELIGIBLE_LEADERS_NOT_AVAILABLE,
            }
        } else {
            let Some(&preferred) = state.replicas.first() else {
                return PREFERRED_LEADER_NOT_AVAILABLE;
            };
            if state.leader == Some(preferred) {
                return ELECTION_NOT_NEEDED;
            }
            if !state.isr.contains(&preferred) {
                return PREFERRED_LEADER_NOT_AVAILABLE;
            }
            preferred
        };
        state.leader = Some(chosen);
        state.leader_epoch += 1;
        if !state.isr.contains(&chosen) {
            state.isr = vec![chosen];
        }
        state.error_code = 0;
        topic.states.insert(index, state);
        0
    }
}
