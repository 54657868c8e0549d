//! Whether a cluster's brokers form one cluster, judged from what each broker answers to
//! DescribeCluster (pure: the reconciler asks, this decides).
//!
//! Each broker is asked through its own stable pod address, not through the bootstrap
//! Service: brokers that each formed a cluster of their own all answer, each with its own
//! cluster id, while one answer through the bootstrap Service would look healthy. The cluster
//! is one when every broker `0..replicas` answers, all name the same cluster id and the same
//! active controller, and every broker `0..replicas` is registered and unfenced in every
//! answer.

use std::collections::{BTreeMap, BTreeSet};

use strom_admin::ClusterDescription;

/// What one broker answered, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAnswer {
    /// The broker id (pod ordinal) that was asked.
    pub id: i32,
    /// Its DescribeCluster answer, or the error of connecting or asking (as text).
    pub result: Result<ClusterDescription, String>,
}

/// The verdict over all answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// One cluster: every broker is registered and unfenced, and all agree on these.
    Agreed {
        /// The cluster id every broker reports.
        cluster_id: String,
        /// The active controller every broker reports.
        controller_id: i32,
    },
    /// Not (yet) one cluster; `reason` is the condition reason, `message` names the brokers.
    NotAgreed {
        /// `BrokersUnreachable`, `ClusterIdMismatch`, `NoActiveController`,
        /// `ControllerMismatch` or `BrokersNotRegistered`.
        reason: &'static str,
        /// What is wrong, naming the brokers concerned.
        message: String,
    },
}

/// Judges the answers of a cluster of `replicas` brokers; answers from ids outside
/// `0..replicas` (brokers being removed) are ignored.
pub fn agreement(replicas: i32, answers: &[BrokerAnswer]) -> Agreement {
    let by_id: BTreeMap<i32, &Result<ClusterDescription, String>> = answers
        .iter()
        .filter(|a| (0..replicas).contains(&a.id))
        .map(|a| (a.id, &a.result))
        .collect();

    let silent: Vec<String> = (0..replicas)
        .filter_map(|id| match by_id.get(&id) {
            None => Some(format!(
                "broker {id} (not asked: its pod is missing or not ready)"
            )),
            Some(Err(error)) => Some(format!("broker {id} ({error})")),
            Some(Ok(_)) => None,
        })
        .collect();
    if !silent.is_empty() {
        return not_agreed(
            "BrokersUnreachable",
            format!("no admin API answer from {}", silent.join("; ")),
        );
    }
    let descriptions: BTreeMap<i32, &ClusterDescription> = by_id
        .into_iter()
        .filter_map(|(id, result)| result.as_ref().ok().map(|d| (id, d)))
        .collect();

    let cluster_ids = group(&descriptions, |d| Some(d.cluster_id.clone()));
    if cluster_ids.len() > 1 {
        return not_agreed(
            "ClusterIdMismatch",
            format!(
                "brokers report different cluster ids, so they are not one cluster: {}",
                describe_groups(&cluster_ids)
            ),
        );
    }

    let without_controller: Vec<i32> = descriptions
        .iter()
        .filter(|(_, d)| d.controller_id.is_none())
        .map(|(&id, _)| id)
        .collect();
    if !without_controller.is_empty() {
        return not_agreed(
            "NoActiveController",
            format!(
                "{} {} {} of no active controller",
                capitalised(brokers_word(without_controller.len())),
                id_list(&without_controller),
                if without_controller.len() == 1 {
                    "knows"
                } else {
                    "know"
                }
            ),
        );
    }
    let controllers = group(&descriptions, |d| d.controller_id.map(|c| c.to_string()));
    if controllers.len() > 1 {
        return not_agreed(
            "ControllerMismatch",
            format!(
                "brokers name different active controllers: {}",
                describe_groups(&controllers)
            ),
        );
    }

    let mut unregistered = BTreeMap::<i32, BTreeSet<i32>>::new();
    let mut fenced = BTreeMap::<i32, BTreeSet<i32>>::new();
    for (&asked, description) in &descriptions {
        for id in 0..replicas {
            match description.brokers.iter().find(|b| b.node_id == id) {
                None => {
                    unregistered.entry(id).or_default().insert(asked);
                }
                Some(broker) if broker.fenced => {
                    fenced.entry(id).or_default().insert(asked);
                }
                Some(_) => {}
            }
        }
    }
    if !unregistered.is_empty() || !fenced.is_empty() {
        let all_asked: BTreeSet<i32> = descriptions.keys().copied().collect();
        let mut parts = Vec::new();
        for (id, seen_by) in &unregistered {
            parts.push(format!(
                "broker {id} is not registered{}",
                according_to(seen_by, &all_asked)
            ));
        }
        for (id, seen_by) in &fenced {
            parts.push(format!(
                "broker {id} is fenced{}",
                according_to(seen_by, &all_asked)
            ));
        }
        let missing: BTreeSet<i32> = unregistered.keys().chain(fenced.keys()).copied().collect();
        return not_agreed(
            "BrokersNotRegistered",
            format!(
                "{} of {replicas} brokers registered and unfenced: {}",
                replicas - i32::try_from(missing.len()).unwrap_or(replicas),
                parts.join("; ")
            ),
        );
    }

    match (descriptions.values().next(), controllers.keys().next()) {
        (Some(first), Some(controller)) => Agreement::Agreed {
            cluster_id: first.cluster_id.clone(),
            controller_id: controller.parse().unwrap_or(-1),
        },
        // Only with replicas = 0, which the schema forbids.
        _ => not_agreed("BrokersUnreachable", "no broker was asked".to_owned()),
    }
}

