//! The admin HTTP listener: `/metrics` (Prometheus text format), `/healthz` (the process
//! serves) and `/readyz` (the broker's metadata log works, it has a controller, is unfenced,
//! and has applied the metadata log nearly as far as the controller).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;

/// Serves until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(broker);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(error) = result {
        tracing::error!(%error, "admin listener failed");
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    broker.refresh_gauges();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        broker.metrics.encode(),
    )
}

async fn ready(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    match not_ready_reason(&broker) {
        None => (StatusCode::OK, "ready\n".to_owned()),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")),
    }
}

/// Why the broker should not get traffic, if it should not: its metadata log failed (it is
/// stopping), no controller, no live session with it, fenced, or too far behind the metadata
/// log to serve it as current.
fn not_ready_reason(broker: &Broker) -> Option<String> {
    if let Some(fault) = broker.quorum.fault() {
        return Some(fault.to_string());
    }
    if broker.controller_id() < 0 {
        return Some("no active controller".to_owned());
    }
    let status = broker.lifecycle.status();
    if !status.in_session {
        return Some(
            "no heartbeat acknowledged by the controller within the session timeout".to_owned(),
        );
    }
    if status.fenced {
        return Some("fenced by the controller".to_owned());
    }
    let applied = broker.image().offset;
    let lag = status.controller_offset.saturating_sub(applied);
    (lag > crate::lifecycle::MAX_METADATA_LAG).then(|| {
        format!(
            "metadata log {lag} entries behind the controller (applied {applied}, controller at {})",
            status.controller_offset
        )
    })
}
