//! [`LocalWorkload`]: the brokers of the local runtime as child processes of this machine.
//!
//! Everything a broker needs to come back as itself lives under `<state-dir>/brokers/<id>/`:
//! `data/` (its data directory), `ports.yaml` (its Kafka, admin and controller ports, pinned
//! by the manifest or chosen by the OS, recorded once and reused by every later start, so a
//! restarted voter is found where the other voters expect it; see [`super::ports`]),
//! `process.yaml` (the pid and the revision it was started with) and `broker.log` (its stdout
//! and stderr). `<state-dir>/workload.yaml` holds the broker count.
//!
//! Brokers run in their own process group with their output in files, so they outlive an
//! operator killed with SIGKILL: the next operator adopts every broker whose pid is alive and
//! still runs on that broker's data directory, and starts the missing ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process, test_kill_process};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use super::ports::{PortPins, Ports};
use crate::day2::observed::{WorkloadBroker, WorkloadState};
use crate::day2::workload::Workload;
use crate::error::Error;

/// How long a SIGTERM'd broker may take for its controlled shutdown before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(60);
/// How long a `/readyz` probe may take; a stopped (SIGSTOP) broker never answers.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest wait before a crashed broker is started again.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Exits since the last deliberate start that make a broker crash-looping.
const CRASH_LOOP_EXITS: u32 = 2;

/// What every broker is started with: the revision and what it digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerTemplate {
    /// The revision a broker started now runs (see `Desired::revision`).
    pub revision: String,
    /// The controller voters: brokers `0..voters`.
    pub voters: i32,
    /// Broker config overrides (`--override key=value`).
    pub config: BTreeMap<String, String>,
    /// The ports the Cluster pins, or why its pins are refused (then a broker whose ports are
    /// not recorded yet is not started: it would get other ports than the manifest asks for).
    pub pins: Result<PortPins, String>,
}

impl Default for BrokerTemplate {
    fn default() -> Self {
        BrokerTemplate {
            revision: String::new(),
            voters: 0,
            config: BTreeMap::new(),
            pins: Ok(PortPins::default()),
        }
    }
}

/// How many OS-chosen ports may fall on a pinned one before reserving gives up.
const RESERVE_ATTEMPTS: usize = 64;

/// What `process.yaml` records of a started broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProcessRecord {
    pid: u32,
    revision: String,
}

/// `workload.yaml`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct WorkloadRecord {
    replicas: i32,
}

/// A broker process this workload runs: its own child, or one adopted from an earlier
/// operator.
#[derive(Debug)]
enum Handle {
    Child(Child),
    Adopted(Pid),
}

#[derive(Debug)]
struct Process {
    handle: Handle,
    pid: u32,
    revision: String,
}

#[derive(Debug, Default)]
struct BrokerSlot {
    process: Option<Process>,
    /// Exits nobody asked for since the last deliberate start.
    exits: u32,
    /// When it last exited unasked, for the backoff before starting it again.
    exited_at: Option<Instant>,
    /// The revision it ran when it last ran, reported while it is down.
    last_revision: Option<String>,
}

#[derive(Debug)]
struct Inner {
    template: BrokerTemplate,
    replicas: i32,
    slots: BTreeMap<i32, BrokerSlot>,
}

/// Brokers as local child processes, under one state directory.
#[derive(Debug)]
pub struct LocalWorkload {
    state_dir: PathBuf,
    binary: PathBuf,
    inner: Mutex<Inner>,
}

fn process_error(broker: i32, action: &'static str) -> impl FnOnce(String) -> Error {
    move |reason| Error::Process {
        broker,
        action,
        reason,
    }
}

