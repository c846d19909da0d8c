//! The whole configuration, and what each service needs from it.
//!
//! One file serves every service (SPEC §3.1), so parsing checks the file
//! itself for everyone, and each binary then calls its `require_*`: the
//! sections it cannot run without, and the secrets and files of those
//! sections (a missing SMTP password stops the notifier, not the agent).

use std::path::{Path, PathBuf};

use printwatch_events::Names;

use crate::agent::AgentConfig;
use crate::alerts::AlertsConfig;
use crate::device::DeviceConfig;
use crate::error::{ConfigError, Problem};
use crate::mail::MailConfig;
use crate::nats::NatsConfig;
use crate::notifier::NotifierConfig;
use crate::on_demand::OnDemandConfig;
use crate::read::{Deferred, Scope};
use crate::telemetry::TelemetryConfig;

/// A parsed, validated configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub nats: NatsConfig,
    pub agent: AgentConfig,
    pub devices: Vec<DeviceConfig>,
    pub mail: MailConfig,
    pub alerts: AlertsConfig,
    pub on_demand: OnDemandConfig,
    pub notifier: NotifierConfig,
    pub telemetry: TelemetryConfig,
    pub(crate) present: Present,
    pub(crate) deferred: Vec<Deferred>,
    pub(crate) file: Option<PathBuf>,
}

/// What the file wrote out, where a default is not the same as absent.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Present {
    pub advertise: bool,
    pub on_demand: bool,
}

impl Config {
    /// The stream, subject and bucket names of `[nats]`.
    pub fn names(&self) -> Names {
        Names {
            subject_prefix: self.nats.subject_prefix.clone(),
            stream: self.nats.stream.clone(),
            bucket_prefix: self.nats.bucket_prefix.clone(),
        }
    }

    /// The device with this id.
    pub fn device(&self, id: &str) -> Option<&DeviceConfig> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// The device whose `mail_address` is `address` (without letter case):
    /// where a request mail sent to that address is for.
    pub fn device_by_mail_address(&self, address: &str) -> Option<&DeviceConfig> {
        let address = address.trim();
        self.devices.iter().find(|d| {
            d.mail_address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(address))
        })
    }

    /// The file this configuration was loaded from.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// What `printwatch-agent` needs: at least one device, an advertise
    /// URL others can reach, and the NATS and device secrets and files.
    pub fn require_agent(&self) -> Result<(), ConfigError> {
        let mut problems = self.deferred_in(&[Scope::Nats, Scope::Devices]);
        if self.devices.is_empty() {
            problems.push(Problem::new(
                "devices",
                "printwatch-agent needs at least one [[devices]] entry",
            ));
        }
        if !self.present.advertise && self.agent.grpc_listen.ip().is_unspecified() {
            problems.push(Problem::new(
                "agent.advertise",
                format!(
                    "required when agent.grpc_listen is {} (no one can connect to an unspecified address); \
                     give the URL other services use, such as http://printwatch-agent:{}",
                    self.agent.grpc_listen,
                    self.agent.grpc_listen.port()
                ),
            ));
        }
        self.result(problems)
    }

    /// What `printwatch-notifier` needs: `[mail.smtp]` with its password
    /// (and POP before SMTP's) readable, a From: address, and at least one
    /// route for alerts.
    pub fn require_notifier(&self) -> Result<(), ConfigError> {
        let mut problems = self.deferred_in(&[Scope::Nats, Scope::Smtp, Scope::PopBeforeSmtp]);
        if self.mail.smtp.is_none() {
            problems.push(Problem::new(
                "mail.smtp",
                "printwatch-notifier needs [mail.smtp] (host, port, security, auth)",
            ));
        }
        let every_device_has_address =
            !self.devices.is_empty() && self.devices.iter().all(|d| d.mail_address.is_some());
        if self.mail.account.is_none() && !every_device_has_address {
            problems.push(Problem::new(
                "mail.account",
                "printwatch-notifier needs [mail.account] address: the From: of notifications for devices without mail_address",
            ));
        }
        let routed = self.alerts.items.values().any(|i| !i.groups.is_empty())
            || self.devices.iter().any(|d| !d.extra_groups.is_empty());
        if !routed {
            problems.push(Problem::new(
                "alerts.items",
                "no alert item names a group (and no device has extra_groups), so nothing would be mailed; \
                 set groups = [...] in [alerts.items.<item>]",
            ));
        }
        self.result(problems)
    }

    /// What `printwatch-inbox` needs: the notification account with
    /// `receive = true` and its login, `[mail.receive]`, `[mail.smtp]` for
    /// replies, and `[on_demand]` saying who may ask.
    pub fn require_inbox(&self) -> Result<(), ConfigError> {
        let mut problems = self.deferred_in(&[
            Scope::Nats,
            Scope::Smtp,
            Scope::PopBeforeSmtp,
            Scope::Account,
            Scope::Receive,
        ]);
        // Requests are read from the shared account (receive = true) and
        // from every device's own [devices.mailbox].
        let device_mailboxes = self.devices.iter().any(|d| d.mailbox.is_some());
        match &self.mail.account {
            _ if device_mailboxes => {}
            None => problems.push(Problem::new(
                "mail.account",
                "printwatch-inbox needs [mail.account] (address, receive = true, username, password) or a device with [devices.mailbox]",
            )),
            Some(a) if !a.receive => problems.push(Problem::new(
                "mail.account.receive",
                "is false, so request mails are not received; set receive = true (or give devices a [devices.mailbox]) to run printwatch-inbox",
            )),
            Some(_) => {}
        }
        if self.mail.receive.is_none() {
            problems.push(Problem::new(
                "mail.receive",
                "printwatch-inbox needs [mail.receive] (protocol, host, security)",
            ));
        }
        if self.mail.smtp.is_none() {
            problems.push(Problem::new(
                "mail.smtp",
                "printwatch-inbox replies by SMTP and needs [mail.smtp]",
            ));
        }
        if !self.present.on_demand {
            problems.push(Problem::new(
                "on_demand",
                "printwatch-inbox needs [on_demand] (allowed_senders, common_subject, restrict)",
            ));
        } else if self.on_demand.allowed_senders.is_empty() && !self.on_demand.restrict {
            problems.push(Problem::new(
                "on_demand.allowed_senders",
                "is empty, so no request would be answered; list addresses or domains, or set restrict = true",
            ));
        }
        self.result(problems)
    }

    /// Every secret and file the configuration names can be read in this
    /// environment (what `printwatch config check` reports besides the
    /// file's own problems).
    pub fn require_resolved(&self) -> Result<(), ConfigError> {
        self.result(self.deferred.iter().map(|d| d.problem.clone()).collect())
    }

    /// Whether `[agent] advertise` was written out (rather than derived
    /// from `grpc_listen`).
    pub fn advertise_is_explicit(&self) -> bool {
        self.present.advertise
    }

    fn deferred_in(&self, scopes: &[Scope]) -> Vec<Problem> {
        self.deferred
            .iter()
            .filter(|d| scopes.contains(&d.scope))
            .map(|d| d.problem.clone())
            .collect()
    }

    fn result(&self, problems: Vec<Problem>) -> Result<(), ConfigError> {
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::new(self.file.clone(), problems))
        }
    }
}
