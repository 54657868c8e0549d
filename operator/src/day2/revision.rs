//! What a Cluster asks its brokers to run: the revision (a digest of everything that needs a
//! restart to change: the spec's image, version and static configs, the restart annotation,
//! and what the runtime renders for each broker, on Kubernetes the broker pod spec) and the
//! day-2 target read from the spec and annotations.

use std::collections::BTreeMap;

use kube::ResourceExt;
use strom_crds::Cluster;

use super::desired::Desired;

/// Pod annotation (and local process label) with the revision the broker was started with.
pub const REVISION_ANNOTATION: &str = "strom.io/revision";
/// Cluster annotation whose every new value restarts all brokers (any value; a timestamp is
/// usual).
pub const RESTART_ANNOTATION: &str = "strom.io/restart";
/// Cluster annotation that pauses the day-2 operations when `"true"`, as `spec.paused` does.
pub const PAUSED_ANNOTATION: &str = "strom.io/paused";

/// The broker config keys the brokers change without a restart (the broker's dynamic broker
/// configs: the replication throttles). They stay out of the revision and are applied through
/// the admin API.
pub const DYNAMIC_BROKER_CONFIG_KEYS: &[&str] = &[
    "follower.replication.throttled.rate",
    "leader.replication.throttled.rate",
];

/// The day-2 target of `cluster`, its revision a digest of the spec alone (the local
/// runtime's: its brokers run the binaries the spec names, nothing the runtime renders).
pub fn desired(cluster: &Cluster) -> Desired {
    desired_running(cluster, "")
}

/// The day-2 target of `cluster` on a runtime that renders what each broker runs: `runs` (on
/// Kubernetes the broker pod spec, with the operator's defaults applied) is digested into the
/// revision beside the spec, so a change to what the runtime renders restarts the brokers too.
/// An empty `runs` gives [`desired`]'s revision.
pub fn desired_running(cluster: &Cluster, runs: &str) -> Desired {
    let spec = &cluster.spec;
    let annotations = cluster.annotations();
    let (dynamic_config, static_config): (BTreeMap<_, _>, BTreeMap<_, _>) = spec
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(key, _)| DYNAMIC_BROKER_CONFIG_KEYS.contains(&key.as_str()));

    let image = spec.image.clone().unwrap_or_default();
    let mut canonical = String::new();
    let mut line = |key: &str, value: &str| {
        // Length-prefixed so no value can forge another field's line.
        canonical.push_str(&format!("{}:{key}={}:{value}\n", key.len(), value.len()));
    };
    line(
        "image.repository",
        image.repository.as_deref().unwrap_or(""),
    );
    line("image.tag", image.tag.as_deref().unwrap_or(""));
    line("version", spec.version.as_deref().unwrap_or(""));
    line("controller.voters", &spec.controller.voters.to_string());
    for (key, value) in &static_config {
        line(&format!("config.{key}"), value);
    }
    line(
        RESTART_ANNOTATION,
        annotations
            .get(RESTART_ANNOTATION)
            .map_or("", String::as_str),
    );
    if !runs.is_empty() {
        line("runs", runs);
    }

    Desired {
        replicas: spec.replicas,
        voters: spec.controller.voters,
        revision: fnv1a(&canonical),
        dynamic_config,
        paused: spec.paused
            || annotations
                .get(PAUSED_ANNOTATION)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
        policy: spec.operations.clone(),
    }
}

/// FNV-1a (64 bits) of `text`, as hex: stable across builds and Rust versions (unlike
/// `DefaultHasher`), as the pods' config hash annotation is.
pub fn fnv1a(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_crds::cluster::{ClusterSpec, ImageSpec};

    fn cluster() -> Cluster {
        let spec: ClusterSpec = serde_json::from_value(serde_json::json!({
            "replicas": 3,
            "version": "0.1.0",
            "storage": {"size": "1Gi"},
            "config": {"log.retention.ms": "1000"}
        }))
        .expect("spec");
        Cluster::new("prod", spec)
    }

    fn annotate(mut cluster: Cluster, key: &str, value: &str) -> Cluster {
        cluster
            .annotations_mut()
            .insert(key.to_owned(), value.to_owned());
        cluster
    }

    #[test]
    fn the_revision_is_stable_and_follows_what_needs_a_restart() {
        let base = desired(&cluster());
        assert_eq!(base.revision, desired(&cluster()).revision);
        assert_eq!(base.revision.len(), 16);

        let mut version = cluster();
        version.spec.version = Some("0.2.0".to_owned());
        let mut image = cluster();
        image.spec.image = Some(ImageSpec {
            tag: Some("dev".to_owned()),
            ..ImageSpec::default()
        });
        let mut config = cluster();
        config
            .spec
            .config
            .insert("log.retention.ms".to_owned(), "2000".to_owned());
        let restarted = annotate(cluster(), RESTART_ANNOTATION, "2026-12-01T10:00:00Z");
        for changed in [version, image, config, restarted] {
            assert_ne!(desired(&changed).revision, base.revision, "{changed:?}");
        }
    }

    #[test]
    fn dynamic_keys_stay_out_of_the_revision_and_are_returned_apart() {
        let mut throttled = cluster();
        throttled.spec.config.insert(
            "leader.replication.throttled.rate".to_owned(),
            "1048576".to_owned(),
        );
        let target = desired(&throttled);
        assert_eq!(target.revision, desired(&cluster()).revision);
        assert_eq!(
            target.dynamic_config,
            BTreeMap::from([(
                "leader.replication.throttled.rate".to_owned(),
                "1048576".to_owned()
            )])
        );
        assert!(desired(&cluster()).dynamic_config.is_empty());
    }

    #[test]
    fn spec_and_annotation_pause_and_the_rest_is_copied() {
        let base = desired(&cluster());
        assert!(!base.paused);
        assert_eq!((base.replicas, base.voters), (3, 3));
        let mut paused = cluster();
        paused.spec.paused = true;
        assert!(desired(&paused).paused);
        assert!(desired(&annotate(cluster(), PAUSED_ANNOTATION, "true")).paused);
        assert!(!desired(&annotate(cluster(), PAUSED_ANNOTATION, "false")).paused);
    }
}
