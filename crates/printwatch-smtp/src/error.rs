//! What a send gives back: a [`Delivery`] with each recipient's fate, or a
//! [`SendError`] that names the [`Step`] that failed — so `printwatch
//! test-mail` can say "failed at auth" and the notifier can decide in one
//! place between retrying later and giving up.
//!
//! No message built here or in the rest of the crate contains a password:
//! reasons are the server's own replies, I/O errors, or text that names
//! settings (never their values, except host, port and user name).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The result of one accepted transaction.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Recipients the server took the message for (RCPT 2xx, then DATA
    /// accepted).
    pub accepted: Vec<String>,
    /// Recipients refused at RCPT, or never sent because the address is
    /// malformed.
    pub refused: Vec<Refused>,
}

/// A recipient the server (or printwatch, for a malformed address) refused.
#[derive(Debug, Clone)]
pub struct Refused {
    pub recipient: String,
    /// True for a 5xx reply, or an address that can never be sent to (see
    /// `reply`); false for a 4xx reply (try again later).
    pub permanent: bool,
    /// The server's reply, code first: `550 5.1.1 <x@example.test>:
    /// Recipient address rejected: ...`. For an address printwatch did not
    /// even send, `invalid address: <why>`.
    pub reply: String,
}

/// The step of a send that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The POP3 login of POP before SMTP.
    PopBeforeSmtp,
    /// TCP connect, the greeting, EHLO.
    Connect,
    /// STARTTLS or the TLS handshake (certificate checks included).
    Tls,
    /// SMTP AUTH: choosing a mechanism and logging in.
    Auth,
    /// MAIL FROM (and checks of the sender and the message before it).
    Sender,
    /// RCPT TO.
    Recipient,
    /// DATA, the message and the final reply.
    Data,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::PopBeforeSmtp => "POP before SMTP",
            Step::Connect => "connect",
            Step::Tls => "TLS",
            Step::Auth => "auth",
            Step::Sender => "sender",
            Step::Recipient => "recipient",
            Step::Data => "data",
        })
    }
}

/// A send that failed as a whole.
///
/// `permanent` tells whether the same attempt, repeated unchanged, would
/// fail the same way: a 5xx reply, a certificate that does not verify, a
/// server that offers no mechanism `auth_encryption` allows. It describes
/// the attempt, not the message: for [`Step::Connect`], [`Step::Tls`],
/// [`Step::Auth`] and [`Step::PopBeforeSmtp`] the fault is in the settings
/// or the server (a wrong password gives `535`, so `permanent = true`), and
/// a caller holding mail should keep it and retry with backoff, as the
/// notifier does. Only a permanent [`Step::Sender`] or [`Step::Data`] says
/// something about the message itself.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {reason}")]
pub struct SendError {
    pub step: Step,
    /// True for a 5xx reply or a refusal that retrying cannot fix (e.g.
    /// auth_encryption=on and the server offers neither CRAM-MD5 nor
    /// DIGEST-MD5).
    pub permanent: bool,
    pub reason: String,
    /// The connection broke after the whole message and its final dot were
    /// handed over, before the server's reply: it may have been delivered.
    pub(crate) outcome_unknown: bool,
}

impl SendError {
    /// An error of `step`; `outcome_unknown` is false.
    pub fn new(step: Step, permanent: bool, reason: impl Into<String>) -> SendError {
        SendError {
            step,
            permanent,
            reason: reason.into(),
            outcome_unknown: false,
        }
    }

    /// True when the connection failed after the message was completely
    /// handed over (final dot sent) but before the server answered: the
    /// mail has most likely been delivered, and sending it again may
    /// duplicate it. Always [`Step::Data`] and not permanent.
    pub fn outcome_unknown(&self) -> bool {
        self.outcome_unknown
    }

    pub(crate) fn unknown_outcome(reason: impl Into<String>) -> SendError {
        SendError {
            step: Step::Data,
            permanent: false,
            reason: reason.into(),
            outcome_unknown: true,
        }
    }

    pub(crate) fn timeout(step: Step, what: &str, limit: Duration) -> SendError {
        SendError::new(
            step,
            false,
            format!("no answer to {what} within {}", humanize(limit)),
        )
    }

    /// From a lettre error: a server reply keeps its code and text and is
    /// permanent for 5xx; anything else (network, malformed reply) is not.
    pub(crate) fn from_smtp(step: Step, e: &lettre::transport::smtp::Error) -> SendError {
        match Reply::of(e) {
            Some(r) => SendError::new(step, r.permanent(), r.text),
            None => SendError::new(step, false, describe(e)),
        }
    }
}

/// Why a [`crate::Mailer`] could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot use the CA file {path} ({key}): {reason}")]
    CaFile {
        /// The config key that names it (`mail.smtp.ca_file`, ...).
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{key}: {reason}")]
    Setting { key: &'static str, reason: String },
    #[error("cannot set up TLS for {host}: {reason}")]
    Tls { host: String, reason: String },
}

/// A server's negative reply, as text with its code.
pub(crate) struct Reply {
    pub code: u16,
    pub text: String,
}

impl Reply {
    /// The reply inside a lettre error, if the error is one.
    pub fn of(e: &lettre::transport::smtp::Error) -> Option<Reply> {
        let code = e.status()?;
        let message = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let text = if message.is_empty() {
            code.to_string()
        } else {
            format!("{code} {message}")
        };
        Some(Reply {
            code: u16::from(code),
            text,
        })
    }

    pub fn permanent(&self) -> bool {
        self.code >= 500
    }
}

/// A lettre error that is not a reply: its text, with lettre's kind word
/// ("network error: ...") kept.
pub(crate) fn describe(e: &lettre::transport::smtp::Error) -> String {
    let s = e.to_string();
    if s.is_empty() { format!("{e:?}") } else { s }
}

/// `30s`, `1.5s`, `500ms`.
pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_print_as_the_cli_names_them() {
        let names: Vec<String> = [
            Step::PopBeforeSmtp,
            Step::Connect,
            Step::Tls,
            Step::Auth,
            Step::Sender,
            Step::Recipient,
            Step::Data,
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "POP before SMTP",
                "connect",
                "TLS",
                "auth",
                "sender",
                "recipient",
                "data"
            ]
        );
        let e = SendError::new(Step::Auth, true, "535 5.7.8 Error: authentication failed");
        assert_eq!(
            e.to_string(),
            "auth: 535 5.7.8 Error: authentication failed"
        );
        assert!(!e.outcome_unknown());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_millis(500)), "500ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
