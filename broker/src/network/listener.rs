//! The Kafka listener: accepts connections up to `max.connections` (a semaphore permit per
//! connection) and serves each on its own task, tracked so shutdown can wait for them.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::connection;
use crate::broker::Broker;

/// Accepts connections until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let limit = usize::try_from(broker.config.props.max_connections).unwrap_or(1);
    let permits = Arc::new(Semaphore::new(limit));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let broker = broker.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            broker.metrics.connection_opened();
            connection::serve(stream, broker.clone(), shutdown).await;
            broker.metrics.connection_closed();
            drop(permit);
        });
    }
}
