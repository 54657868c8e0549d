//! The admin side of a day-2 pass, shared by both runtimes: [`observe_admin`] gathers what the
//! Kafka admin API reports into an [`AdminState`], [`act`] runs one [`Action`] through the
//! [`Workload`] and the admin API.
//!
//! Throttles are set the way `kafka-reassign-partitions.sh --throttle` sets them (KIP-73): the
//! rate as the dynamic broker configs `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` on every broker a move reads from or writes to, and
//! the replicas it applies to as the topic configs `leader.replication.throttled.replicas`
//! (the current replicas, which serve the copy) and `follower.replication.throttled.replicas`
//! (the replicas being added), as `partition:broker` pairs.

use std::collections::{BTreeMap, BTreeSet};

use strom_admin::{
    AdminError, ClusterAdmin, ConfigAdmin, ConfigChanges, ConfigResource, DescribedConfigs,
    ElectionType, KafkaError, PartitionResults, PartitionState, ReplicaAdmin, ResponseError,
    TopicPartition,
};

use super::action::Action;
use super::observed::{AdminState, PartitionView, RegisteredBroker};
use super::workload::Workload;
use crate::error::Error;

/// The broker configs holding a throttle's rate.
pub const THROTTLE_RATE_KEYS: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
/// The topic config naming the replicas that serve a throttled copy.
pub const LEADER_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
/// The topic config naming the replicas that fetch a throttled copy.
pub const FOLLOWER_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";
/// The topic config every partition's availability during a restart is judged by.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// Everything the engine asks of the Kafka admin API.
pub trait DayTwoAdmin: ClusterAdmin + ReplicaAdmin + ConfigAdmin {}

impl<T: ClusterAdmin + ReplicaAdmin + ConfigAdmin> DayTwoAdmin for T {}

fn failed(operation: &'static str) -> impl FnOnce(AdminError) -> Error {
    move |source| Error::ClusterAdmin { operation, source }
}

/// The cluster as the admin API reports it: DescribeCluster (controller, registered and
/// fenced brokers, racks), Metadata (every partition), ListPartitionReassignments,
/// DescribeLogDirs on every registered broker, each topic's effective `min.insync.replicas`
/// (DescribeConfigs, defaults included) and the cluster-wide dynamic broker defaults.
///
/// A broker that does not answer DescribeLogDirs (stopped, fenced) is left out of
/// [`AdminState::log_dirs`], which is how a plan tells it did not answer. A topic whose
/// metadata carries an error (being deleted) is left out.
pub async fn observe_admin<A: DayTwoAdmin>(admin: &A) -> Result<AdminState, Error> {
    let cluster = admin
        .describe_cluster()
        .await
        .map_err(failed("DescribeCluster"))?;
    let mut brokers: Vec<RegisteredBroker> = cluster
        .brokers
        .iter()
        .map(|b| RegisteredBroker {
            id: b.node_id,
            fenced: b.fenced,
            rack: b.rack.clone(),
        })
        .collect();
    brokers.sort_by_key(|b| b.id);

    let topics = admin
        .describe_topics_partitions(None)
        .await
        .map_err(failed("Metadata"))?;
    let reassignments = admin
        .list_partition_reassignments(None)
        .await
        .map_err(failed("ListPartitionReassignments"))?;
    let configs = topic_configs(admin, &topics, &[MIN_INSYNC_REPLICAS]).await?;

    let mut partitions = Vec::new();
    for (topic, state) in topics {
        let Ok(states) = state else { continue };
        // Kafka's default when nothing says otherwise; a topic deleted between the two
        // requests has no partitions left to judge anyway.
        let min_insync_replicas = configs
            .get(&ConfigResource::Topic(topic.clone()))
            .and_then(|c| c.as_ref().ok())
            .and_then(|c| c.get(MIN_INSYNC_REPLICAS))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1);
        for p in states {
            let partition = TopicPartition::new(topic.clone(), p.partition);
            let ongoing = reassignments.get(&partition);
            partitions.push(PartitionView {
                replicas: p.replicas,
                isr: p.isr,
                leader: p.leader,
                min_insync_replicas,
                adding: ongoing
                    .map(|r| r.adding_replicas.clone())
                    .unwrap_or_default(),
                removing: ongoing
                    .map(|r| r.removing_replicas.clone())
                    .unwrap_or_default(),
                partition,
            });
        }
    }
    partitions.sort_by(|a, b| a.partition.cmp(&b.partition));

    let mut log_dirs = BTreeMap::new();
    for broker in &brokers {
        match admin.describe_log_dirs(broker.id, None).await {
            Ok(dirs) => {
                let mut held: BTreeMap<TopicPartition, i64> = BTreeMap::new();
                for replica in dirs.into_iter().flat_map(|d| d.replicas) {
                    *held.entry(replica.partition).or_default() += replica.size_bytes;
                }
                log_dirs.insert(broker.id, held);
            }
            Err(error) => {
                tracing::debug!(broker = broker.id, %error, "DescribeLogDirs not answered");
            }
        }
    }

    // A broker that keeps no cluster-wide defaults refuses the resource: there are none.
    let dynamic_config = admin
        .describe_effective_configs(&[ConfigResource::BrokerDefault], None)
        .await
        .map_err(failed("DescribeConfigs"))?
        .remove(&ConfigResource::BrokerDefault)
        .and_then(Result::ok)
        .unwrap_or_default();

    Ok(AdminState {
        controller: cluster.controller_id,
        brokers,
        partitions,
        log_dirs,
        dynamic_config,
    })
}

