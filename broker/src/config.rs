//! Broker configuration: command-line flags (each also from a `STROM_*` environment variable),
//! an optional Kafka-style `server.properties` file, and `--override key=value` on top.
//!
//! Precedence, lowest first: built-in defaults, the properties file, `--override`. Keys use
//! Kafka's broker names so an operator coming from Kafka recognises them; an unknown key is an
//! error naming the key, never silently ignored.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

pub use crate::quorum_config::{ProcessRoles, QuorumSettings, Voters};

/// Errors in the broker's configuration; each names the flag or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{origin}: line {line} is not `key=value`: {text:?}")]
    Syntax {
        origin: String,
        line: usize,
        text: String,
    },
    #[error("unknown broker config key {key:?} (from {origin}); known keys: {known}")]
    UnknownKey {
        key: String,
        origin: String,
        known: String,
    },
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("--node-id ordinal: {reason}")]
    Ordinal { reason: String },
    /// Settings of the metadata quorum that contradict each other.
    #[error("{reason}")]
    Quorum { reason: String },
    #[error("listen address {value:?}: {reason}")]
    Listen { value: String, reason: String },
}

/// Command-line interface of `strom-broker`.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "strom-broker",
    version,
    about = "Strom: a Kafka-compatible event streaming broker"
)]
pub struct Cli {
    /// Kafka-style properties file (`key=value` lines, `#` comments).
    #[arg(long, env = "STROM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory holding the partition logs and the metadata log.
    #[arg(long, env = "STROM_DATA_DIR", default_value = "strom-data")]
    pub data_dir: PathBuf,
    /// Address the Kafka listener binds, `HOST:PORT` (a host name is resolved at start; port 0
    /// picks a free port).
    #[arg(long, env = "STROM_LISTEN", default_value = "127.0.0.1:9092", value_parser = parse_listen_addr)]
    pub listen: SocketAddr,
    /// `host:port` clients are told to connect to; defaults to the bound listener address.
    #[arg(long, env = "STROM_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Address of the HTTP admin listener (`/metrics`, `/healthz`, `/readyz`), `HOST:PORT`.
    #[arg(long, env = "STROM_ADMIN_LISTEN", default_value = "127.0.0.1:9404", value_parser = parse_listen_addr)]
    pub admin_listen: SocketAddr,
    /// Broker id: a number, or `ordinal` to take the trailing `-N` of `$POD_NAME` (StatefulSet).
    #[arg(long, env = "STROM_NODE_ID", default_value = "0")]
    pub node_id: String,
    /// gRPC listener of the metadata quorum and controller forwarding (port 0 picks a free
    /// port). Required when `controller.quorum.voters` is set.
    #[arg(long, env = "STROM_CONTROLLER_LISTEN", value_parser = parse_listen_addr)]
    pub controller_listen: Option<SocketAddr>,
    /// `host:port` other brokers dial for the controller listener; defaults to the bound address.
    #[arg(long, env = "STROM_CONTROLLER_ADVERTISED_LISTENER")]
    pub controller_advertised_listener: Option<String>,
    /// The metadata voters, `id@host:port,...` (same as the `controller.quorum.voters` key).
    #[arg(long, env = "STROM_CONTROLLER_QUORUM_VOTERS")]
    pub controller_quorum_voters: Option<String>,
    /// Broker config override, `key=value`; repeatable; wins over the config file.
    #[arg(long = "override", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

/// Said by `--help` after the flags: what an acknowledgement promises, and the broker keys.
pub fn help_epilogue() -> String {
    format!(
        "Durability: a produce request is acknowledged once its batches are written to the \
partition log files, that is to the operating system's page cache, not to the disk. \
Acknowledged data survives a crash of the broker process, but not a power loss or a crash of \
the machine, unless log.flush.interval.messages or log.flush.interval.ms (per topic: \
flush.messages, flush.ms) make the broker fsync first; log.flush.interval.messages=1 syncs every \
batch before it is acknowledged. By default the broker never forces a sync.\n\n\
Broker keys (--config file or --override KEY=VALUE, Kafka's names):\n  {}",
        BROKER_KEYS.join("\n  ")
    )
}

/// The command line with [`help_epilogue`] in `--help`.
pub fn cli_command() -> clap::Command {
    Cli::command().after_help(help_epilogue())
}

/// Parses the process arguments; prints help or the error and exits as clap does.
pub fn parse_cli() -> Cli {
    cli_command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
        .unwrap_or_else(|error| error.exit())
}

/// Typed broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub advertised_listener: Option<String>,
    pub admin_listen: SocketAddr,
    pub rack: Option<String>,
    /// The metadata quorum: voters, this node's role and its controller listener.
    pub quorum: QuorumSettings,
    /// Broker-level defaults for topic configs and the broker's own limits, by Kafka key.
    pub props: BrokerProps,
}

