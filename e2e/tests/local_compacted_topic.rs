//! A Topic with `cleanup.policy: compact` through `strom-operator local`: the broker creates it
//! compacted with the Topic's compaction settings, the Topic becomes Ready, and an edit of the
//! policy to `compact,delete` reaches the broker.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_admin::KafkaAdmin;
use strom_e2e::cluster::eventually;
use strom_e2e::local::{LocalOperator, READY_DEADLINE, cluster_manifest};

const DEADLINE: Duration = Duration::from_secs(60);

fn manifest(policy: &str) -> String {
    let topic = format!(
        "apiVersion: strom.io/v1alpha1\nkind: Topic\nmetadata:\n  name: stock-levels\nspec:\n  \
         clusterRef:\n    name: local\n  partitions: 3\n  replicationFactor: 1\n  config:\n    \
         cleanup.policy: \"{policy}\"\n    delete.retention.ms: \"60000\"\n    \
         min.cleanable.dirty.ratio: \"0.1\"\n    compression.type: \"zstd\"\n"
    );
    cluster_manifest(1, 1, &[], &[], &[topic])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_round_trips_through_the_operator() -> anyhow::Result<()> {
    let mut operator = LocalOperator::start(&manifest("compact"))?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    let admin = KafkaAdmin::connect(&bootstrap, Duration::from_secs(10)).await?;
    let expected = |policy: &str| {
        BTreeMap::from([
            ("cleanup.policy".to_owned(), policy.to_owned()),
            ("compression.type".to_owned(), "zstd".to_owned()),
            ("delete.retention.ms".to_owned(), "60000".to_owned()),
            ("min.cleanable.dirty.ratio".to_owned(), "0.1".to_owned()),
        ])
    };
    for policy in ["compact", "compact,delete"] {
        if policy != "compact" {
            operator.apply(&manifest(policy))?;
        }
        eventually(
            &format!("a Ready Topic with {policy}"),
            DEADLINE,
            || async {
                let status = operator.status("Topic", "stock-levels")?;
                let configs = admin.describe_topic_configs("stock-levels").await.ok()??;
                (LocalOperator::condition_true(&status, "Ready") && configs == expected(policy))
                    .then_some(())
            },
        )
        .await?;
    }
    operator.stop()?;
    Ok(())
}
