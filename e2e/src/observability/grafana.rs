//! The shipped dashboards and rule files, and the PromQL queries inside Grafana dashboards.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::repo_root;

/// `deploy/grafana`, where the dashboards are committed.
pub fn grafana_dir() -> PathBuf {
    repo_root().join("deploy/grafana")
}

/// `deploy/prometheus`, where the rule files and the example scrape config are committed.
pub fn prometheus_dir() -> PathBuf {
    repo_root().join("deploy/prometheus")
}

/// Every `*.json` dashboard under `deploy/grafana`, parsed, sorted by file name.
pub fn dashboards() -> anyhow::Result<Vec<(String, Value)>> {
    files_with_suffix(&grafana_dir(), ".json")?
        .into_iter()
        .map(|path| {
            let name = file_name(&path);
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {name}"))?;
            let json =
                serde_json::from_str(&text).with_context(|| format!("{name} is not valid JSON"))?;
            Ok((name, json))
        })
        .collect()
}

/// Every `*.rules.yaml` under `deploy/prometheus`, sorted by file name.
pub fn rule_files() -> anyhow::Result<Vec<PathBuf>> {
    files_with_suffix(&prometheus_dir(), ".rules.yaml")
}

fn files_with_suffix(dir: &Path, suffix: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && file_name(&path).ends_with(suffix) {
            files.push(path);
        }
    }
    files.sort();
    ensure!(!files.is_empty(), "no {suffix} files in {}", dir.display());
    Ok(files)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every panel of a dashboard that shows data, in order: top-level panels and the panels
/// nested in collapsed rows. Row panels themselves (containers) are not returned.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(list: Option<&'a Value>, out: &mut Vec<&'a Value>) {
        for panel in list.and_then(Value::as_array).into_iter().flatten() {
            if panel["type"] == "row" {
                walk(panel.get("panels"), out);
            } else {
                out.push(panel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dashboard.get("panels"), &mut out);
    out
}

/// Names of the dashboard's template variables (`templating.list[].name`).
pub fn variable_names(dashboard: &Value) -> Vec<String> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect()
}

/// A PromQL query of a dashboard: a panel target or a query variable.
#[derive(Debug, Clone)]
pub struct DashboardQuery {
    /// Where it comes from, for failure messages: `file › panel title › refId`.
    pub origin: String,
    /// The expression as committed, with Grafana variables.
    pub raw: String,
    /// Labels the result series must carry: those the panel's legend names (`{{instance}}`),
    /// or the label a variable lists.
    pub labels: Vec<String>,
}

/// Every PromQL query of a dashboard: each panel target's `expr`, and for each query
/// variable the series selector of its `label_values(selector, label)`.
pub fn dashboard_queries(file: &str, dashboard: &Value) -> Vec<DashboardQuery> {
    let mut out = Vec::new();
    for panel in panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("<untitled>");
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let ref_id = target["refId"].as_str().unwrap_or("?");
                out.push(DashboardQuery {
                    origin: format!("{file} › {title} › {ref_id}"),
                    raw: expr.to_owned(),
                    labels: legend_labels(target["legendFormat"].as_str().unwrap_or_default()),
                });
            }
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or("?");
        let definition = variable["definition"].as_str().unwrap_or_default();
        let (selector, label) = match label_values_selector(definition) {
            Some((selector, label)) => (selector, vec![label.to_owned()]),
            None => (definition, Vec::new()),
        };
        out.push(DashboardQuery {
            origin: format!("{file} › variable ${name}"),
            raw: selector.to_owned(),
            labels: label,
        });
    }
    out
}

/// The selector and label of Grafana's `label_values(selector, label)`, `None` for any other
/// query.
pub fn label_values_selector(definition: &str) -> Option<(&str, &str)> {
    let inner = definition
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim(), label.trim()))
}

/// The labels a Grafana legend format refers to: `{{topic}}-{{partition}}` → topic, partition.
pub fn legend_labels(legend: &str) -> Vec<String> {
    legend
        .split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}"))
        .map(|(label, _)| label.trim().to_owned())
        .collect()
}

/// Replaces Grafana's variables in `expr` the way a dashboard set to "All" over a short range
/// sends it: interval variables by fixed durations, the dashboard's own variables by their
/// `.*` "All" value. Fails on a variable it does not know, naming it.
pub fn substitute_variables(expr: &str, variables: &[String]) -> anyhow::Result<String> {
    let builtins = [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "1h"),
    ];
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced
                    .find('}')
                    .with_context(|| format!("unclosed ${{ in {expr}"))?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        let value = match builtins.iter().find(|(b, _)| *b == name) {
            Some((_, value)) => *value,
            None if variables.iter().any(|v| v == name) => ".*",
            None => bail!("unknown variable ${name} in {expr}"),
        };
        out.push_str(value);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_are_substituted() {
        let vars = vec![
            "datasource".to_owned(),
            "cluster".to_owned(),
            "topic".to_owned(),
        ];
        let got = substitute_variables(
            r#"rate(m{cluster=~"$cluster",topic=~"${topic}"}[$__rate_interval])"#,
            &vars,
        )
        .expect("known variables");
        assert_eq!(got, r#"rate(m{cluster=~".*",topic=~".*"}[1m])"#);
        let err = substitute_variables(r#"m{pod=~"$pod"}"#, &vars).expect_err("undefined variable");
        assert!(err.to_string().contains("$pod"), "{err}");
    }

    #[test]
    fn label_values_selector_splits_selector_and_label() {
        assert_eq!(
            label_values_selector(r#"label_values(m{a=~"$b"}, ns)"#),
            Some((r#"m{a=~"$b"}"#, "ns"))
        );
        assert_eq!(
            label_values_selector("label_values(m, ns)"),
            Some(("m", "ns"))
        );
        assert_eq!(label_values_selector("query_result(m)"), None);
    }

    #[test]
    fn legend_labels_are_the_templated_names() {
        assert_eq!(
            legend_labels("{{topic}}-{{ partition }}"),
            ["topic", "partition"]
        );
        assert_eq!(legend_labels("produce"), Vec::<String>::new());
        assert_eq!(legend_labels("__auto"), Vec::<String>::new());
    }
}
