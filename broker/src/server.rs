//! Broker start-up and shutdown.
//!
//! Start: lock the data directory, bind every listener (so a busy port fails the start before
//! anything is written), open the metadata quorum and serve the controller listener, wait for a
//! metadata leader (an observer first asks the controller to add it), register this broker and
//! heartbeat until unfenced, open the hosted partitions (recovering their logs), start the
//! background loops, then report readiness. Shutdown (SIGTERM, SIGINT or the caller's token):
//! ask the controller for a controlled shutdown, stop accepting, let connections finish what
//! they read (bounded by a deadline), flush and close every log, stop the quorum.
//!
//! A fault of the metadata log (a write or fsync failed: a full or failing disk) is fatal to
//! the process, as in KRaft, whose raft manager's fault handler halts it: the node can no
//! longer commit or follow metadata, so it must not go on serving as controller or as a
//! broker with a frozen image. [`RunningBroker::metadata_fault`] resolves on it; the binary then
//! stops without a controlled shutdown ([`RunningBroker::stop_after_fault`]) and exits with a
//! failure status, so that its supervisor restarts it and another voter takes over meanwhile.
//! Until it has stopped, `/readyz` answers 503 with the fault, the active-controller gauge is 0
//! and every controller operation is answered KAFKA_STORAGE_ERROR. A failing data directory is
//! not fatal: the partitions it holds answer KAFKA_STORAGE_ERROR.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strom_metadata::grpc::{ControllerListener, GrpcNetwork};
use strom_metadata::{
    Controller, ControllerClient, ControllerOptions, MetadataQuorum, QuorumConfig, QuorumOptions,
    TopicDefaults,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::coordinator_partitions::CoordinatorPartitions;
use crate::lifecycle::BrokerLifecycle;
use crate::metrics::BrokerMetrics;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::txn_markers::BrokerMarkerWriter;
use crate::{admin_http, background, groups, network, transactions};

/// How long shutdown waits for in-flight requests before closing the logs anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);
/// How long a forwarded controller operation may take, retries across elections included.
const CONTROLLER_DEADLINE: Duration = Duration::from_secs(30);
/// How long a broker of a multi-node cluster waits at start for a majority of the voters.
const QUORUM_START_DEADLINE: Duration = Duration::from_secs(300);

/// Errors that stop the broker from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another broker process")]
    Locked { path: std::path::PathBuf },
    #[error("binding {what} listener {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metadata quorum: {0}")]
    Metadata(#[from] strom_metadata::MetadataError),
    #[error("registering with the controller: {0}")]
    Register(String),
    #[error("joining the metadata quorum as an observer: {0}")]
    Join(String),
    #[error("opening partitions: {0}")]
    Replicas(#[from] crate::replica::ReplicaError),
}

/// Addresses the broker actually bound (ports may have been chosen by the OS).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    pub kafka: SocketAddr,
    pub admin: SocketAddr,
    /// The controller listener, when this node is part of a multi-node quorum.
    pub controller: Option<SocketAddr>,
}

/// A started broker: its addresses and the handle to stop it.
#[derive(Debug)]
pub struct RunningBroker {
    pub addrs: BoundAddrs,
    pub broker: Arc<Broker>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RunningBroker {
    /// Stops serving, drains connections, closes the logs and the quorum.
    pub async fn shutdown(self) {
        self.broker
            .lifecycle
            .controlled_shutdown(self.broker.config.props.controlled_shutdown_timeout())
            .await;
        self.stop().await;
    }

    /// Resolves once this node's metadata log has failed, with the fault (see the module doc).
    pub async fn metadata_fault(&self) -> strom_metadata::MetadataError {
        self.broker.quorum.failed().await
    }

    /// Stops after a metadata log fault: no controlled shutdown, which needs the metadata this
    /// node can no longer write or follow; then as [`shutdown`](Self::shutdown) does, so that
    /// in-flight requests get their answers and the data logs are flushed and closed.
    pub async fn stop_after_fault(self) {
        self.stop().await;
    }

    async fn stop(self) {
        self.shutdown.cancel();
        // Parked JoinGroup/SyncGroup requests are answered now, so their connections can drain.
        self.broker.groups.shutdown().await;
        // Marker tasks stop; a transaction they were completing is completed by whichever
        // coordinator loads its partition next.
        self.broker.transactions.shutdown().await;
        self.tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN_DEADLINE:?}; closing logs anyway");
        }
        // A cleaning pass in progress is abandoned before the logs close under it.
        self.broker.cleaner.stop().await;
        self.broker.replicas.close_all().await;
        if let Err(error) = self.broker.quorum.shutdown().await {
            tracing::warn!(%error, "stopping the metadata quorum");
        }
    }
}

