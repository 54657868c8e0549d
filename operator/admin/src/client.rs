//! [`KafkaAdmin`]: bootstrap, connections per broker, and routing of requests.

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use kafka_protocol::messages::MetadataRequest;
use strom_client::{Connection, ConnectionConfig};
use tokio::sync::Mutex;

use crate::AdminRequest;
use crate::error::AdminError;

/// The `client_id` in every request header, and the KIP-511 client software name.
const CLIENT_ID: &str = "strom-admin";

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any broker; the bootstrap connection when it is open. Metadata, DescribeConfigs and
    /// IncrementalAlterConfigs (for topics) go here.
    Any,
    /// The controller named in the cluster metadata. CreateTopics, DeleteTopics and
    /// CreatePartitions go here, as in the Java admin client. When the metadata names no
    /// controller (`controller_id` -1) the request goes to any broker, which answers
    /// `NOT_CONTROLLER` if it cannot serve it.
    Controller,
    /// One broker by node id, looked up in the cluster metadata (e.g. DescribeLogDirs).
    Node(i32),
}

/// A Kafka admin client over the standard wire protocol.
///
/// Requests from one `KafkaAdmin` are sent one at a time (a mutex guards its connections),
/// which suits a reconciler. Connections open lazily and are replaced after any failure; the
/// bootstrap list is tried again whenever no connection is open. A request whose connection
/// fails is not sent again by this client, since the broker may have applied it: the error is
/// retriable ([`AdminError::is_retriable`]) and the caller's next attempt opens a new
/// connection.
#[derive(Debug)]
pub struct KafkaAdmin {
    bootstrap: String,
    timeout: Duration,
    pool: Mutex<Pool>,
}

/// The open connections: the one made through the bootstrap list, and one per broker node id
/// that a request was routed to.
#[derive(Debug, Default)]
struct Pool {
    bootstrap: Option<Connection>,
    nodes: HashMap<i32, Connection>,
}

/// Which pooled connection a request uses.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Bootstrap,
    Node(i32),
}

/// A broker as the cluster metadata lists it.
#[derive(Debug, Clone)]
struct BrokerEndpoint {
    node_id: i32,
    address: String,
}

impl KafkaAdmin {
    /// Connects to the first reachable broker of `bootstrap` (`host:port[,host:port...]`) and
    /// negotiates API versions with it. `timeout` bounds each TCP connect and each request.
    pub async fn connect(bootstrap: &str, timeout: Duration) -> Result<KafkaAdmin, AdminError> {
        let mut admin = KafkaAdmin {
            bootstrap: bootstrap.to_owned(),
            timeout,
            pool: Mutex::new(Pool::default()),
        };
        let connection = admin.open_bootstrap().await?;
        admin.pool.get_mut().bootstrap = Some(connection);
        Ok(admin)
    }

    /// The bootstrap list this client was made with.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The timeout for each connect and each request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `request` to any broker at the highest version both sides implement, and returns
    /// the decoded response. Error codes inside the response are the caller's to read; use
    /// [`KafkaAdmin::send_to`] when the request's fields depend on the version.
    pub async fn send<R: AdminRequest>(&self, request: R) -> Result<R::Response, AdminError> {
        self.send_to(Target::Any, |_| request)
            .await
            .map(|(_, response)| response)
    }

    /// Sends a request to `target`. `build` receives the negotiated version of the connection
    /// the request will go out on, so it can fill the fields that version carries; the version
    /// is returned with the response for reading it the same way.
    pub async fn send_to<R, F>(
        &self,
        target: Target,
        build: F,
    ) -> Result<(i16, R::Response), AdminError>
    where
        R: AdminRequest,
        F: FnOnce(i16) -> R + Send,
    {
        self.try_send_to(target, |version| Ok(build(version))).await
    }

