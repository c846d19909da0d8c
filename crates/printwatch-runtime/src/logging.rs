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

/// Installs the global subscriber. `level` is an `EnvFilter` directive such
/// as `info` or `printwatch_agent=debug,info`; `RUST_LOG` overrides it.
/// Calling it twice keeps the first subscriber.
pub fn init(format: Format, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(true);
    let _ = match format {
        Format::Text => builder.try_init(),
        Format::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}
