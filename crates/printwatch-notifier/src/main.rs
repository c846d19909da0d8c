//! `printwatch-notifier`: mails the agent's alert events to the configured
//! groups. See the library for how it works.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use printwatch_runtime::{EXIT_FAILURE, Service};

/// Consumes alert events from NATS JetStream and sends the manual's alert
/// and recovery mails by SMTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The printwatch config file (TOML).
    #[arg(long, env = "PRINTWATCH_CONFIG", default_value = "printwatch.toml")]
    config: PathBuf,
    /// Serve /healthz, /readyz and /metrics here (overrides `[telemetry]
    /// http_listen`, so services sharing one config file can each have a port).
    #[arg(long, env = "PRINTWATCH_HTTP_LISTEN")]
    http_listen: Option<std::net::SocketAddr>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut cfg = match printwatch_runtime::load_config(&args.config, Service::Notifier) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if args.http_listen.is_some() {
        cfg.telemetry.http_listen = args.http_listen;
    }
    let _traces = printwatch_runtime::init_logging(&cfg, "printwatch-notifier");
    let app = tokio::select! {
        built = printwatch_notifier::Application::build(&cfg) => built,
        () = printwatch_runtime::shutdown_signal() => return ExitCode::SUCCESS,
    };
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "notifier failed to start");
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match app
        .run_until_stopped(printwatch_runtime::shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "notifier failed");
            eprintln!("error: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
