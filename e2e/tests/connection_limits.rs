//! Connections that do nothing useful cannot hold the broker: a frame that is started and not
//! finished is closed after `socket.request.read.timeout.ms`, an idle connection after
//! `connections.max.idle.ms` (but never while its request is being served), and one address
//! cannot open more than `max.connections.per.ip` — while everyone else keeps being served.

use std::time::Duration;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::kafka::create_topic;
use strom_e2e::observability::http_get;
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;

/// Generous: the machines running the tests are shared.
const DEADLINE: Duration = Duration::from_secs(60);

fn api_versions() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom-e2e"))
        .with_client_software_version(StrBytes::from_static_str("1.0"))
}

/// Sends ApiVersions and expects an answer without error.
async fn served(stream: &mut TcpStream) -> anyhow::Result<()> {
    let response: ApiVersionsResponse = timeout(
        DEADLINE,
        call(stream, ApiKey::ApiVersions, 3, &api_versions()),
    )
    .await??;
    anyhow::ensure!(
        response.error_code == 0,
        "ApiVersions error {}",
        response.error_code
    );
    Ok(())
}

/// Waits until the broker closes `stream` (a read returns end of stream or a reset).
async fn closed_by_broker(stream: &mut TcpStream) -> anyhow::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        match timeout(DEADLINE, stream.read(&mut buf)).await? {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => continue,
        }
    }
}

/// The broker's count of connections it closed for `reason`.
fn closed_for(broker: &BrokerProcess, reason: &str) -> anyhow::Result<f64> {
    let text = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    let prefix = format!("strom_connections_closed_by_broker_total{{reason=\"{reason}\"}} ");
    Ok(text
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0))
}

async fn connect_from(source: [u8; 4], broker: &BrokerProcess) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    Ok(socket.connect(broker.bootstrap().parse()?).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_half_frames_are_closed_and_no_longer_lock_others_out() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("max.connections", "50")
            .with("socket.request.read.timeout.ms", "1000"),
    )?;
    // Fifty connections each send half of a 100-byte frame and stall: every connection slot
    // is taken.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut stream = TcpStream::connect(broker.bootstrap()).await?;
        stream.write_all(&100i32.to_be_bytes()).await?;
        stream.write_all(&[0u8; 50]).await?;
        stalled.push(stream);
    }
    // The 51st client waits in the listen backlog; it is served once the stalled ones are gone.
    let mut late = TcpStream::connect(broker.bootstrap()).await?;
    served(&mut late).await?;
    for stream in &mut stalled {
        closed_by_broker(stream).await?;
    }
    assert!(closed_for(&broker, "request_read_timeout")? >= 50.0);
    // A connection that keeps to the protocol is untouched by the deadline.
    for _ in 0..3 {
        served(&mut late).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_busy_ones_are_not() -> anyhow::Result<()> {
    let broker =
        BrokerProcess::start(BrokerOptions::default().with("connections.max.idle.ms", "1500"))?;
    create_topic(&broker.bootstrap(), "idle-poll", 1, &[]).await?;
    let mut silent = TcpStream::connect(broker.bootstrap()).await?;
    let mut quiet = TcpStream::connect(broker.bootstrap()).await?;
    served(&mut quiet).await?;

    // A client with a request every 250 ms stays connected well past the idle limit...
    let mut busy = TcpStream::connect(broker.bootstrap()).await?;
    for _ in 0..16 {
        served(&mut busy).await?;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // ...and so does one whose request takes longer than the idle limit to answer: a Fetch
    // that long-polls an empty partition for 4 s.
    let mut polling = TcpStream::connect(broker.bootstrap()).await?;
    let fetch = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(4000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("idle-poll")))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: FetchResponse =
        timeout(DEADLINE, call(&mut polling, ApiKey::Fetch, 12, &fetch)).await??;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    served(&mut polling).await?;

    // The connection that never sent anything and the one that went quiet are closed.
    closed_by_broker(&mut silent).await?;
    closed_by_broker(&mut quiet).await?;
    assert!(closed_for(&broker, "idle")? >= 2.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_more_than_its_connections() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("max.connections.per.ip", "2")
            .with("max.connections.per.ip.overrides", "127.0.0.3:0"),
    )?;
    let mut first = connect_from([127, 0, 0, 1], &broker).await?;
    let mut second = connect_from([127, 0, 0, 1], &broker).await?;
    served(&mut first).await?;
    served(&mut second).await?;

    // The third from the same address is accepted and closed at once...
    let mut third = connect_from([127, 0, 0, 1], &broker).await?;
    let _ = third.write_all(&[0, 0, 0, 1, 0]).await;
    closed_by_broker(&mut third).await?;
    // ...while another loopback address is served, and one whose override is 0 is not.
    let mut other = connect_from([127, 0, 0, 2], &broker).await?;
    served(&mut other).await?;
    let mut refused = connect_from([127, 0, 0, 3], &broker).await?;
    closed_by_broker(&mut refused).await?;
    assert!(closed_for(&broker, "per_ip_limit")? >= 2.0);

    // The existing connections are unaffected, and a closed one frees its slot.
    served(&mut first).await?;
    drop(second);
    // Polled with a deadline: the broker notices the close asynchronously.
    let until = tokio::time::Instant::now() + DEADLINE;
    let admitted = loop {
        let mut stream = connect_from([127, 0, 0, 1], &broker).await?;
        if served(&mut stream).await.is_ok() {
            break stream;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < until,
            "no slot of 127.0.0.1 freed within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    drop(admitted);
    served(&mut first).await?;
    Ok(())
}
