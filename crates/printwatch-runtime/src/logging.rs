//! Logging and tracing set-up.
//!
//! Logs go to stderr as text or JSON (`[telemetry] log_format`), filtered by
//! `RUST_LOG` when set, else by `[telemetry] log_level`. Spans carry
//! explicit fields only (`skip_all` at every `#[instrument]`) so passwords
//! and mail bodies never reach a log line.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber: log lines on stderr, plus the
/// OpenTelemetry layer when an OTLP endpoint is set (see [`crate::trace`]).
/// `level` is an `EnvFilter` directive such as `info` or
/// `printwatch_agent=debug,info`; `RUST_LOG` overrides it. Keep the
/// returned guard until the end of `main`: dropping it flushes the traces.
/// Calling it twice keeps the first subscriber.
pub fn init(
    format: Format,
    level: &str,
    service: &str,
    otlp_endpoint: Option<&str>,
) -> crate::trace::TraceGuard {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (otel, guard, problem) = crate::trace::layer(service, otlp_endpoint);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match format {
        Format::Text => registry
            .with(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(ansi)
                    .with_target(true),
            )
            .try_init(),
        Format::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    if let Some(problem) = problem {
        tracing::warn!(problem, "OpenTelemetry export is off");
    }
    guard
}
