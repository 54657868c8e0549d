//! InitProducerId for idempotent producers: a fresh producer id with epoch 0, or — when a
//! producer re-initializes with its current id and epoch (KIP-360, v3+) — the same id with the
//! epoch bumped, which fences anything still in flight under the old epoch (the partition logs
//! reject an older epoch with INVALID_PRODUCER_EPOCH).
//!
//! Transactional producers (a `transactional_id`) are the transaction coordinator's
//! (`strom-txn`); the dispatcher sends their requests there, and this handler refuses one that
//! reaches it with INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, RequestHeader,
};

use crate::controller_channel::ControllerChannel;
use crate::errors::controller_failure;
use crate::producer_ids::ProducerIdManager;

pub async fn handle(
    producer_ids: &ProducerIdManager,
    controller: &impl ControllerChannel,
    _header: &RequestHeader,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return response.with_error_code(ResponseError::InvalidRequest.code());
    }
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch + 1);
    }
    match producer_ids.next_id(controller).await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => response.with_error_code(controller_failure(&error).0),
    }
}
