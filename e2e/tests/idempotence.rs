//! The idempotent producer never writes a record twice when it retries: a proxy between the
//! client and the broker forwards Produce requests but drops some responses and cuts the
//! connection, so librdkafka resends batches the broker already appended. Every record ends up
//! in the log exactly once, in order. And an older producer epoch is fenced.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::Message;
use rdkafka::producer::FutureRecord;
use strom_e2e::kafka::{assigned_consumer, consume, create_topic, producer};
use strom_e2e::wire::{call, encode_batch, read_frame, write_frame};
use strom_e2e::{BrokerOptions, BrokerProcess};
use tokio::net::{TcpListener, TcpStream};

/// Forwards one client connection; after forwarding the `drop_every`-th Produce request it waits
/// for the broker's response to it, throws the response away and closes the client connection.
async fn proxy_connection(
    client: TcpStream,
    upstream: String,
    produces: Arc<AtomicUsize>,
    drops: Arc<AtomicUsize>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Correlation ids whose responses must not reach the client.
    let (doomed_tx, mut doomed_rx) = tokio::sync::mpsc::unbounded_channel::<i32>();
    let upstream_task = tokio::spawn(async move {
        while let Some(frame) = read_frame(&mut client_read).await {
            let api_key = i16::from_be_bytes([frame[0], frame[1]]);
            let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
            if api_key == ApiKey::Produce as i16 {
                let n = produces.fetch_add(1, Ordering::SeqCst) + 1;
                if n.is_multiple_of(7) && drops.load(Ordering::SeqCst) < 6 {
                    drops.fetch_add(1, Ordering::SeqCst);
                    let _ = doomed_tx.send(correlation_id);
                }
            }
            if write_frame(&mut server_write, &frame).await.is_err() {
                break;
            }
        }
    });
    let mut doomed = HashSet::new();
    while let Some(frame) = read_frame(&mut server_read).await {
        while let Ok(id) = doomed_rx.try_recv() {
            doomed.insert(id);
        }
        let correlation_id = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        if doomed.contains(&correlation_id) {
            // The broker appended the batch; the client never learns it.
            break;
        }
        if write_frame(&mut client_write, &frame).await.is_err() {
            break;
        }
    }
    upstream_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_batches_are_written_exactly_once() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy_addr = listener.local_addr()?.to_string();
    let broker = BrokerProcess::start(BrokerOptions {
        advertised_listener: Some(proxy_addr.clone()),
        ..BrokerOptions::default()
    })?;
    let upstream = broker.bootstrap();
    let produces = Arc::new(AtomicUsize::new(0));
    let drops = Arc::new(AtomicUsize::new(0));
    let proxy = {
        let (produces, drops) = (produces.clone(), drops.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(
                    client,
                    upstream.clone(),
                    produces.clone(),
                    drops.clone(),
                ));
            }
        })
    };

    create_topic(&proxy_addr, "exactly-once", 1, &[]).await?;
    let producer = producer(
        &proxy_addr,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("linger.ms", "2"),
            ("batch.num.messages", "50"),
            ("max.in.flight.requests.per.connection", "5"),
            ("retry.backoff.ms", "10"),
        ],
    )?;
    const RECORDS: usize = 3000;
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let value = format!("record-{i}");
        let delivery = producer
            .send_result(FutureRecord::<(), _>::to("exactly-once").payload(&value))
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        deliveries.push(delivery);
        if i % 100 == 99 {
            // Spread the records over many produce requests.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
    for delivery in deliveries {
        delivery
            .await?
            .map_err(|(e, _)| anyhow::anyhow!("delivery failed: {e}"))?;
    }
    assert!(
        drops.load(Ordering::SeqCst) > 0,
        "the proxy dropped some responses"
    );

    let consumer = assigned_consumer(&broker.bootstrap(), "exactly-once", 1)?;
    // Read one more than produced would hang: read exactly RECORDS and check the end offset.
    let messages = consume(&consumer, RECORDS, Duration::from_secs(60))?;
    let values: Vec<String> = messages
        .iter()
        .map(|m| String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
        .collect();
    let expected: Vec<String> = (0..RECORDS).map(|i| format!("record-{i}")).collect();
    assert_eq!(values, expected, "every record once, in order");
    let (_, end) = rdkafka::consumer::Consumer::fetch_watermarks(
        &consumer,
        "exactly-once",
        0,
        Duration::from_secs(5),
    )?;
    assert_eq!(end, RECORDS as i64, "no duplicate was appended");
    proxy.abort();
    Ok(())
}

fn batch(producer_id: i64, epoch: i16, sequence: i32, value: &str) -> anyhow::Result<Bytes> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id,
        producer_epoch: epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence,
        // Now, not a fixed date: retention (7 days by default) would delete an old batch.
        timestamp: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: Default::default(),
    };
    encode_batch(&[record])
}

