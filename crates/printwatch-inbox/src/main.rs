//! `printwatch-inbox`: answers `requeststatus` mails. See the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use printwatch_runtime::{EXIT_FAILURE, Service};

/// Polls the notification account and answers `requeststatus` mails with
/// the device's status.
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
    let mut cfg = match printwatch_runtime::load_config(&args.config, Service::Inbox) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if args.http_listen.is_some() {
        cfg.telemetry.http_listen = args.http_listen;
    }
    let _traces = printwatch_runtime::init_logging(&cfg, "printwatch-inbox");
    let app = tokio::select! {
        built = printwatch_inbox::Application::build(&cfg) => built,
        () = printwatch_runtime::shutdown_signal() => return ExitCode::SUCCESS,
    };
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "inbox failed to start");
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
            eprintln!("error: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
