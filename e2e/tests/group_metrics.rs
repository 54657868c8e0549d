//! Lag series follow the groups: a group's committed offset and lag appear on `/metrics` once it
//! commits, and disappear once the group is deleted, so dashboards never show a deleted group.

use std::time::Duration;

use rdkafka::admin::AdminOptions;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::kafka::{admin, create_topic, producer};
use strom_e2e::observability::http_get;
use strom_e2e::{BrokerOptions, BrokerProcess};

fn lag_lines(broker: &BrokerProcess, group: &str) -> anyhow::Result<Vec<String>> {
    let metrics = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    Ok(metrics
        .lines()
        .filter(|l| {
            l.starts_with("kafka_consumergroup_lag{")
                && l.contains(&format!("consumergroup=\"{group}\""))
        })
        .map(str::to_string)
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_series_appear_with_commits_and_go_with_the_group() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "lagging", 1, &[]).await?;
    let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
    for i in 0..10 {
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("lagging").payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }

    {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", "short-lived")
            .set("enable.auto.commit", "false")
            .create()?;
        let mut offsets = TopicPartitionList::new();
        offsets.add_partition_offset("lagging", 0, Offset::Offset(4))?;
        consumer.commit(&offsets, CommitMode::Sync)?;
    }
    let lines = lag_lines(&broker, "short-lived")?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(" 6"), "lag = 10 - 4: {lines:?}");

    let deleted = admin(&broker.bootstrap())?
        .delete_groups(&["short-lived"], &AdminOptions::new())
        .await?;
    assert!(deleted.iter().all(Result::is_ok), "{deleted:?}");
    let lines = lag_lines(&broker, "short-lived")?;
    assert!(
        lines.is_empty(),
        "a deleted group has no lag series: {lines:?}"
    );
    Ok(())
}
