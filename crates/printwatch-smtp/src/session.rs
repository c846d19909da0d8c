//! One SMTP connection, driven step by step on lettre's
//! [`AsyncSmtpConnection`] so every step can be named when it fails and
//! bounded by its own timeout: TCP connect (`connect_timeout`), TLS, the
//! greeting and EHLO, AUTH, then transactions (MAIL, RCPT per recipient,
//! DATA) each command within `command_timeout`.
//!
//! lettre's own `send` stops at the first refused recipient and its
//! `AsyncSmtpTransport` hides which step failed; both matter here (a
//! refused recipient must not cost the others their mail, and `printwatch
//! test-mail` must say "failed at auth"). So this module uses lettre for
//! the wire (commands, reply parsing, STARTTLS, dot-stuffing) and decides
//! the steps itself.

use std::borrow::Cow;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::FutureExt as _;
use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use printwatch_config::{AuthEncryption, Secret, Security};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{Delivery, Refused, Reply, SendError, Step, describe, humanize};
use crate::pop::PopLogin;
use crate::sasl::{self, AuthMechanism};
use crate::tls::{self, TlsTcp, Trust};

/// Everything a connection needs, fixed when the mailer is built.
pub(crate) struct Setup {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Implicit TLS (`security = "tls"`).
    pub trust: Option<Trust>,
    /// STARTTLS (`security = "starttls"`), performed by lettre.
    pub starttls: Option<TlsParameters>,
    pub client_id: ClientId,
    pub login: Option<Login>,
    pub auth_encryption: AuthEncryption,
    /// The mechanisms that may be used, strongest first.
    pub preference: Vec<AuthMechanism>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub pop: Option<PopLogin>,
}

/// SMTP AUTH credentials.
#[derive(Clone)]
pub(crate) struct Login {
    pub username: String,
    pub password: Secret,
}

/// A recipient that passed the syntax check.
pub(crate) struct Recipient {
    pub text: String,
    pub address: Address,
}

/// What a session knows about its server, for diagnostics.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// The name the server gave in its EHLO reply.
    pub server_name: String,
    /// The SMTP AUTH mechanism used, `None` when `auth = false`.
    pub mechanism: Option<AuthMechanism>,
    /// The mechanisms the server announced (read only when `auth = true`).
    pub offered_mechanisms: Vec<String>,
    /// Whether a POP3 login preceded this connection.
    pub pop_before_smtp: bool,
}

/// A transaction that failed, and whether its connection can be used again
/// (the server answered, so the state is known; reuse starts with RSET).
pub(crate) struct TxError {
    pub error: SendError,
    pub reusable: bool,
}

impl TxError {
    fn reusable(error: SendError) -> TxError {
        TxError {
            error,
            reusable: true,
        }
    }
    fn broken(error: SendError) -> TxError {
        TxError {
            error,
            reusable: false,
        }
    }
}

/// What is called with the accepted recipients before DATA.
pub(crate) type Commit = Box<dyn FnOnce(&[String]) -> crate::CommitFuture + Send>;

/// An open, greeted (and, with `auth = true`, authenticated) connection.
pub(crate) struct Session {
    conn: AsyncSmtpConnection,
    pub id: u64,
    pub info: SessionInfo,
    last_used: Instant,
}

/// A command line for lettre's `command()`: the text plus CRLF. Holds AUTH
/// answers, so it has no `Debug` and is never logged.
struct Line<'a>(&'a str);

impl std::fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)?;
        f.write_str("\r\n")
    }
}

/// Runs a lettre call within `limit`; a negative reply or a network error
/// becomes a [`SendError`] of `step`.
async fn within<T>(
    limit: Duration,
    step: Step,
    what: &str,
    fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, SendError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(SendError::from_smtp(step, &e)),
        Err(_) => Err(SendError::timeout(step, what, limit)),
    }
}

/// How a guarded lettre call failed.
enum Guarded {
    Smtp(lettre::transport::smtp::Error),
    /// lettre panicked on the server's reply.
    Panicked,
    TimedOut,
}

/// Like [`within`] for the lettre calls that parse an EHLO reply into
/// `ServerInfo`, which panics on a reply line made only of blanks
/// (lettre 0.11.23, `extension.rs`: `split.next().unwrap()`): the panic is
/// caught and becomes an error, so no server reply can take the process
/// down. The lettre error itself is handed back because TLS failures are
/// classified from its source chain.
async fn within_guarded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Guarded> {
    match tokio::time::timeout(limit, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(Guarded::Smtp(e)),
        Ok(Err(_panic)) => Err(Guarded::Panicked),
        Err(_) => Err(Guarded::TimedOut),
    }
}

