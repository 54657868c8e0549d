//! Effective topic configuration: a topic's own overrides, else the broker's `log.*` default,
//! else Kafka's built-in default — and the `LogConfig` the storage layer runs with.
//!
//! DescribeConfigs reports the same resolution with its source, so what a user reads is exactly
//! what the log applies.

use std::collections::BTreeMap;

use strom_metadata::topic_config::{ConfigDef, TOPIC_CONFIGS};
use strom_storage::{CleanupPolicy, CompressionType, LogConfig, TimestampType};

use crate::config::BrokerProps;

/// Where an effective value comes from, with Kafka's DescribeConfigs source numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (`DYNAMIC_TOPIC_CONFIG`).
    Topic = 1,
    /// The broker's static `log.*` setting (`STATIC_BROKER_CONFIG`).
    StaticBroker = 4,
    /// Kafka's default (`DEFAULT_CONFIG`).
    Default = 5,
}

/// One resolved topic config entry.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveConfig {
    pub def: &'static ConfigDef,
    pub value: String,
    pub source: ConfigSource,
}

/// Resolves every known topic config for a topic with the given overrides.
pub fn effective_topic_configs(
    props: &BrokerProps,
    overrides: &BTreeMap<String, String>,
) -> Vec<EffectiveConfig> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            if let Some(value) = overrides.get(def.name) {
                EffectiveConfig {
                    def,
                    value: value.clone(),
                    source: ConfigSource::Topic,
                }
            } else if let Some(value) = props
                .topic_default(def.name)
                .filter(|value| value != def.default)
            {
                EffectiveConfig {
                    def,
                    value,
                    source: ConfigSource::StaticBroker,
                }
            } else {
                EffectiveConfig {
                    def,
                    value: def.default.to_string(),
                    source: ConfigSource::Default,
                }
            }
        })
        .collect()
}

fn value<'a>(configs: &'a [EffectiveConfig], name: &str) -> Option<&'a str> {
    configs
        .iter()
        .find(|c| c.def.name == name)
        .map(|c| c.value.as_str())
}

