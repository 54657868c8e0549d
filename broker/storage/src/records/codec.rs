//! Kafka's record codecs, whole buffers at a time: what the cleaner and recompression need
//! (validation walks compressed batches as streams instead, see `validate`).

use std::io::{Read, Write};

use crate::batch::BatchError;

/// A codec of attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// 0: uncompressed.
    None,
    /// 1: gzip.
    Gzip,
    /// 2: snappy, in the xerial framing Kafka's Java client writes.
    Snappy,
    /// 3: the LZ4 frame format with independent 64 KiB blocks, as Kafka writes it.
    Lz4,
    /// 4: zstd.
    Zstd,
}

/// The xerial snappy stream header: magic, version 1, compatible version 1.
const XERIAL_HEADER: [u8; 16] = [
    0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
];
/// Kafka's client writes xerial blocks of 32 KiB of input.
const XERIAL_BLOCK: usize = 32 * 1024;

impl Codec {
    /// The codec with Kafka's id `id`.
    pub fn from_id(id: u8) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            1 => Some(Codec::Gzip),
            2 => Some(Codec::Snappy),
            3 => Some(Codec::Lz4),
            4 => Some(Codec::Zstd),
            _ => None,
        }
    }

    /// Kafka's id of the codec.
    pub fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Gzip => 1,
            Codec::Snappy => 2,
            Codec::Lz4 => 3,
            Codec::Zstd => 4,
        }
    }

    /// The codec's name, as in `compression.type`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }

    pub(crate) fn decompress(self, data: &[u8]) -> Result<Vec<u8>, BatchError> {
        let mut out = Vec::with_capacity(data.len().saturating_mul(2));
        let fail = |e: std::io::Error| BatchError::Decompression {
            codec: self.name(),
            reason: e.to_string(),
        };
        match self {
            Codec::None => out.extend_from_slice(data),
            Codec::Gzip => {
                flate2::read::MultiGzDecoder::new(data)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
            }
            Codec::Snappy => {
                crate::validate::XerialSnappy::new(data)
                    .read_to_end(&mut out)
                    .map_err(fail)?;
            }
            Codec::Lz4 => {
                lz4::Decoder::new(data)
                    .and_then(|mut d| d.read_to_end(&mut out))
                    .map_err(fail)?;
            }
            Codec::Zstd => {
                zstd::stream::read::Decoder::with_buffer(data)
                    .and_then(|mut d| d.read_to_end(&mut out))
                    .map_err(fail)?;
            }
        }
        Ok(out)
    }

    pub(crate) fn compress(self, data: &[u8]) -> Result<Vec<u8>, BatchError> {
        let fail = |e: std::io::Error| BatchError::Compression {
            codec: self.name(),
            reason: e.to_string(),
        };
        match self {
            Codec::None => Ok(data.to_vec()),
            Codec::Gzip => {
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 2),
                    flate2::Compression::default(),
                );
                e.write_all(data).map_err(fail)?;
                e.finish().map_err(fail)
            }
            Codec::Snappy => {
                let mut out = Vec::with_capacity(data.len() / 2 + XERIAL_HEADER.len());
                out.extend_from_slice(&XERIAL_HEADER);
                let mut encoder = snap::raw::Encoder::new();
                for block in data.chunks(XERIAL_BLOCK) {
                    let compressed = encoder
                        .compress_vec(block)
                        .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
                    let length = u32::try_from(compressed.len())
                        .map_err(|e| fail(std::io::Error::other(e.to_string())))?;
                    out.extend_from_slice(&length.to_be_bytes());
                    out.extend_from_slice(&compressed);
                }
                Ok(out)
            }
            Codec::Lz4 => {
                // Kafka's KafkaLZ4BlockInputStream decompresses each block on its own, so
                // blocks must be independent; it writes no checksums either.
                let mut e = lz4::EncoderBuilder::new()
                    .block_size(lz4::BlockSize::Max64KB)
                    .block_mode(lz4::BlockMode::Independent)
                    .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                    .checksum(lz4::ContentChecksum::NoChecksum)
                    .build(Vec::with_capacity(data.len() / 2))
                    .map_err(fail)?;
                e.write_all(data).map_err(fail)?;
                let (out, result) = e.finish();
                result.map_err(fail)?;
                Ok(out)
            }
            Codec::Zstd => zstd::stream::encode_all(data, 3).map_err(fail),
        }
    }
}
