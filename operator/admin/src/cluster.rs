//! The [`ClusterAdmin`] operation on [`KafkaAdmin`]: DescribeCluster (KIP-700) on the broker
//! the client is connected to.

use kafka_protocol::messages::DescribeClusterRequest;

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::{AdminError, check};
use crate::{ClusterAdmin, ClusterDescription, DescribedBroker};

/// `DescribeClusterRequest.EndpointType.BROKER`: describe the brokers' listeners, not the
/// controllers' (KIP-919).
const ENDPOINT_TYPE_BROKER: i8 = 1;

impl ClusterAdmin for KafkaAdmin {
    async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        let (_, response) = self
            .send_to(Target::Any, |version| {
                DescribeClusterRequest::default()
                    .with_include_cluster_authorized_operations(false)
                    .with_endpoint_type(ENDPOINT_TYPE_BROKER)
                    // v2 (KIP-1073) can list fenced brokers as such; earlier versions leave
                    // them out, which reads the same to a caller asking who is unfenced.
                    .with_include_fenced_brokers(version >= 2)
            })
            .await?;
        check(
            DescribeClusterRequest::NAME,
            response.error_code,
            response.error_message.as_deref(),
        )?;
        let mut brokers: Vec<DescribedBroker> = response
            .brokers
            .into_iter()
            .map(|broker| DescribedBroker {
                node_id: broker.broker_id.0,
                host: broker.host.to_string(),
                port: broker.port,
                rack: broker.rack.map(|rack| rack.to_string()),
                fenced: broker.is_fenced,
            })
            .collect();
        brokers.sort_by_key(|broker| broker.node_id);
        Ok(ClusterDescription {
            cluster_id: response.cluster_id.to_string(),
            controller_id: (response.controller_id.0 >= 0).then_some(response.controller_id.0),
            brokers,
        })
    }
}
