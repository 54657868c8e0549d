//! Snapshot tests of the builders: the YAML under `snapshots/` is what the operator applies for
//! each spec. CI runs with `INSTA_UPDATE=no`, so a changed object fails until the snapshot is
//! reviewed (`cargo insta review`).

use k8s_openapi::api::core::v1::Container;
use serde::Serialize;
use strom_crds::cluster::{ControllerSpec, RackSpec};

use super::*;
use crate::day2::revision::REVISION_ANNOTATION;
use crate::fixtures::{minimal_cluster, production_cluster};

fn defaults() -> BuildDefaults {
    BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0")
}

/// Revision the snapshots stamp on the pod template.
const REVISION: &str = "rev-1";

/// The StatefulSet of a cluster running `spec.replicas` brokers on [`REVISION`].
fn new_stateful_set(cluster: &strom_crds::Cluster) -> k8s_openapi::api::apps::v1::StatefulSet {
    let inputs = StatefulSetInputs {
        replicas: cluster.spec.replicas,
        ..StatefulSetInputs::new_for(cluster, REVISION)
    };
    stateful_set(cluster, &defaults(), &inputs)
}

#[test]
fn minimal_cluster_objects() {
    let cluster = minimal_cluster();
    insta::assert_yaml_snapshot!("minimal_config_map", config_map(&cluster));
    insta::assert_yaml_snapshot!("minimal_headless_service", headless_service(&cluster));
    insta::assert_yaml_snapshot!("minimal_bootstrap_service", bootstrap_service(&cluster));
    insta::assert_yaml_snapshot!("minimal_stateful_set", new_stateful_set(&cluster));
    insta::assert_yaml_snapshot!(
        "minimal_pod_disruption_budget",
        pod_disruption_budget(&cluster)
    );
}

#[test]
fn production_cluster_objects() {
    let cluster = production_cluster();
    insta::assert_yaml_snapshot!("production_config_map", config_map(&cluster));
    insta::assert_yaml_snapshot!("production_headless_service", headless_service(&cluster));
    insta::assert_yaml_snapshot!("production_bootstrap_service", bootstrap_service(&cluster));
    insta::assert_yaml_snapshot!("production_stateful_set", new_stateful_set(&cluster));
    insta::assert_yaml_snapshot!("production_service_monitor", service_monitor(&cluster));
}

#[test]
fn image_reference_splits_on_the_tag_not_the_registry_port() {
    let d = BuildDefaults::from_image_reference("registry.local:5000/strom/broker:1.2.3");
    assert_eq!(d.image_repository, "registry.local:5000/strom/broker");
    assert_eq!(d.image_tag, "1.2.3");
    let d = BuildDefaults::from_image_reference("registry.local:5000/strom/broker");
    assert_eq!(d.image_repository, "registry.local:5000/strom/broker");
    assert_eq!(d.image_tag, "latest");
}

#[test]
fn image_tag_falls_back_to_version_then_operator_default() {
    let mut cluster = minimal_cluster();
    assert_eq!(
        resolve_image(&cluster, &defaults()).reference,
        "ghcr.io/strom-io/strom-broker:0.1.0"
    );
    cluster.spec.version = Some("0.2.0".to_owned());
    assert_eq!(
        resolve_image(&cluster, &defaults()).reference,
        "ghcr.io/strom-io/strom-broker:0.2.0"
    );
    cluster.spec.image = Some(strom_crds::cluster::ImageSpec {
        repository: Some("example.org/broker".to_owned()),
        tag: Some("custom".to_owned()),
        pull_policy: None,
    });
    assert_eq!(
        resolve_image(&cluster, &defaults()).reference,
        "example.org/broker:custom"
    );
}

#[test]
fn user_labels_cannot_take_over_the_selector() {
    let mut cluster = production_cluster();
    let template = cluster.spec.template.get_or_insert_default();
    template
        .labels
        .insert("app.kubernetes.io/instance".to_owned(), "other".to_owned());
    let sts = new_stateful_set(&cluster);
    let labels = sts
        .spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .expect("pod template has labels");
    assert_eq!(
        labels.get("app.kubernetes.io/instance").map(String::as_str),
        Some("prod")
    );
}

