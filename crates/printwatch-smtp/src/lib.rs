//! Sending mail exactly as `[mail.smtp]` and `[mail.pop_before_smtp]` say
//! (SPEC §1.2), for the notifier, the inbox and `printwatch test-mail`.
//!
//! Why a crate of its own rather than lettre's `AsyncSmtpTransport`:
//!
//! - **Every auth mode of the manual.** `auth_encryption = "on"` means
//!   CRAM-MD5 or DIGEST-MD5 only; lettre implements neither and drops
//!   them from its view of the EHLO reply. They are hand-written here
//!   (module `sasl`) and run on lettre's raw connection, with the RFCs'
//!   own examples as tests. With `on`, a server offering neither gets no
//!   credentials at all.
//! - **Named steps.** A failure says where: [`Step::Connect`],
//!   [`Step::Tls`], [`Step::Auth`], ... — the operator's `test-mail` prints
//!   it, the notifier decides retry-or-not on it.
//! - **Per-recipient outcomes.** One refused recipient (RCPT 5xx) must not
//!   cost the others their mail: each RCPT reply is kept in [`Delivery`].
//! - **POP before SMTP** before each new connection, which no SMTP library
//!   does.
//! - **A bounded pool.** At most `max_connections` connections; callers
//!   beyond that wait for a slot (a fair semaphore), so thousands of
//!   concurrent sends are fine. Idle connections are reused after an RSET
//!   (which also proves they still work) and closed after
//!   [`IDLE_LIMIT`] unused.
//!
//! TLS is never guessed from the port: `none`, `starttls` (required:
//! no STARTTLS offered → [`Step::Tls`], never plain text) or `tls`
//! (implicit). Certificates are always verified against the system roots
//! plus `ca_file`, for the configured host name.
//!
//! Secrets: the password is read only where a protocol needs it, is never
//! part of an error or a log line, and nothing here logs at all above
//! `debug`.

mod error;
pub mod headers;
mod pop;
mod sasl;
mod session;
mod tls;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use lettre::Address;
use printwatch_config::{PopBeforeSmtpConfig, Security, SmtpConfig};
use tokio::sync::Semaphore;

pub use error::{Delivery, Refused, SendError, SetupError, Step};
pub use sasl::AuthMechanism;
pub use session::SessionInfo;

use pop::PopLogin;
use session::{Commit, Login, Recipient, Session, Setup};

/// An idle connection unused for longer than this is closed, not reused.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// How often idle connections are looked at.
const REAP_EVERY: Duration = Duration::from_secs(5);

/// How long a polite QUIT may take when closing.
const QUIT_LIMIT: Duration = Duration::from_secs(2);

/// What [`Mailer::send_committing`] calls with the accepted recipients
/// before handing over the message; an `Err` stops the send.
pub type CommitFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// Sends mail with the configured SMTP settings over a bounded pool of
/// connections. Cheap to clone (Arc inside); one per process.
#[derive(Clone)]
pub struct Mailer {
    inner: Arc<Inner>,
}

