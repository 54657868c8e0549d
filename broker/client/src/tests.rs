//! [`Connection`] against the in-crate test server: version negotiation, correlation ids,
//! timeouts, response sizes, and what each failure leaves of the connection.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::test_server::{
    Reply, TestServer, advertising, api_versions, decode, encode_response, respond,
};
use crate::{ClientError, Connection, ConnectionConfig, VersionRange};

const TIMEOUT: Duration = Duration::from_secs(10);

fn ranges(entries: &[(ApiKey, i16, i16)]) -> BTreeMap<i16, (i16, i16)> {
    entries
        .iter()
        .map(|&(key, min, max)| (key as i16, (min, max)))
        .collect()
}

/// A broker advertising ApiVersions 0..=3, Metadata 0..=9 and Fetch 4..=16, answering
/// Metadata with an empty response and Fetch with one carrying its throttle time 7.
fn metadata_and_fetch()
-> impl Fn(&kafka_protocol::messages::RequestHeader, Bytes) -> Reply + Send + Sync + 'static {
    advertising(
        ranges(&[
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Metadata, 0, 9),
            (ApiKey::Fetch, 4, 16),
        ]),
        |header, _| match ApiKey::try_from(header.request_api_key) {
            Ok(ApiKey::Metadata) => Reply::Frame(respond(header, &MetadataResponse::default())),
            Ok(ApiKey::Fetch) => Reply::Frame(respond(
                header,
                &FetchResponse::default().with_throttle_time_ms(7),
            )),
            _ => Reply::Close,
        },
    )
}

#[tokio::test]
async fn sends_at_the_highest_version_both_sides_implement() {
    let server = TestServer::start(metadata_and_fetch()).await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    assert_eq!(connection.version_for::<MetadataRequest>(), Some(9));
    assert_eq!(connection.version_for::<FetchRequest>(), Some(16));
    assert_eq!(
        connection.broker_versions(ApiKey::Fetch),
        Some(VersionRange { min: 4, max: 16 })
    );
    assert_eq!(connection.version_for::<ProduceRequest>(), None);
    assert_eq!(connection.peer().to_string(), server.address());

    connection
        .send(MetadataRequest::default().with_topics(None))
        .await
        .expect("metadata");
    let fetch = connection
        .send(FetchRequest::default().with_max_wait_ms(0))
        .await
        .expect("fetch");
    assert_eq!(fetch.throttle_time_ms, 7);
    // An API the broker does not list fails before anything is written.
    let err = connection
        .send(ProduceRequest::default())
        .await
        .expect_err("no Produce");
    match &err {
        ClientError::UnsupportedApi {
            api,
            broker_versions,
            client_versions,
            ..
        } => {
            assert_eq!(*api, "Produce");
            assert_eq!(*broker_versions, None);
            assert_eq!(client_versions.max, 13);
        }
        other => panic!("expected UnsupportedApi, got {other:?}"),
    }
    assert!(connection.is_usable());
    connection
        .send_at_version(MetadataRequest::default().with_topics(None), 1)
        .await
        .expect("an older version on request");

    assert_eq!(
        server.keys_and_versions(),
        [(18, 3), (3, 9), (1, 16), (3, 1)]
    );
    // Correlation ids count up from 0, client id and software name as configured.
    let received = server.received();
    let ids: Vec<i32> = received.iter().map(|r| r.header.correlation_id).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    assert!(
        received
            .iter()
            .all(|r| r.header.client_id.as_deref() == Some("strom-test"))
    );
    let hello: ApiVersionsRequest = decode(&received[0].header, received[0].body.clone());
    assert_eq!(hello.client_software_name.as_str(), "strom");
    assert_eq!(
        hello.client_software_version.as_str(),
        env!("CARGO_PKG_VERSION")
    );
}

/// A broker that answers ApiVersions above v`max` with UNSUPPORTED_VERSION in v0, listing
/// its ApiVersions range when `list` is set (KIP-511), as old brokers do or do not.
fn old_broker(
    max: i16,
    list: bool,
) -> impl Fn(&kafka_protocol::messages::RequestHeader, Bytes) -> Reply + Send + Sync + 'static {
    move |header, _| {
        if header.request_api_version > max {
            let listed = if list {
                ranges(&[(ApiKey::ApiVersions, 0, max)])
            } else {
                BTreeMap::new()
            };
            let response = api_versions(&listed).with_error_code(35);
            return Reply::Frame(encode_response(header.correlation_id, 0, &response));
        }
        let response = api_versions(&ranges(&[
            (ApiKey::ApiVersions, 0, max),
            (ApiKey::Metadata, 0, 9),
        ]));
        Reply::Frame(respond(header, &response))
    }
}