fn number<T: std::str::FromStr>(configs: &[EffectiveConfig], name: &str, fallback: T) -> T {
    value(configs, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(fallback)
}

/// The storage settings and `min.insync.replicas` of a topic.
pub fn log_config(props: &BrokerProps, overrides: &BTreeMap<String, String>) -> (LogConfig, i32) {
    let configs = effective_topic_configs(props, overrides);
    let defaults = LogConfig::default();
    // Values were validated when they were set (controller) or parsed (broker props), so the
    // fallbacks only guard against a config that an older version accepted.
    let flush_messages: i64 = number(&configs, "flush.messages", i64::MAX);
    let log = LogConfig {
        segment_bytes: number(&configs, "segment.bytes", defaults.segment_bytes),
        segment_ms: number(&configs, "segment.ms", defaults.segment_ms),
        retention_bytes: number(&configs, "retention.bytes", defaults.retention_bytes),
        retention_ms: number(&configs, "retention.ms", defaults.retention_ms),
        max_message_bytes: number(&configs, "max.message.bytes", defaults.max_message_bytes),
        index_interval_bytes: number(
            &configs,
            "index.interval.bytes",
            defaults.index_interval_bytes,
        ),
        flush_messages: u64::try_from(flush_messages).unwrap_or(u64::MAX),
        flush_ms: number(&configs, "flush.ms", defaults.flush_ms),
        message_timestamp_type: match value(&configs, "message.timestamp.type") {
            Some("LogAppendTime") => TimestampType::LogAppendTime,
            _ => TimestampType::CreateTime,
        },
        message_timestamp_before_max_ms: number(
            &configs,
            "message.timestamp.before.max.ms",
            defaults.message_timestamp_before_max_ms,
        ),
        message_timestamp_after_max_ms: number(
            &configs,
            "message.timestamp.after.max.ms",
            defaults.message_timestamp_after_max_ms,
        ),
        cleanup_policy: value(&configs, "cleanup.policy")
            .and_then(CleanupPolicy::parse)
            .unwrap_or_default(),
        delete_retention_ms: number(
            &configs,
            "delete.retention.ms",
            defaults.delete_retention_ms,
        ),
        min_compaction_lag_ms: number(
            &configs,
            "min.compaction.lag.ms",
            defaults.min_compaction_lag_ms,
        ),
        max_compaction_lag_ms: number(
            &configs,
            "max.compaction.lag.ms",
            defaults.max_compaction_lag_ms,
        ),
        min_cleanable_dirty_ratio: number(
            &configs,
            "min.cleanable.dirty.ratio",
            defaults.min_cleanable_dirty_ratio,
        ),
        compression_type: value(&configs, "compression.type")
            .and_then(CompressionType::parse)
            .unwrap_or_default(),
        file_delete_delay_ms: number(
            &configs,
            "file.delete.delay.ms",
            defaults.file_delete_delay_ms,
        ),
    };
    (log, number(&configs, "min.insync.replicas", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_override_wins_over_broker_default_over_kafka_default() {
        let props = BrokerProps {
            log_retention_ms: 1000,
            ..BrokerProps::default()
        };
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "4096".to_string());
        let configs = effective_topic_configs(&props, &overrides);
        let find = |name: &str| {
            configs
                .iter()
                .find(|c| c.def.name == name)
                .expect("known config")
                .clone()
        };
        assert_eq!(find("segment.bytes").value, "4096");
        assert_eq!(find("segment.bytes").source, ConfigSource::Topic);
        assert_eq!(find("retention.ms").value, "1000");
        assert_eq!(find("retention.ms").source, ConfigSource::StaticBroker);
        assert_eq!(find("cleanup.policy").source, ConfigSource::Default);

        let (log, min_isr) = log_config(&props, &overrides);
        assert_eq!(log.segment_bytes, 4096);
        assert_eq!(log.retention_ms, 1000);
        assert_eq!(min_isr, 1);
    }

    #[test]
    fn timestamp_bounds_follow_kafka_defaults_broker_keys_and_topic_overrides() {
        let (log, _) = log_config(&BrokerProps::default(), &BTreeMap::new());
        assert_eq!(log.message_timestamp_before_max_ms, i64::MAX);
        assert_eq!(log.message_timestamp_after_max_ms, 3_600_000);

        let props = BrokerProps {
            log_message_timestamp_after_max_ms: 60_000,
            ..BrokerProps::default()
        };
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "message.timestamp.before.max.ms".to_string(),
            "86400000".to_string(),
        );
        let (log, _) = log_config(&props, &overrides);
        assert_eq!(log.message_timestamp_after_max_ms, 60_000);
        assert_eq!(log.message_timestamp_before_max_ms, 86_400_000);
    }

    #[test]
    fn log_append_time_is_mapped() {
        let mut overrides = BTreeMap::new();
        overrides.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let (log, _) = log_config(&BrokerProps::default(), &overrides);
        assert_eq!(log.message_timestamp_type, TimestampType::LogAppendTime);
    }

    #[test]
    fn compaction_configs_come_from_the_topic_then_the_broker_then_kafka() {
        let (log, _) = log_config(&BrokerProps::default(), &BTreeMap::new());
        assert_eq!(log.cleanup_policy, CleanupPolicy::default());
        assert_eq!(log.compression_type, CompressionType::Producer);
        assert_eq!(log.delete_retention_ms, 86_400_000);
        assert_eq!(log.min_cleanable_dirty_ratio, 0.5);

        let props = BrokerProps {
            log_cleanup_policy: "compact".to_string(),
            compression_type: "zstd".to_string(),
            log_cleaner_delete_retention_ms: 1000,
            log_cleaner_min_cleanable_ratio: 0.2,
            ..BrokerProps::default()
        };
        let (log, _) = log_config(&props, &BTreeMap::new());
        assert_eq!(
            log.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(log.compression_type, CompressionType::Zstd);
        assert_eq!(log.delete_retention_ms, 1000);
        assert_eq!(log.min_cleanable_dirty_ratio, 0.2);

        let overrides = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact, delete".to_string()),
            ("compression.type".to_string(), "lz4".to_string()),
            ("min.compaction.lag.ms".to_string(), "5000".to_string()),
            ("max.compaction.lag.ms".to_string(), "60000".to_string()),
        ]);
        let (log, _) = log_config(&props, &overrides);
        assert_eq!(
            log.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
        assert_eq!(log.compression_type, CompressionType::Lz4);
        assert_eq!(log.min_compaction_lag_ms, 5000);
        assert_eq!(log.max_compaction_lag_ms, 60_000);
    }

    #[test]
    fn file_delete_delay_comes_from_the_topic_then_the_broker_then_kafka() {
        let (log, _) = log_config(&BrokerProps::default(), &BTreeMap::new());
        assert_eq!(log.file_delete_delay_ms, 60_000);
        let props = BrokerProps {
            log_segment_delete_delay_ms: 5_000,
            ..BrokerProps::default()
        };
        let (log, _) = log_config(&props, &BTreeMap::new());
        assert_eq!(log.file_delete_delay_ms, 5_000);
        let overrides = BTreeMap::from([("file.delete.delay.ms".to_string(), "0".to_string())]);
        let (log, _) = log_config(&props, &overrides);
        assert_eq!(log.file_delete_delay_ms, 0);
    }
}
