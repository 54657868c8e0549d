//! What a cluster says about the replicas of a topic's partitions: leader, leader epoch,
//! replicas and ISR from Metadata, the under-replicated gauges from each broker's `/metrics`,
//! and the bytes of each replica's log segments on disk, for tests of partition replication.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::BrokerOptions;
use crate::cluster::{Cluster, describe_cluster, eventually, metadata, metric};
use crate::observability::http_get;

/// Kafka's JMX-exporter name of the broker-wide count of partitions this broker leads whose ISR
/// is smaller than their replica set.
pub const UNDER_REPLICATED: &str = "kafka_server_replicamanager_underreplicatedpartitions";
/// Kafka's JMX-exporter name of the log end offset of one partition replica (labels `topic`,
/// `partition`).
pub const LOG_END_OFFSET: &str = "kafka_log_log_logendoffset";

/// How long a test request to one broker may take before the broker counts as unresponsive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Broker settings for replication tests: brokers are fenced 2 s after their last heartbeat and
/// a follower leaves the ISR 2 s after it stopped catching up, so failover takes seconds.
pub fn fast_replication(_id: i32, options: BrokerOptions) -> BrokerOptions {
    options
        .with("broker.heartbeat.interval.ms", "250")
        .with("broker.session.timeout.ms", "2000")
        .with("replica.lag.time.max.ms", "2000")
}

/// One partition as Metadata reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

/// The partitions of `topic` as `bootstrap` reports them, by partition index.
pub async fn partitions(
    bootstrap: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, PartitionState>> {
    // A stopped (SIGSTOP) broker accepts connections and never answers.
    let response = tokio::time::timeout(REQUEST_TIMEOUT, metadata(bootstrap))
        .await
        .with_context(|| format!("Metadata from {bootstrap} timed out"))??;
    let found = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic))
        .with_context(|| format!("{bootstrap} does not know topic {topic}"))?;
    Ok(found
        .partitions
        .iter()
        .map(|p| {
            let mut isr: Vec<i32> = p.isr_nodes.iter().map(|b| b.0).collect();
            isr.sort_unstable();
            (
                p.partition_index,
                PartitionState {
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr,
                    error_code: p.error_code,
                },
            )
        })
        .collect())
}

/// The partitions of `topic` as the first running broker that answers reports them.
pub async fn partitions_in(
    cluster: &Cluster,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, PartitionState>> {
    let mut last = None;
    for id in cluster.running() {
        match partitions(&cluster.broker(id).bootstrap(), topic).await {
            Ok(found) => return Ok(found),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("no broker is running")))
}

/// Waits until every running broker reports the partitions of `topic` such that `accept` holds
/// for them, and returns what the first one reported.
pub async fn await_partitions(
    cluster: &Cluster,
    topic: &str,
    what: &str,
    deadline: Duration,
    accept: impl Fn(&BTreeMap<i32, PartitionState>) -> bool,
) -> anyhow::Result<BTreeMap<i32, PartitionState>> {
    await_partitions_on(cluster, &cluster.running(), topic, what, deadline, accept).await
}

/// [`await_partitions`] asking only the brokers `on`.
pub async fn await_partitions_on(
    cluster: &Cluster,
    on: &[usize],
    topic: &str,
    what: &str,
    deadline: Duration,
    accept: impl Fn(&BTreeMap<i32, PartitionState>) -> bool,
) -> anyhow::Result<BTreeMap<i32, PartitionState>> {
    let last = std::sync::Mutex::new(BTreeMap::new());
    let found = eventually(what, deadline, || async {
        let mut first = None;
        for id in on.iter().copied() {
            let seen = partitions(&cluster.broker(id).bootstrap(), topic)
                .await
                .ok()?;
            if !accept(&seen) {
                if let Ok(mut last) = last.lock() {
                    *last = seen;
                }
                return None;
            }
            first.get_or_insert(seen);
        }
        first
    })
    .await;
    found.with_context(|| format!("last seen: {:?}", last.lock().map(|l| l.clone())))
}

/// The leader of every partition of `topic` (per the first running broker that answers).
pub async fn leaders(cluster: &Cluster, topic: &str) -> anyhow::Result<BTreeMap<i32, i32>> {
    Ok(partitions_in(cluster, topic)
        .await?
        .into_iter()
        .map(|(p, state)| (p, state.leader))
        .collect())
}

/// The series `name{labels}` on a broker's `/metrics`, labels given as `key="value"` pairs in
/// any order.
pub fn labelled_metric(
    broker: &crate::BrokerProcess,
    name: &str,
    labels: &[(&str, &str)],
) -> anyhow::Result<f64> {
    let text = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    text.lines()
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?.strip_prefix('{')?;
            let rest = rest.strip_suffix('}')?;
            let matches = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")));
            matches.then(|| value.trim().parse().ok()).flatten()
        })
        .with_context(|| format!("no series {name}{labels:?} on {}", broker.admin_url()))
}

