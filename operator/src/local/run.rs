//! The local runtime's loop: read the manifest, observe the processes and the admin API, plan
//! with the Cluster planner, run the one action, reconcile the Topics, write the status files;
//! again every tick and whenever the file changes, until SIGTERM or Ctrl-C stops the brokers.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use strom_admin::KafkaAdmin;
use strom_crds::cluster::ClusterStatus;
use strom_crds::{Topic, TopicStatus};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::LocalError;
use super::manifests::{Manifests, load};
use super::ports::PortPins;
use super::processes::{BrokerTemplate, LocalWorkload};
use super::status::{
    ClusterReport, cluster_ready, cluster_status, read_status, status_path, write_status,
};
use super::topics::{reconcile_topic, topics_reconciled};
use crate::day2::engine::{act, observe_admin};
use crate::day2::report::record_pass;
use crate::day2::{Action, Observed, Workload, plan, revision};
use crate::http::{HttpState, serve};
use crate::metrics::Metrics;

/// How often a pass runs when nothing changes.
const TICK: Duration = Duration::from_millis(500);
/// The admin client's bound on each connect and request: short, so a stopped (SIGSTOP)
/// broker delays a pass by little.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// What `strom-operator local` runs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// The manifest file.
    pub file: PathBuf,
    /// Where brokers' data, ports and the status files live.
    pub state_dir: PathBuf,
    /// The `strom-broker` binary.
    pub broker_bin: PathBuf,
    /// Where to serve the operator metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

