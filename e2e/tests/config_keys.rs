//! The broker configuration the operator writes is configuration the broker accepts: the keys
//! users may put in `Cluster.spec.config`, the keys the operator renders itself, and the flags
//! of the broker container. A Cluster that passes the operator's validation never
//! crash-loops its brokers on an unknown key or flag.

use clap::Parser;
use strom_broker::config::{BROKER_KEYS, BrokerConfig, BrokerProps, Cli};

#[test]
fn every_key_the_operator_allows_is_one_the_broker_accepts() {
    for key in strom_crds::BROKER_CONFIG_KEYS {
        assert!(
            BROKER_KEYS.contains(key),
            "{key} is allowed by the operator but unknown to the broker"
        );
        let defaults = BrokerProps::default();
        let value = defaults
            .get(key)
            .unwrap_or_else(|| panic!("the broker reports no value for {key}"));
        let mut props = BrokerProps::default();
        props
            .set(key, &value, "test")
            .unwrap_or_else(|error| panic!("{key}={value}: {error}"));
    }
}

#[test]
fn every_key_the_operator_renders_is_one_the_broker_accepts() {
    for key in strom_crds::OPERATOR_BROKER_KEYS {
        assert!(
            BROKER_KEYS.contains(key),
            "the operator renders {key} but the broker does not know it"
        );
        assert!(
            !strom_crds::BROKER_CONFIG_KEYS.contains(key),
            "{key} is derived by the operator, so spec.config may not set it"
        );
    }
}

/// Broker 1 of a 3-voter Cluster `demo` in namespace `kafka` on a node in `zone-b`, as the
/// kubelet starts it from the operator's StatefulSet (`$(POD_NAME)` and `$(POD_RACK)`
/// expanded; the operator's snapshot `three_voters_brokers` pins the same arguments). The
/// node id is given as a number: `ordinal` reads `POD_NAME`, which a test cannot set safely.
#[test]
fn the_broker_starts_from_the_configuration_the_operator_renders() {
    let dir = tempfile::tempdir().expect("temp dir");
    let properties = dir.path().join("server.properties");
    let voters = (0..3)
        .map(|id| format!("{id}@demo-broker-{id}.demo-brokers.kafka.svc:9093"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::write(
        &properties,
        format!(
            "# Managed by strom-operator from the Cluster spec; edits are overwritten.\n\
             controller.quorum.voters={voters}\nmin.insync.replicas=2\n"
        ),
    )
    .expect("write server.properties");
    let properties = properties.display().to_string();
    let data_dir = dir.path().join("data").display().to_string();
    let args = [
        "strom-broker",
        "--config",
        &properties,
        "--data-dir",
        &data_dir,
        "--listen",
        "0.0.0.0:9092",
        "--advertised-listener",
        "demo-broker-1.demo-brokers.kafka.svc:9092",
        "--controller-listen",
        "0.0.0.0:9093",
        "--controller-advertised-listener",
        "demo-broker-1.demo-brokers.kafka.svc:9093",
        "--admin-listen",
        "0.0.0.0:9404",
        "--node-id",
        "1",
        "--override",
        "broker.rack=zone-b",
    ];
    let cli = Cli::try_parse_from(args).unwrap_or_else(|error| panic!("flags refused: {error}"));
    let config = BrokerConfig::from_cli(cli).unwrap_or_else(|error| panic!("config: {error}"));
    assert_eq!(config.node_id, 1);
    assert_eq!(config.rack.as_deref(), Some("zone-b"));
    assert_eq!(config.props.min_insync_replicas, 2);
}
