//! `[mail]` and its sub-tables: the manual's Device → E-mail settings
//! (SPEC §1.2) — administrator address, language, SMTP with every auth
//! mode, POP before SMTP, the notification account, and reception.
//!
//! `security` is never guessed from a port. Where a password crosses the
//! connection (SMTP with `auth = true`, POP before SMTP, reception) it must
//! be written out, so plain text is a decision and not a default; the
//! port, on the other hand, defaults from the security chosen.

use std::path::PathBuf;
use std::time::Duration;

use printwatch_events::Language;

use crate::duration::{DAY, secs};
use crate::read::{Reader, Scope, Section};
use crate::secret::Resolved;
use crate::secret::Secret;
use crate::validate;

/// `[mail]`.
#[derive(Debug, Clone, Default)]
pub struct MailConfig {
    /// 管理者メールアドレス: gets problem and consumable notices.
    pub admin_address: Option<String>,
    /// Language of mails and reports (`ja` default, `en`).
    pub language: Language,
    pub smtp: Option<SmtpConfig>,
    /// Present only when POP before SMTP is enabled.
    pub pop_before_smtp: Option<PopBeforeSmtpConfig>,
    pub account: Option<AccountConfig>,
    pub receive: Option<ReceiveConfig>,
}

/// Transport security of a mail connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Security {
    /// Plain text.
    #[default]
    None,
    /// Plain connection upgraded with STARTTLS (STLS for POP3); refused if
    /// the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS 465, POP3S 995, IMAPS 993).
    Tls,
}

const SECURITY: &[(&str, Security)] = &[
    ("none", Security::None),
    ("starttls", Security::StartTls),
    ("tls", Security::Tls),
];

/// SMTP authentication encryption (SMTP認証暗号化).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthEncryption {
    /// PLAIN, LOGIN, CRAM-MD5, DIGEST-MD5 (自動選択).
    #[default]
    Auto,
    /// CRAM-MD5, DIGEST-MD5 only (有効).
    On,
    /// PLAIN, LOGIN only (無効).
    Off,
}

/// `[mail.smtp]`.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    /// 25, or 465 with `security = "tls"`.
    pub port: u16,
    pub security: Security,
    /// Extra CA bundle (PEM) trusted for the server certificate.
    pub ca_file: Option<PathBuf>,
    /// SMTP AUTH on/off.
    pub auth: bool,
    /// SMTP認証メールアドレス: the envelope sender when authenticating.
    pub auth_address: Option<String>,
    /// User name; a realm is written `user@realmID`.
    pub username: Option<String>,
    /// `None` when `auth = false`, or when the password could not be read
    /// (then `require_notifier` / `require_inbox` say why).
    pub password: Option<Secret>,
    pub auth_encryption: AuthEncryption,
    pub connect_timeout: Duration,
    /// Per SMTP command.
    pub command_timeout: Duration,
    /// Pooled connections.
    pub max_connections: usize,
    /// Name sent in EHLO; the machine's host name when absent.
    pub helo_name: Option<String>,
}

/// `[mail.pop_before_smtp]`, when enabled.
#[derive(Debug, Clone)]
pub struct PopBeforeSmtpConfig {
    /// Always true here: a disabled section is `None` in [`MailConfig`].
    pub enabled: bool,
    /// The POP server (POPメールアドレス / server).
    pub host: String,
    /// 110, or 995 with `security = "tls"`.
    pub port: u16,
    pub security: Security,
    pub ca_file: Option<PathBuf>,
    pub username: String,
    pub password: Secret,
    /// POP認証後待機時間: between the POP login and the SMTP connection.
    pub wait: Duration,
}

/// `[mail.account]`: the notification account (メール通知アカウント).
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// From: of notifications; the To: of request mails.
    pub address: String,
    /// メール通知の受信: whether request mails are received and answered.
    pub receive: bool,
    /// Mailbox login; required when `receive = true`.
    pub username: Option<String>,
    /// Mailbox password; read only when `receive = true`.
    pub password: Option<Secret>,
}

impl AccountConfig {
    /// The mailbox login, when both parts are there.
    pub fn login(&self) -> Option<(&str, &Secret)> {
        Some((self.username.as_deref()?, self.password.as_ref()?))
    }
}

/// The mailbox protocol of `[mail.receive]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveProtocol {
    Pop3,
    Imap,
}

