//! The Kafka listener: accepts connections up to `max.connections` (a semaphore permit per
//! connection) and up to `max.connections.per.ip` per client address (with
//! `max.connections.per.ip.overrides`), and serves each on its own task, tracked so shutdown can
//! wait for them. All connections share one [`RequestMemory`] (`queued.max.request.bytes`).
//!
//! As in Kafka, a connection over its address's limit is accepted and closed at once (the
//! client sees the connection close and backs off), while at `max.connections` the listener
//! stops accepting until a connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection;
use super::memory::RequestMemory;
use crate::broker::Broker;
use crate::config::BrokerProps;
use crate::log_limit::LogLimiter;

static ACCEPT_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));

/// Accepts connections until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let props = &broker.config.props;
    let limit = usize::try_from(props.max_connections).unwrap_or(1);
    let permits = Arc::new(Semaphore::new(limit));
    let per_ip = Arc::new(ConnectionsPerIp::new(props));
    let memory = RequestMemory::observed(
        props.queued_max_request_bytes(),
        broker.metrics.request_memory_gauge(),
    );
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                if let Some(suppressed) = ACCEPT_LOG.check(&error.to_string()) {
                    tracing::warn!(%error, suppressed, "accept failed");
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(ip_slot) = per_ip.open(peer.ip()) else {
            broker.metrics.connection_closed_by_broker("per_ip_limit");
            if let Some(suppressed) = ACCEPT_LOG.check(&format!("per-ip {}", peer.ip())) {
                tracing::info!(%peer, suppressed, "closing connection: max.connections.per.ip reached for its address");
            }
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        let memory = memory.clone();
        tracker.spawn(async move {
            broker.metrics.connection_opened();
            connection::serve(stream, broker.clone(), memory, shutdown).await;
            broker.metrics.connection_closed();
            drop(ip_slot);
            drop(permit);
        });
    }
}

/// Open connections per client address, against each address's limit.
#[derive(Debug)]
struct ConnectionsPerIp {
    props: BrokerProps,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; the count goes down when it is dropped.
#[derive(Debug)]
struct IpSlot {
    counts: Arc<ConnectionsPerIp>,
    ip: IpAddr,
}

impl ConnectionsPerIp {
    fn new(props: &BrokerProps) -> ConnectionsPerIp {
        ConnectionsPerIp {
            props: props.clone(),
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for a new connection from `ip`, or `None` when the address is at its limit.
    fn open(self: &Arc<ConnectionsPerIp>, ip: IpAddr) -> Option<IpSlot> {
        let limit = self.props.max_connections_for(ip);
        let mut open = self.open.lock();
        let count = open.entry(ip).or_insert(0);
        if *count >= limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpSlot {
            counts: self.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_is_held_to_its_own_limit() {
        let mut props = BrokerProps::default();
        props
            .set("max.connections.per.ip", "2", "t")
            .expect("valid");
        props
            .set(
                "max.connections.per.ip.overrides",
                "127.0.0.3:0,127.0.0.4:3",
                "t",
            )
            .expect("valid");
        let per_ip = Arc::new(ConnectionsPerIp::new(&props));
        let one: IpAddr = "127.0.0.1".parse().expect("ip");
        let two: IpAddr = "127.0.0.2".parse().expect("ip");
        let first = per_ip.open(one).expect("1st");
        let _second = per_ip.open(one).expect("2nd");
        assert!(per_ip.open(one).is_none(), "3rd from the same address");
        assert!(per_ip.open(two).is_some(), "another address is served");
        assert!(per_ip.open("127.0.0.3".parse().expect("ip")).is_none());
        let four: Vec<_> = (0..3)
            .filter_map(|_| per_ip.open("127.0.0.4".parse().expect("ip")))
            .collect();
        assert_eq!(four.len(), 3);
        drop(first);
        assert!(
            per_ip.open(one).is_some(),
            "a closed connection frees its slot"
        );
        drop(four);
        assert!(
            !per_ip
                .open
                .lock()
                .contains_key(&"127.0.0.4".parse().expect("ip"))
        );
    }
}
