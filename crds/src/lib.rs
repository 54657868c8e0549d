//! Custom resource types of Strom (API group `strom.io`, version `v1alpha1`) and the CRD YAML
//! generated from them.
//!
//! Layout:
//! - [`cluster`]: the `Cluster` resource (brokers, storage, listeners, status per broker);
//! - [`topic`]: the `Topic` resource (partitions, replication factor, configs, deletion policy);
//! - [`BROKER_CONFIG_KEYS`]: the broker config keys a `Cluster` may set, and
//!   [`OPERATOR_BROKER_KEYS`]: those the operator renders itself;
//! - [`crd_files`]: the generated CRD documents, written by the `crdgen` binary to `crds/*.yaml`
//!   and `charts/strom/crds/*.yaml` (`cargo run -p strom-crds --bin crdgen`); a test fails when
//!   the committed files are stale.
//!
//! This crate depends only on what deriving the types needs (kube with `derive`, k8s-openapi,
//! schemars, serde) so anything can read the types without compiling a Kubernetes client.

pub mod cluster;
pub mod topic;

use std::collections::BTreeMap;

use kube::CustomResourceExt;

pub use cluster::{Cluster, ClusterSpec, ClusterStatus};
pub use topic::{Topic, TopicSpec, TopicStatus};

/// Broker config keys a `Cluster` may set in `spec.config`, with Kafka's meaning.
///
/// Everything else in `server.properties` (node id, listeners, advertised listeners, data
/// directory, controller quorum) is derived by the operator from the pod and must not be
/// overridden; a key outside this list puts the Cluster into `Degraded` (reason
/// `InvalidConfig`) with an Event naming the key, and the operator applies nothing until it is
/// removed. CEL cannot check map keys against a list well, so the reconciler checks them.
///
/// - `num.partitions`: partitions of an auto-created topic;
/// - `default.replication.factor`: replication factor of a topic created without one;
/// - `auto.create.topics.enable`: create a topic when a client first names it;
/// - `min.insync.replicas`: in-sync replicas needed for an `acks=all` write;
/// - `log.segment.bytes`, `log.roll.ms`: when the active segment rolls;
/// - `log.retention.ms`, `log.retention.bytes`, `log.retention.check.interval.ms`: retention;
/// - `log.flush.interval.messages`, `log.flush.interval.ms`: forced fsync cadence;
/// - `message.max.bytes`: largest record batch accepted;
/// - `socket.request.max.bytes`: largest request accepted;
/// - `max.connections`: connection limit of the broker;
/// - `max.connections.per.ip`, `max.connections.per.ip.overrides`: connection limits per client
///   address;
/// - `connections.max.idle.ms`, `socket.request.read.timeout.ms`: when idle or stalled
///   connections are closed;
/// - `queued.max.request.bytes`: request memory across connections;
/// - `fetch.max.bytes`: largest Fetch response;
/// - `log.message.timestamp.type`: `CreateTime` or `LogAppendTime`;
/// - `log.message.timestamp.before.max.ms`, `log.message.timestamp.after.max.ms`: how far a
///   `CreateTime` record timestamp may lie before or after the broker's clock;
/// - `offsets.topic.num.partitions`, `offsets.retention.minutes`: the group offsets topic;
/// - `group.initial.rebalance.delay.ms`, `group.min.session.timeout.ms`,
///   `group.max.session.timeout.ms`: consumer group coordination;
/// - `offsets.topic.replication.factor`: replicas of the group offsets topic;
/// - `replica.lag.time.max.ms`: how long a follower may lag before it leaves the ISR;
/// - `replica.fetch.max.bytes`, `replica.fetch.response.max.bytes`,
///   `replica.fetch.wait.max.ms`, `replica.fetch.min.bytes`, `replica.fetch.backoff.ms`: how
///   followers fetch from leaders;
/// - `replica.high.watermark.checkpoint.interval.ms`: how often high watermarks are saved;
/// - `replica.selector.class`: the rack-aware selector lets consumers read from the replica of
///   their rack;
/// - `unclean.leader.election.enable`: elect an out-of-sync replica rather than stay offline;
/// - `controlled.shutdown.timeout.ms`: how long a stopping broker waits for its leaderships to
///   move;
/// - `auto.leader.rebalance.enable`, `leader.imbalance.per.broker.percentage`,
///   `leader.imbalance.check.interval.seconds`: preferred-leader rebalance;
/// - `producer.id.expiration.ms`, `producer.id.expiration.check.interval.ms`: when idle
///   idempotent producers are forgotten;
/// - `offsets.topic.segment.bytes`: segment size of the (compacted) group offsets topic;
/// - `log.cleanup.policy`, `compression.type`: default cleanup policy and codec of topics;
/// - `log.cleaner.enable`, `log.cleaner.threads`, `log.cleaner.dedupe.buffer.size`,
///   `log.cleaner.io.max.bytes.per.second`, `log.cleaner.backoff.ms`: the log cleaner of
///   compacted topics;
/// - `log.cleaner.delete.retention.ms`, `log.cleaner.min.compaction.lag.ms`,
///   `log.cleaner.max.compaction.lag.ms`, `log.cleaner.min.cleanable.ratio`: defaults of the
///   compaction topic configs;
/// - `log.segment.delete.delay.ms`: how long the files of a removed segment stay on disk before
///   they are deleted (default of the topic config `file.delete.delay.ms`).
pub const BROKER_CONFIG_KEYS: &[&str] = &[
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "min.insync.replicas",
    "log.segment.bytes",
    "log.roll.ms",
    "log.retention.ms",
    "log.retention.bytes",
    "log.retention.check.interval.ms",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "message.max.bytes",
    "socket.request.max.bytes",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "connections.max.idle.ms",
    "socket.request.read.timeout.ms",
    "queued.max.request.bytes",
    "fetch.max.bytes",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "offsets.topic.num.partitions",
    "offsets.retention.minutes",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "offsets.topic.replication.factor",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.backoff.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "replica.selector.class",
    "unclean.leader.election.enable",
    "controlled.shutdown.timeout.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.per.broker.percentage",
    "leader.imbalance.check.interval.seconds",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
    "offsets.topic.segment.bytes",
    "log.cleanup.policy",
    "compression.type",
    "log.cleaner.enable",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.segment.delete.delay.ms",
];

