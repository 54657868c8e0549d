//! Replica placement for new partitions: Kafka's rack-aware round-robin
//! (`AdminUtils.assignReplicasToBrokersRackAware`), which is its rack-unaware round-robin when
//! no broker has a rack.
//!
//! The brokers are first arranged so that racks alternate (`a0, b0, c0, a1, b1, c1, ...`, racks
//! and the brokers of a rack in sorted order). The first replica (the preferred leader) of
//! partition `p` is the arranged broker `(p + start) % n`, so every broker leads the same number
//! of partitions (give or take one) whatever the sizes of the racks. The followers are taken
//! walking the arranged list from the leader, shifted by an offset that grows every `n`
//! partitions so one broker's partitions do not all follow on the same other brokers. A
//! candidate is skipped while another rack holds fewer replicas of the partition and still has
//! a free broker: with at least as many racks as replicas, every replica is on its own rack;
//! with fewer racks, the replicas are spread over the racks as evenly as possible.
//!
//! Brokers without a rack form one rack of their own, as in KRaft's `StripedReplicaPlacer`
//! (which groups them under the empty rack). The ZooKeeper-era `AdminUtils` refused a mix of
//! brokers with and without racks; KRaft, whose behaviour Strom follows, does not.

use std::collections::BTreeMap;

use thiserror::Error;

/// A broker replicas may be placed on, with its rack (Kafka's `broker.rack`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub rack: Option<String>,
}

/// Why replicas could not be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PlacementError {
    #[error("Invalid replication factor 0: the replication factor must be positive.")]
    ZeroReplicationFactor,
    /// Kafka's wording (`StripedReplicaPlacer`).
    #[error(
        "The target replication factor of {replication_factor} cannot be reached because only \
         {brokers} broker(s) are registered."
    )]
    TooFewBrokers {
        replication_factor: usize,
        brokers: usize,
    },
}

/// Assigns `partitions` partitions, numbered from `first_partition`, `replication_factor`
/// replicas each, over `brokers` (in any order; a node id listed twice counts once).
/// `start_index` picks the broker that leads the first partition and seeds the follower shift
/// (Kafka picks it at random; the controller rotates it per topic). Returns the replicas of each
/// partition, preferred leader first.
pub fn assign_replicas(
    brokers: &[BrokerInfo],
    first_partition: i32,
    partitions: i32,
    replication_factor: usize,
    start_index: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if replication_factor == 0 {
        return Err(PlacementError::ZeroReplicationFactor);
    }
    let arranged = rack_alternated(brokers);
    let n = arranged.len();
    if replication_factor > n {
        return Err(PlacementError::TooFewBrokers {
            replication_factor,
            brokers: n,
        });
    }
    let racks = rack_count(&arranged);
    let start_index = start_index % n;
    let first_partition = usize::try_from(first_partition).unwrap_or(0);
    let partitions = usize::try_from(partitions).unwrap_or(0);
    let assignment = (first_partition..first_partition + partitions)
        .map(|partition| {
            let leader = (partition + start_index) % n;
            // Grows by one every `n` partitions, scaled by the rack count as in Kafka's
            // rack-aware assignment.
            let shift = (start_index + partition / n) * racks;
            place_partition(&arranged, leader, shift, replication_factor)
        })
        .collect();
    Ok(assignment)
}

/// The `start_index` under which [`assign_replicas`] leads partition 0 on `leader`: growing a
/// topic with it continues the topic's rotation of leaders. `None` when `leader` is not among
/// `brokers`.
pub fn start_index_of(brokers: &[BrokerInfo], leader: i32) -> Option<usize> {
    rack_alternated(brokers)
        .iter()
        .position(|b| b.node_id == leader)
}

/// The replicas of one partition led by `arranged[leader]`.
fn place_partition(
    arranged: &[&BrokerInfo],
    leader: usize,
    shift: usize,
    replication_factor: usize,
) -> Vec<i32> {
    let n = arranged.len();
    let mut chosen = vec![false; n];
    chosen[leader] = true;
    let mut replicas = Vec::with_capacity(replication_factor);
    replicas.push(arranged[leader].node_id);
    // Replicas per rack, and brokers per rack not yet holding a replica.
    let mut placed: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    let mut free: BTreeMap<Option<&str>, usize> = BTreeMap::new();
    for broker in arranged {
        *free.entry(broker.rack.as_deref()).or_default() += 1;
    }
    let take = |placed: &mut BTreeMap<_, usize>, free: &mut BTreeMap<_, usize>, rack| {
        *placed.entry(rack).or_default() += 1;
        if let Some(count) = free.get_mut(&rack) {
            *count -= 1;
        }
    };
    take(&mut placed, &mut free, arranged[leader].rack.as_deref());
    // Candidate `k` of the walk; `k` runs on across followers, as in Kafka. Any `n - 1`
    // consecutive candidates are all the brokers but the leader.
    let candidate = |k: usize| (leader + 1 + (shift + k) % (n - 1).max(1)) % n;
    let mut k = 0;
    while replicas.len() < replication_factor {
        // The fewest replicas on any rack that still has a free broker: a candidate on a rack
        // holding more waits, so racks fill evenly.
        let fewest = free
            .iter()
            .filter(|(_, free)| **free > 0)
            .map(|(rack, _)| placed.get(rack).copied().unwrap_or(0))
            .min();
        let Some(fewest) = fewest else { break };
        let found = (0..n - 1).map(|step| candidate(k + step)).position(|i| {
            let rack = arranged[i].rack.as_deref();
            !chosen[i] && placed.get(&rack).copied().unwrap_or(0) == fewest
        });
        let Some(step) = found else { break };
        let i = candidate(k + step);
        k += step + 1;
        chosen[i] = true;
        replicas.push(arranged[i].node_id);
        take(&mut placed, &mut free, arranged[i].rack.as_deref());
    }
    replicas
}

/// The brokers, one per node id, ordered so that racks alternate: the first broker of each
/// rack, then the second of each, and so on (racks sorted, no rack first, brokers of a rack by
/// node id).
fn rack_alternated(brokers: &[BrokerInfo]) -> Vec<&BrokerInfo> {
    let mut by_id: BTreeMap<i32, &BrokerInfo> = BTreeMap::new();
    for broker in brokers {
        by_id.entry(broker.node_id).or_insert(broker);
    }
    let mut by_rack: BTreeMap<Option<&str>, Vec<&BrokerInfo>> = BTreeMap::new();
    for broker in by_id.into_values() {
        by_rack
            .entry(broker.rack.as_deref())
            .or_default()
            .push(broker);
    }
    let deepest = by_rack.values().map(Vec::len).max().unwrap_or(0);
    (0..deepest)
        .flat_map(|round| by_rack.values().filter_map(move |rack| rack.get(round)))
        .copied()
        .collect()
}

fn rack_count(brokers: &[&BrokerInfo]) -> usize {
    let mut racks: Vec<Option<&str>> = brokers.iter().map(|b| b.rack.as_deref()).collect();
    racks.sort_unstable();
    racks.dedup();
    racks.len()
}

#[cfg(test)]
mod tests;