/// The broker properties Strom honours, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerProps {
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub min_insync_replicas: i32,
    pub log_segment_bytes: i64,
    pub log_roll_ms: i64,
    pub log_retention_ms: i64,
    pub log_retention_bytes: i64,
    pub log_retention_check_interval_ms: i64,
    /// `producer.id.expiration.ms`: an idempotent producer idle this long is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often idle producers are looked for.
    pub producer_id_expiration_check_interval_ms: i64,
    pub log_flush_interval_messages: i64,
    pub log_flush_interval_ms: i64,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: i32,
    pub max_connections: i32,
    pub max_connections_per_ip: i32,
    /// `max.connections.per.ip.overrides` as written (`host:count,...`), for DescribeConfigs.
    pub max_connections_per_ip_overrides: String,
    /// The same, resolved: the limit of each address named there.
    pub connection_limit_overrides: BTreeMap<IpAddr, i32>,
    /// Close a connection after this long without a request (-1: never).
    pub connections_max_idle_ms: i64,
    /// A started request frame must arrive whole within this (-1: no deadline).
    pub socket_request_read_timeout_ms: i64,
    /// Request bytes read but not yet answered, across connections (-1: unbounded).
    pub queued_max_request_bytes: i64,
    pub fetch_max_bytes: i32,
    pub log_message_timestamp_type: String,
    pub log_message_timestamp_before_max_ms: i64,
    pub log_message_timestamp_after_max_ms: i64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`: the `segment.bytes` of `__consumer_offsets`.
    pub offsets_topic_segment_bytes: i32,
    pub offsets_retention_minutes: i64,
    /// `transaction.state.log.*`: the partitions, replication, `min.insync.replicas` and
    /// `segment.bytes` of `__transaction_state`.
    pub transaction_state_log_num_partitions: i32,
    pub transaction_state_log_replication_factor: i16,
    pub transaction_state_log_min_isr: i32,
    pub transaction_state_log_segment_bytes: i32,
    /// The longest `transaction.timeout.ms` a producer may ask for.
    pub transaction_max_timeout_ms: i64,
    /// How long a transactional id without transactions is remembered.
    pub transactional_id_expiration_ms: i64,
    /// How often the coordinator looks for transactions open past their timeout.
    pub transaction_abort_timed_out_transaction_cleanup_interval_ms: i64,
    pub group_initial_rebalance_delay_ms: i64,
    pub group_min_session_timeout_ms: i64,
    pub group_max_session_timeout_ms: i64,
    pub broker_rack: Option<String>,
    /// `controller.quorum.voters`, parsed; empty: a single broker that is its own quorum.
    pub controller_quorum_voters: Voters,
    /// `process.roles`; `None`: follows from whether `node.id` is a voter.
    pub process_roles: Option<ProcessRoles>,
    pub broker_heartbeat_interval_ms: i64,
    pub broker_session_timeout_ms: i64,
    pub replica_lag_time_max_ms: i64,
    pub replica_fetch_max_bytes: i32,
    pub replica_fetch_response_max_bytes: i32,
    pub replica_fetch_wait_max_ms: i64,
    pub replica_fetch_min_bytes: i32,
    pub replica_fetch_backoff_ms: i64,
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    pub unclean_leader_election_enable: bool,
    pub controlled_shutdown_timeout_ms: i64,
    pub auto_leader_rebalance_enable: bool,
    pub replica_selector_class: String,
    pub leader_imbalance_per_broker_percentage: i32,
    pub leader_imbalance_check_interval_seconds: i64,
    /// KIP-73 throttles when the broker has no dynamic value for them (bytes per second).
    pub leader_replication_throttled_rate: i64,
    pub follower_replication_throttled_rate: i64,
    /// `log.cleanup.policy`: the default `cleanup.policy` of topics (`delete`, `compact`, both).
    pub log_cleanup_policy: String,
    /// `compression.type`: the default codec topics store batches with (`producer` keeps it).
    pub compression_type: String,
    /// `log.cleaner.enable`: whether the log cleaner runs at all.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.threads`: threads that clean compacted logs.
    pub log_cleaner_threads: i32,
    /// `log.cleaner.dedupe.buffer.size`: memory for the offset maps, over all cleaner threads.
    pub log_cleaner_dedupe_buffer_size: i64,
    /// `log.cleaner.io.max.bytes.per.second`: the cleaners' combined read and write rate.
    pub log_cleaner_io_max_bytes_per_second: f64,
    /// `log.cleaner.backoff.ms`: how long a cleaner thread sleeps when no log needs cleaning.
    pub log_cleaner_backoff_ms: i64,
    /// `log.cleaner.delete.retention.ms`: the default `delete.retention.ms`.
    pub log_cleaner_delete_retention_ms: i64,
    /// `log.cleaner.min.compaction.lag.ms`: the default `min.compaction.lag.ms`.
    pub log_cleaner_min_compaction_lag_ms: i64,
    /// `log.cleaner.max.compaction.lag.ms`: the default `max.compaction.lag.ms`.
    pub log_cleaner_max_compaction_lag_ms: i64,
    /// `log.cleaner.min.cleanable.ratio`: the default `min.cleanable.dirty.ratio`.
    pub log_cleaner_min_cleanable_ratio: f64,
    /// `log.segment.delete.delay.ms`: the default `file.delete.delay.ms`.
    pub log_segment_delete_delay_ms: i64,
}

impl Default for BrokerProps {
    fn default() -> Self {
        BrokerProps {
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            min_insync_replicas: 1,
            log_segment_bytes: 1024 * 1024 * 1024,
            log_roll_ms: 7 * 24 * 3600 * 1000,
            log_retention_ms: 7 * 24 * 3600 * 1000,
            log_retention_bytes: -1,
            log_retention_check_interval_ms: 5 * 60 * 1000,
            producer_id_expiration_ms: 24 * 3600 * 1000,
            producer_id_expiration_check_interval_ms: 10 * 60 * 1000,
            log_flush_interval_messages: i64::MAX,
            log_flush_interval_ms: i64::MAX,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 100 * 1024 * 1024,
            max_connections: 10_000,
            max_connections_per_ip: i32::MAX,
            max_connections_per_ip_overrides: String::new(),
            connection_limit_overrides: BTreeMap::new(),
            connections_max_idle_ms: 600_000,
            socket_request_read_timeout_ms: 30_000,
            queued_max_request_bytes: 512 * 1024 * 1024,
            fetch_max_bytes: 57_671_680,
            log_message_timestamp_type: "CreateTime".to_string(),
            log_message_timestamp_before_max_ms: strom_storage::DEFAULT_TIMESTAMP_BEFORE_MAX_MS,
            log_message_timestamp_after_max_ms: strom_storage::DEFAULT_TIMESTAMP_AFTER_MAX_MS,
            offsets_topic_num_partitions: 50,
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 100 * 1024 * 1024,
            offsets_retention_minutes: 7 * 24 * 60,
            transaction_state_log_num_partitions: 50,
            transaction_state_log_replication_factor: 3,
            transaction_state_log_min_isr: 2,
            transaction_state_log_segment_bytes: 100 * 1024 * 1024,
            transaction_max_timeout_ms: 900_000,
            transactional_id_expiration_ms: 7 * 24 * 60 * 60 * 1000,
            transaction_abort_timed_out_transaction_cleanup_interval_ms: 10_000,
            group_initial_rebalance_delay_ms: 3000,
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            broker_rack: None,
            controller_quorum_voters: Voters::default(),
            process_roles: None,
            broker_heartbeat_interval_ms: 2000,
            broker_session_timeout_ms: 9000,
            replica_lag_time_max_ms: 30_000,
            replica_fetch_max_bytes: 1024 * 1024,
            replica_fetch_response_max_bytes: 10 * 1024 * 1024,
            replica_fetch_wait_max_ms: 500,
            replica_fetch_min_bytes: 1,
            replica_fetch_backoff_ms: 1000,
            replica_high_watermark_checkpoint_interval_ms: 5000,
            unclean_leader_election_enable: false,
            controlled_shutdown_timeout_ms: 30_000,
            auto_leader_rebalance_enable: true,
            replica_selector_class: String::new(),
            leader_imbalance_per_broker_percentage: 10,
            leader_imbalance_check_interval_seconds: 300,
            leader_replication_throttled_rate: strom_metadata::broker_config::UNTHROTTLED_RATE,
            follower_replication_throttled_rate: strom_metadata::broker_config::UNTHROTTLED_RATE,
            log_cleanup_policy: "delete".to_string(),
            compression_type: "producer".to_string(),
            log_cleaner_enable: true,
            log_cleaner_threads: 1,
            log_cleaner_dedupe_buffer_size: 128 * 1024 * 1024,
            log_cleaner_io_max_bytes_per_second: f64::MAX,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_delete_retention_ms: 24 * 3600 * 1000,
            log_segment_delete_delay_ms: 60_000,
            log_cleaner_min_compaction_lag_ms: 0,
            log_cleaner_max_compaction_lag_ms: i64::MAX,
            log_cleaner_min_cleanable_ratio: 0.5,
        }
    }
}