impl Session {
    /// Opens a connection: POP before SMTP if set, TCP, TLS, greeting,
    /// EHLO, STARTTLS, AUTH.
    pub async fn open(setup: &Setup, id: u64) -> Result<Session, SendError> {
        if let Some(pop) = &setup.pop {
            pop.login(setup.connect_timeout, setup.command_timeout)
                .await?;
            if !pop.wait.is_zero() {
                tokio::time::sleep(pop.wait).await;
            }
        }
        let at = format!("{}:{}", setup.host, setup.port);
        let tcp = match tokio::time::timeout(
            setup.connect_timeout,
            TcpStream::connect((setup.host.as_str(), setup.port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(SendError::new(
                    Step::Connect,
                    false,
                    format!("cannot connect to {at}: {e}"),
                ));
            }
            Err(_) => {
                return Err(SendError::new(
                    Step::Connect,
                    false,
                    format!(
                        "no connection to {at} within {}",
                        humanize(setup.connect_timeout)
                    ),
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn AsyncTokioStream> = match (&setup.security, &setup.trust) {
            (Security::Tls, Some(trust)) => {
                let connector = TlsConnector::from(trust.config.clone());
                match tokio::time::timeout(
                    setup.command_timeout,
                    connector.connect(trust.server_name.clone(), tcp),
                )
                .await
                {
                    Ok(Ok(s)) => Box::new(TlsTcp(s)),
                    Ok(Err(e)) => {
                        return Err(SendError::new(
                            Step::Tls,
                            tls::failure_is_permanent(&e),
                            format!("TLS handshake with {at} failed: {e}"),
                        ));
                    }
                    Err(_) => {
                        return Err(SendError::timeout(
                            Step::Tls,
                            "the TLS handshake",
                            setup.command_timeout,
                        ));
                    }
                }
            }
            _ => Box::new(tcp),
        };
        let mut conn = match within_guarded(
            setup.command_timeout,
            AsyncSmtpConnection::connect_with_transport(stream, &setup.client_id),
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                return Err(guarded_error(
                    Step::Connect,
                    "the greeting and EHLO",
                    e,
                    setup,
                ));
            }
        };

        if setup.security == Security::StartTls {
            if !conn.can_starttls() {
                conn.abort().await;
                return Err(SendError::new(
                    Step::Tls,
                    true,
                    format!(
                        "{at} does not offer STARTTLS; security = \"starttls\" never falls back to plain text"
                    ),
                ));
            }
            let Some(params) = &setup.starttls else {
                return Err(SendError::new(Step::Tls, true, "STARTTLS is not set up"));
            };
            if let Err(e) = within_guarded(
                setup.command_timeout,
                conn.starttls(params.clone(), &setup.client_id),
            )
            .await
            {
                return Err(guarded_error(Step::Tls, "STARTTLS", e, setup));
            }
        }

        let mut session = Session {
            id,
            info: SessionInfo {
                host: setup.host.clone(),
                port: setup.port,
                security: setup.security,
                server_name: conn.server_info().name().to_owned(),
                mechanism: None,
                offered_mechanisms: Vec::new(),
                pop_before_smtp: setup.pop.is_some(),
            },
            conn,
            last_used: Instant::now(),
        };
        if let Some(login) = &setup.login
            && let Err(e) = session.authenticate(setup, login).await
        {
            session.conn.abort().await;
            return Err(e);
        }
        tracing::debug!(
            session = id,
            host = %setup.host,
            port = setup.port,
            security = ?setup.security,
            mechanism = session.info.mechanism.map(AuthMechanism::name),
            "SMTP session opened"
        );
        Ok(session)
    }

    /// How long the connection has been unused.
    pub fn idle_for(&self) -> Duration {
        self.last_used.elapsed()
    }

    pub fn touch(&mut self) {
        self.last_used = Instant::now();
    }

    /// One command of the AUTH exchange, within the command timeout.
    async fn auth_command(
        &mut self,
        setup: &Setup,
        line: &str,
        what: &str,
    ) -> Result<Response, SendError> {
        within(
            setup.command_timeout,
            Step::Auth,
            what,
            self.conn.command(Line(line)),
        )
        .await
    }

    /// Reads the mechanisms the server offers and logs in with the
    /// strongest one `auth_encryption` (and any test restriction) allows.
    async fn authenticate(&mut self, setup: &Setup, login: &Login) -> Result<(), SendError> {
        // lettre parsed the EHLO reply into `ServerInfo` and dropped every
        // mechanism it does not implement (CRAM-MD5, DIGEST-MD5), so ask
        // again and read the raw lines; a second EHLO is legal (RFC 5321
        // §4.1.4) and changes no state.
        let ehlo = format!("EHLO {}", setup.client_id);
        let reply = self.auth_command(setup, &ehlo, "EHLO").await?;
        let offered = sasl::offered_mechanisms(reply.message().skip(1));
        self.info.offered_mechanisms = offered.clone();

        let Some(mechanism) = sasl::choose(&setup.preference, &offered) else {
            return Err(no_mechanism(
                setup,
                &offered,
                self.conn.is_encrypted() || setup.security == Security::Tls,
            ));
        };
        let user = login.username.as_str();
        let password = login.password.expose();
        let done = match mechanism {
            AuthMechanism::Plain | AuthMechanism::Login => {
                let m = if mechanism == AuthMechanism::Plain {
                    Mechanism::Plain
                } else {
                    Mechanism::Login
                };
                let credentials = Credentials::new(user.to_owned(), password.to_owned());
                within(
                    setup.command_timeout,
                    Step::Auth,
                    "AUTH",
                    self.conn.auth(&[m], &credentials),
                )
                .await?
            }
            AuthMechanism::CramMd5 => self.cram_md5(setup, user, password).await?,
            AuthMechanism::DigestMd5 => self.digest_md5(setup, user, password).await?,
        };
        if !done.has_code(235) {
            return Err(SendError::new(
                Step::Auth,
                false,
                format!(
                    "{mechanism} login as {user} ended with {} instead of 235",
                    reply_text(&done)
                ),
            ));
        }
        self.info.mechanism = Some(mechanism);
        Ok(())
    }

    /// The server's base64 challenge in a 334 reply, decoded.
    fn challenge(reply: &Response, mechanism: AuthMechanism) -> Result<Vec<u8>, SendError> {
        if !reply.has_code(334) {
            return Err(SendError::new(
                Step::Auth,
                false,
                format!(
                    "{mechanism}: expected a 334 challenge, got {}",
                    reply_text(reply)
                ),
            ));
        }
        let word = reply.first_word().unwrap_or("");
        B64.decode(word).map_err(|e| {
            SendError::new(
                Step::Auth,
                true,
                format!("{mechanism}: the server's challenge is not base64: {e}"),
            )
        })
    }

    /// Cancels a SASL exchange (RFC 4954 §4: a line `*`).
    async fn cancel(&mut self, setup: &Setup) {
        let _ = tokio::time::timeout(setup.command_timeout, self.conn.command(Line("*"))).await;
    }

    /// CRAM-MD5 (RFC 2195), by hand: lettre does not implement it.
    async fn cram_md5(
        &mut self,
        setup: &Setup,
        user: &str,
        password: &str,
    ) -> Result<Response, SendError> {
        let reply = self
            .auth_command(setup, "AUTH CRAM-MD5", "AUTH CRAM-MD5")
            .await?;
        let challenge = match Self::challenge(&reply, AuthMechanism::CramMd5) {
            Ok(c) => c,
            Err(e) => {
                self.cancel(setup).await;
                return Err(e);
            }
        };
        let answer = B64.encode(sasl::cram_md5_response(user, password, &challenge));
        self.auth_command(setup, &answer, "the CRAM-MD5 answer")
            .await
    }

    /// DIGEST-MD5 (RFC 2831, qop=auth), by hand: lettre does not implement
    /// it. The server's proof (`rspauth`) is checked before the final step.
    async fn digest_md5(
        &mut self,
        setup: &Setup,
        user: &str,
        password: &str,
    ) -> Result<Response, SendError> {
        let reply = self
            .auth_command(setup, "AUTH DIGEST-MD5", "AUTH DIGEST-MD5")
            .await?;
        let parsed = Self::challenge(&reply, AuthMechanism::DigestMd5).and_then(|raw| {
            sasl::DigestChallenge::parse(&String::from_utf8_lossy(&raw))
                .map_err(|e| SendError::new(Step::Auth, true, e.to_string()))
        });
        let challenge = match parsed {
            Ok(c) => c,
            Err(e) => {
                self.cancel(setup).await;
                return Err(e);
            }
        };
        let answer = sasl::digest_md5_answer(
            &challenge,
            user,
            password,
            "smtp",
            &setup.host,
            &sasl::new_cnonce(),
        );
        let reply = self
            .auth_command(
                setup,
                &B64.encode(&answer.response),
                "the DIGEST-MD5 answer",
            )
            .await?;
        if reply.has_code(235) {
            // The server skipped its proof; we are logged in all the same
            // (the password never crossed), so accept.
            tracing::debug!(session = self.id, "DIGEST-MD5 server sent no rspauth");
            return Ok(reply);
        }
        let proof = match Self::challenge(&reply, AuthMechanism::DigestMd5).and_then(|raw| {
            sasl::check_rspauth(&String::from_utf8_lossy(&raw), &answer.expected_rspauth)
                .map_err(|e| SendError::new(Step::Auth, true, e.to_string()))
        }) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.cancel(setup).await;
                Err(e)
            }
        };
        proof?;
        self.auth_command(setup, "", "the DIGEST-MD5 confirmation")
            .await
    }

    /// RSET, to start from a clean state on a reused connection; also
    /// proves the connection still works.
    pub async fn rset(&mut self, setup: &Setup) -> Result<(), SendError> {
        within(
            setup.command_timeout,
            Step::Connect,
            "RSET",
            self.conn.command(Rset),
        )
        .await
        .map(|_| ())
    }

    /// QUIT, best effort, then close.
    pub async fn quit(mut self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.conn.quit()).await;
        tracing::debug!(session = self.id, "SMTP session closed");
    }

    /// One transaction: MAIL FROM, RCPT TO each, then (if any recipient was
    /// accepted) DATA, `commit` and the message.
    pub async fn transaction(
        &mut self,
        setup: &Setup,
        sender: Option<&Address>,
        recipients: Vec<Recipient>,
        mut refused: Vec<Refused>,
        message: &[u8],
        commit: Option<Commit>,
    ) -> Result<Delivery, TxError> {
        let limit = setup.command_timeout;
        let server = self.conn.server_info();
        let utf8_ok = server.supports_feature(Extension::SmtpUtfEight);
        let eight_bit_ok = server.supports_feature(Extension::EightBitMime);

        let mut params = Vec::new();
        if !message.is_ascii() {
            if !eight_bit_ok {
                return Err(TxError::reusable(SendError::new(
                    Step::Data,
                    true,
                    "the message has 8-bit content but the server does not offer 8BITMIME; encode the body (base64 or quoted-printable)",
                )));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let sender_utf8 = sender.is_some_and(|s| !ascii(s));
        if sender_utf8 && !utf8_ok {
            return Err(TxError::reusable(SendError::new(
                Step::Sender,
                true,
                "the sender address is not ASCII and the server does not offer SMTPUTF8",
            )));
        }
        let mut sendable = Vec::with_capacity(recipients.len());
        for r in recipients {
            if !ascii(&r.address) && !utf8_ok {
                refused.push(Refused {
                    recipient: r.text,
                    permanent: true,
                    reply: "invalid address: not ASCII, and the server does not offer SMTPUTF8"
                        .into(),
                });
            } else {
                sendable.push(r);
            }
        }
        if sendable.is_empty() {
            return Ok(Delivery {
                accepted: Vec::new(),
                refused,
            });
        }
        if utf8_ok && (sender_utf8 || sendable.iter().any(|r| !ascii(&r.address))) {
            params.push(MailParameter::SmtpUtfEight);
        }

        // MAIL FROM
        match tokio::time::timeout(limit, self.conn.command(Mail::new(sender.cloned(), params)))
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(reply_or_broken(Step::Sender, &e)),
            Err(_) => {
                return Err(TxError::broken(SendError::timeout(
                    Step::Sender,
                    "MAIL FROM",
                    limit,
                )));
            }
        }

        // RCPT TO, one by one: a refusal concerns that recipient only.
        let mut accepted = Vec::with_capacity(sendable.len());
        for r in sendable {
            match tokio::time::timeout(limit, self.conn.command(Rcpt::new(r.address, Vec::new())))
                .await
            {
                Ok(Ok(_)) => accepted.push(r.text),
                Ok(Err(e)) => match Reply::of(&e) {
                    Some(reply) => {
                        tracing::debug!(session = self.id, recipient = %r.text, reply = %reply.text, "recipient refused");
                        refused.push(Refused {
                            recipient: r.text,
                            permanent: reply.permanent(),
                            reply: reply.text,
                        });
                    }
                    None => {
                        return Err(TxError::broken(SendError::new(
                            Step::Recipient,
                            false,
                            describe(&e),
                        )));
                    }
                },
                Err(_) => {
                    return Err(TxError::broken(SendError::timeout(
                        Step::Recipient,
                        "RCPT TO",
                        limit,
                    )));
                }
            }
        }
        if accepted.is_empty() {
            // Nothing to send; the next use of this connection starts with
            // RSET, which ends the open transaction.
            return Ok(Delivery { accepted, refused });
        }

        // DATA
        match tokio::time::timeout(limit, self.conn.command(Data)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(reply_or_broken(Step::Data, &e)),
            Err(_) => {
                return Err(TxError::broken(SendError::timeout(
                    Step::Data,
                    "DATA",
                    limit,
                )));
            }
        }
        // `commit` runs after the server's 354, right before the message
        // goes out: a caller that records "committing" here and then dies
        // leaves as small a gap as possible between that record and the
        // message reaching the server. If it fails, the connection is
        // dropped without the final dot, so the server discards the
        // message.
        if let Some(commit) = commit
            && let Err(why) = commit(&accepted).await
        {
            return Err(TxError::broken(SendError::new(
                Step::Data,
                false,
                format!("not sent: recording the recipients before the message failed: {why}"),
            )));
        }
        let body = crlf(message);
        // lettre's `message` appends CRLF "." CRLF itself; without this the
        // message would gain an empty last line.
        let body: &[u8] = body.strip_suffix(b"\r\n").unwrap_or(&body);
        let handed_over = AtomicBool::new(false);
        let parts = HandOver {
            body: Some(body),
            done: &handed_over,
        };
        let lost = |e: String| {
            if handed_over.load(Ordering::SeqCst) {
                TxError::broken(SendError::unknown_outcome(format!(
                    "the connection failed after the message was handed over, before the server confirmed it ({e}); it may have been delivered"
                )))
            } else {
                TxError::broken(SendError::new(
                    Step::Data,
                    false,
                    format!("sending the message failed: {e}"),
                ))
            }
        };
        match tokio::time::timeout(limit, self.conn.message_iter(parts)).await {
            Ok(Ok(_)) => {
                tracing::debug!(
                    session = self.id,
                    accepted = accepted.len(),
                    refused = refused.len(),
                    "message accepted"
                );
                Ok(Delivery { accepted, refused })
            }
            Ok(Err(e)) => match Reply::of(&e) {
                Some(reply) => Err(TxError::reusable(SendError::new(
                    Step::Data,
                    reply.permanent(),
                    reply.text,
                ))),
                None => Err(lost(describe(&e))),
            },
            Err(_) => Err(lost(format!("no answer within {}", humanize(limit)))),
        }
    }
}

/// The message parts for lettre's `message_iter`, which writes each part
/// and asks for the next only after the write succeeded: when asked after
/// the last one, the whole body is out, and only the final dot and the
/// reply remain. From then on a broken connection leaves the outcome
/// unknown.
struct HandOver<'a> {
    body: Option<&'a [u8]>,
    done: &'a AtomicBool,
}

impl<'a> Iterator for HandOver<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let part = self.body.take();
        if part.is_none() {
            self.done.store(true, Ordering::SeqCst);
        }
        part
    }
}

