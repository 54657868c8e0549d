//! One client connection: a reader that decodes frames ahead (so pipelined requests are already
//! in memory when the previous one completes) and a processor that handles requests in order and
//! writes their responses in request order, keeping a producer's appends in the order it sent
//! them — Kafka's own per-connection semantics.
//!
//! One thing overlaps: the produce requests of a producer without idempotence. Each one's
//! appends are queued on the partitions' I/O workers, and the connection goes on to the next
//! produce request while they are written and, with `acks=all`, committed by the followers (up
//! to [`PIPELINE_DEPTH`] waiting). Each partition's worker writes in the order the appends were
//! queued, so the log holds them in request order, and the answers go out in request order. A
//! worker always has the next request's batches at hand, and a follower's next fetch carries
//! all of them, so a producer with several requests in flight waits one write and one
//! replication round trip for them rather than one each. Any other request, an idempotent or
//! transactional producer's included, is handled only once every request before it is
//! answered, as Kafka handles one request of a connection at a time.
//!
//! A connection is closed when it has been idle for `connections.max.idle.ms` (no bytes from the
//! peer and no request of its in progress, as Kafka's idle expiry), or when a frame it started
//! does not arrive within `socket.request.read.timeout.ms` (see `frame`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, FrameError, FrameLimits, FrameReader};
use super::memory::{MemoryPermit, RequestMemory};
use super::send;
use crate::broker::Broker;
use crate::log_limit::LogLimiter;
use crate::metrics::BrokerMetrics;
use crate::protocol::{self, Handled, ProtocolError, Response};

/// Requests decoded ahead of the one being processed, and produce requests waiting for their
/// commit.
const PIPELINE_DEPTH: usize = 16;

/// One line per kind of reason a connection is closed, per interval: a flood of bad
/// connections does not flood the log.
static CLOSE_LOG: LogLimiter = LogLimiter::new(Duration::from_secs(10));

/// What the reader needs to know about the processor to tell an idle connection from a busy one.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    last_response: Mutex<Instant>,
    /// Signalled after each answered request, so the reader re-arms its idle timer.
    answered: Notify,
}

impl Activity {
    fn idle_since(&self, last_read: Instant) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(last_read.max(*self.last_response.lock()))
    }
}

