//! A rolling restart by `strom-operator local` with one broker SIGSTOPped after its own
//! restart: the roll goes no further while partitions are under-replicated (the next broker is
//! held until the one restarted is back in every ISR, and none after it would keep
//! `min.insync.replicas`), the Cluster status's `operation.message` names the partitions, and
//! once the broker gets SIGCONT the roll completes with each broker restarted exactly once.
//! An idempotent `acks=all` producer and a consumer lose and duplicate nothing throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use strom_e2e::cluster::eventually;
use strom_e2e::local::{
    FAST_BROKER_CONFIG, LocalOperator, READY_DEADLINE, cluster_manifest, signal, topic,
};
use strom_e2e::workload::{Workload, WorkloadConfig};

const DEADLINE: Duration = Duration::from_secs(60);
/// How long the roll is watched holding while a broker is stopped.
const HOLD: Duration = Duration::from_secs(5);

fn manifest(extra: &[(&str, &str)]) -> String {
    let mut config: Vec<(&str, &str)> = FAST_BROKER_CONFIG.to_vec();
    config.extend_from_slice(extra);
    cluster_manifest(3, 3, &config, &[], &[topic("events", 3, 3, 2)])
}

/// Brokers whose pid differs from `pids`, recording the new pids and the order.
fn note_restarts(
    operator: &LocalOperator,
    pids: &mut BTreeMap<i32, u32>,
    order: &mut Vec<(i32, Instant)>,
) {
    for id in 0..3 {
        if let Some(pid) = operator.broker_pid(id)
            && pids.get(&id) != Some(&pid)
        {
            pids.insert(id, pid);
            order.push((id, Instant::now()));
        }
    }
}

/// Whether `message` names a partition of the cluster (`events-N`, `__consumer_offsets-N`).
fn names_a_partition(message: &str) -> bool {
    message
        .split(|c: char| c.is_whitespace() || c == ',' || c == ':' || c == ';')
        .any(|word| {
            ["events-", "__consumer_offsets-"].iter().any(|topic| {
                word.strip_prefix(topic)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            })
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roll_waits_for_a_stopped_broker_and_names_the_partition_it_would_endanger()
-> anyhow::Result<()> {
    let mut operator = LocalOperator::start(&manifest(&[]))?;
    let bootstrap = tokio::task::block_in_place(|| operator.await_ready(READY_DEADLINE))?;
    eventually("the topic to be ready", DEADLINE, || async {
        let status = operator.status("Topic", "events")?;
        LocalOperator::condition_true(&status, "Ready").then_some(())
    })
    .await?;
    let mut pids: BTreeMap<i32, u32> = (0..3)
        .filter_map(|id| Some((id, operator.broker_pid(id)?)))
        .collect();
    let workload = Workload::start(&bootstrap, WorkloadConfig::new("events", 3).rate(500))?;
    let progress = workload.progress();
    progress.wait_for(0, 1000, DEADLINE).await?;

    operator.apply(&manifest(&[("log.retention.check.interval.ms", "290000")]))?;
    let mut order: Vec<(i32, Instant)> = Vec::new();
    // The first broker the roll is done with gets SIGSTOP.
    let stopped = eventually("the roll to be done with a first broker", DEADLINE, || {
        note_restarts(&operator, &mut pids, &mut order);
        let done = operator
            .status("Cluster", "local")
            .and_then(|s| s["operation"]["done"].as_sequence()?.first()?.as_i64());
        async move { done }
    })
    .await?;
    let stopped = i32::try_from(stopped)?;
    signal(pids[&stopped], "STOP")?;
    println!("broker {stopped} stopped (SIGSTOP)");

    let mut seen = String::new();
    let message = eventually("the roll to name a blocking partition", DEADLINE, || {
        note_restarts(&operator, &mut pids, &mut order);
        let message = operator
            .status("Cluster", "local")
            .and_then(|s| s["operation"]["message"].as_str().map(str::to_owned));
        if let Some(m) = &message
            && *m != seen
        {
            println!("operation: {m}");
            seen = m.clone();
        }
        let message = message.filter(|m| names_a_partition(m));
        async move { message }
    })
    .await?;
    println!("blocked: {message}");
    let waiting: Vec<i32> = (0..3)
        .filter(|id| !order.iter().any(|(r, _)| r == id))
        .collect();
    assert!(
        !waiting.is_empty(),
        "a broker is left to restart: {order:?}"
    );
    // While the broker stays stopped (ten passes of the operator), the roll holds.
    let restarted = order.len();
    let hold = Instant::now() + HOLD;
    while Instant::now() < hold {
        note_restarts(&operator, &mut pids, &mut order);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        order.len(),
        restarted,
        "no restart while broker {stopped} is stopped: {order:?}"
    );
    let still = operator
        .status("Cluster", "local")
        .and_then(|s| s["operation"]["message"].as_str().map(str::to_owned))
        .unwrap_or_default();
    assert!(
        names_a_partition(&still),
        "the message still names the partitions: {still}"
    );

    signal(pids[&stopped], "CONT")?;
    let resumed = Instant::now();
    println!("broker {stopped} resumed (SIGCONT)");
    eventually("the roll to complete", Duration::from_secs(90), || {
        note_restarts(&operator, &mut pids, &mut order);
        let finished = operator.status("Cluster", "local").is_some_and(|s| {
            s.get("operation").is_none_or(serde_yaml::Value::is_null)
                && LocalOperator::condition_true(&s, "Ready")
        }) && order.len() >= 3;
        async move { finished.then_some(()) }
    })
    .await?;
    let acked = progress.acknowledged();
    progress.wait_for(acked, 500, DEADLINE).await?;
    let report = workload.finish(&bootstrap, DEADLINE).await?;
    println!("{report}");
    let ids: Vec<i32> = order.iter().map(|(id, _)| *id).collect();
    println!(
        "restart order {ids:?}; acked {} lost {} duplicated {} longest produce stall {:?}",
        report.acknowledged,
        report.lost(),
        report.duplicated(),
        report.longest_stall
    );
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [0, 1, 2],
        "each broker restarted exactly once: {ids:?}"
    );
    for (id, at) in &order {
        if waiting.contains(id) {
            assert!(
                *at > resumed,
                "broker {id} was restarted before broker {stopped} resumed"
            );
        }
    }
    report.ensure_clean(1500)?;
    Ok(())
}
