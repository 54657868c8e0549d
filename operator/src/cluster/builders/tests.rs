//! Snapshot tests of the builders: the YAML under `snapshots/` is what the operator applies for
//! each spec. CI runs with `INSTA_UPDATE=no`, so a changed object fails until the snapshot is
//! reviewed (`cargo insta review`).

use super::*;
use crate::fixtures::{minimal_cluster, production_cluster};

fn defaults() -> BuildDefaults {
    BuildDefaults::from_image_reference("ghcr.io/strom-io/strom-broker:0.1.0")
}

#[test]
fn minimal_cluster_objects() {
    let cluster = minimal_cluster();
    insta::assert_yaml_snapshot!("minimal_config_map", config_map(&cluster));
    insta::assert_yaml_snapshot!("minimal_headless_service", headless_service(&cluster));
    insta::assert_yaml_snapshot!("minimal_bootstrap_service", bootstrap_service(&cluster));
    insta::assert_yaml_snapshot!("minimal_stateful_set", stateful_set(&cluster, &defaults()));
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
    insta::assert_yaml_snapshot!(
        "production_stateful_set",
        stateful_set(&cluster, &defaults())
    );
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
    let sts = stateful_set(&cluster, &defaults());
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
fn config_change_changes_the_pod_config_hash() {
    let hash = |cluster: &strom_crds::Cluster| {
        stateful_set(cluster, &defaults())
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
