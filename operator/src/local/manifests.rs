//! The manifest file of the local runtime: multi-document YAML holding one `Cluster` and the
//! `Topic`s on it, the same objects `kubectl apply` takes.

use std::path::Path;

use serde::Deserialize;
use strom_crds::{Cluster, Topic};

/// What one manifest file declares.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    /// The Cluster.
    pub cluster: Cluster,
    /// The Topics on it, in file order.
    pub topics: Vec<Topic>,
}

/// Why a manifest file cannot be used; the previous one stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A document is not valid YAML, or not a valid Cluster or Topic.
    #[error("document {index} of {path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// The document's position, from 1.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// The file does not hold exactly one Cluster, or a Topic names another Cluster.
    #[error("{path}: {reason}")]
    Shape {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Manifests, ManifestError> {
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text, &path.display().to_string())
}

/// Parses the documents of `text` (`path` names it in errors). Empty documents are skipped;
/// any kind but `Cluster` and `Topic` is an error, as `kubectl apply` on a wrong file would be
/// a surprise.
pub fn parse(text: &str, path: &str) -> Result<Manifests, ManifestError> {
    let invalid = |index: usize, reason: String| ManifestError::Invalid {
        path: path.to_owned(),
        index,
        reason,
    };
    let mut clusters = Vec::new();
    let mut topics: Vec<Topic> = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = index + 1;
        let value =
            serde_yaml::Value::deserialize(document).map_err(|e| invalid(index, e.to_string()))?;
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match kind.as_str() {
            "Cluster" => clusters.push(
                serde_yaml::from_value::<Cluster>(value)
                    .map_err(|e| invalid(index, format!("not a valid Cluster: {e}")))?,
            ),
            "Topic" => topics.push(
                serde_yaml::from_value::<Topic>(value)
                    .map_err(|e| invalid(index, format!("not a valid Topic: {e}")))?,
            ),
            "" => return Err(invalid(index, "the document has no kind".to_owned())),
            other => {
                return Err(invalid(
                    index,
                    format!("kind {other} is not one the local runtime runs (Cluster, Topic)"),
                ));
            }
        }
    }
    let shape = |reason: String| ManifestError::Shape {
        path: path.to_owned(),
        reason,
    };
    let cluster = match clusters.len() {
        1 => clusters.remove(0),
        n => return Err(shape(format!("expected exactly one Cluster, found {n}"))),
    };
    let cluster_name = cluster.metadata.name.clone().unwrap_or_default();
    if cluster_name.is_empty() {
        return Err(shape("the Cluster has no metadata.name".to_owned()));
    }
    for topic in &topics {
        let name = topic.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(shape("a Topic has no metadata.name".to_owned()));
        }
        if topic.spec.cluster_ref.name != cluster_name {
            return Err(shape(format!(
                "Topic {name} names Cluster {}, but the file's Cluster is {cluster_name}",
                topic.spec.cluster_ref.name
            )));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for topic in &topics {
        if !seen.insert(topic.topic_name().to_owned()) {
            return Err(shape(format!(
                "two Topics declare Kafka topic {}",
                topic.topic_name()
            )));
        }
    }
    Ok(Manifests { cluster, topics })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
apiVersion: strom.io/v1alpha1
kind: Cluster
metadata:
  name: local
spec:
  replicas: 3
  storage:
    size: 1Gi
---
apiVersion: strom.io/v1alpha1
kind: Topic
metadata:
  name: orders
spec:
  clusterRef:
    name: local
  partitions: 6
  replicationFactor: 3
  config:
    min.insync.replicas: \"2\"
---
";

    #[test]
    fn a_cluster_and_its_topics_parse() {
        let manifests = parse(FILE, "f.yaml").expect("valid");
        assert_eq!(manifests.cluster.spec.replicas, 3);
        assert_eq!(manifests.topics.len(), 1);
        assert_eq!(manifests.topics[0].topic_name(), "orders");
        assert_eq!(manifests.topics[0].spec.replication_factor, Some(3));
    }

    #[test]
    fn the_shipped_local_example_is_three_brokers_on_kafka_ports_9092_to_9094_and_a_topic_that_survives_a_restart()
     {
        let text = include_str!("../../../deploy/examples/local-cluster.yaml");
        let manifests = parse(text, "local-cluster.yaml").expect("the example parses");
        assert_eq!(manifests.cluster.spec.replicas, 3);
        assert_eq!(manifests.cluster.spec.controller.voters, 3);
        let pins = super::super::ports::PortPins::from_cluster(&manifests.cluster)
            .expect("the example's pins are valid");
        let kafka: Vec<Option<u16>> = (0..3)
            .map(|id| pins.port(super::super::ports::Listener::Kafka, id))
            .collect();
        assert_eq!(kafka, [Some(9092), Some(9093), Some(9094)]);
        let topic = &manifests.topics[0];
        assert_eq!(topic.spec.replication_factor, Some(3));
        assert_eq!(
            topic
                .spec
                .config
                .get("min.insync.replicas")
                .map(String::as_str),
            Some("2")
        );
    }

    #[test]
    fn bad_files_say_which_document_and_why() {
        let cases: &[(&str, &str)] = &[
            (
                "kind: Cluster\nmetadata: {name: a}\nspec: {replicas: x}",
                "document 1 of f.yaml: not a valid Cluster",
            ),
            (
                "kind: Deployment\nmetadata: {name: a}",
                "kind Deployment is not one",
            ),
            ("metadata: {name: a}", "has no kind"),
            ("a: [", "document 1 of f.yaml"),
            ("", "expected exactly one Cluster, found 0"),
        ];
        for (text, expected) in cases {
            let error = parse(text, "f.yaml").expect_err(text).to_string();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let other_cluster = FILE.replace(
            "    name: local\n  partitions",
            "    name: prod\n  partitions",
        );
        let error = parse(&other_cluster, "f.yaml")
            .expect_err("other cluster")
            .to_string();
        assert!(error.contains("Topic orders names Cluster prod"), "{error}");
        let twice = format!("{FILE}{}", FILE.split("---\n").nth(1).unwrap_or_default());
        let error = parse(&twice, "f.yaml").expect_err("twice").to_string();
        assert!(
            error.contains("two Topics declare Kafka topic orders"),
            "{error}"
        );
    }
}
