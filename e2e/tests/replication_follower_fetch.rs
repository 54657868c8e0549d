//! Fetch from the closest replica (KIP-392): with the rack-aware selector on, a consumer that
//! names its rack (`client.rack`) is sent by the leader to the in-sync replica of that rack,
//! reads every record from it, and the leader serves it no record bytes.

use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::cluster::Cluster;
use strom_e2e::kafka::{base_config, consume, create_assigned_topic, producer};
use strom_e2e::replicas::{await_healthy, fast_replication, labelled_metric};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "near";
const SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_reads_from_the_replica_in_its_rack() -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(|| {
        Cluster::start(3, 0, |id, options| {
            fast_replication(id, options)
                .with("broker.rack", &format!("rack-{id}"))
                .with("replica.selector.class", SELECTOR)
        })
    })
    .await??;
    cluster.await_controller(DEADLINE).await?;
    // Broker 0 leads; broker 2 is the replica in the consumer's rack.
    create_assigned_topic(&cluster.bootstrap(), TOPIC, &[&[0, 1, 2]], &[]).await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;

    let producer = producer(&cluster.bootstrap(), &[("acks", "all")])?;
    let sent: Vec<String> = (0..200).map(|i| format!("near-{i:03}")).collect();
    for value in &sent {
        producer
            .send(
                FutureRecord::<(), _>::to(TOPIC).partition(0).payload(value),
                Timeout::After(DEADLINE),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
    }

    let mut config = base_config(&cluster.bootstrap());
    config
        .set("group.id", "near-readers")
        .set("client.rack", "rack-2")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(TOPIC, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let read = tokio::task::block_in_place(|| consume(&consumer, sent.len(), DEADLINE))?;
    let read: Vec<String> = read
        .iter()
        .filter_map(|m| Some(String::from_utf8_lossy(m.payload()?).into_owned()))
        .collect();
    assert_eq!(
        read, sent,
        "every record once, in order, from the rack's replica"
    );

    let served = |id: usize| {
        labelled_metric(
            cluster.broker(id),
            "kafka_server_brokertopicmetrics_bytesout_total",
            &[("topic", TOPIC)],
        )
        .unwrap_or(0.0)
    };
    println!(
        "record bytes served to the consumer: leader 0 {}, broker 1 {}, broker 2 {}",
        served(0),
        served(1),
        served(2)
    );
    assert!(served(2) > 0.0, "the replica in rack-2 served the records");
    assert_eq!(served(0), 0.0, "the leader only pointed the consumer away");
    assert_eq!(served(1), 0.0, "the replica of another rack served nothing");
    Ok(())
}