struct Inner {
    setup: Arc<Setup>,
    /// One permit per connection that may exist.
    slots: Arc<Semaphore>,
    max_connections: usize,
    idle: Mutex<Idle>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct Idle {
    sessions: Vec<Session>,
    reaper_running: bool,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.inner.setup;
        f.debug_struct("Mailer")
            .field("host", &s.host)
            .field("port", &s.port)
            .field("security", &s.security)
            .field("user", &s.login.as_ref().map(|l| l.username.as_str()))
            .field("mechanisms", &s.preference)
            .field("pop_before_smtp", &s.pop.is_some())
            .field("max_connections", &self.inner.max_connections)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// Reads ca_file(s) and builds TLS settings; no network. Errors name the
    /// file (or the setting).
    pub fn new(smtp: &SmtpConfig, pop: Option<&PopBeforeSmtpConfig>) -> Result<Mailer, SetupError> {
        let login = if smtp.auth {
            let username =
                smtp.username
                    .clone()
                    .filter(|u| !u.is_empty())
                    .ok_or(SetupError::Setting {
                        key: "mail.smtp.username",
                        reason: "is required with auth = true".into(),
                    })?;
            let password =
                smtp.password
                    .clone()
                    .filter(|p| !p.is_empty())
                    .ok_or(SetupError::Setting {
                        key: "mail.smtp.password",
                        reason: "is missing or could not be read (auth = true)".into(),
                    })?;
            Some(Login { username, password })
        } else {
            None
        };
        let extra = match (&smtp.ca_file, smtp.security) {
            (Some(p), Security::StartTls | Security::Tls) => {
                tls::read_ca_file("mail.smtp.ca_file", p)?
            }
            _ => Vec::new(),
        };
        let (trust, starttls) = match smtp.security {
            Security::None => (None, None),
            Security::StartTls => (None, Some(tls::lettre_parameters(&smtp.host, &extra)?)),
            Security::Tls => (Some(tls::trust(&smtp.host, &extra)?), None),
        };
        let pop = pop.map(PopLogin::new).transpose()?;
        let setup = Setup {
            host: smtp.host.clone(),
            port: smtp.port,
            security: smtp.security,
            trust,
            starttls,
            client_id: session::client_id(smtp.helo_name.as_deref()),
            login,
            auth_encryption: smtp.auth_encryption,
            preference: sasl::permitted(smtp.auth_encryption).to_vec(),
            connect_timeout: smtp.connect_timeout,
            command_timeout: smtp.command_timeout,
            pop,
        };
        Ok(Mailer::from_setup(setup, smtp.max_connections))
    }

    fn from_setup(setup: Setup, max_connections: usize) -> Mailer {
        Mailer {
            inner: Arc::new(Inner {
                setup: Arc::new(setup),
                slots: Arc::new(Semaphore::new(max_connections.max(1))),
                max_connections: max_connections.max(1),
                idle: Mutex::new(Idle::default()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// For tests and diagnostics: a mailer with the same settings that uses
    /// only the given SMTP AUTH mechanisms (still within what
    /// `auth_encryption` allows, in its order of preference), with a pool
    /// of its own. With one mechanism, that one is used or the send fails
    /// at [`Step::Auth`] without sending credentials.
    pub fn with_mechanisms(&self, mechanisms: &[AuthMechanism]) -> Mailer {
        let s = &self.inner.setup;
        let setup = Setup {
            host: s.host.clone(),
            port: s.port,
            security: s.security,
            trust: s.trust.clone(),
            starttls: s.starttls.clone(),
            client_id: s.client_id.clone(),
            login: s.login.clone(),
            auth_encryption: s.auth_encryption,
            preference: sasl::permitted(s.auth_encryption)
                .iter()
                .copied()
                .filter(|m| mechanisms.contains(m))
                .collect(),
            connect_timeout: s.connect_timeout,
            command_timeout: s.command_timeout,
            pop: s.pop.clone(),
        };
        Mailer::from_setup(setup, self.inner.max_connections)
    }

    /// One SMTP transaction: `MAIL FROM:<sender>`, `RCPT TO` each recipient,
    /// DATA `message` (complete RFC 5322 bytes, CRLF line ends; a bare LF
    /// is sent as CRLF), on a pooled connection.
    ///
    /// Ok when DATA was accepted for at least one recipient, or when every
    /// recipient was refused at RCPT (then no DATA is sent and `accepted`
    /// is empty). A recipient that is not a valid address is not sent to
    /// the server; it is in `refused` as permanent, with a reply starting
    /// `invalid address:`. An empty `sender` is the null reverse-path
    /// `<>`. No recipients at all: Ok with both lists empty, no network.
    pub async fn send(
        &self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<Delivery, SendError> {
        self.send_inner(sender, recipients, message, None).await
    }

    /// [`Mailer::send`], calling `commit(accepted)` after the RCPTs and
    /// the server's 354 answer to DATA, right before the message is
    /// written — the last moment before it may be delivered, so a caller
    /// can record "about to be sent" first and never send a mail twice.
    /// If `commit` fails, the connection is dropped before the final dot
    /// (the server discards the message) and the error is [`Step::Data`],
    /// not permanent, with the commit's reason. `commit`
    /// is not called when no recipient was accepted. A failure after the
    /// message was handed over and before the server confirmed it is
    /// reported with [`SendError::outcome_unknown`].
    pub async fn send_committing<F>(
        &self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
        commit: F,
    ) -> Result<Delivery, SendError>
    where
        F: FnOnce(&[String]) -> CommitFuture + Send + 'static,
    {
        self.send_inner(sender, recipients, message, Some(Box::new(commit)))
            .await
    }

    async fn send_inner(
        &self,
        sender: &str,
        recipients: &[String],
        message: &[u8],
        commit: Option<Commit>,
    ) -> Result<Delivery, SendError> {
        let sender = parse_sender(sender)?;
        let (valid, refused) = parse_recipients(recipients);
        if valid.is_empty() {
            return Ok(Delivery {
                accepted: Vec::new(),
                refused,
            });
        }
        let inner = &self.inner;
        let _slot = inner.acquire().await?;
        let mut session = inner.checkout().await?;
        let result = session
            .transaction(
                &inner.setup,
                sender.as_ref(),
                valid,
                refused,
                message,
                commit,
            )
            .await;
        match result {
            Ok(delivery) => {
                inner.checkin(session);
                Ok(delivery)
            }
            Err(failed) => {
                if failed.reusable {
                    inner.checkin(session);
                } else {
                    tracing::debug!(session = session.id, error = %failed.error, "dropping broken SMTP session");
                }
                Err(failed.error)
            }
        }
    }

    /// Opens (or reuses) a connection — POP before SMTP, TLS, AUTH — and
    /// tells what it found, without sending mail. The connection stays in
    /// the pool for the next send. For `printwatch test-mail` and
    /// start-up checks.
    pub async fn probe(&self) -> Result<SessionInfo, SendError> {
        let inner = &self.inner;
        let _slot = inner.acquire().await?;
        let session = inner.checkout().await?;
        let info = session.info.clone();
        inner.checkin(session);
        Ok(info)
    }

    /// Closes the idle connections politely (QUIT). Connections in use are
    /// closed when their send ends and the last clone of the mailer is
    /// dropped. For shutdown.
    pub async fn close(&self) {
        let idle = {
            let mut guard = self.inner.lock_idle();
            std::mem::take(&mut guard.sessions)
        };
        for s in idle {
            s.quit(QUIT_LIMIT).await;
        }
    }
}

impl Inner {
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Idle> {
        // Nothing panics while holding the lock; if something did, the
        // list of idle sessions is still consistent.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn acquire(&self) -> Result<tokio::sync::OwnedSemaphorePermit, SendError> {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SendError::new(Step::Connect, false, "the mailer is shut down"))
    }

    /// An idle session that still answers RSET, or a new one.
    async fn checkout(&self) -> Result<Session, SendError> {
        loop {
            let candidate = self.lock_idle().sessions.pop();
            let Some(mut session) = candidate else { break };
            if session.idle_for() > IDLE_LIMIT {
                tokio::spawn(session.quit(QUIT_LIMIT));
                continue;
            }
            match session.rset(&self.setup).await {
                Ok(()) => {
                    tracing::debug!(session = session.id, "reusing SMTP session");
                    return Ok(session);
                }
                Err(e) => {
                    tracing::debug!(session = session.id, error = %e, "idle SMTP session is gone");
                }
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        Session::open(&self.setup, id).await
    }

    /// Puts a session back for reuse, and makes sure something closes it
    /// when it stays unused.
    fn checkin(self: &Arc<Self>, mut session: Session) {
        session.touch();
        let start_reaper = {
            let mut idle = self.lock_idle();
            idle.sessions.push(session);
            !std::mem::replace(&mut idle.reaper_running, true)
        };
        if start_reaper {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }
}

/// Closes idle sessions unused for longer than [`IDLE_LIMIT`]; ends when
/// none is left or the mailer is gone.
async fn reap(pool: Weak<Inner>) {
    loop {
        tokio::time::sleep(REAP_EVERY).await;
        let Some(inner) = pool.upgrade() else { return };
        let (stale, done) = {
            let mut idle = inner.lock_idle();
            let (stale, keep): (Vec<Session>, Vec<Session>) = std::mem::take(&mut idle.sessions)
                .into_iter()
                .partition(|s| s.idle_for() > IDLE_LIMIT);
            idle.sessions = keep;
            let done = idle.sessions.is_empty();
            if done {
                idle.reaper_running = false;
            }
            (stale, done)
        };
        drop(inner);
        for s in stale {
            s.quit(QUIT_LIMIT).await;
        }
        if done {
            return;
        }
    }
}

/// The envelope sender; empty is the null reverse-path.
fn parse_sender(sender: &str) -> Result<Option<Address>, SendError> {
    let sender = sender.trim();
    if sender.is_empty() || sender == "<>" {
        return Ok(None);
    }
    sender.parse::<Address>().map(Some).map_err(|e| {
        SendError::new(
            Step::Sender,
            true,
            format!("invalid sender address {sender:?}: {e}"),
        )
    })
}

/// Recipients split into sendable ones and those refused for their syntax.
fn parse_recipients(recipients: &[String]) -> (Vec<Recipient>, Vec<Refused>) {
    let mut valid = Vec::with_capacity(recipients.len());
    let mut refused = Vec::new();
    for r in recipients {
        match r.trim().parse::<Address>() {
            Ok(address) => valid.push(Recipient {
                text: r.clone(),
                address,
            }),
            Err(e) => refused.push(Refused {
                recipient: r.clone(),
                permanent: true,
                reply: format!("invalid address: {e}"),
            }),
        }
    }
    (valid, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_recipients_are_refused_without_a_server() {
        let (valid, refused) = parse_recipients(&[
            "ok@example.test".into(),
            "no at sign".into(),
            "x@example.test\r\nRCPT TO:<evil@example.test>".into(),
        ]);
        assert_eq!(valid.len(), 1);
        assert_eq!(refused.len(), 2);
        assert!(
            refused
                .iter()
                .all(|r| r.permanent && r.reply.starts_with("invalid address"))
        );
    }

    #[test]
    fn debug_output_names_the_server_but_never_the_password() {
        let cfg = SmtpConfig {
            host: "mail.example.test".into(),
            port: 587,
            security: Security::None,
            ca_file: None,
            auth: true,
            auth_address: None,
            username: Some("alice".into()),
            password: Some(printwatch_config::Secret::new("hunter2-secret")),
            auth_encryption: printwatch_config::AuthEncryption::On,
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(1),
            max_connections: 0,
            helo_name: None,
        };
        let m = Mailer::new(&cfg, None).unwrap();
        let d = format!("{m:?}");
        assert!(
            d.contains("mail.example.test") && d.contains("alice"),
            "{d}"
        );
        assert!(!d.contains("hunter2"), "{d}");
        // max_connections = 0 would block every send; it is taken as 1.
        assert!(d.contains("max_connections: 1"), "{d}");
    }

    #[test]
    fn the_null_sender_is_allowed_and_a_bad_one_is_a_sender_error() {
        assert!(parse_sender("").unwrap().is_none());
        assert!(parse_sender("<>").unwrap().is_none());
        let e = parse_sender("a b").unwrap_err();
        assert_eq!(e.step, Step::Sender);
        assert!(e.permanent);
    }
}
