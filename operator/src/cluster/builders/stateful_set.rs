//! The broker StatefulSet, built to the broker container contract:
//!
//! - entrypoint `/strom-broker`, args `--config /etc/strom/server.properties --data-dir
//!   /var/lib/strom --listen 0.0.0.0:<port> --advertised-listener
//!   $(POD_NAME).<headless>.<ns>.svc:<port> --controller-listen 0.0.0.0:9093
//!   --controller-advertised-listener $(POD_NAME).<headless>.<ns>.svc:9093 --admin-listen
//!   0.0.0.0:9404 --node-id ordinal` (`ordinal`: the broker takes its node id from the trailing
//!   `-N` of `POD_NAME`), and with rack awareness `--override broker.rack=$(POD_RACK)`;
//! - `POD_NAME`, `POD_NAMESPACE` from the downward API, and `POD_RACK`: the pod's own label
//!   named by `spec.rack.topologyKey`. The rack is per pod while the template is shared, and
//!   the broker image holds nothing but the broker, so the value comes from the pod itself:
//!   Kubernetes (1.35+, the `PodTopologyLabels` admission plugin) copies the node's
//!   `topology.kubernetes.io/zone` and `region` labels onto the pod when it is bound, before
//!   its containers start. A label that is not there gives an empty value, which the broker
//!   reads as "no rack"; the status reports such brokers (`RackUnknown`);
//! - ports `kafka`, `controller` (9093: the quorum and controller forwarding) and `admin`
//!   (9404: `/metrics`, `/healthz` liveness, `/readyz` readiness);
//! - uid 65532, read-only root filesystem, data volume at `/var/lib/strom`.
//!
//! `updateStrategy: OnDelete`: a changed template restarts nothing by itself, the operator
//! decides the restart order (controllers last, one broker at a time). The pod template
//! carries the revision the day-2 plan wants every broker on (`strom.io/revision`), so a
//! pod the operator restarts comes back on it and reports it.
//!
//! Two fields come from the running StatefulSet rather than straight from the spec
//! ([`StatefulSetInputs`]): `replicas`, which only the day-2 plan changes (it starts brokers,
//! and a scale-down lowers it only once the brokers above the new count are drained), and the
//! volume claim template's size, which Kubernetes does not let change (the operator grows the
//! claims themselves).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvVar, EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, SeccompProfile, SecurityContext, TopologySpreadConstraint, Volume,
    VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use strom_crds::Cluster;
use strom_crds::cluster::{ADMIN_PORT, CONTROLLER_PORT};

use super::config_map::{broker_properties, server_properties};
use super::{
    BuildDefaults, broker_version, child_meta, common_labels, config_map_name,
    headless_service_name, pod_dns_name, resolve_image, selector_labels, stateful_set_name,
};
use crate::day2::Desired;
use crate::day2::revision::{self, REVISION_ANNOTATION, fnv1a};

/// Pod annotation with a hash of `server.properties`, so a config change shows as a template
/// change (and the restart planner sees which pods run an old config).
pub const CONFIG_HASH_ANNOTATION: &str = "strom.io/config-hash";
/// Pod label with the Strom version the pod runs.
pub const VERSION_LABEL: &str = "strom.io/version";

/// What the StatefulSet takes from the day-2 pass and the running StatefulSet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatefulSetInputs {
    /// `spec.replicas`: the brokers the workload runs now.
    pub replicas: i32,
    /// The revision stamped onto the pod template.
    pub revision: String,
    /// The volume claim template's storage request: the one the StatefulSet was created
    /// with (immutable), `spec.storage.size` for a new StatefulSet.
    pub claim_size: String,
}

impl StatefulSetInputs {
    /// The inputs of a StatefulSet not created yet: no broker (the day-2 plan scales it to
    /// `spec.replicas` in the same pass, as the start of its Provisioning operation) and the
    /// spec's storage size.
    pub fn new_for(cluster: &Cluster, revision: impl Into<String>) -> Self {
        Self {
            replicas: 0,
            revision: revision.into(),
            claim_size: cluster.spec.storage.size.clone(),
        }
    }

    /// The inputs that keep `running` as it is (replicas, claim size) with `revision` on the
    /// template; those of a new StatefulSet when there is none.
    pub fn keeping(cluster: &Cluster, running: Option<&StatefulSet>, revision: &str) -> Self {
        let mut inputs = Self::new_for(cluster, revision);
        let Some(spec) = running.map(|sts| &sts.spec) else {
            return inputs;
        };
        // The API server defaults `spec.replicas` to 1.
        inputs.replicas = spec.replicas.unwrap_or(1);
        if let Some(size) = spec
            .volume_claim_templates
            .as_ref()
            .and_then(|templates| templates.iter().find(|t| t.name_any() == DATA_VOLUME))
            .and_then(|t| t.spec.as_ref())
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
        {
            inputs.claim_size.clone_from(&size.0);
        }
        inputs
    }
}

