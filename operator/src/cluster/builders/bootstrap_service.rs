//! The bootstrap Service `<cluster>-bootstrap`: one stable address for clients' first
//! connection; after Metadata they talk to each broker's advertised name.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use strom_crds::Cluster;

use super::headless_service::SERVICE_ROLE_LABEL;
use super::{bootstrap_service_name, child_meta, selector_labels};

/// The ClusterIP Service `<cluster>-bootstrap` on the Kafka port (ready brokers only).
pub fn bootstrap_service(cluster: &Cluster) -> Service {
    let name = cluster.name_any();
    let mut metadata = child_meta(cluster, bootstrap_service_name(&name));
    metadata
        .labels
        .get_or_insert_default()
        .insert(SERVICE_ROLE_LABEL.to_owned(), "bootstrap".to_owned());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![ServicePort {
                name: Some("kafka".to_owned()),
                port: cluster.spec.listeners.port,
                target_port: Some(IntOrString::String("kafka".to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
