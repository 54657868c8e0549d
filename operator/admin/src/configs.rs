//! [`ConfigAdmin`]: effective configs of topics and brokers (DescribeConfigs, API 32) and
//! changes to several resources at once (IncrementalAlterConfigs, API 44, KIP-339).
//!
//! A BROKER resource is a broker's own: as the Java admin client does, its requests go to that
//! broker. TOPIC resources and the cluster-wide broker defaults go to any broker, in one
//! request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use crate::AdminRequest;
use crate::client::{KafkaAdmin, Target};
use crate::error::{AdminError, KafkaError};

/// `ConfigResource.Type.TOPIC`.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// `ConfigResource.Type.BROKER`.
const RESOURCE_TYPE_BROKER: i8 = 4;
/// `AlterConfigOp.OpType.SET` and `.DELETE`.
const CONFIG_OP_SET: i8 = 0;
const CONFIG_OP_DELETE: i8 = 1;
/// `DescribeConfigsResponse.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG`.
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 4;

/// A resource that has configs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id (its per-broker dynamic configs).
    Broker(i32),
    /// The cluster-wide dynamic broker defaults (the BROKER resource with an empty name),
    /// which every broker applies unless its own config overrides them.
    BrokerDefault,
}

impl ConfigResource {
    fn wire(&self) -> (i8, StrBytes) {
        match self {
            Self::Topic(name) => (RESOURCE_TYPE_TOPIC, StrBytes::from_string(name.clone())),
            Self::Broker(id) => (RESOURCE_TYPE_BROKER, StrBytes::from_string(id.to_string())),
            Self::BrokerDefault => (RESOURCE_TYPE_BROKER, StrBytes::from_static_str("")),
        }
    }

    fn target(&self) -> Target {
        match self {
            Self::Topic(_) | Self::BrokerDefault => Target::Any,
            Self::Broker(id) => Target::Node(*id),
        }
    }
}

impl fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Topic(name) => write!(f, "topic {name}"),
            Self::Broker(id) => write!(f, "broker {id}"),
            Self::BrokerDefault => f.write_str("the cluster-wide broker defaults"),
        }
    }
}

/// The changes of one resource in an IncrementalAlterConfigs request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChanges {
    /// Keys to SET, with their values.
    pub set: BTreeMap<String, String>,
    /// Keys to DELETE (back to the next source: the broker's, then the default).
    pub delete: BTreeSet<String>,
}

impl ConfigChanges {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.delete.is_empty()
    }
}

/// Per resource, its configs or its own error.
pub type DescribedConfigs = BTreeMap<ConfigResource, Result<BTreeMap<String, String>, KafkaError>>;
/// Per resource, whether its changes were applied.
pub type AlteredConfigs = BTreeMap<ConfigResource, Result<(), KafkaError>>;

/// Configs of topics and brokers, read and changed the way `kafka-configs.sh` does.
pub trait ConfigAdmin: Send + Sync {
    /// DescribeConfigs: the effective value of each of `keys` (`None`: every key) for each
    /// resource, whatever set it (the resource itself, the broker, or the default); for
    /// [`ConfigResource::BrokerDefault`], only the keys set cluster-wide. Sensitive values,
    /// which come back null, are left out.
    fn describe_effective_configs(
        &self,
        resources: &[ConfigResource],
        keys: Option<&[&str]>,
    ) -> impl Future<Output = Result<DescribedConfigs, AdminError>> + Send;

    /// IncrementalAlterConfigs: per resource, SET and DELETE its keys. Resources with no
    /// change are not sent and not in the answer.
    fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, ConfigChanges>,
    ) -> impl Future<Output = Result<AlteredConfigs, AdminError>> + Send;
}

/// Resources grouped by where their requests go: TOPIC resources together, each BROKER
/// resource alone.
fn by_target<'a>(
    resources: impl IntoIterator<Item = &'a ConfigResource>,
) -> Vec<(Target, Vec<&'a ConfigResource>)> {
    let mut topics = Vec::new();
    let mut groups = Vec::new();
    for resource in resources {
        match resource {
            ConfigResource::Topic(_) | ConfigResource::BrokerDefault => topics.push(resource),
            ConfigResource::Broker(_) => groups.push((resource.target(), vec![resource])),
        }
    }
    if !topics.is_empty() {
        groups.insert(0, (Target::Any, topics));
    }
    groups
}

