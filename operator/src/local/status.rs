//! The status files of the local runtime: `<state-dir>/status/<kind>-<name>.yaml`, each the
//! `status` a Kubernetes object of that kind would carry, rewritten after every pass.

use std::path::{Path, PathBuf};

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strom_crds::cluster::{BrokerStatus, ClusterStatus};

use crate::conditions::set_condition;
use crate::day2::{Blocker, Desired, Observed, Plan};

/// The status file of `kind` `name`.
pub fn status_path(state_dir: &Path, kind: &str, name: &str) -> PathBuf {
    state_dir
        .join("status")
        .join(format!("{}-{name}.yaml", kind.to_ascii_lowercase()))
}

/// Writes `status` atomically (a reader never sees half a file).
pub fn write_status<T: Serialize>(path: &Path, status: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_yaml::to_string(status).map_err(std::io::Error::other)?;
    let temp = path.with_extension("yaml.tmp");
    std::fs::write(&temp, text)?;
    std::fs::rename(&temp, path)
}

/// The status last written, if any: a restarted operator resumes its operation from it.
pub fn read_status<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// Whether the cluster serves as the spec asks: the workload runs `desired.replicas`
/// brokers, all ready, all registered and unfenced, and one controller leads.
pub fn cluster_ready(desired: &Desired, observed: &Observed) -> bool {
    let Some(admin) = &observed.admin else {
        return false;
    };
    let ids = 0..desired.replicas;
    observed.workload.replicas == desired.replicas
        && admin.controller.is_some()
        && ids.clone().all(|id| {
            observed
                .workload
                .brokers
                .iter()
                .any(|b| b.id == id && b.ready)
                && admin.brokers.iter().any(|b| b.id == id && !b.fenced)
        })
}

fn blocker_message(blocker: &Blocker) -> (&'static str, String) {
    match blocker {
        Blocker::UnderMinIsr { broker, partitions } => (
            "RollBlocked",
            format!(
                "restarting broker {broker} would leave {} below min.insync.replicas",
                join(partitions)
            ),
        ),
        Blocker::UnavailableTopics { topics } => (
            "UnavailableTopics",
            format!(
                "topics {} have a replication factor of 1 or below min.insync.replicas: no \
                 restart keeps them available (spec.operations.allowUnavailablePartitions)",
                topics.join(", ")
            ),
        ),
        Blocker::ScaleDownRefused { message } => ("ScaleDownRefused", message.clone()),
        Blocker::RestartsExhausted { broker } => (
            "RestartsExhausted",
            format!(
                "broker {broker} did not come back after spec.operations.maxRestartAttempts restarts"
            ),
        ),
    }
}

fn join(items: &[impl ToString]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one pass of the local runtime reports of the Cluster.
#[derive(Debug, Clone, Copy)]
pub struct ClusterReport<'a> {
    /// What the spec asks for.
    pub desired: &'a Desired,
    /// What the pass observed.
    pub observed: &'a Observed,
    /// What the pass planned.
    pub plan: &'a Plan,
    /// The Kafka addresses of the brokers.
    pub bootstrap: &'a str,
    /// The Cluster's `metadata.generation`.
    pub generation: Option<i64>,
    /// What went wrong in the pass, as (reason, message): a refused port pin, an admin or
    /// process error.
    pub errors: &'a [(&'static str, String)],
}

/// The Cluster status after a pass, from the one before (condition transition times keep).
pub fn cluster_status(
    previous: Option<&ClusterStatus>,
    report: ClusterReport<'_>,
    now: Timestamp,
) -> ClusterStatus {
    let ClusterReport {
        desired,
        observed,
        plan,
        bootstrap,
        generation,
        errors,
    } = report;
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    status.replicas = desired.replicas;
    status.bootstrap_servers = Some(bootstrap.to_owned());
    status.operation = plan.operation.clone();
    status.controller_id = observed.admin.as_ref().and_then(|a| a.controller);
    status.brokers = observed
        .workload
        .brokers
        .iter()
        .map(|b| BrokerStatus {
            id: b.id,
            pod: format!("broker-{}", b.id),
            version: b.revision.clone(),
            ready: b.ready,
            registered: observed
                .admin
                .as_ref()
                .map(|a| a.brokers.iter().any(|r| r.id == b.id && !r.fenced)),
            rack: observed
                .admin
                .as_ref()
                .and_then(|a| a.brokers.iter().find(|r| r.id == b.id))
                .and_then(|r| r.rack.clone()),
        })
        .collect();
    status.ready_replicas =
        i32::try_from(status.brokers.iter().filter(|b| b.ready).count()).unwrap_or(i32::MAX);

    let ready = cluster_ready(desired, observed) && plan.operation.is_none();
    let ready_message = if ready {
        format!("{} brokers serve at {bootstrap}", desired.replicas)
    } else if observed.admin.is_none() {
        "no broker answers the admin API yet".to_owned()
    } else {
        format!(
            "{} of {} brokers ready",
            status.ready_replicas, desired.replicas
        )
    };
    let reason = if ready { "Ready" } else { "NotReady" };
    set_condition(
        &mut status.conditions,
        "Ready",
        ready,
        reason,
        ready_message,
        generation,
        now,
    );

    match &plan.operation {
        Some(operation) => set_condition(
            &mut status.conditions,
            "Progressing",
            true,
            operation.kind.as_str(),
            operation
                .message
                .clone()
                .unwrap_or_else(|| operation.kind.as_str().to_owned()),
            generation,
            now,
        ),
        None => set_condition(
            &mut status.conditions,
            "Progressing",
            false,
            "Idle",
            "no operation in progress",
            generation,
            now,
        ),
    }

    let degraded = plan.blockers.iter().map(blocker_message).chain(
        errors
            .iter()
            .map(|(reason, message)| (*reason, message.clone())),
    );
    let (reasons, messages): (Vec<&str>, Vec<String>) = degraded.unzip();
    match reasons.first() {
        Some(reason) => set_condition(
            &mut status.conditions,
            "Degraded",
            true,
            reason,
            messages.join("; "),
            generation,
            now,
        ),
        None => set_condition(
            &mut status.conditions,
            "Degraded",
            false,
            "AsExpected",
            "nothing blocks the cluster",
            generation,
            now,
        ),
    }
    status
}
