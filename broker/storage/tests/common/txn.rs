//! Transactional workloads: client batches of transactional producers, markers, and what
//! the transaction state of a log looks like.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_storage::{AbortedTxn, AppendInfo, OpenTxn, PartitionLog, TxnMarker};

/// The clock of the transaction tests.
pub const NOW: i64 = 1_000_000;

/// A batch of `records` records by `producer_id` at `epoch` from `sequence`, transactional or
/// not, as a client encodes it.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    records: usize,
    transactional: bool,
) -> Vec<u8> {
    let records: Vec<Record> = (0..records)
        .map(|i| {
            let i = i32::try_from(i).expect("small");
            Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // The encoder keeps one batch only when sequences advance with offsets.
                sequence: if sequence < 0 { i - 1 } else { sequence + i },
                timestamp: NOW,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(vec![b'v'; 40])),
                headers: Default::default(),
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.to_vec()
}

/// Appends `records` transactional records of `producer_id` (epoch 0) from `sequence`.
pub fn txn_append(
    log: &PartitionLog,
    producer_id: i64,
    sequence: i32,
    records: usize,
) -> AppendInfo {
    log.append(
        &producer_batch(producer_id, 0, sequence, records, true),
        0,
        NOW,
    )
    .expect("transactional append")
}

/// Writes a marker of `producer_id` (epoch 0, coordinator epoch 0).
pub fn end_txn(log: &PartitionLog, producer_id: i64, commit: bool) -> AppendInfo {
    log.append_txn_marker(
        TxnMarker {
            producer_id,
            producer_epoch: 0,
            coordinator_epoch: 0,
            commit,
        },
        0,
        NOW,
    )
    .expect("marker")
}

/// The transaction state a `read_committed` reader relies on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnView {
    pub open: Vec<OpenTxn>,
    pub last_stable_offset: i64,
    pub aborted: Vec<AbortedTxn>,
    pub index: Vec<AbortedTxn>,
}

/// The view of `log` at its log end as high watermark.
pub fn view(log: &PartitionLog) -> TxnView {
    let end = log.log_end_offset();
    TxnView {
        open: log.open_transactions(),
        last_stable_offset: log.last_stable_offset(end),
        aborted: log
            .aborted_transactions(log.log_start_offset(), end)
            .expect("aborted transactions"),
        index: log
            .aborted_transaction_index()
            .expect("the .txnindex files"),
    }
}

/// The `.txnindex` files of a directory with their bytes, by name.
pub fn txn_index_files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    super::dir_files(dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".txnindex"))
        .collect()
}