/// Every broker key Strom accepts (the operator's `Cluster.spec.config` allow-list mirrors it).
pub const BROKER_KEYS: &[&str] = &[
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "min.insync.replicas",
    "log.segment.bytes",
    "log.roll.ms",
    "log.retention.ms",
    "log.retention.bytes",
    "log.retention.check.interval.ms",
    "producer.id.expiration.ms",
    "producer.id.expiration.check.interval.ms",
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
    "offsets.topic.replication.factor",
    "offsets.topic.segment.bytes",
    "offsets.retention.minutes",
    "transaction.state.log.num.partitions",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "transaction.state.log.segment.bytes",
    "transaction.max.timeout.ms",
    "transactional.id.expiration.ms",
    "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    "group.initial.rebalance.delay.ms",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "broker.rack",
    "controller.quorum.voters",
    "process.roles",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.min.bytes",
    "replica.fetch.backoff.ms",
    "replica.high.watermark.checkpoint.interval.ms",
    "unclean.leader.election.enable",
    "controlled.shutdown.timeout.ms",
    "auto.leader.rebalance.enable",
    "replica.selector.class",
    "leader.imbalance.per.broker.percentage",
    "leader.imbalance.check.interval.seconds",
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
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

impl BrokerProps {
    /// How long a SIGTERM waits for the controller to move this broker's leaderships.
    pub fn controlled_shutdown_timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.controlled_shutdown_timeout_ms).unwrap_or(0))
    }

    /// The static (leader, follower) replication throttles; a broker's dynamic configs win.
    pub fn replication_throttled_rates(&self) -> (i64, i64) {
        (
            self.leader_replication_throttled_rate,
            self.follower_replication_throttled_rate,
        )
    }

    /// The replica fetchers' settings.
    pub fn fetch_settings(&self) -> crate::replica::fetcher::FetchSettings {
        let ms = |v: i64| Duration::from_millis(u64::try_from(v).unwrap_or(0));
        crate::replica::fetcher::FetchSettings {
            max_wait: ms(self.replica_fetch_wait_max_ms),
            min_bytes: self.replica_fetch_min_bytes,
            partition_max_bytes: self.replica_fetch_max_bytes,
            response_max_bytes: self.replica_fetch_response_max_bytes,
            backoff: ms(self.replica_fetch_backoff_ms),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// Sets one key; unknown keys and unparsable values are errors.
    pub fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        match key {
            "num.partitions" => self.num_partitions = parse_min(key, value, 1)?,
            "default.replication.factor" => {
                self.default_replication_factor = parse_min::<i16>(key, value, 1)?
            }
            "auto.create.topics.enable" => self.auto_create_topics_enable = parse_bool(key, value)?,
            "min.insync.replicas" => self.min_insync_replicas = parse_min(key, value, 1)?,
            "log.segment.bytes" => self.log_segment_bytes = parse_min(key, value, 14)?,
            "log.roll.ms" => self.log_roll_ms = parse_min(key, value, 1)?,
            "log.retention.ms" => self.log_retention_ms = parse_min(key, value, -1)?,
            "log.retention.bytes" => self.log_retention_bytes = parse_min(key, value, -1)?,
            "log.retention.check.interval.ms" => {
                self.log_retention_check_interval_ms = parse_min(key, value, 1)?
            }
            "producer.id.expiration.ms" => {
                self.producer_id_expiration_ms = parse_min(key, value, 1)?
            }
            "producer.id.expiration.check.interval.ms" => {
                self.producer_id_expiration_check_interval_ms = parse_min(key, value, 1)?
            }
            "log.flush.interval.messages" => {
                self.log_flush_interval_messages = parse_min(key, value, 1)?
            }
            "log.flush.interval.ms" => self.log_flush_interval_ms = parse_min(key, value, 0)?,
            "message.max.bytes" => self.message_max_bytes = parse_min(key, value, 0)?,
            "socket.request.max.bytes" => self.socket_request_max_bytes = parse_min(key, value, 1)?,
            "max.connections" => self.max_connections = parse_min(key, value, 1)?,
            "max.connections.per.ip" => self.max_connections_per_ip = parse_min(key, value, 0)?,
            "max.connections.per.ip.overrides" => {
                self.connection_limit_overrides = parse_connection_overrides(key, value)?;
                self.max_connections_per_ip_overrides = value.to_string();
            }
            "connections.max.idle.ms" => {
                self.connections_max_idle_ms = parse_positive_or_disabled(key, value)?
            }
            "socket.request.read.timeout.ms" => {
                self.socket_request_read_timeout_ms = parse_positive_or_disabled(key, value)?
            }
            "queued.max.request.bytes" => {
                self.queued_max_request_bytes = parse_positive_or_disabled(key, value)?
            }
            "fetch.max.bytes" => self.fetch_max_bytes = parse_min(key, value, 1024)?,
            "log.message.timestamp.type" => match value {
                "CreateTime" | "LogAppendTime" => self.log_message_timestamp_type = value.into(),
                _ => return Err(invalid(key, value, "must be CreateTime or LogAppendTime")),
            },
            "log.message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms = parse_min(key, value, 0)?
            }
            "log.message.timestamp.after.max.ms" => {
                self.log_message_timestamp_after_max_ms = parse_min(key, value, 0)?
            }
            "offsets.topic.num.partitions" => {
                self.offsets_topic_num_partitions = parse_min(key, value, 1)?
            }
            "offsets.topic.replication.factor" => {
                self.offsets_topic_replication_factor = parse_min(key, value, 1)?
            }
            "offsets.topic.segment.bytes" => {
                self.offsets_topic_segment_bytes = parse_min(key, value, 14)?
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = parse_min(key, value, 1)?
            }
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions = parse_min(key, value, 1)?
            }
            "transaction.state.log.replication.factor" => {
                self.transaction_state_log_replication_factor = parse_min(key, value, 1)?
            }
            "transaction.state.log.min.isr" => {
                self.transaction_state_log_min_isr = parse_min(key, value, 1)?
            }
            "transaction.state.log.segment.bytes" => {
                self.transaction_state_log_segment_bytes = parse_min(key, value, 14)?
            }
            "transaction.max.timeout.ms" => {
                self.transaction_max_timeout_ms = parse_min(key, value, 1)?
            }
            "transactional.id.expiration.ms" => {
                self.transactional_id_expiration_ms = parse_min(key, value, 1)?
            }
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                self.transaction_abort_timed_out_transaction_cleanup_interval_ms =
                    parse_min(key, value, 1)?
            }
            "group.initial.rebalance.delay.ms" => {
                self.group_initial_rebalance_delay_ms = parse_min(key, value, 0)?
            }
            "group.min.session.timeout.ms" => {
                self.group_min_session_timeout_ms = parse_min(key, value, 0)?
            }
            "group.max.session.timeout.ms" => {
                self.group_max_session_timeout_ms = parse_min(key, value, 0)?
            }
            "broker.rack" => {
                self.broker_rack = (!value.is_empty()).then(|| value.to_string());
            }
            "controller.quorum.voters" => {
                self.controller_quorum_voters = value
                    .parse()
                    .map_err(|reason: String| invalid(key, value, &reason))?
            }
            "process.roles" => {
                self.process_roles = Some(
                    value
                        .parse()
                        .map_err(|reason: String| invalid(key, value, &reason))?,
                )
            }
            "broker.heartbeat.interval.ms" => {
                self.broker_heartbeat_interval_ms = parse_min(key, value, 1)?
            }
            "broker.session.timeout.ms" => {
                self.broker_session_timeout_ms = parse_min(key, value, 1)?
            }
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms = parse_min(key, value, 1)?,
            "replica.fetch.max.bytes" => self.replica_fetch_max_bytes = parse_min(key, value, 1)?,
            "replica.fetch.response.max.bytes" => {
                self.replica_fetch_response_max_bytes = parse_min(key, value, 1)?
            }
            "replica.fetch.wait.max.ms" => {
                self.replica_fetch_wait_max_ms = parse_min(key, value, 0)?
            }
            "replica.fetch.min.bytes" => self.replica_fetch_min_bytes = parse_min(key, value, 1)?,
            "replica.fetch.backoff.ms" => self.replica_fetch_backoff_ms = parse_min(key, value, 0)?,
            "replica.high.watermark.checkpoint.interval.ms" => {
                self.replica_high_watermark_checkpoint_interval_ms = parse_min(key, value, 1)?
            }
            "unclean.leader.election.enable" => {
                self.unclean_leader_election_enable = parse_bool(key, value)?
            }
            "controlled.shutdown.timeout.ms" => {
                self.controlled_shutdown_timeout_ms = parse_min(key, value, 0)?
            }
            "auto.leader.rebalance.enable" => {
                self.auto_leader_rebalance_enable = parse_bool(key, value)?
            }
            "replica.selector.class" => match value {
                "" | crate::replica::selector::RACK_AWARE_SELECTOR => {
                    self.replica_selector_class = value.to_string()
                }
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        "must be empty (consumers read from leaders) or org.apache.kafka.common.replica.RackAwareReplicaSelector",
                    ));
                }
            },
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage = parse_min(key, value, 0)?
            }
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds = parse_min(key, value, 1)?
            }
            "leader.replication.throttled.rate" => {
                self.leader_replication_throttled_rate = parse_min(key, value, 0)?
            }
            "follower.replication.throttled.rate" => {
                self.follower_replication_throttled_rate = parse_min(key, value, 0)?
            }
            "log.cleanup.policy" => {
                self.log_cleanup_policy = topic_value(key, "cleanup.policy", value)?
            }
            "compression.type" => {
                self.compression_type = topic_value(key, "compression.type", value)?
            }
            "log.cleaner.enable" => self.log_cleaner_enable = parse_bool(key, value)?,
            "log.cleaner.threads" => self.log_cleaner_threads = parse_min(key, value, 1)?,
            "log.cleaner.dedupe.buffer.size" => {
                // A cleaner thread needs room for at least a few thousand keys to make progress.
                self.log_cleaner_dedupe_buffer_size = parse_min(key, value, 64 * 1024)?
            }
            "log.cleaner.io.max.bytes.per.second" => {
                self.log_cleaner_io_max_bytes_per_second = parse_positive_f64(key, value)?
            }
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms = parse_min(key, value, 0)?,
            "log.cleaner.delete.retention.ms" => {
                self.log_cleaner_delete_retention_ms = parse_min(key, value, 0)?
            }
            "log.segment.delete.delay.ms" => {
                self.log_segment_delete_delay_ms = parse_min(key, value, 0)?
            }
            "log.cleaner.min.compaction.lag.ms" => {
                self.log_cleaner_min_compaction_lag_ms = parse_min(key, value, 0)?
            }
            "log.cleaner.max.compaction.lag.ms" => {
                self.log_cleaner_max_compaction_lag_ms = parse_min(key, value, 1)?
            }
            "log.cleaner.min.cleanable.ratio" => {
                self.log_cleaner_min_cleanable_ratio =
                    topic_value(key, "min.cleanable.dirty.ratio", value)?
                        .parse()
                        .map_err(|_| invalid(key, value, "not a number"))?
            }
            _ => {
                return Err(ConfigError::UnknownKey {
                    key: key.to_string(),
                    origin: origin.to_string(),
                    known: BROKER_KEYS.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The current value of a broker key, as DescribeConfigs reports it.
    pub fn get(&self, key: &str) -> Option<String> {
        Some(match key {
            "num.partitions" => self.num_partitions.to_string(),
            "default.replication.factor" => self.default_replication_factor.to_string(),
            "auto.create.topics.enable" => self.auto_create_topics_enable.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "log.segment.bytes" => self.log_segment_bytes.to_string(),
            "log.roll.ms" => self.log_roll_ms.to_string(),
            "log.retention.ms" => self.log_retention_ms.to_string(),
            "log.retention.bytes" => self.log_retention_bytes.to_string(),
            "log.retention.check.interval.ms" => self.log_retention_check_interval_ms.to_string(),
            "producer.id.expiration.ms" => self.producer_id_expiration_ms.to_string(),
            "producer.id.expiration.check.interval.ms" => {
                self.producer_id_expiration_check_interval_ms.to_string()
            }
            "log.flush.interval.messages" => self.log_flush_interval_messages.to_string(),
            "log.flush.interval.ms" => self.log_flush_interval_ms.to_string(),
            "message.max.bytes" => self.message_max_bytes.to_string(),
            "socket.request.max.bytes" => self.socket_request_max_bytes.to_string(),
            "max.connections" => self.max_connections.to_string(),
            "max.connections.per.ip" => self.max_connections_per_ip.to_string(),
            "max.connections.per.ip.overrides" => self.max_connections_per_ip_overrides.clone(),
            "connections.max.idle.ms" => self.connections_max_idle_ms.to_string(),
            "socket.request.read.timeout.ms" => self.socket_request_read_timeout_ms.to_string(),
            "queued.max.request.bytes" => self.queued_max_request_bytes.to_string(),
            "fetch.max.bytes" => self.fetch_max_bytes.to_string(),
            "log.message.timestamp.type" => self.log_message_timestamp_type.clone(),
            "log.message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms.to_string()
            }
            "log.message.timestamp.after.max.ms" => {
                self.log_message_timestamp_after_max_ms.to_string()
            }
            "offsets.topic.num.partitions" => self.offsets_topic_num_partitions.to_string(),
            "offsets.topic.replication.factor" => self.offsets_topic_replication_factor.to_string(),
            "offsets.topic.segment.bytes" => self.offsets_topic_segment_bytes.to_string(),
            "offsets.retention.minutes" => self.offsets_retention_minutes.to_string(),
            "transaction.state.log.num.partitions" => {
                self.transaction_state_log_num_partitions.to_string()
            }
            "transaction.state.log.replication.factor" => {
                self.transaction_state_log_replication_factor.to_string()
            }
            "transaction.state.log.min.isr" => self.transaction_state_log_min_isr.to_string(),
            "transaction.state.log.segment.bytes" => {
                self.transaction_state_log_segment_bytes.to_string()
            }
            "transaction.max.timeout.ms" => self.transaction_max_timeout_ms.to_string(),
            "transactional.id.expiration.ms" => self.transactional_id_expiration_ms.to_string(),
            "transaction.abort.timed.out.transaction.cleanup.interval.ms" => self
                .transaction_abort_timed_out_transaction_cleanup_interval_ms
                .to_string(),
            "group.initial.rebalance.delay.ms" => self.group_initial_rebalance_delay_ms.to_string(),
            "group.min.session.timeout.ms" => self.group_min_session_timeout_ms.to_string(),
            "group.max.session.timeout.ms" => self.group_max_session_timeout_ms.to_string(),
            "broker.rack" => self.broker_rack.clone().unwrap_or_default(),
            "controller.quorum.voters" => self.controller_quorum_voters.to_string(),
            "process.roles" => self
                .process_roles
                .map(|r| r.to_string())
                .unwrap_or_default(),
            "broker.heartbeat.interval.ms" => self.broker_heartbeat_interval_ms.to_string(),
            "broker.session.timeout.ms" => self.broker_session_timeout_ms.to_string(),
            "replica.lag.time.max.ms" => self.replica_lag_time_max_ms.to_string(),
            "replica.fetch.max.bytes" => self.replica_fetch_max_bytes.to_string(),
            "replica.fetch.response.max.bytes" => self.replica_fetch_response_max_bytes.to_string(),
            "replica.fetch.wait.max.ms" => self.replica_fetch_wait_max_ms.to_string(),
            "replica.fetch.min.bytes" => self.replica_fetch_min_bytes.to_string(),
            "replica.fetch.backoff.ms" => self.replica_fetch_backoff_ms.to_string(),
            "replica.high.watermark.checkpoint.interval.ms" => self
                .replica_high_watermark_checkpoint_interval_ms
                .to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            "controlled.shutdown.timeout.ms" => self.controlled_shutdown_timeout_ms.to_string(),
            "auto.leader.rebalance.enable" => self.auto_leader_rebalance_enable.to_string(),
            "replica.selector.class" => self.replica_selector_class.clone(),
            "leader.imbalance.per.broker.percentage" => {
                self.leader_imbalance_per_broker_percentage.to_string()
            }
            "leader.imbalance.check.interval.seconds" => {
                self.leader_imbalance_check_interval_seconds.to_string()
            }
            "leader.replication.throttled.rate" => {
                self.leader_replication_throttled_rate.to_string()
            }
            "follower.replication.throttled.rate" => {
                self.follower_replication_throttled_rate.to_string()
            }
            "log.cleanup.policy" => self.log_cleanup_policy.clone(),
            "compression.type" => self.compression_type.clone(),
            "log.cleaner.enable" => self.log_cleaner_enable.to_string(),
            "log.cleaner.threads" => self.log_cleaner_threads.to_string(),
            "log.cleaner.dedupe.buffer.size" => self.log_cleaner_dedupe_buffer_size.to_string(),
            "log.cleaner.io.max.bytes.per.second" => {
                // Kafka's Double.MAX_VALUE, printed as Java prints it.
                let rate = self.log_cleaner_io_max_bytes_per_second;
                if rate == f64::MAX {
                    "1.7976931348623157E308".to_string()
                } else {
                    rate.to_string()
                }
            }
            "log.cleaner.backoff.ms" => self.log_cleaner_backoff_ms.to_string(),
            "log.cleaner.delete.retention.ms" => self.log_cleaner_delete_retention_ms.to_string(),
            "log.segment.delete.delay.ms" => self.log_segment_delete_delay_ms.to_string(),
            "log.cleaner.min.compaction.lag.ms" => {
                self.log_cleaner_min_compaction_lag_ms.to_string()
            }
            "log.cleaner.max.compaction.lag.ms" => {
                self.log_cleaner_max_compaction_lag_ms.to_string()
            }
            "log.cleaner.min.cleanable.ratio" => self.log_cleaner_min_cleanable_ratio.to_string(),
            _ => return None,
        })
    }

    /// The broker-level value behind a topic config key (`retention.ms` ← `log.retention.ms`),
    /// as Kafka reports it with source `STATIC_BROKER_CONFIG` when it differs from the default.
    pub fn topic_default(&self, topic_key: &str) -> Option<String> {
        Some(match topic_key {
            "retention.ms" => self.log_retention_ms.to_string(),
            "retention.bytes" => self.log_retention_bytes.to_string(),
            "segment.bytes" => self.log_segment_bytes.to_string(),
            "segment.ms" => self.log_roll_ms.to_string(),
            "max.message.bytes" => self.message_max_bytes.to_string(),
            "message.timestamp.type" => self.log_message_timestamp_type.clone(),
            "message.timestamp.before.max.ms" => {
                self.log_message_timestamp_before_max_ms.to_string()
            }
            "message.timestamp.after.max.ms" => self.log_message_timestamp_after_max_ms.to_string(),
            "min.insync.replicas" => self.min_insync_replicas.to_string(),
            "unclean.leader.election.enable" => self.unclean_leader_election_enable.to_string(),
            "flush.messages" => self.log_flush_interval_messages.to_string(),
            "flush.ms" => self.log_flush_interval_ms.to_string(),
            "cleanup.policy" => self.log_cleanup_policy.clone(),
            "compression.type" => self.compression_type.clone(),
            "delete.retention.ms" => self.log_cleaner_delete_retention_ms.to_string(),
            "file.delete.delay.ms" => self.log_segment_delete_delay_ms.to_string(),
            "min.compaction.lag.ms" => self.log_cleaner_min_compaction_lag_ms.to_string(),
            "max.compaction.lag.ms" => self.log_cleaner_max_compaction_lag_ms.to_string(),
            "min.cleanable.dirty.ratio" => self.log_cleaner_min_cleanable_ratio.to_string(),
            _ => return None,
        })
    }

    pub fn retention_check_interval(&self) -> Duration {
        Duration::from_millis(self.log_retention_check_interval_ms.max(1) as u64)
    }

    pub fn producer_expiration_check_interval(&self) -> Duration {
        Duration::from_millis(self.producer_id_expiration_check_interval_ms.max(1) as u64)
    }

    /// `connections.max.idle.ms` as a duration; `None` when idle connections are kept.
    pub fn connections_max_idle(&self) -> Option<Duration> {
        positive_ms(self.connections_max_idle_ms)
    }

    /// `socket.request.read.timeout.ms` as a duration; `None` when frames have no deadline.
    pub fn socket_request_read_timeout(&self) -> Option<Duration> {
        positive_ms(self.socket_request_read_timeout_ms)
    }

    /// `queued.max.request.bytes`; `None` when request memory is unbounded.
    pub fn queued_max_request_bytes(&self) -> Option<usize> {
        usize::try_from(self.queued_max_request_bytes)
            .ok()
            .filter(|&bytes| bytes > 0)
    }

    /// The connection limit for one client address: its override, else `max.connections.per.ip`.
    pub fn max_connections_for(&self, ip: IpAddr) -> usize {
        let limit = self
            .connection_limit_overrides
            .get(&ip)
            .copied()
            .unwrap_or(self.max_connections_per_ip);
        usize::try_from(limit).unwrap_or(0)
    }
}

fn positive_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms)
        .ok()
        .filter(|&ms| ms > 0)
        .map(Duration::from_millis)
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_min<T>(key: &str, value: &str, min: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let parsed: T = value
        .parse()
        .map_err(|_| invalid(key, value, "not a number"))?;
    if parsed < min {
        return Err(invalid(key, value, &format!("must be at least {min}")));
    }
    Ok(parsed)
}