/// Starts a broker; it serves until [`RunningBroker::shutdown`].
pub async fn start(config: BrokerConfig) -> Result<RunningBroker, StartError> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let lock = strom_metadata::lock_dir(&data_dir).map_err(|e| match e {
        strom_metadata::MetadataError::DirectoryInUse { path } => StartError::Locked { path },
        other => StartError::Metadata(other),
    })?;

    let kafka = bind("Kafka", config.listen).await?;
    let admin = bind("admin", config.admin_listen).await?;
    let controller_listener = match config.quorum.controller_listen {
        Some(addr) => Some(bind("controller", addr).await?),
        None => None,
    };
    let addrs = BoundAddrs {
        kafka: local_addr("Kafka", &kafka, config.listen)?,
        admin: local_addr("admin", &admin, config.admin_listen)?,
        controller: match &controller_listener {
            Some(listener) => Some(local_addr(
                "controller",
                listener,
                listener.local_addr().unwrap_or(config.listen),
            )?),
            None => None,
        },
    };
    let (advertised_host, advertised_port) = advertised(&config, addrs.kafka);

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let node_id = u64::try_from(config.node_id).unwrap_or(0);
    let controller_address = config
        .quorum
        .controller_advertised_listener
        .clone()
        .or_else(|| addrs.controller.map(|a| advertise_loopback(a).to_string()))
        .unwrap_or_else(|| format!("{advertised_host}:{advertised_port}"));
    let voters = if config.quorum.is_distributed() {
        config.quorum.voters.clone()
    } else {
        [(node_id, controller_address.clone())]
            .into_iter()
            .collect()
    };
    let options = QuorumOptions {
        start_timeout: if config.quorum.is_distributed() {
            QUORUM_START_DEADLINE
        } else {
            QuorumOptions::default().start_timeout
        },
        ..QuorumOptions::default()
    };
    let start_timeout = options.start_timeout;
    let quorum = MetadataQuorum::open_with(
        QuorumConfig {
            node_id,
            dir: data_dir.join("__cluster_metadata-0"),
            cluster_id: None,
            voters,
            observer: config.quorum.observer,
            address: controller_address.clone(),
        },
        options,
        |ctx| GrpcNetwork::new(ctx.node_id, ctx.images, ctx.stats),
    )
    .await?;
    let controller = Controller::with_options(
        quorum.clone(),
        ControllerOptions {
            defaults: TopicDefaults {
                num_partitions: config.props.num_partitions,
                default_replication_factor: config.props.default_replication_factor,
            },
            session_timeout: config.quorum.session_timeout,
            unclean_leader_election_enable: config.props.unclean_leader_election_enable,
            auto_leader_rebalance_enable: config.props.auto_leader_rebalance_enable,
            leader_imbalance_per_broker_percentage: u32::try_from(
                config.props.leader_imbalance_per_broker_percentage,
            )
            .unwrap_or(10),
            leader_imbalance_check_interval: Duration::from_secs(
                u64::try_from(config.props.leader_imbalance_check_interval_seconds).unwrap_or(300),
            ),
        },
    );
    if let Some(listener) = controller_listener {
        let server = ControllerListener::new(controller.clone());
        let cancel = shutdown.clone();
        tracker.spawn(async move {
            if let Err(error) = server.serve(listener, cancel).await {
                tracing::error!(%error, "controller listener failed");
            }
        });
    }
    let client = ControllerClient::new(controller.clone(), CONTROLLER_DEADLINE);
    if let Err(e) = join_quorum(&config, &quorum, &client).await {
        shutdown.cancel();
        quorum.stop_after_failed_start().await;
        return Err(e);
    }
    tracker.spawn(controller.clone().run_duties(shutdown.clone()));

    let lifecycle = BrokerLifecycle::new(
        client.clone(),
        config.node_id,
        advertised_host.clone(),
        advertised_port,
        config.rack.clone(),
        config.quorum.heartbeat_interval,
        config.quorum.session_timeout,
    );
    if let Err(e) = lifecycle.register_and_unfence(start_timeout).await {
        shutdown.cancel();
        quorum.stop_after_failed_start().await;
        return Err(StartError::Register(e.to_string()));
    }
    tracker.spawn(lifecycle.clone().run(shutdown.clone()));

    let image = quorum.image();
    let replicas = Arc::new(ReplicaManager::new(config.node_id, data_dir.clone())?);
    replicas
        .fetchers
        .set_settings(config.props.fetch_settings());
    replicas.remove_orphans(&image)?;
    // Opening and recovering the logs is blocking work: off the runtime's workers.
    replicas
        .publish(image.clone(), config.props.clone())
        .await?;
    let metrics = Arc::new(BrokerMetrics::new(
        config.node_id,
        env!("CARGO_PKG_VERSION"),
        &image.cluster_id,
    ));

    let groups = groups::coordinator(&config.props, replicas.clone(), quorum.clone());
    let producer_ids = Arc::new(ProducerIdManager::new(node_id as i32));
    let markers = Arc::new(BrokerMarkerWriter::default());
    let transactions = transactions::coordinator(
        &config.props,
        replicas.clone(),
        quorum.clone(),
        markers.clone(),
        transactions::ControllerProducerIds {
            ids: producer_ids.clone(),
            controller: client.clone(),
        },
    );
    let cleaner = crate::log_cleaner::Cleaner::start(&config.props, replicas.clone());
    let broker = Arc::new(Broker {
        node_id: config.node_id,
        cluster_id: image.cluster_id.clone(),
        advertised_host,
        advertised_port,
        config,
        quorum,
        controller: client,
        lifecycle,
        replicas,
        metrics,
        producer_ids,
        groups,
        transactions,
        peers: Default::default(),
        offsets_partitions: CoordinatorPartitions::new(groups::OFFSETS_TOPIC),
        offsets_compaction_checked: Default::default(),
        transaction_partitions: CoordinatorPartitions::new(transactions::TRANSACTION_STATE_TOPIC),
        exported_groups: Default::default(),
        cleaner,
    });

    markers.attach(&broker);
    tracker.spawn(network::listener::run(
        kafka,
        broker.clone(),
        shutdown.clone(),
        tracker.clone(),
    ));
    tracker.spawn(admin_http::serve(admin, broker.clone(), shutdown.clone()));
    background::spawn_all(&broker, &shutdown, &tracker);
    tracker.spawn({
        let timer = broker.groups.timer();
        let shutdown = shutdown.clone();
        async move { timer.run(shutdown).await }
    });
    tracker.spawn({
        let timer = broker.transactions.timer();
        let shutdown = shutdown.clone();
        async move { timer.run(shutdown).await }
    });
    // Coordinator state loads in the background: until a partition is loaded its groups and
    // transactional ids get COORDINATOR_LOAD_IN_PROGRESS and clients retry.
    background::follow_coordinator_topics(&broker);
    // The lock lives as long as the broker's tasks.
    tracker.spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            drop(lock);
        }
    });
    tracing::info!(kafka = %addrs.kafka, admin = %addrs.admin, node_id = broker.node_id, "broker started");
    Ok(RunningBroker {
        addrs,
        broker,
        shutdown,
        tracker,
    })
}

