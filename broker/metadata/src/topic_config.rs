//! The topic configs Kafka defines that Strom honours: their types, defaults and validation.
//!
//! Names, defaults and bounds are Kafka's (`LogConfig` / `TopicConfig`), so tools that set or
//! describe topic configs behave as they do against Kafka. A key that is not listed here is
//! rejected rather than stored, so nobody believes a setting is in effect when it is not.

use std::collections::BTreeMap;

use thiserror::Error;

/// The type of a config value and the values it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConfigKind {
    /// A 32-bit integer of at least `min`.
    Int { min: i32 },
    /// A 64-bit integer of at least `min`.
    Long { min: i64 },
    /// One of `allowed`, compared exactly (Kafka's `ValidString`).
    Choice { allowed: &'static [&'static str] },
    /// A comma-separated list whose items are each one of `allowed` (Kafka's `ValidList`).
    List { allowed: &'static [&'static str] },
    /// `true` or `false`, in any case (Kafka's BOOLEAN).
    Bool,
    /// A floating-point number within `min..=max` (Kafka's DOUBLE with a `Range`).
    Double { min: f64, max: f64 },
    /// Replicas as `partition:brokerId` pairs, comma-separated, or `*` for every replica; may
    /// be empty (Kafka's `ThrottledReplicaListValidator`).
    ReplicaList,
}

// The bounds of `Double` are constants of the config table, never NaN, so equality is total.
impl Eq for ConfigKind {}

impl ConfigKind {
    /// The `ConfigType` number Kafka reports in DescribeConfigs (KIP-569): INT 3, LONG 5,
    /// STRING 2, LIST 7, BOOLEAN 1, DOUBLE 6.
    pub fn kafka_config_type(&self) -> i8 {
        match self {
            Self::Bool => 1,
            Self::Int { .. } => 3,
            Self::Long { .. } => 5,
            Self::Double { .. } => 6,
            Self::Choice { .. } => 2,
            Self::List { .. } | Self::ReplicaList => 7,
        }
    }
}

/// One topic config definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigKind,
    pub doc: &'static str,
    pub sensitive: bool,
}

pub const RETENTION_MS: &str = "retention.ms";
pub const RETENTION_BYTES: &str = "retention.bytes";
pub const SEGMENT_BYTES: &str = "segment.bytes";
pub const SEGMENT_MS: &str = "segment.ms";
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
pub const CLEANUP_POLICY: &str = "cleanup.policy";
pub const COMPRESSION_TYPE: &str = "compression.type";
pub const DELETE_RETENTION_MS: &str = "delete.retention.ms";
pub const FILE_DELETE_DELAY_MS: &str = "file.delete.delay.ms";
pub const MAX_COMPACTION_LAG_MS: &str = "max.compaction.lag.ms";
pub const MIN_CLEANABLE_DIRTY_RATIO: &str = "min.cleanable.dirty.ratio";
pub const MIN_COMPACTION_LAG_MS: &str = "min.compaction.lag.ms";
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
pub const MESSAGE_TIMESTAMP_AFTER_MAX_MS: &str = "message.timestamp.after.max.ms";
pub const MESSAGE_TIMESTAMP_BEFORE_MAX_MS: &str = "message.timestamp.before.max.ms";
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
pub const FLUSH_MESSAGES: &str = "flush.messages";
pub const FLUSH_MS: &str = "flush.ms";
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";
pub const LEADER_REPLICATION_THROTTLED_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICATION_THROTTLED_REPLICAS: &str = "follower.replication.throttled.replicas";

