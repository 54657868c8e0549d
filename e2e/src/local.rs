//! `strom-operator local` as a child process: a manifest file it watches, the state directory
//! it keeps, its ready line, its status files, and a clean stop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::sibling_binary;

/// How long the operator may take from spawn to its ready line: three brokers start, form a
/// quorum and register. Generous: CI machines are shared.
pub const READY_DEADLINE: Duration = Duration::from_secs(90);
/// How long a SIGTERM'd operator may take to stop its brokers and exit.
const STOP_DEADLINE: Duration = Duration::from_secs(90);

/// Broker settings for tests: liveness and ISR shrink within seconds, so faults show quickly.
pub const FAST_BROKER_CONFIG: &[(&str, &str)] = &[
    ("broker.heartbeat.interval.ms", "250"),
    ("broker.session.timeout.ms", "2000"),
    ("replica.lag.time.max.ms", "2000"),
];

/// A Cluster named `local` of `replicas` brokers (voters `voters`), with `config` as its broker
/// config, followed by `topics` (YAML documents, see [`topic`]).
pub fn cluster_manifest(
    replicas: i32,
    voters: i32,
    config: &[(&str, &str)],
    annotations: &[(&str, &str)],
    topics: &[String],
) -> String {
    let mut text =
        String::from("apiVersion: strom.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: local\n");
    if !annotations.is_empty() {
        text.push_str("  annotations:\n");
        for (k, v) in annotations {
            text.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    text.push_str(&format!(
        "spec:\n  replicas: {replicas}\n  controller:\n    voters: {voters}\n  storage:\n    size: 1Gi\n"
    ));
    if !config.is_empty() {
        text.push_str("  config:\n");
        for (k, v) in config {
            text.push_str(&format!("    {k}: \"{v}\"\n"));
        }
    }
    for topic in topics {
        text.push_str("---\n");
        text.push_str(topic);
    }
    text
}

/// A Topic on Cluster `local`.
pub fn topic(name: &str, partitions: i32, replication_factor: i32, min_insync: i32) -> String {
    format!(
        "apiVersion: strom.io/v1alpha1\nkind: Topic\nmetadata:\n  name: {name}\nspec:\n  \
         clusterRef:\n    name: local\n  partitions: {partitions}\n  replicationFactor: \
         {replication_factor}\n  config:\n    min.insync.replicas: \"{min_insync}\"\n"
    )
}

/// A running `strom-operator local`.
#[derive(Debug)]
pub struct LocalOperator {
    dir: tempfile::TempDir,
    child: Option<Child>,
    ready: mpsc::Receiver<String>,
    bootstrap: Option<String>,
}

impl LocalOperator {
    /// Writes `manifest` and starts the operator on it with a fresh state directory.
    pub fn start(manifest: &str) -> anyhow::Result<LocalOperator> {
        let dir = tempfile::Builder::new()
            .prefix("strom-local-")
            .tempdir()
            .context("creating the state directory")?;
        std::fs::write(dir.path().join("cluster.yaml"), manifest)?;
        let (child, ready) = spawn(dir.path())?;
        Ok(LocalOperator {
            dir,
            child: Some(child),
            ready,
            bootstrap: None,
        })
    }

    /// The manifest file.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.path().join("cluster.yaml")
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Broker `id`'s directory in the state directory.
    pub fn broker_dir(&self, id: i32) -> PathBuf {
        self.state_dir().join("brokers").join(id.to_string())
    }

    /// Replaces the manifest; the operator applies it on its next pass.
    pub fn apply(&self, manifest: &str) -> anyhow::Result<()> {
        let temp = self.dir.path().join("cluster.yaml.tmp");
        std::fs::write(&temp, manifest)?;
        std::fs::rename(&temp, self.manifest_path())?;
        Ok(())
    }

    /// Waits for the ready line and returns its bootstrap list.
    pub fn await_ready(&mut self, deadline: Duration) -> anyhow::Result<String> {
        if let Some(bootstrap) = &self.bootstrap {
            return Ok(bootstrap.clone());
        }
        let end = Instant::now() + deadline;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                bail!("strom-operator local exited before it was ready: {status}");
            }
            match self.ready.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let bootstrap = line
                        .strip_prefix("strom-operator local ready bootstrap=")
                        .context("ready line without bootstrap=")?
                        .trim()
                        .to_owned();
                    self.bootstrap = Some(bootstrap.clone());
                    return Ok(bootstrap);
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < end => continue,
                Err(_) => bail!("strom-operator local printed no ready line within {deadline:?}"),
            }
        }
    }

    /// The status file of `kind` `name`, parsed.
    pub fn status(&self, kind: &str, name: &str) -> Option<serde_yaml::Value> {
        let path = self
            .state_dir()
            .join("status")
            .join(format!("{}-{name}.yaml", kind.to_ascii_lowercase()));
        serde_yaml::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Whether `status` has condition `type_` with status `True`.
    pub fn condition_true(status: &serde_yaml::Value, type_: &str) -> bool {
        status["conditions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|c| c["type"].as_str() == Some(type_) && c["status"].as_str() == Some("True"))
    }

    /// The pid broker `id` was last started with, from the state directory.
    pub fn broker_pid(&self, id: i32) -> Option<u32> {
        let text = std::fs::read_to_string(self.broker_dir(id).join("process.yaml")).ok()?;
        let value: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
        u32::try_from(value["pid"].as_u64()?).ok()
    }

    /// Kills the operator with SIGKILL, leaving its brokers running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the operator again on the same manifest and state directory.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "the operator still runs");
        let (child, ready) = spawn(self.dir.path())?;
        self.child = Some(child);
        self.ready = ready;
        self.bootstrap = None;
        Ok(())
    }

    /// SIGTERM, then waits for the operator to stop its brokers and exit with status 0.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        signal(child.id(), "TERM")?;
        let end = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "strom-operator local exited with {status}"
                );
                return Ok(());
            }
            if Instant::now() >= end {
                let _ = child.kill();
                let _ = child.wait();
                bail!("strom-operator local did not exit within {STOP_DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Whether process `pid` exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.split_whitespace().nth(2) == Some("Z"))
}

/// Sends `signal` (`TERM`, `STOP`, `CONT`, `KILL`) to `pid`.
pub fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .context("running kill")?;
    anyhow::ensure!(status.success(), "kill -{signal} {pid} failed: {status}");
    Ok(())
}

