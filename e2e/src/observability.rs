//! Helpers for the tests that prove the Grafana dashboards and Prometheus rules in `deploy/`
//! work: a real Prometheus process, a minimal HTTP GET, the walk over a dashboard's panels and
//! queries, Grafana variable substitution, and extraction of the metric names a PromQL
//! expression reads.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::{repo_root, tool, wait_until};

/// How long Prometheus may take to report ready (it takes under a second on a quiet machine).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts at starting Prometheus on a fresh port, in case another process took the port
/// between our probe and Prometheus binding it.
const START_ATTEMPTS: usize = 5;
/// Timeout of one HTTP request to Prometheus or a broker's admin endpoint.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

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
            let json = serde_json::from_str(&text).with_context(|| format!("{name} is not valid JSON"))?;
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
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
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
                out.push(DashboardQuery { origin: format!("{file} › {title} › {ref_id}"), raw: expr.to_owned() });
            }
        }
    }
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or("?");
        let definition = variable["definition"].as_str().unwrap_or_default();
        out.push(DashboardQuery {
            origin: format!("{file} › variable ${name}"),
            raw: label_values_selector(definition).unwrap_or(definition).to_owned(),
        });
    }
    out
}

/// The selector of Grafana's `label_values(selector, label)`, `None` for any other query.
pub fn label_values_selector(definition: &str) -> Option<&str> {
    let inner = definition.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, _label) = inner.rsplit_once(',')?;
    Some(selector.trim())
}

