//! One TCP connection to one broker: framing, correlation ids, ApiVersions negotiation.
//!
//! A frame is a 4-byte big-endian size followed by that many bytes: request header + body on
//! the way out, response header + body on the way back. Requests are sequential: one is
//! written, its response read, then the next. Anything unexpected on the way back (a bad size,
//! a body that does not decode, a correlation id that does not match, a timeout) leaves the
//! stream position unknown, so the connection is marked unusable and the caller discards it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes, VersionRange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{AdminError, check};
use crate::request::AdminRequest;
use crate::versions::ApiVersionTable;

/// The `client_id` in every request header, and the KIP-511 client software name.
pub(crate) const CLIENT_ID: &str = "strom-admin";

/// Admin responses are small; a size beyond this is a corrupt or foreign stream, not a
/// response worth allocating for.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// An open, version-negotiated connection to one broker.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    broker: String,
    peer: SocketAddr,
    request_timeout: Duration,
    next_correlation_id: i32,
    versions: ApiVersionTable,
    /// False from the moment a request is written until its response is read in full, and
    /// for good after any failure. A request future dropped midway leaves it false too.
    usable: bool,
}

enum FrameError {
    Io(io::Error),
    Size(i32),
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        Self::Io(err)
    }
}

impl Connection {
    /// Connects to `broker` (`host:port`) and negotiates API versions. `timeout` bounds the
    /// TCP connect and, separately, every request on the connection.
    pub(crate) async fn open(broker: &str, timeout: Duration) -> Result<Self, AdminError> {
        let unreachable = |source| AdminError::Unreachable {
            bootstrap: broker.to_owned(),
            source,
        };
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(broker)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(unreachable(err)),
            Err(_) => {
                return Err(unreachable(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TCP connect did not complete within {timeout:?}"),
                )));
            }
        };
        stream.set_nodelay(true).map_err(unreachable)?;
        let peer = stream.peer_addr().map_err(unreachable)?;
        let mut connection = Self {
            stream,
            broker: broker.to_owned(),
            peer,
            request_timeout: timeout,
            next_correlation_id: 0,
            versions: ApiVersionTable::default(),
            usable: true,
        };
        connection.versions = connection.negotiate_versions().await?;
        tracing::debug!(broker, %peer, "connected to Kafka broker");
        Ok(connection)
    }

    /// The address this connection was opened to, as given.
    pub(crate) fn broker(&self) -> &str {
        &self.broker
    }

    /// The socket address of the broker.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Whether the connection can carry another request.
    pub(crate) fn is_usable(&self) -> bool {
        self.usable
    }

    /// The version to send `R` with: the highest both sides implement.
    pub(crate) fn version_for<R: AdminRequest>(&self) -> Result<i16, AdminError> {
        self.versions
            .pick(R::KEY, R::CLIENT_VERSIONS)
            .ok_or_else(|| AdminError::UnsupportedApi {
                broker: self.broker.clone(),
                api: R::NAME,
                broker_versions: self.versions.broker_range(R::KEY),
                client_versions: R::CLIENT_VERSIONS,
            })
    }

    /// Sends `request` as `version` and decodes its response.
    pub(crate) async fn send<R: AdminRequest>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<R::Response, AdminError> {
        let body = self.round_trip(version, request).await?;
        self.decode::<R::Response>(R::NAME, body, &[version])
    }

    /// ApiVersions v3, falling back as Kafka clients do (KIP-511): a broker that does not know
    /// the version answers UNSUPPORTED_VERSION in v0, listing the ApiVersions versions it does
    /// know when it can; retry with the highest of those, or v0.
    async fn negotiate_versions(&mut self) -> Result<ApiVersionTable, AdminError> {
        let first = ApiVersionsRequest::CLIENT_VERSIONS.max;
        let mut response = self.api_versions(first).await?;
        if response.error_code == UNSUPPORTED_VERSION {
            let below_first = VersionRange {
                min: 0,
                max: first - 1,
            };
            let fallback = ApiVersionTable::from_response(&response)
                .pick(ApiKey::ApiVersions, below_first)
                .unwrap_or(0);
            tracing::debug!(
                broker = self.broker,
                fallback,
                "broker rejected ApiVersions v{first}, retrying"
            );
            response = self.api_versions(fallback).await?;
        }
        check(ApiVersionsRequest::NAME, response.error_code, None)?;
        Ok(ApiVersionTable::from_response(&response))
    }

    async fn api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, AdminError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.round_trip(version, &request).await?;
        // The error code leads the body in every version. An UNSUPPORTED_VERSION answer is
        // encoded as v0 whatever version was asked (KIP-511); try the asked version second
        // for brokers that answer in it anyway.
        let leading_code = body.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]]));
        if leading_code == Some(UNSUPPORTED_VERSION) && version != 0 {
            self.decode(ApiVersionsRequest::NAME, body, &[0, version])
        } else {
            self.decode(ApiVersionsRequest::NAME, body, &[version])
        }
    }

    /// Writes one request frame and reads back the matching response body (header removed).
    async fn round_trip<R: AdminRequest>(
        &mut self,
        version: i16,
        request: &R,
    ) -> Result<Bytes, AdminError> {
        if !self.usable {
            return Err(self.protocol(R::NAME, "connection was closed after an earlier failure"));
        }
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_frame(correlation_id, version, request)
            .map_err(|reason| self.protocol(R::NAME, reason))?;

        self.usable = false;
        let stream = &mut self.stream;
        let exchange = async move {
            stream.write_all(&frame).await?;
            read_frame(stream).await
        };
        let mut body = match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(body)) => body,
            Ok(Err(FrameError::Io(source))) => {
                return Err(AdminError::Unreachable {
                    bootstrap: self.broker.clone(),
                    source,
                });
            }
            Ok(Err(FrameError::Size(size))) => {
                let reason =
                    format!("response frame size {size} is outside 0..={MAX_RESPONSE_BYTES} bytes");
                return Err(self.protocol(R::NAME, reason));
            }
            Err(_) => {
                return Err(AdminError::Timeout {
                    api: R::NAME,
                    after: self.request_timeout,
                });
            }
        };

        let header_version = R::Response::header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version).map_err(|err| {
            self.protocol(R::NAME, format!("cannot decode response header: {err:#}"))
        })?;
        if header.correlation_id != correlation_id {
            let reason = format!(
                "response carries correlation id {}, the request was sent with {correlation_id}",
                header.correlation_id
            );
            return Err(self.protocol(R::NAME, reason));
        }
        self.usable = true;
        Ok(body)
    }

    /// Decodes a response body with the first of `versions` that consumes it exactly.
    fn decode<T: Decodable>(
        &mut self,
        api: &'static str,
        body: Bytes,
        versions: &[i16],
    ) -> Result<T, AdminError> {
        let mut failures = Vec::new();
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
        self.usable = false;
        let reason = format!("cannot decode response body ({})", failures.join("; "));
        Err(self.protocol(api, reason))
    }

    /// A protocol error; the connection is unusable from here on.
    fn protocol(&mut self, api: &'static str, reason: impl Into<String>) -> AdminError {
        self.usable = false;
        AdminError::Protocol {
            broker: self.broker.clone(),
            api,
            reason: reason.into(),
        }
    }
}

fn encode_frame<R: AdminRequest>(
    correlation_id: i32,
    version: i16,
    request: &R,
) -> Result<BytesMut, String> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
    let mut frame = BytesMut::with_capacity(128);
    frame.put_i32(0);
    header
        .encode(&mut frame, R::header_version(version))
        .map_err(|err| format!("cannot encode request header: {err:#}"))?;
    request
        .encode(&mut frame, version)
        .map_err(|err| format!("cannot encode {} v{version}: {err:#}", R::NAME))?;
    let size = i32::try_from(frame.len() - 4)
        .map_err(|_| format!("request of {} bytes is too large to frame", frame.len()))?;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    Ok(frame)
}

async fn read_frame(stream: &mut TcpStream) -> Result<Bytes, FrameError> {
    let size = stream.read_i32().await?;
    let len = usize::try_from(size)
        .ok()
        .filter(|&len| len <= MAX_RESPONSE_BYTES)
        .ok_or(FrameError::Size(size))?;
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await?;
    Ok(Bytes::from(body))
}
