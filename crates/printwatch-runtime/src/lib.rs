//! The edge every printwatch binary shares, so each `main` stays a few
//! lines: parse arguments, [`load_config`], [`logging::init`], build the
//! service, run it until [`shutdown_signal`], map errors to exit codes.

pub mod http;
pub mod logging;
pub mod service;
pub mod trace;

use std::path::Path;
use std::process::ExitCode;

use printwatch_config::{Config, ConfigError, ProcessEnv};

/// Exit code for a bad configuration (SPEC §3.1).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code for a failure while running.
pub const EXIT_FAILURE: u8 = 1;

/// Which service is starting, to check the parts of the config it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Agent,
    Notifier,
    Inbox,
}

/// Loads and validates the config for `service`. On a bad config prints
/// every problem to stderr and returns the exit code to leave with (2).
pub fn load_config(path: &Path, service: Service) -> Result<Config, ExitCode> {
    let checked = printwatch_config::load(path, &ProcessEnv).and_then(|cfg| {
        let needs: Result<(), ConfigError> = match service {
            Service::Agent => cfg.require_agent(),
            Service::Notifier => cfg.require_notifier(),
            Service::Inbox => cfg.require_inbox(),
        };
        needs.map(|()| cfg)
    });
    checked.map_err(|err| {
        eprintln!("error: invalid configuration\n{err}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Sets up logging from the config's `[telemetry]` section.
pub fn init_logging(cfg: &Config, service: &str) -> trace::TraceGuard {
    let format = match cfg.telemetry.log_format {
        printwatch_config::LogFormat::Json => logging::Format::Json,
        printwatch_config::LogFormat::Text => logging::Format::Text,
    };
    logging::init(
        format,
        &cfg.telemetry.log_level,
        service,
        cfg.telemetry.otlp_endpoint.as_deref(),
    )
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
