//! The broker binary's command line: bad configuration is refused with a message that names the
//! culprit, before anything is written; a second broker on a data directory in use is refused.

use std::process::Command;

fn broker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strom-broker"))
}

#[test]
fn unknown_override_key_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = broker()
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--override", "log.dirz=/tmp"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("log.dirz"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).expect("dir").next().is_none(),
        "nothing written"
    );
}

#[test]
fn config_file_errors_name_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("server.properties");
    std::fs::write(&file, "num.partitions=3\nthis line is wrong\n").expect("write");
    let output = broker()
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[tokio::test]
async fn a_data_directory_serves_one_broker_at_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = strom_broker::config::BrokerConfig::for_data_dir(dir.path().to_path_buf());
    let first = strom_broker::server::start(config.clone())
        .await
        .expect("first broker starts");
    let second = strom_broker::server::start(config).await;
    assert!(
        matches!(second, Err(strom_broker::server::StartError::Locked { .. })),
        "{second:?}"
    );
    first.shutdown().await;
}
