//! `strom-broker`: runs one broker until SIGTERM or SIGINT, then shuts down cleanly.
//!
//! Once it serves, it prints one line on stdout —
//! `strom-broker ready kafka=HOST:PORT admin=HOST:PORT node_id=N [controller=HOST:PORT]` — so
//! that scripts and tests that let the OS pick ports (`--listen 127.0.0.1:0`) learn them
//! without racing. A broker that cannot start prints one line on stderr saying why, and exits
//! with status 1; so does one whose metadata log fails while it runs, once it has stopped (see
//! `strom_broker::server`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// The allocator the broker's benchmark figures are measured with. Surviving hostile input does
/// not depend on it: the request decoder refuses lengths a frame cannot hold before allocating
/// (`vendor/kafka-protocol/PATCHES.md`), and the library's tests run on the system allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use strom_broker::config::{BrokerConfig, parse_cli};
use tracing_subscriber::EnvFilter;

/// How long a broker whose metadata log failed may take to answer what it read and close its
/// logs before it exits anyway: a failing disk can hang a flush.
const FAULT_STOP_DEADLINE: Duration = Duration::from_secs(15);

fn main() -> std::process::ExitCode {
    match run_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line, causes included, so a supervisor's log shows the reason at a glance.
            eprintln!("strom-broker: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_main() -> anyhow::Result<()> {
    let cli = parse_cli();
    // openraft logs every retry of an unreachable peer at ERROR, twice a second; the quorum's
    // transport logs peers becoming unreachable and reachable instead.
    // Colour only on a terminal: logs written to a file, a pipe or a log collector stay plain
    // text. NO_COLOR (no-color.org) turns it off on a terminal too.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,openraft=off")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
    let config = BrokerConfig::from_cli(cli).context("invalid configuration")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strom-broker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        // Installed before anything is logged: a supervisor that stops the broker while it
        // starts (its first log line seen, the ready line not yet) gets a clean shutdown once
        // the start completes, not a process killed by the signal's default action.
        let signals = Signals::install()?;
        log_nofile_limit();
        run(config, signals).await
    })
}

fn log_nofile_limit() {
    match strom_broker::fd_limit::raise_nofile_limit() {
        Ok(limit) if limit.soft != limit.soft_before => tracing::info!(
            from = ?limit.soft_before,
            to = ?limit.soft,
            "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
        ),
        Ok(limit) => tracing::info!(soft = ?limit.soft, hard = ?limit.hard, "open-file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open-file limit"),
    }
}

async fn run(config: BrokerConfig, mut signals: Signals) -> anyhow::Result<()> {
    let node_id = config.node_id;
    let running = strom_broker::server::start(config)
        .await
        .context("starting the broker")?;
    {
        let mut stdout = std::io::stdout().lock();
        let controller = running
            .addrs
            .controller
            .map(|addr| format!(" controller={addr}"))
            .unwrap_or_default();
        writeln!(
            stdout,
            "strom-broker ready kafka={} admin={} node_id={node_id}{controller}",
            running.addrs.kafka, running.addrs.admin
        )?;
        stdout.flush()?;
    }
    let fault = tokio::select! {
        () = signals.recv() => None,
        fault = running.metadata_fault() => Some(fault),
    };
    let Some(fault) = fault else {
        tracing::info!("shutting down");
        running.shutdown().await;
        tracing::info!("stopped");
        return Ok(());
    };
    // Fatal, as in KRaft: exit with a failure status so that the supervisor restarts the
    // process once the disk is fixed; other voters elect a controller meanwhile.
    tracing::error!(error = %fault, "the metadata log failed; stopping the broker");
    if tokio::time::timeout(FAULT_STOP_DEADLINE, running.stop_after_fault())
        .await
        .is_err()
    {
        tracing::warn!("the broker did not stop within {FAULT_STOP_DEADLINE:?}; exiting anyway");
    }
    Err(anyhow::Error::new(fault).context("stopped after a metadata log fault"))
}

/// SIGTERM and SIGINT, caught from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
