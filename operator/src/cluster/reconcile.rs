//! One reconcile pass of a Cluster.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use strom_crds::{Cluster, ClusterStatus, disallowed_broker_config_keys};

use super::builders::{
    FIELD_MANAGER, bootstrap_service, config_map, headless_service, pod_disruption_budget,
    selector_labels, service_monitor, service_monitor_resource, stateful_set, stateful_set_name,
};
use super::observe::ask_brokers;
use super::status::{Observed, cluster_status};
use crate::conditions::find;
use crate::conditions::set_condition;
use crate::context::{AdminFactory, Context};
use crate::error::Error;

/// Kind label of the Cluster reconciler in metrics and logs.
pub const CLUSTER_KIND: &str = "Cluster";

/// Name of the prometheus-operator CRD whose presence enables the ServiceMonitor.
const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";
/// Requeue while brokers are starting or an operation runs.
const REQUEUE_BUSY: Duration = Duration::from_secs(15);
/// Requeue of a settled cluster (owned objects changing wake it earlier).
const REQUEUE_IDLE: Duration = Duration::from_secs(300);

/// Reconciles one Cluster: apply its children, observe its pods and ask their brokers how
/// they see the cluster, write its status.
pub async fn reconcile<F: AdminFactory>(
    cluster: Arc<Cluster>,
    ctx: Arc<Context<F>>,
) -> Result<Action, Error> {
    let _timer = ctx.metrics.reconcile_started(CLUSTER_KIND);
    let name = cluster.name_any();
    let namespace = cluster.namespace().ok_or_else(|| Error::MissingNamespace {
        kind: CLUSTER_KIND,
        name: name.clone(),
    })?;
    let reference = cluster.object_ref(&());
    let now = ctx.clock.now();

    let disallowed = disallowed_broker_config_keys(&cluster.spec.config);
    if !disallowed.is_empty() {
        let message = format!(
            "spec.config has keys a Cluster may not set: {}; allowed keys are {}",
            disallowed.join(", "),
            strom_crds::BROKER_CONFIG_KEYS.join(", ")
        );
        ctx.metrics.reconcile_error(CLUSTER_KIND, "invalid_config");
        ctx.publish(
            &reference,
            EventType::Warning,
            "InvalidConfig",
            "Validate",
            message.clone(),
        )
        .await;
        let mut status = cluster.status.clone().unwrap_or_default();
        status.observed_generation = cluster.metadata.generation;
        let generation = cluster.metadata.generation;
        set_condition(
            &mut status.conditions,
            "Ready",
            false,
            "InvalidConfig",
            message.clone(),
            generation,
            now,
        );
        set_condition(
            &mut status.conditions,
            "Degraded",
            true,
            "InvalidConfig",
            message.clone(),
            generation,
            now,
        );
        set_condition(
            &mut status.conditions,
            "Progressing",
            false,
            "InvalidConfig",
            "nothing is applied until spec.config is fixed",
            generation,
            now,
        );
        patch_status(&ctx, &namespace, &name, &status).await?;
        // A spec change wakes the controller; the requeue only guards against a missed watch.
        return Ok(Action::requeue(REQUEUE_IDLE));
    }

    let stateful_sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &namespace);
    let sts = if cluster.spec.paused {
        stateful_sets
            .get_opt(&stateful_set_name(&name))
            .await
            .map_err(Error::kube(format!(
                "get StatefulSet {namespace}/{}",
                stateful_set_name(&name)
            )))?
    } else {
        apply(
            &Api::<ConfigMap>::namespaced(ctx.client.clone(), &namespace),
            "ConfigMap",
            &config_map(&cluster),
        )
        .await?;
        let services = Api::<Service>::namespaced(ctx.client.clone(), &namespace);
        apply(&services, "Service", &headless_service(&cluster)).await?;
        apply(&services, "Service", &bootstrap_service(&cluster)).await?;
        let sts = apply(
            &stateful_sets,
            "StatefulSet",
            &stateful_set(&cluster, &ctx.defaults),
        )
        .await?;
        apply(
            &Api::<PodDisruptionBudget>::namespaced(ctx.client.clone(), &namespace),
            "PodDisruptionBudget",
            &pod_disruption_budget(&cluster),
        )
        .await?;
        if cluster.spec.metrics.service_monitor {
            apply_service_monitor(&cluster, &ctx, &namespace).await?;
        }
        Some(sts)
    };

    let selector = selector_labels(&name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::kube(format!(
            "list broker pods of Cluster {namespace}/{name}"
        )))?;

    let answers = ask_brokers(&ctx.admin, &cluster, &namespace, &pods.items).await;
    let status = cluster_status(
        &cluster,
        Observed {
            stateful_set: sts.as_ref(),
            pods: &pods.items,
            answers: &answers,
        },
        now,
    );
    let previous_generation = cluster.status.as_ref().and_then(|s| s.observed_generation);
    if !cluster.spec.paused && previous_generation != cluster.metadata.generation {
        let note = format!(
            "applied ConfigMap, Services, StatefulSet ({} replicas) and PodDisruptionBudget for generation {}",
            cluster.spec.replicas,
            cluster.metadata.generation.unwrap_or_default()
        );
        ctx.publish(&reference, EventType::Normal, "Applied", "Apply", note)
            .await;
    }
    ctx.metrics.set_operation(
        &format!("{namespace}/{name}"),
        status.operation.as_ref().map(|op| op.kind),
    );
    let ready = find(&status.conditions, "Ready").is_some_and(|c| c.status == "True");
    let busy = status.operation.is_some() || !ready;
    patch_status(&ctx, &namespace, &name, &status).await?;
    Ok(Action::requeue(if busy {
        REQUEUE_BUSY
    } else {
        REQUEUE_IDLE
    }))
}

/// Applies the ServiceMonitor when prometheus-operator's CRD is installed; otherwise says so
/// in an Event rather than failing, since metrics are still served on the pods.
async fn apply_service_monitor<F>(
    cluster: &Cluster,
    ctx: &Context<F>,
    namespace: &str,
) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let installed = crds
        .get_opt(SERVICE_MONITOR_CRD)
        .await
        .map_err(Error::kube(format!(
            "get CustomResourceDefinition {SERVICE_MONITOR_CRD}"
        )))?
        .is_some();
    if !installed {
        ctx.publish(
            &cluster.object_ref(&()),
            EventType::Warning,
            "ServiceMonitorUnavailable",
            "Apply",
            format!("spec.metrics.serviceMonitor is true but the CRD {SERVICE_MONITOR_CRD} is not installed; install prometheus-operator or scrape the pods' admin port"),
        )
        .await;
        return Ok(());
    }
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), namespace, &service_monitor_resource());
    apply(&api, "ServiceMonitor", &service_monitor(cluster)).await?;
    Ok(())
}

/// Server-side apply of `object` as field manager `strom-operator`, forcing ownership of the
/// fields it sets (someone editing them by hand is put back).
async fn apply<K>(api: &Api<K>, kind: &str, object: &K) -> Result<K, Error>
where
    K: Resource + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = object.name_any();
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(Error::kube(format!("apply {kind} {name}")))
}

async fn patch_status<F>(
    ctx: &Context<F>,
    namespace: &str,
    name: &str,
    status: &ClusterStatus,
) -> Result<(), Error> {
    let api: Api<Cluster> = Api::namespaced(ctx.client.clone(), namespace);
    let patch = json!({
        "apiVersion": Cluster::api_version(&()),
        "kind": Cluster::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(patch),
    )
    .await
    .map_err(Error::kube(format!(
        "patch status of Cluster {namespace}/{name}"
    )))?;
    Ok(())
}
