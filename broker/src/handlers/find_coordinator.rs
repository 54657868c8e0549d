//! FindCoordinator: the broker leading the partition a key hashes onto — of
//! `__consumer_offsets` for a group (key type 0), of `__transaction_state` for a transactional
//! id (key type 1) — v0–3 one key, v4+ a batch of keys (KIP-699). The first lookup of a kind
//! creates its topic, as Kafka does. Other key types are refused with INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::capabilities::{CoordinatorKind, CoordinatorLookup, MetadataView};

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn kind_of(key_type: i8) -> Option<CoordinatorKind> {
    match key_type {
        KEY_TYPE_GROUP => Some(CoordinatorKind::Group),
        KEY_TYPE_TRANSACTION => Some(CoordinatorKind::Transaction),
        _ => None,
    }
}

pub async fn handle(
    metadata: &impl MetadataView,
    coordinators: &impl CoordinatorLookup,
    header: &RequestHeader,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let batched = header.request_api_version >= 4;
    let keys: Vec<StrBytes> = if batched {
        request.coordinator_keys.clone()
    } else {
        vec![request.key.clone()]
    };
    let kind = kind_of(request.key_type);
    if let Some(kind) = kind {
        coordinators.ensure_coordinator_topic(kind).await;
    }
    let found: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| locate(metadata, coordinators, kind, key))
        .collect();
    if batched {
        return FindCoordinatorResponse::default().with_coordinators(found);
    }
    let Some(one) = found.into_iter().next() else {
        return FindCoordinatorResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    };
    FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_error_message(one.error_message)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port)
}

fn locate(
    metadata: &impl MetadataView,
    coordinators: &impl CoordinatorLookup,
    kind: Option<CoordinatorKind>,
    key: StrBytes,
) -> Coordinator {
    let unknown = Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    let Some(kind) = kind else {
        return unknown
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes("unknown coordinator key type")));
    };
    let image = metadata.image();
    let partition = coordinators.partition_for(kind, &key);
    let leader = image
        .partition(kind.topic(), partition)
        .map(|p| p.leader)
        .and_then(|leader| image.broker(leader));
    match leader {
        Some(node) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(node.node_id))
            .with_host(str_bytes(node.host.clone()))
            .with_port(i32::from(node.port)),
        None => unknown.with_error_code(ResponseError::CoordinatorNotAvailable.code()),
    }
}

#[cfg(test)]
mod tests {
    use strom_metadata::MetadataRecord;
    use uuid::Uuid;

    use super::*;
    use crate::groups::OFFSETS_TOPIC;
    use crate::handlers::fakes::{FakeCoordinators, FakeMetadata, broker, partition};
    use crate::transactions::TRANSACTION_STATE_TOPIC;

    /// `__consumer_offsets`-0 led by broker 2, -1 without a leader; groups `a` and `b` hash onto
    /// them. `__transaction_state`-0 led by broker 1, where `txn` hashes.
    fn setup() -> (FakeMetadata, FakeCoordinators) {
        let offsets = Uuid::from_u128(0x0f);
        let transactions = Uuid::from_u128(0x1f);
        let metadata = FakeMetadata::new(
            1,
            1,
            &[
                broker(1, "b1", 9092, None, false),
                broker(2, "b2", 9093, None, false),
                MetadataRecord::Topic {
                    name: OFFSETS_TOPIC.into(),
                    topic_id: offsets,
                },
                partition(offsets, 0, (&[2, 1], &[2, 1], 2, 0)),
                partition(offsets, 1, (&[1], &[], -1, 3)),
                MetadataRecord::Topic {
                    name: TRANSACTION_STATE_TOPIC.into(),
                    topic_id: transactions,
                },
                partition(transactions, 0, (&[1, 2], &[1, 2], 1, 0)),
            ],
        );
        let coordinators = FakeCoordinators {
            partitions: [("a".to_owned(), 0), ("b".to_owned(), 1)].into(),
            ..FakeCoordinators::default()
        };
        (metadata, coordinators)
    }

    #[tokio::test]
    async fn a_group_is_coordinated_by_the_leader_of_its_offsets_partition() {
        let (metadata, coordinators) = setup();
        let header = RequestHeader::default().with_request_api_version(4);
        let request = FindCoordinatorRequest::default()
            .with_key_type(KEY_TYPE_GROUP)
            .with_coordinator_keys(vec![str_bytes("a"), str_bytes("b")]);
        let response = handle(&metadata, &coordinators, &header, request).await;
        let found: Vec<_> = response
            .coordinators
            .iter()
            .map(|c| {
                (
                    c.key.to_string(),
                    c.error_code,
                    c.node_id.0,
                    c.host.to_string(),
                    c.port,
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("a".to_owned(), 0, 2, "b2".to_owned(), 9093),
                (
                    "b".to_owned(),
                    ResponseError::CoordinatorNotAvailable.code(),
                    -1,
                    String::new(),
                    -1
                ),
            ]
        );
        assert_eq!(*coordinators.ensured.lock(), vec![CoordinatorKind::Group]);

        // v0-3: one key, answered in the top-level fields.
        let header = RequestHeader::default().with_request_api_version(3);
        let request = FindCoordinatorRequest::default().with_key(str_bytes("a"));
        let response = handle(&metadata, &coordinators, &header, request).await;
        assert_eq!(
            (
                response.error_code,
                response.node_id.0,
                response.host.as_str(),
                response.port
            ),
            (0, 2, "b2", 9093)
        );
    }

    #[tokio::test]
    async fn a_transactional_id_is_coordinated_by_the_leader_of_its_transaction_state_partition() {
        let (metadata, coordinators) = setup();
        let header = RequestHeader::default().with_request_api_version(3);
        let request = FindCoordinatorRequest::default()
            .with_key_type(KEY_TYPE_TRANSACTION)
            .with_key(str_bytes("txn"));
        let response = handle(&metadata, &coordinators, &header, request).await;
        assert_eq!(
            (response.error_code, response.node_id.0, response.port),
            (0, 1, 9092)
        );
        assert_eq!(
            *coordinators.ensured.lock(),
            vec![CoordinatorKind::Transaction]
        );
    }

    #[tokio::test]
    async fn unknown_key_types_are_refused_without_creating_a_topic() {
        let (metadata, coordinators) = setup();
        let header = RequestHeader::default().with_request_api_version(3);
        let request = FindCoordinatorRequest::default()
            .with_key_type(2)
            .with_key(str_bytes("x"));
        let response = handle(&metadata, &coordinators, &header, request).await;
        assert_eq!(response.error_code, ResponseError::InvalidRequest.code());
        assert_eq!(response.node_id.0, -1);
        assert!(coordinators.ensured.lock().is_empty());
    }
}