/// The message with every line ending a CRLF: a bare LF (or CR) is
/// turned into CRLF, so that no line can end differently for the server
/// than for the dot-stuffing (SMTP smuggling).
pub(crate) fn crlf(message: &[u8]) -> Cow<'_, [u8]> {
    let bare = message.iter().enumerate().any(|(i, &b)| match b {
        b'\n' => i == 0 || message[i - 1] != b'\r',
        b'\r' => message.get(i + 1) != Some(&b'\n'),
        _ => false,
    });
    if !bare {
        return Cow::Borrowed(message);
    }
    let mut out = Vec::with_capacity(message.len() + message.len() / 32);
    let mut i = 0;
    while i < message.len() {
        match message[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if message.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

fn ascii(a: &Address) -> bool {
    let s: &str = a.as_ref();
    s.is_ascii()
}

/// A negative reply keeps the connection usable; anything else breaks it.
fn reply_or_broken(step: Step, e: &lettre::transport::smtp::Error) -> TxError {
    match Reply::of(e) {
        Some(r) => TxError::reusable(SendError::new(step, r.permanent(), r.text)),
        None => TxError::broken(SendError::new(step, false, describe(e))),
    }
}

/// A reply as `code text`.
fn reply_text(r: &Response) -> String {
    let text: Vec<&str> = r.message().collect();
    format!("{} {}", r.code(), text.join(" "))
        .trim_end()
        .to_owned()
}

/// The error for "no mechanism the settings allow is offered"; no
/// credentials have been sent when it is made.
fn no_mechanism(setup: &Setup, offered: &[String], encrypted: bool) -> SendError {
    let allowed: Vec<&str> = setup.preference.iter().map(|m| m.name()).collect();
    let enc = match setup.auth_encryption {
        AuthEncryption::Auto => "auto",
        AuthEncryption::On => "on",
        AuthEncryption::Off => "off",
    };
    let server = if offered.is_empty() {
        let hint = if encrypted {
            ""
        } else {
            " (some servers offer it only over TLS)"
        };
        format!("{}:{} offers no SMTP AUTH{hint}", setup.host, setup.port)
    } else {
        format!(
            "{}:{} offers AUTH {}",
            setup.host,
            setup.port,
            offered.join(" ")
        )
    };
    let ours = if allowed.is_empty() {
        format!(
            "no mechanism is allowed (auth_encryption = \"{enc}\" and the mechanism restriction exclude each other)"
        )
    } else {
        format!(
            "auth_encryption = \"{enc}\" allows only {}",
            allowed.join(", ")
        )
    };
    SendError::new(
        Step::Auth,
        true,
        format!("{server}, but {ours}; no credentials were sent"),
    )
}

/// A failed guarded call as a [`SendError`] of `step`; for TLS,
/// certificate failures are permanent.
fn guarded_error(step: Step, what: &str, e: Guarded, setup: &Setup) -> SendError {
    let at = format!("{}:{}", setup.host, setup.port);
    let e = match e {
        Guarded::Smtp(e) => e,
        Guarded::Panicked => {
            return SendError::new(
                step,
                false,
                format!("{at} sent a reply to {what} that could not be read"),
            );
        }
        Guarded::TimedOut => return SendError::timeout(step, what, setup.command_timeout),
    };
    if let Some(r) = Reply::of(&e) {
        return SendError::new(step, r.permanent(), r.text);
    }
    if step == Step::Tls {
        let detail = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| describe(&e));
        return SendError::new(
            step,
            tls::failure_is_permanent(&e),
            format!("TLS with {at} failed: {detail}"),
        );
    }
    SendError::new(step, false, format!("{at}: {}", describe(&e)))
}

/// The EHLO name: `helo_name`, else the machine's host name when it is a
/// usable domain name, else the address literal `[127.0.0.1]`.
pub(crate) fn client_id(helo_name: Option<&str>) -> ClientId {
    if let Some(name) = helo_name {
        return match name.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => ClientId::Ipv4(a),
            Ok(IpAddr::V6(a)) => ClientId::Ipv6(a),
            Err(_) => ClientId::Domain(name.to_owned()),
        };
    }
    let id = ClientId::default();
    let name = id.to_string();
    let usable = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b == b'.'
                || b == b'-'
                || b == b'['
                || b == b']'
                || b == b':'
        });
    if usable {
        id
    } else {
        ClientId::Ipv4(Ipv4Addr::LOCALHOST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_line_ends_become_crlf() {
        assert!(matches!(crlf(b"a\r\nb\r\n"), Cow::Borrowed(_)));
        assert_eq!(&*crlf(b"a\nb\r\n.\nc\rd"), b"a\r\nb\r\n.\r\nc\r\nd");
        assert_eq!(&*crlf(b"\n"), b"\r\n");
        assert_eq!(&*crlf(b"x\r"), b"x\r\n");
    }

    #[test]
    fn the_hand_over_flag_is_set_only_after_the_last_part() {
        let flag = AtomicBool::new(false);
        let mut parts = HandOver {
            body: Some(b"x"),
            done: &flag,
        };
        assert!(parts.next().is_some());
        assert!(!flag.load(Ordering::SeqCst));
        assert!(parts.next().is_none());
        assert!(flag.load(Ordering::SeqCst));
    }

    #[test]
    fn the_ehlo_name_is_the_setting_or_a_usable_host_name() {
        assert_eq!(
            client_id(Some("printer.example.test")).to_string(),
            "printer.example.test"
        );
        assert_eq!(client_id(Some("192.0.2.1")).to_string(), "[192.0.2.1]");
        let default = client_id(None).to_string();
        assert!(!default.is_empty() && !default.contains(' '), "{default}");
    }
}
