//! The operator's admin client (`strom-admin`) against a real `strom-broker` process: the topic
//! lifecycle the topic reconciler drives, through the standard Kafka admin API only.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, ensure};
use strom_admin::{AdminError, BrokerAdmin, KafkaAdmin, ResponseError};
use strom_e2e::{BrokerOptions, BrokerProcess};

const TIMEOUT: Duration = Duration::from_secs(15);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("building the tokio runtime")
}

fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn topic_lifecycle_through_the_admin_api() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    runtime()?.block_on(async {
        let admin = KafkaAdmin::connect(&bootstrap, TIMEOUT)
            .await
            .context("connecting the admin client")?;

        ensure!(
            admin.describe_topic("orders").await?.is_none(),
            "a topic that was never created must describe as None"
        );

        let wanted = configs(&[("retention.ms", "86400000"), ("segment.bytes", "1048576")]);
        let topic_id = admin
            .create_topic("orders", 3, 1, &wanted)
            .await
            .context("CreateTopics")?;
        ensure!(!topic_id.is_empty(), "CreateTopics returned no topic id");

        let observed = admin
            .describe_topic("orders")
            .await
            .context("describe after create")?
            .context("the created topic is missing")?;
        assert_eq!(observed.name, "orders");
        assert_eq!(observed.topic_id, topic_id);
        assert_eq!(observed.partitions, 3);
        assert_eq!(observed.replication_factor, 1);
        // Only what was set on the topic: broker defaults stay out.
        assert_eq!(observed.configs, wanted);

        let err = admin
            .create_topic("orders", 3, 1, &wanted)
            .await
            .expect_err("creating an existing topic must fail");
        assert_eq!(
            err.kafka_error(),
            Some(ResponseError::TopicAlreadyExists),
            "{err}"
        );

        admin
            .create_partitions("orders", 5)
            .await
            .context("CreatePartitions")?;
        let observed = admin
            .describe_topic("orders")
            .await?
            .context("topic missing")?;
        assert_eq!(observed.partitions, 5);
        assert_eq!(
            observed.topic_id, topic_id,
            "growing must keep the topic id"
        );

        let err = admin
            .create_partitions("orders", 2)
            .await
            .expect_err("Kafka never shrinks a topic");
        assert_eq!(
            err.kafka_error(),
            Some(ResponseError::InvalidPartitions),
            "{err}"
        );

        let set = configs(&[
            ("retention.ms", "3600000"),
            ("max.message.bytes", "2097152"),
        ]);
        let delete = BTreeSet::from(["segment.bytes".to_owned()]);
        admin
            .alter_topic_configs("orders", &set, &delete)
            .await
            .context("IncrementalAlterConfigs")?;
        let observed = admin
            .describe_topic("orders")
            .await?
            .context("topic missing")?;
        assert_eq!(observed.configs, set);
        assert_eq!(observed.partitions, 5);

        admin.delete_topic("orders").await.context("DeleteTopics")?;
        ensure!(
            admin.describe_topic("orders").await?.is_none(),
            "a deleted topic must describe as None"
        );
        // The finalizer may call delete again: a topic already gone counts as deleted.
        admin
            .delete_topic("orders")
            .await
            .context("second DeleteTopics")?;
        Ok(())
    })?;
    broker.stop()
}

#[test]
fn topics_and_their_configs_survive_a_broker_restart() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    let rt = runtime()?;
    let wanted = configs(&[("retention.ms", "7200000")]);
    let topic_id = rt.block_on(async {
        let admin = KafkaAdmin::connect(&broker.bootstrap(), TIMEOUT).await?;
        let topic_id = admin.create_topic("payments", 2, 1, &wanted).await?;
        admin.create_partitions("payments", 4).await?;
        Ok::<_, AdminError>(topic_id)
    })?;

    broker.restart()?;

    rt.block_on(async {
        let admin = KafkaAdmin::connect(&broker.bootstrap(), TIMEOUT).await?;
        let observed = admin
            .describe_topic("payments")
            .await?
            .context("the topic is gone after a restart")?;
        assert_eq!(observed.topic_id, topic_id);
        assert_eq!(observed.partitions, 4);
        assert_eq!(observed.configs, wanted);
        Ok::<_, anyhow::Error>(())
    })?;
    broker.stop()
}
