//! Observability against real processes:
//! - the broker's `/metrics` moves by exactly what rdkafka clients did (bytes, records,
//!   requests, offsets, lag);
//! - a real Prometheus scraping a real broker evaluates every query of the shipped Grafana
//!   dashboards, every alert rule and queries of the kind existing Kafka dashboards run: each
//!   parses, each that should have data has data with the labels its legend shows, and no alert
//!   fires on a healthy broker.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use bytes::Bytes;
use kafka_protocol::records::{Record, TimestampType};
use rdkafka::Offset;
use rdkafka::TopicPartitionList;
use rdkafka::admin::AdminOptions;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use serde_json::Value;
use strom_e2e::observability::{
    PrometheusProcess, dashboard_queries, dashboards, http_get, metric_names, rule_files,
    substitute_variables, variable_names,
};
use strom_e2e::wire::encode_batch;
use strom_e2e::{BrokerOptions, BrokerProcess, kafka, wait_until};

const TIMEOUT: Duration = Duration::from_secs(30);

const OPERATOR_NOT_RUNNING: &str = "the operator exposes these; this test runs only a broker";
const KUBELET_ONLY: &str =
    "the kubelet exposes these for PersistentVolumeClaims; there is no kubelet here";

/// Metrics that the dashboards and rules read but this test cannot produce, with the reason.
/// Queries reading them must still parse, and may be empty. The test fails when one of them has
/// data, so the list cannot go stale: remove an entry once its metric exists.
const ABSENT_METRICS: [(&str, &str); 9] = [
    ("strom_operator_reconciles_total", OPERATOR_NOT_RUNNING),
    (
        "strom_operator_reconcile_errors_total",
        OPERATOR_NOT_RUNNING,
    ),
    (
        "strom_operator_reconcile_duration_seconds_bucket",
        OPERATOR_NOT_RUNNING,
    ),
    (
        "strom_operator_operations_in_progress",
        OPERATOR_NOT_RUNNING,
    ),
    (
        "strom_operator_operation_step_duration_seconds_bucket",
        OPERATOR_NOT_RUNNING,
    ),
    (
        "strom_operator_reassignment_bytes_remaining",
        OPERATOR_NOT_RUNNING,
    ),
    ("strom_operator_blocked_rolls", OPERATOR_NOT_RUNNING),
    ("kubelet_volume_stats_available_bytes", KUBELET_ONLY),
    ("kubelet_volume_stats_capacity_bytes", KUBELET_ONLY),
];

fn absent_reason(metric: &str) -> Option<&'static str> {
    ABSENT_METRICS
        .iter()
        .find(|(name, _)| *name == metric)
        .map(|(_, reason)| *reason)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building a tokio runtime")
}

fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", "10000");
    config
}

fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    runtime()?.block_on(kafka::create_topic(bootstrap, topic, partitions, &[]))
}

/// Produces `count` records to partition `partition` of `topic`, awaiting each delivery before
/// sending the next, so that each Produce request carries one batch of one record.
fn produce_one_record_per_batch(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    count: usize,
    value: &[u8],
) -> anyhow::Result<()> {
    let producer = kafka::producer(
        bootstrap,
        &[
            ("linger.ms", "0"),
            ("compression.type", "none"),
            ("enable.idempotence", "false"),
            ("acks", "all"),
        ],
    )?;
    runtime()?.block_on(async {
        for i in 0..count {
            let key = format!("key-{i:04}");
            let record = FutureRecord::to(topic)
                .partition(partition)
                .key(&key)
                .payload(value);
            let delivery = producer
                .send(record, TIMEOUT)
                .await
                .map_err(|(e, _)| anyhow::anyhow!("record {i}: {e}"))?;
            ensure!(
                delivery.offset == i64::try_from(i)?,
                "record {i} got offset {}",
                delivery.offset
            );
        }
        Ok(())
    })
}

/// Produces `count` records spread over the partitions of `topic` as fast as the client batches
/// them.
fn produce_batched(bootstrap: &str, topic: &str, count: usize) -> anyhow::Result<()> {
    let producer = kafka::producer(bootstrap, &[])?;
    runtime()?.block_on(async {
        let sends = (0..count).map(|i| {
            let key = format!("key-{i}");
            let value = format!("value-{i}-{}", "x".repeat(i % 200));
            let producer = &producer;
            async move {
                producer
                    .send(FutureRecord::to(topic).key(&key).payload(&value), TIMEOUT)
                    .await
                    .map_err(|(e, _)| anyhow::anyhow!("record {i}: {e}"))
            }
        });
        for result in futures::future::join_all(sends).await {
            result?;
        }
        Ok(())
    })
}