fn write_yaml<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    let text = serde_yaml::to_string(value).map_err(|e| e.to_string())?;
    let temp = path.with_extension("yaml.tmp");
    std::fs::write(&temp, text).map_err(|e| format!("writing {}: {e}", temp.display()))?;
    std::fs::rename(&temp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// Ports chosen by the OS, none of them one `pins` reserve.
fn reserve_ports(pins: &PortPins) -> Result<Ports, String> {
    let mut held = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..RESERVE_ATTEMPTS {
        if ports.len() == 3 {
            break;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("reserving a port: {e}"))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .map_err(|e| format!("reserving a port: {e}"))?;
        if !pins.reserves(port) {
            ports.push(port);
        }
        // Held until all are chosen, so none is handed out twice.
        held.push(listener);
    }
    match ports[..] {
        [kafka, admin, controller] => Ok(Ports {
            kafka,
            admin,
            controller,
        }),
        _ => Err("reserving a port: the OS offered only pinned ports".to_owned()),
    }
}

/// Whether process `pid` is alive and runs on `data_dir` (its command line names it), so a
/// recycled pid is never taken for a broker.
fn runs_on(pid: u32, data_dir: &Path) -> bool {
    let Some(raw) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    if test_kill_process(raw).is_err() {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let wanted = data_dir.as_os_str().as_encoded_bytes();
    cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// Whether `GET /readyz` on `admin` answers 200.
async fn ready(admin: u16) -> bool {
    let probe = async {
        let mut stream = TcpStream::connect(("127.0.0.1", admin)).await.ok()?;
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        Some(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

impl LocalWorkload {
    /// The workload of `state_dir`, running `binary`. Brokers an earlier operator started
    /// and that still run are adopted.
    pub fn open(state_dir: &Path, binary: &Path) -> Result<LocalWorkload, Error> {
        let brokers = state_dir.join("brokers");
        std::fs::create_dir_all(&brokers).map_err(|e| Error::Process {
            broker: -1,
            action: "create the state directory",
            reason: format!("{}: {e}", brokers.display()),
        })?;
        let record: WorkloadRecord =
            read_yaml(&state_dir.join("workload.yaml")).unwrap_or_default();
        let mut slots = BTreeMap::new();
        let entries = std::fs::read_dir(&brokers).map_err(|e| Error::Process {
            broker: -1,
            action: "read the state directory",
            reason: format!("{}: {e}", brokers.display()),
        })?;
        for entry in entries.flatten() {
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            let mut slot = BrokerSlot::default();
            if let Some(process) = read_yaml::<ProcessRecord>(&entry.path().join("process.yaml")) {
                let data = entry.path().join("data");
                let pid = i32::try_from(process.pid).ok().and_then(Pid::from_raw);
                match pid {
                    Some(pid) if runs_on(process.pid, &data) => {
                        tracing::info!(broker = id, pid = process.pid, "adopted a running broker");
                        slot.process = Some(Process {
                            handle: Handle::Adopted(pid),
                            pid: process.pid,
                            revision: process.revision.clone(),
                        });
                    }
                    _ => {}
                }
                slot.last_revision = Some(process.revision);
            }
            slots.insert(id, slot);
        }
        Ok(LocalWorkload {
            state_dir: state_dir.to_path_buf(),
            binary: binary.to_path_buf(),
            inner: Mutex::new(Inner {
                template: BrokerTemplate::default(),
                replicas: record.replicas,
                slots,
            }),
        })
    }

    /// Sets what brokers started from now on run.
    pub async fn set_template(&self, template: BrokerTemplate) {
        self.inner.lock().await.template = template;
    }

    /// The directory of broker `id`.
    pub fn broker_dir(&self, id: i32) -> PathBuf {
        self.state_dir.join("brokers").join(id.to_string())
    }

    /// The Kafka addresses of brokers `0..replicas` (those with ports recorded), for clients.
    pub async fn bootstrap(&self) -> String {
        let replicas = self.inner.lock().await.replicas;
        let addresses: Vec<String> = (0..replicas)
            .filter_map(|id| self.ports(id))
            .map(|ports| format!("127.0.0.1:{}", ports.kafka))
            .collect();
        addresses.join(",")
    }

    /// Broker `id`'s ports, if they are recorded.
    pub fn ports(&self, id: i32) -> Option<Ports> {
        read_yaml(&self.broker_dir(id).join("ports.yaml"))
    }

    /// Why brokers `0..replicas` run on other ports than `pins` say, one message per broker.
    pub async fn port_drift(&self, pins: &PortPins) -> Vec<String> {
        let replicas = self.inner.lock().await.replicas;
        (0..replicas)
            .filter_map(|id| pins.drift(id, &self.ports(id)?))
            .collect()
    }

    /// Broker `id`'s ports: the recorded ones, else the pinned ones with the rest chosen by
    /// the OS, recorded now.
    fn assign_ports(&self, id: i32, pins: &Result<PortPins, String>) -> Result<Ports, Error> {
        if let Some(ports) = self.ports(id) {
            return Ok(ports);
        }
        let error = process_error(id, "reserve ports");
        let pins = pins.as_ref().map_err(|_| {
            error("its ports are not recorded yet and the Cluster's port annotations are refused (InvalidPorts)".to_owned())
        })?;
        let dir = self.broker_dir(id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| process_error(id, "reserve ports")(format!("{}: {e}", dir.display())))?;
        let ports = reserve_ports(pins)
            .map(|unpinned| pins.apply(id, unpinned))
            .map_err(process_error(id, "reserve ports"))?;
        write_yaml(&dir.join("ports.yaml"), &ports).map_err(process_error(id, "reserve ports"))?;
        Ok(ports)
    }

    /// Starts brokers missing from `0..replicas` (crashed ones after a backoff) and reaps the
    /// ones that exited, as a kubelet does for a StatefulSet's pods. A broker that cannot be
    /// started (its pinned port is taken) does not keep the others from starting; the first
    /// such error is returned.
    pub async fn supervise(&self) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let replicas = inner.replicas;
        let mut first_error = None;
        for id in 0..replicas {
            let slot = inner.slots.entry(id).or_default();
            reap(id, slot);
            if slot.process.is_some() {
                continue;
            }
            let backoff = MAX_BACKOFF.min(Duration::from_secs(1) * 2u32.pow(slot.exits.min(5)));
            if slot.exits > 0 && slot.exited_at.is_some_and(|at| at.elapsed() < backoff) {
                continue;
            }
            let template = inner.template.clone();
            match self.spawn(id, &template) {
                Ok(process) => inner.slots.entry(id).or_default().process = Some(process),
                Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every broker (SIGTERM to all, then waits for each), for the operator's own
    /// shutdown. The broker count is kept, so the next start brings them all back.
    pub async fn shutdown(&self) {
        let mut inner = self.inner.lock().await;
        for slot in inner.slots.values() {
            if let Some(process) = &slot.process {
                signal(process, Signal::TERM);
            }
        }
        for (id, slot) in inner.slots.iter_mut() {
            if let Some(process) = slot.process.take()
                && let Err(reason) = wait_stopped(process).await
            {
                tracing::warn!(broker = id, %reason, "broker did not stop cleanly");
            }
        }
    }

    fn spawn(&self, id: i32, template: &BrokerTemplate) -> Result<Process, Error> {
        let error = process_error(id, "start");
        let dir = self.broker_dir(id);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).map_err(|e| error(format!("{}: {e}", data.display())))?;
        let ports = self.assign_ports(id, &template.pins)?;
        if let Ok(pins) = &template.pins {
            pins.check_free(id, &ports)
                .map_err(process_error(id, "start"))?;
        }
        let mut voters = Vec::new();
        for voter in 0..template.voters {
            voters.push(format!(
                "{voter}@127.0.0.1:{}",
                self.assign_ports(voter, &template.pins)?.controller
            ));
        }
        let log_path = dir.join("broker.log");
        let error = process_error(id, "start");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| error(format!("{}: {e}", log_path.display())))?;
        let stderr = log
            .try_clone()
            .map_err(|e| process_error(id, "start")(e.to_string()))?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--data-dir")
            .arg(&data)
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", ports.kafka))
            .arg("--admin-listen")
            .arg(format!("127.0.0.1:{}", ports.admin))
            .arg("--node-id")
            .arg(id.to_string())
            .arg("--controller-listen")
            .arg(format!("127.0.0.1:{}", ports.controller))
            .arg("--controller-quorum-voters")
            .arg(voters.join(","))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            // Its own process group: a Ctrl-C in the terminal reaches the operator only, which
            // then stops the brokers in order.
            .process_group(0);
        for (key, value) in &template.config {
            command.arg("--override").arg(format!("{key}={value}"));
        }
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "info,openraft=warn");
        }
        let child = command
            .spawn()
            .map_err(|e| process_error(id, "start")(format!("{}: {e}", self.binary.display())))?;
        let pid = child
            .id()
            .ok_or_else(|| process_error(id, "start")("it exited at once".to_owned()))?;
        let record = ProcessRecord {
            pid,
            revision: template.revision.clone(),
        };
        write_yaml(&dir.join("process.yaml"), &record).map_err(process_error(id, "start"))?;
        tracing::info!(broker = id, pid, revision = %template.revision, "started broker");
        Ok(Process {
            handle: Handle::Child(child),
            pid,
            revision: template.revision.clone(),
        })
    }

    async fn stop(&self, inner: &mut Inner, id: i32) -> Result<(), Error> {
        let Some(slot) = inner.slots.get_mut(&id) else {
            return Ok(());
        };
        let Some(process) = slot.process.take() else {
            return Ok(());
        };
        slot.last_revision = Some(process.revision.clone());
        signal(&process, Signal::TERM);
        tracing::info!(broker = id, pid = process.pid, "stopping broker");
        wait_stopped(process)
            .await
            .map_err(process_error(id, "stop"))
    }
}

fn signal(process: &Process, signal: Signal) {
    if let Some(pid) = i32::try_from(process.pid).ok().and_then(Pid::from_raw) {
        // An error means it is gone already, which is what stopping wants.
        let _ = kill_process(pid, signal);
    }
}

/// Waits for a signalled broker to exit, killing it after [`STOP_DEADLINE`].
async fn wait_stopped(process: Process) -> Result<(), String> {
    match process.handle {
        Handle::Child(mut child) => match tokio::time::timeout(STOP_DEADLINE, child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("it exited with {status}")),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                let _ = child.kill().await;
                Err(format!("it did not exit within {STOP_DEADLINE:?}; killed"))
            }
        },
        Handle::Adopted(pid) => {
            let end = Instant::now() + STOP_DEADLINE;
            while test_kill_process(pid).is_ok() {
                if Instant::now() >= end {
                    let _ = kill_process(pid, Signal::KILL);
                    return Err(format!("it did not exit within {STOP_DEADLINE:?}; killed"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        }
    }
}

/// Notes the exit of a broker nobody stopped.
fn reap(id: i32, slot: &mut BrokerSlot) {
    let exited = match &mut slot.process {
        None => false,
        Some(Process {
            handle: Handle::Child(child),
            ..
        }) => !matches!(child.try_wait(), Ok(None)),
        Some(Process {
            handle: Handle::Adopted(pid),
            ..
        }) => test_kill_process(*pid).is_err(),
    };
    if exited && let Some(process) = slot.process.take() {
        tracing::warn!(broker = id, pid = process.pid, "broker exited");
        slot.exits += 1;
        slot.exited_at = Some(Instant::now());
        slot.last_revision = Some(process.revision);
    }
}

impl Workload for LocalWorkload {
    async fn observe(&self) -> Result<WorkloadState, Error> {
        let mut inner = self.inner.lock().await;
        let mut brokers = Vec::new();
        let mut probes = Vec::new();
        for (&id, slot) in inner.slots.iter_mut() {
            reap(id, slot);
            let running = slot.process.is_some();
            if !running && slot.exits == 0 {
                continue;
            }
            let revision = slot
                .process
                .as_ref()
                .map(|p| p.revision.clone())
                .or_else(|| slot.last_revision.clone());
            brokers.push(WorkloadBroker {
                id,
                revision,
                ready: false,
                restarting: false,
                crash_looping: slot.exits >= CRASH_LOOP_EXITS,
                resize_pending: false,
            });
            probes.push(running);
        }
        let replicas = inner.replicas;
        drop(inner);
        for (broker, running) in brokers.iter_mut().zip(probes) {
            if running && let Some(ports) = self.ports(broker.id) {
                broker.ready = ready(ports.admin).await;
            }
        }
        Ok(WorkloadState { replicas, brokers })
    }

    async fn scale(&self, replicas: i32) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        let above: Vec<i32> = inner
            .slots
            .keys()
            .copied()
            .filter(|id| *id >= replicas)
            .collect();
        inner.replicas = replicas;
        write_yaml(
            &self.state_dir.join("workload.yaml"),
            &WorkloadRecord { replicas },
        )
        .map_err(process_error(-1, "record the broker count"))?;
        for id in above {
            self.stop(&mut inner, id).await?;
            inner.slots.remove(&id);
        }
        for id in 0..replicas {
            let slot = inner.slots.entry(id).or_default();
            if slot.process.is_none() {
                slot.exits = 0;
                let template = inner.template.clone();
                let process = self.spawn(id, &template)?;
                inner.slots.entry(id).or_default().process = Some(process);
            }
        }
        Ok(())
    }

    async fn restart(&self, broker: i32) -> Result<(), Error> {
        let mut inner = self.inner.lock().await;
        self.stop(&mut inner, broker).await?;
        let template = inner.template.clone();
        let process = self.spawn(broker, &template)?;
        let slot = inner.slots.entry(broker).or_default();
        slot.exits = 0;
        slot.exited_at = None;
        slot.process = Some(process);
        Ok(())
    }
}
