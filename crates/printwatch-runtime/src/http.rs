//! The operations port every service serves when `[telemetry] http_listen`
//! is set: `/healthz` (the process is alive), `/readyz` (it can do its work
//! now: connected to NATS, and whatever else the service checks) and
//! `/metrics` (Prometheus text format), for Kubernetes probes and
//! scrapers.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// Whether the service is ready right now; `Err` says why not.
pub type ReadyCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct Ops {
    // Metrics update themselves (atomics); the registry is only read.
    registry: Arc<Registry>,
    ready: ReadyCheck,
}

/// Binds `addr` now (so a port in use is a start-up error) and serves
/// `registry` and `ready` for as long as the process runs.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    ready: ReadyCheck,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz, /readyz and /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Ops {
            registry: Arc::new(registry),
            ready,
        });
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the operations port failed");
        }
    }))
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    match (ops.ready)() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

async fn metrics(State(ops): State<Ops>) -> impl IntoResponse {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &ops.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        );
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// A readiness check that NATS is connected.
pub fn nats_ready(connected: impl Fn() -> bool + Send + Sync + 'static) -> ReadyCheck {
    Arc::new(move || {
        if connected() {
            Ok(())
        } else {
            Err("not connected to NATS".into())
        }
    })
}