/// Every topic config Strom accepts, sorted by name.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: CLEANUP_POLICY,
        default: "delete",
        kind: ConfigKind::List {
            allowed: &["delete", "compact"],
        },
        doc: "How old log segments are cleaned up: \"delete\" removes segments past the \
              retention time or size; \"compact\" keeps the latest record of every key (the log \
              cleaner removes older ones and, after delete.retention.ms, tombstones); both may be \
              given. Records without a key are refused on compacted topics (INVALID_RECORD).",
        sensitive: false,
    },
    ConfigDef {
        name: COMPRESSION_TYPE,
        default: "producer",
        kind: ConfigKind::Choice {
            allowed: &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        },
        doc: "The codec batches are stored with: \"producer\" keeps the producer's codec; any \
              other value makes the broker recompress batches that arrive in another codec.",
        sensitive: false,
    },
    ConfigDef {
        name: DELETE_RETENTION_MS,
        default: "86400000",
        kind: ConfigKind::Long { min: 0 },
        doc: "On compacted topics, how long a tombstone (a record with a null value) is kept \
              after the log cleaner first saw it, so that consumers reading from the start see \
              the delete.",
        sensitive: false,
    },
    ConfigDef {
        name: FILE_DELETE_DELAY_MS,
        default: "60000",
        kind: ConfigKind::Long { min: 0 },
        doc: "The time to wait before deleting a file from the filesystem: a segment removed \
              by retention, cleaning or truncation keeps its files under a .deleted name this \
              long, so that reads which started before can finish.",
        sensitive: false,
    },
    ConfigDef {
        name: FLUSH_MESSAGES,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 1 },
        doc: "Force an fsync of the log after this many messages. Durability normally comes \
              from replication, so the default never forces one.",
        sensitive: false,
    },
    ConfigDef {
        name: FLUSH_MS,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        doc: "Force an fsync of the log when a message has been unflushed for this many \
              milliseconds.",
        sensitive: false,
    },
    ConfigDef {
        name: FOLLOWER_REPLICATION_THROTTLED_REPLICAS,
        default: "",
        kind: ConfigKind::ReplicaList,
        doc: "The replicas whose fetching from their leader counts against the follower \
              broker's follower.replication.throttled.rate: partition:brokerId pairs \
              (0:1,1:2), or * for every replica of the topic. Replicas in sync are never held \
              back.",
        sensitive: false,
    },
    ConfigDef {
        name: INDEX_INTERVAL_BYTES,
        default: "4096",
        kind: ConfigKind::Int { min: 0 },
        doc: "How many bytes of records lie between two entries of the offset index.",
        sensitive: false,
    },
    ConfigDef {
        name: LEADER_REPLICATION_THROTTLED_REPLICAS,
        default: "",
        kind: ConfigKind::ReplicaList,
        doc: "The replicas whose serving to followers counts against the leader broker's \
              leader.replication.throttled.rate: partition:brokerId pairs (0:1,1:2), the \
              broker being the leader, or * for every replica of the topic. Followers in the \
              ISR are never held back.",
        sensitive: false,
    },
    ConfigDef {
        name: MAX_COMPACTION_LAG_MS,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 1 },
        doc: "On compacted topics, the longest a record may stay uncompacted: a log whose \
              oldest dirty record is older than this is cleaned whatever its dirty ratio.",
        sensitive: false,
    },
    ConfigDef {
        name: MAX_MESSAGE_BYTES,
        default: "1048588",
        kind: ConfigKind::Int { min: 0 },
        doc: "The largest record batch size accepted for this topic, in bytes.",
        sensitive: false,
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_AFTER_MAX_MS,
        default: "3600000",
        kind: ConfigKind::Long { min: 0 },
        doc: "With CreateTime, how far after the broker's clock a record timestamp may lie; \
              records further in the future are rejected with INVALID_TIMESTAMP (KIP-937; \
              Kafka's default since 4.0 is one hour).",
        sensitive: false,
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_BEFORE_MAX_MS,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        doc: "With CreateTime, how far before the broker's clock a record timestamp may lie; \
              older records are rejected with INVALID_TIMESTAMP (KIP-937). The default sets no \
              limit.",
        sensitive: false,
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_TYPE,
        default: "CreateTime",
        kind: ConfigKind::Choice {
            allowed: &["CreateTime", "LogAppendTime"],
        },
        doc: "Whether record timestamps are the producer's (CreateTime) or the time the broker \
              appended them (LogAppendTime).",
        sensitive: false,
    },
    ConfigDef {
        name: MIN_CLEANABLE_DIRTY_RATIO,
        default: "0.5",
        kind: ConfigKind::Double { min: 0.0, max: 1.0 },
        doc: "On compacted topics, the share of the log that must be uncleaned (written since \
              the last cleaning) before the log cleaner cleans it again.",
        sensitive: false,
    },
    ConfigDef {
        name: MIN_COMPACTION_LAG_MS,
        default: "0",
        kind: ConfigKind::Long { min: 0 },
        doc: "On compacted topics, the shortest time a record stays uncompacted: newer records \
              are never cleaned.",
        sensitive: false,
    },
    ConfigDef {
        name: MIN_INSYNC_REPLICAS,
        default: "1",
        kind: ConfigKind::Int { min: 1 },
        doc: "With acks=all, the fewest in-sync replicas that must hold a write for it to \
              succeed; below that producers get NOT_ENOUGH_REPLICAS.",
        sensitive: false,
    },
    ConfigDef {
        name: RETENTION_BYTES,
        default: "-1",
        kind: ConfigKind::Long { min: i64::MIN },
        doc: "The size a partition's log may grow to before old segments are deleted; -1 means \
              no size limit.",
        sensitive: false,
    },
    ConfigDef {
        name: RETENTION_MS,
        default: "604800000",
        kind: ConfigKind::Long { min: -1 },
        doc: "How long a segment is kept after its newest record before it is deleted; -1 means \
              no time limit.",
        sensitive: false,
    },
    ConfigDef {
        name: SEGMENT_BYTES,
        default: "1073741824",
        kind: ConfigKind::Int { min: 14 },
        doc: "The size at which a log segment is rolled.",
        sensitive: false,
    },
    ConfigDef {
        name: SEGMENT_MS,
        default: "604800000",
        kind: ConfigKind::Long { min: 1 },
        doc: "The age at which a log segment is rolled even if it is not full.",
        sensitive: false,
    },
    ConfigDef {
        name: UNCLEAN_LEADER_ELECTION_ENABLE,
        default: "false",
        kind: ConfigKind::Bool,
        doc: "Whether a replica outside the ISR may become leader when no in-sync replica is \
              alive, as a last resort that may lose acknowledged records. Unset, the \
              controller's broker setting of the same name applies.",
        sensitive: false,
    },
];

