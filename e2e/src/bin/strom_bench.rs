//! `strom-bench`: produce and consume throughput and produce latency through librdkafka, against
//! any Kafka-compatible broker (`--bootstrap`), or a local release `strom-broker` it starts itself
//! (`--local`). Prints figures; asserts nothing about speed.
//!
//! For each combination of `--partitions` and `--acks` it creates a fresh topic, produces
//! `--records` records of `--record-size` bytes (as fast as possible, or at `--rate` records per
//! second to measure latency under a fixed load), then consumes them all back from the start.
//! Latency is from handing a record to the client to its acknowledgement.
//!
//! `--local --brokers 3 --replication-factor 3` measures a local cluster of three brokers (all
//! controller voters) with every byte replicated three times. With local brokers, each produce
//! phase is followed by one `broker-times` line per broker: its own Produce and Fetch request
//! times over the phase, from its `/metrics`, which tells time in the brokers from time in the
//! client.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use hdrhistogram::Histogram;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::request_times::{self, ApiTimes};

#[derive(Debug, Parser)]
#[command(
    name = "strom-bench",
    about = "Kafka produce/consume benchmark (librdkafka)"
)]
struct Args {
    /// Bootstrap address of the broker to measure.
    #[arg(long, conflicts_with = "local")]
    bootstrap: Option<String>,
    /// Start a local strom-broker (target/release, else target/debug) on a temporary directory.
    #[arg(long)]
    local: bool,
    /// Brokers of the local cluster (`--local`); more than one forms one cluster of voters.
    #[arg(long, default_value_t = 1, requires = "local")]
    brokers: usize,
    /// Replication factor of the benchmark topics.
    #[arg(long, default_value_t = 1)]
    replication_factor: i32,
    /// Records per run.
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Value size in bytes.
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Partition counts to run with.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1, 6])]
    partitions: Vec<i32>,
    /// acks settings to run with (1, all).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["1".to_string(), "all".to_string()])]
    acks: Vec<String>,
    /// Target produce rate in records per second (latency under load); unlimited when absent.
    #[arg(long)]
    rate: Option<u64>,
    /// The producer's `linger.ms`: how long a record may wait in the client for its batch to
    /// fill. Every record's latency includes up to this much, so latency targets for the broker
    /// are measured with a small one.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Producer compression codecs to run with (none, gzip, snappy, lz4, zstd); the broker
    /// stores the batches as the client compressed them.
    #[arg(long, value_delimiter = ',', default_values_t = vec!["none".to_string()],
          value_parser = ["none", "gzip", "snappy", "lz4", "zstd"])]
    compression: Vec<String>,
    /// Skip the consume phase.
    #[arg(long)]
    no_consume: bool,
    /// Also consume with raw Fetch requests (no client-side record parsing), which measures
    /// what the broker serves rather than what the client library can parse.
    #[arg(long)]
    raw_fetch: bool,
}

/// Records delivery latency (enqueue → acknowledgement) and failures.
struct LatencyContext {
    histogram: Mutex<Histogram<u64>>,
    failures: std::sync::atomic::AtomicU64,
}

impl ClientContext for LatencyContext {}

impl ProducerContext for LatencyContext {
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                let micros = sent.elapsed().as_micros() as u64;
                if let Ok(mut h) = self.histogram.lock() {
                    let _ = h.record(micros.max(1));
                }
            }
            Err(_) => {
                self.failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

async fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let topic = NewTopic::new(
        topic,
        partitions,
        TopicReplication::Fixed(replication_factor),
    );
    for result in admin.create_topics([&topic], &AdminOptions::new()).await? {
        if let Err((name, code)) = result {
            bail!("creating {name}: {code:?}");
        }
    }
    Ok(())
}