async fn produce(stream: &mut TcpStream, records: Bytes) -> anyhow::Result<(i16, i64)> {
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("fenced")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records)),
                ]),
        ]);
    let response: ProduceResponse = call(stream, ApiKey::Produce, 9, &request).await?;
    let partition = &response.responses[0].partition_responses[0];
    Ok((partition.error_code, partition.base_offset))
}

/// InitProducerId for an idempotent producer (no transactional id); `current` re-initializes an
/// existing producer id and epoch (KIP-360).
async fn init_producer_id(
    stream: &mut TcpStream,
    current: Option<(ProducerId, i16)>,
) -> anyhow::Result<InitProducerIdResponse> {
    let mut request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60000);
    if let Some((id, epoch)) = current {
        request = request.with_producer_id(id).with_producer_epoch(epoch);
    }
    call(stream, ApiKey::InitProducerId, 4, &request).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_producer_epoch_is_fenced() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "fenced", 1, &[]).await?;
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;

    let first: InitProducerIdResponse = init_producer_id(&mut stream, None).await?;
    assert_eq!(first.error_code, 0);
    assert_eq!(first.producer_epoch, 0);
    let pid = first.producer_id;
    // A second producer gets another id.
    let other: InitProducerIdResponse = init_producer_id(&mut stream, None).await?;
    assert_ne!(other.producer_id, pid);

    assert_eq!(
        produce(&mut stream, batch(pid.0, 0, 0, "a")?).await?,
        (0, 0)
    );
    // The same batch again is a duplicate: acknowledged with its first offset, not rewritten.
    assert_eq!(
        produce(&mut stream, batch(pid.0, 0, 0, "a")?).await?,
        (0, 0)
    );
    // A gap in sequence numbers is refused.
    assert_eq!(
        produce(&mut stream, batch(pid.0, 0, 5, "gap")?).await?.0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );

    // Re-initializing with the current id and epoch bumps the epoch (KIP-360)...
    let bumped: InitProducerIdResponse = init_producer_id(&mut stream, Some((pid, 0))).await?;
    assert_eq!((bumped.producer_id, bumped.producer_epoch), (pid, 1));
    assert_eq!(
        produce(&mut stream, batch(pid.0, 1, 0, "b")?).await?,
        (0, 1)
    );
    // ...and the old epoch is fenced.
    assert_eq!(
        produce(&mut stream, batch(pid.0, 0, 1, "stale")?).await?.0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );

    let consumer = assigned_consumer(&broker.bootstrap(), "fenced", 1)?;
    let messages = consume(&consumer, 2, Duration::from_secs(30))?;
    let values: Vec<&[u8]> = messages.iter().filter_map(|m| m.payload()).collect();
    assert_eq!(values, vec![&b"a"[..], &b"b"[..]]);
    let (_, end) = rdkafka::consumer::Consumer::fetch_watermarks(
        &consumer,
        "fenced",
        0,
        Duration::from_secs(5),
    )?;
    assert_eq!(end, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduplication_holds_across_a_broker_restart() -> anyhow::Result<()> {
    let mut broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "fenced", 1, &[]).await?;
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    let init: InitProducerIdResponse = init_producer_id(&mut stream, None).await?;
    let pid = init.producer_id.0;
    for (sequence, value) in ["a", "b", "c"].iter().enumerate() {
        let offset = produce(&mut stream, batch(pid, 0, sequence as i32, value)?).await?;
        assert_eq!(offset, (0, sequence as i64));
    }
    drop(stream);

    // A crash: the producer state is rebuilt from the log (snapshot + replay).
    broker.kill9();
    broker.restart()?;
    let mut stream = TcpStream::connect(broker.bootstrap()).await?;
    // The retry of the last batch is recognised and answered with its original offset...
    assert_eq!(produce(&mut stream, batch(pid, 0, 2, "c")?).await?, (0, 2));
    // ...the sequence continues where it stopped...
    assert_eq!(produce(&mut stream, batch(pid, 0, 3, "d")?).await?, (0, 3));
    // ...and producer ids handed out before the crash are never handed out again.
    let next: InitProducerIdResponse = init_producer_id(&mut stream, None).await?;
    assert!(
        next.producer_id.0 > pid,
        "{} after {pid}",
        next.producer_id.0
    );

    let consumer = assigned_consumer(&broker.bootstrap(), "fenced", 1)?;
    let messages = consume(&consumer, 4, Duration::from_secs(30))?;
    let values: Vec<&[u8]> = messages.iter().filter_map(|m| m.payload()).collect();
    assert_eq!(values, vec![&b"a"[..], b"b", b"c", b"d"]);
    Ok(())
}
