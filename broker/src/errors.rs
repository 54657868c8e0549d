//! The one place where internal errors become Kafka error codes. A message goes back to the
//! client only when it describes the client's own input; internal failures (I/O, paths) are
//! logged here and reach the client as a bare code.

use kafka_protocol::error::ResponseError;
use strom_metadata::ControllerError;
use strom_storage::StorageError;
use strom_storage::producer_state::ProducerStateError;

/// Kafka error code and client-facing message for a storage failure. A duplicate of an
/// idempotent producer's batch is not a failure: the produce handler answers it with the
/// original offsets before it gets here.
pub fn storage_failure(error: &StorageError) -> (ResponseError, Option<String>) {
    use StorageError::*;
    match error {
        OffsetOutOfRange { .. } => (ResponseError::OffsetOutOfRange, Some(error.to_string())),
        RecordTooLarge { .. } => (ResponseError::MessageTooLarge, Some(error.to_string())),
        RecordListTooLarge { .. } => (ResponseError::RecordListTooLarge, Some(error.to_string())),
        CorruptRecord { .. } => (ResponseError::CorruptMessage, Some(error.to_string())),
        InvalidRecord { .. } | EmptyRecordSet => {
            (ResponseError::InvalidRecord, Some(error.to_string()))
        }
        ProducerState(ProducerStateError::OutOfOrderSequence { .. }) => (
            ResponseError::OutOfOrderSequenceNumber,
            Some(error.to_string()),
        ),
        ProducerState(ProducerStateError::InvalidProducerEpoch { .. }) => {
            (ResponseError::InvalidProducerEpoch, Some(error.to_string()))
        }
        _ => {
            tracing::error!(%error, "storage failure");
            (ResponseError::KafkaStorageError, None)
        }
    }
}

/// Kafka error code and client-facing message for a controller failure.
pub fn controller_failure(error: &ControllerError) -> (i16, Option<String>) {
    let code = error.kafka_error_code();
    if code == ResponseError::UnknownServerError.code() {
        tracing::error!(%error, "controller failure");
        (code, None)
    } else {
        (code, Some(error.to_string()))
    }
}
