//! Fetch responses framed around file ranges, as Kafka sends them: the response header and every
//! field are encoded by the `kafka-protocol` codec as usual, and each partition's record set
//! follows its length prefix straight from the segment file (`sendfile`), never copied into the
//! encoded buffer. The bytes on the wire are exactly those of the codec's own encoding of the
//! same response with the records filled in (a test checks every served version).
//!
//! How the fields around a record set are found: each structure is encoded with its children
//! left empty (no topics, no partitions, empty records), which ends in that empty child's
//! length prefix and, in flexible versions (v12+), an empty tagged-field section. Everything
//! before that tail is the structure's own leading fields; the children and their real length
//! prefixes are written in between. This holds only while no tagged field is set, which the
//! fetch handler never does; otherwise, or if a tail is not what it must be, the records are
//! read into memory and the response is encoded whole.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::{Encodable, HeaderVersion};
use strom_storage::FileRecords;

use super::ProtocolError;
use super::response::{Part, Response};
use crate::handlers::fetch::FetchReply;

/// First version with compact arrays, compact bytes and tagged fields.
const FIRST_FLEXIBLE: i16 = 12;

/// Frames `reply` for the wire.
pub fn encode_fetch(
    version: i16,
    correlation_id: i32,
    reply: FetchReply,
) -> Result<Response, ProtocolError> {
    let FetchReply {
        mut response,
        records,
    } = reply;
    if records.iter().flatten().any(|r| !r.is_empty())
        && splittable(&response, &records)
        && let Some(parts) = split_encode(version, correlation_id, &response, &records)?
    {
        return Ok(Response::from_parts(parts));
    }
    // Nothing to send from files, or a layout this encoder does not split: fill in the bytes.
    for (topic, files) in response.responses.iter_mut().zip(&records) {
        for (partition, file) in topic.partitions.iter_mut().zip(files) {
            if !file.is_empty() {
                partition.records =
                    Some(file.read_to_bytes().map_err(|e| encode_error(version, e))?);
            }
        }
    }
    super::encode(ApiKey::Fetch, version, correlation_id, &response).map(Response::from_bytes)
}

fn encode_error(version: i16, error: impl std::fmt::Display) -> ProtocolError {
    ProtocolError::Encode {
        api: ApiKey::Fetch,
        version,
        reason: error.to_string(),
    }
}

/// True when no tagged field is set anywhere (so every encoded structure ends in an empty
/// tagged-field section) and every record field is empty, one file record set per partition.
fn splittable(response: &FetchResponse, records: &[Vec<FileRecords>]) -> bool {
    response.unknown_tagged_fields.is_empty()
        && response.node_endpoints.is_empty()
        && response.responses.len() == records.len()
        && response
            .responses
            .iter()
            .zip(records)
            .all(|(topic, files)| {
                topic.unknown_tagged_fields.is_empty()
                    && topic.partitions.len() == files.len()
                    && topic.partitions.iter().all(|p| {
                        p.unknown_tagged_fields.is_empty()
                            && p.diverging_epoch == Default::default()
                            && p.current_leader == Default::default()
                            && p.snapshot_id == Default::default()
                            && p.records.as_ref().is_some_and(Bytes::is_empty)
                    })
            })
}

/// A structure encoded with its children empty, split into its leading fields and its tail.
struct Encoded {
    bytes: BytesMut,
    /// Where the empty child's length prefix starts.
    head: usize,
    /// Where the tagged-field section starts (the end in non-flexible versions).
    tagged: usize,
}