/// `[mail.receive]`.
#[derive(Debug, Clone)]
pub struct ReceiveConfig {
    pub protocol: ReceiveProtocol,
    pub host: String,
    /// 110 / 995 (POP3, tls) or 143 / 993 (IMAP, tls) unless given.
    pub port: u16,
    pub security: Security,
    pub ca_file: Option<PathBuf>,
    /// How often the mailbox is checked.
    pub poll_interval: Duration,
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> MailConfig {
    let mut c = MailConfig::default();
    let Some(mut s) = r.table(root, "mail") else {
        return c;
    };
    if let Some(a) = r.string(&mut s, "admin_address") {
        match validate::email(&a) {
            Ok(()) => c.admin_address = Some(a),
            Err(e) => r.problem(s.key("admin_address"), e),
        }
    }
    if let Some(l) = r.choice(
        &mut s,
        "language",
        &[("ja", Language::Ja), ("en", Language::En)],
    ) {
        c.language = l;
    }
    if let Some(mut t) = r.table(&mut s, "smtp") {
        c.smtp = smtp(r, &mut t);
        r.finish(t);
    }
    if let Some(mut t) = r.table(&mut s, "pop_before_smtp") {
        c.pop_before_smtp = pop_before_smtp(r, &mut t);
        r.finish(t);
    }
    if let Some(mut t) = r.table(&mut s, "account") {
        c.account = account(r, &mut t);
        r.finish(t);
    }
    if let Some(mut t) = r.table(&mut s, "receive") {
        c.receive = receive(r, &mut t);
        r.finish(t);
    }
    r.finish(s);
    c
}

/// A required host key.
fn host(r: &mut Reader<'_>, s: &mut Section<'_>, key: &str) -> Option<String> {
    let Some(h) = r.string(s, key) else {
        if !s.has(key) {
            r.problem(
                s.key(key),
                "required: a host name or IP address such as mail.example.test",
            );
        }
        return None;
    };
    match validate::host(h.trim()) {
        Ok(()) => Some(h.trim().to_owned()),
        Err(e) => {
            r.problem(s.key(key), e);
            None
        }
    }
}

/// `security`, which must be written out when `password_crosses`.
fn security(r: &mut Reader<'_>, s: &mut Section<'_>, password_crosses: Option<&str>) -> Security {
    let given = r.choice(s, "security", SECURITY);
    if let (None, Some(why)) = (given, password_crosses)
        && !s.has("security")
    {
        r.problem(
            s.key("security"),
            format!("required {why}: \"starttls\", \"tls\", or \"none\" to send the password in plain text"),
        );
    }
    given.unwrap_or_default()
}

/// `ca_file`, only meaningful with TLS.
fn ca_file(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    scope: Scope,
    security: Security,
) -> Option<PathBuf> {
    let p = r.path(s, "ca_file")?;
    if security == Security::None {
        r.problem(
            s.key("ca_file"),
            "only used with security = \"starttls\" or \"tls\"",
        );
    }
    r.check_file(scope, s.key("ca_file"), &p);
    Some(p)
}

fn single_line(r: &mut Reader<'_>, s: &mut Section<'_>, key: &str) -> Option<String> {
    let v = r.string(s, key)?;
    match validate::header_text(&v) {
        Ok(()) if !v.is_empty() => Some(v),
        Ok(()) => {
            r.problem(s.key(key), "must not be empty");
            None
        }
        Err(e) => {
            r.problem(s.key(key), e);
            None
        }
    }
}

fn address(r: &mut Reader<'_>, s: &mut Section<'_>, key: &str) -> Option<String> {
    let a = r.string(s, key)?;
    match validate::email(&a) {
        Ok(()) => Some(a),
        Err(e) => {
            r.problem(s.key(key), e);
            None
        }
    }
}

fn missing_secret(r: &mut Reader<'_>, scope: Scope, key: String, var: &str, why: &str) {
    r.defer(
        scope,
        key,
        format!("required {why}: give password, password_file or password_env, or set {var}"),
    );
}

fn smtp(r: &mut Reader<'_>, t: &mut Section<'_>) -> Option<SmtpConfig> {
    const VAR: &str = "PRINTWATCH_MAIL_SMTP_PASSWORD";
    let host = host(r, t, "host");
    let auth = r.bool(t, "auth").unwrap_or(false);
    let security = security(r, t, auth.then_some("with auth = true"));
    let port = r
        .port(t, "port")
        .unwrap_or(if security == Security::Tls { 465 } else { 25 });
    let ca_file = ca_file(r, t, Scope::Smtp, security);
    let auth_address = address(r, t, "auth_address");
    let username = single_line(r, t, "username");
    let password = r.secret_if(t, "password", Scope::Smtp, Some(VAR), auth);
    if auth {
        if username.is_none() && !t.has("username") {
            r.problem(
                t.key("username"),
                "required with auth = true (a realm is written user@realmID)",
            );
        }
        if !password.is_given() {
            missing_secret(r, Scope::Smtp, t.key("password"), VAR, "with auth = true");
        }
    } else {
        for key in ["username", "password", "password_file", "password_env"] {
            if t.has(key) {
                r.problem(
                    t.key(key),
                    "only used with auth = true; set auth = true or remove it",
                );
            }
        }
    }
    let auth_encryption = r
        .choice(
            t,
            "auth_encryption",
            &[
                ("auto", AuthEncryption::Auto),
                ("on", AuthEncryption::On),
                ("off", AuthEncryption::Off),
            ],
        )
        .unwrap_or_default();
    let connect_timeout = r
        .duration(t, "connect_timeout", secs(1), DAY)
        .unwrap_or(secs(10));
    let command_timeout = r
        .duration(t, "command_timeout", secs(1), DAY)
        .unwrap_or(secs(30));
    let max_connections = r
        .integer(t, "max_connections", 1, 64, "a connection count 1..=64")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(4);
    let helo_name = r
        .string(t, "helo_name")
        .and_then(|h| match validate::host(&h) {
            Ok(()) => Some(h),
            Err(e) => {
                r.problem(t.key("helo_name"), e);
                None
            }
        });
    Some(SmtpConfig {
        host: host?,
        port,
        security,
        ca_file,
        auth,
        auth_address,
        username,
        password: password.ok(),
        auth_encryption,
        connect_timeout,
        command_timeout,
        max_connections,
        helo_name,
    })
}

fn pop_before_smtp(r: &mut Reader<'_>, t: &mut Section<'_>) -> Option<PopBeforeSmtpConfig> {
    const VAR: &str = "PRINTWATCH_MAIL_POP_BEFORE_SMTP_PASSWORD";
    let enabled = r.bool(t, "enabled").unwrap_or(true);
    if !enabled {
        // Read every key so typos still show, but require and read nothing.
        for key in ["host", "username", "security", "ca_file"] {
            r.string(t, key);
        }
        r.port(t, "port");
        r.duration(t, "wait", std::time::Duration::ZERO, secs(3600));
        r.secret_if(t, "password", Scope::PopBeforeSmtp, Some(VAR), false);
        return None;
    }
    let host = host(r, t, "host");
    let security = security(r, t, Some("when POP before SMTP is enabled"));
    let port = r
        .port(t, "port")
        .unwrap_or(if security == Security::Tls { 995 } else { 110 });
    let ca_file = ca_file(r, t, Scope::PopBeforeSmtp, security);
    let username = single_line(r, t, "username");
    if username.is_none() && !t.has("username") {
        r.problem(
            t.key("username"),
            "required when POP before SMTP is enabled",
        );
    }
    let password = r.secret(t, "password", Scope::PopBeforeSmtp, Some(VAR));
    if !password.is_given() {
        missing_secret(
            r,
            Scope::PopBeforeSmtp,
            t.key("password"),
            VAR,
            "when POP before SMTP is enabled",
        );
    }
    let wait = r
        .duration(t, "wait", std::time::Duration::ZERO, secs(3600))
        .unwrap_or(Duration::from_millis(300));
    Some(PopBeforeSmtpConfig {
        enabled,
        host: host?,
        port,
        security,
        ca_file,
        username: username?,
        password: password
            .or_placeholder()
            .unwrap_or_else(|| Secret::new(String::new())),
        wait,
    })
}

fn account(r: &mut Reader<'_>, t: &mut Section<'_>) -> Option<AccountConfig> {
    const VAR: &str = "PRINTWATCH_MAIL_ACCOUNT_PASSWORD";
    let address = address(r, t, "address");
    if !t.has("address") {
        r.problem(
            t.key("address"),
            "required: the notification address, such as printwatch@example.test",
        );
    }
    let receive = r.bool(t, "receive").unwrap_or(false);
    let username = single_line(r, t, "username");
    let password = r.secret_if(t, "password", Scope::Account, Some(VAR), receive);
    if receive {
        if username.is_none() && !t.has("username") {
            r.problem(
                t.key("username"),
                "required with receive = true (the mailbox login)",
            );
        }
        if !password.is_given() {
            missing_secret(
                r,
                Scope::Account,
                t.key("password"),
                VAR,
                "with receive = true",
            );
        }
    }
    let password = match password {
        Resolved::Given(p) => Some(p),
        _ => None,
    };
    Some(AccountConfig {
        address: address?,
        receive,
        username,
        password,
    })
}

fn receive(r: &mut Reader<'_>, t: &mut Section<'_>) -> Option<ReceiveConfig> {
    let protocol = r.choice(
        t,
        "protocol",
        &[
            ("pop3", ReceiveProtocol::Pop3),
            ("imap", ReceiveProtocol::Imap),
            ("imap4", ReceiveProtocol::Imap),
        ],
    );
    if protocol.is_none() && !t.has("protocol") {
        r.problem(t.key("protocol"), "required: \"pop3\" or \"imap\"");
    }
    let host = host(r, t, "host");
    let security = security(
        r,
        t,
        Some("(the account's password crosses this connection)"),
    );
    let default_port = match (protocol, security) {
        (Some(ReceiveProtocol::Imap), Security::Tls) => 993,
        (Some(ReceiveProtocol::Imap), _) => 143,
        (_, Security::Tls) => 995,
        _ => 110,
    };
    let port = r.port(t, "port").unwrap_or(default_port);
    let ca_file = ca_file(r, t, Scope::Receive, security);
    let poll_interval = r
        .duration(t, "poll_interval", secs(1), DAY)
        .unwrap_or(secs(30));
    Some(ReceiveConfig {
        protocol: protocol?,
        host: host?,
        port,
        security,
        ca_file,
        poll_interval,
    })
}
