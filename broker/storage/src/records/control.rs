//! Transaction markers (Kafka's control batches, `EndTransactionMarker`): building one and
//! reading the marker a control batch holds.
//!
//! A marker is a v2 batch with the transactional and control attributes, the producer id and
//! epoch of the transaction, `baseSequence` -1 and one record whose key is int16 version (0)
//! and int16 type (0 = ABORT, 1 = COMMIT) and whose value is int16 version (0) and int32
//! coordinator epoch.

use bytes::Bytes;

use super::{BatchSpec, Codec, Record, decode, encode};
use crate::batch::{BatchError, BatchTimestampType, RecordBatch};

/// Control record type of an abort marker (Kafka's `ControlRecordType.ABORT`).
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker (`ControlRecordType.COMMIT`).
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// The marker a control batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlMarker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// The epoch of the transaction coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// Encodes a marker batch at `base_offset` with `timestamp` (the append path assigns the
/// offset and the leader epoch).
pub fn marker_batch(
    base_offset: i64,
    producer_id: i64,
    producer_epoch: i16,
    marker: ControlMarker,
    timestamp: i64,
) -> Result<Vec<u8>, BatchError> {
    let kind = if marker.commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&marker.coordinator_epoch.to_be_bytes());
    let spec = BatchSpec {
        base_offset,
        last_offset_delta: 0,
        partition_leader_epoch: -1,
        timestamp_type: BatchTimestampType::CreateTime,
        log_append_time: timestamp,
        transactional: true,
        control: true,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        delete_horizon_ms: None,
    };
    let record = Record {
        offset: base_offset,
        timestamp,
        key: Some(Bytes::from(key)),
        value: Some(Bytes::from(value)),
        headers: Vec::new(),
    };
    encode(&spec, &[record], Codec::None)
}

/// The marker of a control batch; `None` when the batch is no control batch, its record
/// cannot be read, or its type is neither ABORT nor COMMIT (other control records do not end
/// a transaction), or its value is too short to hold the coordinator epoch.
pub fn read_marker(batch: &RecordBatch<'_>) -> Option<ControlMarker> {
    if !batch.is_control() {
        return None;
    }
    let record = decode(batch).ok()?.into_iter().next()?;
    let key = record.key?;
    if key.len() < 4 {
        return None;
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => false,
        CONTROL_TYPE_COMMIT => true,
        _ => return None,
    };
    let value = record.value?;
    if value.len() < 6 {
        return None;
    }
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    Some(ControlMarker {
        commit,
        coordinator_epoch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_stored_batch;

    #[test]
    fn a_marker_has_kafkas_layout_and_reads_back() {
        let marker = ControlMarker {
            commit: false,
            coordinator_epoch: 7,
        };
        let bytes = marker_batch(42, 1234, 3, marker, 5_000).expect("encode");
        let batch = RecordBatch::parse(&bytes).expect("framing");
        validate_stored_batch(&batch).expect("valid");
        assert_eq!(
            batch.attributes(),
            0x30,
            "transactional | control, no codec"
        );
        assert_eq!(
            (
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence()
            ),
            (1234, 3, -1)
        );
        assert_eq!((batch.base_offset(), batch.record_count()), (42, 1));
        let record = decode(&batch).expect("decode").remove(0);
        assert_eq!(record.key.as_deref(), Some(&[0u8, 0, 0, 0][..]));
        assert_eq!(record.value.as_deref(), Some(&[0u8, 0, 0, 0, 0, 7][..]));
        assert_eq!(read_marker(&batch), Some(marker));
        let commit = marker_batch(
            0,
            1,
            0,
            ControlMarker {
                commit: true,
                coordinator_epoch: 0,
            },
            0,
        )
        .expect("encode");
        let commit = RecordBatch::parse(&commit).expect("framing");
        assert_eq!(
            read_marker(&commit).map(|m| m.commit),
            Some(true),
            "type 1 is COMMIT"
        );
    }
}
