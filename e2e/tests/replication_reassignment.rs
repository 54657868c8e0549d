//! Reassignment under load, as an operator drives it through a standard admin client: a
//! partition with replication factor 3 moves from brokers {0,1,2} to {1,2,3} under a
//! replication throttle while a verified workload produces and consumes;
//! ListPartitionReassignments shows it in progress, it ends on {1,2,3} with the whole ISR, and
//! DescribeLogDirs shows broker 0 no longer holds it. A topic's replication factor goes 2 → 3
//! and back, and a reassignment cancelled midway leaves the partition where it was. The four
//! brokers are all voters, so none has to join the quorum as an observer while it forms.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, DescribeLogDirsRequest,
    IncrementalAlterConfigsRequest, ListPartitionReassignmentsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_admin::{KafkaAdmin, Target};
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::kafka::create_assigned_topic;
use strom_e2e::replicas::{await_healthy, await_partitions, fast_replication};
use strom_e2e::workload::{Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// AlterPartitionReassignments of partition 0 of `topic` to `replicas` (`None` cancels).
async fn reassign(admin: &KafkaAdmin, topic: &str, replicas: Option<&[i32]>) -> anyhow::Result<()> {
    let request = AlterPartitionReassignmentsRequest::default()
        .with_allow_replication_factor_change(true)
        .with_topics(vec![
            ReassignableTopic::default()
                .with_name(name(topic))
                .with_partitions(vec![
                    ReassignablePartition::default()
                        .with_partition_index(0)
                        .with_replicas(replicas.map(|r| r.iter().copied().map(BrokerId).collect())),
                ]),
        ]);
    let (_, response) = admin.send_to(Target::Controller, |_| request).await?;
    anyhow::ensure!(
        response.error_code == 0,
        "AlterPartitionReassignments error {}",
        response.error_code
    );
    for topic in &response.responses {
        for p in &topic.partitions {
            anyhow::ensure!(
                p.error_code == 0,
                "reassigning {}-{}: error {} {:?}",
                topic.name.as_str(),
                p.partition_index,
                p.error_code,
                p.error_message
            );
        }
    }
    Ok(())
}

/// Ongoing reassignments of partition 0 of `topic`: (replicas, adding, removing).
async fn ongoing(
    admin: &KafkaAdmin,
    topic: &str,
) -> anyhow::Result<Option<(Vec<i32>, Vec<i32>, Vec<i32>)>> {
    let (_, response) = admin
        .send_to(Target::Controller, |_| {
            ListPartitionReassignmentsRequest::default().with_topics(None)
        })
        .await?;
    anyhow::ensure!(
        response.error_code == 0,
        "ListPartitionReassignments error {}",
        response.error_code
    );
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(response
        .topics
        .iter()
        .filter(|t| t.name.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == 0)
        .map(|p| {
            (
                ids(&p.replicas),
                ids(&p.adding_replicas),
                ids(&p.removing_replicas),
            )
        }))
}

/// The bytes broker `node` holds of partition 0 of `topic` (DescribeLogDirs), `None` if none.
async fn held(admin: &KafkaAdmin, node: i32, topic: &str) -> anyhow::Result<Option<i64>> {
    let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
        DescribableLogDirTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![0]),
    ]));
    let (_, response) = admin.send_to(Target::Node(node), |_| request).await?;
    Ok(response
        .results
        .iter()
        .flat_map(|dir| &dir.topics)
        .filter(|t| t.name.as_str() == topic)
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == 0)
        .map(|p| p.partition_size))
}

/// Sets configs with IncrementalAlterConfigs on one resource (2 = topic, 4 = broker).
async fn set_configs(
    admin: &KafkaAdmin,
    resource_type: i8,
    resource: &str,
    configs: &[(&str, &str)],
) -> anyhow::Result<()> {
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(resource.to_owned()))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string((*k).to_owned()))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_string((*v).to_owned())))
                    })
                    .collect(),
            ),
    ]);
    let target = if resource_type == 4 {
        Target::Node(resource.parse()?)
    } else {
        Target::Any
    };
    let (_, response) = admin.send_to(target, |_| request).await?;
    for r in &response.responses {
        anyhow::ensure!(
            r.error_code == 0,
            "setting {configs:?} on {resource}: error {} {:?}",
            r.error_code,
            r.error_message
        );
    }
    Ok(())
}

/// Waits until every running broker shows partition 0 of `topic` on exactly `replicas` with
/// all of them in the ISR and no reassignment ongoing.
async fn await_placed(
    cluster: &Cluster,
    admin: &KafkaAdmin,
    topic: &str,
    replicas: &[i32],
) -> anyhow::Result<()> {
    let wanted: BTreeSet<i32> = replicas.iter().copied().collect();
    await_partitions(
        cluster,
        topic,
        &format!("{topic}-0 on {replicas:?} with its whole ISR"),
        DEADLINE,
        |found| {
            found.get(&0).is_some_and(|p| {
                p.replicas.iter().copied().collect::<BTreeSet<_>>() == wanted
                    && p.isr.iter().copied().collect::<BTreeSet<_>>() == wanted
            })
        },
    )
    .await?;
    eventually(
        &format!("no ongoing reassignment of {topic}-0"),
        DEADLINE,
        || async { ongoing(admin, topic).await.ok()?.is_none().then_some(()) },
    )
    .await
}