/// A positive number, or -1 for "no limit" (Kafka's convention for these keys).
fn parse_positive_or_disabled(key: &str, value: &str) -> Result<i64, ConfigError> {
    let parsed: i64 = value
        .parse()
        .map_err(|_| invalid(key, value, "not a number"))?;
    if parsed == -1 || parsed >= 1 {
        Ok(parsed)
    } else {
        Err(invalid(key, value, "must be -1 (no limit) or at least 1"))
    }
}

/// `max.connections.per.ip.overrides`: `host:count` pairs separated by commas, as in Kafka; a
/// host name is resolved now and its limit applies to each of its addresses.
fn parse_connection_overrides(
    key: &str,
    value: &str,
) -> Result<BTreeMap<IpAddr, i32>, ConfigError> {
    let mut out = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((host, count)) = entry.rsplit_once(':') else {
            return Err(invalid(key, value, &format!("{entry:?} is not host:count")));
        };
        let count: i32 = parse_min(key, count.trim(), 0)?;
        let host = host.trim().trim_matches(['[', ']']);
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| invalid(key, value, &format!("resolving {host:?}: {e}")))?
                .map(|addr| addr.ip())
                .collect(),
        };
        for ip in addrs {
            out.insert(ip, count);
        }
    }
    Ok(out)
}

