//! Broker configs the brokers apply without a restart, set cluster-wide through the admin API
//! whenever what the brokers report differs from the spec.

use std::collections::BTreeMap;

use strom_crds::cluster::OperationStatus;

use super::Ctx;
use crate::day2::action::{Action, Plan};
use crate::day2::revision::DYNAMIC_BROKER_CONFIG_KEYS;

/// `AlterBrokerConfigs` with the keys whose value differs from the spec (an empty value
/// deletes a dynamic key the spec no longer sets); `None` when they agree. The operation in
/// progress is left as it is: the change needs no step of its own.
pub(super) fn plan(ctx: &Ctx<'_>, previous: Option<&OperationStatus>) -> Option<Plan> {
    let observed = &ctx.admin.dynamic_config;
    let mut configs: BTreeMap<String, String> = ctx
        .desired
        .dynamic_config
        .iter()
        .filter(|(key, value)| observed.get(*key).map(|v| v.trim()) != Some(value.trim()))
        .map(|(key, value)| (key.clone(), value.trim().to_owned()))
        .collect();
    for key in DYNAMIC_BROKER_CONFIG_KEYS {
        if observed.contains_key(*key) && !ctx.desired.dynamic_config.contains_key(*key) {
            configs.insert((*key).to_owned(), String::new());
        }
    }
    (!configs.is_empty()).then(|| Plan {
        action: Action::AlterBrokerConfigs { configs },
        operation: previous.cloned(),
        blockers: Vec::new(),
    })
}
