//! The operator process: HTTP endpoints, leader election, the two controllers, and shutdown on
//! SIGTERM. `main.rs` only parses the command line and sets up logging.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;
use futures::future::{BoxFuture, join_all};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use strom_crds::{Cluster, Topic};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cli::Cli;
use crate::clock::{Clock, SystemClock};
use crate::cluster::builders::{BuildDefaults, FIELD_MANAGER};
use crate::context::{AdminFactory, Context, KafkaAdminFactory};
use crate::error::Error;
use crate::http::HttpState;
use crate::leader::LeaderElector;
use crate::metrics::Metrics;
use crate::{cluster, topic};

/// Timeout of each Kafka admin connection and request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the operator stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No usable Kubernetes configuration (in-cluster service account or kubeconfig).
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// The metrics/health address could not be bound.
    #[error("cannot listen on {addr} for /metrics and health checks: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The metrics registry rejected a metric.
    #[error("cannot register metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    /// Leader election is on but no namespace for the Lease is known.
    #[error(
        "leader election needs the Lease namespace: pass --lease-namespace or set POD_NAMESPACE"
    )]
    NoLeaseNamespace,
    /// Leader election is on but there is no identity to hold the Lease with.
    #[error("leader election needs an identity: set POD_NAME (the downward API metadata.name)")]
    NoPodName,
    /// Another replica took over; exiting lets this one restart as a standby.
    #[error("lost leadership of Lease {namespace}/{name}")]
    LostLeadership {
        /// Lease namespace.
        namespace: String,
        /// Lease name.
        name: String,
    },
}

