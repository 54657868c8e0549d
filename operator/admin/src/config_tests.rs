//! [`ConfigAdmin`] against the fake cluster: effective topic configs with their defaults,
//! and BROKER resources read and changed on their own broker.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::fake_broker::{Bound, FakeBroker, FakeKafka};
use crate::{BrokerAdmin, ConfigAdmin, ConfigChanges, ConfigResource, KafkaAdmin, ResponseError};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Brokers 1 and 2, broker 2 the controller; the client bootstraps through broker 1.
async fn two_brokers() -> (Arc<FakeKafka>, Vec<FakeBroker>, KafkaAdmin) {
    let bound = [Bound::new().await, Bound::new().await];
    let cluster = FakeKafka::new(
        bound
            .iter()
            .zip(1..)
            .map(|(b, id)| (id, b.addr()))
            .collect(),
        2,
    );
    let brokers: Vec<FakeBroker> = bound
        .into_iter()
        .zip(1..)
        .map(|(b, id)| b.serve(cluster.handler(id)))
        .collect();
    let admin = KafkaAdmin::connect(&brokers[0].address(), TIMEOUT)
        .await
        .expect("connect");
    (cluster, brokers, admin)
}

fn owned(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn effective_topic_configs_include_defaults_and_name_missing_topics() {
    let (_cluster, _brokers, admin) = two_brokers().await;
    let configs = owned(&[("min.insync.replicas", "2")]);
    admin
        .create_topic("orders", 1, 2, &configs)
        .await
        .expect("create");
    let orders = ConfigResource::Topic("orders".to_owned());
    let gone = ConfigResource::Topic("gone".to_owned());
    let described = admin
        .describe_effective_configs(&[orders.clone(), gone.clone()], None)
        .await
        .expect("describe");
    assert_eq!(
        described[&orders],
        Ok(owned(&[
            ("cleanup.policy", "delete"),
            ("min.insync.replicas", "2")
        ])),
        "the topic's own key and the default one"
    );
    let missing = described[&gone].as_ref().expect_err("no such topic");
    assert_eq!(
        missing.kafka_error(),
        Some(ResponseError::UnknownTopicOrPartition)
    );
}

#[tokio::test]
async fn broker_resources_go_to_their_own_broker() {
    let (cluster, _brokers, admin) = two_brokers().await;
    admin
        .create_topic("orders", 1, 2, &BTreeMap::new())
        .await
        .expect("create");
    let rate = "leader.replication.throttled.rate";
    let changes = BTreeMap::from([
        (
            ConfigResource::Broker(2),
            ConfigChanges {
                set: owned(&[(rate, "1048576")]),
                delete: BTreeSet::new(),
            },
        ),
        (
            ConfigResource::Topic("orders".to_owned()),
            ConfigChanges {
                set: owned(&[("leader.replication.throttled.replicas", "0:2")]),
                delete: BTreeSet::new(),
            },
        ),
        (ConfigResource::Broker(1), ConfigChanges::default()),
    ]);
    let altered = admin
        .incremental_alter_configs(&changes)
        .await
        .expect("alter");
    assert_eq!(
        altered.keys().cloned().collect::<Vec<_>>(),
        vec![
            ConfigResource::Topic("orders".to_owned()),
            ConfigResource::Broker(2)
        ],
        "a resource without changes is not sent"
    );
    assert!(altered.values().all(Result::is_ok), "{altered:?}");
    assert_eq!(cluster.broker_configs(2), owned(&[(rate, "1048576")]));
    assert!(cluster.broker_configs(1).is_empty());
    let to_broker_2 = cluster
        .received()
        .iter()
        .filter(|r| r.api_key == ApiKey::IncrementalAlterConfigs as i16 && r.node_id == 2)
        .count();
    assert_eq!(to_broker_2, 1, "broker 2's resource went to broker 2");

    let described = admin
        .describe_effective_configs(&[ConfigResource::Broker(2)], Some(&[rate]))
        .await
        .expect("describe");
    assert_eq!(
        described[&ConfigResource::Broker(2)],
        Ok(owned(&[(rate, "1048576")]))
    );

    let delete = BTreeMap::from([(
        ConfigResource::Broker(2),
        ConfigChanges {
            set: BTreeMap::new(),
            delete: BTreeSet::from([rate.to_owned()]),
        },
    )]);
    admin
        .incremental_alter_configs(&delete)
        .await
        .expect("delete");
    assert!(cluster.broker_configs(2).is_empty());
}
