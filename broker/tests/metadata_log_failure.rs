//! A broker whose metadata log fails tells the truth at every step until it has stopped:
//! CreateTopics gets KAFKA_STORAGE_ERROR (never "unknown error", never a hang), `/readyz` answers
//! 503 naming the fault, `/metrics` shows it is no longer the active controller and counts the
//! fault, and [`RunningBroker::metadata_fault`] resolves so that the binary exits. (That the
//! binary then exits with a failure status on a really full disk is `e2e/tests/metadata_log.rs`.)

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::{CreateTopicsRequest, RequestHeader, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_broker::config::BrokerConfig;
use strom_broker::server::RunningBroker;

/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i16 = 56;

/// The status code and body of `GET path` on the admin listener, off the runtime's workers.
async fn get(admin: SocketAddr, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || get_blocking(admin, path))
        .await
        .expect("the request runs")
}

fn get_blocking(admin: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(admin).expect("connect to the admin listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the unlabelled sample `name` on `/metrics`.
async fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let (_, text) = get(admin, "/metrics").await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn create_topic(running: &RunningBroker, name: &str) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    let header = RequestHeader::default().with_request_api_version(7);
    let response = tokio::time::timeout(
        Duration::from_secs(60),
        strom_broker::handlers::create_topics::handle(
            &*running.broker,
            &running.broker.controller,
            &*running.broker,
            &running.broker.config.props,
            &header,
            request,
        ),
    )
    .await
    .expect("CreateTopics is answered, not left hanging");
    response.topics[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_metadata_write_is_reported_everywhere_and_stops_the_broker() {
    let root = tempfile::tempdir().expect("tempdir");
    let data_dir = root.path().join("data");
    let running = strom_broker::server::start(BrokerConfig::for_data_dir(data_dir.clone()))
        .await
        .expect("broker starts");
    let admin = running.addrs.admin;
    const ACTIVE: &str = "kafka_controller_kafkacontroller_activecontrollercount";
    const ERRORS: &str = "kafka_controller_kafkacontroller_metadataerrorcount";

    assert_eq!(create_topic(&running, "before").await, 0);
    assert_eq!(get(admin, "/readyz").await, (200, "ready\n".to_owned()));
    assert_eq!(metric(admin, ACTIVE).await, Some(1.0));
    assert_eq!(metric(admin, ERRORS).await, Some(0.0));

    // The metadata directory goes away under the running broker, as a failed volume does: the
    // next metadata write fails.
    let metadata_dir = data_dir.join("__cluster_metadata-0");
    let moved = root.path().join("moved");
    std::fs::rename(&metadata_dir, &moved).expect("move the metadata directory away");
    std::fs::write(&metadata_dir, b"not a directory").expect("a file in its place");

    assert_eq!(create_topic(&running, "during").await, STORAGE_ERROR);
    let fault = tokio::time::timeout(Duration::from_secs(30), running.metadata_fault())
        .await
        .expect("the fault is reported to the process");
    assert!(
        fault.to_string().contains("metadata log cannot be written"),
        "{fault}"
    );
    let (status, reason) = get(admin, "/readyz").await;
    assert_eq!(status, 503, "{reason}");
    assert!(
        reason.contains("metadata log cannot be written"),
        "{reason}"
    );
    assert_eq!(
        metric(admin, ACTIVE).await,
        Some(0.0),
        "no longer the controller"
    );
    assert_eq!(
        metric(admin, ERRORS).await,
        Some(1.0),
        "the fault is counted"
    );
    assert_eq!(
        create_topic(&running, "after").await,
        STORAGE_ERROR,
        "later requests are refused the same way, at once"
    );
    // The hosted partitions keep their data; stopping flushes and closes them.
    tokio::time::timeout(Duration::from_secs(60), running.stop_after_fault())
        .await
        .expect("the broker stops");

    // Once the disk is repaired, a restarted broker has what was committed before the fault.
    std::fs::remove_file(&metadata_dir).expect("remove the file");
    std::fs::rename(&moved, &metadata_dir).expect("put the directory back");
    let running = strom_broker::server::start(BrokerConfig::for_data_dir(data_dir))
        .await
        .expect("broker restarts");
    assert!(running.broker.image().topic("before").is_some());
    assert_eq!(create_topic(&running, "later").await, 0);
    assert_eq!(get(running.addrs.admin, "/readyz").await.0, 200);
    running.shutdown().await;
}
