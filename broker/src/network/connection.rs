//! One client connection: a reader that decodes frames ahead (so pipelined requests are already
//! in memory when the previous one completes) and a processor that handles requests one at a
//! time and writes each response before the next, which keeps responses in request order and a
//! producer's appends in the order it sent them — Kafka's own per-connection semantics.

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::frame::FrameReader;
use super::send;
use crate::broker::Broker;
use crate::protocol;

/// Requests decoded ahead of the one being processed.
const PIPELINE_DEPTH: usize = 16;

/// Serves one connection until the peer closes it, a request is malformed, or shutdown.
pub async fn serve(stream: TcpStream, broker: Arc<Broker>, shutdown: CancellationToken) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %error, "TCP_NODELAY");
    }
    let (read, mut write) = stream.into_split();
    let max_frame =
        usize::try_from(broker.config.props.socket_request_max_bytes).unwrap_or(usize::MAX);
    let (tx, mut rx) = mpsc::channel::<Bytes>(PIPELINE_DEPTH);
    let stop = shutdown.child_token();
    let metrics = broker.metrics.clone();

    let reader = {
        let stop = stop.clone();
        let peer = peer.clone();
        let metrics = metrics.clone();
        async move {
            let mut frames = FrameReader::new(read, max_frame);
            loop {
                let frame = tokio::select! {
                    _ = stop.cancelled() => break,
                    frame = frames.next_frame() => frame,
                };
                match frame {
                    Ok(Some(frame)) => {
                        metrics.network_bytes_in(frame.len() as u64 + 4);
                        if tx.send(frame).await.is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::info!(%peer, %error, "closing connection");
                        break;
                    }
                }
            }
        }
    };

    let processor = async move {
        while let Some(frame) = rx.recv().await {
            match protocol::handle_frame(&broker, frame, &peer).await {
                Ok(Some(response)) => {
                    metrics.network_bytes_out(response.len() as u64);
                    if let Err(error) = send::write_response(&mut write, &response).await {
                        tracing::debug!(%peer, %error, "writing response");
                        break;
                    }
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::info!(%peer, %error, "closing connection after a bad request");
                    break;
                }
            }
        }
        // Stop reading too: the reader may be parked on a socket the peer keeps open.
        stop.cancel();
        let _ = write.shutdown().await;
    };

    tokio::join!(reader, processor);
}
