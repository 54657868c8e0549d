//! Several brokers form one cluster: one metadata quorum of three voters over the controller
//! listener, observers that follow it, one cluster id, one controller; the controller fails
//! over and nothing committed is lost; brokers that stop heartbeating are fenced.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use strom_e2e::cluster::{
    Cluster, ClusterView, describe_cluster, describe_quorum, eventually, fast_sessions, metadata,
    metric,
};

const DEADLINE: Duration = Duration::from_secs(60);

fn sum_active_controllers(cluster: &Cluster) -> f64 {
    cluster
        .running()
        .iter()
        .filter_map(|i| {
            metric(
                cluster.broker(*i),
                "kafka_controller_kafkacontroller_activecontrollercount",
            )
            .ok()
        })
        .sum()
}

/// Waits until every running broker has applied the same metadata offset, then returns the
/// (offset, checksum) they agree on.
async fn await_same_image(cluster: &Cluster) -> anyhow::Result<(u64, u64)> {
    eventually(
        "every running broker to apply the same metadata",
        DEADLINE,
        || async {
            let images: BTreeSet<(u64, u64)> = cluster
                .running()
                .iter()
                .map(|i| {
                    let broker = cluster.broker(*i);
                    let offset = metric(broker, "strom_metadata_applied_offset").ok()?;
                    let checksum = metric(broker, "strom_metadata_image_checksum").ok()?;
                    Some((offset as u64, checksum as u64))
                })
                .collect::<Option<_>>()?;
            (images.len() == 1).then(|| images.into_iter().next())?
        },
    )
    .await
}

async fn create_topic_via(bootstrap: &str, name: &str) -> anyhow::Result<()> {
    strom_e2e::kafka::create_topic(bootstrap, name, 2, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_and_two_observers_form_one_cluster() -> anyhow::Result<()> {
    // Both observers ask to join while the voters still form the quorum: one membership
    // change at a time, so each waits for the other's instead of failing its start.
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 2, fast_sessions)).await??;
    let expected: Vec<i32> = vec![0, 1, 2, 3, 4];
    let mut cluster_ids = BTreeSet::new();
    let mut controllers = BTreeSet::new();
    for broker in cluster.brokers() {
        let bootstrap = broker.bootstrap();
        let view = wait_until_async(&bootstrap, |v| v.brokers == expected).await?;
        cluster_ids.insert(view.cluster_id.clone());
        controllers.insert(view.controller_id);
        let meta = metadata(&bootstrap).await?;
        let mut ids: Vec<i32> = meta.brokers.iter().map(|b| b.node_id.0).collect();
        ids.sort_unstable();
        assert_eq!(
            ids, expected,
            "Metadata from {bootstrap} lists every broker"
        );
        assert_eq!(meta.cluster_id.as_deref(), Some(view.cluster_id.as_str()));
        assert_eq!(meta.controller_id.0, view.controller_id);
    }
    assert_eq!(cluster_ids.len(), 1, "one cluster id: {cluster_ids:?}");
    assert_eq!(controllers.len(), 1, "one controller: {controllers:?}");
    let controller = *controllers.iter().next().context("a controller")?;
    assert!(
        (0..3).contains(&controller),
        "a voter leads, not the observer"
    );

    // DescribeQuorum, asked of an observer: three voters in sync, the observers behind none.
    let observer = cluster.broker(3).bootstrap();
    let quorum = eventually(
        "DescribeQuorum to show every voter caught up",
        DEADLINE,
        || async {
            let response = describe_quorum(&observer).await.ok()?;
            let partition = response.topics.first()?.partitions.first()?.clone();
            let caught_up = partition
                .current_voters
                .iter()
                .chain(&partition.observers)
                .all(|r| r.log_end_offset >= partition.high_watermark);
            caught_up.then_some(partition)
        },
    )
    .await?;
    let voters: Vec<i32> = quorum
        .current_voters
        .iter()
        .map(|r| r.replica_id.0)
        .collect();
    let observers: Vec<i32> = quorum.observers.iter().map(|r| r.replica_id.0).collect();
    assert_eq!(voters, vec![0, 1, 2]);
    assert_eq!(
        observers,
        vec![3, 4],
        "the broker-only nodes observe and never vote"
    );
    assert_eq!(quorum.leader_id.0, controller);
    assert!(quorum.high_watermark > 0);

    assert_eq!(
        sum_active_controllers(&cluster),
        1.0,
        "exactly one active controller"
    );
    await_same_image(&cluster).await?;
    Ok(())
}

