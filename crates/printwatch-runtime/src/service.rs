//! The `main` every printwatch service shares: arguments, config with exit
//! code 2, logging and traces, build, run until SIGTERM/SIGINT, exit codes.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use printwatch_config::Config;

use crate::{EXIT_FAILURE, Service};

/// The command line of every service binary.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// The printwatch config file (TOML).
    #[arg(long, env = "PRINTWATCH_CONFIG", default_value = "printwatch.toml")]
    pub config: PathBuf,
    /// Serve /healthz, /readyz and /metrics here (overrides `[telemetry]
    /// http_listen`, so services sharing one config file can each have a port).
    #[arg(long, env = "PRINTWATCH_HTTP_LISTEN")]
    pub http_listen: Option<std::net::SocketAddr>,
}

/// A service that can be built from the config and run until told to stop.
pub trait App: Sized {
    type Error: std::fmt::Display;
    fn build(cfg: &Config) -> impl Future<Output = Result<Self, Self::Error>>;
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// Runs service `A` as `name` (`printwatch-agent`, …): the whole `main`.
pub async fn main<A: App>(service: Service, name: &str, args: ServiceArgs) -> ExitCode {
    let mut cfg = match crate::load_config(&args.config, service) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if args.http_listen.is_some() {
        cfg.telemetry.http_listen = args.http_listen;
    }
    let _traces = crate::init_logging(&cfg, name);
    let app = tokio::select! {
        built = A::build(&cfg) => built,
        () = crate::shutdown_signal() => return ExitCode::SUCCESS,
    };
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            tracing::error!(error = %err, "{name} failed to start");
            eprintln!("error: {err}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    match app.run_until_stopped(crate::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "{name} failed");
            eprintln!("error: {err}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
