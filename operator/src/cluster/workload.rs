//! [`KubeWorkload`]: the day-2 [`Workload`] port over a Cluster's StatefulSet and its broker
//! pods.
//!
//! - observe: the StatefulSet's `spec.replicas` and one [`WorkloadBroker`] per pod (id from
//!   the ordinal, revision from the pod's `strom.io/revision` annotation, ready from its
//!   `Ready` condition, restarting while it is being deleted or while a pod the StatefulSet
//!   should run is missing, crash-looping when a container waits in `CrashLoopBackOff`, its
//!   volume's filesystem resize pending when its data claim reports
//!   `FileSystemResizePending=True`);
//! - scale: a merge patch of the StatefulSet's `spec.replicas` (the next apply of the
//!   StatefulSet carries the replicas the workload runs, so the two agree);
//! - restart: an eviction of the pod (`pods/eviction`), not a delete. An eviction is checked
//!   against the Cluster's PodDisruptionBudget, the same budget node drains and the cluster
//!   autoscaler go through, so the operator and a concurrent `kubectl drain` never take two
//!   brokers down together. The budget lets unhealthy pods go at any time
//!   (`unhealthyPodEvictionPolicy: AlwaysAllow`), so a crash-looping broker can always be
//!   restarted first. The eviction carries the uid of the pod last observed as a
//!   precondition: a pod the StatefulSet already recreated is never restarted a second time.

use std::collections::BTreeMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::Eviction;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, ObjectMeta, Preconditions};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use super::builders::{FIELD_MANAGER, pod_name, selector_labels, stateful_set_name};
use super::status::pod_ready;
use super::storage::{list_claims, resize_pending};
use crate::day2::revision::REVISION_ANNOTATION;
use crate::day2::{Workload, WorkloadBroker, WorkloadState};
use crate::error::Error;

/// The `waiting` reason the kubelet gives a container it keeps restarting.
const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";

/// A Cluster's StatefulSet and broker pods as the day-2 workload.
pub struct KubeWorkload {
    pods: Api<Pod>,
    stateful_sets: Api<StatefulSet>,
    claims: Api<PersistentVolumeClaim>,
    namespace: String,
    cluster: String,
    /// Per broker, the uid of its pod at the last observation.
    observed_uids: Mutex<BTreeMap<i32, String>>,
}

impl std::fmt::Debug for KubeWorkload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeWorkload")
            .field("namespace", &self.namespace)
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

/// The StatefulSet and broker pods one observation found.
#[derive(Debug, Clone, Default)]
pub struct WorkloadObjects {
    /// The broker StatefulSet, when it exists.
    pub stateful_set: Option<StatefulSet>,
    /// The Cluster's broker pods.
    pub pods: Vec<Pod>,
    /// The Cluster's PersistentVolumeClaims (the brokers' data claims).
    pub claims: Vec<PersistentVolumeClaim>,
}

impl KubeWorkload {
    /// The workload of Cluster `cluster` in `namespace`.
    pub fn new(client: Client, namespace: &str, cluster: &str) -> Self {
        Self {
            pods: Api::namespaced(client.clone(), namespace),
            stateful_sets: Api::namespaced(client.clone(), namespace),
            claims: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            cluster: cluster.to_owned(),
            observed_uids: Mutex::new(BTreeMap::new()),
        }
    }

    /// GETs the StatefulSet and lists the broker pods and the Cluster's claims, remembering
    /// each pod's uid for [`Workload::restart`].
    pub async fn fetch(&self) -> Result<WorkloadObjects, Error> {
        let sts_name = stateful_set_name(&self.cluster);
        let stateful_set = self
            .stateful_sets
            .get_opt(&sts_name)
            .await
            .map_err(Error::kube(format!(
                "get StatefulSet {}/{sts_name}",
                self.namespace
            )))?;
        let selector = selector_labels(&self.cluster)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let pods = self
            .pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(Error::kube(format!(
                "list broker pods of Cluster {}/{}",
                self.namespace, self.cluster
            )))?
            .items;
        let uids = pods
            .iter()
            .filter_map(|pod| Some((broker_id(&self.cluster, pod)?, pod.uid()?)))
            .collect();
        *self
            .observed_uids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = uids;
        let claims = list_claims(&self.claims, &self.namespace, &self.cluster).await?;
        Ok(WorkloadObjects {
            stateful_set,
            pods,
            claims,
        })
    }

    /// The broker id of `pod`, when it is one of this Cluster's broker pods.
    pub fn broker_id(&self, pod: &Pod) -> Option<i32> {
        broker_id(&self.cluster, pod)
    }
}

