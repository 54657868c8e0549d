//! The topic planner: a pure function from the desired topic, what Kafka reports and the config
//! keys this Topic managed last time, to the admin actions to take and the changes to refuse.
//!
//! Rules:
//! - a missing topic is created with the spec's partitions, replication factor and configs;
//! - an existing topic is adopted (no recreate): partitions only grow, configs converge;
//! - partitions never decrease (Kafka cannot remove partitions): refused;
//! - a replication factor change is not an admin request here: [`TopicPlan::replication_factor`]
//!   names it and the reconciler moves replicas through reassignment (`topic::replication`);
//! - configs: the managed keys are exactly the spec's keys. A managed key whose value differs
//!   (changed by hand or never set) is SET; a key managed before but gone from the spec is
//!   DELETED (back to the default) if the topic still has it; keys nobody here manages are left
//!   as they are.

use std::collections::{BTreeMap, BTreeSet};

use strom_admin::ObservedTopic;

/// What the Topic asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTopic {
    /// Kafka topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor; `None`: the broker default.
    pub replication_factor: Option<i16>,
    /// Topic configs.
    pub configs: BTreeMap<String, String>,
}

/// Replication factor sent in CreateTopics to mean "the broker's default.replication.factor".
pub const BROKER_DEFAULT_REPLICATION_FACTOR: i16 = -1;

/// One admin request to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicAction {
    /// CreateTopics.
    Create {
        /// Partition count.
        partitions: i32,
        /// Replication factor (or [`BROKER_DEFAULT_REPLICATION_FACTOR`]).
        replication_factor: i16,
        /// Configs set at creation.
        configs: BTreeMap<String, String>,
    },
    /// CreatePartitions up to `total`.
    CreatePartitions {
        /// The new partition count (greater than the current one).
        total: i32,
    },
    /// IncrementalAlterConfigs.
    AlterConfigs {
        /// Configs to SET.
        set: BTreeMap<String, String>,
        /// Configs to DELETE (reset to default).
        delete: BTreeSet<String>,
    },
}

/// A change the spec asks for that the operator will not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `spec.partitions` is below the topic's partition count.
    PartitionDecrease {
        /// Partitions the topic has.
        observed: i32,
        /// Partitions the spec asks for.
        desired: i32,
    },
}

impl Refusal {
    /// Condition/Event reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PartitionDecrease { .. } => "PartitionDecreaseRefused",
        }
    }

    /// What a person reads in the status and the Event.
    pub fn message(&self) -> String {
        match self {
            Self::PartitionDecrease { observed, desired } => format!(
                "spec.partitions is {desired} but the topic has {observed} partitions: Kafka cannot remove \
                 partitions; set spec.partitions to at least {observed}"
            ),
        }
    }
}

/// The outcome of planning.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPlan {
    /// Admin requests, in the order to make them.
    pub actions: Vec<TopicAction>,
    /// Changes refused; the other actions still apply.
    pub refusals: Vec<Refusal>,
    /// The config keys managed once the actions are done (to record in the status).
    pub managed_config_keys: BTreeSet<String>,
    /// The topic exists but this Topic did not manage it before (adoption).
    pub adopts: bool,
    /// The replication factor the spec asks for, when the existing topic has another one: a
    /// change through partition reassignment.
    pub replication_factor: Option<i16>,
}

