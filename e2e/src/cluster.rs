//! Several broker processes on 127.0.0.1 forming one cluster, and the requests tests ask of it.
//!
//! Voters must know each other's controller listeners before they start, and a restarted voter
//! must come back on the same address, so each node's controller port is reserved once when
//! the cluster is made (the OS picks it: bind port 0, read it, release it) and reused for the
//! life of the [`Cluster`]. So is each node's Kafka port: a restarted broker comes back where
//! clients knew it, as a pod of a StatefulSet does behind its stable name, and a long-lived
//! client's bootstrap list stays valid. Admin listeners take a fresh OS port per start.

use std::time::Duration;

use anyhow::Context;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    ApiKey, DescribeClusterRequest, DescribeClusterResponse, DescribeQuorumRequest,
    DescribeQuorumResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

use crate::observability::http_get;
use crate::{BrokerOptions, BrokerProcess};

/// Brokers of one cluster, indexed by node id.
#[derive(Debug)]
pub struct Cluster {
    brokers: Vec<BrokerProcess>,
    voters: String,
}

impl Cluster {
    /// Starts `voters` voters (node ids `0..voters`) and `observers` broker-only nodes after
    /// them, all at once; `configure` adds settings per node id. Returns once every node has
    /// printed its ready line (voters need a majority of each other for that).
    pub fn start(
        voters: usize,
        observers: usize,
        configure: impl Fn(i32, BrokerOptions) -> BrokerOptions + Sync,
    ) -> anyhow::Result<Cluster> {
        let reserved = reserve_ports(2 * (voters + observers))?;
        let (ports, kafka_ports) = reserved.split_at(voters + observers);
        let voter_list = ports[..voters]
            .iter()
            .enumerate()
            .map(|(id, port)| format!("{id}@127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let options: Vec<BrokerOptions> = ports
            .iter()
            .enumerate()
            .map(|(id, port)| {
                let id = i32::try_from(id).unwrap_or(i32::MAX);
                let base = BrokerOptions {
                    node_id: Some(id),
                    controller_listen: Some(format!("127.0.0.1:{port}")),
                    kafka_listen: kafka_ports
                        .get(usize::try_from(id).unwrap_or(usize::MAX))
                        .map(|kafka| format!("127.0.0.1:{kafka}")),
                    ..BrokerOptions::default()
                }
                .with("controller.quorum.voters", &voter_list);
                configure(id, base)
            })
            .collect();
        let started: Vec<anyhow::Result<BrokerProcess>> = std::thread::scope(|scope| {
            let handles: Vec<_> = options
                .into_iter()
                .map(|o| scope.spawn(move || BrokerProcess::start(o)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("broker start panicked")))
                })
                .collect()
        });
        let brokers = started
            .into_iter()
            .enumerate()
            .map(|(id, b)| b.with_context(|| format!("starting broker {id}")))
            .collect::<anyhow::Result<_>>()?;
        Ok(Cluster {
            brokers,
            voters: voter_list,
        })
    }

    /// `controller.quorum.voters` of this cluster.
    pub fn voters(&self) -> &str {
        &self.voters
    }

    pub fn broker(&self, node_id: usize) -> &BrokerProcess {
        &self.brokers[node_id]
    }

    pub fn broker_mut(&mut self, node_id: usize) -> &mut BrokerProcess {
        &mut self.brokers[node_id]
    }

    pub fn brokers(&self) -> &[BrokerProcess] {
        &self.brokers
    }

    /// Node ids of the brokers the harness has running.
    pub fn running(&self) -> Vec<usize> {
        (0..self.brokers.len())
            .filter(|i| self.brokers[*i].is_running())
            .collect()
    }

    /// Bootstrap addresses of every running broker, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.running()
            .iter()
            .map(|i| self.brokers[*i].bootstrap())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The active controller as every running broker reports it in DescribeCluster, once all
    /// agree on one (within `deadline`).
    pub async fn await_controller(&self, deadline: Duration) -> anyhow::Result<i32> {
        eventually(
            "every running broker to report one controller",
            deadline,
            || async {
                let mut ids = Vec::new();
                for i in self.running() {
                    ids.push(
                        describe_cluster(&self.brokers[i].bootstrap())
                            .await
                            .ok()?
                            .controller_id,
                    );
                }
                let first = *ids.first()?;
                (first >= 0 && ids.iter().all(|id| *id == first)).then_some(first)
            },
        )
        .await
    }
}

