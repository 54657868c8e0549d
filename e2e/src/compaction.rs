//! What the compaction tests share (and `log_bytes`, which other tests use too): a keyed workload through confluent-kafka
//! (`e2e/scripts/compaction_workload.py`), a full read of a partition with librdkafka, the checks
//! a compacted log must pass, and the batches of a partition's segment files as stored.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

/// The last write of every key a workload made: its value, or `None` for a tombstone.
pub type Latest = HashMap<String, Option<String>>;

/// What a workload run wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub latest: Latest,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Runs the workload script: `records` writes over `keys` keys in `codec`, sequence numbers from
/// `start` (see the script's doc).
pub fn write_keyed(
    bootstrap: &str,
    topic: &str,
    records: usize,
    keys: usize,
    codec: &str,
    seed: u64,
    start: usize,
) -> anyhow::Result<Written> {
    let output = std::process::Command::new("python3")
        .arg(crate::repo_root().join("e2e/scripts/compaction_workload.py"))
        .args([
            bootstrap,
            topic,
            &records.to_string(),
            &keys.to_string(),
            codec,
            &seed.to_string(),
            &start.to_string(),
        ])
        .output()
        .context("python3 (run e2e/install-tools.sh)")?;
    anyhow::ensure!(
        output.status.success(),
        "compaction_workload.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("it printed {}", String::from_utf8_lossy(&output.stdout)))?;
    let latest = json["latest"]
        .as_object()
        .context("no `latest` object")?
        .iter()
        .map(|(key, value)| (key.clone(), value.as_str().map(str::to_owned)))
        .collect();
    Ok(Written {
        latest,
        first_offset: json["first_offset"].as_i64().context("first_offset")?,
        last_offset: json["last_offset"].as_i64().context("last_offset")?,
    })
}

/// One record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Reads partition 0 of `topic` from its first offset to the end (partition EOF) with
/// librdkafka; fails on any consumer error or after `deadline`.
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    deadline: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    let mut config = crate::kafka::base_config(bootstrap);
    config
        .set("group.id", "strom-e2e-compaction-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "50");
    let consumer: BaseConsumer = config.create().context("creating the reader")?;
    let mut list = TopicPartitionList::new();
    list.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&list)?;
    let end = Instant::now() + deadline;
    let mut out = Vec::new();
    loop {
        if Instant::now() > end {
            bail!("read {} records of {topic} before the deadline", out.len());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => out.push(ReadRecord {
                offset: message.offset(),
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                value: message
                    .payload()
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
            }),
            Some(Err(KafkaError::PartitionEOF(_))) => return Ok(out),
            Some(Err(error)) => bail!("reading {topic}: {error}"),
            None => {}
        }
    }
}

/// The checks every state of a compacted log passes, before, during and after cleaning:
/// offsets strictly increase; every key's last record read is its latest write (a live key's
/// value, or for a deleted key its tombstone or nothing at all); every live key is there.
pub fn check_consistent(read: &[ReadRecord], latest: &Latest) -> Result<(), String> {
    if let Some(pair) = read.windows(2).find(|w| w[1].offset <= w[0].offset) {
        return Err(format!(
            "offsets do not increase: {} then {}",
            pair[0].offset, pair[1].offset
        ));
    }
    let mut last: HashMap<&str, &Option<String>> = HashMap::new();
    for record in read {
        let Some(key) = &record.key else {
            return Err(format!(
                "a record without a key at offset {}",
                record.offset
            ));
        };
        last.insert(key, &record.value);
    }
    for (key, expected) in latest {
        match (expected, last.get(key.as_str())) {
            (Some(value), Some(Some(seen))) if seen == value => {}
            (Some(value), seen) => {
                return Err(format!("{key}: expected {value}, last read {seen:?}"));
            }
            (None, None | Some(None)) => {}
            (None, Some(Some(seen))) => {
                return Err(format!("{key} was deleted, but {seen} is still read"));
            }
        }
    }
    Ok(())
}

/// True when the log holds exactly one record per live key and no tombstone: what cleaning
/// leaves once `delete.retention.ms` has passed.
pub fn fully_compacted(read: &[ReadRecord], latest: &Latest) -> bool {
    let live = latest.values().filter(|v| v.is_some()).count();
    check_consistent(read, latest).is_ok()
        && read.len() == live
        && read.iter().all(|r| r.value.is_some())
}

/// Bytes of the `.log` files in a partition directory.
pub fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// One stored batch: its codec (attribute bits 0-2) and record count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBatch {
    pub base_offset: i64,
    pub codec: u8,
    pub records: i32,
}

/// Every batch in the `.log` files of a partition directory, in file order.
pub fn stored_batches(dir: &Path) -> anyhow::Result<Vec<StoredBatch>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file)?;
        let mut at = 0usize;
        // baseOffset i64, batchLength i32, then partitionLeaderEpoch, magic, crc, attributes at
        // byte 21, ..., recordCount at byte 57 (Kafka's v2 layout).
        while at + 61 <= bytes.len() {
            let int = |from: usize, n: usize| &bytes[at + from..at + from + n];
            let base_offset = i64::from_be_bytes(int(0, 8).try_into()?);
            let length = i32::from_be_bytes(int(8, 4).try_into()?);
            let Ok(length) = usize::try_from(length) else {
                break;
            };
            if length == 0 || at + 12 + length > bytes.len() {
                break;
            }
            out.push(StoredBatch {
                base_offset,
                codec: bytes[at + 22] & 0x07,
                records: i32::from_be_bytes(int(57, 4).try_into()?),
            });
            at += 12 + length;
        }
    }
    Ok(out)
}
