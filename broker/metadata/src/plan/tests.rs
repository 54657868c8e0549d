use std::collections::BTreeMap;
use std::collections::BTreeSet;

use super::*;

fn image_with_brokers(brokers: &[i32]) -> MetadataImage {
    image_with_racks(&brokers.iter().map(|id| (*id, None)).collect::<Vec<_>>())
}

fn image_with_racks(brokers: &[(i32, Option<&str>)]) -> MetadataImage {
    brokers
        .iter()
        .fold(MetadataImage::empty("c"), |image, (id, rack)| {
            image.apply(&MetadataRecord::RegisterBroker {
                node_id: *id,
                host: "h".into(),
                port: 9092,
                rack: rack.map(str::to_owned),
                incarnation: Uuid::new_v4(),
                fenced: false,
            })
        })
}

fn create(name: &str, partitions: i32, rf: i16) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.into(),
        num_partitions: Some(partitions),
        replication_factor: Some(rf),
        ..Default::default()
    }
}

fn manual(name: &str, assignment: &[(i32, &[i32])]) -> CreateTopicRequest {
    CreateTopicRequest {
        name: name.into(),
        assignments: Some(assignment.iter().map(|(p, r)| (*p, r.to_vec())).collect()),
        ..Default::default()
    }
}

/// The (partition, replicas, isr, leader) of each partition record.
fn partitions(records: &[MetadataRecord]) -> Vec<(i32, Vec<i32>, Vec<i32>, i32)> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition {
                partition,
                replicas,
                isr,
                leader,
                ..
            } => Some((*partition, replicas.clone(), isr.clone(), *leader)),
            _ => None,
        })
        .collect()
}

fn refusal<T: std::fmt::Debug>(result: Result<T, ControllerError>) -> (i16, String) {
    let error = result.expect_err("refused");
    (error.kafka_error_code(), error.to_string())
}

#[test]
fn three_brokers_on_three_racks_twelve_partitions_rf3() {
    let image = image_with_racks(&[(1, Some("r1")), (2, Some("r2")), (3, Some("r3"))]);
    for start in 0..3 {
        let (records, created) =
            plan_topic(&image, &create("t", 12, 3), TopicDefaults::default(), start)
                .expect("valid");
        assert_eq!(
            (created.num_partitions, created.replication_factor),
            (12, 3)
        );
        let planned = partitions(&records);
        assert_eq!(
            planned.iter().map(|p| p.0).collect::<Vec<_>>(),
            (0..12).collect::<Vec<_>>()
        );
        let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
        for (partition, replicas, isr, leader) in &planned {
            let racks: BTreeSet<_> = replicas
                .iter()
                .filter_map(|r| image.broker(*r))
                .map(|b| b.rack.clone())
                .collect();
            assert_eq!(racks.len(), 3, "partition {partition}: {replicas:?}");
            assert_eq!(isr, replicas, "every replica of a new partition is in sync");
            assert_eq!(*leader, replicas[0]);
            *leaders.entry(*leader).or_default() += 1;
        }
        assert_eq!(leaders, BTreeMap::from([(1, 4), (2, 4), (3, 4)]));
    }
}

#[test]
fn successive_topics_lead_on_successive_brokers() {
    let image = image_with_brokers(&[1, 2, 3]);
    let leaders: Vec<i32> = (0..3)
        .map(|start| {
            let (records, _) =
                plan_topic(&image, &create("t", 1, 1), TopicDefaults::default(), start)
                    .expect("valid");
            partitions(&records)[0].3
        })
        .collect();
    assert_eq!(leaders, vec![1, 2, 3]);
}

#[test]
fn too_few_brokers_say_how_many_are_registered() {
    let image = image_with_brokers(&[1]);
    let refused = refusal(plan_topic(
        &image,
        &create("t", 1, 3),
        TopicDefaults::default(),
        0,
    ));
    assert_eq!(
        refused,
        (
            38,
            "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
             cannot be reached because only 1 broker(s) are registered."
                .to_owned()
        )
    );
    // Brokers that are registered but may not take new replicas are counted apart.
    assert_eq!(
        replication_factor_error("t", 3, 1, 3).to_string(),
        "Unable to replicate the partition 3 time(s): The target replication factor of 3 \
         cannot be reached because only 1 broker(s) are registered and unfenced (2 more are \
         fenced)."
    );
}

