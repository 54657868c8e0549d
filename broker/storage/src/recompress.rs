//! `compression.type` on the leader's append path: batches that arrive in another codec are
//! stored recompressed in the topic's codec, keeping offsets deltas, timestamps, keys, values,
//! headers and the producer fields (Kafka's `LogValidator`). Control batches (transaction
//! markers, written by the broker) are stored as written.

use crate::batch::{BatchHeader, Batches};
use crate::error::StorageError;
use crate::records::{self, BatchSpec, Codec};

/// Rewrites the batches of a validated record set whose codec is not `codec`; returns the
/// record set and its headers (the validated `maxTimestamp` kept).
pub(crate) fn recompress(
    records: Vec<u8>,
    headers: Vec<BatchHeader>,
    codec: Codec,
    max_message_bytes: usize,
    segment_bytes: u64,
) -> Result<(Vec<u8>, Vec<BatchHeader>), StorageError> {
    let needs = |h: &BatchHeader| !h.is_control() && (h.attributes & 0x07) as u8 != codec.id();
    if !headers.iter().any(needs) {
        return Ok((records, headers));
    }
    let mut out = Vec::with_capacity(records.len());
    let mut out_headers = Vec::with_capacity(headers.len());
    for (item, header) in Batches::new(&records).zip(headers) {
        let (position, batch) =
            item.map_err(|(position, source)| StorageError::CorruptRecord { position, source })?;
        if !needs(&header) {
            out.extend_from_slice(batch.as_bytes());
            out_headers.push(header);
            continue;
        }
        let invalid = |source| StorageError::InvalidRecord { position, source };
        let decoded = records::decode(&batch).map_err(invalid)?;
        let encoded = records::encode(&BatchSpec::of(&header), &decoded, codec).map_err(invalid)?;
        if encoded.len() > max_message_bytes {
            return Err(StorageError::RecordTooLarge {
                size: encoded.len(),
                max_message_bytes,
            });
        }
        let mut new_header = crate::batch::BatchHeader::parse(&encoded)
            .map_err(|source| StorageError::CorruptRecord { position, source })?;
        new_header.max_timestamp = header.max_timestamp;
        out.extend_from_slice(&encoded);
        out_headers.push(new_header);
    }
    if out.len() as u64 > segment_bytes {
        return Err(StorageError::RecordListTooLarge {
            size: out.len(),
            segment_bytes,
        });
    }
    Ok((out, out_headers))
}
