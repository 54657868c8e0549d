//! Other clients than the reference one: kcat (Debian's, linking the old librdkafka 2.0.2 that
//! users still run) and the Python clients (confluent-kafka, kafka-python) produce, consume and
//! list metadata — which also proves ApiVersions is understood by old and new clients alike.

use std::io::Write;
use std::process::{Command, Stdio};

use strom_e2e::kafka::create_topic;
use strom_e2e::{BrokerOptions, BrokerProcess, repo_root, tool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_consumes_and_lists() -> anyhow::Result<()> {
    let kcat = tool("kcat")?;
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    let bootstrap = broker.bootstrap();

    let lines: Vec<String> = (0..500)
        .map(|i| format!("key-{}:line-{i}", i % 7))
        .collect();
    let mut producer = Command::new(&kcat)
        .args([
            "-b",
            &bootstrap,
            "-t",
            "kcat-topic",
            "-P",
            "-K",
            ":",
            "-z",
            "lz4",
        ])
        .stdin(Stdio::piped())
        .spawn()?;
    {
        let stdin = producer
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow::anyhow!("kcat stdin"))?;
        for line in &lines {
            writeln!(stdin, "{line}")?;
        }
    }
    let status = producer.wait()?;
    assert!(status.success(), "kcat -P exited with {status}");

    let output = Command::new(&kcat)
        .args([
            "-b",
            &bootstrap,
            "-t",
            "kcat-topic",
            "-C",
            "-e",
            "-o",
            "beginning",
            "-f",
            "%k:%s\n",
        ])
        .output()?;
    assert!(
        output.status.success(),
        "kcat -C: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let consumed: Vec<String> = String::from_utf8(output.stdout)?
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        consumed, lines,
        "auto-created single-partition topic returns every line in order"
    );

    let listing = Command::new(&kcat)
        .args(["-b", &bootstrap, "-L", "-t", "kcat-topic"])
        .output()?;
    let listing = String::from_utf8(listing.stdout)?;
    assert!(
        listing.contains("topic \"kcat-topic\" with 1 partitions"),
        "{listing}"
    );
    assert!(
        listing.contains("partition 0, leader 0, replicas: 0, isrs: 0"),
        "{listing}"
    );

    // Offsets query by time: -Q with a timestamp in the future answers the end (-1).
    let query = Command::new(&kcat)
        .args(["-b", &bootstrap, "-Q", "-t", "kcat-topic:0:-1"])
        .output()?;
    let query = String::from_utf8(query.stdout)?;
    assert!(query.contains("kcat-topic [0] offset 500"), "{query}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_produce_and_consume() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(BrokerOptions::default())?;
    create_topic(&broker.bootstrap(), "python", 2, &[]).await?;
    let script = repo_root().join("e2e/scripts/python_clients.py");
    let output = Command::new("python3")
        .arg(&script)
        .args([&broker.bootstrap(), "python", "200"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python clients failed (run e2e/install-tools.sh if a module is missing):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("confluent-kafka produced=200 consumed=200 in_order=True"),
        "{stdout}"
    );
    assert!(
        stdout.contains("kafka-python produced=200 consumed=200 in_order=True"),
        "{stdout}"
    );
    Ok(())
}
