//! The operator's own Prometheus metrics, served on `/metrics`. `cluster` is the Cluster's
//! `namespace/name`, the same in both runtimes (Kubernetes and local processes).
//!
//! - `strom_operator_reconciles_total{kind}`: reconcile passes started (`kind`: Cluster, Topic);
//! - `strom_operator_reconcile_errors_total{kind,reason}`: passes that failed or ended in a
//!   refusal/unavailable condition, by reason;
//! - `strom_operator_reconcile_duration_seconds{kind}`: time per pass;
//! - `strom_operator_operations_in_progress{cluster,kind}`: 1 for the day-2 operation a cluster
//!   runs (`kind`: Provisioning, ScaleUp, ScaleDown, RollingUpgrade, Rebalance), 0 for the other
//!   kinds ([`Metrics::set_operation`]);
//! - `strom_operator_operation_step_duration_seconds{cluster,kind,step}`: how long each finished
//!   step of an operation took, e.g. one broker's `Restarting` or a batch's `Reassigning`
//!   ([`Metrics::observe_step`]);
//! - `strom_operator_reassignment_bytes_remaining{cluster}`: bytes the replicas being added by
//!   reassignments in progress still have to copy, summed over what moves them (the Cluster's
//!   drain or rebalance, each Topic's replication-factor change)
//!   ([`Metrics::set_reassignment_bytes_remaining`]);
//! - `strom_operator_blocked_rolls{cluster}`: 1 while a cluster's rolling restart cannot go on
//!   (a broker whose restart would drop a partition below `min.insync.replicas`, topics that no
//!   restart keeps available, restarts exhausted), else 0 ([`Metrics::set_roll_blocked`]).
//!
//! [`Metrics::forget_cluster`] drops every series of a Cluster that is gone.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use strom_crds::cluster::OperationKind;

/// Metric handles and the registry that serves them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
    operations: IntGaugeVec,
    step_duration: HistogramVec,
    bytes_remaining: IntGaugeVec,
    blocked_rolls: IntGaugeVec,
    /// What each cluster (`namespace/name`) has reported, to keep the gauges exact across
    /// passes and to drop its series when it goes.
    clusters: Mutex<HashMap<String, ClusterSeries>>,
}

