//! A metadata log that can no longer be written stops the quorum for good and says so: the write
//! that met the failure and every later one from this node are answered KAFKA_STORAGE_ERROR at
//! once (never "unknown error", never a hang), the node no longer claims to lead, and what was
//! committed before the failure is there after a restart on the repaired directory.

mod common;

use std::path::Path;
use std::time::Duration;

use strom_metadata::Controller;
use strom_metadata::ControllerClient;
use strom_metadata::ControllerError;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataError;
use strom_metadata::MetadataQuorum;
use strom_metadata::QuorumConfig;
use strom_metadata::TopicDefaults;

/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i16 = 56;
const NOT_CONTROLLER: i16 = 41;

async fn start(dir: &Path) -> MetadataQuorum {
    MetadataQuorum::start(QuorumConfig::single_voter(1, dir, "127.0.0.1:9093"))
        .await
        .expect("quorum starts")
}

fn topic(name: &str) -> Vec<CreateTopicRequest> {
    vec![CreateTopicRequest {
        name: name.to_owned(),
        num_partitions: Some(2),
        ..Default::default()
    }]
}

fn error_code(results: &[strom_metadata::CreateTopicResult]) -> Option<i16> {
    results[0]
        .result
        .as_ref()
        .err()
        .map(ControllerError::kafka_error_code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_metadata_write_stops_the_quorum_and_says_why() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("__cluster_metadata-0");
    let quorum = start(&dir).await;
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    common::register_live(&controller, 1, "localhost", 9092, None)
        .await
        .expect("broker registers");
    let created = controller.create_topics(topic("before"), false).await;
    assert_eq!(error_code(&created), None, "{created:?}");
    assert!(quorum.is_leader());
    assert!(quorum.fault().is_none());

    // The directory goes away under the running node, as an unmounted or failed volume does:
    // the next metadata write (the commit point, a new file in it) fails.
    let moved = root.path().join("moved");
    std::fs::rename(&dir, &moved).expect("move the metadata directory away");
    std::fs::write(&dir, b"not a directory").expect("a file in its place");

    let failed = controller.create_topics(topic("during"), false).await;
    assert_eq!(error_code(&failed), Some(STORAGE_ERROR), "{failed:?}");
    let fault = tokio::time::timeout(Duration::from_secs(30), quorum.failed())
        .await
        .expect("the fault is reported");
    assert!(
        matches!(fault, MetadataError::LogFailed { .. }),
        "{fault:?}"
    );
    assert!(
        fault.to_string().contains("Not a directory"),
        "the OS error is in the message: {fault}"
    );
    assert!(quorum.fault().is_some());
    assert!(!quorum.is_leader(), "a stopped node leads nothing");
    assert_eq!(quorum.leader_id(), None);

    // Later requests: a peer forwarding to this node's controller is told to find the new
    // one (NOT_CONTROLLER, which the forwarding client retries elsewhere); this node's own
    // client, whose deadline (an hour here) would otherwise be spent retrying, fails at once.
    let again = controller.create_topics(topic("after"), false).await;
    assert_eq!(error_code(&again), Some(NOT_CONTROLLER), "{again:?}");
    let client = ControllerClient::new(controller.clone(), Duration::from_secs(3600));
    let forwarded = tokio::time::timeout(
        Duration::from_secs(30),
        client.create_topics(topic("after"), false),
    )
    .await
    .expect("answered at once, not at the deadline");
    assert_eq!(error_code(&forwarded), Some(STORAGE_ERROR), "{forwarded:?}");
    // Stopping a failed node releases its directory; its own stop has nothing to report.
    let _ = quorum.shutdown().await;
    drop((client, controller, quorum));

    // Repaired, the directory holds everything committed before the failure. The write that
    // met the failure had reached the log file, so it may commit on restart: a client that got
    // an error for it cannot know, as with any timed-out write.
    std::fs::remove_file(&dir).expect("remove the file");
    std::fs::rename(&moved, &dir).expect("put the directory back");
    let quorum = start(&dir).await;
    let image = quorum.image();
    let before = image.topic("before").expect("committed topic survives");
    assert_eq!(before.partitions.len(), 2);
    assert!(
        image.topic("after").is_none(),
        "refused writes never commit"
    );
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    let created = controller.create_topics(topic("later"), false).await;
    assert_eq!(error_code(&created), None, "{created:?}");
    quorum.shutdown().await.expect("shutdown");
}
