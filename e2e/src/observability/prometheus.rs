//! A real Prometheus process (Debian's `prometheus`) on a loopback port, and the minimal HTTP
//! client the tests talk to it and to a broker's admin endpoint with.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

use crate::{tool, wait_until};

/// How long Prometheus may take to report ready (it takes under a second on a quiet machine).
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts at starting Prometheus on a fresh port, in case another process took the port
/// between our probe and Prometheus binding it.
const START_ATTEMPTS: usize = 5;
/// Timeout of one HTTP request to Prometheus or a broker's admin endpoint.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

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
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("not an http:// URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAccept: */*\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("reading the response to GET {url}"))?;
    let text = String::from_utf8(raw).with_context(|| format!("GET {url} answered non-UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("GET {url}: no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("GET {url}: bad status line in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body).with_context(|| format!("GET {url}: bad chunked body"))?
    } else {
        body.to_owned()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut body: &str) -> anyhow::Result<String> {
    let mut out = String::new();
    loop {
        let (size_line, rest) = body.split_once("\r\n").context("chunk size line")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("chunk size {size_hex:?}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).context("chunk shorter than its size")?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .context("chunk not followed by CRLF")?;
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
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
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
        let json: Value = serde_json::from_str(&response.body).with_context(|| {
            format!(
                "{path_and_query} answered {} {}",
                response.status, response.body
            )
        })?;
        if json["status"] != "success" {
            bail!(
                "{} {}: {}",
                json["errorType"].as_str().unwrap_or("error"),
                path_and_query,
                json["error"].as_str().unwrap_or_default()
            );
        }
        Ok(json["data"].clone())
    }

    /// Evaluates `expr` at the current time (`/api/v1/query`) and returns the result vector.
    /// A parse or evaluation error is an error naming Prometheus's message.
    pub fn query(&self, expr: &str) -> anyhow::Result<Vec<Value>> {
        let data = self.api(&format!("/api/v1/query?query={}", url_encode(expr)))?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
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
                let value = one["value"][1]
                    .as_str()
                    .with_context(|| format!("no value in {one}"))?;
                Ok(Some(
                    value
                        .parse()
                        .with_context(|| format!("value {value:?} of {expr}"))?,
                ))
            }
            many => bail!(
                "{expr} returned {} series, expected one: {many:?}",
                many.len()
            ),
        }
    }

    /// Every metric name Prometheus has stored.
    pub fn metric_names(&self) -> anyhow::Result<BTreeSet<String>> {
        let data = self.api("/api/v1/label/__name__/values")?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
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
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n").expect("valid"),
            "hello, world"
        );
        assert!(dechunk("5\r\nhel").is_err());
    }

    #[test]
    fn url_encoding_keeps_unreserved_characters() {
        assert_eq!(
            url_encode(r#"sum(x{a="b c"})"#),
            "sum%28x%7Ba%3D%22b%20c%22%7D%29"
        );
    }
}