/// Reads every record of `partitions` of `topic` from the beginning until `count` arrived,
/// checking offsets are contiguous from 0 per partition, then commits `commits`
/// (partition → offset) for `group`. The partitions are assigned, not subscribed, as tools that
/// track their own position do; the group has no members and only stores offsets.
fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
    group: &str,
    commits: &BTreeMap<i32, i64>,
) -> anyhow::Result<()> {
    let mut config = client_config(bootstrap);
    config
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    let consumer: BaseConsumer = config.create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let mut next_offset: BTreeMap<i32, i64> = BTreeMap::new();
    let mut received = 0;
    wait_until(&format!("{count} records from {topic}"), TIMEOUT, || {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let expected = next_offset.entry(message.partition()).or_insert(0);
                if message.offset() != *expected {
                    return Some(Err(anyhow::anyhow!(
                        "partition {} gave offset {} where {} was next",
                        message.partition(),
                        message.offset(),
                        expected
                    )));
                }
                *expected += 1;
                received += 1;
            }
            Some(Err(e)) => return Some(Err(anyhow::anyhow!("consuming {topic}: {e}"))),
            None => {}
        }
        (received >= count).then_some(Ok(()))
    })??;
    ensure!(
        received == count,
        "received {received} records, produced {count}"
    );
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in commits {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .context("committing offsets")?;
    Ok(())
}

/// Size of a v2 record batch holding one record with `key` and `value` and no headers, as a
/// client sends it uncompressed. Every field of a one-record batch has a fixed size or a size
/// set by the key and value lengths, so this is exactly what librdkafka sends.
fn one_record_batch_len(key: &[u8], value: &[u8]) -> anyhow::Result<u64> {
    let record = Record {
        transactional: false,
        control: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1_700_000_000_000,
        key: Some(Bytes::copy_from_slice(key)),
        value: Some(Bytes::copy_from_slice(value)),
        headers: Default::default(),
        delete_horizon: false,
    };
    Ok(u64::try_from(encode_batch(&[record])?.len())?)
}

/// `GET /metrics` of the broker.
fn scrape(broker: &BrokerProcess) -> anyhow::Result<String> {
    let response = http_get(&format!("{}/metrics", broker.admin_url()))?;
    ensure!(
        response.status == 200,
        "/metrics answered {}: {}",
        response.status,
        response.body
    );
    Ok(response.body)
}

/// The value of the series `name{labels}` (exact label set, any order) in a text exposition.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeSet<(String, String)> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let got: BTreeSet<(String, String)> = label_text
                .split("\",")
                .filter(|p| !p.is_empty())
                .filter_map(|p| {
                    p.split_once("=\"")
                        .map(|(k, v)| (k.to_owned(), v.trim_end_matches('"').to_owned()))
                })
                .collect();
            (series_name == name && got == want)
                .then(|| value.parse().ok())
                .flatten()
        })
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> anyhow::Result<f64> {
    sample(text, name, labels).with_context(|| format!("/metrics has no {name}{labels:?}"))
}

