//! A metadata quorum of three (or five) voters in one process, over the in-memory router:
//! elections, replication of controller changes, leader isolation, restarts, snapshots,
//! minority partitions, observers, and a seeded random sequence of faults — what a
//! multi-broker cluster relies on, in seconds.
//!
//! Layout: this file holds the helpers; [`scenarios`] one fault each, [`random_faults`] the
//! seeded sequence.

#[path = "../common/mod.rs"]
mod common;
mod random_faults;
mod scenarios;

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_metadata::ControllerError;
use strom_metadata::CreateTopicRequest;
use strom_metadata::MetadataImage;
use strom_metadata::testing::TestCluster;
use uuid::Uuid;

pub(crate) type NodeId = u64;

/// Registers brokers 1..=3 (unfenced) through the controller of `leader`.
pub(crate) async fn register_brokers(cluster: &TestCluster, leader: NodeId) {
    let controller = cluster.controller(leader).expect("leader runs");
    for node_id in 1..=3 {
        common::register_live(controller, node_id, "127.0.0.1", 9092, None)
            .await
            .expect("broker registers");
    }
}

/// Creates `name` (3 partitions, replication factor 3) through the controller of `node`.
pub(crate) async fn create_topic(
    cluster: &TestCluster,
    node: NodeId,
    name: &str,
) -> Result<Uuid, ControllerError> {
    let request = CreateTopicRequest {
        name: name.to_owned(),
        num_partitions: Some(3),
        replication_factor: Some(3),
        ..Default::default()
    };
    let controller = cluster.controller(node).expect("node runs");
    let mut results = controller.create_topics(vec![request], false).await;
    results
        .pop()
        .expect("one result per topic")
        .result
        .map(|created| created.topic_id)
}

/// Asserts that all `images` (applied at one offset) are equal, checksums included.
pub(crate) fn assert_identical(
    images: &BTreeMap<NodeId, Arc<MetadataImage>>,
) -> Arc<MetadataImage> {
    let (first_id, first) = images.iter().next().expect("at least one image");
    for (id, image) in images {
        assert_eq!(
            image.checksum(),
            first.checksum(),
            "node {id} and node {first_id} applied offset {} to different images",
            image.offset
        );
        assert_eq!(image, first, "node {id} differs from node {first_id}");
    }
    Arc::clone(first)
}

/// Asserts that no term had two leaders, as any node saw it.
pub(crate) fn assert_one_leader_per_term(cluster: &TestCluster) {
    for (term, leaders) in cluster.leaders_by_term() {
        assert!(
            leaders.len() <= 1,
            "term {term} had leaders {leaders:?}; {}",
            cluster.describe()
        );
    }
}

pub(crate) fn term_of(cluster: &TestCluster, id: NodeId) -> u64 {
    cluster
        .quorum(id)
        .expect("node runs")
        .raft()
        .metrics()
        .borrow()
        .current_term
}

pub(crate) fn others(cluster: &TestCluster, but: NodeId) -> Vec<NodeId> {
    cluster.voters().into_iter().filter(|&v| v != but).collect()
}
