//! The metadata survives restarts, crashes, torn log tails, snapshots and log purges.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use strom_metadata::ConfigResource;
use strom_metadata::Controller;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataError;
use strom_metadata::MetadataImage;
use strom_metadata::MetadataQuorum;
use strom_metadata::QuorumConfig;
use strom_metadata::QuorumOptions;
use strom_metadata::TopicDefaults;
use strom_metadata::controller::ConfigOp;
use strom_metadata::network::UnreachableNetwork;

fn config(dir: &Path) -> QuorumConfig {
    QuorumConfig::single_voter(1, dir, "127.0.0.1:9093")
}

async fn start(dir: &Path) -> MetadataQuorum {
    MetadataQuorum::start(config(dir))
        .await
        .expect("quorum starts")
}

/// Creates brokers, topics and configs through the controller; returns the resulting image.
async fn populate(quorum: &MetadataQuorum, prefix: &str) -> std::sync::Arc<MetadataImage> {
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    common::register_live(&controller, 1, "localhost", 9092, None)
        .await
        .expect("broker registers");
    let requests = (0..3)
        .map(|i| CreateTopicRequest {
            name: format!("{prefix}-{i}"),
            num_partitions: Some(i + 1),
            configs: BTreeMap::from([("retention.ms".to_owned(), format!("{}", 1000 * (i + 1)))]),
            ..Default::default()
        })
        .collect();
    let results = controller.create_topics(requests, false).await;
    assert!(results.iter().all(|r| r.result.is_ok()), "{results:?}");
    controller
        .incremental_alter_configs(
            ConfigResource::Topic(format!("{prefix}-0")),
            vec![ConfigOp::Set("segment.ms".into(), "777".into())],
            false,
        )
        .await
        .expect("config set");
    let deleted = controller.delete_topics(vec![format!("{prefix}-2")]).await;
    assert!(deleted[0].is_ok());
    quorum.image()
}