/// uid and gid of the broker process (the image's non-root user).
const BROKER_UID: i64 = 65532;
/// Time a broker gets to hand over partition leadership and flush before SIGKILL.
const TERMINATION_GRACE_SECONDS: i64 = 120;
const DATA_VOLUME: &str = "data";
const DATA_DIR: &str = "/var/lib/strom";
const CONFIG_VOLUME: &str = "config";
const CONFIG_DIR: &str = "/etc/strom";
const TMP_VOLUME: &str = "tmp";
/// Broker key set per pod on the command line, from [`RACK_ENV`].
const BROKER_RACK: &str = "broker.rack";
/// Environment variable holding the pod's rack label (downward API).
const RACK_ENV: &str = "POD_RACK";

/// The StatefulSet `<cluster>-broker`.
pub fn stateful_set(
    cluster: &Cluster,
    defaults: &BuildDefaults,
    inputs: &StatefulSetInputs,
) -> StatefulSet {
    let name = cluster.name_any();
    let spec = &cluster.spec;
    let selector = selector_labels(&name);

    let mut pod_labels = spec
        .template
        .as_ref()
        .map(|t| t.labels.clone())
        .unwrap_or_default();
    // Ours last: the selector labels must win over user labels or the StatefulSet loses its pods.
    pod_labels.extend(common_labels(&name));
    pod_labels.insert(VERSION_LABEL.to_owned(), broker_version(cluster, defaults));

    let mut pod_annotations = spec
        .template
        .as_ref()
        .map(|t| t.annotations.clone())
        .unwrap_or_default();
    pod_annotations.insert(
        CONFIG_HASH_ANNOTATION.to_owned(),
        fnv1a(&server_properties(&broker_properties(cluster))),
    );
    pod_annotations.insert(REVISION_ANNOTATION.to_owned(), inputs.revision.clone());
    if spec.metrics.enabled {
        pod_annotations.insert("prometheus.io/scrape".to_owned(), "true".to_owned());
        pod_annotations.insert("prometheus.io/port".to_owned(), ADMIN_PORT.to_string());
        pod_annotations.insert("prometheus.io/path".to_owned(), "/metrics".to_owned());
    }

    let pod_spec = broker_pod_spec(cluster, defaults);

    let delete_policy = if spec.storage.delete_claim {
        "Delete"
    } else {
        "Retain"
    };
    StatefulSet {
        metadata: child_meta(cluster, stateful_set_name(&name)),
        spec: StatefulSetSpec {
            replicas: Some(inputs.replicas),
            service_name: Some(headless_service_name(&name)),
            // Brokers start together: the controller quorum needs a majority of voters up
            // before any broker becomes ready, which ordered start-up would never reach.
            pod_management_policy: Some("Parallel".to_owned()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".to_owned()),
                ..StatefulSetUpdateStrategy::default()
            }),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(pod_annotations),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(DATA_VOLUME.to_owned()),
                    labels: Some(common_labels(&name)),
                    ..ObjectMeta::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                    storage_class_name: spec.storage.storage_class_name.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_owned(),
                            Quantity(inputs.claim_size.clone()),
                        )])),
                        ..VolumeResourceRequirements::default()
                    }),
                    ..PersistentVolumeClaimSpec::default()
                }),
                ..PersistentVolumeClaim::default()
            }]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(delete_policy.to_owned()),
                    // A scale-down only happens after the broker's replicas moved away; its volume
                    // is kept so a scale-up again reuses it.
                    when_scaled: Some("Retain".to_owned()),
                },
            ),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    }
}