/// Whether the cluster is whole: every broker the harness runs is registered and unfenced in
/// the view of every running broker, and no broker reports an under-replicated partition.
pub async fn is_healthy(cluster: &Cluster) -> bool {
    let expected: Vec<i32> = cluster
        .running()
        .iter()
        .filter_map(|id| i32::try_from(*id).ok())
        .collect();
    for id in cluster.running() {
        let broker = cluster.broker(id);
        match describe_cluster(&broker.bootstrap()).await {
            Ok(view) if expected.iter().all(|e| view.brokers.contains(e)) => {}
            _ => return false,
        }
        if !matches!(metric(broker, UNDER_REPLICATED), Ok(v) if v == 0.0) {
            return false;
        }
    }
    true
}

/// Whether every running broker reports every partition of `topic` with a leader and its
/// whole replica set in the ISR.
pub async fn is_fully_replicated(cluster: &Cluster, topic: &str) -> bool {
    for id in cluster.running() {
        let Ok(found) = partitions(&cluster.broker(id).bootstrap(), topic).await else {
            return false;
        };
        let whole = found.values().all(|p| {
            let mut replicas = p.replicas.clone();
            replicas.sort_unstable();
            p.leader >= 0 && p.error_code == 0 && p.isr == replicas
        });
        if found.is_empty() || !whole {
            return false;
        }
    }
    true
}

