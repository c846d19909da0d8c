//! `printwatch-notifier`: mails the agent's alert events to the configured
//! groups. See the library for how it works.

use std::process::ExitCode;

use clap::Parser;
use printwatch_runtime::Service;
use printwatch_runtime::service::ServiceArgs;

/// Consumes alert events from NATS JetStream and sends the manual's alert
/// and recovery mails by SMTP.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    printwatch_runtime::service::main::<printwatch_notifier::Application>(
        Service::Notifier,
        "printwatch-notifier",
        args.service,
    )
    .await
}
