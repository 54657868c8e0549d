//! A Kafka server for the connection tests: a listener on 127.0.0.1:0 whose connections decode
//! request frames with `kafka-protocol`'s broker side and answer through a handler.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{
    Decodable, Encodable, HeaderVersion, decode_request_header_from_buffer,
};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::frame::read_frame;

/// What the server does with one request.
pub(crate) enum Reply {
    /// Write this response (header + body) in a size-prefixed frame.
    Frame(Bytes),
    /// The same, after a pause (a broker holding a long-polling fetch).
    After(Duration, Bytes),
    /// Write these bytes as they are.
    Raw(Bytes),
    /// Answer nothing, keep the connection open.
    Silent,
    /// Close the connection.
    Close,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) header: RequestHeader,
    pub(crate) body: Bytes,
}

type Handler = Arc<dyn Fn(&RequestHeader, Bytes) -> Reply + Send + Sync>;

/// A running server; stops when dropped.
pub(crate) struct TestServer {
    address: String,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start(
        handler: impl Fn(&RequestHeader, Bytes) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("address").to_string();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let handler: Handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            // Connection tasks live in this set, so aborting the accept task ends them all.
            let mut tasks = JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                tasks.spawn(serve(stream, Arc::clone(&handler), Arc::clone(&log)));
            }
        });
        Self {
            address,
            received,
            task,
        }
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Every request so far, in arrival order.
    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received").clone()
    }

    /// The (api key, version) of every request so far.
    pub(crate) fn keys_and_versions(&self) -> Vec<(i16, i16)> {
        self.received()
            .iter()
            .map(|r| (r.header.request_api_key, r.header.request_api_version))
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Received>>>) {
    while let Ok(Some(mut frame)) = read_frame(&mut stream, 1 << 20).await {
        let Ok(header) = decode_request_header_from_buffer(&mut frame) else {
            return;
        };
        log.lock().expect("received").push(Received {
            header: header.clone(),
            body: frame.clone(),
        });
        let bytes = match handler(&header, frame) {
            Reply::Frame(body) => framed(&body),
            Reply::After(pause, body) => {
                tokio::time::sleep(pause).await;
                framed(&body)
            }
            Reply::Raw(bytes) => bytes,
            Reply::Silent => continue,
            Reply::Close => return,
        };
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

fn framed(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 4);
    out.put_i32(i32::try_from(body.len()).expect("test frame"));
    out.put_slice(body);
    out.freeze()
}

/// `body` as the response to a request with `correlation_id` at `version`: header + body.
pub(crate) fn encode_response<T: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    body: &T,
) -> Bytes {
    let mut buf = BytesMut::new();
    kafka_protocol::messages::ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, T::header_version(version))
        .expect("encode response header");
    body.encode(&mut buf, version).expect("encode response");
    buf.freeze()
}

/// `body` as the response to `header`.
pub(crate) fn respond<T: Encodable + HeaderVersion>(header: &RequestHeader, body: &T) -> Bytes {
    encode_response(header.correlation_id, header.request_api_version, body)
}

/// Decodes a request body the client sent.
pub(crate) fn decode<T: Decodable>(header: &RequestHeader, mut body: Bytes) -> T {
    T::decode(&mut body, header.request_api_version).expect("a decodable request")
}

/// An ApiVersions response listing `ranges` (api key → min, max).
pub(crate) fn api_versions(ranges: &BTreeMap<i16, (i16, i16)>) -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(
        ranges
            .iter()
            .map(|(&key, &(min, max))| {
                ApiVersion::default()
                    .with_api_key(key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

/// A handler that answers ApiVersions with `ranges` (up to ApiVersions v3) and every other
/// request through `other`.
pub(crate) fn advertising(
    ranges: BTreeMap<i16, (i16, i16)>,
    other: impl Fn(&RequestHeader, Bytes) -> Reply + Send + Sync + 'static,
) -> impl Fn(&RequestHeader, Bytes) -> Reply + Send + Sync + 'static {
    move |header, body| {
        if header.request_api_key == ApiKey::ApiVersions as i16 {
            let _: ApiVersionsRequest = decode(header, body);
            Reply::Frame(respond(header, &api_versions(&ranges)))
        } else {
            other(header, body)
        }
    }
}
