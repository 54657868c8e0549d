//! A raw Kafka client for tests that need exact control over requests (versions, limits,
//! malformed input): one request, one response, on a tokio `TcpStream` the test owns, framed
//! by `strom-client` (the connection layer the admin client and the replica fetcher use).

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};
use strom_client::frame::{self, DEFAULT_MAX_RESPONSE_BYTES, FrameError};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The correlation id of every [`call`]: one request at a time, so one id serves.
const CORRELATION_ID: i32 = 1;

/// Reads one size-prefixed frame; `None` at end of stream (or when the stream fails).
pub async fn read_frame(stream: &mut (impl AsyncRead + Unpin)) -> Option<Vec<u8>> {
    let frame = frame::read_frame(stream, DEFAULT_MAX_RESPONSE_BYTES)
        .await
        .ok()??;
    Some(frame.into())
}

/// Writes one size-prefixed frame.
pub async fn write_frame(
    stream: &mut (impl AsyncWrite + Unpin),
    body: &[u8],
) -> std::io::Result<()> {
    frame::write_frame(stream, body)
        .await
        .map_err(|err| match err {
            FrameError::Io(err) => err,
            other => std::io::Error::other(other),
        })
}

/// Sends `request` as `api` v`version` and decodes the response, which must answer it
/// (correlation id) and decode exactly.
pub async fn call<Req, Resp>(
    stream: &mut TcpStream,
    api: ApiKey,
    version: i16,
    request: &Req,
) -> anyhow::Result<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let client_id = Some(StrBytes::from_static_str("strom-e2e"));
    let request = frame::encode_request(api, version, CORRELATION_ID, client_id, request)
        .with_context(|| format!("encoding {api:?} v{version}"))?;
    stream.write_all(&request).await?;
    let response = frame::read_frame(stream, DEFAULT_MAX_RESPONSE_BYTES)
        .await
        .with_context(|| format!("reading the response to {api:?} v{version}"))?
        .with_context(|| format!("no response to {api:?} v{version}"))?;
    frame::decode_response(response, version, CORRELATION_ID)
        .with_context(|| format!("the response to {api:?} v{version}"))
}

/// One uncompressed v2 record batch holding `records`, as a client would send it.
pub fn encode_batch(records: &[Record]) -> anyhow::Result<Bytes> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )?;
    Ok(buf.freeze())
}

/// Rewrites a v2 batch's `batchLength` and CRC32C after a test changed its bytes, so the batch
/// reaches the checks below its header (a poison batch with a valid CRC).
pub fn reseal_batch(batch: &mut [u8]) {
    let length = i32::try_from(batch.len() - 12).unwrap_or(i32::MAX);
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}
