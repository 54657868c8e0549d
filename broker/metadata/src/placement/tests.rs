use std::collections::BTreeMap;
use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// Brokers from `(node id, rack)` pairs.
fn brokers(list: &[(i32, Option<&str>)]) -> Vec<BrokerInfo> {
    list.iter()
        .map(|(node_id, rack)| BrokerInfo {
            node_id: *node_id,
            rack: rack.map(str::to_owned),
        })
        .collect()
}

fn without_racks(ids: &[i32]) -> Vec<BrokerInfo> {
    brokers(&ids.iter().map(|id| (*id, None)).collect::<Vec<_>>())
}

fn rack_of(brokers: &[BrokerInfo], node_id: i32) -> Option<&str> {
    brokers
        .iter()
        .find(|b| b.node_id == node_id)
        .and_then(|b| b.rack.as_deref())
}

fn leader_counts(assignment: &[Vec<i32>]) -> BTreeMap<i32, usize> {
    let mut leaders = BTreeMap::new();
    for replicas in assignment {
        *leaders.entry(replicas[0]).or_default() += 1;
    }
    leaders
}

/// Replicas per rack of one partition.
fn rack_counts<'a>(
    brokers: &'a [BrokerInfo],
    replicas: &[i32],
) -> BTreeMap<Option<&'a str>, usize> {
    let mut racks = BTreeMap::new();
    for replica in replicas {
        *racks.entry(rack_of(brokers, *replica)).or_default() += 1;
    }
    racks
}

#[test]
fn without_racks_the_assignment_is_kafkas_round_robin() {
    // (brokers, first partition, partitions, replication factor, start index, expected):
    // the figures of Kafka's rack-unaware `assignReplicasToBrokers` with a fixed start index.
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
        // Order and repetition of the input do not matter.
        (&[3, 1, 2, 1], 0, 2, 2, 0, &[&[1, 2], &[2, 3]]),
    ];
    for (ids, first, count, rf, start, expect) in cases {
        let got = assign_replicas(&without_racks(ids), *first, *count, *rf, *start);
        let expect: Vec<Vec<i32>> = expect.iter().map(|r| r.to_vec()).collect();
        assert_eq!(
            got,
            Ok(expect),
            "brokers {ids:?} first {first} rf {rf} start {start}"
        );
    }
}

#[test]
fn rack_aware_assignments() {
    let six = [
        (0, Some("a")),
        (1, Some("a")),
        (2, Some("b")),
        (3, Some("b")),
        (4, Some("c")),
        (5, Some("c")),
    ];
    // (brokers, partitions, replication factor, start index, expected)
    type Case<'a> = (
        &'a [(i32, Option<&'a str>)],
        i32,
        usize,
        usize,
        &'a [&'a [i32]],
    );
    let cases: &[Case<'_>] = &[
        // Racks alternate: the arranged list is 0, 2, 4, 1, 3, 5.
        (&six, 3, 3, 0, &[&[0, 2, 4], &[2, 4, 1], &[4, 1, 3]]),
        (&six, 2, 2, 3, &[&[1, 4], &[3, 1]]),
        // Brokers 1 and 2 share rack a: broker 1 is skipped for broker 2's partition.
        (
            &[(1, Some("a")), (2, Some("a")), (3, Some("b"))],
            3,
            2,
            0,
            &[&[1, 3], &[3, 2], &[2, 3]],
        ),
        // Without a rack is a rack of its own, listed first.
        (
            &[(1, Some("x")), (2, None), (3, None)],
            2,
            2,
            0,
            &[&[2, 1], &[1, 3]],
        ),
    ];
    for (list, count, rf, start, expect) in cases {
        let got = assign_replicas(&brokers(list), 0, *count, *rf, *start);
        let expect: Vec<Vec<i32>> = expect.iter().map(|r| r.to_vec()).collect();
        assert_eq!(got, Ok(expect), "brokers {list:?} rf {rf} start {start}");
    }
}

#[test]
fn three_racks_of_one_broker_twelve_partitions_rf3() {
    let brokers = brokers(&[(1, Some("r1")), (2, Some("r2")), (3, Some("r3"))]);
    for start in 0..3 {
        let assignment = assign_replicas(&brokers, 0, 12, 3, start).expect("placeable");
        assert_eq!(assignment.len(), 12);
        for replicas in &assignment {
            let distinct: BTreeSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3, "{replicas:?}");
            let racks: BTreeSet<_> = replicas.iter().map(|r| rack_of(&brokers, *r)).collect();
            assert_eq!(racks.len(), 3, "{replicas:?}");
        }
        assert_eq!(
            leader_counts(&assignment),
            BTreeMap::from([(1, 4), (2, 4), (3, 4)]),
            "start {start}"
        );
    }
}

#[test]
fn six_brokers_on_three_racks_put_every_replica_on_its_own_rack() {
    let brokers = brokers(&[
        (10, Some("east")),
        (11, Some("west")),
        (12, Some("north")),
        (13, Some("east")),
        (14, Some("west")),
        (15, Some("north")),
    ]);
    for start in 0..6 {
        for rf in 1..=3 {
            let assignment = assign_replicas(&brokers, 0, 12, rf, start).expect("placeable");
            for replicas in &assignment {
                let racks: BTreeSet<_> = replicas.iter().map(|r| rack_of(&brokers, *r)).collect();
                assert_eq!(racks.len(), rf, "rf {rf} start {start}: {replicas:?}");
            }
            assert!(
                leader_counts(&assignment).values().all(|&c| c == 2),
                "rf {rf} start {start}: {:?}",
                leader_counts(&assignment)
            );
            // Followers spread too: each broker holds the same number of replicas.
            let mut held: BTreeMap<i32, usize> = BTreeMap::new();
            for replica in assignment.iter().flatten() {
                *held.entry(*replica).or_default() += 1;
            }
            assert!(held.values().all(|&c| c == 2 * rf), "rf {rf}: {held:?}");
        }
    }
}

