//! What operators see of a group: ListGroups, DescribeGroups (members, client ids, hosts and
//! their assignments) and the committed offsets, through confluent-kafka's admin client.

use std::process::Command;

use strom_e2e::kafka::create_topic;
use strom_e2e::{BrokerOptions, BrokerProcess, repo_root};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_groups_shows_members_and_assignments() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(
        BrokerOptions::default().with("group.initial.rebalance.delay.ms", "0"),
    )?;
    create_topic(&broker.bootstrap(), "described", 3, &[]).await?;
    let output = Command::new("python3")
        .arg(repo_root().join("e2e/scripts/describe_groups.py"))
        .args([&broker.bootstrap(), "inspected", "described"])
        .output()?;
    assert!(
        output.status.success(),
        "describe_groups.py failed (run e2e/install-tools.sh if a module is missing): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(
        report["groups"],
        serde_json::json!(["inspected"]),
        "{report}"
    );
    assert!(
        report["state"]
            .as_str()
            .is_some_and(|s| s.contains("STABLE")),
        "{report}"
    );
    let members = report["members"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("members: {report}"))?;
    assert_eq!(members.len(), 1, "{report}");
    assert_eq!(members[0]["client_id"], "describe-me");
    assert_eq!(members[0]["host"], "/127.0.0.1");
    assert_eq!(
        members[0]["assignment"],
        serde_json::json!([["described", 0], ["described", 1], ["described", 2]])
    );
    assert_eq!(
        report["committed"],
        serde_json::json!([
            ["described", 0, 3],
            ["described", 1, 3],
            ["described", 2, 3]
        ])
    );
    Ok(())
}
