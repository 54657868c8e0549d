//! Kafka's record schemas of `__transaction_state` (kafka-protocol has no codecs for them).
//!
//! Key `TransactionLogKey` v0: `int16 version, string transactional_id`. Value
//! `TransactionLogValue`: written as v0 (non-flexible: `int64 producer_id, int16 producer_epoch,
//! int32 transaction_timeout_ms, int8 transaction_status, nullable [topic string, [int32]]
//! partitions, int64 last_update_timestamp_ms, int64 start_timestamp_ms`), read as v0 or v1
//! (flexible: compact strings and arrays, tagged fields 0 `PreviousProducerId`,
//! 1 `NextProducerId`, 2 `ClientTransactionVersion`). A null value is the tombstone of an
//! expired transactional id. Batches are v2 record batches built with strom-group's
//! [`build_batch`](strom_group::records::build_batch), so Kafka's tools read the topic.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use strom_group::RecordError;
use strom_group::records::fields::{
    get_i8, get_i16, get_i32, get_i64, get_string, put_string, take_utf8,
};

use crate::state::TxnState;

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// `TransactionLogKey`: the transactional id a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogKey {
    /// The transactional id.
    pub transactional_id: String,
}

/// `TransactionLogValue`: the state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// Producer id in use by the transactional id.
    pub producer_id: i64,
    /// Producer id of the last committed transaction (v1 tag 0; -1 in v0).
    pub previous_producer_id: i64,
    /// Latest producer id sent to the producer (v1 tag 1; -1 in v0).
    pub next_producer_id: i64,
    /// Epoch of the producer id.
    pub producer_epoch: i16,
    /// Transaction timeout the producer asked for.
    pub timeout_ms: i32,
    /// State of the transaction.
    pub state: TxnState,
    /// Partitions in the transaction, grouped by topic (empty for Empty and Complete states).
    pub partitions: Vec<(String, Vec<i32>)>,
    /// When the state last changed, epoch milliseconds.
    pub last_update_timestamp_ms: i64,
    /// When the transaction started (first partition added), epoch milliseconds, -1 if none.
    pub start_timestamp_ms: i64,
    /// Transaction protocol version of the client (v1 tag 2; 0 in v0).
    pub client_transaction_version: i16,
}

impl TxnLogKey {
    /// Serialized key (v0).
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        buf.put_i16(KEY_VERSION);
        put_string(&mut buf, "transactionalId", &self.transactional_id)?;
        Ok(buf.freeze())
    }

    /// Parses a key; only version 0 exists.
    pub fn decode(mut buf: &[u8]) -> Result<Self, RecordError> {
        let version = get_i16(&mut buf, "key version")?;
        if version != KEY_VERSION {
            return Err(RecordError::UnsupportedVersion {
                schema: "TransactionLogKey",
                version,
            });
        }
        Ok(Self {
            transactional_id: get_string(&mut buf, "transactionalId")?,
        })
    }
}