#[test]
fn metrics_count_what_clients_did() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();
    let topic = "metered";
    create_topic(&bootstrap, topic, 1)?;

    // Each record travels in its own batch, whose size is known exactly: Kafka's BytesIn counts
    // the bytes of the record batches appended, as the producer sent them.
    let records = 25usize;
    let value = vec![b'v'; 100];
    produce_one_record_per_batch(&bootstrap, topic, 0, records, &value)?;
    let batch_len = one_record_batch_len(b"key-0000", &value)?;
    let bytes_appended = batch_len * u64::try_from(records)?;

    let text = scrape(&broker)?;
    let t = [("topic", topic)];
    let tp = [("topic", topic), ("partition", "0")];
    let bt = "kafka_server_brokertopicmetrics_";
    let n = records as f64;
    ensure!(
        metric(&text, &format!("{bt}messagesin_total"), &t)? == n,
        "MessagesIn must equal records produced"
    );
    ensure!(
        metric(&text, &format!("{bt}bytesin_total"), &t)? == bytes_appended as f64,
        "BytesIn must equal the {records} batches of {batch_len} bytes produced:\n{text}"
    );
    ensure!(
        metric(&text, &format!("{bt}totalproducerequests_total"), &t)? == n,
        "one Produce request per batch"
    );
    ensure!(
        metric(&text, &format!("{bt}failedproducerequests_total"), &t)? == 0.0,
        "no Produce failed"
    );
    ensure!(
        metric(&text, "kafka_log_log_size", &tp)? == bytes_appended as f64,
        "the log holds the batches as sent"
    );
    ensure!(
        metric(&text, "kafka_log_log_logendoffset", &tp)? == n,
        "log end offset = records produced"
    );
    ensure!(
        metric(&text, "kafka_log_log_logstartoffset", &tp)? == 0.0,
        "nothing deleted"
    );
    ensure!(
        metric(&text, "strom_requests_total", &[("api", "Produce")])? == n,
        "Produce requests by API"
    );
    ensure!(
        metric(&text, "strom_network_bytes_in_total", &[])? >= bytes_appended as f64,
        "network bytes include the batches"
    );
    ensure!(
        metric(&text, "strom_connections_total", &[])? >= 1.0,
        "connections were accepted"
    );
    ensure!(
        metric(
            &text,
            "kafka_controller_kafkacontroller_activecontrollercount",
            &[]
        )? == 1.0,
        "a single node is the active controller"
    );
    ensure!(
        metric(&text, "kafka_server_replicamanager_leadercount", &[])? >= 1.0,
        "the broker leads the partition"
    );
    ensure!(
        metric(&text, "kafka_cluster_partition_underreplicated", &tp)? == 0.0,
        "replication factor 1 is fully replicated"
    );
    for family in [
        "bytesin_total",
        "messagesin_total",
        "totalproducerequests_total",
    ] {
        let name = format!("{bt}{family}");
        let all = metric(&text, &name, &[("topic", "")])?;
        let per_topic: f64 = text
            .lines()
            .filter(|l| {
                l.starts_with(&format!("{name}{{topic=\""))
                    && !l.starts_with(&format!("{name}{{topic=\"\""))
            })
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum();
        ensure!(
            all == per_topic,
            "{name}: the all-topics series ({all}) must equal the sum of the topics ({per_topic})"
        );
    }

    // BytesOut counts the record batches returned to consumers; reading the partition once
    // returns every batch once.
    let committed = i64::try_from(records / 2)?;
    let commits = BTreeMap::from([(0, committed)]);
    let group = "metered-readers";
    consume(&bootstrap, topic, 1, records, group, &commits)?;
    let text = scrape(&broker)?;
    ensure!(
        metric(&text, &format!("{bt}bytesout_total"), &t)? == bytes_appended as f64,
        "BytesOut must equal the batches read once:\n{text}"
    );
    ensure!(
        metric(&text, &format!("{bt}totalfetchrequests_total"), &t)? >= 1.0,
        "Fetch requests are counted"
    );
    ensure!(
        metric(&text, "strom_requests_total", &[("api", "Fetch")])? >= 1.0,
        "Fetch requests by API"
    );

    // Lag is the high watermark (records produced) minus the committed offset.
    let labels = [
        ("consumergroup", group),
        ("topic", topic),
        ("partition", "0"),
    ];
    let text = wait_until("the committed offset on /metrics", TIMEOUT, || {
        let text = scrape(&broker).ok()?;
        sample(&text, "kafka_consumergroup_current_offset", &labels)
            .is_some()
            .then_some(text)
    })?;
    ensure!(
        metric(&text, "kafka_consumergroup_current_offset", &labels)? == committed as f64,
        "the committed offset is exported"
    );
    ensure!(
        metric(&text, "kafka_consumergroup_lag", &labels)? == (records as i64 - committed) as f64,
        "lag = high watermark - committed offset"
    );

    // Deleting the topic drops its series; the broker-wide totals keep what it contributed.
    let admin = kafka::admin(&bootstrap)?;
    for result in runtime()?.block_on(admin.delete_topics(&[topic], &AdminOptions::new()))? {
        result.map_err(|(name, code)| anyhow::anyhow!("deleting {name}: {code:?}"))?;
    }
    let marker = format!("topic=\"{topic}\"");
    let text = wait_until(
        "the deleted topic's series to leave /metrics",
        TIMEOUT,
        || scrape(&broker).ok().filter(|text| !text.contains(&marker)),
    )?;
    ensure!(
        metric(&text, &format!("{bt}bytesin_total"), &[("topic", "")])? >= bytes_appended as f64,
        "the all-topics BytesIn must not go down when a topic is deleted"
    );
    Ok(())
}

/// A query to evaluate and where it comes from.
struct Query {
    origin: String,
    expr: String,
    /// Dashboard queries must return data; alert expressions are empty while all is well.
    needs_data: bool,
    /// Labels every result series must carry (legend placeholders, a variable's label).
    labels: Vec<String>,
}