/// Registered brokers that report no rack, from the first answer (all agree once
/// [`agreement`] says so).
pub fn brokers_without_rack(answers: &[BrokerAnswer]) -> Vec<i32> {
    answers
        .iter()
        .find_map(|a| a.result.as_ref().ok())
        .map(|d| {
            d.brokers
                .iter()
                .filter(|b| b.rack.is_none())
                .map(|b| b.node_id)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether broker `id` is registered and unfenced in every answer, and the rack they report
/// for it; `(None, None)` when no broker answered.
pub fn registration(id: i32, answers: &[BrokerAnswer]) -> (Option<bool>, Option<String>) {
    let descriptions: Vec<&ClusterDescription> = answers
        .iter()
        .filter_map(|a| a.result.as_ref().ok())
        .collect();
    if descriptions.is_empty() {
        return (None, None);
    }
    let listed: Vec<_> = descriptions
        .iter()
        .map(|d| d.brokers.iter().find(|b| b.node_id == id))
        .collect();
    let registered = listed.iter().all(|b| b.is_some_and(|b| !b.fenced));
    let rack = listed.iter().flatten().find_map(|b| b.rack.clone());
    (Some(registered), rack)
}

fn not_agreed(reason: &'static str, message: String) -> Agreement {
    Agreement::NotAgreed { reason, message }
}

/// The answering broker ids grouped by the value `key` picks out of their answer.
fn group(
    descriptions: &BTreeMap<i32, &ClusterDescription>,
    key: impl Fn(&ClusterDescription) -> Option<String>,
) -> BTreeMap<String, Vec<i32>> {
    let mut groups = BTreeMap::<String, Vec<i32>>::new();
    for (&id, description) in descriptions {
        if let Some(value) = key(description) {
            groups.entry(value).or_default().push(id);
        }
    }
    groups
}

/// `abc (brokers 0, 1), def (broker 2)`.
fn describe_groups(groups: &BTreeMap<String, Vec<i32>>) -> String {
    groups
        .iter()
        .map(|(value, ids)| format!("{value} ({} {})", brokers_word(ids.len()), id_list(ids)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` according to broker 0` when only some of the asked brokers say so; nothing when all do.
fn according_to(seen_by: &BTreeSet<i32>, all_asked: &BTreeSet<i32>) -> String {
    if seen_by == all_asked {
        String::new()
    } else {
        let ids: Vec<i32> = seen_by.iter().copied().collect();
        format!(
            " according to {} {}",
            brokers_word(ids.len()),
            id_list(&ids)
        )
    }
}

fn brokers_word(count: usize) -> &'static str {
    if count == 1 { "broker" } else { "brokers" }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn id_list(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use strom_admin::DescribedBroker;

    use super::*;

    fn broker(id: i32, fenced: bool) -> DescribedBroker {
        DescribedBroker {
            node_id: id,
            host: format!("demo-broker-{id}.demo-brokers.kafka.svc"),
            port: 9092,
            rack: None,
            fenced,
        }
    }

    fn answer(id: i32, cluster_id: &str, controller: Option<i32>, brokers: &[i32]) -> BrokerAnswer {
        BrokerAnswer {
            id,
            result: Ok(ClusterDescription {
                cluster_id: cluster_id.to_owned(),
                controller_id: controller,
                brokers: brokers.iter().map(|&b| broker(b, false)).collect(),
            }),
        }
    }

    fn verdict(replicas: i32, answers: &[BrokerAnswer]) -> (&'static str, String) {
        match agreement(replicas, answers) {
            Agreement::Agreed {
                cluster_id,
                controller_id,
            } => ("Agreed", format!("{cluster_id} controller {controller_id}")),
            Agreement::NotAgreed { reason, message } => (reason, message),
        }
    }

    #[test]
    fn verdicts() {
        let all = [0, 1, 2];
        let mut fenced = answer(2, "c1", Some(0), &all);
        if let Ok(d) = &mut fenced.result {
            d.brokers[1].fenced = true;
        }
        let cases: Vec<(&str, Vec<BrokerAnswer>, (&str, &str))> = vec![
            (
                "all agree",
                vec![
                    answer(0, "c1", Some(1), &all),
                    answer(1, "c1", Some(1), &all),
                    answer(2, "c1", Some(1), &all),
                ],
                ("Agreed", "c1 controller 1"),
            ),
            (
                "one broker not registered anywhere",
                vec![
                    answer(0, "c1", Some(0), &[0, 1]),
                    answer(1, "c1", Some(0), &[0, 1]),
                    answer(2, "c1", Some(0), &[0, 1]),
                ],
                (
                    "BrokersNotRegistered",
                    "2 of 3 brokers registered and unfenced: broker 2 is not registered",
                ),
            ),
            (
                "fenced as one broker sees it",
                vec![
                    answer(0, "c1", Some(0), &all),
                    answer(1, "c1", Some(0), &all),
                    fenced,
                ],
                (
                    "BrokersNotRegistered",
                    "2 of 3 brokers registered and unfenced: broker 1 is fenced according to broker 2",
                ),
            ),
            (
                "three clusters of one (split brain)",
                vec![
                    answer(0, "aaa", Some(0), &[0]),
                    answer(1, "bbb", Some(1), &[1]),
                    answer(2, "bbb", Some(2), &[2]),
                ],
                (
                    "ClusterIdMismatch",
                    "brokers report different cluster ids, so they are not one cluster: aaa (broker 0), bbb (brokers 1, 2)",
                ),
            ),
            (
                "no controller",
                vec![
                    answer(0, "c1", None, &all),
                    answer(1, "c1", None, &all),
                    answer(2, "c1", Some(0), &all),
                ],
                (
                    "NoActiveController",
                    "Brokers 0, 1 know of no active controller",
                ),
            ),
            (
                "two controllers",
                vec![
                    answer(0, "c1", Some(0), &all),
                    answer(1, "c1", Some(0), &all),
                    answer(2, "c1", Some(2), &all),
                ],
                (
                    "ControllerMismatch",
                    "brokers name different active controllers: 0 (brokers 0, 1), 2 (broker 2)",
                ),
            ),
            (
                "a broker that does not answer, and one not asked",
                vec![
                    answer(0, "c1", Some(0), &all),
                    BrokerAnswer {
                        id: 1,
                        result: Err("connection refused".to_owned()),
                    },
                ],
                (
                    "BrokersUnreachable",
                    "no admin API answer from broker 1 (connection refused); broker 2 (not asked: its pod is missing or not ready)",
                ),
            ),
            (
                "a broker above replicas is not judged",
                vec![
                    answer(0, "c1", Some(0), &[0, 1, 2]),
                    answer(1, "c1", Some(0), &[0, 1, 2]),
                    answer(2, "zzz", Some(2), &[2]),
                ],
                ("Agreed", "c1 controller 0"),
            ),
        ];
        for (name, answers, (reason, message)) in cases {
            let replicas = if name.starts_with("a broker above") {
                2
            } else {
                3
            };
            assert_eq!(
                verdict(replicas, &answers),
                (reason, message.to_owned()),
                "{name}"
            );
        }
    }

    #[test]
    fn registration_of_one_broker_across_answers() {
        let mut one_sees_fenced = answer(1, "c1", Some(0), &[0, 1, 2]);
        if let Ok(d) = &mut one_sees_fenced.result {
            d.brokers[2].fenced = true;
            d.brokers[0].rack = Some("zone-a".to_owned());
        }
        let answers = [answer(0, "c1", Some(0), &[0, 1, 2]), one_sees_fenced];
        assert_eq!(
            registration(0, &answers),
            (Some(true), Some("zone-a".to_owned()))
        );
        assert_eq!(registration(2, &answers), (Some(false), None));
        assert_eq!(registration(3, &answers), (Some(false), None));
        let silent = [BrokerAnswer {
            id: 0,
            result: Err("timed out".to_owned()),
        }];
        assert_eq!(registration(0, &silent), (None, None));
    }

    #[test]
    fn racks_missing_from_registered_brokers() {
        let mut with_racks = answer(0, "c1", Some(0), &[0, 1, 2]);
        if let Ok(d) = &mut with_racks.result {
            d.brokers[0].rack = Some("zone-a".to_owned());
            d.brokers[2].rack = Some("zone-c".to_owned());
        }
        assert_eq!(brokers_without_rack(&[with_racks]), vec![1]);
        assert!(brokers_without_rack(&[]).is_empty());
    }
}
