//! Helpers for the tests that prove the Grafana dashboards and Prometheus rules in `deploy/`
//! work against real processes.
//!
//! Layout:
//! - `grafana`: the committed dashboards and rule files; the panels, template variables and
//!   PromQL queries of a dashboard; Grafana variable substitution.
//! - `promql`: the metric names an expression reads.
//! - `prometheus`: a Prometheus process on a loopback port, and a minimal HTTP GET.

mod grafana;
mod prometheus;
mod promql;

pub use grafana::{
    DashboardQuery, dashboard_queries, dashboards, grafana_dir, label_values_selector,
    legend_labels, panels, prometheus_dir, rule_files, substitute_variables, variable_names,
};
pub use prometheus::{HttpResponse, PrometheusProcess, http_get, url_encode};
pub use promql::metric_names;
