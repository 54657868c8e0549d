//! Network partitions between brokers on 127.0.0.1: a fault-injecting TCP proxy in front of
//! every broker's Kafka listener and controller listener, which cuts and heals the links
//! between chosen brokers while clients keep reaching every broker.
//!
//! Every broker advertises its Kafka proxy (so followers, other brokers and clients all dial
//! it), and `controller.quorum.voters` names the controller proxies, so every byte between two
//! brokers crosses a proxy. Everything is on loopback, so the proxy tells a broker's connection
//! from a client's by the process that owns the connecting socket: the peer port of an accepted
//! connection is looked up in `/proc/net/tcp` for its socket inode, and that inode in the
//! `/proc/<pid>/fd` of each broker process. A connection from no broker process is a client's
//! and is never cut.
//!
//! A proxy rather than network namespaces with veth pairs and `iptables`: every address stays
//! on 127.0.0.1, as all test traffic must, and it needs no privileges on the machine running
//! the tests.
//!
//! A cut link behaves like a firewall that drops packets: bytes already in flight are held (not
//! delivered, not refused) and new connections are accepted but not forwarded; on heal the held
//! bytes go through, as TCP retransmission would deliver them. Whatever timed out meanwhile is
//! the peers' business, as on a real network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::BrokerOptions;
use crate::cluster::{Cluster, reserve_port};

/// The two listeners of a broker that the proxy stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Listener {
    Kafka,
    Controller,
}

/// Who opened a connection through the proxy, as far as it knows.
const UNKNOWN: i32 = -1;

#[derive(Debug)]
struct Connection {
    /// Port of the connecting socket.
    peer_port: u16,
    /// Port of the proxy listener it connected to.
    proxy_port: u16,
    /// Node id of the broker process that opened it, or [`UNKNOWN`] (a client, until proven
    /// otherwise: connections opened before the harness knew the broker pids are re-examined
    /// on every [`NetFaults::attach`] and cut).
    source: std::sync::atomic::AtomicI32,
    closed: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Where each proxy forwards to, per (node, listener).
    targets: BTreeMap<(i32, Listener), String>,
    /// The proxy address of each (node, listener).
    proxies: BTreeMap<(i32, Listener), String>,
    /// Broker process ids by node id.
    pids: BTreeMap<i32, u32>,
    connections: Vec<Arc<Connection>>,
}

/// The proxies of one cluster and the links that are cut.
#[derive(Debug)]
pub struct NetFaults {
    runtime: tokio::runtime::Handle,
    state: Mutex<State>,
    /// Cut links as (lower node id, higher node id).
    cut: watch::Sender<BTreeSet<(i32, i32)>>,
}

fn link(a: i32, b: i32) -> (i32, i32) {
    (a.min(b), a.max(b))
}