/// The per-cluster state behind the gauges.
#[derive(Debug, Default)]
struct ClusterSeries {
    /// Bytes remaining per source of reassignments (`Cluster`, `Topic/<name>`).
    bytes_remaining: BTreeMap<String, i64>,
    /// The `(kind, step)` label pairs observed in the step histogram.
    steps: BTreeSet<(&'static str, String)>,
}

const OPERATION_KINDS: [OperationKind; 5] = [
    OperationKind::Provisioning,
    OperationKind::ScaleUp,
    OperationKind::ScaleDown,
    OperationKind::RollingUpgrade,
    OperationKind::Rebalance,
];

/// Step durations run from a broker restart (seconds) to a large reassignment (hours).
const STEP_BUCKETS: [f64; 13] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let reconciles = IntCounterVec::new(
            Opts::new(
                "strom_operator_reconciles_total",
                "Reconcile passes started",
            ),
            &["kind"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "strom_operator_reconcile_errors_total",
                "Reconcile passes that failed or were refused",
            ),
            &["kind", "reason"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "strom_operator_reconcile_duration_seconds",
                "Duration of a reconcile pass",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["kind"],
        )?;
        let operations = IntGaugeVec::new(
            Opts::new(
                "strom_operator_operations_in_progress",
                "Day-2 operation a cluster runs (1) by kind",
            ),
            &["cluster", "kind"],
        )?;
        let step_duration = HistogramVec::new(
            HistogramOpts::new(
                "strom_operator_operation_step_duration_seconds",
                "Duration of a finished step of a day-2 operation",
            )
            .buckets(STEP_BUCKETS.to_vec()),
            &["cluster", "kind", "step"],
        )?;
        let bytes_remaining = IntGaugeVec::new(
            Opts::new(
                "strom_operator_reassignment_bytes_remaining",
                "Bytes the replicas being added by reassignments still have to copy",
            ),
            &["cluster"],
        )?;
        let blocked_rolls = IntGaugeVec::new(
            Opts::new(
                "strom_operator_blocked_rolls",
                "Whether a cluster's rolling restart is blocked (1) or not (0)",
            ),
            &["cluster"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(operations.clone()))?;
        registry.register(Box::new(step_duration.clone()))?;
        registry.register(Box::new(bytes_remaining.clone()))?;
        registry.register(Box::new(blocked_rolls.clone()))?;
        Ok(Self {
            registry,
            reconciles,
            errors,
            duration,
            operations,
            step_duration,
            bytes_remaining,
            blocked_rolls,
            clusters: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a reconcile pass of `kind` and times it until the returned guard drops.
    pub fn reconcile_started(&self, kind: &'static str) -> ReconcileTimer<'_> {
        self.reconciles.with_label_values(&[kind]).inc();
        ReconcileTimer {
            metrics: self,
            kind,
            started: Instant::now(),
        }
    }

    /// Counts a failed or refused pass.
    pub fn reconcile_error(&self, kind: &str, reason: &str) {
        self.errors.with_label_values(&[kind, reason]).inc();
    }

    fn clusters(&self) -> MutexGuard<'_, HashMap<String, ClusterSeries>> {
        self.clusters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the operation `cluster` (`namespace/name`) runs (`None`: none): its kind's
    /// series is 1, the other kinds' 0.
    pub fn set_operation(&self, cluster: &str, operation: Option<OperationKind>) {
        self.clusters().entry(cluster.to_owned()).or_default();
        for kind in OPERATION_KINDS {
            self.operations
                .with_label_values(&[cluster, kind.as_str()])
                .set(i64::from(operation == Some(kind)));
        }
    }

    /// Records that a step of `cluster`'s operation of `kind` (e.g. `Restarting` one broker,
    /// `Reassigning` one batch) finished after `took`.
    pub fn observe_step(&self, cluster: &str, kind: OperationKind, step: &str, took: Duration) {
        self.clusters()
            .entry(cluster.to_owned())
            .or_default()
            .steps
            .insert((kind.as_str(), step.to_owned()));
        self.step_duration
            .with_label_values(&[cluster, kind.as_str(), step])
            .observe(took.as_secs_f64());
    }

    /// Records the bytes the reassignments `source` runs on `cluster` still have to copy
    /// (`None`: none run). `source` keeps the reporters apart: `Cluster` for a drain or a
    /// rebalance, `Topic/<name>` for a Topic's replication-factor change; the gauge is their
    /// sum.
    pub fn set_reassignment_bytes_remaining(
        &self,
        cluster: &str,
        source: &str,
        bytes: Option<i64>,
    ) {
        let mut clusters = self.clusters();
        let series = clusters.entry(cluster.to_owned()).or_default();
        match bytes {
            Some(bytes) => series
                .bytes_remaining
                .insert(source.to_owned(), bytes.max(0)),
            None => series.bytes_remaining.remove(source),
        };
        let total = series
            .bytes_remaining
            .values()
            .fold(0i64, |sum, b| sum.saturating_add(*b));
        self.bytes_remaining
            .with_label_values(&[cluster])
            .set(total);
    }

    /// Records whether `cluster`'s rolling restart is blocked.
    pub fn set_roll_blocked(&self, cluster: &str, blocked: bool) {
        self.clusters().entry(cluster.to_owned()).or_default();
        self.blocked_rolls
            .with_label_values(&[cluster])
            .set(i64::from(blocked));
    }

    /// Drops every series of `cluster`, once the Cluster is gone.
    pub fn forget_cluster(&self, cluster: &str) {
        let Some(series) = self.clusters().remove(cluster) else {
            return;
        };
        // A series never set is simply absent; removing it fails harmlessly.
        for kind in OPERATION_KINDS {
            let _ = self
                .operations
                .remove_label_values(&[cluster, kind.as_str()]);
        }
        for (kind, step) in &series.steps {
            let _ = self
                .step_duration
                .remove_label_values(&[cluster, kind, step]);
        }
        let _ = self.bytes_remaining.remove_label_values(&[cluster]);
        let _ = self.blocked_rolls.remove_label_values(&[cluster]);
    }

    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8_lossy(&buffer).into_owned())
    }
}

/// Observes the duration of a reconcile pass when dropped.
#[derive(Debug)]
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    started: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .duration
            .with_label_values(&[self.kind])
            .observe(self.started.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_series() {
        let metrics = Metrics::new().expect("metrics register");
        drop(metrics.reconcile_started("Cluster"));
        metrics.reconcile_error("Topic", "cluster_not_found");
        metrics.set_operation("ns/a", Some(OperationKind::Provisioning));
        metrics.set_operation("ns/b", Some(OperationKind::Provisioning));
        metrics.set_operation("ns/a", None);
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains("strom_operator_reconciles_total{kind=\"Cluster\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "strom_operator_reconcile_errors_total{kind=\"Topic\",reason=\"cluster_not_found\"} 1"
        ));
        assert!(
            text.contains("strom_operator_reconcile_duration_seconds_count{kind=\"Cluster\"} 1")
        );
        assert!(text.contains(
            "strom_operator_operations_in_progress{cluster=\"ns/b\",kind=\"Provisioning\"} 1"
        ));
        assert!(text.contains(
            "strom_operator_operations_in_progress{cluster=\"ns/a\",kind=\"Provisioning\"} 0"
        ));
        assert!(text.contains(
            "strom_operator_operations_in_progress{cluster=\"ns/b\",kind=\"ScaleUp\"} 0"
        ));
    }

    #[test]
    fn an_operation_changing_kind_moves_its_one() {
        let metrics = Metrics::new().expect("metrics register");
        metrics.set_operation("ns/a", Some(OperationKind::ScaleUp));
        metrics.set_operation("ns/a", Some(OperationKind::Rebalance));
        let text = metrics.encode().expect("encode");
        assert!(text.contains(
            "strom_operator_operations_in_progress{cluster=\"ns/a\",kind=\"ScaleUp\"} 0"
        ));
        assert!(text.contains(
            "strom_operator_operations_in_progress{cluster=\"ns/a\",kind=\"Rebalance\"} 1"
        ));
    }

    #[test]
    fn step_durations_land_in_their_buckets() {
        let metrics = Metrics::new().expect("metrics register");
        let kind = OperationKind::RollingUpgrade;
        metrics.observe_step("ns/a", kind, "Restarting", Duration::from_secs(40));
        metrics.observe_step("ns/a", kind, "Restarting", Duration::from_secs(200));
        let text = metrics.encode().expect("encode");
        let series = "strom_operator_operation_step_duration_seconds";
        let labels = "cluster=\"ns/a\",kind=\"RollingUpgrade\",step=\"Restarting\"";
        assert!(
            text.contains(&format!("{series}_count{{{labels}}} 2")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{series}_sum{{{labels}}} 240")),
            "{text}"
        );
        assert!(text.contains(&format!("{series}_bucket{{{labels},le=\"60\"}} 1")));
        assert!(text.contains(&format!("{series}_bucket{{{labels},le=\"300\"}} 2")));
    }

    #[test]
    fn bytes_remaining_sum_their_sources_and_a_finished_source_leaves() {
        let metrics = Metrics::new().expect("metrics register");
        metrics.set_reassignment_bytes_remaining("ns/a", "Cluster", Some(1_000));
        metrics.set_reassignment_bytes_remaining("ns/a", "Topic/orders", Some(500));
        metrics.set_reassignment_bytes_remaining("ns/b", "Topic/orders", Some(7));
        let gauge = "strom_operator_reassignment_bytes_remaining";
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains(&format!("{gauge}{{cluster=\"ns/a\"}} 1500")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{gauge}{{cluster=\"ns/b\"}} 7")),
            "{text}"
        );
        metrics.set_reassignment_bytes_remaining("ns/a", "Cluster", None);
        metrics.set_reassignment_bytes_remaining("ns/a", "Topic/orders", Some(100));
        let text = metrics.encode().expect("encode");
        assert!(
            text.contains(&format!("{gauge}{{cluster=\"ns/a\"}} 100")),
            "{text}"
        );
    }

    #[test]
    fn blocked_rolls_are_per_cluster() {
        let metrics = Metrics::new().expect("metrics register");
        metrics.set_roll_blocked("ns/a", true);
        metrics.set_roll_blocked("ns/b", true);
        metrics.set_roll_blocked("ns/b", false);
        let text = metrics.encode().expect("encode");
        assert!(text.contains("strom_operator_blocked_rolls{cluster=\"ns/a\"} 1"));
        assert!(text.contains("strom_operator_blocked_rolls{cluster=\"ns/b\"} 0"));
    }

    #[test]
    fn a_forgotten_cluster_has_no_series_left() {
        let metrics = Metrics::new().expect("metrics register");
        metrics.set_operation("ns/gone", Some(OperationKind::ScaleDown));
        metrics.observe_step(
            "ns/gone",
            OperationKind::ScaleDown,
            "Reassigning",
            Duration::from_secs(3),
        );
        metrics.set_reassignment_bytes_remaining("ns/gone", "Cluster", Some(9));
        metrics.set_roll_blocked("ns/gone", true);
        metrics.set_roll_blocked("ns/kept", true);
        metrics.forget_cluster("ns/gone");
        let text = metrics.encode().expect("encode");
        assert!(!text.contains("ns/gone"), "{text}");
        assert!(text.contains("strom_operator_blocked_rolls{cluster=\"ns/kept\"} 1"));
    }
}