/// Waits until [`is_healthy`] holds and, when `topic` is given, [`is_fully_replicated`] too.
pub async fn await_healthy(
    cluster: &Cluster,
    topic: Option<&str>,
    deadline: Duration,
) -> anyhow::Result<()> {
    let waited = eventually(
        "every broker unfenced, every partition led with its whole ISR, no under-replicated \
         partitions",
        deadline,
        || async {
            let topic_whole = match topic {
                Some(topic) => is_fully_replicated(cluster, topic).await,
                None => true,
            };
            (topic_whole && is_healthy(cluster).await).then_some(())
        },
    )
    .await;
    let Err(error) = waited else {
        return Ok(());
    };
    // Say what was still missing: per-broker under-replicated counts, applied metadata offset
    // and the topic's ISRs, and the quorum as the controller reports it.
    let mut seen = Vec::new();
    for id in cluster.running() {
        let broker = cluster.broker(id);
        let urp = metric(broker, UNDER_REPLICATED).ok();
        let applied = metric(broker, "strom_metadata_applied_offset").ok();
        let layout = match topic {
            Some(topic) => partitions(&broker.bootstrap(), topic)
                .await
                .map(|found| {
                    found
                        .iter()
                        .map(|(p, s)| {
                            format!(
                                "{p}: leader {} isr {:?} of {:?}",
                                s.leader, s.isr, s.replicas
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|e| e.to_string()),
            None => String::new(),
        };
        seen.push(format!(
            "broker {id}: metadata applied {applied:?}, {UNDER_REPLICATED}={urp:?} [{layout}]"
        ));
    }
    let mut quorum = String::from("no broker answered DescribeQuorum");
    for id in cluster.running() {
        let answer = tokio::time::timeout(
            REQUEST_TIMEOUT,
            crate::cluster::describe_quorum(&cluster.broker(id).bootstrap()),
        )
        .await;
        if let Ok(Ok(response)) = answer
            && let Some(partition) = response.topics.first().and_then(|t| t.partitions.first())
        {
            let voters: Vec<String> = partition
                .current_voters
                .iter()
                .map(|v| format!("{}@{}", v.replica_id.0, v.log_end_offset))
                .collect();
            quorum = format!(
                "leader {} epoch {} high watermark {}, voters (id@log end) {}",
                partition.leader_id.0,
                partition.leader_epoch,
                partition.high_watermark,
                voters.join(" ")
            );
            break;
        }
    }
    Err(error.context(format!(
        "topic {topic:?} as each broker last saw it: {}; quorum: {quorum}",
        seen.join("; ")
    )))
}

/// The bytes of every `.log` segment of `topic`-`partition` under `data_dir`, concatenated in
/// base-offset order (segment names are zero-padded base offsets), with the segment names.
pub fn segment_bytes(
    data_dir: &Path,
    topic: &str,
    partition: i32,
) -> anyhow::Result<(Vec<String>, Vec<u8>)> {
    let dir = data_dir.join(format!("{topic}-{partition}"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".log"))
        .collect();
    names.sort();
    let mut bytes = Vec::new();
    for name in &names {
        bytes.extend(std::fs::read(dir.join(name)).with_context(|| format!("reading {name}"))?);
    }
    Ok((names, bytes))
}

/// Waits until every replica of every partition of `topic` has the same log end offset
/// (`/metrics`) and the same segment bytes on disk, the leader's log being the reference;
/// returns the bytes compared per partition. Call once producing has stopped: with every
/// replica caught up, "identical up to the high watermark" means identical.
pub async fn await_identical_logs(
    cluster: &Cluster,
    topic: &str,
    deadline: Duration,
) -> anyhow::Result<BTreeMap<i32, usize>> {
    let layout = partitions_in(cluster, topic).await?;
    let mut sizes = BTreeMap::new();
    for (partition, state) in &layout {
        let label = partition.to_string();
        let labels = [("topic", topic), ("partition", label.as_str())];
        let replicas: Vec<usize> = state
            .replicas
            .iter()
            .filter_map(|r| usize::try_from(*r).ok())
            .collect();
        let last = std::sync::Mutex::new(String::new());
        let size = eventually(
            &format!("identical replicas of {topic}-{partition}"),
            deadline,
            || async {
                let ends: Vec<f64> = replicas
                    .iter()
                    .map(|r| labelled_metric(cluster.broker(*r), LOG_END_OFFSET, &labels))
                    .collect::<anyhow::Result<_>>()
                    .ok()?;
                let mut logs = Vec::new();
                for r in &replicas {
                    logs.push(
                        segment_bytes(cluster.broker(*r).data_dir(), topic, *partition).ok()?,
                    );
                }
                let (reference_names, reference) = logs.first()?;
                let mismatch = replicas.iter().zip(&logs).find_map(|(r, (names, bytes))| {
                    first_difference(reference, bytes).map(|at| {
                        format!(
                            "broker {r} differs from broker {} at byte {at} ({} vs {} bytes, \
                             segments {names:?} vs {reference_names:?}); log end offsets {ends:?}",
                            replicas[0],
                            bytes.len(),
                            reference.len()
                        )
                    })
                });
                let same_end = ends.windows(2).all(|w| w[0] == w[1]);
                match mismatch {
                    None if same_end => Some(reference.len()),
                    other => {
                        if let Ok(mut last) = last.lock() {
                            *last = other.unwrap_or_else(|| format!("log end offsets {ends:?}"));
                        }
                        None
                    }
                }
            },
        )
        .await
        .with_context(|| {
            format!(
                "last seen: {}",
                last.lock().map(|l| l.clone()).unwrap_or_default()
            )
        })?;
        sizes.insert(*partition, size);
    }
    Ok(sizes)
}

/// Sends one Produce request straight to `bootstrap` (no client retries, no redirection) with
/// `values` as one uncompressed batch; `None` when no answer came within `timeout_ms` and a
/// second. Returns (error code, base offset).
pub async fn produce_raw(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    acks: i16,
    timeout_ms: i32,
    values: &[String],
) -> anyhow::Result<Option<(i16, i64)>> {
    use kafka_protocol::messages::{ApiKey, ProduceResponse};

    let request = produce_request(topic, partition, acks, timeout_ms, values)?;
    let wait =
        Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)) + Duration::from_secs(1);
    let call = async {
        let mut stream = tokio::net::TcpStream::connect(bootstrap).await?;
        let response: ProduceResponse =
            crate::wire::call(&mut stream, ApiKey::Produce, 9, &request).await?;
        let p = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("a partition response")?;
        anyhow::Ok((p.error_code, p.base_offset))
    };
    match tokio::time::timeout(wait, call).await {
        Ok(answer) => answer.map(Some),
        Err(_) => Ok(None),
    }
}

/// A Produce request of `values` as one uncompressed batch for `topic`-`partition`, as a
/// client without idempotence sends it.
pub fn produce_request(
    topic: &str,
    partition: i32,
    acks: i16,
    timeout_ms: i32,
    values: &[String],
) -> anyhow::Result<kafka_protocol::messages::ProduceRequest> {
    use bytes::Bytes;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record, TimestampType};

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, value)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::try_from(i).unwrap_or(0),
            sequence: -1,
            timestamp: now,
            key: None,
            value: Some(Bytes::copy_from_slice(value.as_bytes())),
            headers: Default::default(),
        })
        .collect();
    Ok(ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(crate::wire::encode_batch(&records)?)),
                ]),
        ]))
}

/// Where two byte strings first differ, if they do.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

/// The setup most replication tests share: a topic of `partitions` partitions with replication
/// factor 3 and `min.insync.replicas=2`, healthy on every broker, and a verified workload
/// writing 1000 records a second through `bootstrap` that has been acknowledged at least once
/// per partition when this returns.
pub async fn replicated_workload(
    cluster: &Cluster,
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    deadline: Duration,
) -> anyhow::Result<crate::workload::Workload> {
    crate::kafka::create_replicated_topic(
        bootstrap,
        topic,
        partitions,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(cluster, Some(topic), deadline).await?;
    let workload = crate::workload::Workload::start(
        bootstrap,
        crate::workload::WorkloadConfig::new(topic, partitions).rate(1000),
    )?;
    workload.progress().wait_for(0, 500, deadline).await?;
    Ok(workload)
}

#[cfg(test)]
mod tests {
    use super::first_difference;

    #[test]
    fn first_difference_finds_changed_and_missing_bytes() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
        assert_eq!(first_difference(b"", b"x"), Some(0));
    }
}
