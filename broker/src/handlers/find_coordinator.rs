//! FindCoordinator: the broker leading the `__consumer_offsets` partition a group hashes onto
//! (v0–3 one key, v4+ a batch of keys, KIP-699). The first lookup creates `__consumer_offsets`.
//! Transaction coordinators (key type 1) do not exist yet and are refused with a message.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, RequestHeader,
};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::capabilities::{CoordinatorLookup, MetadataView};
use crate::groups::OFFSETS_TOPIC;

const KEY_TYPE_GROUP: i8 = 0;

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
    if request.key_type == KEY_TYPE_GROUP {
        coordinators.ensure_offsets_topic().await;
    }
    let found: Vec<Coordinator> = keys
        .into_iter()
        .map(|key| locate(metadata, coordinators, request.key_type, key))
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
    key_type: i8,
    key: StrBytes,
) -> Coordinator {
    let unknown = Coordinator::default()
        .with_key(key.clone())
        .with_node_id(BrokerId(-1))
        .with_port(-1);
    if key_type != KEY_TYPE_GROUP {
        return unknown
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str_bytes(
                "transaction coordinators are not supported yet",
            )));
    }
    let image = metadata.image();
    let partition = coordinators.partition_for(&key);
    let leader = image
        .partition(OFFSETS_TOPIC, partition)
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
