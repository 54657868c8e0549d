//! The day-2 pass of one Cluster on Kubernetes: observe the brokers through the admin API
//! (the bootstrap Service), plan with the shared pure planner ([`crate::day2::plan`]), run the
//! one action it asks for through the [`KubeWorkload`] and the admin API
//! ([`crate::day2::engine`]), and publish an Event for each step taken. A restart is an
//! eviction: `PodEvicted` only when the API server accepted it, `PodAlreadyReplaced` when the pod
//! observed was gone or had been recreated, `EvictionRefused` when the PodDisruptionBudget
//! allowed no disruption.
//!
//! The operation the plan returns is the Cluster's `status.operation`, and the next pass reads
//! it back as `previous`: an operator restarted mid-roll or mid-drain resumes where it was.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::events::EventType;
use strom_crds::cluster::OperationStatus;

use super::builders::{bootstrap_address, pod_name};
use super::workload::{Evicted, KubeWorkload};
use crate::context::{AdminFactory, Context};
use crate::day2::engine::{act, observe_admin};
use crate::day2::plan::{STEP_BLOCKED, plan};
use crate::day2::{Action, AdminState, Blocker, Desired, Observed, Plan, WorkloadState};
use crate::error::Error;

/// What one day-2 pass did.
#[derive(Debug)]
pub struct Outcome {
    /// The plan of this pass.
    pub plan: Plan,
    /// The operation to write to the status: the plan's when its action ran (or needed
    /// nothing run), the previous one when the action failed.
    pub operation: Option<OperationStatus>,
}

/// Where the admin API of Cluster `name` is reached from inside the Kubernetes cluster.
fn admin_bootstrap(cluster: &strom_crds::Cluster, namespace: &str) -> String {
    bootstrap_address(
        &kube::ResourceExt::name_any(cluster),
        namespace,
        cluster.spec.listeners.port,
    )
}

/// Observes the admin API of `cluster` (`None` when no broker answers), plans, and runs the
/// plan's action unless the Cluster is paused.
pub async fn run<F: AdminFactory>(
    ctx: &Context<F>,
    cluster: &strom_crds::Cluster,
    namespace: &str,
    desired: &Desired,
    workload: &KubeWorkload,
    workload_state: WorkloadState,
) -> Result<Outcome, Error> {
    let bootstrap = admin_bootstrap(cluster, namespace);
    let admin = match ctx.admin.connect(&bootstrap).await {
        Ok(client) => Some(client),
        Err(error) => {
            tracing::debug!(%bootstrap, %error, "admin API not reachable");
            None
        }
    };
    let admin_state: Option<AdminState> = match &admin {
        Some(client) => match observe_admin(client).await {
            Ok(state) => Some(state),
            Err(error) => {
                tracing::debug!(%bootstrap, %error, "admin API observation failed");
                None
            }
        },
        None => None,
    };
    let previous = cluster.status.as_ref().and_then(|s| s.operation.as_ref());
    let observed = Observed {
        workload: workload_state,
        admin: admin_state,
    };
    let plan = plan(desired, &observed, previous, Time(ctx.clock.now()));
    tracing::debug!(action = ?plan.action, operation = ?plan.operation, blockers = ?plan.blockers, "day-2 plan");

    let reference = kube::Resource::object_ref(cluster, &());
    let name = kube::ResourceExt::name_any(cluster);
    let needs_admin = !matches!(
        plan.action,
        Action::Idle | Action::Wait | Action::Scale { .. } | Action::Restart { .. }
    );
    // A restart is an eviction, run here rather than through the engine: its Event says
    // whether the pod was evicted or had been replaced already.
    let result = match (&admin, needs_admin, &plan.action) {
        _ if desired.paused => Ok(None),
        (_, _, Action::Restart { broker }) => workload.evict(*broker).await.map(Some),
        (Some(client), _, _) => act(&plan.action, workload, client).await.map(|()| None),
        (None, false, _) => act_on_workload(&plan.action, workload).await.map(|()| None),
        (None, true, _) => {
            tracing::warn!(action = ?plan.action, "no admin connection for the planned action");
            Ok(None)
        }
    };
    match result {
        Ok(eviction) => {
            match (eviction, &plan.action) {
                _ if desired.paused => {}
                (Some(Evicted::AlreadyReplaced { message }), Action::Restart { broker }) => {
                    ctx.publish(
                        &reference,
                        EventType::Normal,
                        "PodAlreadyReplaced",
                        "Restart",
                        format!(
                            "pod {} of broker {broker} was not evicted: it had been replaced since it was observed ({message}); the StatefulSet starts it on revision {}",
                            pod_name(&name, *broker),
                            desired.revision
                        ),
                    )
                    .await;
                }
                _ => publish_step(ctx, &reference, desired, &name, &plan, &observed.workload).await,
            }
            let operation = plan.operation.clone();
            Ok(Outcome { plan, operation })
        }
        Err(Error::EvictionRefused { pod, message }) => {
            ctx.publish(
                &reference,
                EventType::Warning,
                "EvictionRefused",
                "Restart",
                format!("pod {pod} was not evicted, the PodDisruptionBudget allows no disruption now; retrying: {message}"),
            )
            .await;
            let message = format!(
                "waiting for the PodDisruptionBudget to allow evicting pod {pod}: {message}"
            );
            let operation = plan
                .operation
                .as_ref()
                .map(|op| refused_restart(previous, op, message, Time(ctx.clock.now())));
            Ok(Outcome { plan, operation })
        }
        Err(error) => {
            ctx.publish(
                &reference,
                EventType::Warning,
                "StepFailed",
                action_name(&plan.action),
                format!(
                    "{}: {error}",
                    describe(&plan.action, desired, &name, &observed.workload)
                ),
            )
            .await;
            Err(error)
        }
    }
}