/// Broker config keys the operator renders itself from the Cluster spec and the pod, never
/// from `spec.config` (so they are not in [`BROKER_CONFIG_KEYS`]):
///
/// - `controller.quorum.voters`: the voters `0..spec.controller.voters` at their pods' stable
///   DNS names, in `server.properties`;
/// - `broker.rack`: the pod's own label named by `spec.rack.topologyKey`, passed as
///   `--override broker.rack=...` because it differs per pod.
///
/// The broker must accept each of them (`e2e/tests/config_keys.rs` checks it against the
/// broker's own key list).
pub const OPERATOR_BROKER_KEYS: &[&str] = &["controller.quorum.voters", "broker.rack"];

/// The keys of `config` that are not in [`BROKER_CONFIG_KEYS`], in order. Empty when all are
/// allowed.
pub fn disallowed_broker_config_keys(config: &BTreeMap<String, String>) -> Vec<&str> {
    config
        .keys()
        .map(String::as_str)
        .filter(|key| !BROKER_CONFIG_KEYS.contains(key))
        .collect()
}

/// Command that regenerates the committed CRD YAML.
pub const REGENERATE_COMMAND: &str = "cargo run -p strom-crds --bin crdgen";

/// Directories (relative to the workspace root) that hold a copy of the generated CRD YAML.
pub const CRD_OUTPUT_DIRS: &[&str] = &["crds", "charts/strom/crds"];

/// The generated CRDs as `(file name, YAML text)`, one file per CRD, named after the CRD
/// (`clusters.strom.io.yaml`).
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    [Cluster::crd(), Topic::crd()]
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let body = serde_yaml::to_string(&crd)?;
            let header =
                format!("# Generated from the strom-crds types by `{REGENERATE_COMMAND}`.");
            Ok((
                format!("{name}.yaml"),
                format!("{header} Do not edit.\n{body}"),
            ))
        })
        .collect()
}
