//! Kafka's own record schemas of `__consumer_offsets` (kafka-protocol has no codecs for them):
//! keys `OffsetCommitKey` (written as v1) and `GroupMetadataKey` (v2), values
//! `OffsetCommitValue` v3 and `GroupMetadataValue` v3; all non-flexible, big-endian, strings with
//! an `int16` length (-1 = null), bytes with an `int32` length. A null value is a tombstone.
//! Batches are real v2 record batches, so Kafka's tools can read the topic: plain ones without
//! producer, transactional ones (TxnOffsetCommit) carrying the producer id and epoch, both with
//! baseSequence -1; reading also yields the transaction markers (control batches).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::error::RecordError;

pub mod fields;

use fields::{
    get_bytes, get_i16, get_i32, get_i64, get_nullable_string, get_string, put_bytes,
    put_nullable_string, put_string,
};

/// Key version of an offset commit record (0 and 1 share the schema; Kafka writes 1).
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// Key version of a group metadata record.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordKey {
    /// `OffsetCommitKey`: the committed offset of one partition for one group.
    OffsetCommit {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// `GroupMetadataKey`: the membership and assignment of one group.
    GroupMetadata {
        /// Group id.
        group: String,
    },
}

/// `OffsetCommitValue` (v3 when written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// Next offset to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record, -1 when unknown.
    pub leader_epoch: i32,
    /// Client-supplied metadata string.
    pub metadata: String,
    /// When the commit was made, epoch milliseconds.
    pub commit_timestamp: i64,
}

/// One member in `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// Member id assigned by the coordinator.
    pub member_id: String,
    /// Static membership id (KIP-345).
    pub group_instance_id: Option<String>,
    /// Client id of the member's connection.
    pub client_id: String,
    /// Host of the member's connection.
    pub client_host: String,
    /// Rebalance timeout (`max.poll.interval.ms`).
    pub rebalance_timeout_ms: i32,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// The member's metadata for the selected protocol.
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// `GroupMetadataValue` (v3 when written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Protocol type (`consumer`, `connect`, ...).
    pub protocol_type: String,
    /// Generation id.
    pub generation: i32,
    /// Selected protocol (assignor name).
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the group entered its current state, epoch milliseconds, -1 when unknown.
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberMetadataValue>,
}

/// A decoded record value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordValue {
    /// Value of an offset commit key.
    OffsetCommit(OffsetCommitValue),
    /// Value of a group metadata key.
    GroupMetadata(GroupMetadataValue),
}

impl RecordKey {
    /// Serialized key.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        match self {
            Self::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut buf, "group", group)?;
                put_string(&mut buf, "topic", topic)?;
                buf.put_i32(*partition);
            }
            Self::GroupMetadata { group } => {
                buf.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut buf, "group", group)?;
            }
        }
        Ok(buf.freeze())
    }

    /// Parses a key. Keys of other coordinators sharing the topic's format (versions above 2,
    /// e.g. transaction or share-group records) are `Ok(None)`: a loader skips them.
    pub fn decode(mut buf: &[u8]) -> Result<Option<Self>, RecordError> {
        let version = get_i16(&mut buf, "key version")?;
        match version {
            0 | 1 => Ok(Some(Self::OffsetCommit {
                group: get_string(&mut buf, "group")?,
                topic: get_string(&mut buf, "topic")?,
                partition: get_i32(&mut buf, "partition")?,
            })),
            2 => Ok(Some(Self::GroupMetadata {
                group: get_string(&mut buf, "group")?,
            })),
            _ => Ok(None),
        }
    }

    /// Group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            Self::OffsetCommit { group, .. } | Self::GroupMetadata { group } => group,
        }
    }

    /// Parses the value stored under this key; `None` for a tombstone.
    pub fn decode_value(&self, value: Option<&[u8]>) -> Result<Option<RecordValue>, RecordError> {
        let Some(value) = value else { return Ok(None) };
        Ok(Some(match self {
            Self::OffsetCommit { .. } => {
                RecordValue::OffsetCommit(OffsetCommitValue::decode(value)?)
            }
            Self::GroupMetadata { .. } => {
                RecordValue::GroupMetadata(GroupMetadataValue::decode(value)?)
            }
        }))
    }
}