/// Plans the admin requests that bring `observed` to `desired`.
///
/// `previously_managed` are the config keys this Topic managed after its last successful pass
/// (`status.managedConfigKeys`); `None` when it never managed the topic (new or adopted).
pub fn plan(
    desired: &DesiredTopic,
    observed: Option<&ObservedTopic>,
    previously_managed: Option<&BTreeSet<String>>,
) -> TopicPlan {
    let managed_config_keys: BTreeSet<String> = desired.configs.keys().cloned().collect();
    let Some(observed) = observed else {
        return TopicPlan {
            actions: vec![TopicAction::Create {
                partitions: desired.partitions,
                replication_factor: desired
                    .replication_factor
                    .unwrap_or(BROKER_DEFAULT_REPLICATION_FACTOR),
                configs: desired.configs.clone(),
            }],
            refusals: Vec::new(),
            managed_config_keys,
            adopts: false,
            replication_factor: None,
        };
    };

    let mut actions = Vec::new();
    let mut refusals = Vec::new();

    if desired.partitions > observed.partitions {
        actions.push(TopicAction::CreatePartitions {
            total: desired.partitions,
        });
    } else if desired.partitions < observed.partitions {
        refusals.push(Refusal::PartitionDecrease {
            observed: observed.partitions,
            desired: desired.partitions,
        });
    }

    let replication_factor = desired
        .replication_factor
        .filter(|rf| *rf != observed.replication_factor);

    let set: BTreeMap<String, String> = desired
        .configs
        .iter()
        .filter(|(key, value)| observed.configs.get(*key) != Some(*value))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let delete: BTreeSet<String> = previously_managed
        .into_iter()
        .flatten()
        .filter(|key| !desired.configs.contains_key(*key) && observed.configs.contains_key(*key))
        .cloned()
        .collect();
    if !set.is_empty() || !delete.is_empty() {
        actions.push(TopicAction::AlterConfigs { set, delete });
    }

    TopicPlan {
        actions,
        refusals,
        managed_config_keys,
        adopts: previously_managed.is_none(),
        replication_factor,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn keys(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|k| (*k).to_owned()).collect()
    }

    fn desired(partitions: i32, rf: Option<i16>, cfg: &[(&str, &str)]) -> DesiredTopic {
        DesiredTopic {
            name: "orders".to_owned(),
            partitions,
            replication_factor: rf,
            configs: configs(cfg),
        }
    }

    fn observed(partitions: i32, rf: i16, cfg: &[(&str, &str)]) -> ObservedTopic {
        ObservedTopic {
            name: "orders".to_owned(),
            topic_id: "AAAAAAAAAAAAAAAAAAAAAQ".to_owned(),
            partitions,
            replication_factor: rf,
            configs: configs(cfg),
        }
    }

    #[test]
    fn missing_topic_is_created_with_its_configs() {
        let plan = plan(
            &desired(6, Some(3), &[("retention.ms", "1000")]),
            None,
            None,
        );
        assert_eq!(
            plan.actions,
            vec![TopicAction::Create {
                partitions: 6,
                replication_factor: 3,
                configs: configs(&[("retention.ms", "1000")])
            }]
        );
        assert_eq!(plan.managed_config_keys, keys(&["retention.ms"]));
        assert!(plan.refusals.is_empty());
    }

    #[test]
    fn missing_replication_factor_means_broker_default() {
        let plan = plan(&desired(1, None, &[]), None, None);
        assert!(matches!(
            plan.actions[0],
            TopicAction::Create {
                replication_factor: -1,
                ..
            }
        ));
    }

    #[test]
    fn partitions_grow_but_never_shrink() {
        let grow = plan(
            &desired(12, None, &[]),
            Some(&observed(6, 3, &[])),
            Some(&keys(&[])),
        );
        assert_eq!(
            grow.actions,
            vec![TopicAction::CreatePartitions { total: 12 }]
        );
        let shrink = plan(
            &desired(3, None, &[]),
            Some(&observed(6, 3, &[])),
            Some(&keys(&[])),
        );
        assert!(shrink.actions.is_empty(), "no admin call on a decrease");
        assert_eq!(
            shrink.refusals,
            vec![Refusal::PartitionDecrease {
                observed: 6,
                desired: 3
            }]
        );
        assert!(shrink.refusals[0].message().contains("at least 6"));
    }

    #[test]
    fn replication_factor_change_is_named_not_refused() {
        let plan = plan(
            &desired(6, Some(1), &[]),
            Some(&observed(6, 3, &[])),
            Some(&keys(&[])),
        );
        assert!(plan.refusals.is_empty());
        assert!(plan.actions.is_empty(), "no CreateTopics-style request");
        assert_eq!(plan.replication_factor, Some(1));
        let same = plan_of(&desired(6, Some(3), &[]), &observed(6, 3, &[]));
        assert_eq!(same.replication_factor, None);
        let default = plan_of(&desired(6, None, &[]), &observed(6, 3, &[]));
        assert_eq!(
            default.replication_factor, None,
            "no factor in the spec changes nothing"
        );
    }

    fn plan_of(desired: &DesiredTopic, observed: &ObservedTopic) -> TopicPlan {
        plan(desired, Some(observed), Some(&keys(&[])))
    }

    #[test]
    fn drifted_managed_key_is_put_back_and_foreign_keys_stay() {
        let plan = plan(
            &desired(6, None, &[("retention.ms", "1000")]),
            Some(&observed(
                6,
                3,
                &[("retention.ms", "5"), ("cleanup.policy", "compact")],
            )),
            Some(&keys(&["retention.ms"])),
        );
        assert_eq!(
            plan.actions,
            vec![TopicAction::AlterConfigs {
                set: configs(&[("retention.ms", "1000")]),
                delete: BTreeSet::new()
            }]
        );
    }

    #[test]
    fn key_removed_from_spec_is_reset_only_if_we_managed_it() {
        let observed = observed(
            6,
            3,
            &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
        );
        let plan_managed = plan(
            &desired(6, None, &[]),
            Some(&observed),
            Some(&keys(&["retention.ms"])),
        );
        assert_eq!(
            plan_managed.actions,
            vec![TopicAction::AlterConfigs {
                set: BTreeMap::new(),
                delete: keys(&["retention.ms"])
            }]
        );
        assert!(plan_managed.managed_config_keys.is_empty());
        let plan_adopted = plan(&desired(6, None, &[]), Some(&observed), None);
        assert!(
            plan_adopted.actions.is_empty(),
            "an adopted topic keeps configs we never managed"
        );
        assert!(plan_adopted.adopts);
    }

    #[test]
    fn converged_topic_plans_nothing() {
        let plan = plan(
            &desired(6, Some(3), &[("retention.ms", "1000")]),
            Some(&observed(
                6,
                3,
                &[("retention.ms", "1000"), ("segment.bytes", "1")],
            )),
            Some(&keys(&["retention.ms"])),
        );
        assert_eq!(
            plan,
            TopicPlan {
                managed_config_keys: keys(&["retention.ms"]),
                ..TopicPlan::default()
            }
        );
    }

    /// Applies a plan the way Kafka would, to check where it leads.
    fn apply(observed: Option<ObservedTopic>, plan: &TopicPlan) -> ObservedTopic {
        let mut topic = observed.unwrap_or_else(observed_empty);
        for action in &plan.actions {
            match action {
                TopicAction::Create {
                    partitions,
                    replication_factor,
                    configs,
                } => {
                    topic.partitions = *partitions;
                    topic.replication_factor = if *replication_factor < 0 {
                        3
                    } else {
                        *replication_factor
                    };
                    topic.configs = configs.clone();
                }
                TopicAction::CreatePartitions { total } => {
                    assert!(
                        *total > topic.partitions,
                        "CreatePartitions must grow the topic"
                    );
                    topic.partitions = *total;
                }
                TopicAction::AlterConfigs { set, delete } => {
                    for key in delete {
                        topic.configs.remove(key);
                    }
                    topic.configs.extend(set.clone());
                }
            }
        }
        topic
    }

    fn observed_empty() -> ObservedTopic {
        observed(0, 0, &[])
    }

    fn config_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_owned),
            "[0-9]{1,2}",
            0..5,
        )
    }

    fn key_set() -> impl Strategy<Value = BTreeSet<String>> {
        prop::collection::btree_set(
            prop::sample::select(vec!["a", "b", "c", "d", "e"]).prop_map(str::to_owned),
            0..5,
        )
    }

    proptest! {
        #[test]
        fn plans_converge_and_never_touch_foreign_keys(
            desired_partitions in 1i32..20,
            desired_configs in config_map(),
            existing in prop::option::of((1i32..20, config_map())),
            previously in prop::option::of(key_set()),
        ) {
            let desired = DesiredTopic {
                name: "t".to_owned(),
                partitions: desired_partitions,
                replication_factor: None,
                configs: desired_configs.clone(),
            };
            let observed = existing.map(|(partitions, configs)| ObservedTopic {
                name: "t".to_owned(),
                topic_id: String::new(),
                partitions,
                replication_factor: 3,
                configs,
            });
            let plan1 = plan(&desired, observed.as_ref(), previously.as_ref());
            let after = apply(observed.clone(), &plan1);

            // Partitions never decrease, and reach the spec unless that would mean a decrease.
            if let Some(before) = &observed {
                prop_assert!(after.partitions >= before.partitions);
                prop_assert_eq!(after.partitions, desired_partitions.max(before.partitions));
                prop_assert_eq!(plan1.refusals.is_empty(), desired_partitions >= before.partitions);
            } else {
                prop_assert_eq!(after.partitions, desired_partitions);
            }
            // Every managed key has the spec's value.
            for (key, value) in &desired_configs {
                prop_assert_eq!(after.configs.get(key), Some(value));
            }
            // Keys neither in the spec nor managed before are untouched.
            if let Some(before) = &observed {
                for (key, value) in &before.configs {
                    let ours = desired_configs.contains_key(key)
                        || previously.as_ref().is_some_and(|p| p.contains(key));
                    if !ours {
                        prop_assert_eq!(after.configs.get(key), Some(value));
                    } else if !desired_configs.contains_key(key) {
                        prop_assert!(!after.configs.contains_key(key), "removed key {} is reset", key);
                    }
                }
            }
            // A second pass on the result has nothing left to do.
            let plan2 = plan(&desired, Some(&after), Some(&plan1.managed_config_keys));
            prop_assert!(plan2.actions.is_empty(), "second plan {:?}", plan2.actions);
        }
    }
}
