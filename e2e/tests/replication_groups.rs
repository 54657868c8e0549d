//! Consumer groups across a coordinator failover: three confluent-kafka members of one group
//! consume and auto-commit a replicated topic while the broker leading the group's
//! `__consumer_offsets` partition (its coordinator) is killed. They find the new coordinator;
//! no committed offset goes back; when a member then dies, the others take its partitions over
//! at the committed offsets, so the group as a whole skips no record.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use kafka_protocol::messages::{ApiKey, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::kafka::{base_config, create_replicated_topic};
use strom_e2e::replicas::{await_healthy, fast_replication, partitions};
use strom_e2e::workload::{Workload, WorkloadConfig};
use strom_e2e::{repo_root, tool};

const DEADLINE: Duration = Duration::from_secs(30);
const TOPIC: &str = "grouped";
const GROUP: &str = "failover-group";
const PARTITIONS: i32 = 3;

/// A confluent-kafka member (e2e/scripts/group_consumer.py, auto-commit every 500 ms) and the
/// (partition, offset) of every record it received.
struct Member {
    child: Child,
    received: Arc<Mutex<Vec<(i32, i64)>>>,
    assigned: Arc<Mutex<BTreeSet<i32>>>,
}

impl Member {
    fn start(bootstrap: &str) -> anyhow::Result<Member> {
        let script = repo_root().join("e2e/scripts/group_consumer.py");
        let mut child = Command::new(tool("python3")?)
            .arg(&script)
            .args(["--bootstrap", bootstrap, "--group", GROUP, "--topic", TOPIC])
            .args([
                "--session-timeout-ms",
                "6000",
                "--client",
                "confluent-kafka",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("running {}", script.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let assigned = Arc::new(Mutex::new(BTreeSet::new()));
        std::thread::spawn({
            let (received, assigned) = (received.clone(), assigned.clone());
            move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    let int = |key: &str| event[key].as_i64().unwrap_or(-1);
                    let list = || -> BTreeSet<i32> {
                        event["partitions"]
                            .as_array()
                            .map(|ps| {
                                ps.iter()
                                    .filter_map(|p| i32::try_from(p.as_i64()?).ok())
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    match event["event"].as_str() {
                        Some("record") => {
                            if let Ok(mut r) = received.lock() {
                                r.push((
                                    i32::try_from(int("partition")).unwrap_or(-1),
                                    int("offset"),
                                ));
                            }
                        }
                        Some("assigned") => {
                            if let Ok(mut a) = assigned.lock() {
                                *a = list();
                            }
                        }
                        Some("revoked") | Some("lost") => {
                            if let Ok(mut a) = assigned.lock() {
                                a.clear();
                            }
                        }
                        _ => {}
                    }
                }
            }
        });
        Ok(Member {
            child,
            received,
            assigned,
        })
    }

    fn assigned(&self) -> BTreeSet<i32> {
        self.assigned.lock().map(|a| a.clone()).unwrap_or_default()
    }

    fn received(&self) -> Vec<(i32, i64)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The group's coordinator as `bootstrap` names it (FindCoordinator v4).
async fn coordinator(bootstrap: &str) -> anyhow::Result<i32> {
    let mut stream = tokio::net::TcpStream::connect(bootstrap).await?;
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![StrBytes::from_static_str(GROUP)]);
    let response: FindCoordinatorResponse =
        strom_e2e::wire::call(&mut stream, ApiKey::FindCoordinator, 4, &request).await?;
    let found = response.coordinators.first().context("one coordinator")?;
    anyhow::ensure!(
        found.error_code == 0,
        "FindCoordinator error {}",
        found.error_code
    );
    Ok(found.node_id.0)
}

/// The group's committed offsets, per partition (-1: none), asked through `bootstrap`.
fn committed(bootstrap: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut config = base_config(bootstrap);
    config
        .set("group.id", GROUP)
        .set("enable.auto.commit", "false");
    let reader: BaseConsumer = config.create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        list.add_partition(TOPIC, p);
    }
    let found = reader.committed_offsets(list, Duration::from_secs(10))?;
    Ok(found
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_follow_the_coordinator_and_resume_at_committed_offsets() -> anyhow::Result<()> {
    let mut cluster =
        tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_replication)).await??;
    cluster.await_controller(DEADLINE).await?;
    create_replicated_topic(
        &cluster.bootstrap(),
        TOPIC,
        PARTITIONS,
        3,
        &[("min.insync.replicas", "2")],
    )
    .await?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
    let workload = Workload::start(
        &cluster.bootstrap(),
        WorkloadConfig::new(TOPIC, PARTITIONS).rate(300),
    )?;
    let progress = workload.progress();
    let mut members: Vec<Member> = (0..3)
        .map(|_| Member::start(&cluster.bootstrap()))
        .collect::<anyhow::Result<_>>()?;
    eventually(
        "three members to share the partitions",
        Duration::from_secs(60),
        || async {
            let sets: Vec<BTreeSet<i32>> = members.iter().map(Member::assigned).collect();
            let all: BTreeSet<i32> = sets.iter().flatten().copied().collect();
            (sets.iter().all(|s| s.len() == 1) && all.len() == 3).then_some(())
        },
    )
    .await?;
    progress
        .wait_for(progress.acknowledged(), 600, DEADLINE)
        .await?;

    let offsets_topic = partitions(&cluster.broker(0).bootstrap(), "__consumer_offsets").await?;
    assert!(
        offsets_topic.values().all(|p| p.replicas.len() == 3),
        "__consumer_offsets is replicated on every broker: {offsets_topic:?}"
    );
    let old = coordinator(&cluster.broker(0).bootstrap()).await?;
    let before = tokio::task::block_in_place(|| committed(&cluster.bootstrap()))?;
    assert!(
        before.values().all(|o| *o > 0),
        "the members committed: {before:?}"
    );
    cluster.broker_mut(usize::try_from(old)?).kill9();
    let killed = Instant::now();
    let survivor = cluster.broker(cluster.running()[0]).bootstrap();
    let new = eventually("a new coordinator", DEADLINE, || async {
        coordinator(&survivor)
            .await
            .ok()
            .filter(|c| *c != old && *c >= 0)
    })
    .await?;
    // The members commit to the new coordinator; nothing committed before went back.
    let after = eventually(
        "commits past the ones before the kill",
        DEADLINE,
        || async {
            let now = tokio::task::block_in_place(|| committed(&cluster.bootstrap())).ok()?;
            before
                .iter()
                .all(|(p, o)| now.get(p).is_some_and(|n| n > o))
                .then_some(now)
        },
    )
    .await?;
    println!(
        "coordinator {old} killed; coordinator {new} after {:?}; committed {before:?} -> {after:?}",
        killed.elapsed()
    );
    tokio::task::block_in_place(|| cluster.broker_mut(usize::try_from(old)?).restart())?;
    await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;

    // A member dies; the others take its partition over at its committed offset.
    let dead = members.remove(0);
    let orphaned = dead.assigned();
    let read_by_the_dead = dead.received();
    drop(dead);
    eventually(
        "the survivors to own every partition",
        Duration::from_secs(60),
        || async {
            let all: BTreeSet<i32> = members.iter().flat_map(Member::assigned).collect();
            (all.len() == 3).then_some(())
        },
    )
    .await?;
    progress
        .wait_for(progress.acknowledged(), 300, DEADLINE)
        .await?;
    let report = workload.finish(&cluster.bootstrap(), DEADLINE).await?;
    println!("{report}");
    report.ensure_clean(900)?;

    // Every record up to the end was received by some member: nothing skipped.
    let ends = report.high_watermarks.clone();
    let seen = eventually(
        "the group to read every record",
        Duration::from_secs(60),
        || async {
            let mut seen: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
            for (p, o) in members
                .iter()
                .flat_map(Member::received)
                .chain(read_by_the_dead.iter().copied())
            {
                seen.entry(p).or_default().insert(o);
            }
            ends.iter()
                .all(|(p, end)| {
                    seen.get(p)
                        .is_some_and(|s| i64::try_from(s.range(..*end).count()).ok() == Some(*end))
                })
                .then_some(seen)
        },
    )
    .await?;
    println!(
        "partitions {orphaned:?} moved from the dead member; records read per partition: {:?}",
        seen.iter().map(|(p, s)| (p, s.len())).collect::<Vec<_>>()
    );
    let final_commits = eventually("final commits at the log ends", DEADLINE, || async {
        let now = tokio::task::block_in_place(|| committed(&cluster.bootstrap())).ok()?;
        ends.iter()
            .all(|(p, end)| now.get(p) == Some(end))
            .then_some(now)
    })
    .await?;
    println!("final committed offsets {final_commits:?} = high watermarks {ends:?}");
    Ok(())
}
