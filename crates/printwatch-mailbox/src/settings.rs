//! [`MailboxSettings`]: everything needed to open the mailbox, taken from
//! `[mail.receive]` + `[mail.account]` (or `[mail.pop_before_smtp]`).

use std::path::PathBuf;
use std::time::Duration;

use printwatch_config::{AccountConfig, PopBeforeSmtpConfig, ReceiveConfig, Secret, Security};

use crate::error::MailboxError;

/// Time allowed for the TCP connection when the config names none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one command and its whole answer (a TLS handshake, a
/// login, a whole `RETR`) when the config names none.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The most a server may send in answer to one command other than a
/// message download (`LIST`, `UIDL`, `UID SEARCH`, sizes...): 16 MiB, room
/// for about half a million messages.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;

/// How to reach and log in to a mailbox.
#[derive(Debug, Clone)]
pub struct MailboxSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Extra CA certificates (PEM) trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// The TCP connection.
    pub connect_timeout: Duration,
    /// Each command with its whole answer, the TLS handshake and the
    /// greeting included.
    pub command_timeout: Duration,
    /// Upper bound of the answer to one command other than a download;
    /// downloads are bounded by the `limit` given to
    /// [`crate::Session::fetch`].
    pub max_response_bytes: u64,
}

impl MailboxSettings {
    /// The notification account's mailbox: server from `[mail.receive]`,
    /// login from `[mail.account]`. Fails when the account has no user name
    /// or password (or the password is empty: it could not be read).
    pub fn from_config(
        receive: &ReceiveConfig,
        account: &AccountConfig,
    ) -> Result<Self, MailboxError> {
        let username = account
            .username
            .clone()
            .ok_or_else(|| MailboxError::Config {
                reason: "mail.account.username is not set (the mailbox login)".into(),
            })?;
        let password = account
            .password
            .clone()
            .ok_or_else(|| MailboxError::Config {
                reason: "mail.account has no password (password, password_file or password_env)"
                    .into(),
            })?;
        let settings = MailboxSettings {
            host: receive.host.clone(),
            port: receive.port,
            security: receive.security,
            ca_file: receive.ca_file.clone(),
            username,
            password,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        };
        settings.check()?;
        Ok(settings)
    }

    /// The POP server of `[mail.pop_before_smtp]`, for
    /// [`crate::pop3_login_only`].
    pub fn from_pop_before_smtp(config: &PopBeforeSmtpConfig) -> Result<Self, MailboxError> {
        let settings = MailboxSettings {
            host: config.host.clone(),
            port: config.port,
            security: config.security,
            ca_file: config.ca_file.clone(),
            username: config.username.clone(),
            password: config.password.clone(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        };
        settings.check()?;
        Ok(settings)
    }

    /// `host:port`, as error messages name the server.
    pub fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// What [`crate::connect`] checks before opening a connection: a host,
    /// a user name and password that fit on a command line.
    pub(crate) fn check(&self) -> Result<(), MailboxError> {
        let bad = |reason: String| Err(MailboxError::Config { reason });
        if self.host.trim().is_empty() {
            return bad("the mailbox host is empty".into());
        }
        if self.username.is_empty() {
            return bad("the mailbox user name is empty".into());
        }
        if self.username.chars().any(|c| c.is_control()) {
            return bad("the mailbox user name contains a control character".into());
        }
        if self.password.is_empty() {
            return bad(
                "the mailbox password is empty (it could not be read, or was never given)".into(),
            );
        }
        if self
            .password
            .expose()
            .chars()
            .any(|c| matches!(c, '\r' | '\n' | '\0'))
        {
            return bad("the mailbox password contains a line break or NUL, which POP3 and IMAP cannot carry".into());
        }
        if self.command_timeout.is_zero() || self.connect_timeout.is_zero() {
            return bad("the mailbox timeouts must be longer than zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_config::ReceiveProtocol;

    fn receive() -> ReceiveConfig {
        ReceiveConfig {
            protocol: ReceiveProtocol::Imap,
            host: "mail.example.test".into(),
            port: 993,
            security: Security::Tls,
            ca_file: Some(PathBuf::from("/etc/ca.pem")),
            poll_interval: Duration::from_secs(30),
        }
    }

    fn account(username: Option<&str>, password: Option<&str>) -> AccountConfig {
        AccountConfig {
            address: "printwatch@example.test".into(),
            receive: true,
            username: username.map(str::to_owned),
            password: password.map(Secret::new),
        }
    }

    #[test]
    fn from_config_takes_server_and_login() {
        let s = MailboxSettings::from_config(&receive(), &account(Some("pw"), Some("hunter2")))
            .expect("settings");
        assert_eq!(s.server(), "mail.example.test:993");
        assert_eq!(s.username, "pw");
        assert_eq!(s.password.expose(), "hunter2");
        assert_eq!(s.security, Security::Tls);
        assert_eq!(
            s.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn from_config_needs_a_login() {
        for (user, pass) in [(None, Some("x")), (Some("u"), None), (Some("u"), Some(""))] {
            let err = MailboxSettings::from_config(&receive(), &account(user, pass))
                .expect_err("incomplete login");
            assert!(matches!(err, MailboxError::Config { .. }), "{err}");
        }
    }

    #[test]
    fn line_breaks_are_refused_without_echoing_the_password() {
        let err = MailboxSettings::from_config(&receive(), &account(Some("u"), Some("se\r\ncret")))
            .expect_err("line break");
        assert!(!err.to_string().contains("se\r\ncret"));
        let err =
            MailboxSettings::from_config(&receive(), &account(Some("u\r\nDELE 1"), Some("x")))
                .expect_err("line break in user");
        assert!(matches!(err, MailboxError::Config { .. }));
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let mut r = receive();
        r.host = "::1".into();
        let s = MailboxSettings::from_config(&r, &account(Some("u"), Some("p"))).expect("settings");
        assert_eq!(s.server(), "[::1]:993");
    }
}