/// The `strom-broker` binary: `explicit` (the `--broker-bin` flag or `STROM_BROKER_BIN`),
/// else the one next to this executable, as `cargo build` places them.
pub fn broker_binary(explicit: Option<&Path>) -> Result<PathBuf, LocalError> {
    if let Some(path) = explicit {
        return Ok(path.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| LocalError::BrokerBinary(e.to_string()))?;
    let sibling = exe.with_file_name("strom-broker");
    if sibling.is_file() {
        return Ok(sibling);
    }
    Err(LocalError::BrokerBinary(format!(
        "{} does not exist: build it (cargo build -p strom-broker), or name it with --broker-bin \
         or STROM_BROKER_BIN",
        sibling.display()
    )))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The topic with the status last written for it.
fn with_status(state_dir: &Path, topic: &Topic) -> Topic {
    let mut topic = topic.clone();
    let name = topic.metadata.name.clone().unwrap_or_default();
    topic.status = read_status::<TopicStatus>(&status_path(state_dir, "Topic", &name));
    topic
}

/// The admin client for `bootstrap`, kept across passes while the broker list is the same.
struct AdminSlot {
    bootstrap: String,
    admin: Option<KafkaAdmin>,
}

impl AdminSlot {
    async fn get(&mut self, bootstrap: &str) -> Option<&KafkaAdmin> {
        if self.bootstrap != bootstrap {
            self.bootstrap = bootstrap.to_owned();
            self.admin = None;
        }
        if self.admin.is_none() && !bootstrap.is_empty() {
            match KafkaAdmin::connect(bootstrap, ADMIN_TIMEOUT).await {
                Ok(admin) => self.admin = Some(admin),
                Err(error) => tracing::debug!(%error, "no broker answers yet"),
            }
        }
        self.admin.as_ref()
    }
}

/// Serves `metrics` on `addr` until `cancel`.
async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> Result<(), LocalError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| LocalError::Metrics(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(%bound, "serving the operator metrics");
    let state = Arc::new(HttpState {
        metrics,
        ready: AtomicBool::new(true),
    });
    tokio::spawn(async move {
        if let Err(error) = serve(listener, state, cancel).await {
            tracing::error!(%error, "the metrics server stopped");
        }
    });
    Ok(())
}

/// Runs the local runtime until SIGTERM or Ctrl-C, then stops the brokers.
pub async fn run(options: LocalOptions) -> Result<(), LocalError> {
    let metrics = Arc::new(Metrics::new().map_err(|e| LocalError::Metrics(e.to_string()))?);
    let cancel = CancellationToken::new();
    let _stop_serving = cancel.clone().drop_guard();
    if let Some(addr) = options.metrics_listen {
        serve_metrics(addr, metrics.clone(), cancel.clone()).await?;
    }
    let mut manifests: Manifests = load(&options.file)?;
    let mut file_time = modified(&options.file);
    let workload = LocalWorkload::open(&options.state_dir, &options.broker_bin)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(LocalError::Signal)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(LocalError::Signal)?;
    let mut admin = AdminSlot {
        bootstrap: String::new(),
        admin: None,
    };
    let cluster_name = manifests.cluster.metadata.name.clone().unwrap_or_default();
    // The same `namespace/name` label as on Kubernetes; a manifest without a namespace is in
    // `default`, as `kubectl apply` would put it.
    let metrics_key = format!(
        "{}/{cluster_name}",
        manifests
            .cluster
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    );
    let cluster_path = status_path(&options.state_dir, "Cluster", &cluster_name);
    let mut status: Option<ClusterStatus> = read_status(&cluster_path);
    // A restarted operator resumes the operation its predecessor recorded.
    let mut operation = status.as_ref().and_then(|s| s.operation.clone());
    let mut announced = false;
    let mut topic_statuses: BTreeMap<String, TopicStatus> = BTreeMap::new();
    loop {
        if modified(&options.file) != file_time {
            file_time = modified(&options.file);
            match load(&options.file) {
                Ok(next) => {
                    tracing::info!(file = %options.file.display(), "manifest changed");
                    manifests = next;
                }
                Err(error) => {
                    tracing::error!(%error, "manifest not applied; the previous one stays")
                }
            }
        }
        let cluster = &manifests.cluster;
        let desired = revision::desired(cluster);
        // Problems of this pass for the Degraded condition: (reason, message).
        let mut errors: Vec<(&'static str, String)> = Vec::new();
        let pins = PortPins::from_cluster(cluster);
        if let Err(message) = &pins {
            errors.push(("InvalidPorts", message.clone()));
        }
        workload
            .set_template(BrokerTemplate {
                revision: desired.revision.clone(),
                voters: desired.voters,
                // The dynamic keys go through the admin API, as on Kubernetes.
                config: cluster
                    .spec
                    .config
                    .iter()
                    .filter(|(key, _)| {
                        !revision::DYNAMIC_BROKER_CONFIG_KEYS.contains(&key.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                pins: pins.clone(),
            })
            .await;
        if let Ok(pins) = &pins {
            for message in workload.port_drift(pins).await {
                errors.push(("PortsNotPinned", message));
            }
        }
        if let Err(e) = workload.supervise().await {
            errors.push(("ReconcileFailed", e.to_string()));
        }
        let workload_state = match workload.observe().await {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(error = %e, "cannot observe the brokers");
                if wait(&mut terminate, &mut interrupt).await {
                    workload.shutdown().await;
                    return Ok(());
                }
                continue;
            }
        };
        let bootstrap = workload.bootstrap().await;
        let client = admin.get(&bootstrap).await;
        let admin_state = match client {
            Some(client) => match observe_admin(client).await {
                Ok(state) => Some(state),
                Err(e) => {
                    tracing::debug!(error = %e, "admin observation failed");
                    None
                }
            },
            None => None,
        };
        let observed = Observed {
            workload: workload_state,
            admin: admin_state,
        };
        let planned = plan::plan(
            &desired,
            &observed,
            operation.as_ref(),
            Time(Timestamp::now()),
        );
        if !matches!(planned.action, Action::Idle | Action::Wait) {
            tracing::info!(action = ?planned.action, "acting");
        }
        let acted = match (client, &planned.action) {
            (Some(client), action) => act(action, &workload, client).await,
            (None, Action::Scale { replicas }) => workload.scale(*replicas).await,
            (None, Action::Restart { broker }) => workload.restart(*broker).await,
            (None, _) => Ok(()),
        };
        if let Err(e) = acted {
            tracing::warn!(error = %e, "action failed; the next pass plans again");
            errors.push(("ReconcileFailed", e.to_string()));
        }
        record_pass(
            &metrics,
            &metrics_key,
            operation.as_ref(),
            planned.operation.as_ref(),
            &planned.blockers,
            &Time(Timestamp::now()),
        );
        operation = planned.operation.clone();
        let serving = cluster_ready(&desired, &observed);
        // Ready as the status says it: serving, and no operation still under way.
        let ready = serving && planned.operation.is_none();

        if topics_reconciled(&observed, planned.operation.as_ref())
            && let Some(client) = client
        {
            for topic in &manifests.topics {
                let topic = with_status(&options.state_dir, topic);
                let name = topic.metadata.name.clone().unwrap_or_default();
                let next = reconcile_topic(
                    client,
                    cluster,
                    &topic,
                    &metrics,
                    &metrics_key,
                    Timestamp::now(),
                )
                .await;
                if topic_statuses.get(&name) != Some(&next) {
                    let path = status_path(&options.state_dir, "Topic", &name);
                    if let Err(e) = write_status(&path, &next) {
                        tracing::error!(error = %e, path = %path.display(), "cannot write status");
                    }
                    topic_statuses.insert(name, next);
                }
            }
        }

        let next = cluster_status(
            status.as_ref(),
            ClusterReport {
                desired: &desired,
                observed: &observed,
                plan: &planned,
                bootstrap: &bootstrap,
                generation: cluster.metadata.generation,
                errors: &errors,
            },
            Timestamp::now(),
        );
        if let Err(e) = write_status(&cluster_path, &next) {
            tracing::error!(error = %e, path = %cluster_path.display(), "cannot write status");
        }
        status = Some(next);

        if ready && !announced {
            announced = true;
            let mut stdout = std::io::stdout().lock();
            // A closed stdout only loses the announcement; the cluster keeps running.
            let _ = writeln!(stdout, "strom-operator local ready bootstrap={bootstrap}");
            let _ = stdout.flush();
        }
        if wait(&mut terminate, &mut interrupt).await {
            tracing::info!("stopping the brokers");
            workload.shutdown().await;
            return Ok(());
        }
    }
}

/// Waits one tick; true when a stop signal came instead.
async fn wait(
    terminate: &mut tokio::signal::unix::Signal,
    interrupt: &mut tokio::signal::unix::Signal,
) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(TICK) => false,
        _ = terminate.recv() => true,
        _ = interrupt.recv() => true,
    }
}
