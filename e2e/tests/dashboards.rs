//! Static checks of the shipped Grafana dashboards (`deploy/grafana`) and Prometheus files
//! (`deploy/prometheus`): what Grafana and Prometheus need to load and show them, and what an
//! operator needs to act on an alert. `e2e/tests/observability.rs` runs the same queries and
//! rules against a real broker.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use strom_e2e::observability::{
    PrometheusProcess, dashboard_queries, dashboards, metric_names, panels, prometheus_dir,
    rule_files, substitute_variables, variable_names,
};
use strom_e2e::{repo_root, tool, wait_until};

/// Metrics the dashboards and rules may read that the broker does not define, and who does.
const EXTERNAL_METRICS: [(&str, &str); 10] = [
    ("up", "Prometheus, for every scrape target"),
    (
        "kubelet_volume_stats_available_bytes",
        "the kubelet, for every mounted PersistentVolumeClaim",
    ),
    (
        "kubelet_volume_stats_capacity_bytes",
        "the kubelet, for every mounted PersistentVolumeClaim",
    ),
    ("strom_operator_reconciles_total", "the operator's /metrics"),
    (
        "strom_operator_reconcile_errors_total",
        "the operator's /metrics",
    ),
    (
        "strom_operator_reconcile_duration_seconds_bucket",
        "the operator's /metrics",
    ),
    (
        "strom_operator_operations_in_progress",
        "the operator's /metrics",
    ),
    (
        "strom_operator_operation_step_duration_seconds_bucket",
        "the operator's /metrics",
    ),
    (
        "strom_operator_reassignment_bytes_remaining",
        "the operator's /metrics",
    ),
    ("strom_operator_blocked_rolls", "the operator's /metrics"),
];

/// The replication metrics an operator watches, by their JMX-exporter names: each has a panel
/// on the cluster dashboard, and those marked `true` are read by an alert.
const REPLICATION_METRICS: [(&str, bool); 12] = [
    (
        "kafka_server_replicamanager_underreplicatedpartitions",
        true,
    ),
    (
        "kafka_server_replicamanager_underminisrpartitioncount",
        true,
    ),
    (
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        true,
    ),
    ("kafka_server_replicamanager_isrshrinks_total", true),
    ("kafka_server_replicamanager_isrexpands_total", true),
    ("kafka_server_replicamanager_leadercount", false),
    ("kafka_server_replicamanager_partitioncount", false),
    (
        "kafka_server_brokertopicmetrics_replicationbytesin_total",
        false,
    ),
    (
        "kafka_server_brokertopicmetrics_replicationbytesout_total",
        false,
    ),
    ("kafka_server_replicafetchermanager_maxlag", true),
    ("kafka_server_replicamanager_reassigningpartitions", true),
    (
        "kafka_controller_controllerstats_uncleanleaderelections_total",
        true,
    ),
];

/// Alerts on events that may have lost acknowledged records: paging, not a ticket.
const CRITICAL_METRICS: [&str; 1] =
    ["kafka_controller_controllerstats_uncleanleaderelections_total"];

/// The metric names the broker's metrics module (`broker/src/metrics.rs` and
/// `broker/src/metrics/`) registers: every string literal shaped like a Kafka or Strom metric
/// name, plus the series a histogram family exposes.
fn broker_metric_names() -> anyhow::Result<BTreeSet<String>> {
    let module = repo_root().join("broker/src/metrics.rs");
    let mut source = std::fs::read_to_string(&module).context("reading broker/src/metrics.rs")?;
    let submodules = repo_root().join("broker/src/metrics");
    if submodules.is_dir() {
        for entry in std::fs::read_dir(&submodules)? {
            let path = entry?.path();
            // The unit tests' literals are expectations, not registrations.
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                source.push_str(&std::fs::read_to_string(&path)?);
            }
        }
    }
    let mut names = BTreeSet::new();
    for literal in source.split('"').skip(1).step_by(2) {
        let is_name = (literal.starts_with("kafka_") || literal.starts_with("strom_"))
            && literal
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if is_name {
            names.insert(literal.to_owned());
        }
    }
    ensure!(
        names.len() > 20,
        "found only {names:?} in broker/src/metrics.rs"
    );
    for histogram in ["strom_request_duration_seconds"] {
        ensure!(
            names.contains(histogram),
            "histogram {histogram} is not registered"
        );
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{histogram}{suffix}"));
        }
    }
    Ok(names)
}