/// Serves one connection until the peer closes it, a request is malformed, it idles out, or
/// shutdown.
pub async fn serve(
    stream: TcpStream,
    broker: Arc<Broker>,
    memory: Arc<RequestMemory>,
    shutdown: CancellationToken,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "TCP_NODELAY");
    }
    let (read, mut write) = stream.into_split();
    let props = &broker.config.props;
    let limits = FrameLimits {
        max_frame: usize::try_from(props.socket_request_max_bytes).unwrap_or(usize::MAX),
        read_timeout: props.socket_request_read_timeout(),
    };
    let idle_timeout = props.connections_max_idle();
    let (tx, mut rx) = mpsc::channel::<Frame>(PIPELINE_DEPTH);
    let stop = shutdown.child_token();
    let metrics = broker.metrics.clone();
    let activity = Arc::new(Activity {
        in_flight: AtomicUsize::new(0),
        last_response: Mutex::new(Instant::now()),
        answered: Notify::new(),
    });

    let reader = {
        let stop = stop.clone();
        let peer = peer.clone();
        let metrics = metrics.clone();
        let activity = activity.clone();
        async move {
            let mut frames = FrameReader::new(read, limits, memory);
            loop {
                let idle_at = idle_deadline(idle_timeout, &frames, &activity);
                let frame = tokio::select! {
                    _ = stop.cancelled() => break,
                    frame = frames.next_frame() => frame,
                    // A request was answered: the idle timer starts again from now.
                    _ = activity.answered.notified() => continue,
                    _ = sleep_until(idle_at) => {
                        let idle_at = idle_deadline(idle_timeout, &frames, &activity);
                        if idle_at.is_some_and(|at| at <= Instant::now()) {
                            log_close(&peer, "idle", &format!(
                                "no request within connections.max.idle.ms ({:?})",
                                idle_timeout.unwrap_or_default()
                            ));
                            metrics.connection_closed_by_broker("idle");
                            break;
                        }
                        continue;
                    }
                };
                match frame {
                    Ok(Some(frame)) => {
                        metrics.network_bytes_in(frame.bytes.len() as u64 + 4);
                        activity.in_flight.fetch_add(1, Ordering::AcqRel);
                        if tx.send(frame).await.is_err() {
                            break;
                        }
                        // Waiting for room in the pipeline is the broker's time, not the peer's.
                        frames.restart_deadline();
                    }
                    Ok(None) => break,
                    Err(error) => {
                        log_close(&peer, error.kind(), &error.to_string());
                        if matches!(error, FrameError::ReadTimeout { .. }) {
                            metrics.connection_closed_by_broker("request_read_timeout");
                        }
                        break;
                    }
                }
            }
        }
    };

    let processor = async move {
        // Produce requests answered once their batches are committed, oldest first.
        let mut committing = FuturesOrdered::new();
        let mut open = true;
        while open {
            let frame = tokio::select! {
                biased;
                Some((result, memory)) = committing.next(), if !committing.is_empty() => {
                    open = answer(&mut write, &peer, &metrics, &activity, result, memory).await;
                    continue;
                }
                frame = rx.recv(), if committing.len() < PIPELINE_DEPTH => frame,
            };
            let Some(Frame { bytes, memory }) = frame else {
                break;
            };
            // Only produce requests overlap: anything else is handled once every request
            // before it is answered, as Kafka handles one request of a connection at a time.
            if !protocol::is_produce(&bytes) {
                while let Some((result, memory)) = committing.next().await {
                    if !answer(&mut write, &peer, &metrics, &activity, result, memory).await {
                        open = false;
                    }
                }
                if !open {
                    break;
                }
            }
            match protocol::start_frame(&broker, bytes, &peer).await {
                Ok(Handled::Committing(commit)) => {
                    committing
                        .push_back(Box::pin(async move { (commit.await, memory) }) as Answer<'_>);
                }
                Ok(Handled::Answered(response)) if committing.is_empty() => {
                    open =
                        answer(&mut write, &peer, &metrics, &activity, Ok(response), memory).await;
                }
                Ok(Handled::Answered(response)) => {
                    committing.push_back(
                        Box::pin(std::future::ready((Ok(response), memory))) as Answer<'_>
                    );
                }
                Err(error) => {
                    // The requests before it are still answered, then the connection closes.
                    while let Some((result, memory)) = committing.next().await {
                        if !answer(&mut write, &peer, &metrics, &activity, result, memory).await {
                            break;
                        }
                    }
                    log_close(&peer, "bad request", &error.to_string());
                    finish(&activity, memory);
                    open = false;
                }
            }
        }
        // Requests already appended are answered while the client still listens.
        while let Some((result, memory)) = committing.next().await {
            if !answer(&mut write, &peer, &metrics, &activity, result, memory).await {
                break;
            }
        }
        // Stop reading too: the reader may be parked on a socket the peer keeps open.
        stop.cancel();
        let _ = write.shutdown().await;
    };

    tokio::join!(reader, processor);
}

/// A request's answer to come, with the memory its frame holds until then.
type Answer<'a> = Pin<
    Box<dyn Future<Output = (Result<Option<Response>, ProtocolError>, MemoryPermit)> + Send + 'a>,
>;

/// Writes one request's response (if it has one); whether the connection stays open.
async fn answer(
    write: &mut OwnedWriteHalf,
    peer: &str,
    metrics: &BrokerMetrics,
    activity: &Activity,
    result: Result<Option<Response>, ProtocolError>,
    memory: MemoryPermit,
) -> bool {
    let open = match result {
        Ok(Some(response)) => {
            metrics.network_bytes_out(response.len() as u64);
            send::write_response(write, &response)
                .await
                .map_err(|error| {
                    tracing::debug!(%peer, %error, "writing response");
                })
                .is_ok()
        }
        Ok(None) => true,
        Err(error) => {
            log_close(peer, "bad request", &error.to_string());
            false
        }
    };
    finish(activity, memory);
    open
}

/// A request is done: its memory goes back to the pool, and the reader's idle timer restarts.
fn finish(activity: &Activity, memory: MemoryPermit) {
    drop(memory);
    *activity.last_response.lock() = Instant::now();
    activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    // One waiter (the reader): a permit stored while it is not waiting wakes it later.
    activity.answered.notify_one();
}

/// When the connection expires as idle: `connections.max.idle.ms` after the last bytes read or
/// response written, and never while a request is in progress or a frame is half read (a
/// started frame has its own deadline).
fn idle_deadline<R: tokio::io::AsyncRead + Unpin>(
    idle_timeout: Option<Duration>,
    frames: &FrameReader<R>,
    activity: &Activity,
) -> Option<Instant> {
    let timeout = idle_timeout.filter(|_| !frames.mid_frame())?;
    Some(activity.idle_since(frames.last_read())? + timeout)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn log_close(peer: &str, kind: &str, reason: &str) {
    if let Some(suppressed) = CLOSE_LOG.check(kind) {
        tracing::info!(%peer, reason, suppressed, "closing connection");
    }
}
