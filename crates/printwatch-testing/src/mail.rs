//! The local mail test bed (Postfix + Dovecot, `deploy/dev/mailbed.sh`) and
//! clients to use it from tests: inject mail over plain SMTP, read mailboxes
//! over IMAP and POP3 (plain, STARTTLS or implicit TLS, trusting the bed's
//! own CA).
//!
//! Every test uses its own fresh address ([`MailBed::fresh_address`]): the
//! bed accepts mail for any local part of its domain and creates the mailbox
//! on first delivery, and every such address can log in (IMAP, POP3, SMTP
//! AUTH) with [`MailBed::password_for`].
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use printwatch_testing::mail::MailBed;
//!
//! let bed = MailBed::shared()?;
//! let to = bed.fresh_address("ops");
//! bed.send_plain("printer@printwatch.test", &to, "hello", "body").await?;
//! let mails = bed.wait_for_mail(&to, 1, Duration::from_secs(10)).await?;
//! assert_eq!(mails[0].subject(), Some("hello"));
//! # Ok(()) }
//! ```

mod imap;
mod pop3;
mod received;
mod smtp;
mod stream;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustls::pki_types::ServerName;

pub use received::ReceivedMail;

/// How a client protects its connection to the bed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// Plain TCP, plaintext login (the bed allows it on its plain ports).
    None,
    /// Plain port, then STARTTLS (IMAP) / STLS (POP3) before logging in.
    StartTls,
    /// Implicit TLS from the first byte (IMAPS, POP3S).
    Tls,
}

impl Security {
    /// All three, for tests that try each one.
    pub const ALL: [Security; 3] = [Security::None, Security::StartTls, Security::Tls];
}

/// Default time a single network step (connect, login, fetch…) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often [`MailBed::wait_for_mail`] looks at the mailbox.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A running mail test bed, as described by its `$PW_MAIL_DIR/env` file.
#[derive(Debug, Clone)]
pub struct MailBed {
    dir: PathBuf,
    domain: String,
    host: String,
    smtp_port: u16,
    submission_port: u16,
    smtps_port: u16,
    submission_plain_only_port: u16,
    imap_port: u16,
    imaps_port: u16,
    pop3_port: u16,
    pop3s_port: u16,
    ca_file: PathBuf,
    postfix_log: PathBuf,
    dovecot_log: PathBuf,
    default_password: String,
    named_users: Vec<String>,
    named_password_prefix: String,
}

impl MailBed {
    /// The shared bed of this machine: reads `$PW_MAIL_DIR/env` (default
    /// `/tmp/pw-mail/env`) if the bed it describes answers, otherwise runs
    /// `deploy/dev/mailbed.sh start` (which installs and starts it; safe
    /// when many test processes do so at once) and reads the file then.
    pub fn shared() -> Result<MailBed> {
        // Within one process, start at most once at a time; across processes
        // the script's own flock serialises.
        static START: Mutex<()> = Mutex::new(());
        let env_file = Self::state_dir().join("env");
        if let Ok(bed) = MailBed::from_env_file(&env_file)
            && bed.answers()
        {
            return Ok(bed);
        }
        let _guard = START
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Ok(bed) = MailBed::from_env_file(&env_file)
            && bed.answers()
        {
            return Ok(bed);
        }
        crate::process::run_bed_script(&Self::script_path(), &["start"], &[], "the mail bed")?;
        let bed = MailBed::from_env_file(&env_file)?;
        if !bed.answers() {
            bail!(
                "the mail test bed was started but {}:{} does not accept connections; see {}",
                bed.host,
                bed.smtp_port,
                bed.postfix_log.display()
            );
        }
        Ok(bed)
    }

