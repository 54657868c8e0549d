//! `.txnindex` files: each segment's aborted transactions in Kafka's `TransactionIndex`
//! format, one 34-byte entry per ABORT marker written into the segment, in marker order:
//! int16 version (0), int64 producer id, int64 first offset, int64 last offset (the marker's
//! offset), int64 last stable offset (right after the marker). Big-endian.
//!
//! A `read_committed` fetch uses them to tell the consumer which producers' data to drop in
//! which offset ranges (`aborted_transactions` in the Fetch response).

/// Suffix of a segment's transaction index.
pub(crate) const TXN_INDEX_SUFFIX: &str = ".txnindex";
/// Bytes per entry.
pub const ABORTED_TXN_SIZE: usize = 34;
const VERSION: i16 = 0;

/// One aborted transaction (Kafka's `AbortedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    /// The producer id.
    pub producer_id: i64,
    /// Offset of the transaction's first data batch.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset right after the marker (high watermark not counted).
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    /// The entry's bytes.
    pub fn encode(&self) -> [u8; ABORTED_TXN_SIZE] {
        let mut out = [0u8; ABORTED_TXN_SIZE];
        out[0..2].copy_from_slice(&VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    /// Decodes one entry; `None` for a version other than 0.
    pub fn decode(bytes: &[u8; ABORTED_TXN_SIZE]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(b)
        };
        (i16::from_be_bytes([bytes[0], bytes[1]]) == VERSION).then(|| AbortedTxn {
            producer_id: i64_at(2),
            first_offset: i64_at(10),
            last_offset: i64_at(18),
            last_stable_offset: i64_at(26),
        })
    }
}

/// Decodes a whole file's entries; `Err` when it ends in a partial entry or holds an
/// entry of an unknown version.
pub(crate) fn decode_all(bytes: &[u8]) -> Result<Vec<AbortedTxn>, String> {
    if !bytes.len().is_multiple_of(ABORTED_TXN_SIZE) {
        return Err(format!(
            "{} bytes is not a whole number of {ABORTED_TXN_SIZE}-byte entries",
            bytes.len()
        ));
    }
    bytes
        .chunks_exact(ABORTED_TXN_SIZE)
        .map(|chunk| {
            let mut entry = [0u8; ABORTED_TXN_SIZE];
            entry.copy_from_slice(chunk);
            AbortedTxn::decode(&entry).ok_or_else(|| "an entry has an unknown version".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_kafkas_34_byte_layout() {
        let entry = AbortedTxn {
            producer_id: 0x0102_0304_0506_0708,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let bytes = entry.encode();
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&10i64.to_be_bytes());
        want.extend_from_slice(&20i64.to_be_bytes());
        want.extend_from_slice(&21i64.to_be_bytes());
        assert_eq!(bytes.to_vec(), want);
        assert_eq!(AbortedTxn::decode(&bytes), Some(entry));
        let mut two = bytes.to_vec();
        two.extend_from_slice(&bytes);
        assert_eq!(decode_all(&two), Ok(vec![entry, entry]));
        assert!(decode_all(&two[..40]).is_err(), "a partial entry");
        two[34] = 1;
        assert!(decode_all(&two).is_err(), "version 1 is unknown");
    }
}
