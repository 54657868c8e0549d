//! Prometheus metrics of a broker, served as text on the admin endpoint's `GET /metrics`.
//!
//! # Names
//!
//! Kafka operators already have dashboards and alerts built on the names that the Prometheus
//! JMX exporter gives Kafka's MBeans under Strimzi's `kafka-metrics.yaml` rules
//! (`kafka.server<type=BrokerTopicMetrics, name=BytesInPerSec, topic=t>` becomes
//! `kafka_server_brokertopicmetrics_bytesin_total{topic="t"}`), and for consumer lag on the names
//! of kafka-exporter (`kafka_consumergroup_lag{consumergroup,topic,partition}`). Strom exposes the
//! same names so those dashboards and rules work unchanged. What has no Kafka counterpart
//! (per-API latency histograms, network bytes, connections, build info) is prefixed `strom_`.
//!
//! # The all-topics series of `BrokerTopicMetrics`
//!
//! Kafka keeps one MBean per topic plus one without a `topic` key for the whole broker; the JMX
//! exporter puts both in one family, the aggregate without a `topic` label. Dashboards select
//! the per-topic series with `topic!=""` and the aggregate with `topic=""` (or by the label's
//! absence), and never sum both. A family here has fixed label names, so the aggregate is the
//! series with `topic=""`. Prometheus treats an empty label value exactly as an absent label
//! (matchers, `by`/`without` grouping and the stored series alike), so once scraped these
//! series are the same as the JMX exporter's and both kinds of query work:
//! `sum(rate(kafka_server_brokertopicmetrics_bytesin_total{topic!=""}[5m]))` and
//! `sum(rate(kafka_server_brokertopicmetrics_bytesin_total{topic=""}[5m]))` give the same rate.
//!
//! # Hot path
//!
//! Nothing on the request path looks a label up in a map:
//! - [`BrokerMetrics::topic`] returns a [`TopicMetrics`] that holds the resolved counters of one
//!   topic and of the aggregate; the caller caches it per topic (cloning is a few `Arc` clones).
//! - [`BrokerMetrics::partition`] returns a [`PartitionGauges`] the caller caches per
//!   `TopicPartition`.
//! - [`BrokerMetrics::api`] indexes an array by api key; each API's series are created on first
//!   use so the exposition lists only APIs that were called.
//!
//! Label sets are bounded by topics, partitions, consumer groups and APIs; nothing is labelled
//! by connection or client id. No constant `node_id`/`instance` label is added: Prometheus
//! attaches the target's labels at scrape time, and [`strom_build_info`](BrokerMetrics::new)
//! carries the node id for joins.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use prometheus::core::Collector;
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

mod api_names;
mod cleaner;
mod handles;
mod transactions;

use api_names::API_NAMES;
pub use api_names::{UNKNOWN_API, api_name};
use handles::TopicCounters;
pub use handles::{ApiMetrics, IsrState, PartitionGauges, TopicMetrics};

/// Advances a counter to a running total kept elsewhere (which only grows).
fn catch_up(counter: &IntCounter, total: u64) {
    let current = counter.get();
    if total > current {
        counter.inc_by(total - current);
    }
}

/// Content type of [`BrokerMetrics::encode`]'s output, for the HTTP response.
pub const CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

