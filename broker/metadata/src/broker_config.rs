//! The broker configs that can be changed while brokers run (Kafka's dynamic broker configs,
//! set with IncrementalAlterConfigs on a BROKER resource): their definitions and validation.
//!
//! Only the replication throttles are dynamic (KIP-73, the settings `kafka-reassign-partitions
//! --throttle` writes per broker); every other broker setting comes from the broker's
//! configuration file, so a dynamic value for it is refused rather than stored unapplied.

use crate::image::MetadataImage;
use crate::topic_config::{ConfigDef, ConfigKind, ConfigValidationError};

pub const LEADER_REPLICATION_THROTTLED_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_REPLICATION_THROTTLED_RATE: &str = "follower.replication.throttled.rate";

/// Kafka's `QuotaConfig.QUOTA_BYTES_PER_SECOND_DEFAULT`: no throttle.
pub const UNTHROTTLED_RATE: i64 = i64::MAX;

/// Every broker config settable at run time, sorted by name.
pub const DYNAMIC_BROKER_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        name: FOLLOWER_REPLICATION_THROTTLED_RATE,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        doc: "The bytes per second this broker may fetch as a follower for the replicas its \
              topics list in follower.replication.throttled.replicas, measured over windows \
              of one second; the default throttles nothing.",
        sensitive: false,
    },
    ConfigDef {
        name: LEADER_REPLICATION_THROTTLED_RATE,
        default: "9223372036854775807",
        kind: ConfigKind::Long { min: 0 },
        doc: "The bytes per second this broker may send as a leader to followers of the \
              replicas its topics list in leader.replication.throttled.replicas, measured over \
              windows of one second; the default throttles nothing.",
        sensitive: false,
    },
];

/// The definition of dynamic broker config `name`, if it is one.
pub fn dynamic_broker_config_def(name: &str) -> Option<&'static ConfigDef> {
    DYNAMIC_BROKER_CONFIGS.iter().find(|def| def.name == name)
}

/// The refusal of broker config `name`, which only the configuration file sets.
pub fn not_dynamic(name: &str) -> ConfigValidationError {
    ConfigValidationError::NotDynamic {
        name: name.to_owned(),
        dynamic: DYNAMIC_BROKER_CONFIGS
            .iter()
            .map(|d| d.name)
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Checks that `name` may be set on a running broker and `value` is valid for it.
pub fn validate_broker_config(name: &str, value: &str) -> Result<(), ConfigValidationError> {
    let def = dynamic_broker_config_def(name).ok_or_else(|| not_dynamic(name))?;
    let ConfigKind::Long { min } = def.kind else {
        return Ok(());
    };
    let invalid = |reason: &str| ConfigValidationError::InvalidValue {
        name: name.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed: i64 = value
        .trim()
        .parse()
        .map_err(|_| invalid("Not a number of type LONG"))?;
    if parsed < min {
        return Err(invalid(&format!("Value must be at least {min}")));
    }
    Ok(())
}

/// The throttle rate `name` of broker `node_id` as set at run time: on the broker, else
/// cluster-wide. `None` when neither sets it (or, never expected as values are validated when
/// set, the value does not parse).
pub fn configured_rate(image: &MetadataImage, node_id: i32, name: &str) -> Option<i64> {
    image
        .dynamic_broker_value(node_id, name)?
        .0
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_throttle_rates_are_dynamic_and_they_take_non_negative_longs() {
        let cases: &[(&str, &str, bool)] = &[
            (LEADER_REPLICATION_THROTTLED_RATE, "0", true),
            (LEADER_REPLICATION_THROTTLED_RATE, "2097152", true),
            (LEADER_REPLICATION_THROTTLED_RATE, " 10 ", true),
            (
                LEADER_REPLICATION_THROTTLED_RATE,
                "9223372036854775807",
                true,
            ),
            (LEADER_REPLICATION_THROTTLED_RATE, "-1", false),
            (LEADER_REPLICATION_THROTTLED_RATE, "2MB", false),
            (FOLLOWER_REPLICATION_THROTTLED_RATE, "1", true),
            (FOLLOWER_REPLICATION_THROTTLED_RATE, "", false),
            ("log.retention.ms", "1", false),
        ];
        for (name, value, ok) in cases {
            assert_eq!(
                validate_broker_config(name, value).is_ok(),
                *ok,
                "{name}={value}"
            );
        }
        for def in DYNAMIC_BROKER_CONFIGS {
            validate_broker_config(def.name, def.default).expect("default is valid");
        }
        let err = validate_broker_config("log.retention.ms", "1").expect_err("static");
        assert_eq!(
            err.to_string(),
            "Cannot update broker config log.retention.ms dynamically; the configs that can be \
             are: follower.replication.throttled.rate, leader.replication.throttled.rate"
        );
    }

    #[test]
    fn configured_rates_prefer_the_broker_then_the_cluster_default() {
        use crate::records::{ConfigResource, MetadataRecord};
        let set =
            |resource: ConfigResource, name: &str, value: Option<&str>| MetadataRecord::Config {
                resource,
                name: name.to_owned(),
                value: value.map(str::to_owned),
            };
        let leader = LEADER_REPLICATION_THROTTLED_RATE;
        let follower = FOLLOWER_REPLICATION_THROTTLED_RATE;
        let image = MetadataImage::empty("c")
            .apply(&set(ConfigResource::Broker(1), leader, Some("2097152")))
            .apply(&set(ConfigResource::BrokerDefault, leader, Some("1000")))
            .apply(&set(ConfigResource::BrokerDefault, follower, Some("500")));
        assert_eq!(configured_rate(&image, 1, leader), Some(2_097_152));
        assert_eq!(configured_rate(&image, 1, follower), Some(500));
        assert_eq!(configured_rate(&image, 2, leader), Some(1000));

        let image = image.apply(&set(ConfigResource::BrokerDefault, follower, None));
        assert_eq!(configured_rate(&image, 1, follower), None, "static applies");
        assert_eq!(configured_rate(&MetadataImage::empty("c"), 1, leader), None);
    }
}
