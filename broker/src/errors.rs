//! The one place where internal errors become Kafka error codes. A message goes back to the
//! client only when it describes the client's own input; internal failures (I/O, paths) are
//! logged here and reach the client as a bare code.

use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::BatchIndexAndErrorMessage;
use strom_metadata::ControllerError;
use strom_storage::StorageError;
use strom_storage::producer_state::ProducerStateError;

use crate::log_limit::LogLimiter;

/// A failing disk fails every request that touches it, and clients retry at once: one line per
/// distinct failure per interval.
static STORAGE_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));
static CONTROLLER_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));

/// Corrupt stored batches are logged at most once a second: every fetch of the damaged offset
/// meets them again.
static CORRUPT_BATCH_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(1));

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
        InvalidRecord { source, .. } if source.is_timestamp_error() => {
            (ResponseError::InvalidTimestamp, Some(error.to_string()))
        }
        InvalidRecord { .. } | EmptyRecordSet => {
            (ResponseError::InvalidRecord, Some(error.to_string()))
        }
        // Kafka answers a read that meets a corrupt batch with CORRUPT_MESSAGE for that
        // partition; the partition stays online and the other offsets stay readable.
        CorruptBatchInLog { offset, .. } => {
            if let Some(suppressed) = CORRUPT_BATCH_LOG.check("corrupt batch") {
                tracing::error!(%error, suppressed, "corrupt record batch in the log is not served");
            }
            (
                ResponseError::CorruptMessage,
                Some(format!(
                    "the log holds a corrupt record batch at offset {offset}"
                )),
            )
        }
        ProducerState(ProducerStateError::OutOfOrderSequence { .. }) => (
            ResponseError::OutOfOrderSequenceNumber,
            Some(error.to_string()),
        ),
        ProducerState(ProducerStateError::InvalidProducerEpoch { .. }) => {
            (ResponseError::InvalidProducerEpoch, Some(error.to_string()))
        }
        InvalidTxnState { .. } | TransactionEndedSinceVerification { .. } => {
            (ResponseError::InvalidTxnState, Some(error.to_string()))
        }
        TransactionCoordinatorFenced { .. } => (
            ResponseError::TransactionCoordinatorFenced,
            Some(error.to_string()),
        ),
        _ => {
            if let Some(suppressed) = STORAGE_LOG.check(&error.to_string()) {
                tracing::error!(%error, suppressed, "storage failure");
            }
            (ResponseError::KafkaStorageError, None)
        }
    }
}

/// KIP-467 `record_errors` of a rejected produce: the record at fault and why, when the error
/// names one. Produce v8+ carries them; older versions encode the error code alone.
pub fn record_errors(error: &StorageError) -> Vec<BatchIndexAndErrorMessage> {
    let (StorageError::InvalidRecord { source, .. } | StorageError::CorruptRecord { source, .. }) =
        error
    else {
        return Vec::new();
    };
    source
        .record_index()
        .and_then(|index| i32::try_from(index).ok())
        .map(|index| {
            vec![
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(index)
                    .with_batch_index_error_message(Some(crate::handlers::str_bytes(
                        source.to_string(),
                    ))),
            ]
        })
        .unwrap_or_default()
}

/// Kafka error code and client-facing message for a controller failure.
///
/// NOT_CONTROLLER is an answer between brokers, never to a client (KIP-590): the controller
/// channel retries it against the next controller until its deadline. Should one come back
/// anyway, the client gets what the channel answers when its deadline passes,
/// REQUEST_TIMED_OUT, which clients retry.
pub fn controller_failure(error: &ControllerError) -> (i16, Option<String>) {
    if let ControllerError::NotController { .. } = error {
        return (
            ResponseError::RequestTimedOut.code(),
            Some("The active controller changed while the request was in progress; retry.".into()),
        );
    }
    let code = error.kafka_error_code();
    if code == ResponseError::UnknownServerError.code() {
        if let Some(suppressed) = CONTROLLER_LOG.check(&error.to_string()) {
            tracing::error!(%error, suppressed, "controller failure");
        }
        (code, None)
    } else {
        (code, Some(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_disk_that_fails_every_request_is_logged_once_per_interval() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let full = StorageError::Io {
            op: "append to",
            path: "/data/full-0/00000000000000000000.log".into(),
            source: std::io::Error::from_raw_os_error(28),
        };
        let other = StorageError::Io {
            op: "append to",
            path: "/data/other-0/00000000000000000000.log".into(),
            source: std::io::Error::from_raw_os_error(5),
        };
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..5000 {
                assert_eq!(storage_failure(&full).0, ResponseError::KafkaStorageError);
            }
            storage_failure(&other);
        });
        let text = String::from_utf8(captured.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains("full-0"), "{text}");
        assert!(
            lines[1].contains("other-0"),
            "a different failure is not hidden"
        );
    }
}
