//! [`LocalWorkload`]'s ports with and without pins, on a throwaway state directory and
//! `/bin/true` as the broker binary (the ports are decided before a process starts).

use std::path::{Path, PathBuf};

use strom_crds::Cluster;

use super::LocalWorkload;
use super::ports::{KAFKA_PORT_ANNOTATION, PortPins};
use super::processes::BrokerTemplate;
use crate::day2::Workload;

/// A fresh directory under the system temp dir, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("strom-local-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two free neighbouring ports below the ephemeral range (where no test's OS-chosen port
/// lands): the first free, the second held by the returned listener.
fn free_pair() -> (u16, std::net::TcpListener) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let start = 20_000 + u16::try_from(nanos % 10_000).unwrap_or_default();
    (start..30_000)
        .find_map(|base| {
            let first = std::net::TcpListener::bind(("127.0.0.1", base)).ok()?;
            let second = std::net::TcpListener::bind(("127.0.0.1", base + 1)).ok()?;
            drop(first);
            Some((base, second))
        })
        .expect("two free neighbouring ports")
}

fn pins(replicas: i32, kafka_base: u16) -> PortPins {
    let text = format!(
        "apiVersion: strom.io/v1alpha1\nkind: Cluster\nmetadata:\n  name: local\n  annotations:\n    \
         {KAFKA_PORT_ANNOTATION}: \"{kafka_base}\"\nspec:\n  replicas: {replicas}\n  storage:\n    \
         size: 1Gi\n"
    );
    let cluster: Cluster = serde_yaml::from_str(&text).expect("a valid Cluster");
    PortPins::from_cluster(&cluster).expect("valid pins")
}

fn template(pins: Result<PortPins, String>) -> BrokerTemplate {
    BrokerTemplate {
        voters: 1,
        pins,
        ..BrokerTemplate::default()
    }
}

fn workload(dir: &Path) -> LocalWorkload {
    LocalWorkload::open(dir, Path::new("/bin/true")).expect("the workload")
}

#[tokio::test]
async fn brokers_get_their_pinned_ports_and_one_that_is_taken_waits_for_it() {
    let scratch = Scratch::new("pinned");
    let (base, holder) = free_pair();
    let taken = base + 1;
    let workload = workload(&scratch.0);
    workload.set_template(template(Ok(pins(2, base)))).await;

    let error = workload
        .scale(2)
        .await
        .expect_err("broker 1's port is taken");
    assert!(
        error.to_string().contains(&format!(
            "local broker 1: cannot start: the pinned port {taken} (broker 1's Kafka port, \
             {KAFKA_PORT_ANNOTATION}={base}) cannot be bound"
        )),
        "{error}"
    );
    assert_eq!(workload.ports(0).map(|p| p.kafka), Some(base));
    assert_eq!(
        workload.ports(1).map(|p| p.kafka),
        Some(taken),
        "the pinned port is kept for when it is free, never another"
    );

    drop(holder);
    // A process another test forks at this moment may hold the socket until it execs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while let Err(error) = workload.supervise().await {
        assert!(
            std::time::Instant::now() < deadline,
            "broker 1 starts once its port is free: {error}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        workload.bootstrap().await,
        format!("127.0.0.1:{base},127.0.0.1:{taken}")
    );
    workload.shutdown().await;
}

#[tokio::test]
async fn refused_pins_record_no_ports_and_recorded_ports_that_differ_are_reported() {
    let scratch = Scratch::new("refused");
    let workload = workload(&scratch.0);
    workload
        .set_template(template(Err("port 9094 is pinned twice".to_owned())))
        .await;
    let error = workload.scale(1).await.expect_err("no ports to start on");
    assert!(
        error
            .to_string()
            .contains("the Cluster's port annotations are refused"),
        "{error}"
    );
    assert_eq!(workload.ports(0), None, "no OS-chosen port stands in");

    // Unpinned, the OS chooses; pinning later names the difference instead of moving broker 0.
    workload
        .set_template(template(Ok(PortPins::default())))
        .await;
    workload.scale(1).await.expect("broker 0 starts");
    let recorded = workload.ports(0).expect("recorded");
    let pinned = pins(1, recorded.kafka.wrapping_add(1).max(1));
    let drift = workload.port_drift(&pinned).await;
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(
        drift[0].contains(&format!(
            "broker 0 keeps the ports its state directory records: its Kafka port is {}",
            recorded.kafka
        )),
        "{drift:?}"
    );
    assert!(workload.port_drift(&PortPins::default()).await.is_empty());
    workload.shutdown().await;
}
