//! The headless Service that gives every broker pod a stable DNS name,
//! `<pod>.<cluster>-brokers.<namespace>.svc`, which the brokers advertise to Kafka clients and
//! to each other for the controller quorum.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use strom_crds::Cluster;
use strom_crds::cluster::{ADMIN_PORT, CONTROLLER_PORT};

use super::{child_meta, headless_service_name, selector_labels};

/// Label that tells the headless Service apart from the bootstrap one (the ServiceMonitor
/// selects on it, so each broker is scraped once).
pub const SERVICE_ROLE_LABEL: &str = "strom.io/service";

/// The headless Service `<cluster>-brokers`.
pub fn headless_service(cluster: &Cluster) -> Service {
    let name = cluster.name_any();
    let mut metadata = child_meta(cluster, headless_service_name(&name));
    metadata
        .labels
        .get_or_insert_default()
        .insert(SERVICE_ROLE_LABEL.to_owned(), "brokers".to_owned());
    Service {
        metadata,
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            // Brokers must resolve each other before they are ready: the controller quorum
            // forms from not-yet-ready pods.
            publish_not_ready_addresses: Some(true),
            selector: Some(selector_labels(&name)),
            ports: Some(vec![
                ServicePort {
                    name: Some("kafka".to_owned()),
                    port: cluster.spec.listeners.port,
                    target_port: Some(IntOrString::String("kafka".to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some("controller".to_owned()),
                    port: CONTROLLER_PORT,
                    target_port: Some(IntOrString::String("controller".to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
                ServicePort {
                    name: Some("admin".to_owned()),
                    port: ADMIN_PORT,
                    target_port: Some(IntOrString::String("admin".to_owned())),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                },
            ]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
