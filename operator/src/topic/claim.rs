//! Which Topic owns a Kafka topic when several name it.
//!
//! Topics of one Cluster name Kafka topics in one namespace (a Topic names a Cluster of its own
//! namespace). When more than one managed Topic names the same Kafka topic, the one created
//! first owns it: oldest `metadata.creationTimestamp`, then lowest `metadata.name` (timestamps
//! have a one-second resolution). `spec.topicName` and `spec.clusterRef` are immutable, so the
//! owner does not change while it exists. A Topic that is not managed (`spec.managed: false` or
//! the annotation) claims nothing. The others are reported as `ResourceConflict` and change
//! nothing; deleting one of them does not delete the Kafka topic.

use std::cmp::Ordering;

use kube::ResourceExt;
use strom_crds::Topic;

/// Whether `a` claimed its Kafka topic before `b` did.
fn claims_before(a: &Topic, b: &Topic) -> bool {
    let created = |t: &Topic| t.metadata.creation_timestamp.as_ref().map(|t| t.0);
    // An object without a creation timestamp has not been stored yet: it is the newest.
    let by_time = match (created(a), created(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_time.then_with(|| a.name_any().cmp(&b.name_any())) == Ordering::Less
}

/// Whether `other` is a different managed Topic naming the same Kafka topic on the same
/// Cluster as `topic`.
fn rivals(topic: &Topic, other: &Topic) -> bool {
    other.name_any() != topic.name_any()
        && other.namespace() == topic.namespace()
        && other.spec.cluster_ref == topic.spec.cluster_ref
        && other.topic_name() == topic.topic_name()
        && other.is_managed()
}

/// The Topic among `topics` that claimed `topic`'s Kafka topic before `topic` did, if any:
/// `topic` must then leave the Kafka topic alone. `topics` may include `topic` itself.
pub fn claimed_by<'a>(topic: &Topic, topics: &'a [Topic]) -> Option<&'a Topic> {
    topics
        .iter()
        .filter(|other| rivals(topic, other) && claims_before(other, topic))
        .reduce(|first, other| {
            if claims_before(other, first) {
                other
            } else {
                first
            }
        })
}

/// The other managed Topics naming `topic`'s Kafka topic (whatever their age): the ones that
/// take it over when `topic` goes away.
pub fn other_claimants<'a>(topic: &Topic, topics: &'a [Topic]) -> Vec<&'a Topic> {
    topics.iter().filter(|other| rivals(topic, other)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use strom_crds::topic::MANAGED_ANNOTATION;

    use super::*;
    use crate::fixtures;

    fn named(name: &str, topic_name: &str, created: i64) -> Topic {
        let mut topic = fixtures::topic();
        topic.metadata.name = Some(name.to_owned());
        topic.spec.topic_name = Some(topic_name.to_owned());
        topic.metadata.creation_timestamp =
            Some(Time(Timestamp::from_second(created).expect("valid")));
        topic
    }

    fn names(topics: &[&Topic]) -> Vec<String> {
        topics.iter().map(|t| t.name_any()).collect()
    }

    #[test]
    fn older_topic_owns_and_the_younger_one_is_in_conflict() {
        let old = named("orders-a", "orders", 100);
        let young = named("orders-b", "orders", 200);
        let all = vec![young.clone(), old.clone()];
        assert_eq!(
            claimed_by(&young, &all).map(ResourceExt::name_any),
            Some("orders-a".to_owned())
        );
        assert!(claimed_by(&old, &all).is_none(), "the owner has no rival");
    }

    #[test]
    fn same_second_is_decided_by_name() {
        let a = named("a", "orders", 100);
        let b = named("b", "orders", 100);
        let all = vec![b.clone(), a.clone()];
        assert!(claimed_by(&a, &all).is_none());
        assert_eq!(
            claimed_by(&b, &all).map(ResourceExt::name_any),
            Some("a".to_owned())
        );
    }

    #[test]
    fn the_earliest_of_several_rivals_is_named() {
        let all = vec![
            named("c", "orders", 300),
            named("b", "orders", 200),
            named("a", "orders", 250),
        ];
        assert_eq!(
            claimed_by(&all[0], &all).map(ResourceExt::name_any),
            Some("b".to_owned())
        );
        assert_eq!(names(&other_claimants(&all[1], &all)), vec!["c", "a"]);
    }

    #[test]
    fn other_names_other_clusters_and_unmanaged_topics_are_no_rivals() {
        let me = named("orders-b", "orders", 200);
        let other_name = named("payments", "payments", 100);
        let mut other_cluster = named("orders-x", "orders", 100);
        other_cluster.spec.cluster_ref.name = "other".to_owned();
        let mut unmanaged = named("orders-u", "orders", 100);
        unmanaged.spec.managed = false;
        let mut annotated = named("orders-v", "orders", 100);
        annotated.metadata.annotations = Some(BTreeMap::from([(
            MANAGED_ANNOTATION.to_owned(),
            "false".to_owned(),
        )]));
        let mut other_namespace = named("orders-n", "orders", 100);
        other_namespace.metadata.namespace = Some("elsewhere".to_owned());
        let all = vec![
            me.clone(),
            other_name,
            other_cluster,
            unmanaged,
            annotated,
            other_namespace,
        ];
        assert!(claimed_by(&me, &all).is_none());
        assert!(other_claimants(&me, &all).is_empty());
    }

    #[test]
    fn topic_name_defaults_to_the_object_name() {
        let mut by_default = named("orders", "unused", 200);
        by_default.spec.topic_name = None;
        let explicit = named("orders-old", "orders", 100);
        let all = vec![by_default.clone(), explicit];
        assert_eq!(
            claimed_by(&by_default, &all).map(ResourceExt::name_any),
            Some("orders-old".to_owned())
        );
    }
}
