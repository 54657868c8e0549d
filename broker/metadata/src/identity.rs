//! A metadata directory's identity: `<dir>/cluster.json` (Kafka's `meta.properties`).
//!
//! It records the node id from the first start, so another broker's directory is refused, and
//! the cluster id once this node has learned it from the log, so a directory of another cluster
//! is refused too.

use std::path::Path;

use serde::Deserialize;
use serde::Serialize;

use crate::error::MetadataError;
use crate::files::read_json;
use crate::files::write_json;

const CLUSTER_FILE: &str = "cluster.json";

#[derive(Debug, Serialize, Deserialize)]
struct ClusterMeta {
    version: u32,
    /// `None` until the node has learned the cluster id from the log.
    #[serde(default)]
    cluster_id: Option<String>,
    node_id: u64,
}

/// Checks the directory's recorded identity against `node_id` and the configured cluster id,
/// records the node id on first use, and returns the cluster id a first controller should
/// commit: the configured one, else the recorded one, else a new one.
pub(crate) fn claim(
    dir: &Path,
    node_id: u64,
    configured: Option<&str>,
) -> Result<(Option<String>, String), MetadataError> {
    let path = dir.join(CLUSTER_FILE);
    if configured.is_some_and(str::is_empty) {
        return Err(MetadataError::InvalidConfig {
            reason: "the cluster id must not be empty".to_owned(),
        });
    }
    let recorded = match read_json::<ClusterMeta>(&path)? {
        Some(meta) => {
            if meta.node_id != node_id {
                return Err(MetadataError::NodeIdMismatch {
                    path,
                    stored: meta.node_id,
                    configured: node_id,
                });
            }
            if let (Some(configured), Some(stored)) = (configured, &meta.cluster_id)
                && configured != stored
            {
                return Err(MetadataError::ClusterIdMismatch {
                    path,
                    stored: stored.clone(),
                    configured: configured.to_owned(),
                });
            }
            meta.cluster_id
        }
        None => {
            write_json(
                &path,
                &ClusterMeta {
                    version: 1,
                    cluster_id: None,
                    node_id,
                },
            )?;
            None
        }
    };
    let proposed = configured
        .map(str::to_owned)
        .or_else(|| recorded.clone())
        .unwrap_or_else(new_cluster_id);
    Ok((recorded, proposed))
}

/// Records `cluster_id`, learned from the log, or refuses it when the directory recorded
/// another one.
pub(crate) fn record_cluster_id(
    dir: &Path,
    node_id: u64,
    cluster_id: &str,
) -> Result<(), MetadataError> {
    let path = dir.join(CLUSTER_FILE);
    let meta = read_json::<ClusterMeta>(&path)?;
    match meta.and_then(|m| m.cluster_id) {
        Some(stored) if stored == cluster_id => Ok(()),
        Some(stored) => Err(MetadataError::ClusterIdMismatch {
            path,
            stored,
            configured: cluster_id.to_owned(),
        }),
        None => write_json(
            &path,
            &ClusterMeta {
                version: 1,
                cluster_id: Some(cluster_id.to_owned()),
                node_id,
            },
        ),
    }
}

/// A random cluster id in Kafka's format: a UUID as 22 characters of URL-safe base64.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let value = uuid::Uuid::new_v4().as_u128();
    // 128 bits = 21 groups of 6 bits plus 2 bits; emit the top bits first, like base64 does.
    (0..22)
        .map(|i| {
            let shift = 128i32 - 6 * (i + 1);
            let group = if shift >= 0 {
                (value >> shift) & 0x3f
            } else {
                (value << -shift) & 0x3f
            };
            char::from(ALPHABET[group as usize])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let a = new_cluster_id();
        let b = new_cluster_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn a_directory_keeps_its_node_and_cluster() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (recorded, proposed) = claim(dir.path(), 1, None).expect("first claim");
        assert_eq!(recorded, None);
        assert_eq!(proposed.len(), 22);
        record_cluster_id(dir.path(), 1, "abc").expect("records");
        record_cluster_id(dir.path(), 1, "abc").expect("idempotent");
        assert!(matches!(
            record_cluster_id(dir.path(), 1, "other"),
            Err(MetadataError::ClusterIdMismatch { .. })
        ));
        let (recorded, proposed) = claim(dir.path(), 1, None).expect("second claim");
        assert_eq!(recorded.as_deref(), Some("abc"));
        assert_eq!(proposed, "abc");
        assert!(matches!(
            claim(dir.path(), 2, None),
            Err(MetadataError::NodeIdMismatch { .. })
        ));
        assert!(matches!(
            claim(dir.path(), 1, Some("zzz")),
            Err(MetadataError::ClusterIdMismatch { .. })
        ));
    }
}