/// Why a topic config was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigValidationError {
    #[error("Unknown topic config name: {name}")]
    UnknownKey { name: String },
    #[error("Invalid value {value} for configuration {name}: {reason}")]
    InvalidValue {
        name: String,
        value: String,
        reason: String,
    },
    /// A broker config that only the broker's configuration file sets.
    #[error(
        "Cannot update broker config {name} dynamically; the configs that can be are: {dynamic}"
    )]
    NotDynamic { name: String, dynamic: String },
}

impl ConfigValidationError {
    /// The config key the error is about.
    pub fn key(&self) -> &str {
        match self {
            Self::UnknownKey { name }
            | Self::InvalidValue { name, .. }
            | Self::NotDynamic { name, .. } => name,
        }
    }
}

/// The definition of topic config `name`, if Strom supports it.
pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Checks that `name` is a supported topic config and `value` a valid value for it.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigValidationError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigValidationError::UnknownKey {
        name: name.to_owned(),
    })?;
    let invalid = |reason: String| ConfigValidationError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let trimmed = value.trim();
    match def.kind {
        ConfigKind::Int { min } => {
            let parsed: i32 = trimmed
                .parse()
                .map_err(|_| invalid("Not a number of type INT".to_owned()))?;
            if parsed < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
        }
        ConfigKind::Long { min } => {
            let parsed: i64 = trimmed
                .parse()
                .map_err(|_| invalid("Not a number of type LONG".to_owned()))?;
            if parsed < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
        }
        ConfigKind::Double { min, max } => {
            let parsed: f64 = trimmed
                .parse()
                .map_err(|_| invalid("Not a number of type DOUBLE".to_owned()))?;
            if !(min..=max).contains(&parsed) {
                return Err(invalid(format!("Value must be between {min} and {max}")));
            }
        }
        ConfigKind::Bool => {
            parse_bool(trimmed)
                .ok_or_else(|| invalid("Expected value to be either true or false".to_owned()))?;
        }
        ConfigKind::Choice { allowed } => {
            if !allowed.contains(&trimmed) {
                return Err(invalid(format!(
                    "String must be one of: {}",
                    allowed.join(", ")
                )));
            }
        }
        ConfigKind::List { allowed } => {
            let items = list_items(trimmed);
            if items.is_empty() {
                return Err(invalid(
                    "The list must contain at least one value".to_owned(),
                ));
            }
            for item in &items {
                if !allowed.contains(item) {
                    return Err(invalid(format!(
                        "Invalid value '{item}'; the list items must be among: {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
        ConfigKind::ReplicaList => {
            parse_replica_list(trimmed).map_err(invalid)?;
        }
    }
    Ok(())
}

/// A parsed `*.replication.throttled.replicas` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaList {
    /// `*`: every replica of the topic.
    All,
    /// `(partition, broker id)` pairs, as listed.
    Replicas(Vec<(i32, i32)>),
}

impl ReplicaList {
    /// The partitions of the topic listed for `broker`, or `None` for all of them.
    pub fn partitions_of(&self, broker: i32) -> Option<Vec<i32>> {
        match self {
            Self::All => None,
            Self::Replicas(pairs) => Some(
                pairs
                    .iter()
                    .filter(|(_, b)| *b == broker)
                    .map(|(p, _)| *p)
                    .collect(),
            ),
        }
    }
}

/// Parses a replica list as Kafka accepts it: `*`, or comma-separated `partition:brokerId`
/// pairs of non-negative numbers, blanks around items ignored; empty means no replica.
pub fn parse_replica_list(value: &str) -> Result<ReplicaList, String> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items.concat() == "*" {
        return Ok(ReplicaList::All);
    }
    let refuse = || {
        "must be the literal '*' or a list of replicas in the following format: \
         [partitionId]:[brokerId],[partitionId]:[brokerId],..."
            .to_owned()
    };
    let mut pairs = Vec::new();
    for item in items.into_iter().filter(|item| !item.is_empty()) {
        let (partition, broker) = item.split_once(':').ok_or_else(refuse)?;
        let number = |text: &str| -> Result<i32, String> {
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse());
            }
            text.parse()
                .map_err(|_| format!("{text} in {item} is not a partition or broker id"))
        };
        pairs.push((number(partition)?, number(broker)?));
    }
    Ok(ReplicaList::Replicas(pairs))
}

/// A boolean config value as Kafka reads it: `true` or `false` in any case, trimmed.
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// The items of a list-typed config value, trimmed, empty items dropped.
pub fn list_items(value: &str) -> Vec<&str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect()
}