fn produce(
    args: &Args,
    bootstrap: &str,
    topic: &str,
    acks: &str,
    compression: &str,
) -> anyhow::Result<()> {
    let context = LatencyContext {
        histogram: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
        failures: Default::default(),
    };
    let producer: ThreadedProducer<LatencyContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", compression)
        .create_with_context(context)
        .context("creating the producer")?;
    let payload = vec![b'x'; args.record_size];
    let started = Instant::now();
    let interval = args
        .rate
        .map(|r| Duration::from_secs_f64(1.0 / r.max(1) as f64));
    for i in 0..args.records {
        if let Some(interval) = interval {
            let due = started + interval * i as u32;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let key = (i as u64).to_be_bytes();
        let mut record = BaseRecord::with_opaque_to(topic, Box::new(Instant::now()))
            .key(&key[..])
            .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    // Local queue full: wait for acknowledgements to drain it.
                    record = returned;
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(300))?;
    let elapsed = started.elapsed().as_secs_f64();
    let context = producer.context();
    let failures = context.failures.load(std::sync::atomic::Ordering::Relaxed);
    let histogram = context
        .histogram
        .lock()
        .map_err(|_| anyhow::anyhow!("histogram lock"))?;
    let bytes = (args.records * args.record_size) as f64;
    println!(
        "produce topic={topic} acks={acks} compression={compression} records={} size={} rate={} linger.ms={} throughput={:.1} MB/s {:.0} records/s latency p50={:.2}ms p99={:.2}ms p99.9={:.2}ms max={:.2}ms failures={failures} load={}",
        args.records,
        args.record_size,
        args.rate.map_or("max".to_string(), |r| r.to_string()),
        args.linger_ms,
        bytes / elapsed / 1e6,
        args.records as f64 / elapsed,
        histogram.value_at_quantile(0.5) as f64 / 1000.0,
        histogram.value_at_quantile(0.99) as f64 / 1000.0,
        histogram.value_at_quantile(0.999) as f64 / 1000.0,
        histogram.max() as f64 / 1000.0,
        load_average(),
    );
    if failures > 0 {
        bail!("{failures} records were not acknowledged");
    }
    Ok(())
}

fn consume(args: &Args, bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strom-bench")
        .set("enable.auto.commit", "false")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "1048576")
        .set("queued.max.messages.kbytes", "1048576")
        .set("fetch.wait.max.ms", "100")
        .create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let started = Instant::now();
    let (mut count, mut bytes) = (0usize, 0usize);
    let deadline = started + Duration::from_secs(600);
    while count < args.records {
        if Instant::now() > deadline {
            bail!("consumed {count} of {} records in 600 s", args.records);
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(message)) => {
                count += 1;
                bytes += message.payload_len() + message.key().map_or(0, <[u8]>::len);
            }
            Some(Err(error)) => bail!("consumer error: {error}"),
            None => {}
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "consume topic={topic} records={count} throughput={:.1} MB/s {:.0} records/s load={}",
        bytes as f64 / elapsed / 1e6,
        count as f64 / elapsed,
        load_average(),
    );
    Ok(())
}

/// Reads the whole topic with plain Fetch requests (1 MiB per partition as librdkafka asks by
/// default, 50 MiB per request),
/// advancing each partition past the last batch returned.
async fn consume_raw(
    args: &Args,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut stream = tokio::net::TcpStream::connect(bootstrap).await?;
    stream.set_nodelay(true)?;
    let mut offsets = vec![0i64; usize::try_from(partitions)?];
    let started = Instant::now();
    let (mut records, mut bytes) = (0usize, 0usize);
    while records < args.records {
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "raw fetch read {records} of {} records in 600 s",
                args.records
            );
        }
        let request = FetchRequest::default()
            .with_replica_id((-1).into())
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(
                        offsets
                            .iter()
                            .enumerate()
                            .map(|(p, &offset)| {
                                FetchPartition::default()
                                    .with_partition(p as i32)
                                    .with_fetch_offset(offset)
                                    .with_partition_max_bytes(1 << 20)
                            })
                            .collect(),
                    ),
            ]);
        let response: FetchResponse =
            strom_e2e::wire::call(&mut stream, ApiKey::Fetch, 12, &request).await?;
        for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
            if partition.error_code != 0 {
                bail!(
                    "fetch error {} on partition {}",
                    partition.error_code,
                    partition.partition_index
                );
            }
            let data = partition.records.as_deref().unwrap_or_default();
            bytes += data.len();
            let mut position = 0;
            while position + 61 <= data.len() {
                let base = i64::from_be_bytes(data[position..position + 8].try_into()?);
                let length =
                    i32::from_be_bytes(data[position + 8..position + 12].try_into()?) as usize;
                let delta = i32::from_be_bytes(data[position + 23..position + 27].try_into()?);
                let count = i32::from_be_bytes(data[position + 57..position + 61].try_into()?);
                records += usize::try_from(count).unwrap_or(0);
                if let Some(slot) = offsets.get_mut(partition.partition_index as usize) {
                    *slot = base + i64::from(delta) + 1;
                }
                position += 12 + length;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "consume-raw topic={topic} records={records} throughput={:.1} MB/s {:.0} records/s load={}",
        bytes as f64 / elapsed / 1e6,
        records as f64 / elapsed,
        load_average(),
    );
    Ok(())
}