    /// [`KafkaAdmin::send_to`] with a `build` that may refuse the negotiated version (a field
    /// the request needs that the version cannot carry); nothing is sent then.
    pub(crate) async fn try_send_to<R, F>(
        &self,
        target: Target,
        build: F,
    ) -> Result<(i16, R::Response), AdminError>
    where
        R: AdminRequest,
        F: FnOnce(i16) -> Result<R, AdminError> + Send,
    {
        let mut pool = self.pool.lock().await;
        pool.discard_unusable();
        let slot = match target {
            Target::Any => self.any_slot(&mut pool).await?,
            Target::Controller => {
                let (controller_id, brokers) = self.cluster(&mut pool).await?;
                if controller_id < 0 {
                    self.any_slot(&mut pool).await?
                } else {
                    self.node_slot(&mut pool, controller_id, &brokers).await?
                }
            }
            Target::Node(node_id) => {
                let (_, brokers) = self.cluster(&mut pool).await?;
                self.node_slot(&mut pool, node_id, &brokers).await?
            }
        };
        let connection = pool
            .get_mut(slot)
            .ok_or_else(|| self.lost_connection(R::NAME))?;
        let version = version_for::<R>(connection)?;
        let request = build(version)?;
        let result = connection
            .send_at_version(request, version)
            .await
            .map_err(AdminError::from);
        if let Err(err) = &result {
            tracing::debug!(broker = connection.broker(), api = R::NAME, %err, "request failed");
        }
        pool.discard_unusable();
        result.map(|response| (version, response))
    }

    /// A connection to any broker, opening one through the bootstrap list when none is open.
    async fn any_slot(&self, pool: &mut Pool) -> Result<Slot, AdminError> {
        if pool.bootstrap.is_some() {
            return Ok(Slot::Bootstrap);
        }
        if let Some(&node_id) = pool.nodes.keys().min() {
            return Ok(Slot::Node(node_id));
        }
        pool.bootstrap = Some(self.open_bootstrap().await?);
        Ok(Slot::Bootstrap)
    }

    /// A connection to broker `node_id`. The bootstrap connection is reused when it already
    /// goes to that broker's advertised address, so a single-broker cluster keeps one socket.
    async fn node_slot(
        &self,
        pool: &mut Pool,
        node_id: i32,
        brokers: &[BrokerEndpoint],
    ) -> Result<Slot, AdminError> {
        if pool.nodes.contains_key(&node_id) {
            return Ok(Slot::Node(node_id));
        }
        let endpoint = brokers
            .iter()
            .find(|broker| broker.node_id == node_id)
            .ok_or_else(|| AdminError::Protocol {
                broker: self.bootstrap.clone(),
                api: "Metadata",
                reason: format!(
                    "broker {node_id} is not among the brokers the cluster metadata lists"
                ),
            })?;
        let bootstrap_peer = pool.bootstrap.as_ref().map(Connection::peer);
        if let Some(peer) = bootstrap_peer
            && self.resolves_to(&endpoint.address, peer).await
            && let Some(connection) = pool.bootstrap.take()
        {
            pool.nodes.insert(node_id, connection);
            return Ok(Slot::Node(node_id));
        }
        let connection = self.open(&endpoint.address).await?;
        pool.nodes.insert(node_id, connection);
        Ok(Slot::Node(node_id))
    }

    /// Whether `address` (`host:port`) resolves to `peer`. A name that does not resolve in
    /// time counts as a different broker: connecting to it will report the real error.
    async fn resolves_to(&self, address: &str, peer: std::net::SocketAddr) -> bool {
        match tokio::time::timeout(self.timeout, tokio::net::lookup_host(address)).await {
            Ok(Ok(mut addresses)) => addresses.any(|candidate| candidate == peer),
            _ => false,
        }
    }

