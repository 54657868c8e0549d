//! Broker start-up and shutdown.
//!
//! Start: lock the data directory, start the metadata quorum, bind the listeners, register this
//! broker with the controller, open the hosted partitions (recovering their logs), start the
//! background loops, then report readiness. Shutdown (SIGTERM, SIGINT or the caller's token):
//! stop accepting, let connections finish what they read (bounded by a deadline), flush and
//! close every log, stop the quorum.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use strom_metadata::{Controller, MetadataQuorum, QuorumConfig, TopicDefaults};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::metrics::BrokerMetrics;
use crate::producer_ids::ProducerIdManager;
use crate::replica::ReplicaManager;
use crate::{admin_http, background, groups, network};

/// How long shutdown waits for in-flight requests before closing the logs anyway.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

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
    #[error("opening partitions: {0}")]
    Replicas(#[from] crate::replica::ReplicaError),
}

/// Addresses the broker actually bound (ports may have been chosen by the OS).
#[derive(Debug, Clone, Copy)]
pub struct BoundAddrs {
    pub kafka: SocketAddr,
    pub admin: SocketAddr,
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
        self.shutdown.cancel();
        // Parked JoinGroup/SyncGroup requests are answered now, so their connections can drain.
        self.broker.groups.shutdown().await;
        self.tracker.close();
        if tokio::time::timeout(DRAIN_DEADLINE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("connections still open after {DRAIN_DEADLINE:?}; closing logs anyway");
        }
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
    let lock = lock_data_dir(&data_dir)?;

    let quorum = MetadataQuorum::start(QuorumConfig {
        node_id: u64::try_from(config.node_id).unwrap_or(0),
        dir: data_dir.join("__cluster_metadata-0"),
        cluster_id: None,
        voters: [(
            u64::try_from(config.node_id).unwrap_or(0),
            config.listen.to_string(),
        )]
        .into_iter()
        .collect(),
    })
    .await?;

    let kafka = TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "Kafka",
            addr: config.listen,
            source,
        })?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .map_err(|source| StartError::Bind {
            what: "admin",
            addr: config.admin_listen,
            source,
        })?;
    let addrs = BoundAddrs {
        kafka: kafka.local_addr().map_err(|source| StartError::Bind {
            what: "Kafka",
            addr: config.listen,
            source,
        })?,
        admin: admin.local_addr().map_err(|source| StartError::Bind {
            what: "admin",
            addr: config.admin_listen,
            source,
        })?,
    };
    let (advertised_host, advertised_port) = advertised(&config, addrs.kafka);

    let controller = Controller::new(
        quorum.clone(),
        TopicDefaults {
            num_partitions: config.props.num_partitions,
            default_replication_factor: config.props.default_replication_factor,
        },
    );
    controller
        .register_broker(
            config.node_id,
            advertised_host.clone(),
            advertised_port,
            config.rack.clone(),
        )
        .await
        .map_err(|e| StartError::Register(e.to_string()))?;

    let image = quorum.image();
    let replicas = Arc::new(ReplicaManager::new(config.node_id, data_dir.clone())?);
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

    let node_id = config.node_id;
    let groups = groups::coordinator(&config.props, replicas.clone(), quorum.clone());
    let broker = Arc::new(Broker {
        node_id: config.node_id,
        cluster_id: image.cluster_id.clone(),
        advertised_host,
        advertised_port,
        config,
        quorum,
        controller,
        replicas,
        metrics,
        producer_ids: ProducerIdManager::new(node_id),
        groups,
        loaded_offsets_partitions: Default::default(),
        exported_groups: Default::default(),
    });

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
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
    // Group state loads in the background: until a partition is loaded its groups get
    // COORDINATOR_LOAD_IN_PROGRESS and clients retry.
    if broker.image().topic(groups::OFFSETS_TOPIC).is_some() {
        let broker = broker.clone();
        tracker.spawn(async move { broker.ensure_offsets_topic().await });
    }
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

/// An exclusive lock on `<data-dir>/.lock`, so two brokers never share one data directory.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StartError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StartError::DataDir { path, source }),
    }
}