impl OffsetCommitValue {
    /// Serialized value (v3).
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, "metadata", &self.metadata)?;
        buf.put_i64(self.commit_timestamp);
        Ok(buf.freeze())
    }

    /// Parses versions 0 to 3.
    pub fn decode(mut buf: &[u8]) -> Result<Self, RecordError> {
        let version = get_i16(&mut buf, "value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "OffsetCommitValue",
                version,
            });
        }
        let offset = get_i64(&mut buf, "offset")?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut buf, "leaderEpoch")?
        } else {
            -1
        };
        let metadata = get_string(&mut buf, "metadata")?;
        let commit_timestamp = get_i64(&mut buf, "commitTimestamp")?;
        if version == 1 {
            get_i64(&mut buf, "expireTimestamp")?;
        }
        Ok(Self {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

impl GroupMetadataValue {
    /// Serialized value (v3).
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut buf = BytesMut::new();
        buf.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut buf, "protocolType", &self.protocol_type)?;
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, "protocol", self.protocol.as_deref())?;
        put_nullable_string(&mut buf, "leader", self.leader.as_deref())?;
        buf.put_i64(self.current_state_timestamp);
        let count = i32::try_from(self.members.len()).map_err(|_| RecordError::TooLong {
            field: "members",
            len: self.members.len(),
        })?;
        buf.put_i32(count);
        for member in &self.members {
            put_string(&mut buf, "memberId", &member.member_id)?;
            put_nullable_string(
                &mut buf,
                "groupInstanceId",
                member.group_instance_id.as_deref(),
            )?;
            put_string(&mut buf, "clientId", &member.client_id)?;
            put_string(&mut buf, "clientHost", &member.client_host)?;
            buf.put_i32(member.rebalance_timeout_ms);
            buf.put_i32(member.session_timeout_ms);
            put_bytes(&mut buf, "subscription", &member.subscription)?;
            put_bytes(&mut buf, "assignment", &member.assignment)?;
        }
        Ok(buf.freeze())
    }

    /// Parses versions 0 to 3.
    pub fn decode(mut buf: &[u8]) -> Result<Self, RecordError> {
        let version = get_i16(&mut buf, "value version")?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                schema: "GroupMetadataValue",
                version,
            });
        }
        let protocol_type = get_string(&mut buf, "protocolType")?;
        let generation = get_i32(&mut buf, "generation")?;
        let protocol = get_nullable_string(&mut buf, "protocol")?;
        let leader = get_nullable_string(&mut buf, "leader")?;
        let current_state_timestamp = if version >= 2 {
            get_i64(&mut buf, "currentStateTimestamp")?
        } else {
            -1
        };
        let count = get_i32(&mut buf, "members")?;
        let mut members = Vec::new();
        for _ in 0..count.max(0) {
            let member_id = get_string(&mut buf, "memberId")?;
            let group_instance_id = if version >= 3 {
                get_nullable_string(&mut buf, "groupInstanceId")?
            } else {
                None
            };
            let client_id = get_string(&mut buf, "clientId")?;
            let client_host = get_string(&mut buf, "clientHost")?;
            let session_timeout_first = version == 0;
            let (rebalance_timeout_ms, session_timeout_ms) = if session_timeout_first {
                let session = get_i32(&mut buf, "sessionTimeout")?;
                (session, session)
            } else {
                let rebalance = get_i32(&mut buf, "rebalanceTimeout")?;
                (rebalance, get_i32(&mut buf, "sessionTimeout")?)
            };
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription: get_bytes(&mut buf, "subscription")?,
                assignment: get_bytes(&mut buf, "assignment")?,
            });
        }
        Ok(Self {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// One record of a batch to append: key and value (`None` = tombstone).
pub type KeyValue = (Bytes, Option<Bytes>);

/// Builds an uncompressed v2 record batch of `records` (offsets 0.., the log assigns the base
/// offset), every record stamped with `timestamp_ms`; no producer, baseSequence -1.
pub fn build_batch(records: &[KeyValue], timestamp_ms: i64) -> Result<Bytes, String> {
    encode_batch(records, timestamp_ms, None)
}

/// [`build_batch`] as one transactional batch of `producer_id`/`producer_epoch` (attributes
/// transactional, baseSequence -1), the way Kafka's coordinator writes TxnOffsetCommit offsets.
pub fn build_txn_batch(
    records: &[KeyValue],
    timestamp_ms: i64,
    producer_id: i64,
    producer_epoch: i16,
) -> Result<Bytes, String> {
    encode_batch(records, timestamp_ms, Some((producer_id, producer_epoch)))
}

/// Kafka's control batch ending `producer_id`'s transaction (attributes transactional |
/// control, baseSequence -1): key int16 version 0 and int16 type (0 ABORT, 1 COMMIT), value
/// int16 version 0 and int32 coordinator epoch. Brokers write it; tests replay it.
pub fn build_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    coordinator_epoch: i32,
    commit: bool,
    timestamp_ms: i64,
) -> Result<Bytes, String> {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(i16::from(commit));
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    encode_records(&[record])
}

fn encode_batch(
    records: &[KeyValue],
    timestamp_ms: i64,
    producer: Option<(i64, i16)>,
) -> Result<Bytes, String> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .zip(0i64..)
        .map(|((key, value), offset)| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset,
            // The encoder keeps records in one batch while offset - sequence stays constant and
            // writes the first record's sequence as baseSequence: -1 for the whole batch.
            sequence: i32::try_from(offset).unwrap_or(i32::MAX).wrapping_sub(1),
            timestamp: timestamp_ms,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    encode_records(&records)
}

fn encode_records(records: &[Record]) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records, &options).map_err(|e| e.to_string())?;
    Ok(buf.freeze())
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    /// Offset of the record.
    pub offset: i64,
    /// Key bytes (records without a key are not written by the coordinator).
    pub key: Option<Bytes>,
    /// Value bytes, `None` for a tombstone.
    pub value: Option<Bytes>,
    /// Producer id of its batch, -1 for none.
    pub producer_id: i64,
    /// Whether its batch is part of a transaction (pending until the producer's marker).
    pub transactional: bool,
}