#[test]
fn fewer_racks_than_replicas_spread_the_replicas_evenly() {
    let brokers = brokers(&[
        (1, Some("a")),
        (2, Some("a")),
        (3, Some("a")),
        (4, Some("b")),
        (5, Some("b")),
        (6, Some("b")),
    ]);
    for start in 0..6 {
        let assignment = assign_replicas(&brokers, 0, 12, 4, start).expect("placeable");
        for replicas in &assignment {
            let racks = rack_counts(&brokers, replicas);
            assert_eq!(
                racks,
                BTreeMap::from([(Some("a"), 2), (Some("b"), 2)]),
                "{replicas:?}"
            );
        }
    }
}

#[test]
fn uneven_racks_still_balance_leaders_over_brokers() {
    let brokers = brokers(&[
        (1, Some("a")),
        (2, Some("a")),
        (3, Some("a")),
        (4, Some("b")),
    ]);
    let assignment = assign_replicas(&brokers, 0, 8, 2, 0).expect("placeable");
    assert!(leader_counts(&assignment).values().all(|&c| c == 2));
    for replicas in &assignment {
        assert_eq!(
            rack_counts(&brokers, replicas).len(),
            2,
            "two racks for two replicas: {replicas:?}"
        );
    }
}

#[test]
fn impossible_requests_say_why() {
    assert_eq!(
        assign_replicas(&[], 0, 3, 1, 0),
        Err(PlacementError::TooFewBrokers {
            replication_factor: 1,
            brokers: 0
        })
    );
    let one = without_racks(&[1]);
    let too_few = assign_replicas(&one, 0, 3, 2, 0).expect_err("one broker");
    assert_eq!(
        too_few.to_string(),
        "The target replication factor of 2 cannot be reached because only 1 broker(s) are \
         registered."
    );
    assert_eq!(
        assign_replicas(&one, 0, 3, 0, 0),
        Err(PlacementError::ZeroReplicationFactor)
    );
}

#[test]
fn start_index_of_finds_the_leader_in_the_placement_order() {
    let brokers = brokers(&[
        (0, Some("a")),
        (1, Some("a")),
        (2, Some("b")),
        (3, Some("b")),
    ]);
    for leader in 0..4 {
        let start = start_index_of(&brokers, leader).expect("listed");
        let assignment = assign_replicas(&brokers, 0, 1, 2, start).expect("placeable");
        assert_eq!(assignment[0][0], leader);
    }
    assert_eq!(start_index_of(&brokers, 9), None);
}

fn racked_brokers() -> impl Strategy<Value = Vec<BrokerInfo>> {
    prop::collection::btree_map(0i32..40, prop::option::of(0u8..4), 1..10).prop_map(|map| {
        map.into_iter()
            .map(|(node_id, rack)| BrokerInfo {
                node_id,
                rack: rack.map(|r| format!("rack-{r}")),
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn placements_keep_their_invariants(
        brokers in racked_brokers(),
        rf_pick in any::<prop::sample::Index>(),
        first in 0i32..30,
        count in 1i32..40,
        start in any::<usize>(),
    ) {
        let rf = rf_pick.index(brokers.len()) + 1;
        let assignment = assign_replicas(&brokers, first, count, rf, start).expect("placeable");
        prop_assert_eq!(assignment.len(), count as usize);
        let ids: BTreeSet<i32> = brokers.iter().map(|b| b.node_id).collect();
        for replicas in &assignment {
            prop_assert_eq!(replicas.len(), rf);
            let distinct: BTreeSet<i32> = replicas.iter().copied().collect();
            prop_assert_eq!(distinct.len(), rf, "no broker twice: {:?}", replicas);
            prop_assert!(distinct.is_subset(&ids));
            // As even over racks as the brokers allow: no rack holds more than one replica
            // above a rack that still has a broker without one.
            let racks = rack_counts(&brokers, replicas);
            for broker in brokers.iter().filter(|b| !distinct.contains(&b.node_id)) {
                let spare = racks.get(&broker.rack.as_deref()).copied().unwrap_or(0);
                for (rack, held) in &racks {
                    prop_assert!(
                        *held <= spare + 1,
                        "{:?} holds {} while {:?} has free broker {}: {:?}",
                        rack, held, broker.rack, broker.node_id, replicas
                    );
                }
            }
        }
        // Leaders: every broker leads as many partitions as any other, give or take one.
        let leaders = leader_counts(&assignment);
        let most = ids.iter().map(|id| leaders.get(id).copied().unwrap_or(0)).max();
        let fewest = ids.iter().map(|id| leaders.get(id).copied().unwrap_or(0)).min();
        prop_assert!(most.zip(fewest).is_some_and(|(m, f)| m - f <= 1), "{:?}", leaders);
    }
}
