//! What every reconcile pass shares: the Kubernetes client, the Event recorder, metrics, the
//! Kafka admin factory, the build defaults and the clock.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use strom_admin::{AdminError, BrokerAdmin, ClusterAdmin, ConfigAdmin, KafkaAdmin, ReplicaAdmin};

use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::cluster::builders::{BuildDefaults, FIELD_MANAGER};
use crate::metrics::Metrics;

/// Opens an admin client to a cluster ([`BrokerAdmin`] for topics; [`ReplicaAdmin`] and
/// [`ConfigAdmin`] for the day-2 operations) or to one broker ([`ClusterAdmin`]: how that
/// broker sees the cluster), so tests can hand the reconcilers a fake.
pub trait AdminFactory: Send + Sync + 'static {
    /// The admin client type.
    type Admin: BrokerAdmin + ClusterAdmin + ReplicaAdmin + ConfigAdmin + 'static;

    /// Connects to `bootstrap` (`host:port[,host:port...]`; one broker's address to talk to
    /// that broker).
    fn connect(
        &self,
        bootstrap: &str,
    ) -> impl Future<Output = Result<Self::Admin, AdminError>> + Send;
}

/// Connects with the real Kafka admin client.
#[derive(Debug, Clone)]
pub struct KafkaAdminFactory {
    /// Connect and request timeout.
    pub timeout: Duration,
}

impl AdminFactory for KafkaAdminFactory {
    type Admin = KafkaAdmin;

    fn connect(
        &self,
        bootstrap: &str,
    ) -> impl Future<Output = Result<KafkaAdmin, AdminError>> + Send {
        KafkaAdmin::connect(bootstrap, self.timeout)
    }
}

/// State shared by all reconcile passes.
pub struct Context<F> {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Kubernetes Events as `strom-operator`.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Opens Kafka admin connections.
    pub admin: F,
    /// Image defaults for Clusters that leave them out.
    pub defaults: BuildDefaults,
    /// The time source for conditions.
    pub clock: Arc<dyn Clock>,
    /// Retry delays of failing objects.
    pub backoff: Backoff,
}

impl<F> std::fmt::Debug for Context<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("defaults", &self.defaults)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<F> Context<F> {
    /// A context whose Events are reported by `strom-operator` from `instance` (the pod name).
    pub fn new(
        client: Client,
        instance: Option<String>,
        metrics: Arc<Metrics>,
        admin: F,
        defaults: BuildDefaults,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        let recorder = Recorder::new(client.clone(), reporter);
        Self {
            client,
            recorder,
            metrics,
            admin,
            defaults,
            clock,
            backoff: Backoff::default(),
        }
    }

    /// Publishes an Event about `reference`. Events are for people reading `kubectl describe`;
    /// failing to write one must not fail the reconcile, so errors are only logged.
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: impl Into<String>,
    ) {
        let mut note = note.into();
        // The Events API rejects notes above 1 KiB.
        if note.len() > 1000 {
            let mut end = 1000;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: action.to_owned(),
            secondary: None,
        };
        if let Err(error) = self.recorder.publish(&event, reference).await {
            tracing::warn!(%error, reason, "cannot publish Event");
        }
    }
}
