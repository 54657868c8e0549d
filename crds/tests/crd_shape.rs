//! What `kubectl` users and the apiserver get from the CRDs: names, printer columns, the status
//! subresource, and the validation rules that reject bad specs before the operator sees them.

use kube::CustomResourceExt;
use serde_json::Value;
use strom_crds::{Cluster, Topic};

fn crd_json<K: CustomResourceExt>() -> Value {
    serde_json::to_value(K::crd()).expect("CRD serializes")
}

fn rules(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    collect_rules(schema, &mut found);
    found
}

fn collect_rules(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(list)) = map.get("x-kubernetes-validations") {
                found.extend(
                    list.iter()
                        .filter_map(|r| r["rule"].as_str().map(str::to_owned)),
                );
            }
            map.values().for_each(|v| collect_rules(v, found));
        }
        Value::Array(list) => list.iter().for_each(|v| collect_rules(v, found)),
        _ => {}
    }
}

#[test]
fn cluster_crd_names_columns_and_status() {
    let crd = crd_json::<Cluster>();
    let spec = &crd["spec"];
    assert_eq!(spec["group"], "strom.io");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "Cluster");
    assert_eq!(spec["names"]["shortNames"], serde_json::json!(["stc"]));
    assert_eq!(spec["names"]["categories"], serde_json::json!(["strom"]));
    let version = &spec["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert!(
        version["subresources"]["status"].is_object(),
        "status subresource"
    );
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        columns,
        vec!["Replicas", "Ready", "Version", "Status", "Operation", "Age"]
    );
}

#[test]
fn cluster_schema_validates_ranges_enums_and_required_fields() {
    let crd = crd_json::<Cluster>();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["required"], serde_json::json!(["replicas", "storage"]));
    assert_eq!(spec["properties"]["replicas"]["minimum"], 1.0);
    assert_eq!(
        spec["properties"]["controller"]["properties"]["voters"]["enum"],
        serde_json::json!([1, 3, 5])
    );
    assert_eq!(
        spec["properties"]["listeners"]["properties"]["port"]["default"],
        9092
    );
    let rules = rules(&crd);
    for expected in ["self.replicas >= self.controller.voters", "self == oldSelf"] {
        assert!(
            rules.iter().any(|r| r == expected),
            "missing CEL rule {expected}: {rules:?}"
        );
    }
    assert!(
        rules
            .iter()
            .any(|r| r.contains("self.storageClassName == oldSelf.storageClassName"))
    );
    // The storage size may grow (the operator expands the claims) but never shrink; the
    // quantity library compares `10Gi` with `10737418240` by value.
    let size = &spec["properties"]["storage"]["properties"]["size"]["x-kubernetes-validations"];
    assert_eq!(
        size[0]["rule"].as_str(),
        Some("!quantity(self).isLessThan(quantity(oldSelf))"),
        "{size}"
    );
    // The Kafka port may not take a port every broker binds for itself; the rule's literals
    // must follow the constants the operator renders.
    let listeners = &spec["properties"]["listeners"]["x-kubernetes-validations"][0]["rule"];
    assert_eq!(
        listeners.as_str(),
        Some(
            format!(
                "self.port != {} && self.port != {}",
                strom_crds::cluster::CONTROLLER_PORT,
                strom_crds::cluster::ADMIN_PORT
            )
            .as_str()
        )
    );
}

#[test]
fn topic_crd_validates_and_keeps_identity_immutable() {
    let crd = crd_json::<Topic>();
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["stt"])
    );
    assert_eq!(
        crd["spec"]["names"]["categories"],
        serde_json::json!(["strom"])
    );
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(
        spec["required"],
        serde_json::json!(["clusterRef", "partitions"])
    );
    assert_eq!(
        spec["properties"]["deletionPolicy"]["enum"],
        serde_json::json!(["Delete", "Retain"])
    );
    assert_eq!(spec["properties"]["deletionPolicy"]["default"], "Delete");
    let rules = rules(&crd);
    assert!(
        rules
            .iter()
            .any(|r| r.contains("self.topicName == oldSelf.topicName")),
        "topicName immutable: {rules:?}"
    );
    assert_eq!(
        rules.iter().filter(|r| *r == "self == oldSelf").count(),
        1,
        "clusterRef immutable: {rules:?}"
    );
}

#[test]
fn broker_config_allow_list_rejects_derived_keys() {
    let config = [
        ("node.id", "1"),
        ("log.retention.ms", "1"),
        ("advertised.listeners", "x"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        strom_crds::disallowed_broker_config_keys(&config),
        vec!["advertised.listeners", "node.id"]
    );
    assert_eq!(strom_crds::BROKER_CONFIG_KEYS.len(), 57);
}
