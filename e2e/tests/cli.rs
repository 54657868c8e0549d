//! The command line as a user meets it: listeners take host names, logs written to a pipe or
//! a file carry no terminal colour codes, and `--help` says what an acknowledgement promises
//! and lists every broker key; a SIGTERM at any point of the start ends in a clean stop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use strom_broker::config::BROKER_KEYS;
use strom_e2e::broker_binary;

#[test]
fn help_states_durability_and_lists_the_broker_keys() -> anyhow::Result<()> {
    let output = Command::new(broker_binary()?).arg("--help").output()?;
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout)?;
    assert!(
        help.contains("survives a crash of the broker process"),
        "{help}"
    );
    assert!(help.contains("not a power loss"), "{help}");
    assert!(help.contains("log.flush.interval.messages"), "{help}");
    for key in BROKER_KEYS {
        assert!(help.contains(key), "--help does not list {key}");
    }
    Ok(())
}

#[test]
fn listeners_take_host_names_and_piped_logs_are_plain_text() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut child = Command::new(broker_binary()?)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "localhost:0", "--admin-listen", "localhost:0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("stdout"))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("stderr"))?;
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("strom-broker ready") {
                let _ = tx.send(line);
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait()?;
    let logs = logs.join().map_err(|_| anyhow::anyhow!("log reader"))?;
    let ready = ready.map_err(|_| anyhow::anyhow!("no ready line; logs:\n{logs}"))?;
    assert!(status.success(), "{status}; logs:\n{logs}");
    for field in ["kafka=127.0.0.1:", "admin=127.0.0.1:"] {
        assert!(ready.contains(field), "{ready}");
    }
    assert!(logs.contains("broker started"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "ANSI escape codes in logs written to a pipe:\n{logs:?}"
    );
    Ok(())
}

/// A supervisor may stop a broker that is still starting (Kubernetes deletes a pod whose
/// broker has logged but not yet served). The broker then finishes its start and shuts down
/// cleanly; it is not killed by the signal's default action.
#[test]
fn a_sigterm_during_the_start_stops_the_broker_cleanly() -> anyhow::Result<()> {
    let data = tempfile::tempdir()?;
    let mut child = Command::new(broker_binary()?)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("stderr"))?;
    let (tx, rx) = mpsc::channel();
    let logs = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // The first line the broker logs: the start has begun, and is far from done.
            let _ = tx.send(());
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let first_line = rx.recv_timeout(Duration::from_secs(60));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait()?;
    let logs = logs.join().map_err(|_| anyhow::anyhow!("log reader"))?;
    first_line.map_err(|_| anyhow::anyhow!("nothing logged; logs:\n{logs}"))?;
    assert!(status.success(), "{status}; logs:\n{logs}");
    assert!(logs.contains("stopped"), "{logs}");
    Ok(())
}
