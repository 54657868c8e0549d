//! A minimal raw Kafka client for tests that need exact control over requests (versions, limits,
//! malformed input): one request, one response, on a tokio `TcpStream`.

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one size-prefixed frame; `None` at end of stream.
pub async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Vec<u8>> {
    let size = stream.read_i32().await.ok()?;
    let mut body = vec![0; usize::try_from(size).ok()?];
    stream.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// Writes one size-prefixed frame.
pub async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    body: &[u8],
) -> std::io::Result<()> {
    // One write per frame: a separate 4-byte write would wait on Nagle's algorithm.
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(body);
    stream.write_all(&frame).await
}

/// Sends `request` as `api` v`version` and decodes the response.
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
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some("strom-e2e".into()));
    let mut body = BytesMut::new();
    header.encode(&mut body, Req::header_version(version))?;
    request.encode(&mut body, version)?;
    write_frame(stream, &body).await?;
    let frame = read_frame(stream)
        .await
        .with_context(|| format!("no response to {api:?} v{version}"))?;
    let mut bytes = Bytes::from(frame);
    ResponseHeader::decode(&mut bytes, Resp::header_version(version))?;
    Resp::decode(&mut bytes, version)
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