impl NetFaults {
    /// A proxy set with every link healed. Call from within a tokio runtime; the proxies run on
    /// it.
    pub fn new() -> anyhow::Result<Arc<NetFaults>> {
        Ok(Arc::new(NetFaults {
            runtime: tokio::runtime::Handle::try_current()
                .context("NetFaults needs a tokio runtime")?,
            state: Mutex::new(State::default()),
            cut: watch::channel(BTreeSet::new()).0,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For [`Cluster::start`]'s `configure`: puts proxies in front of broker `id`. The address
    /// the voter list gives this node becomes its controller proxy and the broker listens on a
    /// fresh port behind it; the broker advertises a Kafka proxy whose target
    /// [`NetFaults::attach`] sets once the broker has started.
    pub fn configure(self: &Arc<Self>, id: i32, options: BrokerOptions) -> BrokerOptions {
        self.try_configure(id, options)
            .unwrap_or_else(|error| panic!("putting proxies in front of broker {id}: {error:#}"))
    }

    fn try_configure(
        self: &Arc<Self>,
        id: i32,
        mut options: BrokerOptions,
    ) -> anyhow::Result<BrokerOptions> {
        if let Some(voter_address) = options.controller_listen.clone() {
            let backend = format!("127.0.0.1:{}", reserve_port()?);
            let listener = std::net::TcpListener::bind(&voter_address)
                .with_context(|| format!("binding the controller proxy on {voter_address}"))?;
            self.serve(id, Listener::Controller, listener, Some(backend.clone()))?;
            options.controller_listen = Some(backend);
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let proxy = listener.local_addr()?.to_string();
        self.serve(id, Listener::Kafka, listener, None)?;
        options.advertised_listener = Some(proxy);
        Ok(options)
    }

    fn serve(
        self: &Arc<Self>,
        node: i32,
        kind: Listener,
        listener: std::net::TcpListener,
        target: Option<String>,
    ) -> anyhow::Result<()> {
        listener.set_nonblocking(true)?;
        let proxy_port = listener.local_addr()?.port();
        {
            let mut state = self.state();
            state
                .proxies
                .insert((node, kind), format!("127.0.0.1:{proxy_port}"));
            if let Some(target) = target {
                state.targets.insert((node, kind), target);
            }
        }
        let me = self.clone();
        self.runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            while let Ok((inbound, peer)) = listener.accept().await {
                let connection = Arc::new(Connection {
                    peer_port: peer.port(),
                    proxy_port,
                    source: std::sync::atomic::AtomicI32::new(UNKNOWN),
                    closed: std::sync::atomic::AtomicBool::new(false),
                });
                me.classify(&connection);
                me.state().connections.push(connection.clone());
                tokio::spawn(me.clone().forward(inbound, connection, node, kind));
            }
        });
        Ok(())
    }

    /// Learns the broker processes' ids and Kafka ports: call after [`Cluster::start`] and
    /// after every restart.
    pub fn attach(&self, cluster: &Cluster) {
        {
            let mut state = self.state();
            state.pids.clear();
            for id in cluster.running() {
                let broker = cluster.broker(id);
                let node = i32::try_from(id).unwrap_or(i32::MAX);
                if let Some(pid) = broker.pid() {
                    state.pids.insert(node, pid);
                }
                state
                    .targets
                    .insert((node, Listener::Kafka), broker.bootstrap());
            }
            state
                .connections
                .retain(|c| !c.closed.load(std::sync::atomic::Ordering::Relaxed));
        }
        let unknown: Vec<Arc<Connection>> = self
            .state()
            .connections
            .iter()
            .filter(|c| c.source.load(std::sync::atomic::Ordering::Relaxed) == UNKNOWN)
            .cloned()
            .collect();
        for connection in unknown {
            self.classify(&connection);
        }
    }

    fn classify(&self, connection: &Connection) {
        let pids = self.state().pids.clone();
        if let Some(node) = owner(connection.peer_port, connection.proxy_port, &pids) {
            connection
                .source
                .store(node, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// The proxy address of node `id`'s listener.
    pub fn proxy(&self, id: i32, kind: Listener) -> Option<String> {
        self.state().proxies.get(&(id, kind)).cloned()
    }

    /// Bootstrap addresses of every broker's Kafka proxy.
    pub fn bootstrap(&self) -> String {
        self.state()
            .proxies
            .iter()
            .filter(|((_, kind), _)| *kind == Listener::Kafka)
            .map(|(_, address)| address.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Cuts the link between brokers `a` and `b`, both ways, on both listeners.
    pub fn cut(&self, a: i32, b: i32) {
        if a != b {
            self.cut.send_modify(|cut| {
                cut.insert(link(a, b));
            });
        }
    }

    /// Heals the link between `a` and `b`.
    pub fn heal(&self, a: i32, b: i32) {
        self.cut.send_modify(|cut| {
            cut.remove(&link(a, b));
        });
    }

    /// Cuts `node` off from every other broker of `cluster`; clients still reach it.
    pub fn isolate(&self, cluster: &Cluster, node: i32) {
        for other in 0..cluster.brokers().len() {
            self.cut(node, i32::try_from(other).unwrap_or(i32::MAX));
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        self.cut.send_modify(BTreeSet::clear);
    }

    /// Connections through the proxies that broker processes opened, per (from, to) node.
    pub fn broker_connections(&self) -> BTreeMap<(i32, i32), usize> {
        let state = self.state();
        let mut out = BTreeMap::new();
        for c in &state.connections {
            let source = c.source.load(std::sync::atomic::Ordering::Relaxed);
            if source == UNKNOWN || c.closed.load(std::sync::atomic::Ordering::Relaxed) {
                continue;
            }
            if let Some(((to, _), _)) = state
                .proxies
                .iter()
                .find(|(_, address)| address.ends_with(&format!(":{}", c.proxy_port)))
            {
                *out.entry((source, *to)).or_default() += 1;
            }
        }
        out
    }

    /// Waits while the link between `connection`'s source and `node` is cut.
    async fn open(&self, connection: &Connection, node: i32) {
        let mut cut = self.cut.subscribe();
        loop {
            let source = connection.source.load(std::sync::atomic::Ordering::Relaxed);
            if source == UNKNOWN || !cut.borrow_and_update().contains(&link(source, node)) {
                return;
            }
            if cut.changed().await.is_err() {
                return;
            }
        }
    }

    async fn forward(
        self: Arc<Self>,
        inbound: TcpStream,
        connection: Arc<Connection>,
        node: i32,
        kind: Listener,
    ) {
        self.open(&connection, node).await;
        let target = self.state().targets.get(&(node, kind)).cloned();
        if let Some(target) = target
            && let Ok(outbound) = TcpStream::connect(&target).await
        {
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (client_read, client_write) = inbound.into_split();
            let (server_read, server_write) = outbound.into_split();
            let up = self
                .clone()
                .pump(client_read, server_write, connection.clone(), node);
            let down = self
                .clone()
                .pump(server_read, client_write, connection.clone(), node);
            tokio::join!(up, down);
        }
        connection
            .closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    async fn pump(
        self: Arc<Self>,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        connection: Arc<Connection>,
        node: i32,
    ) {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.open(&connection, node).await;
            if to.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    }
}

/// The node whose process owns the socket connected from `peer_port` to `proxy_port` on
/// 127.0.0.1, among `pids`.
fn owner(peer_port: u16, proxy_port: u16, pids: &BTreeMap<i32, u32>) -> Option<i32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .find_map(|table| socket_inode(Path::new(table), peer_port, proxy_port))?;
    let wanted = format!("socket:[{inode}]");
    pids.iter().find_map(|(node, pid)| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.filter_map(Result::ok)
            .any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == wanted.as_str())
            })
            .then_some(*node)
    })
}

/// The inode of the socket whose local port is `local` and remote port `remote`, from a
/// `/proc/net/tcp`-format table.
fn socket_inode(table: &Path, local: u16, remote: u16) -> Option<u64> {
    let text = std::fs::read_to_string(table).ok()?;
    parse_socket_inode(&text, local, remote)
}

fn parse_socket_inode(text: &str, local: u16, remote: u16) -> Option<u64> {
    let port = |address: &str| {
        address
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
    };
    text.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, inode) = (fields.get(1)?, fields.get(2)?, fields.get(9)?);
        (port(l)? == local && port(r)? == remote)
            .then(|| inode.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_table_is_read_by_ports() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2222 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(parse_socket_inode(table, 0xC350, 0x1F90), Some(2222));
        assert_eq!(parse_socket_inode(table, 0x1F90, 0xC350), Some(3333));
        assert_eq!(parse_socket_inode(table, 1, 2), None);
    }

    #[test]
    fn the_owner_of_a_socket_is_found_among_processes() -> anyhow::Result<()> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let client = std::net::TcpStream::connect(listener.local_addr()?)?;
        let (_accepted, peer) = listener.accept()?;
        assert_eq!(peer.port(), client.local_addr()?.port());
        let proxy_port = listener.local_addr()?.port();
        let me = BTreeMap::from([(7, std::process::id())]);
        assert_eq!(owner(peer.port(), proxy_port, &me), Some(7));
        let someone_else = BTreeMap::from([(7, 1)]);
        assert_eq!(owner(peer.port(), proxy_port, &someone_else), None);
        Ok(())
    }
}