/// Everything but the offset, which moves when a restarted leader appends its blank entry.
fn assert_same_metadata(a: &MetadataImage, b: &MetadataImage) {
    assert_eq!(a.cluster_id, b.cluster_id);
    assert_eq!(a.brokers, b.brokers);
    assert_eq!(a.topics, b.topics);
    assert_eq!(a.topic_ids, b.topic_ids);
    assert_eq!(a.broker_configs, b.broker_configs);
    assert!(b.offset >= a.offset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_shutdown_yields_the_same_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quorum = start(dir.path()).await;
    let before = populate(&quorum, "t").await;
    assert_eq!(before.topics.len(), 2);
    let cluster_id = quorum.cluster_id().to_owned();
    quorum.shutdown().await.expect("shutdown");
    drop(quorum);

    let quorum = start(dir.path()).await;
    assert_eq!(quorum.cluster_id(), cluster_id, "cluster id is persisted");
    let after = quorum.image();
    assert_same_metadata(&before, &after);
    assert_eq!(after.topic("t-0").map(|t| t.configs.len()), Some(2));
    // The restarted quorum keeps accepting proposals.
    let more = populate(&quorum, "u").await;
    assert_eq!(more.topics.len(), 4);
    quorum.shutdown().await.expect("shutdown");
}

#[test]
fn committed_records_survive_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Run the first life in its own runtime and kill it without shutdown: its tasks are
    // dropped wherever they are, as if the process died.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (quorum, before) = runtime.block_on(async {
        let quorum = start(dir.path()).await;
        let image = populate(&quorum, "crash").await;
        (quorum, image)
    });
    runtime.shutdown_background();
    drop(quorum);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let quorum = start(dir.path()).await;
        assert_same_metadata(&before, &quorum.image());
        quorum.shutdown().await.expect("shutdown");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_log_tail_is_tolerated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quorum = start(dir.path()).await;
    let before = populate(&quorum, "torn").await;
    quorum.shutdown().await.expect("shutdown");
    drop(quorum);

    // A frame whose write was cut short: a header announcing 200 bytes, then only 11.
    let log = dir.path().join("raft.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("open raft.log");
    file.write_all(&200u32.to_be_bytes()).expect("write");
    file.write_all(&[0xAB; 4]).expect("write");
    file.write_all(b"{\"log_id\":").expect("write");
    drop(file);

    let quorum = start(dir.path()).await;
    assert_same_metadata(&before, &quorum.image());
    let more = populate(&quorum, "after").await;
    quorum.shutdown().await.expect("shutdown");
    drop(quorum);

    let quorum = start(dir.path()).await;
    assert_same_metadata(&more, &quorum.image());
    quorum.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_taken_the_log_purged_and_restart_restores_the_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = QuorumOptions {
        snapshot_interval: 20,
        logs_to_keep_after_snapshot: 0,
        ..QuorumOptions::default()
    };
    let quorum =
        MetadataQuorum::start_with(config(dir.path()), options.clone(), UnreachableNetwork)
            .await
            .expect("quorum starts");
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    common::register_live(&controller, 1, "localhost", 9092, None)
        .await
        .expect("broker registers");
    for i in 0..60 {
        let results = controller
            .create_topics(
                vec![CreateTopicRequest {
                    name: format!("topic-{i}"),
                    ..Default::default()
                }],
                false,
            )
            .await;
        assert!(results[0].result.is_ok(), "{results:?}");
    }
    let last = quorum.image().offset;
    // Snapshots are built in the background; wait until one covers most of the log and the
    // log behind it is purged.
    quorum
        .raft()
        .wait(Some(Duration::from_secs(20)))
        .metrics(
            |m| {
                m.snapshot.is_some_and(|s| s.index >= 40) && m.purged.is_some_and(|p| p.index >= 40)
            },
            "snapshot built and log purged",
        )
        .await
        .expect("snapshot and purge happen");
    let before = quorum.image();
    assert_eq!(before.topics.len(), 60);
    quorum.shutdown().await.expect("shutdown");
    drop(quorum);

    assert!(dir.path().join("snapshot.json").exists());
    let quorum = MetadataQuorum::start_with(config(dir.path()), options, UnreachableNetwork)
        .await
        .expect("quorum restarts from the snapshot");
    let metrics = quorum.raft().metrics().borrow().clone();
    assert!(
        metrics.purged.is_some_and(|p| p.index >= 40),
        "purge survives restart: {:?}",
        metrics.purged
    );
    let after = quorum.image();
    assert_same_metadata(&before, &after);
    assert!(after.offset >= last);
    quorum.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_identity_is_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quorum = start(dir.path()).await;
    let cluster_id = quorum.cluster_id().to_owned();

    // A second quorum on a directory in use is refused.
    let busy = MetadataQuorum::start(config(dir.path())).await;
    assert!(
        matches!(busy, Err(MetadataError::DirectoryInUse { .. })),
        "{busy:?}"
    );
    quorum.shutdown().await.expect("shutdown");
    drop(quorum);

    let wrong_cluster = MetadataQuorum::start(QuorumConfig {
        cluster_id: Some("another-cluster".into()),
        ..config(dir.path())
    })
    .await;
    assert!(
        matches!(wrong_cluster, Err(MetadataError::ClusterIdMismatch { .. })),
        "{wrong_cluster:?}"
    );

    let wrong_node = MetadataQuorum::start(QuorumConfig::single_voter(2, dir.path(), "x:1")).await;
    assert!(
        matches!(wrong_node, Err(MetadataError::NodeIdMismatch { .. })),
        "{wrong_node:?}"
    );

    let not_a_voter = MetadataQuorum::start(QuorumConfig {
        voters: BTreeMap::from([(5, "x:1".to_owned())]),
        ..config(dir.path())
    })
    .await;
    assert!(
        matches!(not_a_voter, Err(MetadataError::InvalidConfig { .. })),
        "{not_a_voter:?}"
    );

    let same = MetadataQuorum::start(QuorumConfig {
        cluster_id: Some(cluster_id.clone()),
        ..config(dir.path())
    })
    .await
    .expect("the right cluster id is accepted");
    assert_eq!(same.cluster_id(), cluster_id);
    assert_eq!(same.image().cluster_id, cluster_id);
    same.shutdown().await.expect("shutdown");
}
