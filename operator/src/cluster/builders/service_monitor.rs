//! The prometheus-operator ServiceMonitor, built as a `DynamicObject` so the operator needs no
//! crate for prometheus-operator's types; it is applied only when its CRD is installed.

use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;
use strom_crds::Cluster;

use super::headless_service::SERVICE_ROLE_LABEL;
use super::{child_meta, selector_labels, stateful_set_name};

/// The API resource of `monitoring.coreos.com/v1` ServiceMonitor.
pub fn service_monitor_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("monitoring.coreos.com", "v1", "ServiceMonitor"),
        "servicemonitors",
    )
}

/// The ServiceMonitor `<cluster>-broker` scraping `/metrics` on every broker's admin port
/// through the headless Service. Its relabeling sets the target labels the shipped rules and
/// dashboards group by, as `deploy/prometheus/scrape-config.example.yaml` does: `cluster` (the
/// Cluster's name) and `instance` (the pod name).
pub fn service_monitor(cluster: &Cluster) -> DynamicObject {
    let name = cluster.name_any();
    let mut match_labels = selector_labels(&name);
    match_labels.insert(SERVICE_ROLE_LABEL.to_owned(), "brokers".to_owned());
    let mut object = DynamicObject::new(&stateful_set_name(&name), &service_monitor_resource());
    object.metadata = child_meta(cluster, stateful_set_name(&name));
    object.data = json!({
        "spec": {
            "selector": { "matchLabels": match_labels },
            "endpoints": [{
                "port": "admin",
                "path": "/metrics",
                "relabelings": [
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_instance"],
                        "targetLabel": "cluster",
                    },
                    {
                        "sourceLabels": ["__meta_kubernetes_pod_name"],
                        "targetLabel": "instance",
                    },
                ],
            }],
        }
    });
    object
}