/// Waits until broker `node` no longer holds partition 0 of `topic`.
async fn await_gone(admin: &KafkaAdmin, node: i32, topic: &str) -> anyhow::Result<()> {
    eventually(
        &format!("broker {node} to drop {topic}-0"),
        DEADLINE,
        || async { held(admin, node, topic).await.ok()?.is_none().then_some(()) },
    )
    .await
}

async fn start() -> anyhow::Result<(Cluster, KafkaAdmin)> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(4, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    let admin = KafkaAdmin::connect(&cluster.bootstrap(), Duration::from_secs(10)).await?;
    Ok((cluster, admin))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_moves_under_load_with_a_throttle_and_nothing_is_lost() -> anyhow::Result<()> {
    let (cluster, admin) = start().await?;
    let topic = "moving";
    create_assigned_topic(
        &cluster.bootstrap(),
        topic,
        &[&[0, 1, 2]],
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(topic), DEADLINE).await?;
    let workload = Workload::start(
        &cluster.bootstrap(),
        WorkloadConfig::new(topic, 1).rate(1000),
    )?;
    let progress = workload.progress();
    progress.wait_for(0, 3000, DEADLINE).await?;

    // The leader's throttle counts the bytes of every throttled replica, the in-sync followers'
    // too (as Kafka's does): with ~170 KB/s of batches going to each of brokers 1 and 2, a
    // 600 KB/s throttle leaves broker 3 a little more than the new writes, so it catches up on
    // the backlog slowly enough for the move to be seen in progress.
    for id in 0..4 {
        set_configs(
            &admin,
            4,
            &id.to_string(),
            &[
                ("leader.replication.throttled.rate", "600000"),
                ("follower.replication.throttled.rate", "600000"),
            ],
        )
        .await?;
    }
    set_configs(
        &admin,
        2,
        topic,
        &[
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "*"),
        ],
    )
    .await?;
    reassign(&admin, topic, Some(&[1, 2, 3])).await?;
    let seen = eventually("the reassignment in progress", DEADLINE, || async {
        ongoing(&admin, topic).await.ok()?
    })
    .await?;
    println!(
        "in progress: replicas {:?}, adding {:?}, removing {:?}",
        seen.0, seen.1, seen.2
    );
    assert_eq!(seen.1, vec![3], "broker 3 is being added");
    assert_eq!(seen.2, vec![0], "broker 0 is being removed");
    await_placed(&cluster, &admin, topic, &[1, 2, 3]).await?;
    await_gone(&admin, 0, topic).await?;
    let size = held(&admin, 3, topic)
        .await?
        .context("broker 3 holds the partition")?;
    println!("{topic}-0 now on brokers 1, 2, 3; broker 3 holds {size} bytes, broker 0 none");
    assert!(size > 0);

    progress
        .wait_for(progress.acknowledged(), 500, DEADLINE)
        .await?;
    let report = workload.finish(&cluster.bootstrap(), DEADLINE).await?;
    println!("{report}");
    report.ensure_clean(3500)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_factor_changes_by_reassignment_and_a_cancel_restores_the_replicas()
-> anyhow::Result<()> {
    let (cluster, admin) = start().await?;
    create_assigned_topic(&cluster.bootstrap(), "rf", &[&[0, 1]], &[]).await?;
    await_healthy(&cluster, Some("rf"), DEADLINE).await?;
    reassign(&admin, "rf", Some(&[0, 1, 2])).await?;
    await_placed(&cluster, &admin, "rf", &[0, 1, 2]).await?;
    reassign(&admin, "rf", Some(&[0, 1])).await?;
    await_placed(&cluster, &admin, "rf", &[0, 1]).await?;
    await_gone(&admin, 2, "rf").await?;
    println!("rf-0: replication factor 2 -> 3 -> 2");

    // A backlog and a tight throttle keep the next move going long enough to cancel it.
    create_assigned_topic(&cluster.bootstrap(), "cancelled", &[&[0, 1, 2]], &[]).await?;
    await_healthy(&cluster, Some("cancelled"), DEADLINE).await?;
    let workload = Workload::start(
        &cluster.bootstrap(),
        WorkloadConfig::new("cancelled", 1).rate(5000),
    )?;
    workload.progress().wait_for(0, 20_000, DEADLINE).await?;
    for id in 0..4 {
        set_configs(
            &admin,
            4,
            &id.to_string(),
            &[
                ("leader.replication.throttled.rate", "10000"),
                ("follower.replication.throttled.rate", "10000"),
            ],
        )
        .await?;
    }
    set_configs(
        &admin,
        2,
        "cancelled",
        &[
            ("leader.replication.throttled.replicas", "*"),
            ("follower.replication.throttled.replicas", "*"),
        ],
    )
    .await?;
    reassign(&admin, "cancelled", Some(&[1, 2, 3])).await?;
    eventually("the reassignment in progress", DEADLINE, || async {
        ongoing(&admin, "cancelled").await.ok()?
    })
    .await?;
    let report = workload.finish(&cluster.bootstrap(), DEADLINE).await?;
    println!("{report}");
    report.ensure_clean(20_000)?;
    reassign(&admin, "cancelled", None).await?;
    await_placed(&cluster, &admin, "cancelled", &[0, 1, 2]).await?;
    await_gone(&admin, 3, "cancelled").await?;
    println!("cancelled-0: the move to 1, 2, 3 was cancelled; back on 0, 1, 2");
    Ok(())
}
