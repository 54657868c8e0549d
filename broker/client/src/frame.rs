//! Kafka's framing on the client side: a 4-byte big-endian size, then that many bytes (request
//! header + body on the way out, response header + body on the way back).
//!
//! [`crate::Connection`] is built on these functions; they are public for code that drives a
//! raw stream itself (test harnesses sending malformed or hand-versioned requests, proxies).

use std::io;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest response frame a connection accepts unless told otherwise: above Kafka's
/// default `fetch.max.bytes` (55 MiB) plus headers, so a follower fetch fits, yet a foreign or
/// corrupt stream's size prefix is not taken for a reason to allocate gigabytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Why a frame could not be written, read or decoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream failed, or ended inside a frame (`UnexpectedEof`).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A size prefix that is negative or larger than the reader accepts.
    #[error("frame size {size} is outside 0..={max} bytes")]
    Size {
        /// The size prefix read.
        size: i32,
        /// The largest frame the reader accepts.
        max: usize,
    },
    /// The request header or body cannot be encoded at the version asked for, or the frame
    /// would not fit a 4-byte size.
    #[error("{0}")]
    Encode(String),
    /// The response header does not decode.
    #[error("cannot decode response header: {0}")]
    Header(String),
    /// The response answers another request.
    #[error("response carries correlation id {got}, the request was sent with {expected}")]
    Correlation {
        /// The correlation id the request was sent with.
        expected: i32,
        /// The one in the response header.
        got: i32,
    },
    /// The response body does not decode at the version, or leaves bytes over.
    #[error("cannot decode response body ({0})")]
    Body(String),
}

/// A request frame: size, request header (with `correlation_id` and `client_id`), `request`
/// encoded as `api_key` v`version`.
pub fn encode_request<R: Encodable + HeaderVersion>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: Option<StrBytes>,
    request: &R,
) -> Result<BytesMut, FrameError> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id);
    let mut frame = BytesMut::with_capacity(128);
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|err| FrameError::Encode(format!("cannot encode request header: {err:#}")))?;
    request
        .encode(&mut frame, version)
        .map_err(|err| FrameError::Encode(format!("{err:#}")))?;
    let size = i32::try_from(frame.len() - 4).map_err(|_| {
        FrameError::Encode(format!(
            "a request of {} bytes does not fit a frame",
            frame.len()
        ))
    })?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

/// Writes `body` as one frame, in one write (a separate 4-byte write would wait on Nagle's
/// algorithm when it is on).
pub async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    body: &[u8],
) -> Result<(), FrameError> {
    let size = i32::try_from(body.len()).map_err(|_| {
        FrameError::Encode(format!(
            "a body of {} bytes does not fit a frame",
            body.len()
        ))
    })?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(size);
    frame.put_slice(body);
    stream.write_all(&frame).await?;
    Ok(())
}

/// Reads one frame and returns its body (size prefix removed); `Ok(None)` when the stream
/// ends cleanly before a frame starts, an `UnexpectedEof` error when it ends inside one.
///
/// Reads exactly the frame's bytes and nothing after them, so the stream may be handed to
/// other code between frames. The body buffer is sized from the prefix, which is why the
/// prefix is checked against `max_bytes` first.
pub async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_bytes: usize,
) -> Result<Option<Bytes>, FrameError> {
    let mut prefix = [0; 4];
    let mut filled = 0;
    while filled < prefix.len() {
        let read = stream.read(&mut prefix[filled..]).await?;
        if read == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the stream ended {filled} bytes into a frame's size"),
            )
            .into());
        }
        filled += read;
    }
    let size = i32::from_be_bytes(prefix);
    let len = usize::try_from(size)
        .ok()
        .filter(|&len| len <= max_bytes)
        .ok_or(FrameError::Size {
            size,
            max: max_bytes,
        })?;
    // `read_buf` fills the spare capacity without zeroing it first; `take` stops it at the
    // frame's end.
    let mut body = BytesMut::with_capacity(len);
    let mut rest = (&mut *stream).take(len as u64);
    while body.len() < len {
        if rest.read_buf(&mut body).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ended {} bytes into a {len}-byte frame",
                    body.len()
                ),
            )
            .into());
        }
    }
    Ok(Some(body.freeze()))
}

/// Removes the response header from `frame` and checks it answers `correlation_id`.
pub fn strip_response_header(
    frame: &mut Bytes,
    header_version: i16,
    correlation_id: i32,
) -> Result<(), FrameError> {
    let header = ResponseHeader::decode(frame, header_version)
        .map_err(|err| FrameError::Header(format!("{err:#}")))?;
    if header.correlation_id != correlation_id {
        return Err(FrameError::Correlation {
            expected: correlation_id,
            got: header.correlation_id,
        });
    }
    Ok(())
}