/// Waits for a metadata leader; an observer first asks the controller to add it.
async fn join_quorum(
    config: &BrokerConfig,
    quorum: &MetadataQuorum,
    client: &ControllerClient,
) -> Result<(), StartError> {
    if config.quorum.observer {
        let node_id = quorum.node_id();
        client
            .add_observer(node_id, quorum.config().address.clone())
            .await
            .map_err(|e| StartError::Join(e.to_string()))?;
    }
    quorum.await_ready().await?;
    Ok(())
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn local_addr(
    what: &'static str,
    listener: &TcpListener,
    configured: SocketAddr,
) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        what,
        addr: configured,
        source,
    })
}

/// A wildcard bind is advertised as the loopback address, which only local peers can use.
fn advertise_loopback(bound: SocketAddr) -> SocketAddr {
    if bound.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], bound.port()))
    } else {
        bound
    }
}

/// The address clients are told: the configured advertised listener, else the bound address
/// (a wildcard bind advertises the loopback address, which only local clients can use).
fn advertised(config: &BrokerConfig, bound: SocketAddr) -> (String, u16) {
    if let Some(listener) = &config.advertised_listener {
        if let Some((host, port)) = listener.rsplit_once(':')
            && let Ok(port) = port.parse()
        {
            return (host.trim_matches(['[', ']']).to_string(), port);
        }
        tracing::warn!(%listener, "advertised listener is not host:port; advertising the bound address");
    }
    let host = if bound.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        bound.ip().to_string()
    };
    (host, bound.port())
}