#[tokio::test]
async fn apiversions_falls_back_as_kip_511_describes() {
    for (list, want) in [(true, [(18, 3), (18, 2)]), (false, [(18, 3), (18, 0)])] {
        let server = TestServer::start(old_broker(2, list)).await;
        let connection = Connection::open(server.address(), TIMEOUT, "strom-test")
            .await
            .expect("open after the fallback");
        assert_eq!(server.keys_and_versions(), want, "listed: {list}");
        assert_eq!(connection.version_for::<MetadataRequest>(), Some(9));
    }
}

#[tokio::test]
async fn an_apiversions_error_fails_the_open() {
    let server = TestServer::start(|header, _| {
        let response = api_versions(&BTreeMap::new()).with_error_code(42);
        Reply::Frame(respond(header, &response))
    })
    .await;
    let config = ConnectionConfig::new("strom-test", TIMEOUT).with_software("bad name!", "1");
    let err = Connection::open_with(server.address(), &config)
        .await
        .expect_err("refused");
    assert!(
        matches!(
            err,
            ClientError::Kafka {
                api: "ApiVersions",
                code: 42,
                name: "INVALID_REQUEST",
                ..
            }
        ),
        "{err:?}"
    );
    let received = server.received();
    let hello: ApiVersionsRequest = decode(&received[0].header, received[0].body.clone());
    assert_eq!(hello.client_software_name.as_str(), "bad name!");
}

#[tokio::test]
async fn a_request_may_wait_longer_than_the_connection_timeout() {
    // The broker holds each Fetch for a second, as a long poll with max_wait_ms would.
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Fetch, 4, 16)]),
        |header, _| {
            Reply::After(
                Duration::from_secs(1),
                respond(header, &FetchResponse::default().with_session_id(11)),
            )
        },
    ))
    .await;
    let short = Duration::from_millis(100);
    let mut connection = Connection::open(server.address(), short, "strom-test")
        .await
        .expect("open");
    let version = connection.version_for::<FetchRequest>().expect("Fetch");
    let request = FetchRequest::default().with_max_wait_ms(1000);
    let response = connection
        .send_at_version_with_timeout(request.clone(), version, TIMEOUT)
        .await
        .expect("the request's own timeout applies");
    assert_eq!(response.session_id, 11);
    assert!(connection.is_usable());

    // Without one, the connection's timeout applies, and the connection is done with.
    let err = connection
        .send(request.clone())
        .await
        .expect_err("too slow");
    assert!(err.is_retriable());
    match &err {
        ClientError::Timeout { api, after, .. } => {
            assert_eq!((*api, *after), ("Fetch", short));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert!(!connection.is_usable());
    let err = connection.send(request).await.expect_err("closed");
    assert!(
        matches!(err, ClientError::Closed { api: "Fetch", .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_request_abandoned_midway_leaves_the_connection_unusable() {
    // A caller racing a request against its shutdown signal drops the request future; the
    // response may still arrive later, so the connection must not carry another request.
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Fetch, 4, 16)]),
        |_, _| Reply::Silent,
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    {
        let send = connection.send(FetchRequest::default().with_max_wait_ms(30_000));
        tokio::pin!(send);
        // Drive the send until the server has the request (ApiVersions came first).
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while server.received().len() < 2 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the request never reached the server"
            );
            tokio::select! {
                biased;
                _ = &mut send => panic!("the server never answers"),
                () = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        // The send future is dropped here, its response never read.
    }
    assert!(!connection.is_usable());
    let err = connection
        .send(FetchRequest::default())
        .await
        .expect_err("closed");
    assert!(matches!(err, ClientError::Closed { .. }), "{err:?}");
}

fn metadata_with_topics(count: usize) -> MetadataResponse {
    MetadataResponse::default().with_topics(
        (0..count)
            .map(|i| {
                MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(format!(
                        "topic-{i:05}"
                    )))))
                    .with_is_internal(false)
            })
            .collect(),
    )
}

#[tokio::test]
async fn the_largest_response_is_the_callers_choice() {
    // About 40 KB of Metadata.
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)]),
        |header, _| Reply::Frame(respond(header, &metadata_with_topics(2000))),
    ))
    .await;
    let small = ConnectionConfig::new("strom-test", TIMEOUT).with_max_response_bytes(16 * 1024);
    let mut connection = Connection::open_with(server.address(), &small)
        .await
        .expect("open");
    let err = connection
        .send(MetadataRequest::default())
        .await
        .expect_err("too large");
    match &err {
        ClientError::Protocol { api, reason, .. } => {
            assert_eq!(*api, "Metadata");
            assert!(reason.contains("is outside 0..=16384 bytes"), "{reason}");
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(!connection.is_usable());

    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let response = connection
        .send(MetadataRequest::default())
        .await
        .expect("fits the default");
    assert_eq!(response.topics.len(), 2000);
    assert_eq!(
        response.topics[1999].name.as_ref().map(|n| n.0.as_str()),
        Some("topic-01999")
    );
}

#[tokio::test]
async fn a_mismatched_correlation_id_closes_the_connection() {
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)]),
        |header, _| {
            Reply::Frame(encode_response(
                header.correlation_id + 7,
                header.request_api_version,
                &MetadataResponse::default(),
            ))
        },
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let err = connection
        .send(MetadataRequest::default())
        .await
        .expect_err("mismatch");
    match &err {
        ClientError::Protocol { reason, .. } => assert_eq!(
            reason,
            "response carries correlation id 8, the request was sent with 1"
        ),
        other => panic!("expected a protocol error, got {other:?}"),
    }
    assert!(!err.is_retriable());
    assert!(!connection.is_usable());
}