fn encode_empty<T: Encodable>(value: &T, version: i16) -> Result<Option<Encoded>, ProtocolError> {
    let mut bytes = BytesMut::new();
    value
        .encode(&mut bytes, version)
        .map_err(|e| encode_error(version, e))?;
    // The empty child's prefix: compact length 0 is varint 1, a classic one is i32 0; then, in
    // flexible versions, the tagged-field count 0.
    let expected: &[u8] = if version >= FIRST_FLEXIBLE {
        &[1, 0]
    } else {
        &[0, 0, 0, 0]
    };
    if !bytes.ends_with(expected) {
        return Ok(None);
    }
    let head = bytes.len() - expected.len();
    let tagged = if version >= FIRST_FLEXIBLE {
        bytes.len() - 1
    } else {
        bytes.len()
    };
    Ok(Some(Encoded {
        bytes,
        head,
        tagged,
    }))
}

/// A length prefix: compact (unsigned varint of `len + 1`) or classic (`i32`).
fn put_len(buf: &mut BytesMut, len: usize, version: i16) -> Result<(), ProtocolError> {
    if version >= FIRST_FLEXIBLE {
        let mut v = u32::try_from(len + 1).map_err(|e| encode_error(version, e))?;
        while v >= 0x80 {
            buf.put_u8((v as u8) | 0x80);
            v >>= 7;
        }
        buf.put_u8(v as u8);
    } else {
        buf.put_i32(i32::try_from(len).map_err(|e| encode_error(version, e))?);
    }
    Ok(())
}

enum Piece {
    Bytes(BytesMut),
    File(strom_storage::FileRange),
}