    /// The controller id and the brokers, from a Metadata request that names no topics.
    async fn cluster(&self, pool: &mut Pool) -> Result<(i32, Vec<BrokerEndpoint>), AdminError> {
        let slot = self.any_slot(pool).await?;
        let connection = pool
            .get_mut(slot)
            .ok_or_else(|| self.lost_connection(MetadataRequest::NAME))?;
        // An empty topic list (not null) asks for brokers and controller only (v1+).
        let request = MetadataRequest::default()
            .with_topics(Some(Vec::new()))
            .with_allow_auto_topic_creation(false);
        let result = connection.send(request).await;
        pool.discard_unusable();
        let response = result?;
        let brokers = response
            .brokers
            .iter()
            .map(|broker| BrokerEndpoint {
                node_id: broker.node_id.0,
                address: join_host_port(&broker.host, broker.port),
            })
            .collect();
        Ok((response.controller_id.0, brokers))
    }

    /// Tries each bootstrap address in order; the error of the last one when none answers.
    async fn open_bootstrap(&self) -> Result<Connection, AdminError> {
        let mut last_error = None;
        for address in self
            .bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match self.open(address).await {
                Ok(connection) => return Ok(connection),
                Err(err) => {
                    tracing::debug!(address, %err, "bootstrap broker unavailable");
                    last_error = Some(err);
                }
            }
        }
        Err(match last_error {
            // One address: its own error says it best.
            Some(err) if !self.bootstrap.contains(',') => err,
            Some(AdminError::Unreachable { source, .. }) => AdminError::Unreachable {
                bootstrap: self.bootstrap.clone(),
                source,
            },
            Some(err) => err,
            None => AdminError::Unreachable {
                bootstrap: self.bootstrap.clone(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the bootstrap list names no broker (expected host:port[,host:port...])",
                ),
            },
        })
    }
}

impl KafkaAdmin {
    /// A connection to `address`, version-negotiated.
    async fn open(&self, address: &str) -> Result<Connection, AdminError> {
        let config = ConnectionConfig::new(CLIENT_ID, self.timeout)
            .with_software(CLIENT_ID, env!("CARGO_PKG_VERSION"));
        Ok(Connection::open_with(address, &config).await?)
    }

    /// A slot chosen a moment ago is always filled while the pool lock is held; this error
    /// only guards that invariant without a panic.
    fn lost_connection(&self, api: &'static str) -> AdminError {
        AdminError::Unreachable {
            bootstrap: self.bootstrap.clone(),
            source: io::Error::new(
                io::ErrorKind::NotConnected,
                format!("the connection chosen for {api} was closed before use"),
            ),
        }
    }
}

/// The version to send `R` with on `connection`: the highest both sides implement.
fn version_for<R: AdminRequest>(connection: &Connection) -> Result<i16, AdminError> {
    connection
        .version_for::<R>()
        .ok_or_else(|| AdminError::UnsupportedApi {
            broker: connection.broker().to_owned(),
            api: R::NAME,
            broker_versions: connection.broker_versions(R::KEY),
            client_versions: R::CLIENT_VERSIONS,
        })
}

impl Pool {
    fn get_mut(&mut self, slot: Slot) -> Option<&mut Connection> {
        match slot {
            Slot::Bootstrap => self.bootstrap.as_mut(),
            Slot::Node(node_id) => self.nodes.get_mut(&node_id),
        }
    }

    /// Drops connections that failed: their stream position is unknown.
    fn discard_unusable(&mut self) {
        if self.bootstrap.as_ref().is_some_and(|c| !c.is_usable()) {
            self.bootstrap = None;
        }
        self.nodes.retain(|_, connection| connection.is_usable());
    }
}

/// `host:port`, bracketing IPv6 literals.
fn join_host_port(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_joining() {
        assert_eq!(
            join_host_port("broker-0.strom", 9092),
            "broker-0.strom:9092"
        );
        assert_eq!(join_host_port("127.0.0.1", 9092), "127.0.0.1:9092");
        assert_eq!(join_host_port("::1", 9092), "[::1]:9092");
        assert_eq!(join_host_port("[::1]", 9092), "[::1]:9092");
    }
}