/// Polls `check` until it returns `Some` or `deadline` passes; the async twin of
/// [`wait_until`](crate::wait_until).
pub async fn eventually<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fast broker liveness for tests: a stopped broker is fenced 3 s after its last heartbeat.
pub fn fast_sessions(_id: i32, options: BrokerOptions) -> BrokerOptions {
    options
        .with("broker.heartbeat.interval.ms", "300")
        .with("broker.session.timeout.ms", "3000")
}

/// A port that was free a moment ago, chosen by the OS.
pub fn reserve_port() -> anyhow::Result<u16> {
    Ok(reserve_ports(1)?[0])
}

/// `count` distinct ports that were free a moment ago (all held until every one is chosen, so
/// none is handed out twice).
///
/// They come from below the kernel's ephemeral range (`ip_local_port_range`) when there is
/// room: a port from that range, once released, can be taken as the source port of any
/// outgoing connection (the brokers of the cluster being started connect to each other) before
/// its broker binds it, and the broker then fails with "address already in use".
pub fn reserve_ports(count: usize) -> anyhow::Result<Vec<u16>> {
    let mut listeners = Vec::with_capacity(count);
    if let Some(low) = ephemeral_range_start().filter(|low| *low > 11_000) {
        let mut rng = rand::rng();
        let mut attempts = 0;
        while listeners.len() < count && attempts < 1000 {
            attempts += 1;
            let port = rand::Rng::random_range(&mut rng, 10_000..low);
            if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
                listeners.push(listener);
            }
        }
    }
    while listeners.len() < count {
        listeners.push(std::net::TcpListener::bind("127.0.0.1:0").context("reserving a port")?);
    }
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The first of `count` consecutive ports that were all free a moment ago, below the kernel's
/// ephemeral range when there is room (see [`reserve_ports`]): for a manifest that pins a base
/// port, broker `i` on base + `i`.
pub fn reserve_port_range(count: u16) -> anyhow::Result<u16> {
    let high = ephemeral_range_start()
        .filter(|low| *low > 11_000)
        .unwrap_or(u16::MAX);
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let base = rand::Rng::random_range(&mut rng, 10_000..high.saturating_sub(count));
        let held: Vec<std::net::TcpListener> = (base..base + count)
            .map_while(|port| std::net::TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == usize::from(count) {
            return Ok(base);
        }
    }
    anyhow::bail!("no {count} consecutive free ports found")
}

/// The first port of the kernel's ephemeral range, if it can be read.
fn ephemeral_range_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What DescribeCluster says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster_id: String,
    pub controller_id: i32,
    /// Unfenced broker ids, sorted.
    pub brokers: Vec<i32>,
    /// Registered but fenced broker ids, sorted.
    pub fenced: Vec<i32>,
}

/// DescribeCluster v2, fenced brokers included, against `bootstrap`.
pub async fn describe_cluster(bootstrap: &str) -> anyhow::Result<ClusterView> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let response: DescribeClusterResponse = crate::wire::call(
        &mut stream,
        ApiKey::DescribeCluster,
        2,
        &DescribeClusterRequest::default().with_include_fenced_brokers(true),
    )
    .await?;
    anyhow::ensure!(
        response.error_code == 0,
        "DescribeCluster error {}",
        response.error_code
    );
    let ids = |fenced: bool| {
        let mut ids: Vec<i32> = response
            .brokers
            .iter()
            .filter(|b| b.is_fenced == fenced)
            .map(|b| b.broker_id.0)
            .collect();
        ids.sort_unstable();
        ids
    };
    Ok(ClusterView {
        cluster_id: response.cluster_id.to_string(),
        controller_id: response.controller_id.0,
        brokers: ids(false),
        fenced: ids(true),
    })
}

/// Metadata v12 for all topics against `bootstrap`.
pub async fn metadata(bootstrap: &str) -> anyhow::Result<MetadataResponse> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    crate::wire::call(
        &mut stream,
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    )
    .await
}

/// DescribeQuorum v2 of `__cluster_metadata-0` against `bootstrap`.
pub async fn describe_quorum(bootstrap: &str) -> anyhow::Result<DescribeQuorumResponse> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = DescribeQuorumRequest::default().with_topics(vec![
        TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
    ]);
    crate::wire::call(&mut stream, ApiKey::DescribeQuorum, 2, &request).await
}

/// The value of the unlabelled series `name` on a broker's `/metrics`.
pub fn metric(broker: &BrokerProcess, name: &str) -> anyhow::Result<f64> {
    let text = http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    text.lines()
        .find_map(|line| {
            let (series, value) = line.split_once(' ')?;
            (series == name)
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .with_context(|| format!("no series {name} on {}", broker.admin_url()))
}
