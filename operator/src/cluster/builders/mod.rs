//! Pure functions from a `Cluster` to the Kubernetes objects that run it, one file per kind.
//!
//! Every builder takes the Cluster (and the operator's defaults) and returns the full object the
//! operator applies with server-side apply; nothing here does I/O, so the output is pinned by
//! snapshot tests. Names:
//!
//! | object | name |
//! |---|---|
//! | ConfigMap (`server.properties`) | `<cluster>-config` |
//! | headless Service (pod DNS) | `<cluster>-brokers` |
//! | bootstrap Service | `<cluster>-bootstrap` |
//! | StatefulSet, PodDisruptionBudget, ServiceMonitor | `<cluster>-broker` |
//!
//! Pods are `<cluster>-broker-<ordinal>`; the ordinal is the broker id. Each pod has the
//! stable DNS name `<pod>.<cluster>-brokers.<namespace>.svc` through the headless Service; the
//! brokers advertise it for Kafka clients and for the controller quorum, whose voters are the
//! brokers `0..spec.controller.voters` ([`controller_quorum_voters`]).

mod bootstrap_service;
mod config_map;
mod headless_service;
mod pod_disruption_budget;
mod service_monitor;
mod stateful_set;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use strom_crds::Cluster;
use strom_crds::cluster::{CONTROLLER_PORT, PullPolicy};

pub use bootstrap_service::bootstrap_service;
pub use config_map::{SERVER_PROPERTIES, broker_properties, config_map, server_properties};
pub use headless_service::{SERVICE_ROLE_LABEL, headless_service};
pub use pod_disruption_budget::pod_disruption_budget;
pub use service_monitor::{service_monitor, service_monitor_resource};
pub use stateful_set::{
    CONFIG_HASH_ANNOTATION, StatefulSetInputs, VERSION_LABEL, broker_pod_spec, desired,
    stateful_set,
};

/// Label every object of a cluster carries with the Cluster's name.
pub const CLUSTER_LABEL: &str = "strom.io/cluster";
/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "strom-operator";

/// What the operator fills in when a Cluster leaves it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDefaults {
    /// Broker image repository (`--broker-image` before the `:`).
    pub image_repository: String,
    /// Broker image tag (`--broker-image` after the `:`).
    pub image_tag: String,
}

impl BuildDefaults {
    /// Splits `REPO:TAG` (the tag is after the last `:` that follows the last `/`, so registry
    /// ports are kept in the repository). A reference without a tag gets `latest`.
    pub fn from_image_reference(image: &str) -> Self {
        let name_start = image.rfind('/').map_or(0, |i| i + 1);
        match image[name_start..].rfind(':') {
            Some(i) => Self {
                image_repository: image[..name_start + i].to_owned(),
                image_tag: image[name_start + i + 1..].to_owned(),
            },
            None => Self {
                image_repository: image.to_owned(),
                image_tag: "latest".to_owned(),
            },
        }
    }
}

/// The image a cluster's brokers run, after defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// `repository:tag`.
    pub reference: String,
    /// The tag, reported as the broker version when `spec.version` is unset.
    pub tag: String,
    /// `imagePullPolicy`, when the spec sets one.
    pub pull_policy: Option<PullPolicy>,
}

/// Resolves `spec.image` against `spec.version` and the operator defaults.
pub fn resolve_image(cluster: &Cluster, defaults: &BuildDefaults) -> ResolvedImage {
    let image = cluster.spec.image.clone().unwrap_or_default();
    let repository = image
        .repository
        .unwrap_or_else(|| defaults.image_repository.clone());
    let tag = image
        .tag
        .or_else(|| cluster.spec.version.clone())
        .unwrap_or_else(|| defaults.image_tag.clone());
    ResolvedImage {
        reference: format!("{repository}:{tag}"),
        tag,
        pull_policy: image.pull_policy,
    }
}

/// The version reported for the brokers: `spec.version`, else the image tag.
pub fn broker_version(cluster: &Cluster, defaults: &BuildDefaults) -> String {
    cluster
        .spec
        .version
        .clone()
        .unwrap_or_else(|| resolve_image(cluster, defaults).tag)
}

/// Name of the headless Service that gives each broker pod a stable DNS name.
pub fn headless_service_name(cluster: &str) -> String {
    format!("{cluster}-brokers")
}

/// Name of the bootstrap Service clients connect to.
pub fn bootstrap_service_name(cluster: &str) -> String {
    format!("{cluster}-bootstrap")
}

/// Name of the broker StatefulSet (and its PodDisruptionBudget and ServiceMonitor).
pub fn stateful_set_name(cluster: &str) -> String {
    format!("{cluster}-broker")
}

/// Name of the ConfigMap holding `server.properties`.
pub fn config_map_name(cluster: &str) -> String {
    format!("{cluster}-config")
}

/// Name of the broker pod with ordinal (broker id) `id`.
pub fn pod_name(cluster: &str, id: i32) -> String {
    format!("{}-{id}", stateful_set_name(cluster))
}

/// Stable DNS name of a broker pod through the headless Service:
/// `<pod>.<cluster>-brokers.<namespace>.svc`.
pub fn pod_dns_name(cluster: &str, namespace: &str, pod: &str) -> String {
    format!("{pod}.{}.{namespace}.svc", headless_service_name(cluster))
}

/// `controller.quorum.voters` of a cluster: `id@<pod DNS name>:9093` for each broker id in
/// `0..spec.controller.voters`, the brokers with the lowest ids, as Kafka writes the list.
pub fn controller_quorum_voters(cluster: &Cluster) -> String {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    (0..cluster.spec.controller.voters)
        .map(|id| {
            let host = pod_dns_name(&name, &namespace, &pod_name(&name, id));
            format!("{id}@{host}:{CONTROLLER_PORT}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// In-cluster bootstrap address of a cluster: `<cluster>-bootstrap.<ns>.svc:<port>`.
pub fn bootstrap_address(cluster: &str, namespace: &str, port: i32) -> String {
    format!("{}.{namespace}.svc:{port}", bootstrap_service_name(cluster))
}

/// Labels that select a cluster's broker pods. Stable for the life of the cluster: a
/// StatefulSet's selector is immutable.
pub fn selector_labels(cluster: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "strom".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), cluster.to_owned()),
        (
            "app.kubernetes.io/component".to_owned(),
            "broker".to_owned(),
        ),
    ])
}

/// Labels on every object of a cluster.
pub fn common_labels(cluster: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(cluster);
    labels.insert(
        "app.kubernetes.io/managed-by".to_owned(),
        FIELD_MANAGER.to_owned(),
    );
    labels.insert(CLUSTER_LABEL.to_owned(), cluster.to_owned());
    labels
}

/// Metadata of a child object: name, the Cluster's namespace, common labels and an owner
/// reference so Kubernetes deletes the child with the Cluster and the controller is woken when
/// the child changes.
pub fn child_meta(cluster: &Cluster, name: String) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: cluster.namespace(),
        labels: Some(common_labels(&cluster.name_any())),
        owner_references: owner_reference(cluster).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner_reference(cluster: &Cluster) -> Option<OwnerReference> {
    cluster.controller_owner_ref(&())
}