/// Where a config's effective value comes from, with Kafka's DescribeConfigs source numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (DYNAMIC_TOPIC_CONFIG = 1).
    Topic,
    /// Not set: the default applies (DEFAULT_CONFIG = 5).
    Default,
}

impl ConfigSource {
    pub fn kafka_config_source(&self) -> i8 {
        match self {
            Self::Topic => 1,
            Self::Default => 5,
        }
    }
}

/// The effective value of one topic config, as CreateTopics and DescribeConfigs report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfigEntry {
    pub name: &'static str,
    pub value: String,
    pub source: ConfigSource,
    pub sensitive: bool,
    pub def: &'static ConfigDef,
}

/// Every supported topic config with its effective value given the explicitly set `configs`.
pub fn effective_topic_configs(configs: &BTreeMap<String, String>) -> Vec<TopicConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| match configs.get(def.name) {
            Some(value) => TopicConfigEntry {
                name: def.name,
                value: value.clone(),
                source: ConfigSource::Topic,
                sensitive: def.sensitive,
                def,
            },
            None => TopicConfigEntry {
                name: def.name,
                value: def.default.to_owned(),
                source: ConfigSource::Default,
                sensitive: def.sensitive,
                def,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_valid_and_names_are_sorted_and_unique() {
        for def in TOPIC_CONFIGS {
            validate_topic_config(def.name, def.default)
                .unwrap_or_else(|e| panic!("default of {} is invalid: {e}", def.name));
        }
        let names: Vec<_> = TOPIC_CONFIGS.iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn validation_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("retention.ms", "-1", true),
            ("retention.ms", "0", true),
            ("retention.ms", "-2", false),
            ("retention.ms", "abc", false),
            ("retention.bytes", "-1", true),
            ("retention.bytes", "1073741824", true),
            ("segment.bytes", "14", true),
            ("segment.bytes", "13", false),
            ("segment.bytes", "4294967296", false),
            ("segment.ms", "1", true),
            ("segment.ms", "0", false),
            ("max.message.bytes", "0", true),
            ("max.message.bytes", "-1", false),
            ("cleanup.policy", "delete", true),
            ("cleanup.policy", " delete ", true),
            ("cleanup.policy", "compact", true),
            ("cleanup.policy", "delete,compact", true),
            ("cleanup.policy", "compact, delete", true),
            ("compression.type", "producer", true),
            ("compression.type", "lz4", true),
            ("compression.type", "uncompressed", true),
            ("compression.type", "none", false),
            ("compression.type", "LZ4", false),
            ("delete.retention.ms", "0", true),
            ("delete.retention.ms", "-1", false),
            ("file.delete.delay.ms", "0", true),
            ("file.delete.delay.ms", "60000", true),
            ("file.delete.delay.ms", "-1", false),
            ("min.compaction.lag.ms", "0", true),
            ("min.compaction.lag.ms", "-1", false),
            ("max.compaction.lag.ms", "1", true),
            ("max.compaction.lag.ms", "0", false),
            ("min.cleanable.dirty.ratio", "0", true),
            ("min.cleanable.dirty.ratio", "0.01", true),
            ("min.cleanable.dirty.ratio", "1", true),
            ("min.cleanable.dirty.ratio", "1.5", false),
            ("min.cleanable.dirty.ratio", "-0.1", false),
            ("min.cleanable.dirty.ratio", "half", false),
            ("cleanup.policy", "archive", false),
            ("cleanup.policy", "", false),
            ("message.timestamp.type", "CreateTime", true),
            ("message.timestamp.type", "LogAppendTime", true),
            ("message.timestamp.type", "createtime", false),
            ("min.insync.replicas", "2", true),
            ("min.insync.replicas", "0", false),
            ("flush.messages", "1", true),
            ("flush.messages", "0", false),
            ("flush.ms", "0", true),
            ("flush.ms", "-1", false),
            ("index.interval.bytes", "0", true),
            ("index.interval.bytes", "x", false),
            ("unclean.leader.election.enable", "true", true),
            ("unclean.leader.election.enable", "FALSE", true),
            ("unclean.leader.election.enable", "yes", false),
            ("leader.replication.throttled.replicas", "", true),
            ("leader.replication.throttled.replicas", "*", true),
            ("leader.replication.throttled.replicas", " * ", true),
            ("leader.replication.throttled.replicas", "0:1,1:2", true),
            ("leader.replication.throttled.replicas", "0:1, 1:2 ,", true),
            ("leader.replication.throttled.replicas", "0:1,*", false),
            ("leader.replication.throttled.replicas", "0", false),
            ("leader.replication.throttled.replicas", "0:", false),
            ("leader.replication.throttled.replicas", "a:1", false),
            ("leader.replication.throttled.replicas", "-1:1", false),
            ("leader.replication.throttled.replicas", "0:1:2", false),
            (
                "leader.replication.throttled.replicas",
                "0:99999999999",
                false,
            ),
            ("follower.replication.throttled.replicas", "3:0", true),
            ("follower.replication.throttled.replicas", "all", false),
            ("no.such.config", "1", false),
        ];
        for (name, value, ok) in cases {
            assert_eq!(
                validate_topic_config(name, value).is_ok(),
                *ok,
                "{name}={value}"
            );
        }
    }

    #[test]
    fn errors_name_the_key_and_reason() {
        let err = validate_topic_config("cleanup.policy", "archive").expect_err("refused");
        assert_eq!(err.key(), "cleanup.policy");
        assert!(
            err.to_string()
                .contains("the list items must be among: delete, compact"),
            "{err}"
        );
        let err = validate_topic_config("min.cleanable.dirty.ratio", "2").expect_err("refused");
        assert!(err.to_string().contains("between 0 and 1"), "{err}");
        let err = validate_topic_config("bogus", "1").expect_err("unknown key");
        assert_eq!(err.to_string(), "Unknown topic config name: bogus");
    }

    #[test]
    fn replica_lists_name_the_partitions_of_one_broker() {
        let list = parse_replica_list("0:1, 1:2,2:1").expect("valid");
        assert_eq!(list.partitions_of(1), Some(vec![0, 2]));
        assert_eq!(list.partitions_of(2), Some(vec![1]));
        assert_eq!(list.partitions_of(3), Some(vec![]));
        assert_eq!(
            parse_replica_list("*").expect("valid").partitions_of(3),
            None
        );
        assert_eq!(
            parse_replica_list("").expect("valid"),
            ReplicaList::Replicas(vec![])
        );
        let err = validate_topic_config("leader.replication.throttled.replicas", "0-1")
            .expect_err("refused");
        assert_eq!(
            err.to_string(),
            "Invalid value 0-1 for configuration leader.replication.throttled.replicas: must be \
             the literal '*' or a list of replicas in the following format: \
             [partitionId]:[brokerId],[partitionId]:[brokerId],..."
        );
    }

    #[test]
    fn effective_configs_mark_explicit_values() {
        let explicit = BTreeMap::from([("retention.ms".to_owned(), "5".to_owned())]);
        let entries = effective_topic_configs(&explicit);
        assert_eq!(entries.len(), TOPIC_CONFIGS.len());
        let retention = entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .expect("listed");
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("5", ConfigSource::Topic)
        );
        let segment = entries
            .iter()
            .find(|e| e.name == "segment.ms")
            .expect("listed");
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("604800000", ConfigSource::Default)
        );
    }
}
