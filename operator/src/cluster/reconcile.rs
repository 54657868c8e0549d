//! One reconcile pass of a Cluster.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use strom_crds::{Cluster, ClusterStatus, disallowed_broker_config_keys};

use super::builders::{
    self, FIELD_MANAGER, StatefulSetInputs, bootstrap_service, config_map, headless_service,
    pod_disruption_budget, service_monitor, service_monitor_resource, stateful_set,
};
use super::observe::ask_brokers;
use super::operation;
use super::status::{Day2Report, Observed, cluster_status};
use super::storage::{Expansion, expand_claims, quantity_bytes};
use super::workload::{KubeWorkload, workload_state};
use crate::conditions::find;
use crate::conditions::set_condition;
use crate::context::{AdminFactory, Context};
use crate::day2::report::record_pass;
use crate::error::Error;

/// Kind label of the Cluster reconciler in metrics and logs.
pub const CLUSTER_KIND: &str = "Cluster";

/// Name of the prometheus-operator CRD whose presence enables the ServiceMonitor.
const SERVICE_MONITOR_CRD: &str = "servicemonitors.monitoring.coreos.com";
/// Requeue while brokers are starting or an operation runs.
const REQUEUE_BUSY: Duration = Duration::from_secs(15);
/// Requeue of a settled cluster (owned objects changing wake it earlier).
const REQUEUE_IDLE: Duration = Duration::from_secs(300);

/// Reconciles one Cluster: observe its StatefulSet and pods, apply its children (the
/// StatefulSet at the replicas it runs, its pod template on the desired revision), grow its
/// volumes, ask the brokers how they see the cluster, run one day-2 step (roll, drain,
/// rebalance) and write its status.
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

    let desired = builders::desired(&cluster, &ctx.defaults);
    let workload = KubeWorkload::new(ctx.client.clone(), &namespace, &name);
    let objects = workload.fetch().await?;
    let mut expansion = Expansion::default();
    let sts = if desired.paused {
        objects.stateful_set.clone()
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
        // Replicas and the claim template stay as they run: only the day-2 plan scales.
        let inputs =
            StatefulSetInputs::keeping(&cluster, objects.stateful_set.as_ref(), &desired.revision);
        let sts = apply(
            &Api::<StatefulSet>::namespaced(ctx.client.clone(), &namespace),
            "StatefulSet",
            &stateful_set(&cluster, &ctx.defaults, &inputs),
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
        if claims_may_be_smaller(&cluster.spec.storage.size, &inputs.claim_size) {
            expansion = expand_claims(
                ctx.client.clone(),
                &namespace,
                &name,
                &cluster.spec.storage.size,
                &objects.claims,
            )
            .await?;
            publish_expansion(&ctx, &reference, &cluster, &expansion).await;
        }
        Some(sts)
    };

    let answers = ask_brokers(&ctx.admin, &cluster, &namespace, &objects.pods).await;
    let workload_state = workload_state(&name, sts.as_ref(), &objects.pods, &objects.claims);
    let outcome = operation::run(
        &ctx,
        &cluster,
        &namespace,
        &desired,
        &workload,
        workload_state,
    )
    .await?;
    let status = cluster_status(
        &cluster,
        Observed {
            stateful_set: sts.as_ref(),
            pods: &objects.pods,
            answers: &answers,
            day2: Day2Report {
                paused: desired.paused,
                operation: outcome.operation.as_ref(),
                blockers: &outcome.plan.blockers,
                refused_claims: &expansion.refused,
            },
        },
        now,
    );
    publish_new_blockers(&ctx, &reference, &cluster, &status).await;
    let previous_generation = cluster.status.as_ref().and_then(|s| s.observed_generation);
    if !desired.paused && previous_generation != cluster.metadata.generation {
        let note = format!(
            "applied ConfigMap, Services, StatefulSet and PodDisruptionBudget for generation {} (spec.replicas={}; the StatefulSet follows as the brokers are started or drained)",
            cluster.metadata.generation.unwrap_or_default(),
            cluster.spec.replicas
        );
        ctx.publish(&reference, EventType::Normal, "Applied", "Apply", note)
            .await;
    }
    record_pass(
        &ctx.metrics,
        &format!("{namespace}/{name}"),
        cluster.status.as_ref().and_then(|s| s.operation.as_ref()),
        status.operation.as_ref(),
        &outcome.plan.blockers,
        &Time(now),
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

/// Whether some claim may ask for less than `size`: the claims start at the template's size,
/// so only a spec above it (or a size that cannot be compared) needs them listed.
fn claims_may_be_smaller(size: &str, template_size: &str) -> bool {
    match (quantity_bytes(size), quantity_bytes(template_size)) {
        (Some(wanted), Some(template)) => wanted > template,
        _ => size != template_size,
    }
}

/// An Event for the claims grown and one for those that cannot grow.
async fn publish_expansion<F>(
    ctx: &Context<F>,
    reference: &ObjectReference,
    cluster: &Cluster,
    expansion: &Expansion,
) {
    let size = &cluster.spec.storage.size;
    if !expansion.expanded.is_empty() {
        ctx.publish(
            reference,
            EventType::Normal,
            "VolumesExpanded",
            "ExpandVolumes",
            format!(
                "asked PersistentVolumeClaims {} to grow to {size}",
                expansion.expanded.join(", ")
            ),
        )
        .await;
    }
    if !expansion.refused.is_empty() {
        let refused: Vec<String> = expansion
            .refused
            .iter()
            .map(|(claim, why)| format!("{claim}: {why}"))
            .collect();
        ctx.publish(
            reference,
            EventType::Warning,
            "VolumeExpansionRefused",
            "ExpandVolumes",
            format!("cannot grow to {size}: {}", refused.join("; ")),
        )
        .await;
    }
}

/// A Warning Event for each day-2 blocker that started holding in this pass.
async fn publish_new_blockers<F>(
    ctx: &Context<F>,
    reference: &ObjectReference,
    cluster: &Cluster,
    status: &ClusterStatus,
) {
    let before = cluster
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    for (type_, reason) in [
        ("RollBlocked", None),
        ("ScaleDownRefused", None),
        ("Degraded", Some("RestartsExhausted")),
    ] {
        let Some(now) = find(&status.conditions, type_)
            .filter(|c| c.status == "True" && reason.is_none_or(|r| c.reason == r))
        else {
            continue;
        };
        let was = find(before, type_).filter(|c| c.status == "True");
        if was.is_none_or(|c| c.reason != now.reason) {
            ctx.publish(
                reference,
                EventType::Warning,
                &now.reason,
                "Plan",
                now.message.clone(),
            )
            .await;
        }
    }
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