/// Polls DescribeCluster on `bootstrap` until `accept` holds.
async fn wait_until_async(
    bootstrap: &str,
    accept: impl Fn(&ClusterView) -> bool,
) -> anyhow::Result<ClusterView> {
    eventually("DescribeCluster to match", DEADLINE, || async {
        describe_cluster(bootstrap).await.ok().filter(|v| accept(v))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_fails_over_and_nothing_committed_is_lost() -> anyhow::Result<()> {
    let mut cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_sessions)).await??;
    let mut rng = rand::rng();
    let mut created: Vec<String> = Vec::new();
    // Leader per quorum epoch, as seen by every broker asked: one leader per epoch, ever.
    let mut leaders_by_epoch: BTreeMap<i32, BTreeSet<i32>> = BTreeMap::new();
    const ROUNDS: usize = 5;
    for round in 0..ROUNDS {
        let controller = cluster.await_controller(DEADLINE).await?;
        // The first two rounds kill the active controller; later ones a random voter.
        let victim = if round < 2 {
            usize::try_from(controller)?
        } else {
            rng.random_range(0..3)
        };
        cluster.broker_mut(victim).kill9();
        let survivor = cluster.running()[0];
        let bootstrap = cluster.broker(survivor).bootstrap();
        let name = format!("failover-{round}");
        let started = Instant::now();
        create_topic_via(&bootstrap, &name)
            .await
            .with_context(|| format!("round {round}: CreateTopics after killing {victim}"))?;
        println!(
            "round {round}: killed broker {victim} (controller was {controller}); CreateTopics \
             through broker {survivor} took {:?}",
            started.elapsed()
        );
        created.push(name);
        for i in cluster.running() {
            if let Ok(response) = describe_quorum(&cluster.broker(i).bootstrap()).await
                && let Some(p) = response.topics.first().and_then(|t| t.partitions.first())
                && response.error_code == 0
            {
                leaders_by_epoch
                    .entry(p.leader_epoch)
                    .or_default()
                    .insert(p.leader_id.0);
            }
        }
        tokio::task::block_in_place(|| cluster.broker_mut(victim).restart())?;
    }
    cluster.await_controller(DEADLINE).await?;
    for (epoch, leaders) in &leaders_by_epoch {
        assert_eq!(leaders.len(), 1, "epoch {epoch} had leaders {leaders:?}");
    }
    let (offset, _) = await_same_image(&cluster).await?;
    println!("all three brokers applied metadata offset {offset} with one image checksum");
    for broker in cluster.brokers() {
        let meta = metadata(&broker.bootstrap()).await?;
        let topics: BTreeSet<String> = meta
            .topics
            .iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
            .collect();
        for name in &created {
            assert!(topics.contains(name), "{name} is on {}", broker.bootstrap());
        }
    }
    assert_eq!(sum_active_controllers(&cluster), 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_fenced_and_unfenced_when_it_returns() -> anyhow::Result<()> {
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_sessions)).await??;
    let controller = cluster.await_controller(DEADLINE).await?;
    let stopped = (0..3)
        .find(|i| *i != controller)
        .context("a non-controller")?;
    let observer = (0..3)
        .find(|i| *i != controller && *i != stopped)
        .context("a third broker")?;
    let watch = cluster.broker(usize::try_from(observer)?).bootstrap();
    cluster.broker(usize::try_from(stopped)?).signal("STOP")?;
    let started = Instant::now();
    let view = wait_until_async(&watch, |v| !v.brokers.contains(&stopped)).await?;
    println!(
        "broker {stopped} fenced {:?} after SIGSTOP",
        started.elapsed()
    );
    assert_eq!(view.brokers.len(), 2);
    assert_eq!(
        view.fenced,
        vec![stopped],
        "DescribeCluster v2 flags the fenced broker"
    );
    let meta = metadata(&watch).await?;
    assert!(
        meta.brokers.iter().all(|b| b.node_id.0 != stopped),
        "fenced brokers leave Metadata"
    );

    cluster.broker(usize::try_from(stopped)?).signal("CONT")?;
    wait_until_async(&watch, |v| v.brokers.contains(&stopped)).await?;
    let back = describe_cluster(&cluster.broker(usize::try_from(stopped)?).bootstrap()).await?;
    assert_eq!(
        back.brokers,
        vec![0, 1, 2],
        "the returned broker sees everyone again"
    );
    Ok(())
}

/// The controller listener addresses of the voters, from the cluster's voter list.
fn controller_addresses(cluster: &Cluster) -> Vec<String> {
    cluster
        .voters()
        .split(',')
        .filter_map(|entry| entry.split_once('@').map(|(_, addr)| addr.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_foreign_peers_are_refused_without_harming_the_quorum() -> anyhow::Result<()> {
    use strom_metadata::grpc::envelope::paths;
    use strom_metadata::grpc::{Envelope, Peer, PeerError};
    use tokio::io::AsyncWriteExt;

    let cluster = tokio::task::spawn_blocking(|| Cluster::start(3, 0, fast_sessions)).await??;
    let controller = cluster.await_controller(DEADLINE).await?;
    let before = describe_quorum(&cluster.broker(0).bootstrap()).await?;
    let epoch = before.topics[0].partitions[0].leader_epoch;
    let cluster_id = describe_cluster(&cluster.broker(0).bootstrap())
        .await?
        .cluster_id;

    let mut noise = rand::rng();
    for addr in controller_addresses(&cluster) {
        // Bytes that are not HTTP/2 at all.
        let mut stream = tokio::net::TcpStream::connect(&addr).await?;
        let garbage: Vec<u8> = (0..4096).map(|_| noise.random()).collect();
        let _ = stream.write_all(&garbage).await;
        drop(stream);

        let peer = Peer::new(&addr)?;
        // A vote from a node of another cluster never reaches the quorum.
        let foreign = Envelope {
            cluster_id: "another-cluster".to_owned(),
            node_id: 9,
            payload: br#"{"vote":{"leader_id":{"term":1000000,"node_id":9}}}"#.to_vec(),
            metadata_offset: 0,
        };
        let refused = peer
            .call(paths::VOTE, foreign, Duration::from_secs(5))
            .await;
        assert!(
            matches!(refused, Err(PeerError::ClusterMismatch { .. })),
            "{addr}: {refused:?}"
        );
        // A well-formed vote of the right cluster for a node other than its sender: a forged
        // leadership openraft must never see.
        let forged = Envelope {
            cluster_id: cluster_id.clone(),
            node_id: 9,
            payload: format!(
                r#"{{"vote":{{"leader_id":{{"term":1000000,"voted_for":{controller}}},"committed":true}},"last_log_id":null}}"#
            )
            .into_bytes(),
            metadata_offset: 0,
        };
        let refused = peer.call(paths::VOTE, forged, Duration::from_secs(5)).await;
        assert!(
            matches!(refused, Err(PeerError::Refused { .. })),
            "{addr}: a forged vote: {refused:?}"
        );
        // The right cluster id with a payload that is no request.
        for path in [paths::APPEND_ENTRIES, paths::VOTE, paths::CONTROLLER_CALL] {
            let garbled = Envelope {
                cluster_id: cluster_id.clone(),
                node_id: 9,
                payload: b"\x00\xffnot json".to_vec(),
                metadata_offset: 0,
            };
            let refused = peer.call(path, garbled, Duration::from_secs(5)).await;
            assert!(
                matches!(refused, Err(PeerError::Refused { .. })),
                "{path}: {refused:?}"
            );
        }
    }

    // The quorum did not notice: same controller, same epoch, and it still commits.
    assert_eq!(cluster.await_controller(DEADLINE).await?, controller);
    let after = describe_quorum(&cluster.broker(0).bootstrap()).await?;
    assert_eq!(after.topics[0].partitions[0].leader_epoch, epoch);
    create_topic_via(&cluster.broker(1).bootstrap(), "after-garbage").await?;
    Ok(())
}
