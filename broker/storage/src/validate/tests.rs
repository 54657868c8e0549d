//! One case per validator rule: a batch built byte by byte, the rules it meets, and what the
//! validator must answer.

use std::io::Write;

use super::*;
use crate::batch::{LOG_OVERHEAD, RECORD_BATCH_OVERHEAD};

const NOW: i64 = 1_700_000_000_000;

fn rules() -> ProduceRules {
    ProduceRules {
        now_ms: NOW,
        timestamp_type: TimestampType::CreateTime,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        require_keys: false,
        from_client: true,
    }
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One record's fields, encoded as Kafka's `DefaultRecord` unless a test garbles them.
#[derive(Clone)]
struct Rec {
    timestamp_delta: i64,
    offset_delta: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

fn rec(offset_delta: i64) -> Rec {
    Rec {
        timestamp_delta: offset_delta,
        offset_delta,
        key: Some(b"k".to_vec()),
        value: Some(format!("value-{offset_delta}").into_bytes()),
        headers: vec![(b"h".to_vec(), Some(b"v".to_vec()))],
    }
}

fn body(r: &Rec) -> Vec<u8> {
    let mut b = vec![0u8];
    put_varint(&mut b, r.timestamp_delta);
    put_varint(&mut b, r.offset_delta);
    for field in [&r.key, &r.value] {
        match field {
            Some(v) => {
                put_varint(&mut b, v.len() as i64);
                b.extend_from_slice(v);
            }
            None => put_varint(&mut b, -1),
        }
    }
    put_varint(&mut b, r.headers.len() as i64);
    for (k, v) in &r.headers {
        put_varint(&mut b, k.len() as i64);
        b.extend_from_slice(k);
        match v {
            Some(v) => {
                put_varint(&mut b, v.len() as i64);
                b.extend_from_slice(v);
            }
            None => put_varint(&mut b, -1),
        }
    }
    b
}

fn encode(r: &Rec) -> Vec<u8> {
    let b = body(r);
    let mut out = Vec::new();
    put_varint(&mut out, b.len() as i64);
    out.extend(b);
    out
}

fn encode_all(records: &[Rec]) -> Vec<u8> {
    records.iter().flat_map(encode).collect()
}

/// Header fields a case may change.
#[derive(Clone, Copy)]
struct Head {
    count: i32,
    last_offset_delta: i32,
    attributes: i16,
    base_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
}

fn head(count: i32) -> Head {
    Head {
        count,
        last_offset_delta: count - 1,
        attributes: 0,
        base_timestamp: NOW,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    }
}

fn batch(h: Head, records: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; RECORD_BATCH_OVERHEAD];
    b.extend_from_slice(records);
    let len = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b[16] = 2;
    b[21..23].copy_from_slice(&h.attributes.to_be_bytes());
    b[23..27].copy_from_slice(&h.last_offset_delta.to_be_bytes());
    b[27..35].copy_from_slice(&h.base_timestamp.to_be_bytes());
    b[35..43].copy_from_slice(&h.base_timestamp.to_be_bytes());
    b[43..51].copy_from_slice(&h.producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&h.producer_epoch.to_be_bytes());
    b[53..57].copy_from_slice(&h.base_sequence.to_be_bytes());
    b[57..61].copy_from_slice(&h.count.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn good(n: i64) -> Vec<u8> {
    let records: Vec<Rec> = (0..n).map(rec).collect();
    batch(head(n as i32), &encode_all(&records))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn xerial(data: &[u8], block: usize) -> Vec<u8> {
    let mut out = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for chunk in data.chunks(block) {
        let c = snap::raw::Encoder::new()
            .compress_vec(chunk)
            .expect("snappy");
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend(c);
    }
    out
}

fn lz4_frame(data: &[u8]) -> Vec<u8> {
    let mut e = lz4::EncoderBuilder::new().build(Vec::new()).expect("lz4");
    e.write_all(data).expect("lz4");
    let (out, result) = e.finish();
    result.expect("lz4");
    out
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).expect("zstd")
}

fn compressed(codec: i16, n: i64) -> Vec<u8> {
    let records: Vec<Rec> = (0..n).map(rec).collect();
    let plain = encode_all(&records);
    let data = match codec {
        1 => gzip(&plain),
        2 => xerial(&plain, 64),
        3 => lz4_frame(&plain),
        4 => zstd(&plain),
        _ => plain,
    };
    batch(
        Head {
            attributes: codec,
            ..head(n as i32)
        },
        &data,
    )
}

fn check(bytes: &[u8], rules: &ProduceRules) -> Result<RecordsSummary, BatchError> {
    let batch = RecordBatch::parse(bytes)?;
    validate_produce_batch(&batch, 0, rules)
}

type Expect = fn(&Result<RecordsSummary, BatchError>) -> bool;

#[test]
fn every_rule() {
    let three: Vec<Rec> = (0..3).map(rec).collect();
    let with = |f: fn(&mut Rec)| {
        let mut r = rec(0);
        f(&mut r);
        batch(head(1), &encode(&r))
    };
    let huge_key = {
        // A key claiming 2^30 bytes that are not there.
        let mut b = vec![0u8];
        put_varint(&mut b, 0);
        put_varint(&mut b, 0);
        put_varint(&mut b, 1 << 30);
        b.extend_from_slice(b"tiny");
        let mut r = Vec::new();
        put_varint(&mut r, b.len() as i64);
        r.extend(b);
        batch(head(1), &r)
    };
    let length_past_end = {
        let mut r = encode(&rec(0));
        r[0] = 0x7e; // length 63, more than the batch holds
        batch(head(1), &r)
    };
    let length_too_large = {
        let mut r = encode(&rec(0));
        r[0] += 2; // one byte more than the fields, which then runs into nothing
        r.push(0);
        batch(head(1), &r)
    };
    let trailing = {
        let mut r = encode(&rec(0));
        r.extend_from_slice(&[1, 2, 3]);
        batch(head(1), &r)
    };
    let cases: Vec<(&str, Vec<u8>, ProduceRules, Expect)> = vec![
        ("valid", good(3), rules(), |r| {
            *r == Ok(RecordsSummary {
                max_timestamp: NOW + 2,
            })
        }),
        (
            "null key and value",
            with(|r| {
                r.key = None;
                r.value = None;
                r.headers.clear();
            }),
            rules(),
            |r| r.is_ok(),
        ),
        ("key claiming 2^30 bytes", huge_key, rules(), |r| {
            matches!(
                r,
                Err(BatchError::BadFieldLength {
                    record: 0,
                    field: "key",
                    length: 1_073_741_824,
                    ..
                })
            )
        }),
        (
            "record length past the batch",
            length_past_end,
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::BadFieldLength { record: 0, .. })
                        | Err(BatchError::MalformedRecord { record: 0, .. })
                )
            },
        ),
        (
            "record length larger than its fields",
            length_too_large,
            rules(),
            |r| matches!(r, Err(BatchError::MalformedRecord { record: 0, .. })),
        ),
        ("bytes after the last record", trailing, rules(), |r| {
            matches!(r, Err(BatchError::TrailingBytes { record_count: 1 }))
        }),
        (
            "count 5 holding 1",
            batch(head(5), &encode(&rec(0))),
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::RecordCountMismatch {
                        record_count: 5,
                        found: 1,
                        record: 1
                    })
                )
            },
        ),
        (
            "count 2^31-1",
            batch(head(i32::MAX), &encode(&rec(0))),
            rules(),
            |r| matches!(r, Err(BatchError::RecordCountMismatch { found: 1, .. })),
        ),
        (
            "count 1 holding 3",
            batch(head(1), &encode_all(&three)),
            rules(),
            |r| matches!(r, Err(BatchError::TrailingBytes { .. })),
        ),
        (
            "lastOffsetDelta disagrees",
            batch(
                Head {
                    last_offset_delta: 7,
                    ..head(3)
                },
                &encode_all(&three),
            ),
            rules(),
            |r| matches!(r, Err(BatchError::LastOffsetDeltaMismatch { .. })),
        ),
        (
            "offset deltas not 0..n-1",
            {
                let mut rs = three.clone();
                rs[1].offset_delta = 2;
                rs[2].offset_delta = 1;
                batch(head(3), &encode_all(&rs))
            },
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::OffsetDeltaMismatch {
                        record: 1,
                        offset_delta: 2,
                        expected: 1
                    })
                )
            },
        ),
        (
            "20 random bytes as a record",
            batch(
                head(1),
                &[
                    0x8f, 0x12, 0xa7, 0x33, 0x01, 0xfe, 0x44, 0x90, 0x07, 0x7d, 0xc2, 0x19, 0x5a,
                    0xe1, 0x00, 0x3c, 0x88, 0x6b, 0x2f, 0xd4,
                ],
            ),
            rules(),
            |r| matches!(r, Err(e) if e.record_index() == Some(0) && !e.is_corruption()),
        ),
        (
            "varint longer than 5 bytes",
            batch(head(1), &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            rules(),
            |r| matches!(r, Err(BatchError::MalformedRecord { record: 0, .. })),
        ),
        (
            "negative header count",
            {
                let mut b = vec![0u8];
                put_varint(&mut b, 0);
                put_varint(&mut b, 0);
                put_varint(&mut b, -1);
                put_varint(&mut b, -1);
                put_varint(&mut b, -3);
                let mut r = Vec::new();
                put_varint(&mut r, b.len() as i64);
                r.extend(b);
                batch(head(1), &r)
            },
            rules(),
            |r| matches!(r, Err(BatchError::MalformedRecord { record: 0, .. })),
        ),
        (
            "codec 7",
            batch(
                Head {
                    attributes: 7,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(BatchError::UnknownCompression { codec: 7 })),
        ),
        (
            "codec 5",
            batch(
                Head {
                    attributes: 5,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(BatchError::UnknownCompression { codec: 5 })),
        ),
        (
            "gzip flag on garbage",
            batch(
                Head {
                    attributes: 1,
                    ..head(1)
                },
                b"this is not gzip at all",
            ),
            rules(),
            |r| matches!(r, Err(e @ BatchError::Decompression { codec: "gzip", .. }) if e.is_corruption()),
        ),
        (
            "snappy flag on garbage",
            batch(
                Head {
                    attributes: 2,
                    ..head(1)
                },
                &[0xff; 24],
            ),
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::Decompression {
                        codec: "snappy",
                        ..
                    })
                )
            },
        ),
        (
            "lz4 flag on garbage",
            batch(
                Head {
                    attributes: 3,
                    ..head(1)
                },
                &[0x11; 24],
            ),
            rules(),
            |r| matches!(r, Err(BatchError::Decompression { codec: "lz4", .. })),
        ),
        (
            "zstd flag on garbage",
            batch(
                Head {
                    attributes: 4,
                    ..head(1)
                },
                &[0x22; 24],
            ),
            rules(),
            |r| matches!(r, Err(BatchError::Decompression { codec: "zstd", .. })),
        ),
        ("gzip valid", compressed(1, 50), rules(), |r| r.is_ok()),
        ("snappy (xerial) valid", compressed(2, 50), rules(), |r| {
            r.is_ok()
        }),
        (
            "snappy raw valid",
            {
                let plain = encode_all(&(0..5).map(rec).collect::<Vec<_>>());
                let raw = snap::raw::Encoder::new()
                    .compress_vec(&plain)
                    .expect("snappy");
                batch(
                    Head {
                        attributes: 2,
                        ..head(5)
                    },
                    &raw,
                )
            },
            rules(),
            |r| r.is_ok(),
        ),
        ("lz4 valid", compressed(3, 50), rules(), |r| r.is_ok()),
        ("zstd valid", compressed(4, 50), rules(), |r| r.is_ok()),
        (
            "gzip holding fewer records than declared",
            {
                let plain = encode(&rec(0));
                batch(
                    Head {
                        attributes: 1,
                        ..head(5)
                    },
                    &gzip(&plain),
                )
            },
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::RecordCountMismatch {
                        record_count: 5,
                        found: 1,
                        ..
                    })
                )
            },
        ),
        (
            "zstd holding bytes after the records",
            {
                let mut plain = encode(&rec(0));
                plain.extend_from_slice(b"junk");
                batch(
                    Head {
                        attributes: 4,
                        ..head(1)
                    },
                    &zstd(&plain),
                )
            },
            rules(),
            |r| matches!(r, Err(BatchError::TrailingBytes { .. })),
        ),
        (
            "timestamp 10^16",
            batch(
                Head {
                    base_timestamp: 10_000_000_000_000_000,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(e @ BatchError::TimestampOutOfRange { record: 0, timestamp: 10_000_000_000_000_000, .. }) if e.is_timestamp_error()),
        ),
        (
            "timestamp within after.max.ms",
            batch(
                Head {
                    base_timestamp: NOW + 3_600_000,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| r.is_ok(),
        ),
        (
            "timestamp too old for before.max.ms",
            batch(
                Head {
                    base_timestamp: NOW - 1000,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            ProduceRules {
                timestamp_before_max_ms: 999,
                ..rules()
            },
            |r| matches!(r, Err(BatchError::TimestampOutOfRange { .. })),
        ),
        (
            "second record out of range",
            {
                let mut rs = three.clone();
                rs[1].timestamp_delta = 10 * 3_600_000;
                batch(head(3), &encode_all(&rs))
            },
            rules(),
            |r| matches!(r, Err(BatchError::TimestampOutOfRange { record: 1, .. })),
        ),
        (
            "no timestamp (-1) is not checked",
            batch(
                Head {
                    base_timestamp: -1,
                    ..head(1)
                },
                &encode(&Rec {
                    timestamp_delta: 0,
                    ..rec(0)
                }),
            ),
            rules(),
            |r| r.is_ok(),
        ),
        (
            "LogAppendTime topic takes any timestamp",
            batch(
                Head {
                    base_timestamp: 10_000_000_000_000_000,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            ProduceRules {
                timestamp_type: TimestampType::LogAppendTime,
                ..rules()
            },
            |r| r.is_ok(),
        ),
        (
            "client flags LogAppendTime",
            batch(
                Head {
                    attributes: 0x08,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(e @ BatchError::LogAppendTimeFromClient) if e.is_timestamp_error()),
        ),
        (
            "producer id without sequence",
            batch(
                Head {
                    producer_id: 7,
                    producer_epoch: 0,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(BatchError::MissingSequence { producer_id: 7 })),
        ),
        (
            "idempotent batch",
            batch(
                Head {
                    producer_id: 7,
                    producer_epoch: 0,
                    base_sequence: 0,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| r.is_ok(),
        ),
        (
            "producer id below -1",
            batch(
                Head {
                    producer_id: -5,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::InvalidHeaderField {
                        field: "producerId",
                        value: -5
                    })
                )
            },
        ),
        (
            "epoch below -1",
            batch(
                Head {
                    producer_epoch: -2,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| {
                matches!(
                    r,
                    Err(BatchError::InvalidHeaderField {
                        field: "producerEpoch",
                        ..
                    })
                )
            },
        ),
        (
            "negative count",
            batch(
                Head {
                    count: -1,
                    last_offset_delta: 0,
                    ..head(1)
                },
                &encode(&rec(0)),
            ),
            rules(),
            |r| matches!(r, Err(BatchError::NegativeRecordCount { .. })),
        ),
        (
            "empty batch",
            batch(
                Head {
                    count: 0,
                    last_offset_delta: 0,
                    ..head(0)
                },
                &[],
            ),
            rules(),
            |r| matches!(r, Err(BatchError::NoRecords)),
        ),
        (
            "negative header key length",
            {
                let mut b = vec![0u8];
                put_varint(&mut b, 0);
                put_varint(&mut b, 0);
                put_varint(&mut b, -1);
                put_varint(&mut b, -1);
                put_varint(&mut b, 1);
                put_varint(&mut b, -1);
                let mut r = Vec::new();
                put_varint(&mut r, b.len() as i64);
                r.extend(b);
                batch(head(1), &r)
            },
            rules(),
            |r| matches!(r, Err(BatchError::MalformedRecord { record: 0, .. })),
        ),
        (
            "bad CRC",
            {
                let mut b = good(2);
                let last = b.len() - 1;
                b[last] ^= 1;
                b
            },
            rules(),
            |r| matches!(r, Err(BatchError::CrcMismatch { .. })),
        ),
    ];
    for (name, bytes, rules, expect) in cases {
        let got = check(&bytes, &rules);
        assert!(expect(&got), "{name}: got {got:?}");
    }
}

#[test]
fn lengths_below_minus_one_are_refused() {
    for field in ["key", "value"] {
        let mut b = vec![0u8];
        put_varint(&mut b, 0);
        put_varint(&mut b, 0);
        if field == "value" {
            put_varint(&mut b, -1);
        }
        put_varint(&mut b, -7);
        let mut r = Vec::new();
        put_varint(&mut r, b.len() as i64);
        r.extend(b);
        let got = check(&batch(head(1), &r), &rules());
        assert!(
            matches!(got, Err(BatchError::BadFieldLength { length: -7, field: f, .. }) if f == field),
            "{field}: {got:?}"
        );
    }
}

#[test]
fn record_indexes_count_from_the_start_of_the_record_set() {
    let bytes = batch(head(5), &encode(&rec(0)));
    let batch = RecordBatch::parse(&bytes).expect("framing");
    let err = validate_produce_batch(&batch, 10, &rules()).expect_err("count mismatch");
    assert_eq!(err.record_index(), Some(11));
}

#[test]
fn stored_batches_skip_producer_rules_but_not_structure() {
    let future = batch(
        Head {
            base_timestamp: 10_000_000_000_000_000,
            ..head(1)
        },
        &encode(&rec(0)),
    );
    let parse = |b: &[u8]| validate_stored_batch(&RecordBatch::parse(b).expect("framing"));
    assert_eq!(parse(&future), Ok(()));
    assert_eq!(parse(&good(4)), Ok(()));
    assert_eq!(parse(&compressed(4, 3)), Ok(()));
    assert!(matches!(
        parse(&batch(head(5), &encode(&rec(0)))),
        Err(BatchError::RecordCountMismatch { .. })
    ));
    assert!(matches!(
        parse(&batch(
            Head {
                attributes: 7,
                ..head(1)
            },
            &encode(&rec(0))
        )),
        Err(BatchError::UnknownCompression { codec: 7 })
    ));
}

#[test]
fn snappy_blocks_claiming_too_much_are_refused_before_allocating() {
    // A raw snappy block whose length varint claims 4 GiB.
    let claim = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
    let got = check(
        &batch(
            Head {
                attributes: 2,
                ..head(1)
            },
            &claim,
        ),
        &rules(),
    );
    assert!(
        matches!(
            got,
            Err(BatchError::Decompression {
                codec: "snappy",
                ..
            })
        ),
        "{got:?}"
    );
}

#[test]
fn large_compressed_batches_stream_through_a_small_buffer() {
    // 20,000 records of ~1 KiB: about 20 MiB once decompressed.
    let records: Vec<Rec> = (0..20_000)
        .map(|i| Rec {
            value: Some(vec![b'x'; 1000]),
            ..rec(i)
        })
        .collect();
    let plain = encode_all(&records);
    for (codec, data) in [
        (1, gzip(&plain)),
        (2, xerial(&plain, 32 * 1024)),
        (3, lz4_frame(&plain)),
        (4, zstd(&plain)),
    ] {
        let bytes = batch(
            Head {
                attributes: codec,
                ..head(20_000)
            },
            &data,
        );
        let got = check(&bytes, &rules());
        assert_eq!(
            got,
            Ok(RecordsSummary {
                max_timestamp: NOW + 19_999
            }),
            "codec {codec}"
        );
    }
}