/// Runs the operator until SIGTERM/SIGINT (`Ok`) or a fatal error.
pub async fn run(cli: Cli) -> Result<(), RunError> {
    let metrics = Arc::new(Metrics::new().map_err(RunError::Metrics)?);
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    tracker.spawn(shutdown_on_signal(cancel.clone()));

    let http_state = Arc::new(HttpState {
        metrics: metrics.clone(),
        ready: false.into(),
    });
    let listener = TcpListener::bind(cli.metrics_listen)
        .await
        .map_err(|source| RunError::Bind {
            addr: cli.metrics_listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(cli.metrics_listen);
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz");
    let http = tracker.spawn(crate::http::serve(
        listener,
        http_state.clone(),
        cancel.clone(),
    ));

    let client = Client::try_default().await.map_err(RunError::Client)?;
    let pod_name = std::env::var("POD_NAME").ok().filter(|n| !n.is_empty());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ctx = Arc::new(Context::new(
        client.clone(),
        pod_name.clone(),
        metrics,
        KafkaAdminFactory {
            timeout: ADMIN_TIMEOUT,
        },
        BuildDefaults::from_image_reference(&cli.broker_image),
        clock.clone(),
    ));
    http_state.ready.store(true, Ordering::Release);

    let result = if cli.leader_election {
        let namespace = cli
            .lease_namespace
            .clone()
            .or_else(|| std::env::var("POD_NAMESPACE").ok())
            .filter(|n| !n.is_empty())
            .ok_or(RunError::NoLeaseNamespace)?;
        let identity = pod_name.ok_or(RunError::NoPodName)?;
        let elector = LeaderElector::new(
            Api::<Lease>::namespaced(client.clone(), &namespace),
            cli.lease_name.clone(),
            identity,
            clock,
        );
        let (leading_tx, mut leading) = watch::channel(false);
        let election_cancel = cancel.child_token();
        tracker.spawn(elector.run(leading_tx, election_cancel.clone()));
        tracing::info!(lease = %format!("{namespace}/{}", cli.lease_name), "waiting for leadership");
        let became_leader = tokio::select! {
            () = cancel.cancelled() => false,
            changed = leading.wait_for(|l| *l) => changed.is_ok(),
        };
        let result = if became_leader {
            tracing::info!("leading: starting controllers");
            let controllers_cancel = cancel.child_token();
            let controllers =
                run_controllers(client, &cli.namespaces, ctx, controllers_cancel.clone());
            tokio::pin!(controllers);
            tokio::select! {
                () = &mut controllers => Ok(()),
                lost = leading.wait_for(|l| !*l) => {
                    // `Err`: the elector stopped because we are shutting down, not a loss.
                    let lost = lost.is_ok();
                    if lost {
                        controllers_cancel.cancel();
                    }
                    controllers.await;
                    if lost {
                        Err(RunError::LostLeadership { namespace, name: cli.lease_name.clone() })
                    } else {
                        Ok(())
                    }
                }
            }
        } else {
            Ok(())
        };
        election_cancel.cancel();
        result
    } else {
        run_controllers(client, &cli.namespaces, ctx, cancel.clone()).await;
        Ok(())
    };

    cancel.cancel();
    tracker.close();
    tracker.wait().await;
    if let Ok(Err(error)) = http.await {
        return Err(RunError::Serve(error));
    }
    result
}

/// Runs the Cluster and Topic controllers for each watched namespace (or all) until `cancel`.
pub async fn run_controllers<F: AdminFactory>(
    client: Client,
    namespaces: &[String],
    ctx: Arc<Context<F>>,
    cancel: CancellationToken,
) {
    let scopes: Vec<Option<&str>> = if namespaces.is_empty() {
        vec![None]
    } else {
        namespaces.iter().map(|n| Some(n.as_str())).collect()
    };
    let mut controllers: Vec<BoxFuture<'static, ()>> = Vec::new();
    for scope in scopes {
        let owned = watcher::Config::default()
            .labels(&format!("app.kubernetes.io/managed-by={FIELD_MANAGER}"));
        let clusters = Controller::new(api::<Cluster>(&client, scope), watcher::Config::default())
            .owns(api::<StatefulSet>(&client, scope), owned.clone())
            .owns(api::<Service>(&client, scope), owned.clone())
            .owns(api::<ConfigMap>(&client, scope), owned.clone())
            .owns(api::<PodDisruptionBudget>(&client, scope), owned)
            .graceful_shutdown_on(cancel.clone().cancelled_owned())
            .run(reconcile_cluster, error_policy, ctx.clone())
            .for_each(|result| async move { log_result(result) });
        let topic_controller =
            Controller::new(api::<Topic>(&client, scope), watcher::Config::default());
        let topic_store = topic_controller.store();
        // A Cluster that appears or changes wakes the Topics naming it, so a Topic waiting on
        // `ClusterNotFound` or `ClusterUnreachable` does not sit out its retry delay.
        let topics = topic_controller
            .watches(
                api::<Cluster>(&client, scope),
                watcher::Config::default(),
                move |cluster: Cluster| topics_of_cluster(&topic_store.state(), &cluster),
            )
            .graceful_shutdown_on(cancel.clone().cancelled_owned())
            .run(reconcile_topic, error_policy, ctx.clone())
            .for_each(|result| async move { log_result(result) });
        // The metric series of a deleted Cluster go with it.
        let metrics = ctx.metrics.clone();
        let forget = watcher(api::<Cluster>(&client, scope), watcher::Config::default())
            .default_backoff()
            .take_until(cancel.clone().cancelled_owned())
            .for_each(move |event| {
                if let Ok(watcher::Event::Delete(cluster)) = &event {
                    metrics.forget_cluster(&metrics_key(cluster));
                }
                futures::future::ready(())
            });
        controllers.push(Box::pin(clusters));
        controllers.push(Box::pin(topics));
        controllers.push(Box::pin(forget));
    }
    join_all(controllers).await;
    tracing::info!("controllers stopped");
}

/// The `cluster` label of a Cluster's operator metrics: `namespace/name`.
pub fn metrics_key(cluster: &Cluster) -> String {
    format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

/// References to the Topics in `topics` that name `cluster` in their `spec.clusterRef`.
pub fn topics_of_cluster(topics: &[Arc<Topic>], cluster: &Cluster) -> Vec<ObjectRef<Topic>> {
    let namespace = cluster.namespace();
    let name = cluster.name_any();
    topics
        .iter()
        .filter(|t| t.namespace() == namespace && t.spec.cluster_ref.name == name)
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn reconcile_cluster<F: AdminFactory>(
    cluster: Arc<Cluster>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let key = object_key(cluster.as_ref());
    let action = cluster::reconcile(cluster, ctx.clone()).await?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

async fn reconcile_topic<F: AdminFactory>(
    topic: Arc<Topic>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let key = object_key(topic.as_ref());
    let action = topic::reconcile(topic, ctx.clone()).await?;
    ctx.backoff.succeeded(&key);
    Ok(action)
}

/// Counts the failure and requeues with per-object backoff.
pub fn error_policy<K, F>(object: Arc<K>, error: &Error, ctx: Arc<Context<F>>) -> Action
where
    K: Resource<DynamicType = ()>,
{
    let key = object_key(object.as_ref());
    let kind = K::kind(&());
    ctx.metrics.reconcile_error(&kind, error.metric_reason());
    let delay = ctx.backoff.failed(&key);
    tracing::warn!(object = %key, %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

fn object_key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

fn log_result<K: std::fmt::Debug, E: std::fmt::Display>(result: Result<K, E>) {
    match result {
        Ok(object) => tracing::debug!(?object, "reconciled"),
        Err(error) => tracing::debug!(%error, "controller event"),
    }
}

/// Cancels `cancel` on SIGTERM (Kubernetes stopping the pod) or SIGINT.
async fn shutdown_on_signal(cancel: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = cancel.cancelled() => return,
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
    }
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{minimal_cluster, topic};

    #[test]
    fn a_cluster_wakes_only_its_own_topics() {
        let mine = topic();
        let mut other_cluster = topic();
        other_cluster.metadata.name = Some("payments".to_owned());
        other_cluster.spec.cluster_ref.name = "other".to_owned();
        let mut other_namespace = topic();
        other_namespace.metadata.namespace = Some("elsewhere".to_owned());
        let topics = [mine, other_cluster, other_namespace].map(Arc::new);
        let woken = topics_of_cluster(&topics, &minimal_cluster());
        assert_eq!(woken, vec![ObjectRef::from_obj(topics[0].as_ref())]);
    }
}
