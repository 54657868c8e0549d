//! Asking every broker pod's broker how it sees the cluster, through the admin port
//! ([`AdminFactory`] + [`ClusterAdmin`]), so the status can say whether the brokers form one
//! cluster ([`super::agreement`]).

use futures::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use strom_admin::ClusterAdmin;
use strom_crds::Cluster;

use super::agreement::BrokerAnswer;
use super::builders::{pod_dns_name, stateful_set_name};
use super::status::pod_ready;
use crate::context::AdminFactory;

/// DescribeCluster on the broker of each ready pod with an id in `0..spec.replicas`, at the
/// pod's stable address `<pod>.<cluster>-brokers.<namespace>.svc:<port>`, all at once; each
/// connection and request is bounded by the admin client's timeout. Pods that are missing or
/// not ready are not asked: the cluster is not ready anyway, and a starting broker would only
/// make the pass wait for the timeout.
pub async fn ask_brokers<F: AdminFactory>(
    admin: &F,
    cluster: &Cluster,
    namespace: &str,
    pods: &[Pod],
) -> Vec<BrokerAnswer> {
    let name = cluster.name_any();
    let prefix = format!("{}-", stateful_set_name(&name));
    let port = cluster.spec.listeners.port;
    let mut targets: Vec<(i32, String)> = pods
        .iter()
        .filter_map(|pod| {
            let pod_name = pod.name_any();
            let id = pod_name.strip_prefix(&prefix)?.parse::<i32>().ok()?;
            ((0..cluster.spec.replicas).contains(&id) && pod_ready(pod)).then(|| {
                let address = format!("{}:{port}", pod_dns_name(&name, namespace, &pod_name));
                (id, address)
            })
        })
        .collect();
    targets.sort();
    join_all(targets.into_iter().map(|(id, address)| async move {
        let result = match admin.connect(&address).await {
            Ok(client) => client.describe_cluster().await,
            Err(error) => Err(error),
        };
        if let Err(error) = &result {
            tracing::debug!(broker = id, %address, %error, "DescribeCluster failed");
        }
        BrokerAnswer {
            id,
            result: result.map_err(|error| error.to_string()),
        }
    }))
    .await
}
