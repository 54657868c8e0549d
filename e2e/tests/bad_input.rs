//! Bad input closes the offending connection or gets a Kafka error code, and never takes the
//! broker down: after every kind of garbage, a connection opened before the attack still
//! answers, and a real client still produces and consumes.

use std::time::Duration;

use bytes::BufMut;
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::Decodable;
use rand::{Rng, SeedableRng};
use rdkafka::producer::FutureRecord;
use strom_client::frame::encode_request;
use strom_e2e::kafka::{assigned_consumer, consume, producer};
use strom_e2e::wire::read_frame;
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the broker may take to answer or to close a connection.
const REPLY_DEADLINE: Duration = Duration::from_secs(10);

/// An ApiVersions request frame at `version` with `correlation_id`.
fn api_versions_frame(version: i16, correlation_id: i32) -> Vec<u8> {
    encode_request(
        ApiKey::ApiVersions,
        version,
        correlation_id,
        None,
        &ApiVersionsRequest::default(),
    )
    .expect("an ApiVersions request encodes")
    .to_vec()
}

/// Reads one response frame; `None` when the broker closed the connection or said nothing
/// within [`REPLY_DEADLINE`].
async fn reply(stream: &mut TcpStream) -> Option<Vec<u8>> {
    tokio::time::timeout(REPLY_DEADLINE, read_frame(stream))
        .await
        .ok()
        .flatten()
}

async fn connect(broker: &BrokerProcess) -> TcpStream {
    TcpStream::connect(broker.bootstrap())
        .await
        .expect("broker accepts connections")
}

/// Sends `bytes` on a fresh connection and reports whether the broker closed it.
async fn closed_after(broker: &BrokerProcess, bytes: &[u8]) -> bool {
    let mut stream = connect(broker).await;
    let _ = stream.write_all(bytes).await;
    let _ = stream.shutdown().await;
    let mut rest = Vec::new();
    // The broker closes: read_to_end returns (maybe after an error response) instead of timing out.
    matches!(
        tokio::time::timeout(REPLY_DEADLINE, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_))
    )
}