#[tokio::test]
async fn a_broker_closing_the_connection_is_an_io_error() {
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)]),
        |_, _| Reply::Close,
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let err = connection
        .send(MetadataRequest::default())
        .await
        .expect_err("closed");
    match &err {
        ClientError::Io { api, source, .. } => {
            assert_eq!(*api, "Metadata");
            assert_eq!(source.kind(), std::io::ErrorKind::UnexpectedEof);
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    assert!(err.is_retriable());
    assert!(!connection.is_usable());
}

#[tokio::test]
async fn a_torn_response_is_a_protocol_error() {
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Metadata, 0, 12)]),
        |_, _| Reply::Raw(Bytes::from_static(&[0xff, 0xff, 0xff, 0xf0])),
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let err = connection
        .send(MetadataRequest::default())
        .await
        .expect_err("negative size");
    assert!(
        err.to_string()
            .contains("response frame size -16 is outside"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unencodable_request_leaves_the_connection_usable() {
    let server = TestServer::start(metadata_and_fetch()).await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let err = connection
        .send_at_version(MetadataRequest::default(), 99)
        .await
        .expect_err("v99");
    assert!(
        matches!(
            err,
            ClientError::Encode {
                api: "Metadata",
                version: 99,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(connection.is_usable());
    connection
        .send(MetadataRequest::default())
        .await
        .expect("the next request goes out");
    // Nothing was written for the failed one, and no correlation id was spent on it.
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert_eq!(received[1].header.correlation_id, 1);
}

#[tokio::test]
async fn produce_with_acks_0_expects_no_response() {
    let server = TestServer::start(advertising(
        ranges(&[
            (ApiKey::ApiVersions, 0, 3),
            (ApiKey::Produce, 3, 12),
            (ApiKey::Metadata, 0, 12),
        ]),
        |header, _| match ApiKey::try_from(header.request_api_key) {
            Ok(ApiKey::Metadata) => Reply::Frame(respond(header, &MetadataResponse::default())),
            _ => Reply::Silent,
        },
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let version = connection.version_for::<ProduceRequest>().expect("Produce");
    connection
        .send_without_response(ProduceRequest::default().with_acks(0), version)
        .await
        .expect("written");
    assert!(connection.is_usable());
    connection
        .send(MetadataRequest::default())
        .await
        .expect("the next response is Metadata's");
    assert_eq!(server.keys_and_versions(), [(18, 3), (0, 12), (3, 12)]);
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let address = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address").to_string()
    };
    let err = Connection::open(&address, TIMEOUT, "strom-test")
        .await
        .expect_err("refused");
    match &err {
        ClientError::Connect { broker, source } => {
            assert_eq!(broker, &address);
            assert_eq!(source.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
    assert!(err.is_retriable());
}

#[tokio::test]
async fn fetch_responses_keep_their_records() {
    let records = Bytes::from_static(b"record batch bytes, passed through as they came");
    let served = records.clone();
    let server = TestServer::start(advertising(
        ranges(&[(ApiKey::ApiVersions, 0, 3), (ApiKey::Fetch, 4, 12)]),
        move |header, body| {
            use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
            let request: FetchRequest = decode(header, body);
            let topic = &request.topics[0];
            let response = FetchResponse::default().with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(topic.topic.clone())
                    .with_partitions(vec![
                        PartitionData::default()
                            .with_partition_index(topic.partitions[0].partition)
                            .with_high_watermark(42)
                            .with_records(Some(served.clone())),
                    ]),
            ]);
            Reply::Frame(respond(header, &response))
        },
    ))
    .await;
    let mut connection = Connection::open(server.address(), TIMEOUT, "strom-test")
        .await
        .expect("open");
    let request = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(2))
        .with_max_wait_ms(500)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(3)
                        .with_fetch_offset(40),
                ]),
        ]);
    let response = connection.send(request).await.expect("fetch");
    let partition = &response.responses[0].partitions[0];
    assert_eq!(response.responses[0].topic.0.as_str(), "orders");
    assert_eq!(
        (partition.partition_index, partition.high_watermark),
        (3, 42)
    );
    assert_eq!(partition.records.as_ref(), Some(&records));
}
