//! Property tests of the record-batch validator: it never panics, whatever the bytes (also
//! bytes under a header whose CRC was made to match, which is what reaches the record walk),
//! and every batch a real encoder (kafka-protocol's, with each of Kafka's codecs) produces
//! passes, reporting the largest record timestamp.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;
use strom_storage::batch::{Batches, RecordBatch};
use strom_storage::validate::{
    ProduceRules, RecordsSummary, validate_produce_batch, validate_stored_batch,
};

const NOW: i64 = 1_700_000_000_000;

fn rules() -> ProduceRules {
    ProduceRules {
        now_ms: NOW,
        timestamp_type: strom_storage::TimestampType::CreateTime,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        require_keys: false,
        from_client: true,
    }
}

/// A header over `records` with `count` and `attributes`, its length and CRC made consistent.
fn sealed(count: i32, attributes: i16, records: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 61];
    b.extend_from_slice(records);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[16] = 2;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[23..27].copy_from_slice(&(count.max(1) - 1).to_be_bytes());
    b[27..35].copy_from_slice(&NOW.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    b[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn run(bytes: &[u8]) {
    if let Ok(batch) = RecordBatch::parse(bytes) {
        let _ = validate_produce_batch(&batch, 0, &rules());
        let _ = validate_stored_batch(&batch);
    }
}

#[derive(Debug, Clone)]
struct Spec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp_delta: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..512)),
        proptest::collection::vec(
            (
                "[a-z]{1,8}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            ),
            0..3,
        ),
        -100_000i64..3_600_000,
    )
        .prop_map(|(key, value, headers, timestamp_delta)| Spec {
            key,
            value,
            headers,
            timestamp_delta,
        })
}

fn encode(specs: &[Spec], compression: Compression) -> Vec<u8> {
    let records: Vec<Record> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut headers = IndexMap::new();
            for (k, v) in &s.headers {
                headers.insert(StrBytes::from_string(k.clone()), v.clone().map(Bytes::from));
            }
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Offset minus sequence must stay constant for the encoder to keep one batch.
                sequence: i as i32 - 1,
                timestamp: NOW - 100_000 + s.timestamp_delta,
                key: s.key.clone().map(Bytes::from),
                value: s.value.clone().map(Bytes::from),
                headers,
            }
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("the reference encoder encodes");
    buf.to_vec()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        run(&bytes);
    }

    #[test]
    fn arbitrary_records_under_a_matching_crc_never_panic(
        records in proptest::collection::vec(any::<u8>(), 0..1024),
        count in prop_oneof![Just(1i32), Just(3), Just(i32::MAX), any::<i32>()],
        codec in 0i16..8,
    ) {
        run(&sealed(count, codec, &records));
    }

    #[test]
    fn mutated_valid_batches_never_panic(
        specs in proptest::collection::vec(spec(), 1..8),
        codec in 0usize..5,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let valid = encode(&specs, CODECS[codec]);
        let mut records = valid[61..].to_vec();
        for (at, bits) in flips {
            if !records.is_empty() {
                let i = at % records.len();
                records[i] ^= bits;
            }
        }
        let count = i32::from_be_bytes([valid[57], valid[58], valid[59], valid[60]]);
        let attributes = i16::from_be_bytes([valid[21], valid[22]]);
        run(&sealed(count, attributes, &records));
    }

    #[test]
    fn batches_from_a_real_encoder_pass(
        specs in proptest::collection::vec(spec(), 1..40),
        codec in 0usize..5,
    ) {
        let bytes = encode(&specs, CODECS[codec]);
        prop_assert_eq!(Batches::new(&bytes).count(), 1, "one batch");
        let batch = RecordBatch::parse(&bytes).expect("framing");
        let max = specs.iter().map(|s| NOW - 100_000 + s.timestamp_delta).max().unwrap_or(-1);
        prop_assert_eq!(
            validate_produce_batch(&batch, 0, &rules()),
            Ok(RecordsSummary { max_timestamp: max })
        );
        prop_assert_eq!(validate_stored_batch(&batch), Ok(()));
    }
}