#[test]
fn the_revision_digests_the_pod_the_operator_renders_and_nothing_dynamic() {
    let revision = |cluster: &strom_crds::Cluster, image: &str| {
        desired(cluster, &BuildDefaults::from_image_reference(image)).revision
    };
    let base = revision(&minimal_cluster(), "ghcr.io/strom-io/strom-broker:0.1.0");
    assert_eq!(base.len(), 16);
    assert_eq!(
        base,
        revision(&minimal_cluster(), "ghcr.io/strom-io/strom-broker:0.1.0"),
        "the same inputs give the same revision"
    );
    assert_ne!(
        base,
        revision(&minimal_cluster(), "ghcr.io/strom-io/strom-broker:0.2.0"),
        "another default image rolls the brokers"
    );
    assert_ne!(
        base,
        revision(&minimal_cluster(), "registry.local:5000/strom-broker:0.1.0"),
        "another default repository rolls the brokers"
    );
    assert_ne!(
        base,
        crate::day2::revision::desired(&minimal_cluster()).revision,
        "the pod spec is part of the revision"
    );

    // What the pod runs: its resources.
    let mut resourced = minimal_cluster();
    resourced.spec.resources = production_cluster().spec.resources;
    assert!(resourced.spec.resources.is_some());
    assert_ne!(
        base,
        revision(&resourced, "ghcr.io/strom-io/strom-broker:0.1.0")
    );

    // A dynamic broker config, or a pod label, restarts nothing.
    let mut throttled = minimal_cluster();
    throttled.spec.config.insert(
        "leader.replication.throttled.rate".to_owned(),
        "1048576".to_owned(),
    );
    assert_eq!(
        base,
        revision(&throttled, "ghcr.io/strom-io/strom-broker:0.1.0")
    );
    let mut labelled = minimal_cluster();
    labelled
        .spec
        .template
        .get_or_insert_with(Default::default)
        .labels
        .insert("team".to_owned(), "payments".to_owned());
    assert_eq!(
        base,
        revision(&labelled, "ghcr.io/strom-io/strom-broker:0.1.0")
    );

    // A cluster that names its image is not rolled by the operator's default.
    let mut pinned = minimal_cluster();
    pinned.spec.image = Some(strom_crds::cluster::ImageSpec {
        repository: Some("example.com/strom".to_owned()),
        tag: Some("1.0.0".to_owned()),
        ..strom_crds::cluster::ImageSpec::default()
    });
    assert_eq!(
        revision(&pinned, "ghcr.io/strom-io/strom-broker:0.1.0"),
        revision(&pinned, "ghcr.io/strom-io/strom-broker:0.2.0")
    );
}

#[test]
fn config_change_changes_the_pod_config_hash() {
    let hash = |cluster: &strom_crds::Cluster| {
        new_stateful_set(cluster)
            .spec
            .template
            .metadata
            .and_then(|m| m.annotations)
            .and_then(|a| a.get(CONFIG_HASH_ANNOTATION).cloned())
            .expect("config hash annotation")
    };
    let mut cluster = minimal_cluster();
    let before = hash(&cluster);
    assert_eq!(before, hash(&cluster), "same spec, same hash");
    cluster
        .spec
        .config
        .insert("log.retention.ms".to_owned(), "1000".to_owned());
    assert_ne!(before, hash(&cluster));
}

fn template_annotation(sts: &k8s_openapi::api::apps::v1::StatefulSet, key: &str) -> Option<String> {
    sts.spec
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(key)
        .cloned()
}

fn claim_size(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> Option<String> {
    let claim = sts.spec.volume_claim_templates.as_ref()?.first()?;
    let requests = claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?;
    requests.get("storage").map(|q| q.0.clone())
}

#[test]
fn pod_template_carries_the_desired_revision_and_stays_on_delete() {
    let cluster = minimal_cluster();
    let sts = stateful_set(
        &cluster,
        &defaults(),
        &StatefulSetInputs::new_for(&cluster, "a1b2c3"),
    );
    assert_eq!(
        template_annotation(&sts, REVISION_ANNOTATION).as_deref(),
        Some("a1b2c3")
    );
    let strategy = sts
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref());
    assert_eq!(strategy, Some("OnDelete"));
}

