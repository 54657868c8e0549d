//! Request memory follows the bytes clients really send and is bounded across connections:
//! a frame's announced size is not reserved before its bytes arrive, and once
//! `queued.max.request.bytes` is in use the broker stops reading until memory is returned —
//! it delays other clients but never fails them. Measured on the broker process itself
//! (`/proc/<pid>/status`), with bounds far from both the fixed and the unfixed figures.

use std::time::Duration;

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_e2e::wire::call;
use strom_e2e::{BrokerOptions, BrokerProcess, wait_until};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const MIB: u64 = 1024 * 1024;
const DEADLINE: Duration = Duration::from_secs(60);

/// `VmRSS` or `VmSize` of `pid`, in bytes.
fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .ok_or_else(|| anyhow::anyhow!("/proc/{pid}/status has no {field}"))?;
    Ok(kib * 1024)
}

/// Opens a connection that announces a frame of `announced` bytes and sends `sent` bytes of
/// it, then holds the connection open. The task ends when everything was written.
async fn partial_frame(
    bootstrap: &str,
    announced: i32,
    sent: usize,
) -> anyhow::Result<JoinHandle<anyhow::Result<TcpStream>>> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    Ok(tokio::spawn(async move {
        stream.write_all(&announced.to_be_bytes()).await?;
        let chunk = vec![0x55u8; 1 << 20];
        let mut left = sent;
        while left > 0 {
            let n = left.min(chunk.len());
            stream.write_all(&chunk[..n]).await?;
            left -= n;
        }
        Ok(stream)
    }))
}

fn request_memory_used(broker: &BrokerProcess) -> anyhow::Result<f64> {
    let text = strom_e2e::observability::http_get(&format!("{}/metrics", broker.admin_url()))?.body;
    text.lines()
        .find_map(|line| line.strip_prefix("strom_request_memory_used_bytes "))
        .and_then(|value| value.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("/metrics has no strom_request_memory_used_bytes"))
}

async fn served(bootstrap: &str) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(bootstrap).await?;
    let request = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom-e2e"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let response: ApiVersionsResponse = timeout(
        DEADLINE,
        call(&mut stream, ApiKey::ApiVersions, 3, &request),
    )
    .await??;
    anyhow::ensure!(response.error_code == 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_frame_sizes_are_not_reserved() -> anyhow::Result<()> {
    // Unbounded request memory: only the buffers themselves are measured here.
    let broker =
        BrokerProcess::start(BrokerOptions::default().with("queued.max.request.bytes", "-1"))?;
    let pid = broker.pid().ok_or_else(|| anyhow::anyhow!("broker pid"))?;
    served(&broker.bootstrap()).await?;
    let rss_before = status_bytes(pid, "VmRSS")?;
    let size_before = status_bytes(pid, "VmSize")?;

    // Ten connections announce 100 MiB frames (1000 MiB in all) and send 2 MiB each.
    let mut writers = Vec::new();
    for _ in 0..10 {
        writers.push(partial_frame(&broker.bootstrap(), 100 << 20, 2 << 20).await?);
    }
    // The connections stay open (their frames unfinished) until the end of the test.
    let mut open = Vec::new();
    for writer in writers {
        open.push(timeout(DEADLINE, writer).await???);
    }
    // The broker has read what was sent once its resident memory holds most of it.
    wait_until("the broker to read the 20 MiB sent", DEADLINE, || {
        let rss = status_bytes(pid, "VmRSS").ok()?;
        (rss >= rss_before + 16 * MIB).then_some(())
    })?;
    let rss = status_bytes(pid, "VmRSS")? - rss_before;
    let address_space = status_bytes(pid, "VmSize")?.saturating_sub(size_before);
    println!(
        "10 × 100 MiB announced, 20 MiB sent: RSS +{} MiB, address space +{} MiB",
        rss / MIB,
        address_space / MIB
    );
    assert!(rss < 200 * MIB, "RSS grew by {} MiB", rss / MIB);
    // Reserving the announced sizes would map about 1000 MiB.
    assert!(
        address_space < 400 * MIB,
        "address space grew by {} MiB for 20 MiB received",
        address_space / MIB
    );
    served(&broker.bootstrap()).await?;
    drop(open);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_memory_is_bounded_across_connections() -> anyhow::Result<()> {
    let broker = BrokerProcess::start(
        BrokerOptions::default()
            .with("queued.max.request.bytes", &(32 * MIB).to_string())
            .with("socket.request.read.timeout.ms", "600000"),
    )?;
    let pid = broker.pid().ok_or_else(|| anyhow::anyhow!("broker pid"))?;
    served(&broker.bootstrap()).await?;
    let rss_before = status_bytes(pid, "VmRSS")?;

    // Ten connections announce 100 MiB frames and try to send 30 MiB each (300 MiB in all).
    let mut writers = Vec::new();
    for _ in 0..10 {
        writers.push(partial_frame(&broker.bootstrap(), 100 << 20, 30 << 20).await?);
    }
    // The connection admitted first is read whole...
    wait_until("one connection's 30 MiB to be read", DEADLINE, || {
        writers.iter().any(JoinHandle::is_finished).then_some(())
    })?;
    // ...and the others wait: sample the broker's memory for a while.
    let mut peak = 0;
    for _ in 0..40 {
        peak = peak.max(status_bytes(pid, "VmRSS")?.saturating_sub(rss_before));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let finished = writers.iter().filter(|w| w.is_finished()).count();
    println!(
        "10 × 30 MiB of 100 MiB frames, queued.max.request.bytes=32 MiB: RSS peak +{} MiB, {finished} connections read",
        peak / MIB
    );
    assert!(peak < 150 * MIB, "RSS grew by {} MiB", peak / MIB);
    assert!(
        finished < 10,
        "every connection was read: memory is not bounded"
    );
    // The metric shows why reading stopped: the admitted frame's 100 MiB are reserved.
    let used = request_memory_used(&broker)?;
    assert!(
        used >= (100 * MIB) as f64,
        "strom_request_memory_used_bytes = {used}"
    );

    // A client that arrives meanwhile is delayed, not failed: once the stalled clients go
    // away and their memory is returned, it is served.
    let late = tokio::spawn({
        let bootstrap = broker.bootstrap();
        async move { served(&bootstrap).await }
    });
    for writer in &writers {
        writer.abort();
    }
    drop(writers);
    timeout(DEADLINE, late).await???;
    Ok(())
}
