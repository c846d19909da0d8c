//! `printwatch`: the operator's command (SPEC §3.4).
//!
//! Every command prints its result on stdout, or one line `error: …` on
//! stderr and exits non-zero (2 for a bad config, 1 otherwise). `--json`
//! prints data commands' results as JSON.
//!
//! `test-mail` needs no agent: it sends with the config's `[mail.smtp]`
//! directly. Every other command talks to an agent.

mod agent;
mod json;
mod test_mail;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use printwatch_config::{Config, ProcessEnv};

/// Operator commands for printwatch.
#[derive(Parser)]
#[command(name = "printwatch", version)]
struct Cli {
    /// The config file (default `printwatch.toml`, or $PRINTWATCH_CONFIG).
    #[arg(long, global = true, env = "PRINTWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// The agent's gRPC URL (default: the config's `agent.advertise`).
    #[arg(long, global = true)]
    agent: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with config files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// List the agent's devices with their state and active conditions.
    Devices,
    /// Show one device's status report (what a `requeststatus` reply carries).
    Status { device: String },
    /// Raise an alert item on a simulated device.
    Raise {
        device: String,
        item: String,
        /// The device's detail text (which tray, which cover…).
        #[arg(long, default_value = "")]
        detail: String,
    },
    /// Clear an alert item on a simulated device.
    Clear { device: String, item: String },
    /// Set a simulated device's toner level (0–100 %).
    Toner { device: String, percent: i32 },
    /// Send a test mail with the configured SMTP settings; on failure, name
    /// the step that failed (connect, TLS, auth, sender, recipient, data).
    TestMail {
        /// Where to send it.
        address: String,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a config file; exit 0, or 2 naming each bad key and why.
    ///
    /// Also reads every secret and file the config names (`*_file`,
    /// `*_env`, certificates), as the services will at start.
    Check {
        file: PathBuf,
        /// Check the file alone: do not read the secrets and files it names
        /// (for checking a config away from where it is deployed).
        #[arg(long)]
        file_only: bool,
    },
}

/// A failure with the exit code it deserves.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::Config {
        command: ConfigCommand::Check { file, file_only },
    } = &cli.command
    {
        return check(file, *file_only, cli.json);
    }
    if let Command::TestMail { address } = &cli.command {
        let cfg = load_for_mail(&cli)?;
        return test_mail::run(&cfg, address, cli.json).await;
    }
    let cfg = load(&cli)?;
    let url = match (&cli.agent, &cfg) {
        (Some(url), _) => url.clone(),
        (None, Some(cfg)) => cfg.agent.advertise.clone(),
        (None, None) => {
            return Err(Failure::new(
                "no agent: give --agent URL or a config file with [agent] advertise",
            ));
        }
    };
    let lang = cfg.as_ref().map(|c| c.mail.language).unwrap_or_default();
    let mut client = agent::connect(&url).await?;
    match cli.command {
        Command::Config { .. } | Command::TestMail { .. } => Ok(()),
        Command::Devices => agent::devices(&mut client, cli.json, lang).await,
        Command::Status { device } => agent::status(&mut client, &device, cli.json, lang).await,
        Command::Raise {
            device,
            item,
            detail,
        } => {
            agent::set(
                &mut client,
                &device,
                agent::Change::Raise { item, detail },
                cli.json,
            )
            .await
        }
        Command::Clear { device, item } => {
            agent::set(
                &mut client,
                &device,
                agent::Change::Clear { item },
                cli.json,
            )
            .await
        }
        Command::Toner { device, percent } => {
            agent::set(
                &mut client,
                &device,
                agent::Change::Toner(percent),
                cli.json,
            )
            .await
        }
    }
}

/// Loads the config for commands that talk to an agent: the given file
/// must be valid; the default file may be absent when `--agent` is given.
fn load(cli: &Cli) -> Result<Option<Config>, Failure> {
    let (path, explicit) = match &cli.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("printwatch.toml"), false),
    };
    if !explicit && !path.exists() && cli.agent.is_some() {
        return Ok(None);
    }
    printwatch_config::load(&path, &ProcessEnv)
        .map(Some)
        .map_err(|e| Failure {
            code: 2,
            message: format!("invalid configuration\n{e}"),
        })
}

/// Loads the config for `test-mail`, which cannot do without one.
fn load_for_mail(cli: &Cli) -> Result<Config, Failure> {
    let path = cli
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("printwatch.toml"));
    printwatch_config::load(&path, &ProcessEnv).map_err(|e| Failure {
        code: 2,
        message: format!("invalid configuration\n{e}"),
    })
}

fn check(file: &std::path::Path, file_only: bool, as_json: bool) -> Result<(), Failure> {
    let checked = printwatch_config::load(file, &ProcessEnv).and_then(|cfg| {
        if file_only {
            Ok(cfg)
        } else {
            cfg.require_resolved().map(|()| cfg)
        }
    });
    match checked {
        Ok(cfg) => {
            if as_json {
                println!(
                    "{}",
                    serde_json::json!({"file": file.display().to_string(), "valid": true, "devices": cfg.devices.len()})
                );
            } else {
                println!("{}: valid ({} devices)", file.display(), cfg.devices.len());
            }
            Ok(())
        }
        Err(err) => {
            if as_json {
                let problems: Vec<_> = err
                    .problems
                    .iter()
                    .map(|p| serde_json::json!({"key": p.key, "reason": p.reason}))
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({"file": file.display().to_string(), "valid": false, "problems": problems})
                );
            }
            Err(Failure {
                code: 2,
                message: err.to_string(),
            })
        }
    }
}
