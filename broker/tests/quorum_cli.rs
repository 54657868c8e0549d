//! Quorum settings that cannot work are refused at start with one line naming the setting, and
//! a data directory that belongs to another quorum is refused before it could split a cluster.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn broker(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strom-broker"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error");
    command
}

/// The one `strom-broker: …` error line of a refused start.
fn refusal(output: &Output) -> String {
    assert!(!output.status.success(), "the broker must refuse to start");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("strom-broker:"))
        .collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {stderr}");
    lines[0].to_owned()
}

#[test]
fn contradicting_quorum_settings_are_refused_by_name() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--node-id",
                "5",
                "--controller-listen",
                "127.0.0.1:0",
                "--controller-quorum-voters",
                "0@127.0.0.1:1,1@127.0.0.1:2",
                "--override",
                "process.roles=broker,controller",
            ],
            "not in controller.quorum.voters",
        ),
        (
            &[
                "--controller-listen",
                "127.0.0.1:0",
                "--controller-quorum-voters",
                "0@127.0.0.1:1,0@127.0.0.1:2",
            ],
            "controller.quorum.voters",
        ),
        (
            &[
                "--controller-listen",
                "127.0.0.1:0",
                "--controller-quorum-voters",
                "0@127.0.0.1",
            ],
            "is not id@host:port",
        ),
        (
            &["--controller-quorum-voters", "0@127.0.0.1:1"],
            "--controller-listen is required",
        ),
        (&["--override", "process.roles=controller"], "process.roles"),
    ];
    for (args, expected) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let output = broker(dir.path()).args(*args).output().expect("runs");
        let line = refusal(&output);
        assert!(line.contains(expected), "{args:?}: {line}");
        assert!(
            std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
            "{args:?}: nothing written"
        );
    }
}

#[test]
fn a_data_directory_of_another_quorum_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A single broker initializes its own one-voter quorum in the directory, then stops.
    let mut single = broker(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let stdout = single.stdout.take().expect("piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("reads");
    assert!(line.starts_with("strom-broker ready"), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &single.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while single.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "the broker stops on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }

    // The same directory as node 0 of a three-voter cluster: its log has other voters.
    let output = broker(dir.path())
        .args(["--node-id", "0", "--controller-listen", "127.0.0.1:0"])
        .args([
            "--controller-quorum-voters",
            "0@127.0.0.1:1,1@127.0.0.1:2,2@127.0.0.1:3",
        ])
        .output()
        .expect("runs");
    let line = refusal(&output);
    assert!(
        line.contains("has the voters [0]") && line.contains("controller.quorum.voters"),
        "{line}"
    );
}