/// Replaces Grafana's variables in `expr` the way a dashboard set to "All" over a short range
/// sends it: interval variables by fixed durations, the dashboard's own variables by their
/// `.*` "All" value. Fails on a variable it does not know, naming it.
pub fn substitute_variables(expr: &str, variables: &[String]) -> anyhow::Result<String> {
    let builtins = [("__rate_interval", "1m"), ("__interval", "15s"), ("__range", "1h")];
    let mut out = String::with_capacity(expr.len());
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced.find('}').with_context(|| format!("unclosed ${{ in {expr}"))?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
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

/// PromQL words that look like identifiers but are not metric names.
const PROMQL_KEYWORDS: [&str; 11] =
    ["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "inf", "nan"];
/// Keywords followed by a parenthesised list of label names, not an expression.
const LABEL_LIST_KEYWORDS: [&str; 6] = ["by", "without", "on", "ignoring", "group_left", "group_right"];

/// The metric names an expression reads: identifiers that are not functions, aggregations,
/// keywords or label names. Label matchers (`{...}`), ranges (`[...]`), strings and numbers are
/// skipped. Enough for the expressions in `deploy/` (it is not a full PromQL parser:
/// `{__name__="x"}` selectors are not reported).
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' || c == '[' {
            i = skip_group(&chars, i);
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let lowered = word.to_ascii_lowercase();
            if LABEL_LIST_KEYWORDS.contains(&lowered.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_group(&chars, next);
                }
            } else if chars.get(next) != Some(&'(')
                && !PROMQL_KEYWORDS.contains(&lowered.as_str())
                && !starts_with_word(&chars[next..], &["by", "without"])
            {
                // Neither a function call, a keyword nor an aggregation written `sum by (...) (...)`.
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Whether `chars` starts with one of `words` as a whole word (case-insensitive).
fn starts_with_word(chars: &[char], words: &[&str]) -> bool {
    let end = chars.iter().position(|c| !(c.is_ascii_alphanumeric() || *c == '_')).unwrap_or(chars.len());
    let word: String = chars[..end].iter().collect::<String>().to_ascii_lowercase();
    words.contains(&word.as_str())
}

/// Index just past the string literal opening at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '\\' if quote != '`' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Index just past the bracketed group (`{…}`, `[…]` or `(…)`) opening at `start`, skipping
/// strings inside it.
fn skip_group(chars: &[char], start: usize) -> usize {
    let open = chars[start];
    let close = match open {
        '{' => '}',
        '[' => ']',
        _ => ')',
    };
    let mut depth = 0usize;
    let mut i = start;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(chars, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// A response to an HTTP GET.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body, de-chunked.
    pub body: String,
}

/// `GET url` over HTTP/1.1 with `Connection: close` (only `http://host:port/path` URLs).
pub fn http_get(url: &str) -> anyhow::Result<HttpResponse> {
    let rest = url.strip_prefix("http://").with_context(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).with_context(|| format!("reading the response to GET {url}"))?;
    let text = String::from_utf8(raw).with_context(|| format!("GET {url} answered non-UTF-8"))?;
    let (head, body) = text.split_once("\r\n\r\n").with_context(|| format!("GET {url}: no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {url}: bad status line in {head:?}"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(body).with_context(|| format!("GET {url}: bad chunked body"))? } else { body.to_owned() };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut body: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").context("chunk size line")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16).with_context(|| format!("chunk size {size_hex:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).context("chunk shorter than its size")?;
        out.push_str(chunk);
        body = rest.get(size..).and_then(|r| r.strip_prefix("\r\n")).context("chunk not followed by CRLF")?;
    }
}

/// Percent-encodes `s` for a URL query value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Prometheus server (Debian's `prometheus`) on a loopback port, with its config and TSDB in
/// a temporary directory; killed on drop.
#[derive(Debug)]
pub struct PrometheusProcess {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl PrometheusProcess {
    /// Writes `config` (a `prometheus.yml`) and starts Prometheus on a free loopback port,
    /// waiting until `/-/ready` answers 200.
    pub fn start(config: &str) -> anyhow::Result<PrometheusProcess> {
        let binary = tool("prometheus")?;
        let dir = tempfile::tempdir().context("creating Prometheus's directory")?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).context("writing prometheus.yml")?;
        let mut last_error = None;
        for attempt in 0..START_ATTEMPTS {
            // Prometheus cannot bind port 0 and report the port back, so take a free port
            // from the OS and release it; another process may grab it first, hence the retry.
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let log_path = dir.path().join(format!("prometheus-{attempt}.log"));
            let log = std::fs::File::create(&log_path)?;
            let child = Command::new(&binary)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("spawning {}", binary.display()))?;
            let mut child = child;
            let url = format!("http://127.0.0.1:{port}");
            match wait_ready(&mut child, &url) {
                Ok(()) => return Ok(PrometheusProcess { child, url, dir }),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    last_error = Some(e.context(format!("Prometheus log:\n{log}")));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("Prometheus did not start")))
    }

    /// Base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The directory holding `prometheus.yml`, for files the config refers to.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `GET <url><path_and_query>` parsed as Prometheus's JSON envelope; fails unless
    /// `status` is `success`, with Prometheus's error text.
    pub fn api(&self, path_and_query: &str) -> anyhow::Result<Value> {
        let response = http_get(&format!("{}{path_and_query}", self.url))?;
        let json: Value = serde_json::from_str(&response.body)
            .with_context(|| format!("{path_and_query} answered {} {}", response.status, response.body))?;
        if json["status"] != "success" {
            bail!("{} {}: {}", json["errorType"].as_str().unwrap_or("error"), path_and_query, json["error"].as_str().unwrap_or_default());
        }
        Ok(json["data"].clone())
    }

    /// Evaluates `expr` at the current time (`/api/v1/query`) and returns the result vector.
    /// A parse or evaluation error is an error naming Prometheus's message.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => Ok(data["result"].as_array().cloned().unwrap_or_default()),
            Some("scalar") | Some("string") => Ok(vec![data["result"].clone()]),
            other => bail!("unexpected result type {other:?} for {expr}"),
        }
    }

    /// The single value of an instant query that must return exactly one sample.
    pub fn query_value(&self, expr: &str) -> anyhow::Result<Option<f64>> {
        let result = self.query(expr)?;
        match result.as_slice() {
            [] => Ok(None),
            [one] => {
                let value = one["value"][1].as_str().with_context(|| format!("no value in {one}"))?;
                Ok(Some(value.parse().with_context(|| format!("value {value:?} of {expr}"))?))
            }
            many => bail!("{expr} returned {} series, expected one: {many:?}", many.len()),
        }
    }

    /// Every metric name Prometheus has stored.
    pub fn metric_names(&self) -> anyhow::Result<BTreeSet<String>> {
        let data = self.api("/api/v1/label/__name__/values")?;
        Ok(data.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect())
    }
}

/// Waits until the Prometheus `child` serving `url` answers `/-/ready`, or fails when it exits.
fn wait_ready(child: &mut Child, url: &str) -> anyhow::Result<()> {
    let ready_url = format!("{url}/-/ready");
    wait_until("Prometheus /-/ready", READY_DEADLINE, || {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(Err(anyhow::anyhow!("Prometheus exited with {status}")));
        }
        match http_get(&ready_url) {
            Ok(r) if r.status == 200 => Some(Ok(())),
            _ => None,
        }
    })?
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skips_functions_keywords_labels_and_numbers() {
        let cases: [(&str, &[&str]); 8] = [
            (
                r#"sum by (instance) (rate(kafka_server_brokertopicmetrics_bytesin_total{topic="",cluster=~".*"}[1m]))"#,
                &["kafka_server_brokertopicmetrics_bytesin_total"],
            ),
            (
                r#"histogram_quantile(0.99, sum by (api, le) (rate(strom_request_duration_seconds_bucket{api!~"Fetch|x}"}[5m]))) > 1"#,
                &["strom_request_duration_seconds_bucket"],
            ),
            (r#"count(up{job=~".*strom.*"} == 0) or vector(0)"#, &["up"]),
            ("sum(a) / sum(b) > 0.1 unless on (kind) c offset 5m", &["a", "b", "c"]),
            ("predict_linear(x[6h], 24 * 3600) < 0 and y / z < 1e-3", &["x", "y", "z"]),
            ("max by (topic, partition) (m1) - ignoring (partition) group_left (topic) m2", &["m1", "m2"]),
            ("sum without (le) (rate(h_bucket[1m])) > bool 0", &["h_bucket"]),
            ("1 + 2", &[]),
        ];
        for (expr, want) in cases {
            let got: Vec<String> = metric_names(expr).into_iter().collect();
            assert_eq!(got, want, "{expr}");
        }
    }

    #[test]
    fn grafana_variables_are_substituted() {
        let vars = vec!["datasource".to_owned(), "cluster".to_owned(), "topic".to_owned()];
        let got = substitute_variables(r#"rate(m{cluster=~"$cluster",topic=~"${topic}"}[$__rate_interval])"#, &vars)
            .expect("known variables");
        assert_eq!(got, r#"rate(m{cluster=~".*",topic=~".*"}[1m])"#);
        let err = substitute_variables(r#"m{pod=~"$pod"}"#, &vars).expect_err("undefined variable");
        assert!(err.to_string().contains("$pod"), "{err}");
    }

    #[test]
    fn label_values_selector_is_the_first_argument() {
        assert_eq!(label_values_selector(r#"label_values(m{a=~"$b"}, ns)"#), Some(r#"m{a=~"$b"}"#));
        assert_eq!(label_values_selector("label_values(m, ns)"), Some("m"));
        assert_eq!(label_values_selector("query_result(m)"), None);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n").expect("valid"), "hello, world");
        assert!(dechunk("5\r\nhel").is_err());
    }

    #[test]
    fn url_encoding_keeps_unreserved_characters() {
        assert_eq!(url_encode(r#"sum(x{a="b c"})"#), "sum%28x%7Ba%3D%22b%20c%22%7D%29");
    }
}