fn spawn(dir: &Path) -> anyhow::Result<(Child, mpsc::Receiver<String>)> {
    let operator = sibling_binary("STROM_OPERATOR_BIN", "strom-operator")?;
    let broker = sibling_binary("STROM_BROKER_BIN", "strom-broker")?;
    let mut command = Command::new(&operator);
    command
        .arg("local")
        .arg("--file")
        .arg(dir.join("cluster.yaml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--broker-bin")
        .arg(&broker)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if std::env::var_os("RUST_LOG").is_none() {
        command.env("RUST_LOG", "info");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("spawning {}", operator.display()))?;
    let stdout = child.stdout.take().context("operator stdout is piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("strom-operator local ready") {
                let _ = tx.send(line);
            }
        }
    });
    Ok((child, rx))
}

impl Drop for LocalOperator {
    /// A test that failed part-way still leaves no process behind: the operator stops its
    /// brokers, and any broker it could not stop is killed.
    fn drop(&mut self) {
        if let Err(error) = self.stop() {
            eprintln!("stopping strom-operator local: {error:#}");
        }
        let brokers = self.state_dir().join("brokers");
        for entry in std::fs::read_dir(brokers).into_iter().flatten().flatten() {
            let Some(id) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some(pid) = self.broker_pid(id)
                && alive(pid)
            {
                let _ = signal(pid, "CONT");
                let _ = signal(pid, "KILL");
            }
        }
    }
}
