//! End-to-end harness: runs real `strom-broker` processes for tests and benchmarks.
//!
//! Layout:
//! - this file: [`BrokerProcess`], a broker child process bound to ports chosen by the OS
//!   (`127.0.0.1:0`); the broker prints one `strom-broker ready kafka=… admin=…` line on stdout
//!   once it serves, which is how the harness learns the ports without racing for them;
//! - [`wait_until`]: polling with a deadline, the only way tests wait for a condition;
//! - [`cluster`]: several brokers forming one cluster; [`replicas`]: what it says about a
//!   topic's partition replicas; [`workload`]: a continuous verified produce/consume load;
//!   [`chaos`]: a seeded schedule of broker crashes; [`netfault`]: network partitions between
//!   brokers through a fault-injecting proxy; [`group_members`]: consumer-group members in
//!   Python processes and what they received; [`small_fs`]: a tmpfs a test can fill, seen by a
//!   broker run in its mount namespace; [`local`]: `strom-operator local` as a child process,
//!   with its manifest file, state directory and status files;
//! - `tests/`: one file per user-visible behaviour, each driving real clients (rdkafka, kcat,
//!   Python clients, Prometheus, helm, podman);
//! - `src/bin/strom_bench.rs`: the benchmark, which takes any bootstrap address.

pub mod chaos;
pub mod cluster;
pub mod compaction;
pub mod coordinators;
pub mod group_members;
pub mod kafka;
pub mod local;
pub mod netfault;
pub mod observability;
pub mod processor;
pub mod replicas;
pub mod request_times;
pub mod small_fs;
pub mod transactions;
pub mod wire;
pub mod workload;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a broker may take from spawn to its ready line. Generous: CI machines are shared.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a SIGTERM'd broker may take to flush and exit before the harness reports a failure.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Options for a broker process; the data directory survives restarts of the same process.
#[derive(Debug, Clone, Default)]
pub struct BrokerOptions {
    /// Data directory; a fresh temporary directory when `None`.
    pub data_dir: Option<PathBuf>,
    /// Broker node id (`--node-id`); 0 when `None`.
    pub node_id: Option<i32>,
    /// Broker config overrides, passed as `--override key=value` (Kafka's broker keys).
    pub overrides: Vec<(String, String)>,
    /// `--advertised-listener`, for tests that put a proxy between clients and the broker.
    pub advertised_listener: Option<String>,
    /// `--controller-listen`, for brokers of a multi-node cluster (see [`cluster`]).
    pub controller_listen: Option<String>,
    /// `--listen` (the Kafka listener); a fresh OS port per start (`127.0.0.1:0`) when `None`.
    pub kafka_listen: Option<String>,
    /// A command the broker binary runs under, which must exec it (e.g. `nsenter` into the
    /// mount namespace of a test's small file system); none when empty.
    pub launcher: Vec<String>,
    /// Where the broker's stderr goes (appended), for tests that read what it said; the test's
    /// own stderr when `None`.
    pub stderr_file: Option<PathBuf>,
}

impl BrokerOptions {
    /// Adds a broker config override (`key=value`), e.g. `log.retention.check.interval.ms`.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }
}

/// A running `strom-broker` child process.
#[derive(Debug)]
pub struct BrokerProcess {
    options: BrokerOptions,
    data_dir: PathBuf,
    // Keeps a temporary data directory alive for the life of the process handle.
    _temp: Option<tempfile::TempDir>,
    child: Option<Child>,
    kafka: String,
    admin: String,
}

