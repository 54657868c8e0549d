//! One handler per Kafka API, named after the API. Each takes the capabilities it uses
//! (`crate::capabilities`, `crate::controller_channel`), the request header and the decoded
//! request, and returns the response; Kafka error codes come from `crate::errors`, the one place
//! internal errors are mapped.

pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod auto_create;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod elect_leaders;
#[cfg(test)]
mod fakes;
pub mod fetch;
pub mod find_coordinator;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod leader_hint;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod write_txn_markers;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

/// A protocol string from an owned Rust string.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// A protocol topic name from a Rust string.
pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}
