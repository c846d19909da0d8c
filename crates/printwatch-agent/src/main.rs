//! `printwatch-agent`: watches the configured devices and publishes their
//! alert events. See the library for how it works.

use std::process::ExitCode;

use clap::Parser;
use printwatch_runtime::Service;
use printwatch_runtime::service::ServiceArgs;

/// Watches printers, publishes occurred/recovered events to NATS and serves
/// device status over gRPC.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    printwatch_runtime::service::main::<printwatch_agent::Application>(
        Service::Agent,
        "printwatch-agent",
        args.service,
    )
    .await
}