/// Labels that the scrape configuration's relabeling adds in Kubernetes and that are absent
/// here: the dashboards' `.*` "All" value must work without them, which this test shows.
const SCRAPE_LABELS: [&str; 2] = ["cluster", "namespace"];

/// Queries of the kind existing Kafka dashboards and alerts (Strimzi's JMX-exporter names,
/// kafka-exporter's lag names) run; they must work on Strom unchanged.
const KAFKA_DASHBOARD_QUERIES: [&str; 12] = [
    r#"sum(kafka_server_replicamanager_underreplicatedpartitions)"#,
    r#"sum(kafka_controller_kafkacontroller_activecontrollercount)"#,
    r#"sum(kafka_controller_kafkacontroller_offlinepartitionscount)"#,
    r#"sum(kafka_server_replicamanager_partitioncount)"#,
    r#"sum(kafka_server_replicamanager_leadercount)"#,
    r#"sum(irate(kafka_server_brokertopicmetrics_bytesin_total{topic!=""}[5m]))"#,
    r#"sum(irate(kafka_server_brokertopicmetrics_bytesout_total{topic!=""}[5m]))"#,
    r#"sum(irate(kafka_server_brokertopicmetrics_messagesin_total{topic!=""}[5m])) by (topic)"#,
    r#"sum(kafka_log_log_size) by (topic)"#,
    r#"sum(kafka_cluster_partition_underminisr)"#,
    r#"sum(kafka_cluster_partition_atminisr)"#,
    r#"sum(kafka_consumergroup_lag) by (consumergroup, topic)"#,
];

fn all_queries(prometheus: &PrometheusProcess) -> anyhow::Result<Vec<Query>> {
    let mut queries: Vec<Query> = KAFKA_DASHBOARD_QUERIES
        .iter()
        .map(|expr| Query {
            origin: "existing Kafka dashboards".to_owned(),
            expr: (*expr).to_owned(),
            needs_data: true,
            labels: Vec::new(),
        })
        .collect();
    for (file, dashboard) in dashboards()? {
        let variables = variable_names(&dashboard);
        for query in dashboard_queries(&file, &dashboard) {
            let expr = substitute_variables(&query.raw, &variables)
                .with_context(|| query.origin.clone())?;
            queries.push(Query {
                origin: query.origin,
                expr,
                needs_data: true,
                labels: query.labels,
            });
        }
    }
    for rule in loaded_rules(prometheus)? {
        let name = rule["name"].as_str().unwrap_or("?");
        let expr = rule["query"].as_str().unwrap_or_default().to_owned();
        queries.push(Query {
            origin: format!("rule {name}"),
            expr,
            needs_data: false,
            labels: Vec::new(),
        });
    }
    Ok(queries)
}