/// The operation after the eviction `planned` asked for was refused: the restart did not
/// happen, so it is not counted, and the operation waits blocked at its broker. The time it has
/// been blocked is kept while it stays blocked at the same attempt: a broker whose restart again
/// stays refused uses up its attempts as the planner's deadline passes
/// ([`crate::day2::plan::RESTART_TIMEOUT_SECONDS`]) and ends reported as `RestartsExhausted`.
pub fn refused_restart(
    previous: Option<&OperationStatus>,
    planned: &OperationStatus,
    message: String,
    now: Time,
) -> OperationStatus {
    let attempts = planned.attempts.saturating_sub(1);
    let blocked_since = previous
        .filter(|p| {
            p.step.as_deref() == Some(STEP_BLOCKED)
                && p.broker == planned.broker
                && p.attempts == attempts
        })
        .and_then(|p| p.step_started_at.clone())
        .unwrap_or(now);
    OperationStatus {
        step: Some(STEP_BLOCKED.to_owned()),
        step_started_at: Some(blocked_since),
        attempts,
        message: Some(message),
        ..planned.clone()
    }
}

/// Runs a workload action without an admin connection: the plan starts brokers (or stops
/// drained ones) before any broker answers.
async fn act_on_workload(action: &Action, workload: &KubeWorkload) -> Result<(), Error> {
    use crate::day2::Workload;
    match action {
        Action::Scale { replicas } => workload.scale(*replicas).await,
        _ => Ok(()),
    }
}

/// The Event `action` of each step.
fn action_name(action: &Action) -> &'static str {
    match action {
        Action::Idle | Action::Wait => "Observe",
        Action::Scale { .. } => "Scale",
        Action::Restart { .. } => "Restart",
        Action::Reassign { .. } | Action::CancelReassignments { .. } => "Reassign",
        Action::ElectPreferred { .. } => "ElectLeaders",
        Action::AlterBrokerConfigs { .. } | Action::ClearThrottles => "Configure",
    }
}