/// Request latency buckets in seconds: from an in-memory Metadata answer (≈100 µs) to a Fetch
/// long poll (`fetch.max.wait.ms`, 500 ms by default) and an `acks=all` produce waiting out a
/// slow follower.
const REQUEST_DURATION_BUCKETS: [f64; 17] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Every metric of one broker, registered in its own [`Registry`].
#[derive(Debug)]
pub struct BrokerMetrics {
    registry: Registry,
    topic_families: TopicFamilies,
    all_topics: TopicCounters,
    partition_families: PartitionFamilies,
    api_families: ApiFamilies,
    apis: [OnceLock<ApiMetrics>; API_NAMES.len() + 1],
    connections_active: IntGauge,
    connections_total: IntCounter,
    connections_closed_by_broker: IntCounterVec,
    request_memory_used: IntGauge,
    network_bytes_in: IntCounter,
    network_bytes_out: IntCounter,
    partition_count: IntGauge,
    leader_count: IntGauge,
    under_replicated_partitions: IntGauge,
    under_min_isr_partition_count: IntGauge,
    isr_shrinks: IntCounter,
    isr_expands: IntCounter,
    replication_bytes_in: IntCounter,
    replication_bytes_out: IntCounter,
    replica_max_lag: IntGauge,
    leader_replication_byte_rate: IntGauge,
    follower_replication_byte_rate: IntGauge,
    reassigning_partitions: IntGauge,
    unclean_leader_elections: IntCounter,
    active_controller_count: IntGauge,
    metadata_error_count: IntGauge,
    cleaner: cleaner::CleanerMetrics,
    transactions: transactions::TransactionMetrics,
    offline_partitions_count: IntGauge,
    metadata_applied_offset: IntGauge,
    metadata_image_checksum: IntGauge,
    consumer_group_current_offset: IntGaugeVec,
    consumer_group_lag: IntGaugeVec,
    /// Which labelled series exist, so that removing a topic or a group can drop all of its
    /// series (a `MetricVec` can only remove by the full label set). Touched only when a series
    /// is created or removed, never on the request path.
    series: Mutex<SeriesIndex>,
}

#[derive(Debug, Default)]
struct SeriesIndex {
    /// Partitions with [`PartitionGauges`], by topic.
    partitions: BTreeMap<String, BTreeSet<i32>>,
    /// `TopicPartition`s with consumer group offsets, by group.
    group_offsets: BTreeMap<String, BTreeSet<(String, i32)>>,
}

#[derive(Debug)]
struct TopicFamilies {
    bytes_in: IntCounterVec,
    bytes_out: IntCounterVec,
    messages_in: IntCounterVec,
    produce_requests: IntCounterVec,
    fetch_requests: IntCounterVec,
    failed_produce_requests: IntCounterVec,
    failed_fetch_requests: IntCounterVec,
}

impl TopicFamilies {
    fn all(&self) -> [&IntCounterVec; 7] {
        [
            &self.bytes_in,
            &self.bytes_out,
            &self.messages_in,
            &self.produce_requests,
            &self.fetch_requests,
            &self.failed_produce_requests,
            &self.failed_fetch_requests,
        ]
    }

    fn counters(&self, topic: &str) -> TopicCounters {
        let labels = [topic];
        TopicCounters {
            bytes_in: self.bytes_in.with_label_values(&labels),
            bytes_out: self.bytes_out.with_label_values(&labels),
            messages_in: self.messages_in.with_label_values(&labels),
            produce_requests: self.produce_requests.with_label_values(&labels),
            fetch_requests: self.fetch_requests.with_label_values(&labels),
            failed_produce_requests: self.failed_produce_requests.with_label_values(&labels),
            failed_fetch_requests: self.failed_fetch_requests.with_label_values(&labels),
        }
    }
}

#[derive(Debug)]
struct PartitionFamilies {
    log_size: IntGaugeVec,
    log_end_offset: IntGaugeVec,
    log_start_offset: IntGaugeVec,
    last_stable_offset_lag: IntGaugeVec,
    under_replicated: IntGaugeVec,
    under_min_isr: IntGaugeVec,
    at_min_isr: IntGaugeVec,
}

impl PartitionFamilies {
    fn all(&self) -> [&IntGaugeVec; 7] {
        [
            &self.log_size,
            &self.log_end_offset,
            &self.log_start_offset,
            &self.last_stable_offset_lag,
            &self.under_replicated,
            &self.under_min_isr,
            &self.at_min_isr,
        ]
    }
}

#[derive(Debug)]
struct ApiFamilies {
    duration: HistogramVec,
    requests: IntCounterVec,
    errors: IntCounterVec,
}

fn lock(series: &Mutex<SeriesIndex>) -> MutexGuard<'_, SeriesIndex> {
    // The index is only ever left consistent between statements, so a panic elsewhere while
    // holding the lock cannot have broken it.
    series.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registers `collector` and returns it. Registration fails only for an invalid or duplicate
