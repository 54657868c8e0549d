//! DescribeLogDirs (KIP-113): the broker's log directory (one: the data directory) and the size
//! of each partition replica in it, so an operator can see what a broker holds (and that a
//! broker it is draining holds nothing any more). From v4 (KIP-827) also the size of the volume
//! and the bytes left on it.
//!
//! Replicas here are never future replicas (there is one log directory to move between) and
//! never lag their own log end, so `is_future_key` is false and `offset_lag` 0. Partitions
//! asked about that the broker does not host are left out, as Kafka does; so are partitions
//! that could not be opened (they hold no served data).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, RequestHeader};

use super::{str_bytes, topic_name};
use crate::capabilities::HostedPartitions;

/// One hosted replica: topic, partition index, bytes of its log segments.
type Hosted<'a> = (&'a str, i32, u64);

/// The volume's size and the bytes left on it, as Kafka reports them (`FileStore`'s total
/// and usable space).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Space {
    total_bytes: i64,
    usable_bytes: i64,
}

pub async fn handle(
    replicas: &impl HostedPartitions,
    data_dir: &Path,
    header: &RequestHeader,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    let data_dir = data_dir.to_path_buf();
    // Kafka names the directory by its absolute path.
    let path = std::path::absolute(&data_dir).unwrap_or_else(|_| data_dir.clone());
    let version = header.request_api_version;
    let space = if version >= 4 {
        // A syscall on the file system: off the async workers.
        let dir = data_dir.clone();
        tokio::task::spawn_blocking(move || space_of(&dir))
            .await
            .ok()
            .flatten()
    } else {
        None
    };
    let partitions = replicas.all_partitions();
    let hosted: Vec<Hosted<'_>> = partitions
        .iter()
        .map(|p| (&*p.topic, p.index, p.log().size_bytes()))
        .collect();
    describe(&hosted, &path.to_string_lossy(), space, version, request)
}

/// `statvfs` of `dir`; `None` when it fails (the answer then says -1, "unknown").
fn space_of(dir: &Path) -> Option<Space> {
    let stat = rustix::fs::statvfs(dir).ok()?;
    let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(stat.f_frsize)).ok();
    Some(Space {
        total_bytes: bytes(stat.f_blocks)?,
        usable_bytes: bytes(stat.f_bavail)?,
    })
}

/// The answer for one log directory at `path` holding `hosted`.
fn describe(
    hosted: &[Hosted<'_>],
    path: &str,
    space: Option<Space>,
    version: i16,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Null asks about every partition.
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .into_iter()
            .flat_map(|topic| {
                let name = topic.topic.0.to_string();
                topic.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for &(topic, index, size) in hosted {
        if wanted
            .as_ref()
            .is_some_and(|w| !w.contains(&(topic.to_owned(), index)))
        {
            continue;
        }
        topics.entry(topic).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(index)
                .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(topic_name(name))
                .with_partitions(partitions)
        })
        .collect();
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(path))
        .with_topics(topics);
    // The fields exist from v4 only; below it they must keep their default (-1).
    if version >= 4
        && let Some(space) = space
    {
        result = result
            .with_total_bytes(space.total_bytes)
            .with_usable_bytes(space.usable_bytes);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    const HOSTED: &[Hosted<'static>] = &[
        ("orders", 2, 300),
        ("orders", 0, 100),
        ("audit", 0, 0),
        ("orders", 1, 200),
    ];
    const SPACE: Space = Space {
        total_bytes: 1 << 40,
        usable_bytes: 1 << 30,
    };

    /// Per topic its (partition, size) pairs.
    type Sizes = Vec<(String, Vec<(i32, i64)>)>;

    /// The sizes in the one log dir, and its total and usable bytes.
    fn summary(response: &DescribeLogDirsResponse) -> (Sizes, i64, i64) {
        assert_eq!(response.results.len(), 1, "one log dir");
        let dir = &response.results[0];
        assert_eq!(dir.log_dir.as_str(), "/var/lib/strom");
        assert_eq!(dir.error_code, 0);
        let topics = dir
            .topics
            .iter()
            .map(|t| {
                assert!(
                    t.partitions
                        .iter()
                        .all(|p| !p.is_future_key && p.offset_lag == 0)
                );
                (
                    t.name.0.to_string(),
                    t.partitions
                        .iter()
                        .map(|p| (p.partition_index, p.partition_size))
                        .collect(),
                )
            })
            .collect();
        (topics, dir.total_bytes, dir.usable_bytes)
    }

    fn ask(topics: &[(&str, &[i32])]) -> DescribeLogDirsRequest {
        DescribeLogDirsRequest::default().with_topics(Some(
            topics
                .iter()
                .map(|(name, partitions)| {
                    DescribableLogDirTopic::default()
                        .with_topic(topic_name(name))
                        .with_partitions(partitions.to_vec())
                })
                .collect(),
        ))
    }

    #[test]
    fn every_partition_when_asked_for_all() {
        let response = describe(
            HOSTED,
            "/var/lib/strom",
            Some(SPACE),
            4,
            DescribeLogDirsRequest::default().with_topics(None),
        );
        let owned = |name: &str, parts: &[(i32, i64)]| (name.to_owned(), parts.to_vec());
        assert_eq!(
            summary(&response),
            (
                vec![
                    owned("audit", &[(0, 0)]),
                    owned("orders", &[(0, 100), (1, 200), (2, 300)]),
                ],
                1 << 40,
                1 << 30
            )
        );
    }

    #[test]
    fn asked_partitions_only_and_unknown_ones_left_out() {
        let response = describe(
            HOSTED,
            "/var/lib/strom",
            Some(SPACE),
            4,
            ask(&[("orders", &[2, 0, 9]), ("missing", &[0])]),
        );
        let (topics, _, _) = summary(&response);
        assert_eq!(
            topics,
            vec![("orders".to_owned(), vec![(0, 100), (2, 300)])]
        );

        // A broker hosting nothing asked about answers with an empty directory.
        let response = describe(&[], "/var/lib/strom", None, 4, ask(&[("orders", &[0])]));
        assert_eq!(summary(&response), (vec![], -1, -1));
    }

    #[test]
    fn volume_space_only_from_v4_and_every_version_encodes() {
        for version in 1..=4 {
            let response = describe(
                HOSTED,
                "/var/lib/strom",
                Some(SPACE),
                version,
                DescribeLogDirsRequest::default().with_topics(None),
            );
            let (_, total, usable) = summary(&response);
            let expected = if version >= 4 {
                (1 << 40, 1 << 30)
            } else {
                (-1, -1)
            };
            assert_eq!((total, usable), expected, "v{version}");
            let mut buf = BytesMut::new();
            response
                .encode(&mut buf, version)
                .unwrap_or_else(|err| panic!("v{version} encodes: {err:#}"));
        }
    }

    #[test]
    fn the_data_directory_volume_has_a_size() {
        let dir = tempfile::tempdir().expect("temp dir");
        let space = space_of(dir.path()).expect("statvfs of a real directory");
        assert!(space.total_bytes > 0);
        assert!((0..=space.total_bytes).contains(&space.usable_bytes));
        assert_eq!(space_of(&dir.path().join("missing")), None);
    }
}
