//! The broker config keys the operator lets users put in `Cluster.spec.config` are exactly keys
//! the broker accepts, so a Cluster that passes the operator's validation never crash-loops its
//! brokers on an unknown key.

use strom_broker::config::{BROKER_KEYS, BrokerProps};

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
    // broker.rack is the broker's own: the operator derives it from the topology, not from spec.config.
    let only_broker: Vec<&&str> = BROKER_KEYS
        .iter()
        .filter(|key| !strom_crds::BROKER_CONFIG_KEYS.contains(key))
        .collect();
    assert_eq!(only_broker, vec![&"broker.rack"]);
}