/// Runs exactly one action: Scale and Restart through the workload, the others through the
/// admin API. An error leaves the cluster as the action found it or part-way; the next pass
/// observes which and plans again.
pub async fn act<W: Workload, A: DayTwoAdmin>(
    action: &Action,
    workload: &W,
    admin: &A,
) -> Result<(), Error> {
    match action {
        Action::Idle | Action::Wait => Ok(()),
        Action::Scale { replicas } => workload.scale(*replicas).await,
        Action::Restart { broker } => workload.restart(*broker).await,
        Action::Reassign { moves, throttle } => reassign(admin, moves, *throttle).await,
        Action::CancelReassignments { partitions } => {
            let cancel = partitions.iter().map(|tp| (tp.clone(), None)).collect();
            let results = admin
                .alter_partition_reassignments(&cancel)
                .await
                .map_err(failed("AlterPartitionReassignments"))?;
            // Finished before the cancel arrived: nothing is left to revert.
            refused(
                "AlterPartitionReassignments",
                results,
                &[ResponseError::NoReassignmentInProgress],
            )
        }
        Action::ElectPreferred { partitions } => {
            let results = admin
                .elect_leaders(ElectionType::Preferred, Some(partitions))
                .await
                .map_err(failed("ElectLeaders"))?;
            refused("ElectLeaders", results, &[ResponseError::ElectionNotNeeded])
        }
        Action::AlterBrokerConfigs { configs } => {
            let mut change = ConfigChanges::default();
            for (key, value) in configs {
                if value.is_empty() {
                    change.delete.insert(key.clone());
                } else {
                    change.set.insert(key.clone(), value.clone());
                }
            }
            // Cluster-wide, as `kafka-configs.sh --entity-default` sets them: per-broker values
            // stay the throttles' own.
            let changes = BTreeMap::from([(ConfigResource::BrokerDefault, change)]);
            alter(admin, &changes).await
        }
        Action::ClearThrottles => clear_throttles(admin).await,
    }
}

/// The registered brokers' ids.
async fn registered<A: DayTwoAdmin>(admin: &A) -> Result<Vec<i32>, Error> {
    let cluster = admin
        .describe_cluster()
        .await
        .map_err(failed("DescribeCluster"))?;
    Ok(cluster.brokers.iter().map(|b| b.node_id).collect())
}

