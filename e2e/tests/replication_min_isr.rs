//! Below `min.insync.replicas`: with two of a partition's three replicas down, `acks=all` is
//! refused with NOT_ENOUGH_REPLICAS and nothing is appended, `acks=1` still works on the
//! surviving leader, and after the restarts the ISR is whole and under-replicated partitions
//! return to 0 on every broker.
//!
//! The metadata quorum must outlive the two crashes, so the cluster has five voters and the
//! topic's replicas are {0, 3, 4}: killing 3 and 4 leaves the partitions one replica and the
//! quorum its majority (3 of 5).

use std::time::Duration;

use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use strom_e2e::cluster::{Cluster, metric};
use strom_e2e::kafka::{assigned_consumer, by_partition, consume, create_assigned_topic, producer};
use strom_e2e::replicas::{
    UNDER_REPLICATED, await_healthy, await_partitions, fast_replication, partitions_in,
};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "min-isr";

/// Sends `count` records to each partition; returns the outcome of every send.
async fn send_all(
    bootstrap: &str,
    acks: &str,
    count: usize,
) -> anyhow::Result<Vec<Result<(i32, i64), KafkaError>>> {
    // No retries: the broker's first answer is the outcome.
    let producer = producer(
        bootstrap,
        &[
            ("acks", acks),
            ("enable.idempotence", "false"),
            ("retries", "0"),
            ("message.timeout.ms", "10000"),
        ],
    )?;
    let mut outcomes = Vec::new();
    for partition in 0..3 {
        for i in 0..count {
            let payload = format!("acks={acks} partition={partition} record={i}");
            let delivery = producer
                .send_result(
                    FutureRecord::<(), _>::to(TOPIC)
                        .partition(partition)
                        .payload(&payload),
                )
                .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
            outcomes.push(match delivery.await? {
                Ok(d) => Ok((d.partition, d.offset)),
                Err((e, _)) => Err(e),
            });
        }
    }
    Ok(outcomes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_min_isr_acks_all_is_refused_and_acks_one_still_works() -> anyhow::Result<()> {
    let mut cluster =
        tokio::task::spawn_blocking(|| Cluster::start(5, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_assigned_topic(
        &cluster.bootstrap(),
        TOPIC,
        &[&[0, 3, 4], &[3, 4, 0], &[4, 0, 3]],
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let before = send_all(&cluster.bootstrap(), "all", 10).await?;
    assert!(
        before.iter().all(Result::is_ok),
        "acks=all works with every replica up: {before:?}"
    );

    cluster.broker_mut(3).kill9();
    cluster.broker_mut(4).kill9();
    let alone = await_partitions(
        &cluster,
        TOPIC,
        "broker 0 to lead every partition with an ISR of itself",
        DEADLINE,
        |found| found.len() == 3 && found.values().all(|p| p.leader == 0 && p.isr == vec![0]),
    )
    .await?;
    println!("brokers 3 and 4 down: {alone:?}");
    let watermarks = |consumer: &rdkafka::consumer::BaseConsumer| -> anyhow::Result<Vec<i64>> {
        use rdkafka::consumer::Consumer;
        (0..3)
            .map(|p| {
                Ok(consumer
                    .fetch_watermarks(TOPIC, p, Duration::from_secs(5))?
                    .1)
            })
            .collect()
    };
    let survivor = cluster.broker(0).bootstrap();
    let reader = assigned_consumer(&survivor, TOPIC, 3)?;
    let ends_before = tokio::task::block_in_place(|| watermarks(&reader))?;

    let refused = send_all(&survivor, "all", 5).await?;
    println!("acks=all with one in-sync replica: {refused:?}");
    for outcome in &refused {
        match outcome {
            Err(e) => assert_eq!(
                e.rdkafka_error_code(),
                Some(RDKafkaErrorCode::NotEnoughReplicas),
                "acks=all is refused with NOT_ENOUGH_REPLICAS: {e}"
            ),
            Ok(at) => panic!("acks=all was acknowledged at {at:?} with one in-sync replica"),
        }
    }
    let ends_after = tokio::task::block_in_place(|| watermarks(&reader))?;
    assert_eq!(
        ends_after, ends_before,
        "nothing refused reached the log: high watermarks unchanged"
    );

    let written = send_all(&survivor, "1", 5).await?;
    let offsets: Vec<(i32, i64)> = written
        .iter()
        .map(|o| {
            o.clone()
                .map_err(|e| anyhow::anyhow!("acks=1 on the leader: {e}"))
        })
        .collect::<anyhow::Result<_>>()?;
    assert_eq!(offsets.len(), 15);
    let records = by_partition(tokio::task::block_in_place(|| {
        consume(&reader, 30 + 15, DEADLINE)
    })?);
    for partition in 0..3 {
        let values: Vec<String> = records[&partition]
            .iter()
            .filter_map(|m| Some(String::from_utf8_lossy(m.payload()?).into_owned()))
            .collect();
        let expected: Vec<String> = (0..10)
            .map(|i| format!("acks=all partition={partition} record={i}"))
            .chain((0..5).map(|i| format!("acks=1 partition={partition} record={i}")))
            .collect();
        assert_eq!(
            values, expected,
            "partition {partition} holds what was acknowledged"
        );
    }

    for id in [3, 4] {
        tokio::task::block_in_place(|| cluster.broker_mut(id).restart())?;
    }
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let whole = partitions_in(&cluster, TOPIC).await?;
    println!("after the restarts: {whole:?}");
    for id in cluster.running() {
        assert_eq!(
            metric(cluster.broker(id), UNDER_REPLICATED)?,
            0.0,
            "broker {id} reports no under-replicated partition"
        );
    }
    let again = send_all(&cluster.bootstrap(), "all", 2).await?;
    assert!(
        again.iter().all(Result::is_ok),
        "acks=all works again: {again:?}"
    );
    Ok(())
}
