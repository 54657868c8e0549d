//! Consumer-group members for tests: what a member has seen ([`Observed`]), members run as
//! Python processes (`e2e/scripts/group_consumer.py`, [`PythonMember`]) on confluent-kafka or
//! kafka-python, and checks over what a set of members received.
//!
//! A process member can be killed with SIGKILL, the only way to take a member away without a
//! LeaveGroup, and kafka-python is a second, independent implementation of the group protocol.

use std::collections::{BTreeSet, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context;

use crate::{repo_root, tool, wait_until};

/// The broker's minimum (`group.min.session.timeout.ms` = 6000): members die fast.
pub const SESSION_TIMEOUT_MS: &str = "6000";
/// How long a SIGTERM'd member may take to close (LeaveGroup, final commit) and exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(30);

/// Partition indexes of one topic.
pub type Partitions = BTreeSet<i32>;

/// What a member has seen, shared with the thread (or process reader) driving it.
#[derive(Debug, Default)]
pub struct Observed {
    pub assignment: Partitions,
    pub assigned: Vec<Partitions>,
    pub revoked: Vec<Partitions>,
    /// (partition, offset, value) of every record received, in the order received.
    pub records: Vec<(i32, i64, String)>,
    /// Every error the client reported, retriable or not.
    pub errors: Vec<String>,
    /// The errors the client reported as fatal (it cannot go on).
    pub fatal_errors: Vec<String>,
    /// Offset commits the client reported as failed (confluent-kafka's `on_commit`).
    pub failed_commits: Vec<String>,
}

/// An [`Observed`] shared between a test and the member it watches.
pub type Shared = Arc<Mutex<Observed>>;

/// Locks what a member has seen.
pub fn lock(shared: &Shared) -> MutexGuard<'_, Observed> {
    // A poisoned lock means a member thread panicked; its data is still what it saw.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A group member in a Python process, reporting one JSON event per stdout line.
#[derive(Debug)]
pub struct PythonMember {
    pub observed: Shared,
    child: Child,
}

impl PythonMember {
    /// Starts a member of `group` subscribed to `topic`; `client` is `confluent-kafka` or
    /// `kafka-python`. Offsets are auto-committed every 500 ms.
    pub fn start(bootstrap: &str, group: &str, topic: &str, client: &str) -> anyhow::Result<Self> {
        let script = repo_root().join("e2e/scripts/group_consumer.py");
        let mut child = Command::new(tool("python3")?)
            .arg(&script)
            .args(["--bootstrap", bootstrap, "--group", group, "--topic", topic])
            .args([
                "--session-timeout-ms",
                SESSION_TIMEOUT_MS,
                "--client",
                client,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("running {}", script.display()))?;
        let stdout = child.stdout.take().context("piped stdout")?;
        let observed = Shared::default();
        std::thread::spawn({
            let observed = Arc::clone(&observed);
            move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                        lock(&observed)
                            .errors
                            .push(format!("unparsable line: {line}"));
                        continue;
                    };
                    apply_python_event(&mut lock(&observed), &event);
                }
            }
        });
        Ok(Self { observed, child })
    }

    /// The exit status if the process has ended (it never ends on its own while healthy).
    pub fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().context("polling the Python consumer")
    }

    /// SIGKILL: no LeaveGroup, no final commit.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing the Python consumer")?;
        self.child.wait().context("reaping the Python consumer")?;
        Ok(())
    }

    /// SIGTERM: the consumer closes, which sends LeaveGroup; waits for a clean exit.
    pub fn terminate(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .context("sending SIGTERM")?;
        anyhow::ensure!(status.success(), "kill -TERM failed: {status}");
        let status = wait_until("the Python consumer to exit", EXIT_DEADLINE, || {
            self.child.try_wait().ok().flatten()
        })?;
        anyhow::ensure!(status.success(), "the Python consumer exited with {status}");
        Ok(())
    }
}

impl Drop for PythonMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Applies one event line of `group_consumer.py` to what its member has seen.
pub fn apply_python_event(observed: &mut Observed, event: &serde_json::Value) {
    let partitions = || -> Partitions {
        event["partitions"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p.as_i64())
                    .filter_map(|p| i32::try_from(p).ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    match event["event"].as_str() {
        // The eager protocol: an assignment replaces the previous one, a revocation empties it.
        Some("assigned") => {
            observed.assignment = partitions();
            observed.assigned.push(partitions());
        }
        Some("revoked") | Some("lost") => {
            observed.revoked.push(partitions());
            observed.assignment.clear();
        }
        Some("record") => {
            let partition = event["partition"]
                .as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(-1);
            let offset = event["offset"].as_i64().unwrap_or(-1);
            let value = event["value"].as_str().unwrap_or_default().to_owned();
            observed.records.push((partition, offset, value));
        }
        Some("error") => {
            let error = event["error"].to_string();
            if event["fatal"].as_bool() == Some(true) {
                observed.fatal_errors.push(error.clone());
            }
            observed.errors.push(error);
        }
        Some("commit_failed") => observed.failed_commits.push(event["error"].to_string()),
        _ => {}
    }
}

/// The members' current assignments if they are disjoint, each non-empty, and cover
/// `0..partitions`.
pub fn split_evenly(members: &[&Shared], partitions: i32) -> Option<Vec<Partitions>> {
    let assignments: Vec<Partitions> = members.iter().map(|m| lock(m).assignment.clone()).collect();
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: Partitions = assignments.iter().flatten().copied().collect();
    let all: Partitions = (0..partitions).collect();
    (assignments.iter().all(|a| !a.is_empty()) && total == union.len() && union == all)
        .then_some(assignments)
}

/// (partition, offset) of every record received by any of `members`.
pub fn received(members: &[&Shared]) -> HashSet<(i32, i64)> {
    members
        .iter()
        .flat_map(|m| {
            lock(m)
                .records
                .iter()
                .map(|(p, o, _)| (*p, *o))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Observed, apply_python_event};

    fn apply(observed: &mut Observed, line: &str) {
        let event = serde_json::from_str(line).expect("a JSON event");
        apply_python_event(observed, &event);
    }

    #[test]
    fn events_build_the_assignment_records_and_errors() {
        let mut observed = Observed::default();
        apply(
            &mut observed,
            r#"{"event": "assigned", "partitions": [2, 0]}"#,
        );
        assert_eq!(observed.assignment, [0, 2].into());
        apply(
            &mut observed,
            r#"{"event": "record", "partition": 2, "offset": 7, "value": "v"}"#,
        );
        assert_eq!(observed.records, vec![(2, 7, "v".to_owned())]);
        apply(
            &mut observed,
            r#"{"event": "revoked", "partitions": [0, 2]}"#,
        );
        assert!(observed.assignment.is_empty());
        apply(
            &mut observed,
            r#"{"event": "error", "error": "transport", "fatal": false}"#,
        );
        apply(
            &mut observed,
            r#"{"event": "error", "error": "fenced", "fatal": true}"#,
        );
        assert_eq!(observed.errors.len(), 2);
        assert_eq!(observed.fatal_errors, vec![r#""fenced""#.to_owned()]);
        apply(
            &mut observed,
            r#"{"event": "commit_failed", "error": "NOT_COORDINATOR"}"#,
        );
        assert_eq!(observed.failed_commits.len(), 1);
    }
}
