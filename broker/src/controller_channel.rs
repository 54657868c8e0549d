//! The controller's admin operations as request handlers use them, wherever the active
//! controller runs (KIP-590's forwarding). [`ControllerClient`] is the implementation: the
//! local controller when this node leads the quorum, else the leader's controller listener,
//! retried across controller changes until its deadline.
//!
//! Contract: an implementation retries NOT_CONTROLLER itself and answers a request it could
//! not place with `ControllerUnavailable` (REQUEST_TIMED_OUT), so handlers do not care where
//! the controller is.

use std::collections::BTreeMap;

use strom_metadata::controller_ops::{ElectionOutcome, QuorumDescription, ReassignmentTarget};
use strom_metadata::{
    ConfigOp, ConfigResource, ControllerClient, ControllerError, CreateTopicRequest,
    CreateTopicResult, NewPartitions, PartitionReassignment,
};
use uuid::Uuid;

/// The admin operations of the active controller, one result per item asked for, in order.
pub trait ControllerChannel: Send + Sync {
    fn create_topics(
        &self,
        topics: Vec<CreateTopicRequest>,
        validate_only: bool,
    ) -> impl Future<Output = Vec<CreateTopicResult>> + Send;

    fn delete_topics(
        &self,
        names: Vec<String>,
    ) -> impl Future<Output = Vec<Result<Uuid, ControllerError>>> + Send;

    fn create_partitions(
        &self,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> impl Future<Output = Vec<Result<(), ControllerError>>> + Send;

    fn alter_configs(
        &self,
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), ControllerError>> + Send;

    fn incremental_alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> impl Future<Output = Result<(), ControllerError>> + Send;

    /// The first id of a block of `count` producer ids for `node_id` (KIP-730).
    fn allocate_producer_ids(
        &self,
        node_id: i32,
        count: i64,
    ) -> impl Future<Output = Result<i64, ControllerError>> + Send;

    fn alter_partition_reassignments(
        &self,
        reassignments: Vec<ReassignmentTarget>,
    ) -> impl Future<Output = Vec<Result<(), ControllerError>>> + Send;

    fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> impl Future<Output = Result<Vec<PartitionReassignment>, ControllerError>> + Send;

    fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> impl Future<Output = Result<Vec<ElectionOutcome>, ControllerError>> + Send;

    fn describe_quorum(
        &self,
    ) -> impl Future<Output = Result<QuorumDescription, ControllerError>> + Send;
}

impl ControllerChannel for ControllerClient {
    async fn create_topics(
        &self,
        topics: Vec<CreateTopicRequest>,
        validate_only: bool,
    ) -> Vec<CreateTopicResult> {
        ControllerClient::create_topics(self, topics, validate_only).await
    }

    async fn delete_topics(&self, names: Vec<String>) -> Vec<Result<Uuid, ControllerError>> {
        ControllerClient::delete_topics(self, names).await
    }

    async fn create_partitions(
        &self,
        topics: Vec<NewPartitions>,
        validate_only: bool,
    ) -> Vec<Result<(), ControllerError>> {
        ControllerClient::create_partitions(self, topics, validate_only).await
    }

    async fn alter_configs(
        &self,
        resource: ConfigResource,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        ControllerClient::alter_configs(self, resource, configs, validate_only).await
    }

    async fn incremental_alter_configs(
        &self,
        resource: ConfigResource,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        ControllerClient::incremental_alter_configs(self, resource, ops, validate_only).await
    }

    async fn allocate_producer_ids(
        &self,
        node_id: i32,
        count: i64,
    ) -> Result<i64, ControllerError> {
        ControllerClient::allocate_producer_ids(self, node_id, count).await
    }

    async fn alter_partition_reassignments(
        &self,
        reassignments: Vec<ReassignmentTarget>,
    ) -> Vec<Result<(), ControllerError>> {
        ControllerClient::alter_partition_reassignments(self, reassignments).await
    }

    async fn list_partition_reassignments(
        &self,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<PartitionReassignment>, ControllerError> {
        ControllerClient::list_partition_reassignments(self, partitions).await
    }

    async fn elect_leaders(
        &self,
        preferred: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Result<Vec<ElectionOutcome>, ControllerError> {
        ControllerClient::elect_leaders(self, preferred, partitions).await
    }

    async fn describe_quorum(&self) -> Result<QuorumDescription, ControllerError> {
        ControllerClient::describe_quorum(self).await
    }
}