/// What `action` does, in words, for its Event.
fn describe(action: &Action, desired: &Desired, cluster: &str, workload: &WorkloadState) -> String {
    match action {
        Action::Idle | Action::Wait => "nothing to do".to_owned(),
        Action::Scale { replicas } => {
            let from = workload.replicas;
            let removed: Vec<String> = (*replicas..from).map(|id| id.to_string()).collect();
            if *replicas < from {
                format!(
                    "StatefulSet replicas lowered from {from} to {replicas}: broker(s) {} drained (no partition replica left)",
                    removed.join(", ")
                )
            } else {
                format!("StatefulSet replicas raised from {from} to {replicas}")
            }
        }
        Action::Restart { broker } => {
            let pod = pod_name(cluster, *broker);
            let for_resize = workload.brokers.iter().any(|b| {
                b.id == *broker
                    && b.resize_pending
                    && b.revision.as_deref() == Some(desired.revision.as_str())
            });
            if for_resize {
                format!(
                    "evicted pod {pod} to restart broker {broker} for its filesystem resize: its volume grew and the filesystem grows only when the pod starts again (FileSystemResizePending)"
                )
            } else {
                format!(
                    "evicted pod {pod} to restart broker {broker} onto revision {}",
                    desired.revision
                )
            }
        }
        Action::Reassign { moves, throttle } => {
            let first: Vec<String> = moves
                .iter()
                .take(5)
                .map(|(tp, replicas)| format!("{tp} -> {replicas:?}"))
                .collect();
            let more = moves.len().saturating_sub(first.len());
            format!(
                "reassigning {} partition(s){}: {}{}",
                moves.len(),
                throttle.map_or_else(
                    || " unthrottled".to_owned(),
                    |rate| format!(" throttled to {rate} B/s per broker")
                ),
                first.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        }
        Action::CancelReassignments { partitions } => format!(
            "cancelled the reassignment of {} partition(s): the drain is reverted",
            partitions.len()
        ),
        Action::ElectPreferred { partitions } => format!(
            "preferred-leader election of {} partition(s)",
            partitions.len()
        ),
        Action::AlterBrokerConfigs { configs } => format!(
            "dynamic broker configs set without a restart: {}",
            configs
                .iter()
                .map(|(k, v)| if v.is_empty() {
                    format!("{k} (deleted)")
                } else {
                    format!("{k}={v}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::ClearThrottles => "replication throttles of the finished moves removed".to_owned(),
    }
}

/// The Event reason of each step.
fn reason(action: &Action, workload: &WorkloadState) -> Option<&'static str> {
    Some(match action {
        Action::Idle | Action::Wait => return None,
        Action::Scale { replicas } if *replicas < workload.replicas => "ReplicasLowered",
        Action::Scale { .. } => "ReplicasRaised",
        Action::Restart { .. } => "PodEvicted",
        Action::Reassign { .. } => "ReassignmentStarted",
        Action::CancelReassignments { .. } => "ReassignmentCancelled",
        Action::ElectPreferred { .. } => "LeadersElected",
        Action::AlterBrokerConfigs { .. } => "BrokerConfigsUpdated",
        Action::ClearThrottles => "ThrottlesCleared",
    })
}

/// One Normal Event per action taken.
async fn publish_step<F>(
    ctx: &Context<F>,
    reference: &ObjectReference,
    desired: &Desired,
    cluster: &str,
    plan: &Plan,
    workload: &WorkloadState,
) {
    if let Some(reason) = reason(&plan.action, workload) {
        ctx.publish(
            reference,
            EventType::Normal,
            reason,
            action_name(&plan.action),
            describe(&plan.action, desired, cluster, workload),
        )
        .await;
    }
}

/// The condition a blocker sets: (type, reason, message).
pub fn blocker_condition(blocker: &Blocker) -> (&'static str, &'static str, String) {
    match blocker {
        Blocker::UnderMinIsr { broker, partitions } => (
            "RollBlocked",
            "UnderMinIsr",
            format!(
                "restarting broker {broker} would leave {} partition(s) below min.insync.replicas: {}",
                partitions.len(),
                names(partitions.iter().map(ToString::to_string))
            ),
        ),
        Blocker::UnavailableTopics { topics } => (
            "RollBlocked",
            "UnavailableTopics",
            format!(
                "topic(s) {} have replication factor 1 or below min.insync.replicas, so any restart makes them unavailable; set spec.operations.allowUnavailablePartitions to restart anyway",
                names(topics.iter().cloned())
            ),
        ),
        Blocker::ScaleDownRefused { message } => {
            ("ScaleDownRefused", "ScaleDownRefused", message.clone())
        }
        Blocker::RestartsExhausted { broker } => (
            "Degraded",
            "RestartsExhausted",
            format!(
                "broker {broker} did not come back after the allowed restarts (spec.operations.maxRestartAttempts); the roll stops until it serves again"
            ),
        ),
    }
}

/// Up to ten names, comma-separated, with a count of the rest.
fn names(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut out = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        out.push_str(&format!(" and {} more", items.len() - 10));
    }
    out
}