fn loaded_rules(prometheus: &PrometheusProcess) -> anyhow::Result<Vec<Value>> {
    let data = prometheus.api("/api/v1/rules")?;
    Ok(data["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .collect())
}

#[test]
fn dashboards_and_rules_work_against_a_real_prometheus() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();

    let rule_list: String = rule_files()?
        .iter()
        .map(|p| format!("  - {}\n", p.display()))
        .collect();
    // The job name follows the convention the dashboards and StromBrokerDown select on.
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n{rule_list}\
         scrape_configs:\n  - job_name: strom-broker\n    static_configs:\n      - targets: [\"{}\"]\n",
        broker.admin_addr()
    );
    let prometheus = PrometheusProcess::start(&config)?;

    let topic = "traffic";
    let partitions = 3;
    let records = 300;
    create_topic(&bootstrap, topic, partitions)?;
    produce_batched(&bootstrap, topic, records)?;
    let commits: BTreeMap<i32, i64> = (0..partitions).map(|p| (p, 1)).collect();
    consume(
        &bootstrap,
        topic,
        partitions,
        records,
        "traffic-readers",
        &commits,
    )?;

    // Wait until Prometheus holds the traffic and the commits, with enough samples for rate()
    // over 1m.
    let messages_in =
        format!("kafka_server_brokertopicmetrics_messagesin_total{{topic=\"{topic}\"}}");
    wait_until(
        "Prometheus to scrape the traffic",
        Duration::from_secs(60),
        || {
            let total = prometheus.query_value(&messages_in).ok()??;
            let samples = prometheus
                .query_value(&format!("count_over_time({messages_in}[1m])"))
                .ok()??;
            let bytes_out = prometheus
                .query_value(&format!(
                    "kafka_server_brokertopicmetrics_bytesout_total{{topic=\"{topic}\"}}"
                ))
                .ok()??;
            // The group's offsets appear last: rate() over them needs two samples too.
            let commit_samples = prometheus
                .query_value(
                    "min(count_over_time(kafka_consumergroup_current_offset\
                     {consumergroup=\"traffic-readers\"}[1m]))",
                )
                .ok()??;
            (total == records as f64 && samples >= 3.0 && bytes_out > 0.0 && commit_samples >= 3.0)
                .then_some(())
        },
    )?;

    // Let every rule evaluate at least twice over the scraped data.
    let snapshot: BTreeMap<String, String> = loaded_rules(&prometheus)?
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("?").to_owned(),
                r["lastEvaluation"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    ensure!(!snapshot.is_empty(), "Prometheus loaded no rules");
    let rules = wait_until(
        "every rule to evaluate again",
        Duration::from_secs(30),
        || {
            let rules = loaded_rules(&prometheus).ok()?;
            let fresh = rules.iter().all(|r| {
                let name = r["name"].as_str().unwrap_or("?");
                snapshot
                    .get(name)
                    .is_none_or(|before| r["lastEvaluation"].as_str() != Some(before))
            });
            fresh.then_some(rules)
        },
    )?;

    let stored = prometheus.metric_names()?;
    let mut problems = Vec::new();

    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        if rule["health"] != "ok" {
            problems.push(format!(
                "rule {name}: health {} ({})",
                rule["health"], rule["lastError"]
            ));
        }
        if rule["state"] != "inactive" {
            problems.push(format!(
                "rule {name} is {} on a healthy broker: {}",
                rule["state"], rule["alerts"]
            ));
        }
    }

    let queries = all_queries(&prometheus)?;
    let mut excused_queries = 0;
    for query in &queries {
        let origin = &query.origin;
        let result = match prometheus.query(&query.expr) {
            Ok(result) => result,
            Err(e) => {
                problems.push(format!("{origin}: {e:#}\n    {}", query.expr));
                continue;
            }
        };
        let mut excused = Vec::new();
        for name in metric_names(&query.expr) {
            match absent_reason(&name) {
                Some(reason) => excused.push(format!("{name}: {reason}")),
                None if !stored.contains(&name) => {
                    problems.push(format!(
                        "{origin}: metric {name} has no series in Prometheus"
                    ));
                }
                None => {}
            }
        }
        if query.needs_data && result.is_empty() && excused.is_empty() {
            problems.push(format!("{origin}: no data\n    {}", query.expr));
        }
        for label in query
            .labels
            .iter()
            .filter(|l| !SCRAPE_LABELS.contains(&l.as_str()))
        {
            if let Some(series) = result
                .iter()
                .find(|r| r["metric"].get(label.as_str()).is_none())
            {
                problems.push(format!(
                    "{origin}: series {} has no label {label} that the legend or variable shows",
                    series["metric"]
                ));
            }
        }
        excused_queries += usize::from(!excused.is_empty());
    }
    eprintln!(
        "evaluated {} queries ({} from dashboards, {} rules); {excused_queries} read metrics this \
         test cannot produce",
        queries.len(),
        queries.iter().filter(|q| q.needs_data).count(),
        queries.iter().filter(|q| !q.needs_data).count(),
    );

    for (name, reason) in ABSENT_METRICS {
        if stored.contains(name) {
            problems.push(format!(
                "{name} now has data; remove it from ABSENT_METRICS (\"{reason}\")"
            ));
        }
    }

    // The all-topics series (topic="") is stored without a topic label, as the JMX exporter's
    // is, and equals the sum of the per-topic series.
    let aggregate =
        prometheus.query("kafka_server_brokertopicmetrics_bytesin_total{topic=\"\"}")?;
    match aggregate.as_slice() {
        [one] if one["metric"].get("topic").is_none() => {}
        other => problems.push(format!(
            "all-topics BytesIn should be one series without a topic label: {other:?}"
        )),
    }
    let all = prometheus
        .query_value("sum(kafka_server_brokertopicmetrics_messagesin_total{topic=\"\"})")?;
    let per_topic = prometheus
        .query_value("sum(kafka_server_brokertopicmetrics_messagesin_total{topic!=\"\"})")?;
    if all != per_topic || all.is_none() {
        problems.push(format!(
            "all-topics MessagesIn {all:?} differs from the sum of the topics {per_topic:?}"
        ));
    }
    let up = prometheus.query_value("up{job=~\".*strom.*\"}")?;
    if up != Some(1.0) {
        problems.push(format!(
            "up{{job=~\".*strom.*\"}} is {up:?}, the broker target must be up"
        ));
    }

    if !problems.is_empty() {
        bail!("{} problems:\n{}", problems.len(), problems.join("\n"));
    }
    Ok(())
}