/// name, which is a defect of the static definitions below (covered by the unit tests), never
/// a runtime condition.
fn registered<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    let described = collector.desc().first().map(|d| d.fq_name.clone());
    if let Err(e) = registry.register(Box::new(collector.clone())) {
        panic!("metric definition {described:?} is invalid: {e}");
    }
    collector
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    match IntCounter::new(name, help) {
        Ok(c) => registered(registry, c),
        Err(e) => panic!("metric definition {name} is invalid: {e}"),
    }
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    match IntGauge::new(name, help) {
        Ok(g) => registered(registry, g),
        Err(e) => panic!("metric definition {name} is invalid: {e}"),
    }
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    match IntCounterVec::new(Opts::new(name, help), labels) {
        Ok(c) => registered(registry, c),
        Err(e) => panic!("metric definition {name} is invalid: {e}"),
    }
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    match IntGaugeVec::new(Opts::new(name, help), labels) {
        Ok(g) => registered(registry, g),
        Err(e) => panic!("metric definition {name} is invalid: {e}"),
    }
}

/// Label of the all-topics `BrokerTopicMetrics` series (see the module doc).
const ALL_TOPICS: &str = "";

impl BrokerMetrics {
    /// Registers every family and sets `strom_build_info{version,cluster_id,node_id} 1`.
    pub fn new(node_id: i32, version: &str, cluster_id: &str) -> BrokerMetrics {
        let registry = Registry::new();
        let r = &registry;

        let build_info = gauge_vec(
            r,
            "strom_build_info",
            "Always 1; labels carry the broker's version, cluster id and node id.",
            &["version", "cluster_id", "node_id"],
        );
        build_info
            .with_label_values(&[version, cluster_id, &node_id.to_string()])
            .set(1);

        let topic_label = &["topic"];
        let topic_families = TopicFamilies {
            bytes_in: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_bytesin_total",
                "Bytes of record batches appended by producers; topic=\"\" is all topics.",
                topic_label,
            ),
            bytes_out: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_bytesout_total",
                "Bytes of record batches sent to consumers by Fetch; topic=\"\" is all topics.",
                topic_label,
            ),
            messages_in: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_messagesin_total",
                "Records appended by producers; topic=\"\" is all topics.",
                topic_label,
            ),
            produce_requests: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_totalproducerequests_total",
                "Produce requests per topic they touched; topic=\"\" is all topics.",
                topic_label,
            ),
            fetch_requests: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_totalfetchrequests_total",
                "Consumer Fetch requests per topic they touched; topic=\"\" is all topics.",
                topic_label,
            ),
            failed_produce_requests: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_failedproducerequests_total",
                "Produce requests that failed for a topic; topic=\"\" is all topics.",
                topic_label,
            ),
            failed_fetch_requests: counter_vec(
                r,
                "kafka_server_brokertopicmetrics_failedfetchrequests_total",
                "Fetch requests that failed for a topic; topic=\"\" is all topics.",
                topic_label,
            ),
        };
        let all_topics = topic_families.counters(ALL_TOPICS);

        let tp = &["topic", "partition"];
        let partition_families = PartitionFamilies {
            log_size: gauge_vec(
                r,
                "kafka_log_log_size",
                "Bytes of the partition replica's log segments on this broker.",
                tp,
            ),
            log_end_offset: gauge_vec(
                r,
                "kafka_log_log_logendoffset",
                "Log end offset of the partition replica on this broker.",
                tp,
            ),
            log_start_offset: gauge_vec(
                r,
                "kafka_log_log_logstartoffset",
                "Log start offset of the partition replica on this broker.",
                tp,
            ),
            last_stable_offset_lag: gauge_vec(
                r,
                "kafka_server_replicamanager_last_stable_offset_lag",
                "High watermark minus last stable offset of the partition this broker leads: offsets read_committed consumers cannot read yet because a transaction is open.",
                tp,
            ),
            under_replicated: gauge_vec(
                r,
                "kafka_cluster_partition_underreplicated",
                "1 when this broker leads the partition and its ISR is smaller than its replicas.",
                tp,
            ),
            under_min_isr: gauge_vec(
                r,
                "kafka_cluster_partition_underminisr",
                "1 when this broker leads the partition and its ISR is below min.insync.replicas.",
                tp,
            ),
            at_min_isr: gauge_vec(
                r,
                "kafka_cluster_partition_atminisr",
                "1 when this broker leads the partition and its ISR equals min.insync.replicas.",
                tp,
            ),
        };

        let api_label = ["api"];
        let duration = match HistogramVec::new(
            HistogramOpts::new(
                "strom_request_duration_seconds",
                "Time from reading a request to queueing its response, by Kafka API.",
            )
            .buckets(REQUEST_DURATION_BUCKETS.to_vec()),
            &api_label,
        ) {
            Ok(h) => registered(r, h),
            Err(e) => panic!("metric definition strom_request_duration_seconds is invalid: {e}"),
        };
        let api_families = ApiFamilies {
            duration,
            requests: counter_vec(
                r,
                "strom_requests_total",
                "Requests answered, by Kafka API.",
                &api_label,
            ),
            errors: counter_vec(
                r,
                "strom_request_errors_total",
                "Requests answered with an error code, by Kafka API.",
                &api_label,
            ),
        };

        let group_labels = &["consumergroup", "topic", "partition"];
        BrokerMetrics {
            topic_families,
            all_topics,
            partition_families,
            api_families,
            apis: std::array::from_fn(|_| OnceLock::new()),
            connections_active: gauge(
                r,
                "strom_connections_active",
                "Client and inter-broker connections open now.",
            ),
            connections_total: counter(
                r,
                "strom_connections_total",
                "Connections accepted since the broker started.",
            ),
            connections_closed_by_broker: counter_vec(
                r,
                "strom_connections_closed_by_broker_total",
                "Connections the broker closed by reason: idle (connections.max.idle.ms), \
                 request_read_timeout (socket.request.read.timeout.ms), per_ip_limit \
                 (max.connections.per.ip).",
                &["reason"],
            ),
            request_memory_used: gauge(
                r,
                "strom_request_memory_used_bytes",
                "Request bytes read and not yet answered, across connections; reading stops \
                 while it is at queued.max.request.bytes.",
            ),
            network_bytes_in: counter(
                r,
                "strom_network_bytes_in_total",
                "Bytes read from Kafka protocol connections (request frames).",
            ),
            network_bytes_out: counter(
                r,
                "strom_network_bytes_out_total",
                "Bytes written to Kafka protocol connections (response frames).",
            ),
            partition_count: gauge(
                r,
                "kafka_server_replicamanager_partitioncount",
                "Partition replicas hosted by this broker.",
            ),
            leader_count: gauge(
                r,
                "kafka_server_replicamanager_leadercount",
                "Partitions this broker leads.",
            ),
            under_replicated_partitions: gauge(
                r,
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions this broker leads whose ISR is smaller than their replicas.",
            ),
            under_min_isr_partition_count: gauge(
                r,
                "kafka_server_replicamanager_underminisrpartitioncount",
                "Partitions this broker leads whose ISR is below min.insync.replicas.",
            ),
            isr_shrinks: counter(
                r,
                "kafka_server_replicamanager_isrshrinks_total",
                "Times this broker, as leader, removed a replica from an ISR.",
            ),
            isr_expands: counter(
                r,
                "kafka_server_replicamanager_isrexpands_total",
                "Times this broker, as leader, added a caught-up replica back to an ISR.",
            ),
            replication_bytes_in: counter(
                r,
                "kafka_server_brokertopicmetrics_replicationbytesin_total",
                "Bytes this broker, as follower, appended from its leaders' logs.",
            ),
            replication_bytes_out: counter(
                r,
                "kafka_server_brokertopicmetrics_replicationbytesout_total",
                "Bytes this broker, as leader, sent to its followers' fetches.",
            ),
            replica_max_lag: gauge(
                r,
                "kafka_server_replicafetchermanager_maxlag",
                "Largest lag, in offsets, of a partition this broker follows behind its leader's high watermark.",
            ),
            leader_replication_byte_rate: gauge(
                r,
                "kafka_server_leaderreplication_byte_rate",
                "Bytes per second this broker, as leader, sends of replicas listed in \
                 leader.replication.throttled.replicas (the rate the leader throttle bounds).",
            ),
            follower_replication_byte_rate: gauge(
                r,
                "kafka_server_followerreplication_byte_rate",
                "Bytes per second this broker, as follower, fetches of replicas listed in \
                 follower.replication.throttled.replicas (the rate the follower throttle bounds).",
            ),
            reassigning_partitions: gauge(
                r,
                "kafka_server_replicamanager_reassigningpartitions",
                "Partitions this broker leads that are being reassigned.",
            ),
            unclean_leader_elections: counter(
                r,
                "kafka_controller_controllerstats_uncleanleaderelections_total",
                "Unclean leader elections this node committed as the active controller.",
            ),
            active_controller_count: gauge(
                r,
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 on the broker that is the active controller, else 0; sums to 1 in a healthy cluster.",
            ),
            metadata_error_count: gauge(
                r,
                "kafka_controller_kafkacontroller_metadataerrorcount",
                "Faults of this node's metadata log (KIP-859): 1 once a write or fsync of it \
                 failed, after which the node stops serving as controller and exits.",
            ),
            cleaner: cleaner::CleanerMetrics::new(r),
            transactions: transactions::TransactionMetrics::new(r),
            offline_partitions_count: gauge(
                r,
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a live leader, reported by the active controller.",
            ),
            metadata_applied_offset: gauge(
                r,
                "strom_metadata_applied_offset",
                "Offset of the last metadata log entry this broker applied to its image.",
            ),
            metadata_image_checksum: gauge(
                r,
                "strom_metadata_image_checksum",
                "CRC32C of this broker's metadata image; equal on brokers at the same offset.",
            ),
            consumer_group_current_offset: gauge_vec(
                r,
                "kafka_consumergroup_current_offset",
                "Offset committed by the consumer group, reported by its coordinator.",
                group_labels,
            ),
            consumer_group_lag: gauge_vec(
                r,
                "kafka_consumergroup_lag",
                "High watermark minus the group's committed offset, reported by its coordinator.",
                group_labels,
            ),
            series: Mutex::new(SeriesIndex::default()),
            registry,
        }
    }

    /// The text exposition (format 0.0.4) of every family that has a series, for `GET /metrics`
    /// with content type [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let encoder = TextEncoder::new();
        let mut out = String::new();
        for family in self.registry.gather() {
            // Encoding into a String fails only for a family without series or name, which
            // `gather` never returns; skipping such a family keeps the rest of the page.
            let mut one = String::new();
            if encoder
                .encode_utf8(std::slice::from_ref(&family), &mut one)
                .is_ok()
            {
                out.push_str(&one);
            }
        }
        out
    }

    /// The resolved counters of `topic` (creating its series at 0). Cache the result per topic.
    pub fn topic(&self, topic: &str) -> TopicMetrics {
        TopicMetrics {
            topic: self.topic_families.counters(topic),
            all: self.all_topics.clone(),
        }
    }

    /// Drops every series labelled with `topic`: its `BrokerTopicMetrics`, its partitions' gauges
    /// and consumer group offsets on it. Call it when the topic is deleted so a re-created topic
    /// starts from fresh series; the all-topics totals keep what the topic contributed, since
    /// counters never go down.
    pub fn remove_topic(&self, topic: &str) {
        for family in self.topic_families.all() {
            // NotFound only means the topic never had this series.
            let _ = family.remove_label_values(&[topic]);
        }
        let mut series = lock(&self.series);
        if let Some(partitions) = series.partitions.remove(topic) {
            for partition in partitions {
                self.remove_partition_series(topic, partition);
            }
        }
        for (group, offsets) in series.group_offsets.iter_mut() {
            offsets.retain(|(t, partition)| {
                let keep = t != topic;
                if !keep {
                    self.remove_group_series(group, t, *partition);
                }
                keep
            });
        }
        series
            .group_offsets
            .retain(|_, offsets| !offsets.is_empty());
    }

    /// The resolved series of the API with `api_key`, created on first use. Keys Kafka has not
    /// assigned share the `api="Unknown"` series.
    pub fn api(&self, api_key: i16) -> ApiMetrics {
        let index = usize::try_from(api_key)
            .ok()
            .filter(|&i| i < API_NAMES.len())
            .unwrap_or(API_NAMES.len());
        self.apis[index]
            .get_or_init(|| {
                let labels = [api_name(api_key)];
                ApiMetrics {
                    duration: self.api_families.duration.with_label_values(&labels),
                    requests: self.api_families.requests.with_label_values(&labels),
                    errors: self.api_families.errors.with_label_values(&labels),
                }
            })
            .clone()
    }

    /// A Kafka protocol connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_active.inc();
        self.connections_total.inc();
    }

    /// A connection counted by [`BrokerMetrics::connection_opened`] was closed.
    pub fn connection_closed(&self) {
        self.connections_active.dec();
    }

    /// The broker closed a connection for `reason` (a fixed word: `idle`,
    /// `request_read_timeout`, `per_ip_limit`).
    pub fn connection_closed_by_broker(&self, reason: &str) {
        self.connections_closed_by_broker
            .with_label_values(&[reason])
            .inc();
    }

    /// The gauge of request memory in use, for the listener's pool.
    pub fn request_memory_gauge(&self) -> IntGauge {
        self.request_memory_used.clone()
    }

    /// `n` bytes were read from a Kafka protocol connection.
    pub fn network_bytes_in(&self, n: u64) {
        self.network_bytes_in.inc_by(n);
    }

    /// `n` bytes were written to a Kafka protocol connection.
    pub fn network_bytes_out(&self, n: u64) {
        self.network_bytes_out.inc_by(n);
    }

    /// The resolved gauges of this broker's replica of `topic`-`partition` (creating them at 0).
    /// Cache the result per `TopicPartition`.
    pub fn partition(&self, topic: &str, partition: i32) -> PartitionGauges {
        lock(&self.series)
            .partitions
            .entry(topic.to_owned())
            .or_default()
            .insert(partition);
        let p = partition.to_string();
        let labels = [topic, p.as_str()];
        let f = &self.partition_families;
        PartitionGauges {
            log_size: f.log_size.with_label_values(&labels),
            log_end_offset: f.log_end_offset.with_label_values(&labels),
            log_start_offset: f.log_start_offset.with_label_values(&labels),
            last_stable_offset_lag: f.last_stable_offset_lag.with_label_values(&labels),
            under_replicated: f.under_replicated.with_label_values(&labels),
            under_min_isr: f.under_min_isr.with_label_values(&labels),
            at_min_isr: f.at_min_isr.with_label_values(&labels),
        }
    }

    /// Drops the gauges of `topic`-`partition`, when its replica leaves this broker.
    pub fn remove_partition(&self, topic: &str, partition: i32) {
        let mut series = lock(&self.series);
        if let Some(partitions) = series.partitions.get_mut(topic) {
            partitions.remove(&partition);
            if partitions.is_empty() {
                series.partitions.remove(topic);
            }
        }
        self.remove_partition_series(topic, partition);
    }

    fn remove_partition_series(&self, topic: &str, partition: i32) {
        let p = partition.to_string();
        for family in self.partition_families.all() {
            let _ = family.remove_label_values(&[topic, p.as_str()]);
        }
    }

    /// The broker-wide `ReplicaManager` gauges, recomputed by the caller whenever leadership or
    /// an ISR changes.
    pub fn set_replica_manager(
        &self,
        partition_count: i64,
        leader_count: i64,
        under_replicated: i64,
        under_min_isr: i64,
    ) {
        self.partition_count.set(partition_count);
        self.leader_count.set(leader_count);
        self.under_replicated_partitions.set(under_replicated);
        self.under_min_isr_partition_count.set(under_min_isr);
    }

    /// The metadata image this broker serves: its offset and a checksum of its content.
    pub fn set_metadata_image(&self, offset: u64, checksum: u32) {
        self.metadata_applied_offset
            .set(i64::try_from(offset).unwrap_or(i64::MAX));
        self.metadata_image_checksum.set(i64::from(checksum));
    }

    /// The transaction coordinator's gauges and totals, from its counts.
    pub fn set_transactions(&self, stats: &strom_txn::TxnStats, now_ms: i64) {
        self.transactions.set(stats, now_ms);
    }

    /// The log cleaner's gauges and totals, from its running statistics.
    pub fn set_cleaner(&self, stats: &strom_storage::cleaner::CleanerStats, now_ms: i64) {
        self.cleaner.set(stats, now_ms);
    }

    /// How many faults this node's metadata log has met (0, or 1 once it failed).
    pub fn set_metadata_errors(&self, count: i64) {
        self.metadata_error_count.set(count);
    }

    /// Whether this node is the active controller, and (when it is) how many partitions have no
    /// live leader. A node that is not the active controller reports 0 offline partitions so that
    /// sums over brokers count each once.
    pub fn set_controller(&self, active: bool, offline_partitions: i64) {
        self.active_controller_count.set(i64::from(active));
        self.offline_partitions_count
            .set(if active { offline_partitions } else { 0 });
    }

    /// This broker, as leader, removed a replica from an ISR.
    pub fn isr_shrink(&self) {
        self.isr_shrinks.inc();
    }

    /// This broker, as leader, added a replica back to an ISR.
    pub fn isr_expand(&self) {
        self.isr_expands.inc();
    }

    /// Partitions led here under reassignment, and the unclean elections this node committed
    /// as controller (a running total).
    pub fn set_reassignments(&self, reassigning: i64, unclean_elections_total: u64) {
        self.reassigning_partitions.set(reassigning);
        let seen = self.unclean_leader_elections.get();
        if unclean_elections_total > seen {
            self.unclean_leader_elections
                .inc_by(unclean_elections_total - seen);
        }
    }

    /// Bytes sent to followers' fetches.
    pub fn replication_bytes_out(&self, bytes: u64) {
        self.replication_bytes_out.inc_by(bytes);
    }

    /// The fetchers' running total of bytes appended from leaders, and the largest lag of a
    /// followed partition.
    pub fn set_replica_fetchers(&self, bytes_in_total: u64, max_lag: i64) {
        let seen = self.replication_bytes_in.get();
        if bytes_in_total > seen {
            self.replication_bytes_in.inc_by(bytes_in_total - seen);
        }
        self.replica_max_lag.set(max_lag);
    }

    /// The measured rates of throttled replication (KIP-73), bytes per second.
    pub fn set_replication_quota_rates(&self, leader: f64, follower: f64) {
        self.leader_replication_byte_rate.set(leader.round() as i64);
        self.follower_replication_byte_rate
            .set(follower.round() as i64);
    }

    /// The committed offset of `group` on `topic`-`partition` and its lag (high watermark minus
    /// committed offset, never negative), on the group's coordinator. Refresh it when the group
    /// commits and before each scrape, since the lag grows as producers append.
    pub fn set_consumer_group_offsets(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        committed: i64,
        lag: i64,
    ) {
        {
            let mut series = lock(&self.series);
            series
                .group_offsets
                .entry(group.to_owned())
                .or_default()
                .insert((topic.to_owned(), partition));
        }
        let p = partition.to_string();
        let labels = [group, topic, p.as_str()];
        self.consumer_group_current_offset
            .with_label_values(&labels)
            .set(committed);
        self.consumer_group_lag
            .with_label_values(&labels)
            .set(lag.max(0));
    }

    /// Drops every series of `group`: when it is deleted, its offsets expire, or its
    /// coordinator moves to another broker.
    pub fn remove_consumer_group(&self, group: &str) {
        let removed = lock(&self.series).group_offsets.remove(group);
        for (topic, partition) in removed.into_iter().flatten() {
            self.remove_group_series(group, &topic, partition);
        }
    }

    fn remove_group_series(&self, group: &str, topic: &str, partition: i32) {
        let p = partition.to_string();
        let labels = [group, topic, p.as_str()];
        let _ = self
            .consumer_group_current_offset
            .remove_label_values(&labels);
        let _ = self.consumer_group_lag.remove_label_values(&labels);
    }
}

#[cfg(test)]
mod tests;