#[test]
fn running_stateful_set_keeps_its_replicas_and_claim_size() {
    // A drain from 4 to 3 brokers: the spec says 3, the StatefulSet still runs 4 and was
    // created with 10Gi claims; the spec has since grown the storage to 20Gi.
    let mut cluster = minimal_cluster();
    let mut running = new_stateful_set(&cluster);
    running.spec.replicas = Some(4);
    cluster.spec.storage.size = "20Gi".to_owned();
    let inputs = StatefulSetInputs::keeping(&cluster, Some(&running), "rev-2");
    assert_eq!(
        inputs,
        StatefulSetInputs {
            replicas: 4,
            revision: "rev-2".to_owned(),
            claim_size: "10Gi".to_owned(),
        }
    );
    let sts = stateful_set(&cluster, &defaults(), &inputs);
    assert_eq!(sts.spec.replicas, Some(4));
    assert_eq!(claim_size(&sts).as_deref(), Some("10Gi"));

    // A StatefulSet made now starts with no broker: the day-2 plan starts them.
    let fresh = StatefulSetInputs::keeping(&cluster, None, "rev-2");
    assert_eq!((fresh.replicas, fresh.claim_size.as_str()), (0, "20Gi"));
}

/// One broker's configuration as the broker process receives it: the kubelet's view of the
/// pod `pod` on a node labelled with `zone`, with `$(VAR)` in the arguments expanded from the
/// container environment, and the shared `server.properties` parsed into keys.
#[derive(Debug, Serialize)]
struct RenderedBroker {
    pod: String,
    args: Vec<String>,
    server_properties: BTreeMap<String, String>,
}

/// The broker container of a cluster's StatefulSet.
fn broker_container(cluster: &strom_crds::Cluster) -> Container {
    new_stateful_set(cluster)
        .spec
        .template
        .spec
        .expect("pod spec")
        .containers
        .into_iter()
        .next()
        .expect("broker container")
}

/// The downward API value of `field_path` for a pod named `pod` whose labels are `labels`.
fn downward_value(field_path: &str, pod: &str, labels: &BTreeMap<String, String>) -> String {
    match field_path {
        "metadata.name" => pod.to_owned(),
        "metadata.namespace" => crate::fixtures::NAMESPACE.to_owned(),
        path => {
            let key = path
                .strip_prefix("metadata.labels['")
                .and_then(|rest| rest.strip_suffix("']"))
                .unwrap_or_else(|| panic!("unexpected downward API field {path}"));
            // The kubelet gives an empty string for a label the pod does not carry.
            labels.get(key).cloned().unwrap_or_default()
        }
    }
}

/// What each broker of `cluster` runs with when pod `i` lands on a node in `zones[i % len]`
/// (the zone label copied onto the pod as Kubernetes does).
fn rendered_brokers(cluster: &strom_crds::Cluster, zones: &[&str]) -> Vec<RenderedBroker> {
    let container = broker_container(cluster);
    let properties = config_map(cluster)
        .data
        .and_then(|d| d.get(SERVER_PROPERTIES).cloned())
        .expect("server.properties");
    let server_properties: BTreeMap<String, String> = properties
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    (0..cluster.spec.replicas)
        .map(|id| {
            let pod = pod_name(&cluster.name_any(), id);
            let zone = zones[usize::try_from(id).expect("ordinal") % zones.len()];
            let labels =
                BTreeMap::from([("topology.kubernetes.io/zone".to_owned(), zone.to_owned())]);
            let env: Vec<(String, String)> = container
                .env
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|var| {
                    let path = var
                        .value_from
                        .and_then(|source| source.field_ref)
                        .map(|field| field.field_path)
                        .expect("every variable comes from the downward API");
                    let value = downward_value(&path, &pod, &labels);
                    (var.name, value)
                })
                .collect();
            let args = container
                .args
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|arg| {
                    env.iter().fold(arg, |arg, (name, value)| {
                        arg.replace(&format!("$({name})"), value)
                    })
                })
                .collect();
            RenderedBroker {
                pod,
                args,
                server_properties: server_properties.clone(),
            }
        })
        .collect()
}

/// `minimal_cluster` with `replicas` brokers, `voters` voters and rack awareness by zone.
fn quorum_cluster(replicas: i32, voters: i32) -> strom_crds::Cluster {
    let mut cluster = minimal_cluster();
    cluster.spec.replicas = replicas;
    cluster.spec.controller = ControllerSpec { voters };
    cluster.spec.rack = Some(RackSpec {
        topology_key: "topology.kubernetes.io/zone".to_owned(),
    });
    cluster
}

const ZONES: &[&str] = &["zone-a", "zone-b", "zone-c"];

