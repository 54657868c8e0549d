//! `strom-broker`: runs one broker until SIGTERM or SIGINT, then shuts down cleanly.
//!
//! Once it serves, it prints one line on stdout —
//! `strom-broker ready kafka=HOST:PORT admin=HOST:PORT node_id=N` — so that scripts and tests
//! that let the OS pick ports (`--listen 127.0.0.1:0`) learn them without racing.

use std::io::Write;

/// jemalloc maps very large allocations with `MAP_NORESERVE` where the kernel overcommits, so a
/// request whose array length claims billions of elements (the codec reserves the claimed
/// capacity before it finds the frame too short) gets address space that is never touched and
/// fails to decode with an error — instead of the system allocator's refusal aborting the
/// process. `tests/bad_input.rs` in `e2e` sends exactly such frames.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use clap::Parser;
use strom_broker::config::{BrokerConfig, Cli};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = BrokerConfig::from_cli(cli).context("invalid configuration")?;
    match strom_broker::fd_limit::raise_nofile_limit() {
        Ok(limit) if limit.soft != limit.soft_before => tracing::info!(
            from = ?limit.soft_before,
            to = ?limit.soft,
            "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
        ),
        Ok(limit) => tracing::info!(soft = ?limit.soft, hard = ?limit.hard, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom-broker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(config))
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let node_id = config.node_id;
    let running = strom_broker::server::start(config)
        .await
        .context("starting the broker")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "strom-broker ready kafka={} admin={} node_id={node_id}",
            running.addrs.kafka, running.addrs.admin
        )?;
        stdout.flush()?;
    }
    wait_for_signal().await?;
    tracing::info!("shutting down");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