impl TxnLogValue {
    /// Serialized value (v0). Kafka writes a null partition list for the Empty state.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        buf.put_i16(VALUE_VERSION);
        buf.put_i64(self.producer_id);
        buf.put_i16(self.producer_epoch);
        buf.put_i32(self.timeout_ms);
        buf.put_i8(self.state.code());
        if self.state == TxnState::Empty {
            buf.put_i32(-1);
        } else {
            buf.put_i32(len_i32("transactionPartitions", self.partitions.len())?);
            for (topic, partitions) in &self.partitions {
                put_string(&mut buf, "topic", topic)?;
                buf.put_i32(len_i32("partitionIds", partitions.len())?);
                for p in partitions {
                    buf.put_i32(*p);
                }
            }
        }
        buf.put_i64(self.last_update_timestamp_ms);
        buf.put_i64(self.start_timestamp_ms);
        Ok(buf.freeze())
    }

    /// Parses version 0 or 1.
    pub fn decode(mut buf: &[u8]) -> Result<Self, RecordError> {
        let version = get_i16(&mut buf, "value version")?;
        let flexible = match version {
            0 => false,
            1 => true,
            _ => {
                return Err(RecordError::UnsupportedVersion {
                    schema: "TransactionLogValue",
                    version,
                });
            }
        };
        let b = &mut buf;
        let producer_id = get_i64(b, "producerId")?;
        let producer_epoch = get_i16(b, "producerEpoch")?;
        let timeout_ms = get_i32(b, "transactionTimeoutMs")?;
        let code = get_i8(b, "transactionStatus")?;
        let state = TxnState::from_code(code).ok_or(RecordError::UnsupportedVersion {
            schema: "TransactionStatus",
            version: i16::from(code),
        })?;
        let count = if flexible {
            get_compact_len(b, "transactionPartitions")?
        } else {
            usize::try_from(get_i32(b, "transactionPartitions")?).ok()
        };
        let mut partitions = Vec::new();
        for _ in 0..count.unwrap_or(0) {
            let topic = if flexible {
                get_compact_string(b, "topic")?
            } else {
                get_string(b, "topic")?
            };
            let n = if flexible {
                get_compact_len(b, "partitionIds")?
            } else {
                usize::try_from(get_i32(b, "partitionIds")?).ok()
            }
            .ok_or(RecordError::UnexpectedNull {
                field: "partitionIds",
            })?;
            let mut ids = Vec::new();
            for _ in 0..n {
                ids.push(get_i32(b, "partitionId")?);
            }
            if flexible {
                skip_tagged_fields(b)?;
            }
            partitions.push((topic, ids));
        }
        let mut value = Self {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_timestamp_ms: get_i64(b, "transactionLastUpdateTimestampMs")?,
            start_timestamp_ms: get_i64(b, "transactionStartTimestampMs")?,
            client_transaction_version: 0,
        };
        if flexible {
            let fields = get_uvarint(b, "taggedFields")?;
            for _ in 0..fields {
                let tag = get_uvarint(b, "tag")?;
                let size = usize::try_from(get_uvarint(b, "tagSize")?).unwrap_or(usize::MAX);
                if b.len() < size {
                    return Err(RecordError::Truncated {
                        field: "taggedField",
                    });
                }
                let (mut data, rest) = b.split_at(size);
                *b = rest;
                match tag {
                    0 => value.previous_producer_id = get_i64(&mut data, "previousProducerId")?,
                    1 => value.next_producer_id = get_i64(&mut data, "nextProducerId")?,
                    2 => {
                        value.client_transaction_version =
                            get_i16(&mut data, "clientTransactionVersion")?;
                    }
                    _ => {}
                }
            }
        }
        Ok(value)
    }
}

/// What a `__transaction_state` record says: a transactional id's state, or `None` for the
/// tombstone of an expired one.
pub fn decode_record(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<(TxnLogKey, Option<TxnLogValue>), RecordError> {
    let key = TxnLogKey::decode(key)?;
    let value = value.map(TxnLogValue::decode).transpose()?;
    Ok((key, value))
}

fn len_i32(field: &'static str, len: usize) -> Result<i32, RecordError> {
    i32::try_from(len).map_err(|_| RecordError::TooLong { field, len })
}

fn get_uvarint(buf: &mut &[u8], field: &'static str) -> Result<u64, RecordError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = buf
            .try_get_u8()
            .map_err(|_| RecordError::Truncated { field })?;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(RecordError::TooLong { field, len: 10 })
}

/// Length of a compact (nullable) array or string: `None` for null.
fn get_compact_len(buf: &mut &[u8], field: &'static str) -> Result<Option<usize>, RecordError> {
    let n = get_uvarint(buf, field)?;
    if n == 0 {
        return Ok(None);
    }
    let len = usize::try_from(n - 1).map_err(|_| RecordError::Truncated { field })?;
    // Every element takes at least one byte: a longer count than bytes left is truncated.
    if len > buf.len() {
        return Err(RecordError::Truncated { field });
    }
    Ok(Some(len))
}

fn get_compact_string(buf: &mut &[u8], field: &'static str) -> Result<String, RecordError> {
    let len = get_compact_len(buf, field)?.ok_or(RecordError::UnexpectedNull { field })?;
    take_utf8(buf, len, field)
}

fn skip_tagged_fields(buf: &mut &[u8]) -> Result<(), RecordError> {
    let fields = get_uvarint(buf, "taggedFields")?;
    for _ in 0..fields {
        get_uvarint(buf, "tag")?;
        let size = usize::try_from(get_uvarint(buf, "tagSize")?).unwrap_or(usize::MAX);
        if buf.len() < size {
            return Err(RecordError::Truncated {
                field: "taggedField",
            });
        }
        buf.advance(size);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