/// The healthy connection still gets answers with the right correlation id.
async fn assert_answers(healthy: &mut TcpStream, correlation_id: i32) {
    healthy
        .write_all(&api_versions_frame(3, correlation_id))
        .await
        .expect("write on the healthy connection");
    let frame = reply(healthy)
        .await
        .expect("the healthy connection is still served");
    assert_eq!(
        i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]),
        correlation_id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_never_takes_the_broker_down() -> anyhow::Result<()> {
    let broker =
        BrokerProcess::start(BrokerOptions::default().with("socket.request.max.bytes", "1048576"))?;
    let mut healthy = connect(&broker).await;
    assert_answers(&mut healthy, 1).await;

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5742_0a11);
    let mut attacks: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..20 {
        let len = rng.random_range(1..2048);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        attacks.push((format!("random bytes #{i}"), bytes));
    }
    let valid = api_versions_frame(3, 7);
    attacks.push((
        "frame cut mid-body".into(),
        valid[..valid.len() - 3].to_vec(),
    ));
    attacks.push(("size prefix only".into(), vec![0, 0, 0, 50]));
    attacks.push(("negative size".into(), (-1i32).to_be_bytes().to_vec()));
    attacks.push((
        "frame over socket.request.max.bytes".into(),
        (64 * 1024 * 1024i32).to_be_bytes().to_vec(),
    ));
    let mut unknown_key = api_versions_frame(3, 9);
    unknown_key[4..6].copy_from_slice(&999i16.to_be_bytes());
    attacks.push(("unknown API key".into(), unknown_key));
    let mut unsupported = api_versions_frame(3, 10);
    unsupported[4..6].copy_from_slice(&(ApiKey::Produce as i16).to_be_bytes());
    unsupported[6..8].copy_from_slice(&99i16.to_be_bytes());
    attacks.push(("unsupported Produce version".into(), unsupported));
    // Array lengths near i32::MAX: the codec would reserve hundreds of GB before noticing the
    // frame is short.
    for (api, version) in [(19i16, 2i16), (3, 1), (1, 4), (0, 3), (32, 1)] {
        let mut body = Vec::new();
        body.put_i16(api);
        body.put_i16(version);
        body.put_i32(11);
        body.put_i16(-1);
        body.put_i32(i32::MAX);
        let mut frame = Vec::new();
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        attacks.push((
            format!("array of i32::MAX elements, api {api} v{version}"),
            frame,
        ));
    }
    for (index, (name, bytes)) in attacks.iter().enumerate() {
        assert!(
            closed_after(&broker, bytes).await,
            "{name}: connection closed or answered"
        );
        assert_answers(&mut healthy, 100 + index as i32).await;
    }

    // ApiVersions newer than served: a v0 answer with UNSUPPORTED_VERSION (KIP-511), and the
    // connection stays usable.
    let mut stream = connect(&broker).await;
    stream.write_all(&api_versions_frame(3, 42)[..]).await?;
    let mut newer = api_versions_frame(3, 43);
    newer[6..8].copy_from_slice(&127i16.to_be_bytes());
    stream.write_all(&newer).await?;
    let first = reply(&mut stream)
        .await
        .ok_or_else(|| anyhow::anyhow!("no answer"))?;
    assert_eq!(i32::from_be_bytes(first[..4].try_into()?), 42);
    let second = reply(&mut stream)
        .await
        .ok_or_else(|| anyhow::anyhow!("no answer to v127"))?;
    assert_eq!(i32::from_be_bytes(second[..4].try_into()?), 43);
    let mut body = bytes::Bytes::copy_from_slice(&second[4..]);
    let response = ApiVersionsResponse::decode(&mut body, 0)?;
    assert_eq!(response.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(
        response
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16)
    );

    // A real client is served as before.
    let producer = producer(&broker.bootstrap(), &[("acks", "all")])?;
    for i in 0..10 {
        let value = format!("still-alive-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to("after-attack").payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    let consumer = assigned_consumer(&broker.bootstrap(), "after-attack", 1)?;
    let messages = consume(&consumer, 10, Duration::from_secs(30))?;
    assert_eq!(messages.len(), 10);
    Ok(())
}

/// ApiVersions v3+ names the client software (KIP-511); Kafka answers a name or version outside
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` with INVALID_REQUEST, and so does Strom, while
/// the names real clients send pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_client_software_names_get_invalid_request() -> anyhow::Result<()> {
    use kafka_protocol::protocol::StrBytes;
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    let ask = |name: &str, version: &str| {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_string(name.to_string()))
            .with_client_software_version(StrBytes::from_string(version.to_string()))
    };
    let too_long = "x".repeat(32_768);
    for (name, version) in [
        ("", "1.0.0"),
        ("bad name!", "1.0.0"),
        ("-lead", "1.0.0"),
        ("trailing-", "1.0.0"),
        (too_long.as_str(), "1.0.0"),
        ("librdkafka", ""),
        ("librdkafka", "2.0.2 beta"),
    ] {
        for api_version in [3, 4] {
            let response: ApiVersionsResponse = strom_e2e::wire::call(
                &mut stream,
                ApiKey::ApiVersions,
                api_version,
                &ask(name, version),
            )
            .await?;
            assert_eq!(
                response.error_code, 42,
                "INVALID_REQUEST for {:.20?}/{version:?} at v{api_version}",
                name
            );
            assert!(response.api_keys.is_empty());
        }
    }
    let long_but_valid = "x".repeat(20_000);
    for (name, version) in [
        ("librdkafka", "2.0.2"),
        ("confluent-kafka-python", "2.6.1-rdkafka-2.6.1"),
        ("kafka-python", "2.0.6"),
        ("apache-kafka-java", "3.9.0"),
        (long_but_valid.as_str(), "1"),
    ] {
        let response: ApiVersionsResponse =
            strom_e2e::wire::call(&mut stream, ApiKey::ApiVersions, 3, &ask(name, version)).await?;
        assert_eq!(response.error_code, 0, "{name:.20}/{version}");
        assert!(
            response
                .api_keys
                .iter()
                .any(|k| k.api_key == ApiKey::Fetch as i16)
        );
    }
    // Before v3 there are no names to check.
    let response: ApiVersionsResponse = strom_e2e::wire::call(
        &mut stream,
        ApiKey::ApiVersions,
        2,
        &ApiVersionsRequest::default(),
    )
    .await?;
    assert_eq!(response.error_code, 0);
    Ok(())
}
