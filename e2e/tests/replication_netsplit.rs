//! A network partition: the leader of partitions is cut off from the other brokers (Kafka and
//! controller listeners alike, through the harness's fault-injecting proxy) while clients still
//! reach it. It cannot acknowledge `acks=all` writes; the majority elects new leaders; after
//! the heal it truncates what it appended alone, every replica ends byte-identical, and the
//! workload that ran throughout lost nothing. Two rounds: a broker that is not the controller,
//! then the active controller. Between rounds every partition goes back to its preferred leader
//! (preferred elections through the admin API): the quorum may elect the healed broker, which
//! then leads nothing until it gets its preferred leaderships back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use strom_admin::{ElectionType, KafkaAdmin, ReplicaAdmin};
use strom_e2e::cluster::{Cluster, eventually};
use strom_e2e::netfault::{Listener, NetFaults};
use strom_e2e::replicas::{
    await_healthy, await_identical_logs, await_partitions_on, fast_replication, partitions_in,
    produce_raw, replicated_workload, segment_bytes,
};

const DEADLINE: Duration = Duration::from_secs(30);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
const TOPIC: &str = "netsplit";
const PARTITIONS: i32 = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_cannot_acknowledge_and_truncates_after_the_heal() -> anyhow::Result<()>
{
    let net = NetFaults::new()?;
    let configure = {
        let net = net.clone();
        move |id, options| net.configure(id, fast_replication(id, options))
    };
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(3, 0, configure)).await??;
    net.attach(&cluster);
    cluster.await_controller(DEADLINE).await?;
    let workload =
        replicated_workload(&cluster, &net.bootstrap(), TOPIC, PARTITIONS, DEADLINE).await?;
    let progress = workload.progress();

    let mut markers = Vec::new();
    for round in 0..2 {
        let controller = cluster.await_controller(DEADLINE).await?;
        let layout = partitions_in(&cluster, TOPIC).await?;
        let isolated = if round == 0 {
            layout
                .values()
                .map(|p| p.leader)
                .find(|l| *l != controller)
                .context("a leader that is not the controller")?
        } else {
            controller
        };
        let led: BTreeMap<i32, i32> = layout
            .iter()
            .filter(|(_, p)| p.leader == isolated)
            .map(|(partition, p)| (*partition, p.leader_epoch))
            .collect();
        anyhow::ensure!(
            !led.is_empty(),
            "broker {isolated} leads nothing: {layout:?}"
        );
        let majority: Vec<usize> = (0..3)
            .filter(|id| *id != isolated)
            .filter_map(|id| usize::try_from(id).ok())
            .collect();

        net.isolate(&cluster, isolated);
        let cut = Instant::now();
        // Straight to the isolated leader, as a client that still reaches it: acks=all cannot
        // complete without its followers.
        let proxy = net.proxy(isolated, Listener::Kafka).context("a proxy")?;
        let (&partition, _) = led.iter().next().context("a partition")?;
        let marker = format!("isolated-round-{round}");
        let answer = produce_raw(
            &proxy,
            TOPIC,
            partition,
            -1,
            3000,
            std::slice::from_ref(&marker),
        )
        .await?;
        println!("round {round}: acks=all to isolated broker {isolated}: {answer:?}");
        assert!(
            !matches!(answer, Some((0, _))),
            "the isolated leader acknowledged an acks=all write: {answer:?}"
        );
        markers.push(marker);

        let moved = await_partitions_on(
            &cluster,
            &majority,
            TOPIC,
            "new leaders on the majority side",
            DEADLINE,
            |found| {
                led.iter().all(|(p, epoch)| {
                    found.get(p).is_some_and(|s| {
                        s.leader >= 0 && s.leader != isolated && s.leader_epoch > *epoch
                    })
                })
            },
        )
        .await?;
        println!(
            "round {round}: broker {isolated} (controller {controller}) isolated; partitions {:?} moved after {:?}: {:?}",
            led.keys().collect::<Vec<_>>(),
            cut.elapsed(),
            led.keys().map(|p| (p, moved[p].leader)).collect::<Vec<_>>()
        );
        progress
            .wait_for(progress.acknowledged(), 300, DEADLINE)
            .await?;

        net.heal_all();
        let healed = Instant::now();
        await_healthy(&cluster, Some(TOPIC), DEADLINE).await?;
        println!(
            "round {round}: whole again {:?} after the heal",
            healed.elapsed()
        );
        // Preferred elections, asked for until every partition has its preferred leader (an
        // ask that comes before the healed replica is back in the ISR changes nothing).
        eventually(
            "every partition led by its preferred replica again",
            DEADLINE,
            || async {
                let layout = partitions_in(&cluster, TOPIC).await.ok()?;
                if layout
                    .values()
                    .all(|p| p.replicas.first() == Some(&p.leader))
                {
                    return Some(());
                }
                let admin = KafkaAdmin::connect(&cluster.bootstrap(), ADMIN_TIMEOUT)
                    .await
                    .ok()?;
                let _ = admin.elect_leaders(ElectionType::Preferred, None).await;
                None
            },
        )
        .await?;
        progress
            .wait_for(progress.acknowledged(), 300, DEADLINE)
            .await?;
    }

    let report = workload.finish(&net.bootstrap(), DEADLINE).await?;
    println!("{report}");
    assert_eq!(report.lost(), 0, "{report}");
    assert_eq!(report.duplicated(), 0, "{report}");
    assert_eq!(report.out_of_order(), 0, "{report}");
    report.ensure_clean(1500)?;
    let sizes = await_identical_logs(&cluster, TOPIC, DEADLINE).await?;
    println!("replicas byte-identical per partition (bytes): {sizes:?}");
    for broker in cluster.brokers() {
        for partition in 0..PARTITIONS {
            let (_, bytes) = segment_bytes(broker.data_dir(), TOPIC, partition)?;
            for marker in &markers {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "{marker} (never acknowledged) was truncated from {TOPIC}-{partition} on {}",
                    broker.bootstrap()
                );
            }
        }
    }
    Ok(())
}