fn check_known_metrics(origin: &str, expr: &str, known: &BTreeSet<String>) -> Vec<String> {
    metric_names(expr)
        .into_iter()
        .filter(|name| !known.contains(name) && !EXTERNAL_METRICS.iter().any(|(n, _)| n == name))
        .map(|name| {
            format!(
                "{origin}: metric {name} is neither defined in broker/src/metrics.rs nor external"
            )
        })
        .collect()
}

fn prometheus_datasource() -> Value {
    json!({"type": "prometheus", "uid": "${datasource}"})
}

#[test]
fn dashboards_are_complete_and_use_the_datasource_variable() -> anyhow::Result<()> {
    let known = broker_metric_names()?;
    let all = dashboards()?;
    let names: BTreeSet<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    for wanted in [
        "strom-cluster.json",
        "strom-topics.json",
        "strom-consumer-groups.json",
        "strom-operator.json",
    ] {
        ensure!(names.contains(wanted), "deploy/grafana/{wanted} is missing");
    }

    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for (file, dashboard) in &all {
        let uid = dashboard["uid"].as_str().unwrap_or_default();
        if uid.is_empty() || !uids.insert(uid.to_owned()) {
            problems.push(format!("{file}: uid {uid:?} is empty or not unique"));
        }
        if dashboard["title"].as_str().unwrap_or_default().is_empty() {
            problems.push(format!("{file}: no title"));
        }
        problems.extend(variable_problems(file, dashboard));

        let mut ids = BTreeSet::new();
        let found = panels(dashboard);
        if found.is_empty() {
            problems.push(format!("{file}: no panels"));
        }
        for panel in found {
            let title = panel["title"].as_str().unwrap_or_default();
            let at = format!("{file} › {title:?}");
            if title.is_empty() {
                problems.push(format!("{at}: panel {} has no title", panel["id"]));
            }
            if !panel["id"].as_i64().is_some_and(|id| ids.insert(id)) {
                problems.push(format!("{at}: id {} missing or duplicated", panel["id"]));
            }
            if panel["datasource"] != prometheus_datasource() {
                problems.push(format!(
                    "{at}: datasource is {} instead of the ${{datasource}} variable",
                    panel["datasource"]
                ));
            }
            if panel["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                problems.push(format!("{at}: no fieldConfig.defaults.unit"));
            }
            if panel["description"].as_str().unwrap_or_default().is_empty() {
                problems.push(format!("{at}: no description"));
            }
            let grid = &panel["gridPos"];
            if !(grid["w"].as_i64().is_some_and(|w| w > 0 && w <= 24)
                && grid["h"].as_i64().is_some_and(|h| h > 0))
            {
                problems.push(format!("{at}: bad gridPos {grid}"));
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                problems.push(format!("{at}: no query"));
            }
            for target in &targets {
                if target["expr"]
                    .as_str()
                    .unwrap_or_default()
                    .trim()
                    .is_empty()
                {
                    problems.push(format!("{at}: target {} has no expr", target["refId"]));
                }
                if target
                    .get("datasource")
                    .is_some_and(|d| *d != prometheus_datasource())
                {
                    problems.push(format!(
                        "{at}: target {} has datasource {}",
                        target["refId"], target["datasource"]
                    ));
                }
            }
        }

        let variables = variable_names(dashboard);
        for query in dashboard_queries(file, dashboard) {
            match substitute_variables(&query.raw, &variables) {
                Ok(expr) => problems.extend(check_known_metrics(&query.origin, &expr, &known)),
                Err(e) => problems.push(format!("{}: {e}", query.origin)),
            }
        }
    }
    ensure!(
        problems.is_empty(),
        "dashboard problems:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// The datasource variable, and `namespace` (every dashboard) and `cluster` (broker
/// dashboards) variables that list label values and match everything when the label is absent.
fn variable_problems(file: &str, dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let list = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let by_name: BTreeMap<&str, &Value> = list
        .iter()
        .filter_map(|v| v["name"].as_str().map(|n| (n, v)))
        .collect();
    match by_name.get("datasource") {
        Some(ds) if ds["type"] == "datasource" && ds["query"] == "prometheus" => {}
        other => problems.push(format!(
            "{file}: no `datasource` variable of type datasource/prometheus: {other:?}"
        )),
    }
    let mut required = vec!["namespace"];
    if file != "strom-operator.json" {
        required.push("cluster");
    }
    for name in required {
        if !by_name.contains_key(name) {
            problems.push(format!("{file}: no `{name}` variable"));
        }
    }
    for variable in list.iter().filter(|v| v["type"] == "query") {
        let name = variable["name"].as_str().unwrap_or("?");
        let definition = variable["definition"].as_str().unwrap_or_default();
        if !definition.starts_with("label_values(") {
            problems.push(format!(
                "{file}: variable ${name} is not label_values-based: {definition:?}"
            ));
        }
        if variable["datasource"] != prometheus_datasource() {
            problems.push(format!(
                "{file}: variable ${name} does not use the ${{datasource}} variable"
            ));
        }
        if variable["includeAll"] != true || variable["allValue"] != ".*" {
            problems.push(format!(
                "{file}: variable ${name} needs includeAll with allValue \".*\""
            ));
        }
    }
    problems
}

#[test]
fn every_rule_has_severity_summary_and_description() -> anyhow::Result<()> {
    let known = broker_metric_names()?;
    let files = rule_files()?;
    let names: BTreeSet<String> = files
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for wanted in ["strom.rules.yaml", "operator.rules.yaml"] {
        ensure!(
            names.contains(wanted),
            "deploy/prometheus/{wanted} is missing"
        );
    }

    // Prometheus itself parses the rule files and reports every rule as JSON.
    let rule_list: String = files
        .iter()
        .map(|p| format!("  - {}\n", p.display()))
        .collect();
    let prometheus = PrometheusProcess::start(&format!(
        "global:\n  evaluation_interval: 1s\nrule_files:\n{rule_list}scrape_configs: []\n"
    ))?;
    let rules = wait_until("every rule evaluated once", Duration::from_secs(30), || {
        let data = prometheus.api("/api/v1/rules").ok()?;
        let rules: Vec<Value> = data["groups"]
            .as_array()?
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        let evaluated = rules.iter().all(|r| {
            !r["lastEvaluation"]
                .as_str()
                .unwrap_or("0001")
                .starts_with("0001")
        });
        (evaluated && !rules.is_empty()).then_some(rules)
    })?;

    let mut problems = Vec::new();
    for rule in &rules {
        let name = rule["name"].as_str().unwrap_or("?");
        if rule["type"] != "alerting" {
            problems.push(format!("{name}: not an alerting rule"));
            continue;
        }
        match rule["labels"]["severity"].as_str() {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!(
                "{name}: severity {other:?} is not critical, warning or info"
            )),
        }
        for annotation in ["summary", "description"] {
            if rule["annotations"][annotation]
                .as_str()
                .unwrap_or_default()
                .trim()
                .len()
                < 10
            {
                problems.push(format!("{name}: no {annotation}"));
            }
        }
        if rule["annotations"].get("runbook_url").is_some() {
            problems.push(format!(
                "{name}: points at a runbook instead of describing the fix"
            ));
        }
        if rule["health"] != "ok" {
            problems.push(format!(
                "{name}: health {} ({})",
                rule["health"], rule["lastError"]
            ));
        }
        let expr = rule["query"].as_str().unwrap_or_default();
        problems.extend(check_known_metrics(name, expr, &known));
    }
    let mut written = 0;
    for file in &files {
        let text = std::fs::read_to_string(file)?;
        written += text
            .lines()
            .filter(|l| l.trim_start().starts_with("- alert:"))
            .count();
    }
    ensure!(
        written >= 16 && rules.len() == written,
        "the rule files hold {written} alerts (at least 16 expected), Prometheus loaded {}",
        rules.len()
    );
    for (metric, alerted) in REPLICATION_METRICS {
        let readers: Vec<&Value> = rules
            .iter()
            .filter(|r| metric_names(r["query"].as_str().unwrap_or_default()).contains(metric))
            .collect();
        if alerted && readers.is_empty() {
            problems.push(format!("no alert reads {metric}"));
        }
        if CRITICAL_METRICS.contains(&metric)
            && readers
                .iter()
                .any(|r| r["labels"]["severity"] != "critical")
        {
            problems.push(format!("every alert on {metric} must be critical"));
        }
    }
    ensure!(
        problems.is_empty(),
        "rule problems:\n{}",
        problems.join("\n")
    );
    Ok(())
}

/// Every replication metric an operator watches has a panel on the cluster dashboard, in its
/// Health or Replication row.
#[test]
fn replication_metrics_are_on_the_cluster_dashboard() -> anyhow::Result<()> {
    let all = dashboards()?;
    let (file, dashboard) = all
        .iter()
        .find(|(name, _)| name == "strom-cluster.json")
        .context("deploy/grafana/strom-cluster.json is missing")?;
    let variables = variable_names(dashboard);
    let mut shown: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut row = String::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        if panel["type"] == "row" {
            row = panel["title"].as_str().unwrap_or_default().to_owned();
            continue;
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr =
                substitute_variables(target["expr"].as_str().unwrap_or_default(), &variables)?;
            for name in metric_names(&expr) {
                shown.entry(name).or_default().insert(row.clone());
            }
        }
    }
    let mut problems = Vec::new();
    for (metric, _) in REPLICATION_METRICS {
        match shown.get(metric) {
            Some(rows) if rows.iter().any(|r| r == "Health" || r == "Replication") => {}
            Some(rows) => problems.push(format!(
                "{file}: {metric} is shown only in rows {rows:?}, not Health or Replication"
            )),
            None => problems.push(format!("{file}: no panel shows {metric}")),
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

/// Grafana pushes overlapping panels around on load, so a layout that overlaps is not the one
/// committed. Rows take a grid line; the panels of a collapsed row sit where they appear when it
/// is expanded.
#[test]
fn dashboard_panels_do_not_overlap() -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for (file, dashboard) in dashboards()? {
        let mut placed: Vec<(String, [i64; 4])> = Vec::new();
        let mut pending: Vec<&Value> = dashboard["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        while let Some(panel) = pending.pop() {
            pending.extend(panel["panels"].as_array().into_iter().flatten());
            let grid = &panel["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| grid[k].as_i64().unwrap_or(0));
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for (other, [ox, oy, ow, oh]) in &placed {
                if x < ox + ow && *ox < x + w && y < oy + oh && *oy < y + h {
                    problems.push(format!("{file}: {title:?} overlaps {other:?}"));
                }
            }
            placed.push((title, [x, y, w, h]));
        }
    }
    ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

fn run_promtool(args: &[&str], dir: &Path) -> anyhow::Result<()> {
    let promtool = tool("promtool")?;
    let output = Command::new(&promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .with_context(|| format!("running {}", promtool.display()))?;
    ensure!(
        output.status.success(),
        "promtool {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[test]
fn promtool_checks_the_rule_files() -> anyhow::Result<()> {
    let files: Vec<String> = rule_files()?
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut args = vec!["check", "rules"];
    args.extend(files.iter().map(String::as_str));
    run_promtool(&args, &prometheus_dir())
}

/// The alerts fire on the series they are meant for, with rendered text, and stay quiet on
/// the near misses next to them (`e2e/testdata/observability/*.rules.test.yaml`).
#[test]
fn alert_rules_pass_their_promtool_unit_tests() -> anyhow::Result<()> {
    let dir = repo_root().join("e2e/testdata/observability");
    run_promtool(
        &[
            "test",
            "rules",
            "strom.rules.test.yaml",
            "operator.rules.test.yaml",
        ],
        &dir,
    )
}

/// Debian's Prometheus is built without Kubernetes service discovery, so the example's
/// `kubernetes_sd_configs` are swapped for static targets before `promtool check config`; the
/// relabeling and everything else is checked as written.
#[test]
fn the_example_scrape_config_is_valid() -> anyhow::Result<()> {
    let dir = prometheus_dir();
    let example = std::fs::read_to_string(dir.join("scrape-config.example.yaml"))?;
    let kubernetes_sd = "    kubernetes_sd_configs:\n      - role: pod\n";
    ensure!(
        example.matches(kubernetes_sd).count() == 2,
        "expected the broker and operator jobs to use kubernetes_sd_configs with role pod"
    );
    let checkable = example.replace(
        kubernetes_sd,
        "    static_configs:\n      - targets: [\"127.0.0.1:9404\"]\n",
    );
    let temp = tempfile::tempdir()?;
    for rules in rule_files()? {
        let name = rules.file_name().context("rule file name")?;
        std::fs::copy(&rules, temp.path().join(name))?;
    }
    std::fs::write(temp.path().join("scrape-config.yaml"), checkable)?;
    run_promtool(&["check", "config", "scrape-config.yaml"], temp.path())
}
