//! The PodDisruptionBudget: voluntary evictions (node drains, and the operator's own restarts)
//! take one broker at a time, so a partition with replication factor 3 never loses two
//! replicas to maintenance at once. A broker pod that is not ready serves nothing, so it may
//! always be evicted (`unhealthyPodEvictionPolicy: AlwaysAllow`, Kubernetes 1.27+): a
//! crash-looping broker is restarted even while another broker is down, and two unhealthy
//! brokers never block each other's restart.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use strom_crds::Cluster;

use super::{child_meta, selector_labels, stateful_set_name};

/// The PodDisruptionBudget `<cluster>-broker` with `maxUnavailable: 1`.
pub fn pod_disruption_budget(cluster: &Cluster) -> PodDisruptionBudget {
    let name = cluster.name_any();
    PodDisruptionBudget {
        metadata: child_meta(cluster, stateful_set_name(&name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector_labels(&name)),
                ..LabelSelector::default()
            }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_owned()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}
