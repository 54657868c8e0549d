//! The network-partition proxy of the replication tests, proven on the metadata quorum alone:
//! a broker cut off from the others by the proxy is fenced by them (its heartbeats no longer
//! arrive) while a client still reaches it through the same proxy, an isolated controller is
//! replaced, and after the heal everyone is back in one cluster.

use std::time::{Duration, Instant};

use anyhow::Context;
use strom_e2e::cluster::{Cluster, describe_cluster, eventually, fast_sessions, metadata};
use strom_e2e::netfault::{Listener, NetFaults};

const DEADLINE: Duration = Duration::from_secs(30);

async fn start() -> anyhow::Result<(Cluster, std::sync::Arc<NetFaults>)> {
    let net = NetFaults::new()?;
    let configure = {
        let net = net.clone();
        move |id, options| net.configure(id, fast_sessions(id, options))
    };
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(3, 0, configure)).await??;
    net.attach(&cluster);
    Ok((cluster, net))
}

/// Waits until broker `observer` reports `accept` of its DescribeCluster view.
async fn await_view(
    cluster: &Cluster,
    observer: usize,
    what: &str,
    accept: impl Fn(&strom_e2e::cluster::ClusterView) -> bool,
) -> anyhow::Result<strom_e2e::cluster::ClusterView> {
    let bootstrap = cluster.broker(observer).bootstrap();
    eventually(what, DEADLINE, || async {
        describe_cluster(&bootstrap)
            .await
            .ok()
            .filter(|v| accept(v))
    })
    .await
}

/// A client request through `node`'s Kafka proxy answers, with `node`'s own view.
async fn client_reaches(net: &NetFaults, node: i32) -> anyhow::Result<()> {
    let proxy = net.proxy(node, Listener::Kafka).context("a Kafka proxy")?;
    let response = tokio::time::timeout(Duration::from_secs(5), metadata(&proxy))
        .await
        .with_context(|| format!("Metadata through {proxy} did not answer"))??;
    assert!(
        !response.brokers.is_empty(),
        "broker {node} answers a client through its proxy"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_broker_is_fenced_while_clients_still_reach_it() -> anyhow::Result<()> {
    let (cluster, net) = start().await?;
    let controller = cluster.await_controller(DEADLINE).await?;
    // The proxy tells brokers' connections from clients': the quorum's own links are known.
    let links = eventually(
        "broker-to-broker links through the proxy",
        DEADLINE,
        || async {
            let links = net.broker_connections();
            (links.keys().filter(|(from, to)| from != to).count() >= 2).then_some(links)
        },
    )
    .await?;
    println!("broker links through the proxy (from, to) -> connections: {links:?}");

    let isolated = (0..3).find(|id| *id != controller).context("a follower")?;
    let witness = usize::try_from(controller)?;
    net.isolate(&cluster, isolated);
    let cut = Instant::now();
    let view = await_view(&cluster, witness, "the isolated broker fenced", |v| {
        v.fenced.contains(&isolated) && !v.brokers.contains(&isolated)
    })
    .await?;
    println!(
        "broker {isolated} isolated: fenced by controller {controller} after {:?}",
        cut.elapsed()
    );
    assert_eq!(view.brokers.len(), 2, "{view:?}");
    client_reaches(&net, isolated).await?;

    net.heal_all();
    let healed = Instant::now();
    await_view(&cluster, witness, "the healed broker unfenced", |v| {
        v.brokers == vec![0, 1, 2]
    })
    .await?;
    println!(
        "healed: broker {isolated} unfenced after {:?}",
        healed.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_controller_is_replaced_and_rejoins_after_the_heal() -> anyhow::Result<()> {
    let (cluster, net) = start().await?;
    let controller = cluster.await_controller(DEADLINE).await?;
    let witness = usize::try_from((0..3).find(|id| *id != controller).context("a follower")?)?;
    net.isolate(&cluster, controller);
    let cut = Instant::now();
    let view = await_view(
        &cluster,
        witness,
        "a new controller on the majority side",
        |v| v.controller_id >= 0 && v.controller_id != controller && v.fenced.contains(&controller),
    )
    .await?;
    println!(
        "controller {controller} isolated: broker {} controls after {:?} and fenced it",
        view.controller_id,
        cut.elapsed()
    );
    client_reaches(&net, controller).await?;

    net.heal_all();
    let agreed = cluster.await_controller(DEADLINE).await?;
    assert_ne!(agreed, -1);
    await_view(&cluster, witness, "every broker unfenced", |v| {
        v.brokers == vec![0, 1, 2]
    })
    .await?;
    let rejoined =
        describe_cluster(&cluster.broker(usize::try_from(controller)?).bootstrap()).await?;
    assert_eq!(
        rejoined.controller_id, agreed,
        "the old controller follows the new one"
    );
    Ok(())
}