fn scrape_all(admin_urls: &[String]) -> Vec<BTreeMap<String, ApiTimes>> {
    admin_urls
        .iter()
        .map(|url| request_times::scrape(url).unwrap_or_default())
        .collect()
}

/// The brokers' own Produce and Fetch times during the produce phase (local brokers only): with
/// replication, Fetch is the followers' fetches, and Produce with `acks=all` includes the wait
/// for them.
fn print_request_times(admin_urls: &[String], before: &[BTreeMap<String, ApiTimes>]) {
    let after = scrape_all(admin_urls);
    for (broker, (now, then)) in after.iter().zip(before).enumerate() {
        let mut line = format!("broker-times broker={broker}");
        for api in ["Produce", "Fetch"] {
            let Some(now) = now.get(api) else { continue };
            let times = then.get(api).map_or_else(|| now.clone(), |t| now.since(t));
            line.push_str(&format!(
                " {api} count={} mean={:.2}ms p50<={}ms p99<={}ms",
                times.count,
                times.mean_ms(),
                times.quantile_bound_ms(0.5),
                times.quantile_bound_ms(0.99),
            ));
        }
        println!("{line}");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _local;
    let _cluster;
    let mut admin_urls = Vec::new();
    let bootstrap = match (&args.bootstrap, args.local) {
        (Some(bootstrap), _) => bootstrap.clone(),
        (None, true) if args.brokers > 1 => {
            let binary = strom_e2e::broker_binary()?;
            eprintln!(
                "strom-bench: starting {} brokers of {}",
                args.brokers,
                binary.display()
            );
            let cluster = strom_e2e::cluster::Cluster::start(args.brokers, 0, |_, o| o)?;
            cluster.await_controller(Duration::from_secs(60)).await?;
            let bootstrap = cluster.bootstrap();
            admin_urls = cluster.brokers().iter().map(|b| b.admin_url()).collect();
            _cluster = cluster;
            bootstrap
        }
        (None, true) => {
            let binary = strom_e2e::broker_binary()?;
            eprintln!("strom-bench: starting {}", binary.display());
            let broker = strom_e2e::BrokerProcess::start(strom_e2e::BrokerOptions::default())?;
            let bootstrap = broker.bootstrap();
            admin_urls.push(broker.admin_url());
            _local = broker;
            bootstrap
        }
        (None, false) => bail!("give --bootstrap HOST:PORT or --local"),
    };
    let run_id = std::process::id();
    for compression in &args.compression {
        for &partitions in &args.partitions {
            for acks in &args.acks {
                let topic = format!(
                    "bench-{run_id}-{compression}-{partitions}p-rf{}-acks{acks}",
                    args.replication_factor
                );
                create_topic(&bootstrap, &topic, partitions, args.replication_factor).await?;
                let before = scrape_all(&admin_urls);
                tokio::task::block_in_place(|| {
                    produce(&args, &bootstrap, &topic, acks, compression)
                })?;
                print_request_times(&admin_urls, &before);
                if !args.no_consume {
                    tokio::task::block_in_place(|| consume(&args, &bootstrap, &topic, partitions))?;
                }
                if args.raw_fetch {
                    consume_raw(&args, &bootstrap, &topic, partitions).await?;
                }
            }
        }
    }
    Ok(())
}