async fn alter<A: DayTwoAdmin>(
    admin: &A,
    changes: &BTreeMap<ConfigResource, ConfigChanges>,
) -> Result<(), Error> {
    let results = admin
        .incremental_alter_configs(changes)
        .await
        .map_err(failed("IncrementalAlterConfigs"))?;
    let refusals: Vec<String> = results
        .iter()
        .filter_map(|(resource, result)| Some(format!("{resource}: {}", result.as_ref().err()?)))
        .collect();
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused {
            operation: "IncrementalAlterConfigs",
            message: refusals.join("; "),
        })
    }
}

/// Per-partition errors other than `benign` as one [`Error::Refused`].
fn refused(
    operation: &'static str,
    results: PartitionResults,
    benign: &[ResponseError],
) -> Result<(), Error> {
    let is_benign = |e: &KafkaError| e.kafka_error().is_some_and(|k| benign.contains(&k));
    let refusals: Vec<String> = results
        .iter()
        .filter_map(|(tp, result)| match result {
            Err(e) if !is_benign(e) => Some(format!("{tp}: {e}")),
            _ => None,
        })
        .collect();
    if refusals.is_empty() {
        Ok(())
    } else {
        Err(Error::Refused {
            operation,
            message: refusals.join("; "),
        })
    }
}

/// The throttled-replica pairs of a batch of moves, per topic: (leader side, follower side).
fn throttled_replicas(
    current: &BTreeMap<TopicPartition, Vec<i32>>,
    moves: &BTreeMap<TopicPartition, Vec<i32>>,
) -> BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> {
    let mut topics: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (tp, target) in moves {
        let existing = current.get(tp).map(Vec::as_slice).unwrap_or_default();
        let entry = topics.entry(tp.topic.clone()).or_default();
        for broker in existing {
            entry.0.insert(format!("{}:{broker}", tp.partition));
        }
        for broker in target.iter().filter(|b| !existing.contains(b)) {
            entry.1.insert(format!("{}:{broker}", tp.partition));
        }
    }
    topics
}

/// A `partition:broker` list: its pairs, `*` kept as is.
fn replica_list(value: &str) -> BTreeSet<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Starts `moves` (AlterPartitionReassignments), after setting their throttle when `throttle`
/// is given (see the module docs).
pub async fn reassign<A: DayTwoAdmin>(
    admin: &A,
    moves: &BTreeMap<TopicPartition, Vec<i32>>,
    throttle: Option<i64>,
) -> Result<(), Error> {
    if moves.is_empty() {
        return Ok(());
    }
    if let Some(rate) = throttle {
        set_throttles(admin, moves, rate).await?;
    }
    let request = moves
        .iter()
        .map(|(tp, replicas)| (tp.clone(), Some(replicas.clone())))
        .collect();
    let results = admin
        .alter_partition_reassignments(&request)
        .await
        .map_err(failed("AlterPartitionReassignments"))?;
    refused("AlterPartitionReassignments", results, &[])
}

