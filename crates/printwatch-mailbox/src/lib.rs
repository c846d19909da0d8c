//! Reading the notification account (SPEC §1.2 "reception protocol",
//! §1.3) over POP3 or IMAP4, behind one interface, for `printwatch-inbox`.
//!
//! The inbox must never answer a request twice and never lose one, and it
//! reads mail that anybody can send. So this crate:
//!
//! - gives every message a **stable id** without downloading it — POP3
//!   `UIDL`, IMAP `<UIDVALIDITY>:<UID>` of INBOX — and the **size the
//!   server reports** (POP3 `LIST`, IMAP `RFC822.SIZE`), so the inbox can
//!   remember what it answered (by id) and refuse an oversized request
//!   before downloading it;
//! - downloads one message at most `limit` bytes long
//!   ([`MailboxError::TooBig`] otherwise, before the download when the size
//!   is known);
//! - **finishes** a message only when asked: POP3 `DELE` (committed by
//!   `QUIT` in [`Session::logout`] — a session dropped without it deletes
//!   nothing), IMAP `\Seen` + the keyword [`HANDLED_KEYWORD`] (or
//!   `\Deleted` and `EXPUNGE`); [`Session::list`] leaves out IMAP messages
//!   already finished;
//! - waits for new mail with IMAP IDLE where the server offers it
//!   ([`Session::wait_for_change`]), so a request is answered in seconds;
//! - bounds everything a server controls: line lengths, answer sizes,
//!   download sizes, and the time of every connection step and command;
//!   it never panics on what a server sends;
//! - protects the password: TLS as configured (`none`, `starttls` — refused
//!   when the server does not offer it, never a silent fall-back to plain
//!   text — or `tls`), certificates checked against the system's roots plus
//!   `ca_file` with the configured host as the name; the password appears
//!   in no error, no log line, and not even in async-imap's TRACE output
//!   (see `stream.rs`).
//!
//! POP3 is a small client written here (see the `pop3` module for why no
//! crate); IMAP uses `async-imap`.
//!
//! ```no_run
//! # async fn demo(settings: printwatch_mailbox::MailboxSettings) -> Result<(), printwatch_mailbox::MailboxError> {
//! use std::time::Duration;
//! use printwatch_mailbox::{ReceiveProtocol, connect};
//!
//! let mut session = connect(&settings, ReceiveProtocol::Imap).await?;
//! loop {
//!     for listed in session.list().await? {
//!         let raw = session.fetch(&listed.id, 1024 * 1024).await?;
//!         // ... answer it, remember listed.id ...
//!         session.finish(&listed.id, false).await?;
//!     }
//!     if !session.wait_for_change(Duration::from_secs(300)).await? {
//!         tokio::time::sleep(Duration::from_secs(30)).await;
//!     }
//! }
//! # }
//! ```

mod error;
mod imap;
mod pop3;
mod settings;
mod stream;
mod tls;

use std::time::Duration;

use tokio::net::TcpStream;

pub use error::MailboxError;
pub use pop3::{MAX_LIST_LINE, MAX_STATUS_LINE};
pub use printwatch_config::{ReceiveProtocol, Secret, Security};
pub use settings::{
    DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, MailboxSettings,
};

use imap::Imap;
use pop3::Pop3Session;
use tls::TlsSetup;

/// The IMAP keyword that marks a message as handled by printwatch.
pub const HANDLED_KEYWORD: &str = "$PrintwatchHandled";

/// A message in the mailbox, as [`Session::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Listed {
    /// Stable across sessions: the POP3 unique id (UIDL), or
    /// `<UIDVALIDITY>:<UID>` of the IMAP INBOX.
    pub id: String,
    /// The size the server reports, in bytes (POP3 `LIST`, IMAP
    /// `RFC822.SIZE`); for well-behaved servers the length of what
    /// [`Session::fetch`] returns.
    pub size: u64,
}

/// A logged-in mailbox session, POP3 or IMAP.
pub struct Session {
    inner: Inner,
}

enum Inner {
    Pop3(Box<Pop3Session>),
    Imap(Box<Imap>),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("protocol", &self.protocol())
            .finish_non_exhaustive()
    }
}

/// Connects to the mailbox with `protocol` and logs in.
pub async fn connect(
    settings: &MailboxSettings,
    protocol: ReceiveProtocol,
) -> Result<Session, MailboxError> {
    settings.check()?;
    let tls = tls_setup(settings)?;
    let inner = match protocol {
        ReceiveProtocol::Pop3 => Inner::Pop3(Box::new(Pop3Session::connect(settings, tls).await?)),
        ReceiveProtocol::Imap => Inner::Imap(Box::new(Imap::connect(settings, tls).await?)),
    };
    Ok(Session { inner })
}

/// Logs in to a POP3 server and quits at once: POP before SMTP (SPEC
/// §1.2), where a successful POP3 login opens SMTP relaying for a while.
pub async fn pop3_login_only(settings: &MailboxSettings) -> Result<(), MailboxError> {
    let session = connect(settings, ReceiveProtocol::Pop3).await?;
    session.logout().await
}

impl Session {
    /// Which protocol this session speaks.
    pub fn protocol(&self) -> ReceiveProtocol {
        match self.inner {
            Inner::Pop3(_) => ReceiveProtocol::Pop3,
            Inner::Imap(_) => ReceiveProtocol::Imap,
        }
    }