/// Decodes `body` as `T` with the first of `versions` that consumes it exactly; the error
/// names what each version made of it.
pub fn decode_exact<T: Decodable>(body: &Bytes, versions: &[i16]) -> Result<T, FrameError> {
    let mut failures = Vec::with_capacity(versions.len());
    for &version in versions {
        let mut buf = body.clone();
        match T::decode(&mut buf, version) {
            Ok(value) if !buf.has_remaining() => return Ok(value),
            Ok(_) => failures.push(format!(
                "v{version} leaves {} of {} bytes unread",
                buf.remaining(),
                body.len()
            )),
            Err(err) => failures.push(format!("v{version}: {err:#}")),
        }
    }
    Err(FrameError::Body(failures.join("; ")))
}

/// A whole response frame (header + body) as `T` v`version`, answering `correlation_id`.
pub fn decode_response<T: Decodable + HeaderVersion>(
    mut frame: Bytes,
    version: i16,
    correlation_id: i32,
) -> Result<T, FrameError> {
    strip_response_header(&mut frame, T::header_version(version), correlation_id)?;
    decode_exact(&frame, &[version])
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{MetadataRequest, MetadataResponse};

    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_end_cleanly() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        write_frame(&mut client, b"first").await.expect("write");
        write_frame(&mut client, b"").await.expect("write");
        drop(client);
        let first = read_frame(&mut server, 16).await.expect("read");
        assert_eq!(first.as_deref(), Some(&b"first"[..]));
        let empty = read_frame(&mut server, 16).await.expect("read");
        assert_eq!(empty.as_deref(), Some(&b""[..]));
        assert!(
            read_frame(&mut server, 16)
                .await
                .expect("clean end")
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_frame_reader_takes_only_its_frame() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        write_frame(&mut client, b"one").await.expect("write");
        write_frame(&mut client, b"two").await.expect("write");
        let one = read_frame(&mut server, 16).await.expect("read");
        assert_eq!(one.as_deref(), Some(&b"one"[..]));
        // The second frame's bytes are still on the stream for whoever reads next.
        let mut rest = [0; 7];
        server.read_exact(&mut rest).await.expect("rest");
        assert_eq!(&rest, b"\0\0\0\x03two");
    }

    #[tokio::test]
    async fn bad_sizes_and_torn_frames_are_errors() {
        let cases: [(&[u8], &str); 4] = [
            (
                &[0xff, 0xff, 0xff, 0xf0],
                "frame size -16 is outside 0..=16 bytes",
            ),
            (&[0, 0, 0, 17], "frame size 17 is outside 0..=16 bytes"),
            (&[0, 0], "2 bytes into a frame's size"),
            (&[0, 0, 0, 5, b'a', b'b'], "2 bytes into a 5-byte frame"),
        ];
        for (bytes, expected) in cases {
            let (mut client, mut server) = tokio::io::duplex(1024);
            client.write_all(bytes).await.expect("write");
            drop(client);
            let err = read_frame(&mut server, 16).await.expect_err("bad frame");
            assert!(
                err.to_string().contains(expected),
                "{err} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn requests_encode_with_their_header_and_size() {
        let request = MetadataRequest::default().with_topics(None);
        let frame = encode_request(
            ApiKey::Metadata,
            12,
            7,
            Some(StrBytes::from_static_str("strom-test")),
            &request,
        )
        .expect("encode");
        let size = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(usize::try_from(size), Ok(frame.len() - 4));
        let mut body = frame.freeze().slice(4..);
        let header = RequestHeader::decode(&mut body, 2).expect("header");
        assert_eq!(
            (
                header.request_api_key,
                header.request_api_version,
                header.correlation_id
            ),
            (3, 12, 7)
        );
        assert_eq!(header.client_id.as_deref(), Some("strom-test"));
        assert_eq!(
            MetadataRequest::decode(&mut body, 12).expect("body"),
            request
        );
        assert!(!body.has_remaining());

        let err = encode_request(ApiKey::Metadata, 99, 7, None, &request).expect_err("v99");
        assert!(matches!(err, FrameError::Encode(_)), "{err:?}");
    }

    #[test]
    fn responses_decode_exactly_and_answer_their_request() {
        let response = MetadataResponse::default().with_throttle_time_ms(5);
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(3)
            .encode(&mut frame, 1)
            .expect("header");
        response.encode(&mut frame, 12).expect("body");
        let frame = frame.freeze();

        let decoded: MetadataResponse = decode_response(frame.clone(), 12, 3).expect("decode");
        assert_eq!(decoded, response);

        let err = decode_response::<MetadataResponse>(frame.clone(), 12, 4).expect_err("other");
        assert_eq!(
            err.to_string(),
            "response carries correlation id 3, the request was sent with 4"
        );

        let mut longer = BytesMut::from(&frame[..]);
        longer.put_slice(b"junk");
        let err = decode_response::<MetadataResponse>(longer.freeze(), 12, 3).expect_err("junk");
        assert!(err.to_string().contains("v12 leaves 4 of"), "{err}");

        let err = decode_response::<MetadataResponse>(frame.slice(..frame.len() - 3), 12, 3)
            .expect_err("torn");
        assert!(
            err.to_string()
                .contains("cannot decode response body (v12:"),
            "{err}"
        );
    }
}