impl WorkloadObjects {
    /// The workload as the day-2 plan reads it.
    pub fn state(&self, cluster: &str) -> WorkloadState {
        workload_state(
            cluster,
            self.stateful_set.as_ref(),
            &self.pods,
            &self.claims,
        )
    }
}

/// The broker id of `pod`: the ordinal after `<cluster>-broker-`.
fn broker_id(cluster: &str, pod: &Pod) -> Option<i32> {
    let prefix = format!("{}-", stateful_set_name(cluster));
    pod.name_any().strip_prefix(&prefix)?.parse::<i32>().ok()
}

/// The workload of `cluster` from its StatefulSet, pods and claims: `replicas` is the
/// StatefulSet's `spec.replicas` (0 without a StatefulSet), and every broker id below it
/// without a pod is listed as restarting (the StatefulSet controller is about to create it).
pub fn workload_state(
    cluster: &str,
    stateful_set: Option<&StatefulSet>,
    pods: &[Pod],
    claims: &[PersistentVolumeClaim],
) -> WorkloadState {
    // The API server defaults `spec.replicas` to 1.
    let replicas = stateful_set.map_or(0, |sts| sts.spec.replicas.unwrap_or(1));
    let resizing = resize_pending(cluster, claims);
    let mut brokers: BTreeMap<i32, WorkloadBroker> = pods
        .iter()
        .filter_map(|pod| {
            let id = broker_id(cluster, pod)?;
            Some((
                id,
                WorkloadBroker {
                    id,
                    revision: pod.annotations().get(REVISION_ANNOTATION).cloned(),
                    ready: pod_ready(pod),
                    restarting: pod.metadata.deletion_timestamp.is_some(),
                    crash_looping: crash_looping(pod),
                    resize_pending: resizing.contains(&id),
                },
            ))
        })
        .collect();
    for id in 0..replicas {
        brokers.entry(id).or_insert(WorkloadBroker {
            id,
            revision: None,
            ready: false,
            restarting: true,
            crash_looping: false,
            resize_pending: resizing.contains(&id),
        });
    }
    WorkloadState {
        replicas,
        brokers: brokers.into_values().collect(),
    }
}

/// Whether a container of `pod` waits in `CrashLoopBackOff`.
fn crash_looping(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .is_some_and(|statuses| {
            statuses.iter().any(|c| {
                c.state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some(CRASH_LOOP_BACK_OFF)
            })
        })
}

impl Workload for KubeWorkload {
    async fn observe(&self) -> Result<WorkloadState, Error> {
        Ok(self.fetch().await?.state(&self.cluster))
    }

    async fn scale(&self, replicas: i32) -> Result<(), Error> {
        let name = stateful_set_name(&self.cluster);
        self.stateful_sets
            .patch(
                &name,
                &PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map_err(Error::kube(format!(
                "set replicas of StatefulSet {}/{name} to {replicas}",
                self.namespace
            )))?;
        Ok(())
    }

    async fn restart(&self, broker: i32) -> Result<(), Error> {
        self.evict(broker).await.map(|_| ())
    }
}

/// What an eviction of a broker pod came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evicted {
    /// The API server accepted the eviction: the pod is being deleted.
    Accepted,
    /// The pod observed was already gone (404) or replaced by a pod with another uid (409 on
    /// the uid precondition): nothing was evicted, the StatefulSet recreated it from the
    /// current template.
    AlreadyReplaced {
        /// The API server's answer.
        message: String,
    },
}

