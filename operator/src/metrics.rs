//! The operator's own Prometheus metrics, served on `/metrics`:
//!
//! - `strom_operator_reconciles_total{kind}`: reconcile passes started (`kind`: Cluster, Topic);
//! - `strom_operator_reconcile_errors_total{kind,reason}`: passes that failed or ended in a
//!   refusal/unavailable condition, by reason;
//! - `strom_operator_reconcile_duration_seconds{kind}`: time per pass;
//! - `strom_operator_operations_in_progress{kind}`: clusters with a day-2 operation of `kind`
//!   (Provisioning, ScaleUp, ScaleDown, RollingUpgrade, Rebalance) in progress.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

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
    /// Operation per cluster (`namespace/name`), to keep the gauge exact across passes.
    running: Mutex<HashMap<String, OperationKind>>,
}

const OPERATION_KINDS: [OperationKind; 5] = [
    OperationKind::Provisioning,
    OperationKind::ScaleUp,
    OperationKind::ScaleDown,
    OperationKind::RollingUpgrade,
    OperationKind::Rebalance,
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
                "Clusters with a day-2 operation in progress",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(operations.clone()))?;
        for kind in OPERATION_KINDS {
            operations.with_label_values(&[kind.as_str()]).set(0);
        }
        Ok(Self {
            registry,
            reconciles,
            errors,
            duration,
            operations,
            running: Mutex::new(HashMap::new()),
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

    /// Records the operation a cluster runs (`None`: none), updating the gauge.
    pub fn set_operation(&self, cluster: &str, operation: Option<OperationKind>) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match operation {
            Some(kind) => running.insert(cluster.to_owned(), kind),
            None => running.remove(cluster),
        };
        for kind in OPERATION_KINDS {
            let count = running.values().filter(|k| **k == kind).count();
            self.operations
                .with_label_values(&[kind.as_str()])
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
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
        assert!(text.contains("strom_operator_operations_in_progress{kind=\"Provisioning\"} 1"));
        assert!(text.contains("strom_operator_operations_in_progress{kind=\"ScaleUp\"} 0"));
    }
}