impl KafkaAdmin {
    fn missing_resource(&self, api: &'static str, resource: &ConfigResource) -> AdminError {
        AdminError::Protocol {
            broker: self.bootstrap().to_owned(),
            api,
            reason: format!("the response has no entry for {resource}"),
        }
    }
}

impl ConfigAdmin for KafkaAdmin {
    async fn describe_effective_configs(
        &self,
        resources: &[ConfigResource],
        keys: Option<&[&str]>,
    ) -> Result<DescribedConfigs, AdminError> {
        let api = DescribeConfigsRequest::NAME;
        let keys: Option<Vec<StrBytes>> = keys.map(|keys| {
            keys.iter()
                .map(|k| StrBytes::from_string((*k).to_owned()))
                .collect()
        });
        let mut described = DescribedConfigs::new();
        for (target, group) in by_target(resources) {
            let request = DescribeConfigsRequest::default()
                .with_include_synonyms(false)
                .with_resources(
                    group
                        .iter()
                        .map(|resource| {
                            let (kind, name) = resource.wire();
                            DescribeConfigsResource::default()
                                .with_resource_type(kind)
                                .with_resource_name(name)
                                .with_configuration_keys(keys.clone())
                        })
                        .collect(),
                );
            let (_, response) = self.send_to(target, |_| request).await?;
            for resource in group {
                let (kind, name) = resource.wire();
                let result = response
                    .results
                    .iter()
                    .find(|r| r.resource_type == kind && r.resource_name == name)
                    .ok_or_else(|| self.missing_resource(api, resource))?;
                let outcome = KafkaError::check(result.error_code, result.error_message.as_deref())
                    .map(|()| {
                        result
                            .configs
                            .iter()
                            // The defaults resource means the keys set there, not every key a
                            // broker would report for it.
                            .filter(|c| {
                                *resource != ConfigResource::BrokerDefault
                                    || c.config_source == SOURCE_DYNAMIC_DEFAULT_BROKER
                            })
                            .filter_map(|c| {
                                Some((c.name.to_string(), c.value.as_ref()?.to_string()))
                            })
                            .collect()
                    });
                described.insert(resource.clone(), outcome);
            }
        }
        Ok(described)
    }

    async fn incremental_alter_configs(
        &self,
        changes: &BTreeMap<ConfigResource, ConfigChanges>,
    ) -> Result<AlteredConfigs, AdminError> {
        let api = IncrementalAlterConfigsRequest::NAME;
        let mut altered = AlteredConfigs::new();
        let wanted = changes
            .iter()
            .filter(|(_, change)| !change.is_empty())
            .map(|(resource, _)| resource);
        for (target, group) in by_target(wanted) {
            let resources = group
                .iter()
                .map(|resource| {
                    let change = &changes[*resource];
                    let (kind, name) = resource.wire();
                    let ops = change
                        .set
                        .iter()
                        .map(|(key, value)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(key.clone()))
                                .with_config_operation(CONFIG_OP_SET)
                                .with_value(Some(StrBytes::from_string(value.clone())))
                        })
                        .chain(change.delete.iter().map(|key| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_string(key.clone()))
                                .with_config_operation(CONFIG_OP_DELETE)
                                .with_value(None)
                        }))
                        .collect();
                    AlterConfigsResource::default()
                        .with_resource_type(kind)
                        .with_resource_name(name)
                        .with_configs(ops)
                })
                .collect();
            let request = IncrementalAlterConfigsRequest::default()
                .with_resources(resources)
                .with_validate_only(false);
            let (_, response) = self.send_to(target, |_| request).await?;
            for resource in group {
                let (kind, name) = resource.wire();
                let result = response
                    .responses
                    .iter()
                    .find(|r| r.resource_type == kind && r.resource_name == name)
                    .ok_or_else(|| self.missing_resource(api, resource))?;
                altered.insert(
                    resource.clone(),
                    KafkaError::check(result.error_code, result.error_message.as_deref()),
                );
            }
        }
        Ok(altered)
    }
}