impl BrokerProcess {
    /// Spawns a broker and waits until it prints its ready line (deadline [`START_DEADLINE`]).
    pub fn start(options: BrokerOptions) -> anyhow::Result<BrokerProcess> {
        let (temp, data_dir) = match &options.data_dir {
            Some(dir) => (None, dir.clone()),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("strom-e2e-")
                    .tempdir()
                    .context("creating a temporary data directory")?;
                let dir = temp.path().to_path_buf();
                (Some(temp), dir)
            }
        };
        let mut broker = BrokerProcess {
            options,
            data_dir,
            _temp: temp,
            child: None,
            kafka: String::new(),
            admin: String::new(),
        };
        broker.spawn()?;
        Ok(broker)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let binary = broker_binary()?;
        let mut command = match self.options.launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&binary);
                command
            }
            None => Command::new(&binary),
        };
        let stderr = match &self.options.stderr_file {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?,
            ),
            None => Stdio::inherit(),
        };
        command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args([
                "--listen",
                self.options
                    .kafka_listen
                    .as_deref()
                    .unwrap_or("127.0.0.1:0"),
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .args(["--node-id", &self.options.node_id.unwrap_or(0).to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(advertised) = &self.options.advertised_listener {
            command.args(["--advertised-listener", advertised]);
        }
        if let Some(listen) = &self.options.controller_listen {
            command.args(["--controller-listen", listen]);
        }
        for (key, value) in &self.options.overrides {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn,openraft=off");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let stdout = child.stdout.take().context("broker stdout is piped")?;
        let (tx, rx) = mpsc::channel::<String>();
        // The reader thread lives as long as the child's stdout: it forwards the ready line and
        // keeps draining so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("strom-broker ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let deadline = Instant::now() + START_DEADLINE;
        let line = loop {
            if let Some(status) = child.try_wait().context("polling the broker")? {
                bail!("broker exited before it was ready: {status}");
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Stdout closed: the broker is exiting (its stderr says why).
                    let status = child.wait().context("waiting for the broker")?;
                    bail!("broker exited before it was ready: {status}");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    bail!("broker printed no ready line within {START_DEADLINE:?}");
                }
            }
        };
        self.kafka = field(&line, "kafka").context("ready line without kafka=")?;
        self.admin = field(&line, "admin").context("ready line without admin=")?;
        self.child = Some(child);
        Ok(())
    }

    /// The Kafka bootstrap address, `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        self.kafka.clone()
    }

    /// The admin HTTP base URL (`/metrics`, `/healthz`, `/readyz`), `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// The admin listener address, `127.0.0.1:PORT`.
    pub fn admin_addr(&self) -> String {
        self.admin.clone()
    }

    /// The broker's data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The child's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Controlled shutdown: SIGTERM, then wait for a clean exit (status 0).
    pub fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        if !status.success() {
            bail!("kill -TERM failed: {status}");
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().context("waiting for the broker")? {
                if !status.success() {
                    bail!("broker exited uncleanly after SIGTERM: {status}");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("broker did not exit within {STOP_DEADLINE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to `deadline`) for the broker to exit on its own, and returns how it exited.
    pub fn wait_for_exit(&mut self, deadline: Duration) -> anyhow::Result<ExitStatus> {
        let child = self.child.as_mut().context("the broker is not running")?;
        let status = wait_until("the broker to exit", deadline, || {
            child.try_wait().ok().flatten()
        })?;
        self.child = None;
        Ok(status)
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the running process.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the broker is not running")?;
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .context("sending a signal")?;
        if !status.success() {
            bail!("kill -{signal} failed: {status}");
        }
        Ok(())
    }

    /// The options the broker runs with.
    pub fn options(&self) -> &BrokerOptions {
        &self.options
    }

    /// Whether the process is running (not killed or stopped by the harness).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Crash: SIGKILL, no chance to flush.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same data directory (on the same Kafka address when
    /// [`BrokerOptions::kafka_listen`] pins it, else on new ports). Stops it first if running.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn field(line: &str, name: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_string)
}

/// Path of the `strom-broker` binary: `$STROM_BROKER_BIN`, else next to the running test binary
/// (`target/<profile>/strom-broker`), which `cargo test --workspace` builds.
pub fn broker_binary() -> anyhow::Result<PathBuf> {
    sibling_binary("STROM_BROKER_BIN", "strom-broker")
}

/// Path of a workspace binary: `$env_var`, else `target/<profile>/<name>`.
pub fn sibling_binary(env_var: &str, name: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the test binary")?;
    // Test binaries live in target/<profile>/deps/, other binaries in target/<profile>/.
    let mut dir = exe.parent().map(Path::to_path_buf);
    while let Some(d) = dir {
        let candidate = d.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent().map(Path::to_path_buf);
        if dir.as_ref().is_some_and(|d| d.ends_with("target")) {
            break;
        }
    }
    bail!(
        "{name} not found next to {}; build it with `cargo build -p {name}` or set {env_var}",
        exe.display()
    )
}

/// Polls `check` until it returns `Some` or `deadline` passes; the error names `what`.
pub fn wait_until<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if Instant::now() >= end {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Root of the repository (the workspace), for tests that read committed files.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A tool installed by `e2e/install-tools.sh`: `e2e/.tools/bin/<name>` or on `PATH`.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let local = repo_root().join("e2e/.tools/bin").join(name);
    if local.is_file() {
        return Ok(local);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("{name} is not installed: run e2e/install-tools.sh")
}

#[cfg(test)]
mod tests {
    use super::field;

    #[test]
    fn ready_line_fields_are_parsed() {
        let line = "strom-broker ready kafka=127.0.0.1:4001 admin=127.0.0.1:4002 node_id=0";
        assert_eq!(field(line, "kafka").as_deref(), Some("127.0.0.1:4001"));
        assert_eq!(field(line, "admin").as_deref(), Some("127.0.0.1:4002"));
        assert_eq!(field(line, "missing"), None);
    }
}