#[test]
fn manual_assignments_are_taken_as_given_in_partition_order() {
    let image = image_with_brokers(&[1, 2, 3]);
    let request = manual("t", &[(1, &[3, 1]), (0, &[2, 3]), (2, &[1, 2])]);
    let (records, created) =
        plan_topic(&image, &request, TopicDefaults::default(), 0).expect("valid");
    assert_eq!((created.num_partitions, created.replication_factor), (3, 2));
    assert_eq!(
        partitions(&records),
        vec![
            (0, vec![2, 3], vec![2, 3], 2),
            (1, vec![3, 1], vec![3, 1], 3),
            (2, vec![1, 2], vec![1, 2], 1),
        ]
    );
}

#[test]
fn manual_assignments_keep_fenced_replicas_out_of_the_isr_and_the_lead() {
    let registered = image_with_brokers(&[1, 2, 3]);
    let image = registered.apply(&MetadataRecord::BrokerChange {
        node_id: 3,
        incarnation: registered
            .broker(3)
            .map_or_else(Uuid::nil, |b| b.incarnation),
        fenced: Some(true),
        in_controlled_shutdown: None,
    });
    let request = manual("t", &[(0, &[3, 1, 2])]);
    let (records, _) = plan_topic(&image, &request, TopicDefaults::default(), 0).expect("valid");
    assert_eq!(
        partitions(&records),
        vec![(0, vec![3, 1, 2], vec![1, 2], 1)]
    );
}

