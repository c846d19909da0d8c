//! `[telemetry]`: log format and level (and, optionally, where traces go),
//! read by every binary before anything else so start-up problems are
//! logged the way the operator asked.

use crate::agent::check_advertise;
use crate::read::{Reader, Section, echo};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[telemetry]`.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// A `tracing_subscriber::EnvFilter` directive (`RUST_LOG` wins).
    pub log_level: String,
    /// OTLP/gRPC endpoint for traces (`http://collector:4317`); none by
    /// default.
    pub otlp_endpoint: Option<String>,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (HTTP); off by
    /// default.
    pub http_listen: Option<std::net::SocketAddr>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            log_format: LogFormat::Text,
            log_level: "info".into(),
            otlp_endpoint: None,
            http_listen: None,
        }
    }
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> TelemetryConfig {
    let mut c = TelemetryConfig::default();
    let Some(mut s) = r.table(root, "telemetry") else {
        return c;
    };
    if let Some(f) = r.choice(
        &mut s,
        "log_format",
        &[("text", LogFormat::Text), ("json", LogFormat::Json)],
    ) {
        c.log_format = f;
    }
    if let Some(level) = r.string(&mut s, "log_level") {
        if level.is_empty()
            || level
                .chars()
                .any(|ch| ch.is_control() || ch.is_whitespace())
        {
            r.problem(
                s.key("log_level"),
                format!("expected a filter such as \"info\" or \"info,printwatch_agent=debug\", found {}", echo(&level)),
            );
        } else {
            c.log_level = level;
        }
    }
    if let Some(url) = r.string(&mut s, "otlp_endpoint") {
        match check_advertise(url.trim()) {
            Ok(()) => c.otlp_endpoint = Some(url.trim().to_owned()),
            Err(e) => r.problem(
                s.key("otlp_endpoint"),
                e.replace("printwatch-agent:50051", "otel-collector:4317"),
            ),
        }
    }
    if let Some(text) = r.string(&mut s, "http_listen") {
        match text.trim().parse::<std::net::SocketAddr>() {
            Ok(a) => c.http_listen = Some(a),
            Err(_) => r.problem(
                s.key("http_listen"),
                format!(
                    "expected an IP address and port such as 0.0.0.0:9090, found {}",
                    echo(&text)
                ),
            ),
        }
    }
    r.finish(s);
    c
}