/// Sets the rate on every broker the moves involve and adds the moves' replicas to their
/// topics' throttled-replica lists (keeping the pairs an earlier batch still in flight set).
async fn set_throttles<A: DayTwoAdmin>(
    admin: &A,
    moves: &BTreeMap<TopicPartition, Vec<i32>>,
    rate: i64,
) -> Result<(), Error> {
    let topics: Vec<&str> = moves
        .keys()
        .map(|tp| tp.topic.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let described = admin
        .describe_topics_partitions(Some(&topics))
        .await
        .map_err(failed("Metadata"))?;
    let mut current = BTreeMap::new();
    for (topic, state) in &described {
        let Ok(states) = state else { continue };
        for p in states {
            current.insert(
                TopicPartition::new(topic.clone(), p.partition),
                p.replicas.clone(),
            );
        }
    }
    let mut involved: BTreeSet<i32> = moves.values().flatten().copied().collect();
    involved.extend(
        moves
            .keys()
            .filter_map(|tp| current.get(tp))
            .flatten()
            .copied(),
    );

    let pairs = throttled_replicas(&current, moves);
    let resources: Vec<ConfigResource> = pairs
        .keys()
        .map(|t| ConfigResource::Topic(t.clone()))
        .collect();
    let existing = admin
        .describe_effective_configs(
            &resources,
            Some(&[LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS]),
        )
        .await
        .map_err(failed("DescribeConfigs"))?;

    let rate = rate.to_string();
    let mut changes: BTreeMap<ConfigResource, ConfigChanges> = involved
        .into_iter()
        .map(|id| {
            let set = THROTTLE_RATE_KEYS
                .iter()
                .map(|k| ((*k).to_owned(), rate.clone()))
                .collect();
            (
                ConfigResource::Broker(id),
                ConfigChanges {
                    set,
                    delete: BTreeSet::new(),
                },
            )
        })
        .collect();
    for (topic, (leader, follower)) in pairs {
        let resource = ConfigResource::Topic(topic);
        let configs = existing
            .get(&resource)
            .and_then(|c| c.as_ref().ok())
            .cloned()
            .unwrap_or_default();
        let mut set = BTreeMap::new();
        for (key, wanted) in [
            (LEADER_THROTTLED_REPLICAS, leader),
            (FOLLOWER_THROTTLED_REPLICAS, follower),
        ] {
            let had = replica_list(configs.get(key).map(String::as_str).unwrap_or_default());
            if had.contains("*") || wanted.is_subset(&had) {
                continue;
            }
            let joined: Vec<String> = had.union(&wanted).cloned().collect();
            set.insert(key.to_owned(), joined.join(","));
        }
        changes.insert(
            resource,
            ConfigChanges {
                set,
                delete: BTreeSet::new(),
            },
        );
    }
    alter(admin, &changes).await
}

/// The effective `keys` of every topic Metadata described without an error.
async fn topic_configs<A: DayTwoAdmin>(
    admin: &A,
    topics: &BTreeMap<String, Result<Vec<PartitionState>, KafkaError>>,
    keys: &[&str],
) -> Result<DescribedConfigs, Error> {
    let resources: Vec<ConfigResource> = topics
        .iter()
        .filter(|(_, state)| state.is_ok())
        .map(|(name, _)| ConfigResource::Topic(name.clone()))
        .collect();
    if resources.is_empty() {
        return Ok(DescribedConfigs::new());
    }
    admin
        .describe_effective_configs(&resources, Some(keys))
        .await
        .map_err(failed("DescribeConfigs"))
}

/// Removes the throttle rates from every registered broker and the throttled-replica lists
/// from every topic that has one.
pub async fn clear_throttles<A: DayTwoAdmin>(admin: &A) -> Result<(), Error> {
    let brokers = registered(admin).await?;
    let topics = admin
        .describe_topics_partitions(None)
        .await
        .map_err(failed("Metadata"))?;
    let configs = topic_configs(
        admin,
        &topics,
        &[LEADER_THROTTLED_REPLICAS, FOLLOWER_THROTTLED_REPLICAS],
    )
    .await?;
    let rates: BTreeSet<String> = THROTTLE_RATE_KEYS.iter().map(|k| (*k).to_owned()).collect();
    let mut changes: BTreeMap<ConfigResource, ConfigChanges> = brokers
        .into_iter()
        .map(|id| {
            (
                ConfigResource::Broker(id),
                ConfigChanges {
                    set: BTreeMap::new(),
                    delete: rates.clone(),
                },
            )
        })
        .collect();
    for (resource, described) in configs {
        let Ok(described) = described else { continue };
        let delete: BTreeSet<String> = described
            .into_iter()
            .filter(|(_, value)| !value.trim().is_empty())
            .map(|(key, _)| key)
            .collect();
        changes.insert(
            resource,
            ConfigChanges {
                set: BTreeMap::new(),
                delete,
            },
        );
    }
    alter(admin, &changes).await
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