    /// Every message now in the mailbox, oldest first: a stable id (POP3
    /// UIDL; IMAP `<UIDVALIDITY>:<UID>` of INBOX) and the size the server
    /// reports — without downloading anything. IMAP leaves out messages
    /// already finished (`$PrintwatchHandled` or `\Deleted`); POP3 leaves
    /// out those finished in this session.
    pub async fn list(&mut self) -> Result<Vec<Listed>, MailboxError> {
        match &mut self.inner {
            Inner::Pop3(p) => p.list().await,
            Inner::Imap(i) => i.list().await,
        }
    }

    /// Downloads one message (raw RFC 5322 bytes, CRLF line ends) of at
    /// most `limit` bytes. A message the server says is bigger is refused
    /// before downloading ([`MailboxError::TooBig`] with its `size`); one
    /// that turns out bigger while downloading is refused then (`size:
    /// None`). IMAP does not set `\Seen`.
    pub async fn fetch(&mut self, id: &str, limit: u64) -> Result<Vec<u8>, MailboxError> {
        match &mut self.inner {
            Inner::Pop3(p) => p.fetch(id, limit).await,
            Inner::Imap(i) => i.fetch(id, limit).await,
        }
    }

    /// Done with a message. POP3: `DELE` (always a deletion; it takes
    /// effect at [`Session::logout`]). IMAP: `\Seen` and
    /// `$PrintwatchHandled`, or with `expunge` `\Deleted` and `EXPUNGE`
    /// (`UID EXPUNGE` where the server has UIDPLUS; plain `EXPUNGE` also
    /// removes other messages already marked `\Deleted`).
    pub async fn finish(&mut self, id: &str, expunge: bool) -> Result<(), MailboxError> {
        match &mut self.inner {
            Inner::Pop3(p) => p.finish(id).await,
            Inner::Imap(i) => i.finish(id, expunge).await,
        }
    }

    /// IMAP: waits (IDLE, RFC 2177) until the server reports a change or
    /// `timeout` passes; `Ok(true)` on a change (new mail, most likely:
    /// call [`Session::list`]). `Ok(false)` at once when the server does
    /// not offer IDLE (the caller polls). POP3 shows no new mail within a
    /// session, so it answers `Ok(false)` at once.
    pub async fn wait_for_change(&mut self, timeout: Duration) -> Result<bool, MailboxError> {
        match &mut self.inner {
            Inner::Pop3(_) => Ok(false),
            Inner::Imap(i) => i.wait_for_change(timeout).await,
        }
    }

    /// Whether [`Session::wait_for_change`] can actually wait (IMAP with
    /// IDLE).
    pub fn can_wait(&self) -> bool {
        match &self.inner {
            Inner::Pop3(_) => false,
            Inner::Imap(i) => i.can_idle(),
        }
    }

    /// Ends the session. POP3: `QUIT`, which commits the deletions — an
    /// error here means they may not have happened.
    pub async fn logout(self) -> Result<(), MailboxError> {
        match self.inner {
            Inner::Pop3(p) => p.logout().await,
            Inner::Imap(i) => i.logout().await,
        }
    }
}

fn tls_setup(settings: &MailboxSettings) -> Result<Option<TlsSetup>, MailboxError> {
    match settings.security {
        Security::None => Ok(None),
        Security::StartTls | Security::Tls => Ok(Some(TlsSetup::new(
            &settings.host,
            settings.ca_file.as_deref(),
            &settings.server(),
        )?)),
    }
}

/// The TCP connection, within the connect timeout.
pub(crate) async fn open_tcp(settings: &MailboxSettings) -> Result<TcpStream, MailboxError> {
    let server = settings.server();
    let host = settings.host.trim();
    let connecting = TcpStream::connect((host, settings.port));
    match tokio::time::timeout(settings.connect_timeout, connecting).await {
        Ok(Ok(tcp)) => {
            tracing::debug!(%server, "connected");
            Ok(tcp)
        }
        Ok(Err(e)) => Err(MailboxError::Connect {
            server,
            reason: e.to_string(),
        }),
        Err(_) => Err(MailboxError::Timeout {
            server,
            step: "connecting".into(),
            after: settings.connect_timeout,
        }),
    }
}

/// The TLS handshake on `stream` (implicit TLS, or after STARTTLS/STLS),
/// bounded by `command_timeout`; `step` names it in errors.
pub(crate) async fn tls_handshake(
    stream: crate::stream::MailStream,
    tls: Option<&TlsSetup>,
    settings: &MailboxSettings,
    step: &str,
) -> Result<crate::stream::MailStream, MailboxError> {
    let server = settings.server();
    let Some(tls) = tls else {
        return Err(MailboxError::Tls {
            server,
            step: step.into(),
            reason: "no TLS setup (internal error)".into(),
        });
    };
    match tokio::time::timeout(settings.command_timeout, stream.start_tls(tls)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(MailboxError::Tls {
            server,
            step: step.into(),
            reason: e.to_string(),
        }),
        Err(_) => Err(MailboxError::Timeout {
            server,
            step: step.into(),
            after: settings.command_timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    /// The inbox runs sessions in spawned tasks: the session and the
    /// futures of its methods must be `Send`.
    #[allow(dead_code)]
    async fn futures_are_send(settings: MailboxSettings, mut session: Session) {
        send(&session);
        send(&connect(&settings, ReceiveProtocol::Imap));
        send(&pop3_login_only(&settings));
        send(&session.list());
        send(&session.fetch("x", 1));
        send(&session.finish("x", false));
        send(&session.wait_for_change(Duration::from_secs(1)));
        send(&session.logout());
    }
}