/// Parses a listener address `HOST:PORT`, where HOST is an IP address or a host name resolved
/// now (an IPv4 address is preferred when a name has both, as a bind to `localhost` is
/// expected to serve `127.0.0.1`). Usable as a clap `value_parser` for any listener flag.
pub fn parse_listen_addr(value: &str) -> Result<SocketAddr, ConfigError> {
    let listen_error = |reason: String| ConfigError::Listen {
        value: value.to_string(),
        reason,
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return Err(listen_error("expected HOST:PORT".into()));
    };
    let port: u16 = port
        .parse()
        .map_err(|_| listen_error(format!("port {port:?} is not a number from 0 to 65535")))?;
    let host = host.trim_matches(['[', ']']);
    if host.is_empty() {
        return Err(listen_error("expected HOST:PORT".into()));
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| listen_error(format!("resolving {host:?}: {e}")))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| listen_error(format!("{host:?} resolves to no address")))
}

/// A broker default of a topic config, checked by the topic config's own rules (Kafka checks
/// `log.cleanup.policy` as it checks `cleanup.policy`).
fn topic_value(key: &str, topic_key: &str, value: &str) -> Result<String, ConfigError> {
    strom_metadata::topic_config::validate_topic_config(topic_key, value).map_err(|error| {
        let reason = match &error {
            strom_metadata::topic_config::ConfigValidationError::InvalidValue {
                reason, ..
            } => reason.clone(),
            other => other.to_string(),
        };
        invalid(key, value, &reason)
    })?;
    Ok(value.to_string())
}