/// The broker pod's spec: what each broker pod runs (container, image and resources after the
/// operator's defaults, probes, security, volumes, scheduling). The revision digests it
/// ([`desired`]), so a change to it, the operator's own defaults included, rolls the brokers.
pub fn broker_pod_spec(cluster: &Cluster, defaults: &BuildDefaults) -> PodSpec {
    let name = cluster.name_any();
    let spec = &cluster.spec;
    let selector = selector_labels(&name);
    let template = spec.template.clone().unwrap_or_default();
    PodSpec {
        containers: vec![broker_container(cluster, defaults)],
        // The broker never talks to the Kubernetes API.
        automount_service_account_token: Some(false),
        termination_grace_period_seconds: Some(TERMINATION_GRACE_SECONDS),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(BROKER_UID),
            run_as_group: Some(BROKER_UID),
            fs_group: Some(BROKER_UID),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".to_owned(),
                ..SeccompProfile::default()
            }),
            ..PodSecurityContext::default()
        }),
        affinity: Some(
            template
                .affinity
                .clone()
                .unwrap_or_else(|| default_affinity(cluster)),
        ),
        topology_spread_constraints: spec.rack.as_ref().map(|rack| {
            vec![TopologySpreadConstraint {
                max_skew: 1,
                topology_key: rack.topology_key.clone(),
                when_unsatisfiable: "DoNotSchedule".to_owned(),
                label_selector: Some(LabelSelector {
                    match_labels: Some(selector.clone()),
                    ..LabelSelector::default()
                }),
                ..TopologySpreadConstraint::default()
            }]
        }),
        node_selector: non_empty_map(template.node_selector),
        tolerations: non_empty_vec::<Toleration>(template.tolerations),
        priority_class_name: template.priority_class_name,
        volumes: Some(vec![
            Volume {
                name: CONFIG_VOLUME.to_owned(),
                config_map: Some(ConfigMapVolumeSource {
                    name: config_map_name(&name),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume {
                name: TMP_VOLUME.to_owned(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Volume::default()
            },
        ]),
        ..PodSpec::default()
    }
}

/// The day-2 target of `cluster` on Kubernetes: its revision digests the spec and the broker
/// pod spec the operator renders ([`broker_pod_spec`]), so pods started from another template
/// (a changed `--broker-image` default, for instance) count as running an older revision. The
/// pod template's labels and annotations stay out: the revision annotation is one of them, and
/// the config hash covers the dynamic broker configs, which change without a restart.
pub fn desired(cluster: &Cluster, defaults: &BuildDefaults) -> Desired {
    // Serializing a PodSpec is deterministic (struct fields in order, maps sorted), and it
    // cannot fail: every field is a string, number, boolean, list or string-keyed map.
    let rendered = serde_json::to_string(&broker_pod_spec(cluster, defaults)).unwrap_or_default();
    revision::desired_running(cluster, &rendered)
}

fn broker_container(cluster: &Cluster, defaults: &BuildDefaults) -> Container {
    let name = cluster.name_any();
    let namespace = cluster.namespace().unwrap_or_default();
    let port = cluster.spec.listeners.port;
    let image = resolve_image(cluster, defaults);
    // The kubelet expands `$(POD_NAME)` from the container's environment.
    let own_host = pod_dns_name(&name, &namespace, "$(POD_NAME)");
    let mut args = [
        "--config",
        &format!("{CONFIG_DIR}/{}", super::SERVER_PROPERTIES),
        "--data-dir",
        DATA_DIR,
        "--listen",
        &format!("0.0.0.0:{port}"),
        "--advertised-listener",
        &format!("{own_host}:{port}"),
        "--controller-listen",
        &format!("0.0.0.0:{CONTROLLER_PORT}"),
        "--controller-advertised-listener",
        &format!("{own_host}:{CONTROLLER_PORT}"),
        "--admin-listen",
        &format!("0.0.0.0:{ADMIN_PORT}"),
        "--node-id",
        "ordinal",
    ]
    .map(str::to_owned)
    .to_vec();
    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
    ];
    if let Some(rack) = &cluster.spec.rack {
        env.push(field_env(
            RACK_ENV,
            &format!("metadata.labels['{}']", rack.topology_key),
        ));
        args.push("--override".to_owned());
        args.push(format!("{BROKER_RACK}=$({RACK_ENV})"));
    }

    Container {
        name: "broker".to_owned(),
        image: Some(image.reference),
        image_pull_policy: image.pull_policy.map(|p| p.as_str().to_owned()),
        command: Some(vec!["/strom-broker".to_owned()]),
        args: Some(args),
        env: Some(env),
        ports: Some(vec![
            ContainerPort {
                name: Some("kafka".to_owned()),
                container_port: port,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("controller".to_owned()),
                container_port: CONTROLLER_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("admin".to_owned()),
                container_port: ADMIN_PORT,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        resources: cluster.spec.resources.clone(),
        // Log recovery after an unclean stop can take a while; liveness must not kill it.
        startup_probe: Some(http_probe("/healthz", 5, 60)),
        liveness_probe: Some(http_probe("/healthz", 10, 3)),
        readiness_probe: Some(http_probe("/readyz", 5, 3)),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: DATA_VOLUME.to_owned(),
                mount_path: DATA_DIR.to_owned(),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: CONFIG_VOLUME.to_owned(),
                mount_path: CONFIG_DIR.to_owned(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: TMP_VOLUME.to_owned(),
                mount_path: "/tmp".to_owned(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    }
}

/// Preferred (not required) anti-affinity: one broker per node, and per rack when rack
/// awareness is on, without leaving pods pending on small clusters.
fn default_affinity(cluster: &Cluster) -> Affinity {
    let selector = LabelSelector {
        match_labels: Some(selector_labels(&cluster.name_any())),
        ..LabelSelector::default()
    };
    let mut terms = vec![WeightedPodAffinityTerm {
        weight: 100,
        pod_affinity_term: PodAffinityTerm {
            label_selector: Some(selector.clone()),
            topology_key: "kubernetes.io/hostname".to_owned(),
            ..PodAffinityTerm::default()
        },
    }];
    if let Some(rack) = &cluster.spec.rack {
        terms.push(WeightedPodAffinityTerm {
            weight: 50,
            pod_affinity_term: PodAffinityTerm {
                label_selector: Some(selector),
                topology_key: rack.topology_key.clone(),
                ..PodAffinityTerm::default()
            },
        });
    }
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(terms),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn http_probe(path: &str, period_seconds: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("admin".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period_seconds),
        failure_threshold: Some(failure_threshold),
        timeout_seconds: Some(3),
        ..Probe::default()
    }
}

fn non_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

fn non_empty_vec<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}
