//! [`Connection`]: one TCP connection to one broker, version-negotiated, one request at a time.
//!
//! Requests are sequential: one is written, its response read, then the next, so a response is
//! matched to its request by position and checked by correlation id. Anything unexpected on
//! the way back (a bad size, a body that does not decode, a correlation id that does not match,
//! a timeout, a future dropped midway) leaves the stream position unknown, so the connection
//! marks itself unusable and the caller opens a new one.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, HeaderVersion, StrBytes, VersionRange};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::error::ClientError;
use crate::frame::{self, DEFAULT_MAX_RESPONSE_BYTES, FrameError};
use crate::request::Request;
use crate::versions::ApiVersionTable;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// How to open a [`Connection`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionConfig {
    /// The `client_id` of every request header (brokers log it and tag quotas with it).
    pub client_id: String,
    /// Bounds the TCP connect and, separately, each request without a timeout of its own.
    pub timeout: Duration,
    /// The largest response frame accepted; a larger size prefix is a protocol error.
    pub max_response_bytes: usize,
    /// The KIP-511 client software name sent in ApiVersions v3+. Brokers refuse a name outside
    /// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` with INVALID_REQUEST.
    pub software_name: String,
    /// The KIP-511 client software version, under the same pattern.
    pub software_version: String,
}

impl ConnectionConfig {
    /// `client_id` and `timeout`, responses up to [`DEFAULT_MAX_RESPONSE_BYTES`], software
    /// name `strom` at this crate's version.
    pub fn new(client_id: impl Into<String>, timeout: Duration) -> Self {
        Self {
            client_id: client_id.into(),
            timeout,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            software_name: "strom".to_owned(),
            software_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Accept response frames up to `bytes`.
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The KIP-511 software name and version.
    pub fn with_software(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.software_name = name.into();
        self.software_version = version.into();
        self
    }
}

/// An open, version-negotiated connection to one broker.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    broker: String,
    peer: SocketAddr,
    client_id: StrBytes,
    timeout: Duration,
    max_response_bytes: usize,
    next_correlation_id: i32,
    versions: ApiVersionTable,
    /// False from the moment a request is written until its response is read in full, and
    /// for good after any failure. A request future dropped midway leaves it false too.
    usable: bool,
}

impl Connection {
    /// Connects to `broker` (`host:port`; a name is resolved off the async workers) and
    /// negotiates API versions, with the defaults of [`ConnectionConfig::new`].
    pub async fn open(
        broker: &str,
        timeout: Duration,
        client_id: &str,
    ) -> Result<Connection, ClientError> {
        Self::open_with(broker, &ConnectionConfig::new(client_id, timeout)).await
    }

