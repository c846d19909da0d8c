//! printwatch's configuration (SPEC §3.1): one TOML file for the agent,
//! the notifier, the inbox and the CLI, parsed once into typed structs.
//!
//! - [`load`] / [`parse`] read the file, resolve the secrets and check
//!   everything that is the file's own business: every unknown key (with
//!   its full path), every bad value (with the expected form), every
//!   dangling reference — all of them, not just the first.
//! - Each service then calls its `require_*` ([`Config::require_agent`],
//!   [`Config::require_notifier`], [`Config::require_inbox`]): the sections
//!   it needs, and the secrets and files *it* uses. So one file can serve
//!   every service while each container holds only its own secrets.
//! - Secrets are [`Secret`]s: `[redacted]` in `Debug`/`Display`, read
//!   inline, from `*_file` or `*_env`, and overridden by `PRINTWATCH_*`
//!   variables (see [`secret::override_var`] and docs/configuration.md).
//! - The environment is read through [`Env`], so tests pass a map.
//!
//! A bad file is a [`ConfigError`] whose `Display` is one line per problem,
//! `<file>: <key>: <reason>`; binaries exit with [`ConfigError::EXIT_CODE`].

mod agent;
mod alerts;
mod config;
mod device;
mod duration;
mod env;
mod error;
mod mail;
mod nats;
mod notifier;
mod on_demand;
mod read;
pub mod secret;
pub mod source;
mod telemetry;
mod validate;
pub mod vendor;

use std::io::Read;
use std::path::Path;

pub use agent::{
    AgentConfig, DEFAULT_GRPC_LISTEN, DEFAULT_MAX_CONCURRENT_READS, DEFAULT_POLL_JITTER,
    DEFAULT_READ_TIMEOUT, DEFAULT_UNREACHABLE_AFTER, Polling,
};
pub use alerts::{
    AlertsConfig, DEFAULT_STORAGE_THRESHOLD_PERCENT, DEFAULT_TONER_THRESHOLD_PERCENT, ItemConfig,
};
pub use config::Config;
pub use device::{DEFAULT_MODEL, DeviceConfig, DeviceMailbox, SimulatedSettings};
pub use env::{Env, NoEnv, ProcessEnv};
pub use error::{ConfigError, Problem};
pub use mail::{
    AccountConfig, AuthEncryption, MailConfig, PopBeforeSmtpConfig, ReceiveConfig, ReceiveProtocol,
    Security, SmtpConfig,
};
pub use nats::{DEFAULT_NATS_URL, NatsAuth, NatsConfig, NatsTls};
pub use notifier::NotifierConfig;
pub use on_demand::{DEFAULT_MAX_REQUEST_BYTES, OnDemandConfig, SenderPattern};
pub use printwatch_events::{AlertItem, Language};
pub use secret::Secret;
pub use source::{DeviceSource, IppSource, SnmpAuthProtocol, SnmpPrivProtocol, SnmpSource, SnmpV3};
pub use telemetry::{LogFormat, TelemetryConfig};
pub use vendor::{VendorSignal, VendorSignals};

use crate::read::{Reader, Section};

/// The largest configuration file read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads, parses and checks the configuration file at `path`. Relative
/// paths in it (`*_file`, `ca_file`, ...) are taken from the file's folder.
pub fn load(path: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    let fail =
        |reason: String| ConfigError::new(Some(path.to_path_buf()), vec![Problem::new("", reason)]);
    let file = std::fs::File::open(path)
        .map_err(|e| fail(format!("cannot read the configuration file: {e}")))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the configuration file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(fail("the configuration file is larger than 16 MiB".into()));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "the configuration file is not UTF-8 (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parse_from(&text, base_dir, env, Some(path))
}

/// Parses and checks configuration text; relative paths in it are taken
/// from `base_dir`. For tests and for text that did not come from a file.
pub fn parse(text: &str, base_dir: &Path, env: &dyn Env) -> Result<Config, ConfigError> {
    parse_from(text, base_dir, env, None)
}

fn parse_from(
    text: &str,
    base_dir: &Path,
    env: &dyn Env,
    file: Option<&Path>,
) -> Result<Config, ConfigError> {
    let file = file.map(Path::to_path_buf);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::new(file.clone(), vec![syntax_problem(&e, text)])
    })?;

    let mut r = Reader::new(env, base_dir);
    let mut root = Section::root(&table);
    let nats = nats::read(&mut r, &mut root);
    let (agent, advertise) = agent::read(&mut r, &mut root);
    let alerts = alerts::read(&mut r, &mut root);
    let devices = device::read(&mut r, &mut root, &alerts.groups);
    let mail = mail::read(&mut r, &mut root);
    let on_demand_present = root.has("on_demand");
    let on_demand = on_demand::read(&mut r, &mut root);
    let notifier = notifier::read(&mut r, &mut root);
    let telemetry = telemetry::read(&mut r, &mut root);
    r.finish(root);

    if !r.problems.is_empty() {
        // The file must be fixed anyway: name every problem at once,
        // unreadable secrets and files included.
        let mut problems = r.problems;
        problems.extend(r.deferred.into_iter().map(|d| d.problem));
        return Err(ConfigError::new(file, problems));
    }
    Ok(Config {
        nats,
        agent,
        devices,
        mail,
        alerts,
        on_demand,
        notifier,
        telemetry,
        present: config::Present {
            advertise,
            on_demand: on_demand_present,
        },
        deferred: r.deferred,
        file,
    })
}

/// A TOML syntax error as one problem: line, column and what was wrong.
fn syntax_problem(e: &toml::de::Error, text: &str) -> Problem {
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(span) = e.span() else {
        return Problem::new("", format!("TOML syntax error: {message}"));
    };
    let mut at = span.start.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Problem::new(
        "",
        format!("TOML syntax error at line {line}, column {column}: {message}"),
    )
}
