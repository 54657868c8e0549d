//! A quorum directory written with the older leader ids (`{term, node_id}` in every vote and
//! log id) opens with everything it held, and the quorum goes on from it.

mod common;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use strom_metadata::Controller;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataQuorum;
use strom_metadata::QuorumConfig;
use strom_metadata::QuorumOptions;
use strom_metadata::TopicDefaults;
use strom_metadata::network::UnreachableNetwork;

const NODE: u64 = 1;

fn config(dir: &Path) -> QuorumConfig {
    QuorumConfig::single_voter(NODE, dir, "127.0.0.1:9093")
}

fn options() -> QuorumOptions {
    QuorumOptions {
        snapshot_interval: 10,
        logs_to_keep_after_snapshot: 5,
        ..QuorumOptions::default()
    }
}

async fn create_topics(controller: &Controller, prefix: &str, count: usize) {
    for i in 0..count {
        let results = controller
            .create_topics(
                vec![CreateTopicRequest {
                    name: format!("{prefix}-{i}"),
                    ..Default::default()
                }],
                false,
            )
            .await;
        assert!(results[0].result.is_ok(), "{results:?}");
    }
}

/// Rewrites `value` into the older form: a log id's leader (its term) becomes
/// `{term, node_id}` and a vote's `{term, voted_for}` becomes `{term, node_id}`.
fn downgrade(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(downgrade),
        Value::Object(fields) => {
            if let Some(leader) = fields.get_mut("leader_id") {
                let older = match leader {
                    Value::Number(term) => Some(serde_json::json!({"term": term, "node_id": NODE})),
                    Value::Object(vote) => vote
                        .get("voted_for")
                        .map(|to| serde_json::json!({"term": vote["term"], "node_id": to})),
                    _ => None,
                };
                if let Some(older) = older {
                    *leader = older;
                }
            }
            fields.values_mut().for_each(downgrade);
        }
        _ => {}
    }
}

fn downgrade_json(bytes: &[u8]) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(bytes).expect("json");
    downgrade(&mut value);
    serde_json::to_vec(&value).expect("serializes")
}

/// Rewrites every file of the quorum directory as the older version wrote it; returns how
/// many log frames it rewrote.
fn downgrade_dir(dir: &Path) -> usize {
    for name in [
        "vote.json",
        "committed.json",
        "purged.json",
        "snapshot.json",
    ] {
        let path = dir.join(name);
        if let Ok(bytes) = std::fs::read(&path) {
            std::fs::write(&path, downgrade_json(&bytes)).expect("rewrite");
        }
    }
    let log = std::fs::read(dir.join("raft.log")).expect("log");
    let (mut out, mut pos, mut frames) = (Vec::new(), 0usize, 0);
    while pos + 8 <= log.len() {
        let len = u32::from_be_bytes([log[pos], log[pos + 1], log[pos + 2], log[pos + 3]]) as usize;
        let payload = downgrade_json(&log[pos + 8..pos + 8 + len]);
        out.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
        out.extend_from_slice(&payload);
        pos += 8 + len;
        frames += 1;
    }
    std::fs::write(dir.join("raft.log"), out).expect("rewrite log");
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_with_the_older_leader_ids_opens_with_everything_it_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let quorum = MetadataQuorum::start_with(config(dir.path()), options(), UnreachableNetwork)
        .await
        .expect("quorum starts");
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    common::register_live(&controller, NODE as i32, "localhost", 9092, None)
        .await
        .expect("broker registers");
    create_topics(&controller, "before", 25).await;
    quorum
        .raft()
        .wait(Some(Duration::from_secs(20)))
        .metrics(|m| m.snapshot.is_some_and(|s| s.index >= 20), "a snapshot")
        .await
        .expect("snapshot built");
    let before = quorum.image();
    let term = quorum.raft().metrics().borrow().current_term;
    quorum.shutdown().await.expect("shutdown");
    drop((controller, quorum));

    let frames = downgrade_dir(dir.path());
    assert!(frames >= 5, "{frames} log frames rewritten");
    let vote = std::fs::read_to_string(dir.path().join("vote.json")).expect("vote");
    assert!(vote.contains(r#""node_id":1"#), "older form: {vote}");

    let quorum = MetadataQuorum::start_with(config(dir.path()), options(), UnreachableNetwork)
        .await
        .expect("the older directory opens");
    let after = quorum.image();
    assert_eq!(after.cluster_id, before.cluster_id);
    assert_eq!(after.topics, before.topics);
    assert_eq!(after.brokers, before.brokers);
    assert!(after.offset >= before.offset);
    let metrics = quorum.raft().metrics().borrow().clone();
    assert!(metrics.current_term >= term, "the term is kept");
    assert_eq!(metrics.current_leader, Some(NODE));

    // It goes on: new changes commit, and survive another restart in the current form.
    let controller = Controller::new(quorum.clone(), TopicDefaults::default());
    create_topics(&controller, "after", 5).await;
    let more = quorum.image();
    assert_eq!(more.topics.len(), 30);
    quorum.shutdown().await.expect("shutdown");
    drop((controller, quorum));
    let quorum = MetadataQuorum::start_with(config(dir.path()), options(), UnreachableNetwork)
        .await
        .expect("restarts");
    assert_eq!(quorum.image().topics, more.topics);
    quorum.shutdown().await.expect("shutdown");
}