fn split_encode(
    version: i16,
    correlation_id: i32,
    response: &FetchResponse,
    records: &[Vec<FileRecords>],
) -> Result<Option<Vec<Part>>, ProtocolError> {
    let mut pieces: Vec<Piece> = Vec::new();
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // the frame size, patched at the end
    let header_version = FetchResponse::header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| encode_error(version, e))?;

    let mut top = response.clone();
    top.responses = Vec::new();
    let Some(top) = encode_empty(&top, version)? else {
        return Ok(None);
    };
    buf.extend_from_slice(&top.bytes[..top.head]);
    put_len(&mut buf, response.responses.len(), version)?;
    for (topic, files) in response.responses.iter().zip(records) {
        let mut empty_topic = topic.clone();
        empty_topic.partitions = Vec::new();
        let Some(encoded_topic) = encode_empty(&empty_topic, version)? else {
            return Ok(None);
        };
        buf.extend_from_slice(&encoded_topic.bytes[..encoded_topic.head]);
        put_len(&mut buf, topic.partitions.len(), version)?;
        for (partition, file) in topic.partitions.iter().zip(files) {
            let Some(encoded) = encode_empty(partition, version)? else {
                return Ok(None);
            };
            buf.extend_from_slice(&encoded.bytes[..encoded.head]);
            put_len(&mut buf, file.len(), version)?;
            if !file.is_empty() {
                pieces.push(Piece::Bytes(buf.split()));
                pieces.extend(file.ranges.iter().cloned().map(Piece::File));
            }
            buf.extend_from_slice(&encoded.bytes[encoded.tagged..]);
        }
        buf.extend_from_slice(&encoded_topic.bytes[encoded_topic.tagged..]);
    }
    buf.extend_from_slice(&top.bytes[top.tagged..]);
    pieces.push(Piece::Bytes(buf));

    let total: usize = pieces
        .iter()
        .map(|p| match p {
            Piece::Bytes(b) => b.len(),
            Piece::File(r) => r.len(),
        })
        .sum();
    let size = i32::try_from(total - 4).map_err(|_| ProtocolError::Encode {
        api: ApiKey::Fetch,
        version,
        reason: format!("response of {total} bytes is too large to frame"),
    })?;
    if let Some(Piece::Bytes(first)) = pieces.first_mut() {
        first[..4].copy_from_slice(&size.to_be_bytes());
    }
    Ok(Some(
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Bytes(b) => Part::Bytes(b.freeze()),
                Piece::File(r) => Part::File(r),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::error::ResponseError;
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use strom_storage::{LogConfig, PartitionLog};

    use crate::test_batches::batch;

    /// A log of several small segments, so reads span segment files.
    fn log(dir: &std::path::Path) -> PartitionLog {
        let config = LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 512,
            ..LogConfig::default()
        };
        let log = PartitionLog::open(dir, config, 1_000).expect("open");
        for tag in 0..20u8 {
            log.append(&batch(3, tag), 0, 1_000).expect("append");
        }
        assert!(log.segment_count() > 2);
        log
    }

    fn partition(index: i32, error: i16) -> PartitionData {
        PartitionData::default()
            .with_partition_index(index)
            .with_error_code(error)
            .with_high_watermark(60)
            .with_last_stable_offset(60)
            .with_log_start_offset(0)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(Some(Bytes::new()))
    }

    #[test]
    fn split_frames_equal_the_codec_encoding_for_every_served_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let reads = [
            log.read_file_records(0, 3000, i64::MAX, true)
                .expect("read"),
            log.read_file_records(7, 1 << 20, i64::MAX, true)
                .expect("read"),
            log.read_file_records(59, 10, i64::MAX, true).expect("read"),
        ];
        assert!(reads[1].ranges.len() > 1, "a read spanning segments");
        let (min, max) = super::super::versions::supported(ApiKey::Fetch).expect("served");
        for version in min..=max {
            let mut topics = vec![
                FetchableTopicResponse::default().with_partitions(vec![
                    partition(0, 0),
                    partition(1, 0),
                    partition(2, 0),
                ]),
                FetchableTopicResponse::default().with_partitions(vec![
                    partition(0, ResponseError::OffsetOutOfRange.code()),
                    partition(1, 0),
                ]),
            ];
            if version >= 13 {
                topics[0].topic_id = uuid::Uuid::from_u128(1);
                topics[1].topic_id = uuid::Uuid::from_u128(2);
            } else {
                topics[0].topic = crate::handlers::topic_name("orders");
                topics[1].topic = crate::handlers::topic_name("clicks");
            }
            let response = FetchResponse::default()
                .with_session_id(0)
                .with_throttle_time_ms(0)
                .with_responses(topics);
            let records = vec![
                vec![reads[0].clone(), FileRecords::default(), reads[1].clone()],
                vec![FileRecords::default(), reads[2].clone()],
            ];
            let mut filled = response.clone();
            for (topic, files) in filled.responses.iter_mut().zip(&records) {
                for (p, file) in topic.partitions.iter_mut().zip(files) {
                    p.records = Some(file.read_to_bytes().expect("read"));
                }
            }
            let expected =
                super::super::encode(ApiKey::Fetch, version, 42, &filled).expect("codec encoding");
            let framed = encode_fetch(version, 42, FetchReply { response, records })
                .expect("split encoding");
            assert!(
                framed.parts().iter().any(|p| matches!(p, Part::File(_))),
                "v{version}: record sets stay in the files"
            );
            assert_eq!(framed.len(), expected.len(), "v{version}: frame length");
            assert_eq!(
                framed.to_bytes().expect("materialise"),
                expected,
                "v{version}: bytes on the wire"
            );
        }
    }

    #[test]
    fn a_tagged_field_falls_back_to_encoding_in_memory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = log(dir.path());
        let read = log
            .read_file_records(0, 2000, i64::MAX, true)
            .expect("read");
        let mut p = partition(0, 0);
        p.diverging_epoch.epoch = 3;
        let response = FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default().with_partitions(vec![p]),
        ]);
        let mut filled = response.clone();
        filled.responses[0].partitions[0].records = Some(read.read_to_bytes().expect("read"));
        let expected = super::super::encode(ApiKey::Fetch, 12, 1, &filled).expect("encode");
        let framed = encode_fetch(
            12,
            1,
            FetchReply {
                response,
                records: vec![vec![read]],
            },
        )
        .expect("encode");
        assert!(framed.parts().iter().all(|p| matches!(p, Part::Bytes(_))));
        assert_eq!(framed.to_bytes().expect("bytes"), expected);
    }
}
