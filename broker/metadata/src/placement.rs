//! Replica placement for new partitions: Kafka's rack-unaware round-robin
//! (`AdminUtils.assignReplicasToBrokersRackUnaware`).
//!
//! The first replica (the preferred leader) of partition `p` is broker `(p + start) % n`, so
//! leaders spread evenly; the followers are shifted by an offset that grows every `n` partitions,
//! so the replicas of one broker's partitions do not all land on the same other broker.

/// Assigns `partitions` partitions, numbered from `first_partition`, `replication_factor`
/// replicas each, over `brokers` (sorted node ids). `start_index` picks the broker of the
/// first partition and seeds the follower shift (Kafka picks it at random; the controller
/// rotates it per topic).
///
/// The caller guarantees `1 <= replication_factor <= brokers.len()`.
pub fn assign_replicas(
    brokers: &[i32],
    first_partition: i32,
    partitions: i32,
    replication_factor: usize,
    start_index: usize,
) -> Vec<Vec<i32>> {
    let n = brokers.len();
    if n == 0 || replication_factor == 0 || replication_factor > n {
        return Vec::new();
    }
    let start_index = start_index % n;
    let mut next_replica_shift = start_index;
    let first_partition = first_partition.max(0);
    let mut assignment = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
    for partition in (first_partition..).take(usize::try_from(partitions).unwrap_or(0)) {
        let partition = partition as usize;
        if partition > 0 && partition.is_multiple_of(n) {
            next_replica_shift += 1;
        }
        let first = (partition + start_index) % n;
        let mut replicas = Vec::with_capacity(replication_factor);
        replicas.push(brokers[first]);
        for j in 0..replication_factor - 1 {
            let shift = 1 + (next_replica_shift + j) % (n - 1);
            replicas.push(brokers[(first + shift) % n]);
        }
        assignment.push(replicas);
    }
    assignment
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn known_assignments() {
        // (brokers, first partition, partitions, replication factor, start index, expected)
        type Case<'a> = (&'a [i32], i32, i32, usize, usize, &'a [&'a [i32]]);
        let cases: &[Case<'_>] = &[
            (&[1], 0, 2, 1, 0, &[&[1], &[1]]),
            (
                &[1, 2, 3],
                0,
                4,
                2,
                0,
                &[&[1, 2], &[2, 3], &[3, 1], &[1, 3]],
            ),
            (
                &[1, 2, 3],
                0,
                3,
                3,
                1,
                &[&[2, 1, 3], &[3, 2, 1], &[1, 3, 2]],
            ),
            // Growing a topic continues the numbering.
            (&[1, 2, 3], 3, 1, 2, 0, &[&[1, 3]]),
        ];
        for (brokers, first, count, rf, start, expect) in cases {
            let got = assign_replicas(brokers, *first, *count, *rf, *start);
            let expect: Vec<Vec<i32>> = expect.iter().map(|r| r.to_vec()).collect();
            assert_eq!(
                got, expect,
                "brokers {brokers:?} first {first} rf {rf} start {start}"
            );
        }
    }

    #[test]
    fn replicas_are_distinct_and_leaders_balanced() {
        let brokers = [0, 1, 2, 3, 4];
        for start in 0..5 {
            for rf in 1..=5 {
                let assignment = assign_replicas(&brokers, 0, 20, rf, start);
                assert_eq!(assignment.len(), 20);
                let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
                for replicas in &assignment {
                    let distinct: BTreeSet<_> = replicas.iter().collect();
                    assert_eq!(distinct.len(), rf, "{replicas:?}");
                    *leaders.entry(replicas[0]).or_default() += 1;
                }
                assert!(leaders.values().all(|&c| c == 4), "leaders {leaders:?}");
            }
        }
    }

    #[test]
    fn impossible_requests_assign_nothing() {
        assert!(assign_replicas(&[], 0, 3, 1, 0).is_empty());
        assert!(assign_replicas(&[1], 0, 3, 2, 0).is_empty());
    }
}