#[test]
fn invalid_manual_assignments_are_refused_with_a_reason() {
    let image = image_with_brokers(&[1, 2, 3]);
    // (assignment, error code, words the message must contain)
    type Case<'a> = (&'a [(i32, &'a [i32])], i16, &'a str);
    let cases: &[Case<'_>] = &[
        (
            &[(0, &[1]), (2, &[2])],
            39,
            "lists partition 2, but partitions must be numbered consecutively from 0",
        ),
        (&[(1, &[1])], 39, "lists partition 1"),
        (&[(-1, &[1]), (0, &[2])], 39, "lists partition -1"),
        (
            &[(0, &[1]), (0, &[2])],
            39,
            "multiple manual partition assignments for partition 0",
        ),
        (
            &[(0, &[1, 1])],
            39,
            "partition 0 includes broker 1 more than once",
        ),
        (
            &[(0, &[1]), (1, &[9])],
            39,
            "partition 1 includes broker 9, but no such broker is registered",
        ),
        (&[(0, &[])], 39, "partition 0 is an empty replica list"),
        (
            &[(0, &[1, 2]), (1, &[2])],
            39,
            "partition (1) with 1 replica(s), but this is not consistent with previous \
             partitions, which have 2 replica(s)",
        ),
    ];
    for (assignment, code, words) in cases {
        let (got_code, message) = refusal(plan_topic(
            &image,
            &manual("t", assignment),
            TopicDefaults::default(),
            0,
        ));
        assert_eq!(got_code, *code, "{assignment:?}: {message}");
        assert!(message.contains(words), "{assignment:?}: {message}");
    }
    let both = CreateTopicRequest {
        num_partitions: Some(1),
        ..manual("t", &[(0, &[1])])
    };
    assert_eq!(
        refusal(plan_topic(&image, &both, TopicDefaults::default(), 0)).0,
        42
    );
}

#[test]
fn new_partitions_keep_replicas_on_distinct_racks() {
    let image = image_with_racks(&[
        (1, Some("a")),
        (2, Some("b")),
        (3, Some("c")),
        (4, Some("a")),
        (5, Some("b")),
        (6, Some("c")),
    ]);
    let (records, _) =
        plan_topic(&image, &create("t", 2, 3), TopicDefaults::default(), 4).expect("valid");
    let image = image.apply_batch(1, &records);
    let grown = plan_partitions(&image, "t", 14, None).expect("valid");
    let planned = partitions(&grown);
    assert_eq!(
        planned.iter().map(|p| p.0).collect::<Vec<_>>(),
        (2..14).collect::<Vec<_>>()
    );
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for (partition, replicas, _, leader) in &planned {
        let racks: BTreeSet<_> = replicas
            .iter()
            .filter_map(|r| image.broker(*r))
            .map(|b| b.rack.clone())
            .collect();
        assert_eq!(racks.len(), 3, "partition {partition}: {replicas:?}");
        *leaders.entry(*leader).or_default() += 1;
    }
    assert!(leaders.values().all(|&c| c == 2), "{leaders:?}");
}

#[test]
fn invalid_manual_partitions_are_refused_with_a_reason() {
    let image = image_with_brokers(&[1, 2, 3]);
    let (records, _) =
        plan_topic(&image, &create("t", 2, 2), TopicDefaults::default(), 0).expect("valid");
    let image = image.apply_batch(1, &records);
    // (new total, assignments of the new partitions, error code, words the message contains)
    type Case<'a> = (i32, &'a [&'a [i32]], i16, &'a str);
    let cases: &[Case<'_>] = &[
        (
            4,
            &[&[1, 2]],
            39,
            "add 2 additional partition(s), but 1 assignment(s)",
        ),
        (
            3,
            &[&[1, 2], &[2, 3]],
            39,
            "add 1 additional partition(s), but 2 assignment(s)",
        ),
        (3, &[&[1]], 39, "partition (2) with 1 replica(s)"),
        (
            3,
            &[&[1, 7]],
            39,
            "partition 2 includes broker 7, but no such broker",
        ),
        (
            4,
            &[&[1, 2], &[3, 3]],
            39,
            "partition 3 includes broker 3 more than once",
        ),
    ];
    for (count, assignment, code, words) in cases {
        let assignment: Vec<Vec<i32>> = assignment.iter().map(|r| r.to_vec()).collect();
        let (got_code, message) = refusal(plan_partitions(&image, "t", *count, Some(&assignment)));
        assert_eq!(got_code, *code, "{assignment:?}: {message}");
        assert!(message.contains(words), "{assignment:?}: {message}");
    }
    let valid = plan_partitions(&image, "t", 4, Some(&[vec![3, 1], vec![2, 3]])).expect("valid");
    assert_eq!(
        partitions(&valid),
        vec![
            (2, vec![3, 1], vec![3, 1], 3),
            (3, vec![2, 3], vec![2, 3], 2)
        ]
    );
}

#[test]
fn a_planned_topic_is_one_self_contained_batch() {
    let image = image_with_brokers(&[1, 2]);
    let request = CreateTopicRequest {
        name: "t".into(),
        num_partitions: Some(3),
        replication_factor: Some(2),
        configs: BTreeMap::from([("retention.ms".to_owned(), "1".to_owned())]),
        ..Default::default()
    };
    let (records, created) =
        plan_topic(&image, &request, TopicDefaults::default(), 0).expect("valid");
    // Topic first, then its partitions, then its configs: applying the batch in order
    // yields the whole topic at once.
    assert!(matches!(records[0], MetadataRecord::Topic { .. }));
    assert!(
        records[1..4]
            .iter()
            .all(|r| matches!(r, MetadataRecord::Partition { .. }))
    );
    assert!(matches!(records[4], MetadataRecord::Config { .. }));
    assert_eq!(records.len(), 5);
    let applied = image.apply_batch(1, &records);
    let topic = applied.topic("t").expect("created");
    assert_eq!(topic.topic_id, created.topic_id);
    assert_eq!(topic.partitions.len(), 3);
    assert_eq!(topic.configs.len(), 1);
}

#[test]
fn new_partitions_continue_the_topic_placement() {
    let image = image_with_brokers(&[1, 2, 3]);
    let request = CreateTopicRequest {
        name: "t".into(),
        num_partitions: Some(3),
        replication_factor: Some(1),
        ..Default::default()
    };
    let (records, _) = plan_topic(&image, &request, TopicDefaults::default(), 1).expect("valid");
    let image = image.apply_batch(1, &records);
    let leaders = |image: &MetadataImage| -> Vec<i32> {
        image
            .topic("t")
            .map(|t| t.partitions.values().map(|p| p.leader).collect())
            .unwrap_or_default()
    };
    assert_eq!(leaders(&image), vec![2, 3, 1]);
    let grown = plan_partitions(&image, "t", 6, None).expect("valid");
    let image = image.apply_batch(2, &grown);
    assert_eq!(leaders(&image), vec![2, 3, 1, 2, 3, 1]);
}
