//! `printwatch-inbox`: answers `requeststatus` mails. See the library.

use std::process::ExitCode;

use clap::Parser;
use printwatch_runtime::Service;
use printwatch_runtime::service::ServiceArgs;

/// Polls the notification account and answers `requeststatus` mails with
/// the device's status.
#[derive(Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    printwatch_runtime::service::main::<printwatch_inbox::Application>(
        Service::Inbox,
        "printwatch-inbox",
        args.service,
    )
    .await
}