impl KubeWorkload {
    /// Evicts the pod of `broker`, with the uid it was last observed with as a precondition
    /// (see the module docs), and says whether the eviction happened.
    pub async fn evict(&self, broker: i32) -> Result<Evicted, Error> {
        let pod = pod_name(&self.cluster, broker);
        let uid = self
            .observed_uids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&broker)
            .cloned();
        let eviction = Eviction {
            metadata: ObjectMeta {
                name: Some(pod.clone()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            delete_options: uid.map(|uid| DeleteOptions {
                preconditions: Some(Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteOptions::default()
            }),
        };
        let result: Result<kube::core::Status, kube::Error> = self
            .pods
            .create_subresource("eviction", &pod, &PostParams::default(), &eviction)
            .await;
        match result {
            Ok(_) => Ok(Evicted::Accepted),
            // Gone already, or a newer pod than the one observed (the uid precondition failed):
            // the StatefulSet recreated it, and it starts from the current template.
            Err(kube::Error::Api(status))
                if status.code == 404
                    || (status.code == 409
                        && status.message.to_ascii_lowercase().contains("precondition")) =>
            {
                tracing::info!(%pod, code = status.code, message = %status.message, "pod already replaced");
                Ok(Evicted::AlreadyReplaced {
                    message: status.message,
                })
            }
            // 429: the PodDisruptionBudget allows no disruption now; 409 otherwise: the budget
            // was being updated by another eviction. Both are worth trying again later.
            Err(kube::Error::Api(status)) if status.code == 429 || status.code == 409 => {
                Err(Error::EvictionRefused {
                    pod,
                    message: status.message,
                })
            }
            Err(source) => Err(Error::Kube {
                action: format!("evict pod {}/{pod}", self.namespace),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::StatefulSetSpec;
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateWaiting, ContainerStatus, PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn pod(id: i32, revision: Option<&str>, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("demo-broker-{id}")),
                annotations: revision
                    .map(|r| BTreeMap::from([(REVISION_ANNOTATION.to_owned(), r.to_owned())])),
                ..ObjectMeta::default()
            },
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    fn sts(replicas: i32) -> StatefulSet {
        StatefulSet {
            spec: StatefulSetSpec {
                replicas: Some(replicas),
                ..StatefulSetSpec::default()
            },
            ..StatefulSet::default()
        }
    }

    fn broker(id: i32, revision: Option<&str>, ready: bool) -> WorkloadBroker {
        WorkloadBroker {
            id,
            revision: revision.map(str::to_owned),
            ready,
            restarting: false,
            crash_looping: false,
            resize_pending: false,
        }
    }

    #[test]
    fn brokers_come_from_pod_ordinals_revisions_and_readiness() {
        let pods = [
            pod(2, Some("r2"), false),
            pod(0, Some("r1"), true),
            pod(1, None, true),
        ];
        let state = workload_state("demo", Some(&sts(3)), &pods, &[]);
        assert_eq!(
            state,
            WorkloadState {
                replicas: 3,
                brokers: vec![
                    broker(0, Some("r1"), true),
                    broker(1, None, true),
                    broker(2, Some("r2"), false),
                ],
            }
        );
    }

    #[test]
    fn deleted_and_missing_pods_are_restarting() {
        let mut terminating = pod(1, Some("r1"), true);
        terminating.metadata.deletion_timestamp = Some(Time(
            Timestamp::from_second(1_767_225_600).expect("valid timestamp"),
        ));
        let pods = [pod(0, Some("r1"), true), terminating];
        let state = workload_state("demo", Some(&sts(3)), &pods, &[]);
        let restarting: Vec<(i32, bool, bool)> = state
            .brokers
            .iter()
            .map(|b| (b.id, b.restarting, b.ready))
            .collect();
        assert_eq!(
            restarting,
            [(0, false, true), (1, true, true), (2, true, false)]
        );
        assert_eq!(state.brokers[2].revision, None);
    }

    #[test]
    fn crash_loop_back_off_marks_the_broker() {
        let mut looping = pod(1, Some("r1"), false);
        if let Some(status) = looping.status.as_mut() {
            status.container_statuses = Some(vec![ContainerStatus {
                name: "broker".to_owned(),
                restart_count: 7,
                state: Some(ContainerState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(CRASH_LOOP_BACK_OFF.to_owned()),
                        message: Some("back-off 5m0s restarting failed container".to_owned()),
                    }),
                    ..ContainerState::default()
                }),
                ..ContainerStatus::default()
            }]);
        }
        let state = workload_state("demo", Some(&sts(2)), &[pod(0, None, true), looping], &[]);
        assert_eq!(
            state
                .brokers
                .iter()
                .map(|b| b.crash_looping)
                .collect::<Vec<_>>(),
            [false, true]
        );
    }

    #[test]
    fn pods_above_replicas_and_foreign_pods() {
        // Broker 3 still runs after the StatefulSet went to 3; a pod of another StatefulSet
        // with a similar name is not a broker of this cluster.
        let mut other = pod(0, None, true);
        other.metadata.name = Some("demo-broker-tools-0".to_owned());
        let pods = [
            pod(0, None, true),
            pod(1, None, true),
            pod(2, None, true),
            pod(3, None, true),
            other,
        ];
        let state = workload_state("demo", Some(&sts(3)), &pods, &[]);
        assert_eq!(
            state.brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(state.replicas, 3);
    }

    #[test]
    fn no_stateful_set_runs_nothing() {
        assert_eq!(
            workload_state("demo", None, &[], &[]),
            WorkloadState {
                replicas: 0,
                brokers: Vec::new()
            }
        );
    }
}