/// A rate in bytes per second: a positive, finite number.
fn parse_positive_f64(key: &str, value: &str) -> Result<f64, ConfigError> {
    let parsed: f64 = value
        .parse()
        .map_err(|_| invalid(key, value, "not a number"))?;
    if !parsed.is_finite() || parsed <= 0.0 {
        return Err(invalid(key, value, "must be a positive number"));
    }
    Ok(parsed)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, value, "must be true or false")),
    }
}

/// Parses Kafka properties syntax: `key=value` (or `key: value`), `#`/`!` comments, blank lines.
pub fn parse_properties(text: &str, origin: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let Some((key, value)) = line.split_once(['=', ':']) else {
            return Err(ConfigError::Syntax {
                origin: origin.to_string(),
                line: index + 1,
                text: raw.to_string(),
            });
        };
        out.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

impl BrokerConfig {
    /// Builds the configuration from parsed flags, reading the properties file if given.
    pub fn from_cli(cli: Cli) -> Result<BrokerConfig, ConfigError> {
        let mut props = BrokerProps::default();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let origin = path.display().to_string();
            for (key, value) in parse_properties(&text, &origin)? {
                props.set(&key, &value, &origin)?;
            }
        }
        if let Some(voters) = &cli.controller_quorum_voters {
            props.set(
                "controller.quorum.voters",
                voters,
                "--controller-quorum-voters",
            )?;
        }
        for item in &cli.overrides {
            let Some((key, value)) = item.split_once('=') else {
                return Err(ConfigError::Syntax {
                    origin: "--override".into(),
                    line: 1,
                    text: item.clone(),
                });
            };
            props.set(key.trim(), value, "--override")?;
        }
        let node_id = parse_node_id(&cli.node_id, std::env::var("POD_NAME").ok().as_deref())?;
        let quorum = QuorumSettings::new(
            node_id,
            &props,
            cli.controller_listen,
            cli.controller_advertised_listener,
        )?;
        Ok(BrokerConfig {
            node_id,
            quorum,
            data_dir: cli.data_dir,
            listen: cli.listen,
            advertised_listener: cli.advertised_listener,
            admin_listen: cli.admin_listen,
            rack: props.broker_rack.clone(),
            props,
        })
    }

    /// A configuration for tests and embedding: loopback listeners on OS-chosen ports.
    pub fn for_data_dir(data_dir: PathBuf) -> BrokerConfig {
        BrokerConfig {
            node_id: 0,
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertised_listener: None,
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rack: None,
            quorum: QuorumSettings::default(),
            props: BrokerProps::default(),
        }
    }
}

