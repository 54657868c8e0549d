//! The resolved handles callers cache on the request path: each holds the series it moves, so
//! an update is an atomic add with no label lookup.

use prometheus::{Histogram, IntCounter, IntGauge};

/// The counters of one topic (or of the all-topics aggregate).
#[derive(Debug, Clone)]
pub(super) struct TopicCounters {
    pub(super) bytes_in: IntCounter,
    pub(super) bytes_out: IntCounter,
    pub(super) messages_in: IntCounter,
    pub(super) produce_requests: IntCounter,
    pub(super) fetch_requests: IntCounter,
    pub(super) failed_produce_requests: IntCounter,
    pub(super) failed_fetch_requests: IntCounter,
}

/// Resolved `BrokerTopicMetrics` counters of one topic; every update also moves the
/// all-topics series. Cache one per topic and drop it when
/// [`BrokerMetrics::remove_topic`](super::BrokerMetrics::remove_topic) is called: updates
/// through a handle of a removed topic are no longer exported.
#[derive(Debug, Clone)]
pub struct TopicMetrics {
    pub(super) topic: TopicCounters,
    pub(super) all: TopicCounters,
}

impl TopicMetrics {
    /// Bytes of record batches appended by producers (the batch as sent, header included;
    /// replication traffic is not counted, as in Kafka's `BytesInPerSec`).
    pub fn bytes_in(&self, n: u64) {
        self.topic.bytes_in.inc_by(n);
        self.all.bytes_in.inc_by(n);
    }

    /// Records appended by producers (the sum of the appended batches' record counts).
    pub fn messages_in(&self, n: u64) {
        self.topic.messages_in.inc_by(n);
        self.all.messages_in.inc_by(n);
    }

    /// Bytes of record batches returned to consumers by Fetch (not to followers).
    pub fn bytes_out(&self, n: u64) {
        self.topic.bytes_out.inc_by(n);
        self.all.bytes_out.inc_by(n);
    }

    /// One Produce request touched this topic (counted once per topic per request, as Kafka).
    pub fn produce_request(&self) {
        self.topic.produce_requests.inc();
        self.all.produce_requests.inc();
    }

    /// One Fetch request touched this topic.
    pub fn fetch_request(&self) {
        self.topic.fetch_requests.inc();
        self.all.fetch_requests.inc();
    }

    /// A Produce to this topic failed (any partition answered with an error code).
    pub fn failed_produce(&self) {
        self.topic.failed_produce_requests.inc();
        self.all.failed_produce_requests.inc();
    }

    /// A Fetch from this topic failed.
    pub fn failed_fetch(&self) {
        self.topic.failed_fetch_requests.inc();
        self.all.failed_fetch_requests.inc();
    }
}

/// Resolved series of one Kafka API: `strom_requests_total`, `strom_request_errors_total` and
/// the `strom_request_duration_seconds` histogram.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    pub(super) duration: Histogram,
    pub(super) requests: IntCounter,
    pub(super) errors: IntCounter,
}

impl ApiMetrics {
    /// One request was answered after `seconds` (from its frame being read to its response
    /// being queued for writing).
    pub fn observe(&self, seconds: f64) {
        self.duration.observe(seconds);
        self.requests.inc();
    }

    /// The request was answered with an error (a top-level error code, or an error in any of
    /// its topics or partitions). Call it in addition to [`ApiMetrics::observe`].
    pub fn error(&self) {
        self.errors.inc();
    }
}

/// Resolved gauges of one replica of a `TopicPartition` hosted by this broker.
///
/// The log gauges describe the local replica. The replication-state gauges follow Kafka: the
/// leader reports them and followers leave them at 0, so sums over brokers count a partition
/// once.
#[derive(Debug, Clone)]
pub struct PartitionGauges {
    pub(super) log_size: IntGauge,
    pub(super) log_end_offset: IntGauge,
    pub(super) log_start_offset: IntGauge,
    pub(super) last_stable_offset_lag: IntGauge,
    pub(super) under_replicated: IntGauge,
    pub(super) under_min_isr: IntGauge,
    pub(super) at_min_isr: IntGauge,
}

impl PartitionGauges {
    /// Bytes of the replica's segments on disk (`kafka_log_log_size`).
    pub fn set_log_size(&self, bytes: u64) {
        self.log_size.set(saturating_i64(bytes));
    }

    /// Offset the next appended record gets (`kafka_log_log_logendoffset`).
    pub fn set_log_end_offset(&self, log_end_offset: i64) {
        self.log_end_offset.set(log_end_offset);
    }

    /// First offset still in the log (`kafka_log_log_logstartoffset`).
    pub fn set_log_start_offset(&self, log_start_offset: i64) {
        self.log_start_offset.set(log_start_offset);
    }

    /// Offsets between the last stable offset and the high watermark, on the leader
    /// (`kafka_server_replicamanager_last_stable_offset_lag`); a follower passes 0.
    pub fn set_last_stable_offset_lag(&self, lag: i64) {
        self.last_stable_offset_lag.set(lag.max(0));
    }

    /// Replication state as seen by the leader: `isr_size` in-sync replicas out of `replicas`
    /// assigned, against the topic's `min.insync.replicas`. A follower passes `None`, which
    /// clears the gauges (Kafka reports these on the leader only).
    pub fn set_isr_state(&self, state: Option<IsrState>) {
        let (under_replicated, under_min_isr, at_min_isr) = match state {
            Some(s) => (
                s.isr_size < s.replicas,
                s.isr_size < s.min_insync_replicas,
                s.isr_size == s.min_insync_replicas,
            ),
            None => (false, false, false),
        };
        self.under_replicated.set(i64::from(under_replicated));
        self.under_min_isr.set(i64::from(under_min_isr));
        self.at_min_isr.set(i64::from(at_min_isr));
    }
}

/// Sizes the leader of a partition compares for its replication-state gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrState {
    /// Replicas assigned to the partition.
    pub replicas: usize,
    /// Replicas in the ISR (the leader included).
    pub isr_size: usize,
    /// The topic's `min.insync.replicas`.
    pub min_insync_replicas: usize,
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