    /// Connects to `broker` (`host:port`) and negotiates API versions (ApiVersions v3, falling
    /// back as KIP-511 describes).
    pub async fn open_with(
        broker: &str,
        config: &ConnectionConfig,
    ) -> Result<Connection, ClientError> {
        let unreachable = |source| ClientError::Connect {
            broker: broker.to_owned(),
            source,
        };
        let stream = match tokio::time::timeout(config.timeout, TcpStream::connect(broker)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(err)) => return Err(unreachable(err)),
            Err(_) => {
                return Err(unreachable(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("TCP connect did not complete within {:?}", config.timeout),
                )));
            }
        };
        stream.set_nodelay(true).map_err(unreachable)?;
        let peer = stream.peer_addr().map_err(unreachable)?;
        let mut connection = Connection {
            stream,
            broker: broker.to_owned(),
            peer,
            client_id: StrBytes::from_string(config.client_id.clone()),
            timeout: config.timeout,
            max_response_bytes: config.max_response_bytes,
            next_correlation_id: 0,
            versions: ApiVersionTable::default(),
            usable: true,
        };
        connection.versions = connection.negotiate_versions(config).await?;
        tracing::debug!(broker, %peer, "connected to Kafka broker");
        Ok(connection)
    }

    /// The address this connection was opened to, as given.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The socket address of the broker.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The timeout of requests sent without one of their own.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the connection can carry another request.
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// The versions of `key` the broker advertised; `None` when it does not list the API.
    pub fn broker_versions(&self, key: ApiKey) -> Option<VersionRange> {
        self.versions.broker_range(key)
    }

    /// The version [`Connection::send`] uses for `R`: the highest in both
    /// [`Request::CLIENT_VERSIONS`] and the broker's range; `None` when they do not overlap.
    pub fn version_for<R: Request>(&self) -> Option<i16> {
        self.versions.pick(R::KEY, R::CLIENT_VERSIONS)
    }

    /// Sends `request` at [`Connection::version_for`] and decodes its response. Error codes
    /// inside the response are the caller's to read.
    pub async fn send<R: Request>(&mut self, request: R) -> Result<R::Response, ClientError> {
        let version = self.negotiated::<R>()?;
        self.send_at_version(request, version).await
    }

    /// Sends `request` as `version`, whatever the broker advertised (for requests whose fields
    /// the caller filled for a version it chose with [`Connection::version_for`]).
    pub async fn send_at_version<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> Result<R::Response, ClientError> {
        self.send_at_version_with_timeout(request, version, self.timeout)
            .await
    }

    /// [`Connection::send_at_version`] waiting up to `timeout` for the response instead of the
    /// connection's timeout: a request the broker may hold on purpose (a Fetch with
    /// `max_wait_ms`, a produce waiting for `acks=all`) needs its own wait plus the round trip.
    pub async fn send_at_version_with_timeout<R: Request>(
        &mut self,
        request: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, ClientError> {
        let (correlation_id, body) = self.round_trip(&request, version, timeout).await?;
        self.decode::<R::Response>(R::NAME, correlation_id, body, &[version])
    }

    /// Writes `request` as `version` and reads nothing back, for the one request a Kafka
    /// broker does not answer: Produce with `acks=0`. The connection stays usable.
    pub async fn send_without_response<R: Request>(
        &mut self,
        request: R,
        version: i16,
    ) -> Result<(), ClientError> {
        let (_, frame) = self.encode(&request, version)?;
        self.usable = false;
        let write = self.stream.write_all(&frame);
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                self.usable = true;
                Ok(())
            }
            Ok(Err(source)) => Err(self.io(R::NAME, source)),
            Err(_) => Err(self.timed_out(R::NAME, self.timeout)),
        }
    }

    fn negotiated<R: Request>(&self) -> Result<i16, ClientError> {
        self.version_for::<R>()
            .ok_or_else(|| ClientError::UnsupportedApi {
                broker: self.broker.clone(),
                api: R::NAME,
                broker_versions: self.versions.broker_range(R::KEY),
                client_versions: R::CLIENT_VERSIONS,
            })
    }

    /// ApiVersions v3, falling back as Kafka clients do (KIP-511): a broker that does not know
    /// the version answers UNSUPPORTED_VERSION in v0, listing the ApiVersions versions it does
    /// know when it can; retry with the highest of those, or v0.
    async fn negotiate_versions(
        &mut self,
        config: &ConnectionConfig,
    ) -> Result<ApiVersionTable, ClientError> {
        let first = ApiVersionsRequest::CLIENT_VERSIONS.max;
        let mut response = self.api_versions(config, first).await?;
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
            response = self.api_versions(config, fallback).await?;
        }
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                ApiVersionsRequest::NAME,
                response.error_code,
                None,
            ));
        }
        Ok(ApiVersionTable::from_response(&response))
    }

    async fn api_versions(
        &mut self,
        config: &ConnectionConfig,
        version: i16,
    ) -> Result<ApiVersionsResponse, ClientError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string(config.software_name.clone()))
            .with_client_software_version(StrBytes::from_string(config.software_version.clone()));
        let (correlation_id, body) = self.round_trip(&request, version, self.timeout).await?;
        // The error code leads the body in every version, after the 4-byte correlation id (the
        // ApiVersions response header is v0 in every version). An UNSUPPORTED_VERSION answer
        // is encoded as v0 whatever version was asked (KIP-511); try the asked version second
        // for brokers that answer in it anyway.
        let leading_code = body.get(4..6).map(|b| i16::from_be_bytes([b[0], b[1]]));
        let versions: &[i16] = if leading_code == Some(UNSUPPORTED_VERSION) && version != 0 {
            &[0, version]
        } else {
            &[version]
        };
        self.decode(ApiVersionsRequest::NAME, correlation_id, body, versions)
    }

    fn encode<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<(i32, BytesMut), ClientError> {
        if !self.usable {
            return Err(ClientError::Closed {
                broker: self.broker.clone(),
                api: R::NAME,
            });
        }
        let correlation_id = self.next_correlation_id;
        let frame = frame::encode_request(
            R::KEY,
            version,
            correlation_id,
            Some(self.client_id.clone()),
            request,
        )
        .map_err(|err| ClientError::Encode {
            broker: self.broker.clone(),
            api: R::NAME,
            version,
            reason: err.to_string(),
        })?;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        Ok((correlation_id, frame))
    }

    /// Writes one request frame and reads back the whole response frame (header included).
    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<(i32, Bytes), ClientError> {
        let (correlation_id, frame) = self.encode(request, version)?;
        self.usable = false;
        let max = self.max_response_bytes;
        let stream = &mut self.stream;
        let exchange = async move {
            stream.write_all(&frame).await?;
            frame::read_frame(stream, max).await
        };
        let frame = match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok(Some(frame))) => frame,
            Ok(Ok(None)) => {
                let closed = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the broker closed the connection before answering",
                );
                return Err(self.io(R::NAME, closed));
            }
            Ok(Err(FrameError::Io(source))) => return Err(self.io(R::NAME, source)),
            Ok(Err(err @ FrameError::Size { .. })) => {
                return Err(self.protocol(R::NAME, format!("response {err}")));
            }
            Ok(Err(err)) => return Err(self.protocol(R::NAME, err.to_string())),
            Err(_) => return Err(self.timed_out(R::NAME, timeout)),
        };
        tracing::trace!(
            broker = self.broker,
            api = R::NAME,
            version,
            correlation_id,
            bytes = frame.len(),
            "response"
        );
        Ok((correlation_id, frame))
    }

    /// Checks the response header and decodes the body with the first of `versions` that
    /// consumes it exactly. The connection is usable again only when both succeed.
    fn decode<T: Decodable + HeaderVersion>(
        &mut self,
        api: &'static str,
        correlation_id: i32,
        mut frame: Bytes,
        versions: &[i16],
    ) -> Result<T, ClientError> {
        let header_version = versions.first().map_or(0, |&v| T::header_version(v));
        frame::strip_response_header(&mut frame, header_version, correlation_id)
            .map_err(|err| self.protocol(api, err.to_string()))?;
        let body = frame::decode_exact(&frame, versions)
            .map_err(|err| self.protocol(api, err.to_string()))?;
        self.usable = true;
        Ok(body)
    }

    fn protocol(&mut self, api: &'static str, reason: String) -> ClientError {
        self.usable = false;
        tracing::debug!(broker = self.broker, api, reason, "protocol error");
        ClientError::Protocol {
            broker: self.broker.clone(),
            api,
            reason,
        }
    }

    fn io(&mut self, api: &'static str, source: io::Error) -> ClientError {
        self.usable = false;
        ClientError::Io {
            broker: self.broker.clone(),
            api,
            source,
        }
    }

    fn timed_out(&mut self, api: &'static str, after: Duration) -> ClientError {
        self.usable = false;
        ClientError::Timeout {
            broker: self.broker.clone(),
            api,
            after,
        }
    }
}