/// `--node-id`: a non-negative number, or `ordinal` = the trailing `-N` of the pod name.
fn parse_node_id(value: &str, pod_name: Option<&str>) -> Result<i32, ConfigError> {
    if value == "ordinal" {
        let pod = pod_name.ok_or_else(|| ConfigError::Ordinal {
            reason: "POD_NAME is not set".into(),
        })?;
        let ordinal = pod.rsplit_once('-').map(|(_, n)| n).unwrap_or_default();
        return ordinal.parse::<i32>().map_err(|_| ConfigError::Ordinal {
            reason: format!("POD_NAME {pod:?} does not end in -<number>"),
        });
    }
    parse_min("--node-id", value, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_parse_with_comments_and_both_separators() {
        let text = "# comment\n\nnum.partitions=3\n log.retention.ms : 1000 \n! also comment\n";
        let props = parse_properties(text, "test").expect("valid properties");
        assert_eq!(props.get("num.partitions").map(String::as_str), Some("3"));
        assert_eq!(
            props.get("log.retention.ms").map(String::as_str),
            Some("1000")
        );
        assert_eq!(props.len(), 2);
        assert!(matches!(
            parse_properties("justakey\n", "f"),
            Err(ConfigError::Syntax { line: 1, .. })
        ));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let mut props = BrokerProps::default();
        assert!(matches!(
            props.set("log.dirs", "/tmp", "test"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(matches!(
            props.set("num.partitions", "0", "test"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            props.set("auto.create.topics.enable", "yes", "test"),
            Err(ConfigError::InvalidValue { .. })
        ));
        props.set("num.partitions", "6", "test").expect("valid");
        assert_eq!(props.num_partitions, 6);
    }

    #[test]
    fn every_documented_key_is_settable() {
        let mut props = BrokerProps::default();
        for key in BROKER_KEYS {
            let value = match *key {
                "auto.create.topics.enable" => "false",
                "log.message.timestamp.type" => "LogAppendTime",
                "broker.rack" => "rack-a",
                "controller.quorum.voters" => "0@a:1,1@b:2",
                "process.roles" => "broker,controller",
                "max.connections.per.ip.overrides" => "127.0.0.2:3,127.0.0.3:0",
                "fetch.max.bytes" => "1048576",
                "unclean.leader.election.enable" | "auto.leader.rebalance.enable" => "false",
                "replica.selector.class" => crate::replica::selector::RACK_AWARE_SELECTOR,
                "log.cleanup.policy" => "compact,delete",
                "compression.type" => "zstd",
                "log.cleaner.enable" => "false",
                "log.cleaner.dedupe.buffer.size" => "1048576",
                "log.cleaner.min.cleanable.ratio" => "0.25",
                _ => "100",
            };
            props.set(key, value, "test").expect(key);
            assert_eq!(props.get(key).as_deref(), Some(value), "{key}");
        }
    }

    #[test]
    fn cleaner_keys_default_to_kafkas_and_check_topic_rules() {
        let mut props = BrokerProps::default();
        for (key, value) in [
            ("log.cleanup.policy", "delete"),
            ("compression.type", "producer"),
            ("log.cleaner.enable", "true"),
            ("log.cleaner.threads", "1"),
            ("log.cleaner.dedupe.buffer.size", "134217728"),
            (
                "log.cleaner.io.max.bytes.per.second",
                "1.7976931348623157E308",
            ),
            ("log.cleaner.backoff.ms", "15000"),
            ("log.cleaner.delete.retention.ms", "86400000"),
            ("log.cleaner.min.compaction.lag.ms", "0"),
            ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
            ("log.cleaner.min.cleanable.ratio", "0.5"),
            ("log.segment.delete.delay.ms", "60000"),
        ] {
            assert_eq!(props.get(key).as_deref(), Some(value), "{key}");
        }
        for (key, value) in [
            ("log.cleanup.policy", "archive"),
            ("compression.type", "brotli"),
            ("log.cleaner.threads", "0"),
            ("log.cleaner.io.max.bytes.per.second", "0"),
            ("log.cleaner.io.max.bytes.per.second", "inf"),
            ("log.cleaner.min.cleanable.ratio", "1.5"),
            ("log.cleaner.dedupe.buffer.size", "10"),
        ] {
            assert!(
                matches!(
                    props.set(key, value, "test"),
                    Err(ConfigError::InvalidValue { .. })
                ),
                "{key}={value}"
            );
        }
        props
            .set("log.cleanup.policy", "compact", "test")
            .expect("valid");
        assert_eq!(
            props.topic_default("cleanup.policy").as_deref(),
            Some("compact")
        );
    }

    #[test]
    fn producer_id_expiration_defaults_to_kafkas_and_refuses_zero() {
        let mut props = BrokerProps::default();
        assert_eq!(
            props.get("producer.id.expiration.ms").as_deref(),
            Some("86400000")
        );
        assert_eq!(
            props.producer_expiration_check_interval(),
            Duration::from_secs(600)
        );
        for key in [
            "producer.id.expiration.ms",
            "producer.id.expiration.check.interval.ms",
        ] {
            assert!(
                matches!(
                    props.set(key, "0", "test"),
                    Err(ConfigError::InvalidValue { .. })
                ),
                "{key}"
            );
        }
        props
            .set("producer.id.expiration.ms", "60000", "test")
            .expect("valid");
        assert_eq!(props.producer_id_expiration_ms, 60_000);
    }

    #[test]
    fn connection_limits_and_timeouts_follow_kafka_conventions() {
        let mut props = BrokerProps::default();
        assert_eq!(props.connections_max_idle(), Some(Duration::from_secs(600)));
        assert_eq!(
            props.max_connections_for("10.0.0.1".parse().expect("ip")),
            i32::MAX as usize
        );
        props
            .set(
                "max.connections.per.ip.overrides",
                "127.0.0.2:1, [::1]:4,localhost:7",
                "t",
            )
            .expect("valid overrides");
        props
            .set("max.connections.per.ip", "2", "t")
            .expect("valid");
        assert_eq!(
            props.max_connections_for("127.0.0.2".parse().expect("ip")),
            1
        );
        assert_eq!(
            props.max_connections_for("127.0.0.1".parse().expect("ip")),
            7
        );
        assert_eq!(
            props.max_connections_for("10.0.0.1".parse().expect("ip")),
            2
        );
        assert!(
            props
                .set("max.connections.per.ip.overrides", "127.0.0.2", "t")
                .is_err()
        );
        assert!(
            props
                .set("max.connections.per.ip.overrides", "127.0.0.2:x", "t")
                .is_err()
        );
        for key in [
            "connections.max.idle.ms",
            "socket.request.read.timeout.ms",
            "queued.max.request.bytes",
        ] {
            props.set(key, "-1", "t").expect(key);
            assert!(props.set(key, "0", "t").is_err(), "{key}=0");
            assert!(props.set(key, "-2", "t").is_err(), "{key}=-2");
        }
        assert_eq!(props.connections_max_idle(), None);
        assert_eq!(props.socket_request_read_timeout(), None);
        assert_eq!(props.queued_max_request_bytes(), None);
        assert!(props.set("fetch.max.bytes", "1023", "t").is_err());
    }

    #[test]
    fn listen_addresses_take_host_names() {
        let addr = parse_listen_addr("localhost:9092").expect("localhost resolves");
        assert!(addr.ip().is_loopback(), "{addr}");
        assert_eq!(addr.port(), 9092);
        assert_eq!(
            parse_listen_addr("[::1]:0").expect("IPv6 literal"),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 0))
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:9404").expect("IPv4 literal"),
            SocketAddr::from(([127, 0, 0, 1], 9404))
        );
        for bad in ["localhost", ":9092", "localhost:99999", "127.0.0.1:x"] {
            assert!(parse_listen_addr(bad).is_err(), "{bad}");
        }
        let cli = cli_command()
            .try_get_matches_from(["strom-broker", "--listen", "localhost:0"])
            .and_then(|m| Cli::from_arg_matches(&m))
            .expect("--listen takes a host name");
        assert!(cli.listen.ip().is_loopback());
    }

    #[test]
    fn help_states_the_flush_policy_and_lists_every_key() {
        let help = cli_command().render_long_help().to_string();
        assert!(
            help.contains("survives a crash of the broker process"),
            "{help}"
        );
        assert!(help.contains("not a power loss"), "{help}");
        for key in BROKER_KEYS {
            assert!(
                help.contains(&format!("\n  {key}")),
                "{key} missing from --help"
            );
        }
    }

    #[test]
    fn node_id_from_ordinal() {
        assert_eq!(parse_node_id("7", None).expect("number"), 7);
        assert_eq!(
            parse_node_id("ordinal", Some("strom-main-broker-2")).expect("ordinal"),
            2
        );
        assert!(parse_node_id("ordinal", None).is_err());
        assert!(parse_node_id("ordinal", Some("nodash")).is_err());
        assert!(parse_node_id("-1", None).is_err());
    }
}