/// A transaction marker (control batch) read back from the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedMarker {
    /// Offset of the marker.
    pub offset: i64,
    /// Producer whose transaction it ends.
    pub producer_id: i64,
    /// That producer's epoch.
    pub producer_epoch: i16,
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
}

/// Result of splitting fetched bytes into complete batches.
#[derive(Debug, Default)]
pub struct ParsedBatches {
    /// Data records of every complete batch, in offset order.
    pub records: Vec<LoggedRecord>,
    /// COMMIT/ABORT markers of every complete batch, in offset order (other control records,
    /// such as leader changes, carry nothing for groups and are skipped).
    pub markers: Vec<LoggedMarker>,
    /// Offset following the last complete batch, `None` when no batch was complete.
    pub next_offset: Option<i64>,
}

/// Control record types of transaction markers.
const CONTROL_ABORT: i16 = 0;
const CONTROL_COMMIT: i16 = 1;

/// Splits `data` (raw fetched bytes) into complete v2 batches and decodes their records; a
/// trailing partial batch is left for the next read, as a fetch may cut one.
pub fn parse_batches(mut data: Bytes) -> Result<ParsedBatches, (i64, String)> {
    let mut parsed = ParsedBatches::default();
    while data.len() >= 12 {
        let base_offset = (&data[0..8]).get_i64();
        let batch_length = (&data[8..12]).get_i32();
        let total = usize::try_from(batch_length)
            .map_err(|_| (base_offset, format!("negative batch length {batch_length}")))?
            .saturating_add(12);
        if data.len() < total {
            break;
        }
        let mut batch = data.split_to(total);
        let last_offset_delta = batch.get(23..27).map_or(0, |mut b| b.get_i32());
        let set =
            RecordBatchDecoder::decode(&mut batch).map_err(|e| (base_offset, e.to_string()))?;
        for record in set.records {
            if record.control {
                let mut key = record.key.as_deref().unwrap_or_default();
                let (Ok(_version), Ok(kind)) = (key.try_get_i16(), key.try_get_i16()) else {
                    return Err((
                        record.offset,
                        "control record key shorter than 4 bytes".into(),
                    ));
                };
                if kind == CONTROL_ABORT || kind == CONTROL_COMMIT {
                    parsed.markers.push(LoggedMarker {
                        offset: record.offset,
                        producer_id: record.producer_id,
                        producer_epoch: record.producer_epoch,
                        commit: kind == CONTROL_COMMIT,
                    });
                }
                continue;
            }
            parsed.records.push(LoggedRecord {
                offset: record.offset,
                key: record.key,
                value: record.value,
                producer_id: record.producer_id,
                transactional: record.transactional,
            });
        }
        parsed.next_offset = Some(base_offset + i64::from(last_offset_delta) + 1);
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests;