    /// Reads a bed description (`KEY=value` lines as printed by
    /// `mailbed.sh env`) without checking that the bed runs.
    pub fn from_env_file(path: &Path) -> Result<MailBed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading mail test bed description {}", path.display()))?;
        let vars = parse_env(&text);
        let get = |key: &str| -> Result<String> {
            vars.get(key)
                .cloned()
                .with_context(|| format!("{} has no {key}", path.display()))
        };
        let port = |key: &str| -> Result<u16> {
            let v = get(key)?;
            v.parse()
                .with_context(|| format!("{key}={v} in {} is not a port", path.display()))
        };
        Ok(MailBed {
            dir: PathBuf::from(get("PW_MAIL_DIR")?),
            domain: get("PW_MAIL_DOMAIN")?,
            host: get("PW_MAIL_HOST")?,
            smtp_port: port("PW_SMTP_PORT")?,
            submission_port: port("PW_SUBMISSION_PORT")?,
            smtps_port: port("PW_SMTPS_PORT")?,
            submission_plain_only_port: port("PW_SUBMISSION_PLAIN_ONLY_PORT")?,
            imap_port: port("PW_IMAP_PORT")?,
            imaps_port: port("PW_IMAPS_PORT")?,
            pop3_port: port("PW_POP3_PORT")?,
            pop3s_port: port("PW_POP3S_PORT")?,
            ca_file: PathBuf::from(get("PW_MAIL_CA_FILE")?),
            postfix_log: PathBuf::from(get("PW_MAIL_POSTFIX_LOG")?),
            dovecot_log: PathBuf::from(get("PW_MAIL_DOVECOT_LOG")?),
            default_password: get("PW_MAIL_DEFAULT_PASSWORD")?,
            named_users: get("PW_MAIL_NAMED_USERS")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            named_password_prefix: get("PW_MAIL_NAMED_PASSWORD_PREFIX")?,
        })
    }

    /// `$PW_MAIL_DIR`, default `/tmp/pw-mail`.
    fn state_dir() -> PathBuf {
        std::env::var_os("PW_MAIL_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/pw-mail"))
    }

    /// `deploy/dev/mailbed.sh` of this repository (or `$PW_MAILBED_SCRIPT`).
    pub fn script_path() -> PathBuf {
        crate::process::dev_script("mailbed.sh", "PW_MAILBED_SCRIPT")
    }

    /// True if the SMTP and IMAPS ports accept TCP connections.
    fn answers(&self) -> bool {
        [self.smtp_port, self.imaps_port].iter().all(|&port| {
            self.socket_addr(port)
                .and_then(|addr| {
                    StdTcpStream::connect_timeout(&addr, Duration::from_secs(1))
                        .map_err(anyhow::Error::from)
                })
                .is_ok()
        })
    }

    fn socket_addr(&self, port: u16) -> Result<SocketAddr> {
        (self.host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", self.host))?
            .next()
            .with_context(|| format!("{} has no address", self.host))
    }

    /// The state folder (`PW_MAIL_DIR`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The test domain, `printwatch.test` by default.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// The address every port listens on, `127.0.0.1`.
    pub fn host(&self) -> &str {
        &self.host
    }
    /// Plain SMTP without AUTH, for injecting test mail (10025).
    pub fn smtp_port(&self) -> u16 {
        self.smtp_port
    }
    /// Submission with STARTTLS and AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5 (10587).
    pub fn submission_port(&self) -> u16 {
        self.submission_port
    }
    /// Submission over implicit TLS, same mechanisms (10465).
    pub fn smtps_port(&self) -> u16 {
        self.smtps_port
    }
    /// Submission with STARTTLS offering only PLAIN and LOGIN (10588).
    pub fn submission_plain_only_port(&self) -> u16 {
        self.submission_plain_only_port
    }
    /// IMAP, STARTTLS available (10143).
    pub fn imap_port(&self) -> u16 {
        self.imap_port
    }
    /// IMAP over implicit TLS (10993).
    pub fn imaps_port(&self) -> u16 {
        self.imaps_port
    }
    /// POP3, STLS available (10110).
    pub fn pop3_port(&self) -> u16 {
        self.pop3_port
    }
    /// POP3 over implicit TLS (10995).
    pub fn pop3s_port(&self) -> u16 {
        self.pop3s_port
    }
    /// The IMAP port to use with `security`.
    pub fn imap_port_for(&self, security: Security) -> u16 {
        match security {
            Security::None | Security::StartTls => self.imap_port,
            Security::Tls => self.imaps_port,
        }
    }
    /// The POP3 port to use with `security`.
    pub fn pop3_port_for(&self, security: Security) -> u16 {
        match security {
            Security::None | Security::StartTls => self.pop3_port,
            Security::Tls => self.pop3s_port,
        }
    }
    /// The CA certificate (PEM) that signed the bed's server certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }
    /// Postfix's log file.
    pub fn postfix_log(&self) -> &Path {
        &self.postfix_log
    }
    /// Dovecot's log file.
    pub fn dovecot_log(&self) -> &Path {
        &self.dovecot_log
    }
    /// The users with their own password (`alice`, `bob`, `printer1`…).
    pub fn named_users(&self) -> &[String] {
        &self.named_users
    }
    /// The password of every address that is not a named user.
    pub fn default_password(&self) -> &str {
        &self.default_password
    }

    /// A new address of the test domain, `prefix-<12 hex>@domain`, whose
    /// mailbox is empty (it is created on first delivery).
    pub fn fresh_address(&self, prefix: &str) -> String {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("{prefix}-{}@{}", &id[..12], self.domain).to_ascii_lowercase()
    }

    /// The password of `user` (`alice`, `alice@printwatch.test` or any
    /// address of the test domain): `secret-<name>` for named users, the
    /// default password for everyone else.
    pub fn password_for(&self, user: &str) -> String {
        let local = user.split('@').next().unwrap_or(user).to_ascii_lowercase();
        if self.named_users.contains(&local) {
            format!("{}{local}", self.named_password_prefix)
        } else {
            self.default_password.clone()
        }
    }

    /// A rustls client config trusting only the bed's CA (ring provider).
    pub fn tls_client_config(&self) -> Result<Arc<rustls::ClientConfig>> {
        let pem = std::fs::read(&self.ca_file)
            .with_context(|| format!("reading the bed's CA {}", self.ca_file.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.with_context(|| format!("parsing {}", self.ca_file.display()))?;
            roots
                .add(cert)
                .with_context(|| format!("adding {} as a trust anchor", self.ca_file.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("choosing TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }

    /// The TLS server name matching the bed's certificate (`127.0.0.1`).
    pub fn tls_server_name(&self) -> Result<ServerName<'static>> {
        ServerName::try_from(self.host.clone())
            .with_context(|| format!("{} is not a valid TLS server name", self.host))
    }

    /// Injects a text mail over the plain SMTP port (no AUTH).
    pub async fn send_plain(&self, from: &str, to: &str, subject: &str, body: &str) -> Result<()> {
        let raw = smtp::build_message(from, to, subject, body, &self.domain);
        self.send_raw(from, &[to], raw.as_bytes()).await
    }

    /// Injects `raw` (a complete message: headers, empty line, body) over
    /// the plain SMTP port with the given envelope. Bare LF line ends are
    /// sent as CRLF and lines starting with `.` are dot-stuffed.
    pub async fn send_raw(
        &self,
        envelope_from: &str,
        recipients: &[&str],
        raw: &[u8],
    ) -> Result<()> {
        let addr = self.socket_addr(self.smtp_port)?;
        tokio::time::timeout(
            STEP_TIMEOUT,
            smtp::send(addr, envelope_from, recipients, raw),
        )
        .await
        .with_context(|| format!("SMTP to {addr} took longer than {STEP_TIMEOUT:?}"))?
        .with_context(|| format!("injecting mail for {recipients:?} at {addr}"))
    }

    /// Waits (polling IMAPS) until `address`'s INBOX holds at least `count`
    /// messages and returns all of them, oldest first. Fails after `timeout`
    /// with what the mailbox held and the bed's log lines about the address.
    pub async fn wait_for_mail(
        &self,
        address: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMail>> {
        self.wait_for_mail_with(address, count, timeout, Security::Tls)
            .await
    }

    /// [`MailBed::wait_for_mail`] over the IMAP connection kind given.
    pub async fn wait_for_mail_with(
        &self,
        address: &str,
        count: usize,
        timeout: Duration,
        security: Security,
    ) -> Result<Vec<ReceivedMail>> {
        let deadline = Instant::now() + timeout;
        let mut session = self.imap_login(address, security).await?;
        let mut seen;
        loop {
            seen = session.count().await?;
            if seen >= count || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(
                POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        if seen < count {
            session.logout().await;
            bail!(
                "{address} received {seen} mail(s) within {timeout:?}, expected at least {count}\n{}",
                self.log_lines_about(address)
            );
        }
        let mails = session.fetch_all().await?;
        session.logout().await;
        if mails.len() < count {
            bail!(
                "{address}: INBOX counted {seen} messages but fetching returned {}",
                mails.len()
            );
        }
        Ok(mails)
    }

    /// How many messages `address`'s INBOX holds right now (IMAPS).
    pub async fn mailbox_count(&self, address: &str) -> Result<usize> {
        let mut session = self.imap_login(address, Security::Tls).await?;
        let n = session.count().await?;
        session.logout().await;
        Ok(n)
    }

    /// All messages in `address`'s INBOX right now, oldest first, without
    /// waiting (IMAPS). Messages stay unseen.
    pub async fn read_mailbox_now(&self, address: &str) -> Result<Vec<ReceivedMail>> {
        self.imap_fetch_all(address, Security::Tls).await
    }

    /// All messages in `address`'s INBOX over IMAP with `security`.
    pub async fn imap_fetch_all(
        &self,
        address: &str,
        security: Security,
    ) -> Result<Vec<ReceivedMail>> {
        self.imap_fetch_all_as(address, &self.password_for(address), security)
            .await
    }

    /// [`MailBed::imap_fetch_all`] logging in as `login` with `password`
    /// (for tests of wrong or other credentials).
    pub async fn imap_fetch_all_as(
        &self,
        login: &str,
        password: &str,
        security: Security,
    ) -> Result<Vec<ReceivedMail>> {
        let mut session = self.imap_login_as(login, password, security).await?;
        let mails = session.fetch_all().await?;
        session.logout().await;
        Ok(mails)
    }

    /// Checks that `address` keeps exactly `expected` messages for the whole
    /// `window` ("nothing else arrived"); fails as soon as the count differs.
    pub async fn ensure_mail_count_stays(
        &self,
        address: &str,
        expected: usize,
        window: Duration,
    ) -> Result<()> {
        let deadline = Instant::now() + window;
        let mut session = self.imap_login(address, Security::Tls).await?;
        loop {
            let n = session.count().await?;
            if n != expected {
                session.logout().await;
                bail!(
                    "{address} holds {n} mail(s), expected exactly {expected}\n{}",
                    self.log_lines_about(address)
                );
            }
            if Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(
                POLL_INTERVAL.min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
        session.logout().await;
        Ok(())
    }

    /// All messages of `address` over POP3 with `security` (USER/PASS,
    /// LIST, RETR; nothing is deleted).
    pub async fn pop3_fetch_all(
        &self,
        address: &str,
        security: Security,
    ) -> Result<Vec<ReceivedMail>> {
        self.pop3_fetch_all_as(address, &self.password_for(address), security)
            .await
    }

    /// [`MailBed::pop3_fetch_all`] logging in as `login` with `password`.
    pub async fn pop3_fetch_all_as(
        &self,
        login: &str,
        password: &str,
        security: Security,
    ) -> Result<Vec<ReceivedMail>> {
        let addr = self.socket_addr(self.pop3_port_for(security))?;
        tokio::time::timeout(
            STEP_TIMEOUT,
            pop3::fetch_all(self, addr, security, login, password),
        )
        .await
        .with_context(|| format!("POP3 at {addr} took longer than {STEP_TIMEOUT:?}"))?
        .with_context(|| format!("reading {login}'s mailbox over POP3 ({security:?}) at {addr}"))
    }

    async fn imap_login(&self, address: &str, security: Security) -> Result<imap::Session> {
        self.imap_login_as(address, &self.password_for(address), security)
            .await
    }

    async fn imap_login_as(
        &self,
        login: &str,
        password: &str,
        security: Security,
    ) -> Result<imap::Session> {
        let addr = self.socket_addr(self.imap_port_for(security))?;
        tokio::time::timeout(
            STEP_TIMEOUT,
            imap::Session::login(self, addr, security, login, password),
        )
        .await
        .with_context(|| format!("IMAP login at {addr} took longer than {STEP_TIMEOUT:?}"))?
        .with_context(|| format!("opening {login}'s mailbox over IMAP ({security:?}) at {addr}"))
    }

    /// The last Postfix and Dovecot log lines that mention `needle`, for
    /// error messages.
    pub fn log_lines_about(&self, needle: &str) -> String {
        let mut out = String::new();
        for log in [&self.postfix_log, &self.dovecot_log] {
            let text = std::fs::read(log)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
            out.push_str(&format!(
                "--- {} lines mentioning {needle}:\n",
                log.display()
            ));
            for l in &lines[lines.len().saturating_sub(15)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Parses `KEY=value` / `KEY="value"` lines; other lines are ignored.
fn parse_env(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let (k, v) = line.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bed() -> MailBed {
        let text = "PW_MAIL_DIR=/tmp/x\nPW_MAIL_DOMAIN=printwatch.test\nPW_MAIL_HOST=127.0.0.1\n\
            PW_SMTP_PORT=1\nPW_SUBMISSION_PORT=2\nPW_SMTPS_PORT=3\nPW_SUBMISSION_PLAIN_ONLY_PORT=4\n\
            PW_IMAP_PORT=5\nPW_IMAPS_PORT=6\nPW_POP3_PORT=7\nPW_POP3S_PORT=8\nPW_MAIL_CA_FILE=/tmp/x/ca.pem\n\
            PW_MAIL_NAMED_USERS=\"alice bob\"\nPW_MAIL_NAMED_PASSWORD_PREFIX=secret-\n\
            PW_MAIL_DEFAULT_PASSWORD=test-password\nPW_MAIL_POSTFIX_LOG=/tmp/x/p.log\nPW_MAIL_DOVECOT_LOG=/tmp/x/d.log\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("env");
        std::fs::write(&path, text).expect("write env");
        MailBed::from_env_file(&path).expect("parse env")
    }

    #[test]
    fn env_file_is_read_with_quotes_and_ports() {
        let bed = bed();
        assert_eq!(bed.domain(), "printwatch.test");
        assert_eq!(bed.imap_port_for(Security::StartTls), 5);
        assert_eq!(bed.pop3_port_for(Security::Tls), 8);
        assert_eq!(bed.named_users(), ["alice", "bob"]);
    }

    #[test]
    fn named_users_get_their_own_password_and_others_the_default() {
        let bed = bed();
        assert_eq!(bed.password_for("alice"), "secret-alice");
        assert_eq!(bed.password_for("Alice@printwatch.test"), "secret-alice");
        assert_eq!(bed.password_for("t-123@printwatch.test"), "test-password");
    }

    #[test]
    fn fresh_addresses_differ_and_use_the_domain() {
        let bed = bed();
        let a = bed.fresh_address("t");
        let b = bed.fresh_address("t");
        assert_ne!(a, b);
        assert!(
            a.starts_with("t-") && a.ends_with("@printwatch.test"),
            "{a}"
        );
    }
}