#[test]
fn every_broker_gets_voters_controller_listener_and_rack() {
    // One voter (a single broker), three voters and a broker-only fourth broker, five voters.
    insta::assert_yaml_snapshot!(
        "one_voter_brokers",
        rendered_brokers(&quorum_cluster(1, 1), ZONES)
    );
    insta::assert_yaml_snapshot!(
        "three_voters_brokers",
        rendered_brokers(&quorum_cluster(4, 3), ZONES)
    );
    insta::assert_yaml_snapshot!(
        "five_voters_brokers",
        rendered_brokers(&quorum_cluster(5, 5), ZONES)
    );
}

#[test]
fn voters_are_the_lowest_ids_at_their_stable_pod_names() {
    for voters in [1, 3, 5] {
        let cluster = quorum_cluster(5, voters);
        let expected: Vec<String> = (0..voters)
            .map(|id| format!("{id}@demo-broker-{id}.demo-brokers.kafka.svc:9093"))
            .collect();
        assert_eq!(controller_quorum_voters(&cluster), expected.join(","));
        for broker in rendered_brokers(&cluster, ZONES) {
            assert_eq!(
                broker.server_properties.get("controller.quorum.voters"),
                Some(&expected.join(","))
            );
            let own = format!("{}.demo-brokers.kafka.svc:9093", broker.pod);
            let flag = broker
                .args
                .iter()
                .position(|a| a == "--controller-advertised-listener")
                .expect("controller listener advertised");
            assert_eq!(broker.args[flag + 1], own);
            // A voter advertises exactly the address the others dial for it.
            let id: i32 = broker
                .pod
                .rsplit('-')
                .next()
                .and_then(|n| n.parse().ok())
                .expect("id");
            if id < voters {
                assert!(expected.contains(&format!("{id}@{own}")), "{own}");
            }
        }
    }
}

#[test]
fn rack_comes_from_the_pod_label_and_is_absent_without_rack_awareness() {
    let with_rack = rendered_brokers(&quorum_cluster(3, 3), ZONES);
    let racks: Vec<&str> = with_rack
        .iter()
        .map(|b| {
            let i = b
                .args
                .iter()
                .position(|a| a == "--override")
                .expect("override");
            b.args[i + 1].as_str()
        })
        .collect();
    assert_eq!(
        racks,
        [
            "broker.rack=zone-a",
            "broker.rack=zone-b",
            "broker.rack=zone-c"
        ]
    );
    let without = rendered_brokers(&minimal_cluster(), ZONES);
    assert!(
        without
            .iter()
            .all(|b| !b.args.iter().any(|a| a.contains("broker.rack")))
    );
}

#[test]
fn controller_port_is_named_on_the_container_and_the_headless_service_only() {
    let container = broker_container(&minimal_cluster());
    let port = container
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("controller"))
        .expect("controller container port");
    assert_eq!(port.container_port, 9093);
    let ports = |service: k8s_openapi::api::core::v1::Service| -> Vec<(String, i32)> {
        service
            .spec
            .and_then(|s| s.ports)
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.name.unwrap_or_default(), p.port))
            .collect()
    };
    assert!(ports(headless_service(&minimal_cluster())).contains(&("controller".to_owned(), 9093)));
    assert!(
        !ports(bootstrap_service(&minimal_cluster()))
            .iter()
            .any(|(name, _)| name == "controller"),
        "clients bootstrap through Kafka only"
    );
}

#[test]
fn keys_the_operator_renders_are_exactly_the_listed_ones() {
    let cluster = quorum_cluster(3, 3);
    let mut rendered: Vec<String> = Vec::new();
    for broker in rendered_brokers(&cluster, ZONES) {
        rendered.extend(
            broker
                .server_properties
                .keys()
                .filter(|k| !cluster.spec.config.contains_key(*k))
                .cloned(),
        );
        let mut args = broker.args.iter();
        while let Some(arg) = args.next() {
            if arg == "--override" {
                let pair = args.next().expect("--override takes key=value");
                rendered.push(pair.split_once('=').expect("key=value").0.to_owned());
            }
        }
    }
    rendered.sort();
    rendered.dedup();
    let mut listed: Vec<String> = strom_crds::OPERATOR_BROKER_KEYS
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
    listed.sort();
    assert_eq!(rendered, listed);
    for key in strom_crds::OPERATOR_BROKER_KEYS {
        assert!(
            !strom_crds::BROKER_CONFIG_KEYS.contains(key),
            "{key} is the operator's to render, not the user's"
        );
    }
}
