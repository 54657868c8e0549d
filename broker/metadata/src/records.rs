//! The records of the metadata log.
//!
//! Every change to cluster metadata is one of these records, committed through the quorum and
//! applied in log order to [`MetadataImage`](crate::image::MetadataImage). They are stored as JSON
//! in the Raft log and in snapshots, so their serialized form is a compatibility contract:
//!
//! - each variant is tagged with a versioned name (`"topic.v1"`); a change that old readers could
//!   not ignore gets a new variant (`"topic.v2"`) next to the old one, which stays readable;
//! - a field added to an existing version must be `#[serde(default)]` so entries written before it
//!   still decode; unknown fields are ignored, so a downgraded broker can read newer entries of a
//!   known version.

use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

/// One metadata change. See the module docs for the format rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A broker (re)registered. Each process start registers with a fresh `incarnation`, as in
    /// KIP-631, so a restarted broker is told apart from its previous life. A new registration
    /// is fenced until the broker has caught up with the metadata log (its heartbeats say so);
    /// entries written before fencing existed decode as unfenced.
    #[serde(rename = "register_broker.v1")]
    RegisterBroker {
        node_id: i32,
        host: String,
        port: u16,
        rack: Option<String>,
        incarnation: Uuid,
        #[serde(default)]
        fenced: bool,
    },
    /// A registered broker was fenced or unfenced, or began a controlled shutdown (KRaft's
    /// `BrokerRegistrationChangeRecord`). Ignored unless `incarnation` is the current one, so a
    /// change meant for a previous life of the broker never touches the new one.
    #[serde(rename = "broker_change.v1")]
    BrokerChange {
        node_id: i32,
        incarnation: Uuid,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
    },
    /// The cluster id, fixed by the first elected controller; later records of it are ignored.
    #[serde(rename = "cluster_id.v1")]
    ClusterId { cluster_id: String },
    /// A topic was created. Its partitions follow as [`MetadataRecord::Partition`] records in
    /// the same batch.
    #[serde(rename = "topic.v1")]
    Topic { name: String, topic_id: Uuid },
    /// A partition was created (or fully replaced).
    #[serde(rename = "partition.v1")]
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A change to an existing partition; `None` fields stay as they are. Applying it bumps the
    /// `partition_epoch` for any change, and the `leader_epoch` when the leader changes, as
    /// Kafka's `PartitionChangeRecord` does. The reassignment fields came later; a reader that
    /// ignores them still derives the right replicas, ISR and leader.
    #[serde(rename = "partition_change.v1")]
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
        #[serde(default)]
        adding_replicas: Option<Vec<i32>>,
        #[serde(default)]
        removing_replicas: Option<Vec<i32>>,
    },
    /// A dynamic config was set (`Some`) or removed so the default applies again (`None`).
    #[serde(rename = "config.v1")]
    Config {
        resource: ConfigResource,
        name: String,
        value: Option<String>,
    },
    /// A topic and all its partitions and configs were deleted.
    #[serde(rename = "remove_topic.v1")]
    RemoveTopic { topic_id: Uuid },
    /// A block of producer ids was handed to a broker: ids below `next_producer_id` are taken
    /// (KRaft's `ProducerIdsRecord`), so no two idempotent producers ever share an id, across
    /// brokers and restarts.
    #[serde(rename = "producer_ids.v1")]
    ProducerIds { node_id: i32, next_producer_id: i64 },
}

/// What a config applies to, as in Kafka's `ConfigResource`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id.
    Broker(i32),
    /// Every broker: the cluster-wide default of each dynamic broker config (Kafka's BROKER
    /// resource named ""), which a broker's own dynamic value overrides.
    BrokerDefault,
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(name) => write!(f, "topic '{name}'"),
            Self::Broker(id) => write!(f, "broker {id}"),
            Self::BrokerDefault => f.write_str("the cluster-wide broker defaults"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_json_with_versioned_tags() {
        let id = Uuid::new_v4();
        let records = vec![
            MetadataRecord::RegisterBroker {
                node_id: 1,
                host: "b1".into(),
                port: 9092,
                rack: None,
                incarnation: id,
                fenced: true,
            },
            MetadataRecord::BrokerChange {
                node_id: 1,
                incarnation: id,
                fenced: Some(false),
                in_controlled_shutdown: None,
            },
            MetadataRecord::ClusterId {
                cluster_id: "c".into(),
            },
            MetadataRecord::Topic {
                name: "t".into(),
                topic_id: id,
            },
            MetadataRecord::Partition {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
            },
            MetadataRecord::PartitionChange {
                topic_id: id,
                partition: 0,
                leader: Some(2),
                isr: None,
                replicas: None,
                adding_replicas: Some(vec![3]),
                removing_replicas: None,
            },
            MetadataRecord::Config {
                resource: ConfigResource::Topic("t".into()),
                name: "retention.ms".into(),
                value: None,
            },
            MetadataRecord::Config {
                resource: ConfigResource::BrokerDefault,
                name: "leader.replication.throttled.rate".into(),
                value: Some("1".into()),
            },
            MetadataRecord::RemoveTopic { topic_id: id },
            MetadataRecord::ProducerIds {
                node_id: 0,
                next_producer_id: 1000,
            },
        ];
        for record in records {
            let json = serde_json::to_string(&record).expect("records serialize");
            assert!(json.contains(".v1\""), "tag carries a version: {json}");
            let back: MetadataRecord = serde_json::from_str(&json).expect("records deserialize");
            assert_eq!(back, record);
        }
    }

    #[test]
    fn a_partition_change_written_before_reassignments_still_decodes() {
        let json = r#"{"type":"partition_change.v1","topic_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","partition":0,"leader":1,"isr":null,"replicas":null}"#;
        let record: MetadataRecord = serde_json::from_str(json).expect("older entry decodes");
        assert!(matches!(
            record,
            MetadataRecord::PartitionChange {
                adding_replicas: None,
                removing_replicas: None,
                ..
            }
        ));
    }

    #[test]
    fn unknown_fields_of_a_known_version_are_ignored() {
        let json = r#"{"type":"topic.v1","name":"t","topic_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","added_later":1}"#;
        let record: MetadataRecord = serde_json::from_str(json).expect("newer field is ignored");
        assert!(matches!(record, MetadataRecord::Topic { ref name, .. } if name == "t"));
    }
}
