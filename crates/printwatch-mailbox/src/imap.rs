//! The IMAP4rev1 side, on `async-imap` (runtime-tokio) over [`MailStream`].
//!
//! async-imap does the framing and parsing (imap-proto), the login and
//! IDLE. The commands whose outcome matters are sent with
//! `Session::run_command` and their answers read here, response by
//! response: async-imap's typed `uid_search`/`uid_fetch`/`uid_store`
//! streams end at the tagged answer without looking at it, so a `NO` to
//! `UID STORE` would pass for success — and a flag that was not stored is a
//! request answered twice. Here a command succeeds only on a tagged `OK`.
//!
//! How a message is handled:
//! - `list`: `SELECT INBOX` (fresh each time: UIDVALIDITY and
//!   PERMANENTFLAGS are re-read), `UID SEARCH UNDELETED UNKEYWORD
//!   $PrintwatchHandled`, then `UID FETCH <set> (UID RFC822.SIZE)`. Ids are
//!   `<UIDVALIDITY>:<UID>`, stable across sessions while UIDVALIDITY is.
//! - `fetch`: `UID FETCH uid (UID RFC822.SIZE)` first, refused as too big
//!   without downloading; then `UID FETCH uid (UID BODY.PEEK[]<0.limit+1>)`
//!   — `PEEK` leaves `\Seen` alone, the partial range keeps even a server
//!   that lied about the size from sending more than the limit.
//! - `finish`: `UID STORE uid +FLAGS.SILENT (\Seen $PrintwatchHandled)`, or
//!   with `\Deleted` and then `UID EXPUNGE uid` (UIDPLUS) / `EXPUNGE`.
//! - `wait_for_change`: IDLE (RFC 2177) with async-imap's handle, then
//!   `DONE`, and the session goes on.
//!
//! Bounds: every command's answer is limited by the stream's read budget
//! (`max_response_bytes`, or the download limit plus 64 KiB), every
//! command by the command timeout. After a timeout, an I/O error or an
//! answer that breaks the protocol the session refuses further commands;
//! a tagged `NO`/`BAD` leaves it usable.

use std::collections::BTreeMap;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{
    AttributeValue, Capability, MailboxDatum, RequestId, Response, ResponseCode, Status,
};
use async_imap::types::UnsolicitedResponse;
use tokio::io::AsyncWriteExt;

use crate::error::{MailboxError, redact, server_text};
use crate::settings::MailboxSettings;
use crate::stream::{Budget, MailStream};
use crate::tls::TlsSetup;
use crate::{HANDLED_KEYWORD, Listed, open_tcp, tls_handshake};

type ImapSession = async_imap::Session<MailStream>;
type ImapClient = async_imap::Client<MailStream>;

/// Room for the protocol around a downloaded message.
const FETCH_OVERHEAD: u64 = 64 * 1024;
/// Budget of the greeting, CAPABILITY, STARTTLS and LOGIN answers.
const PRE_AUTH_BUDGET: u64 = 256 * 1024;
/// Ranges of UIDs per `UID FETCH` command (keeps command lines short).
const RANGES_PER_FETCH: usize = 500;

/// How a command failed.
enum Fail {
    /// A tagged `NO` or `BAD`; the session goes on.
    Negative(String),
    /// The session cannot go on.
    Fatal(MailboxError),
}

/// A logged-in IMAP session with INBOX selected.
pub(crate) struct Imap {
    /// `None` once the session is lost (a failed IDLE, say).
    session: Option<ImapSession>,
    budget: Budget,
    server: String,
    command_timeout: Duration,
    max_response_bytes: u64,
    idle: bool,
    uidplus: bool,
    /// From the last SELECT.
    selected: Option<Selected>,
    /// The server reported new messages since the last `list`.
    changed: bool,
    broken: Option<String>,
}

#[derive(Debug, Clone)]
struct Selected {
    uid_validity: u32,
    exists: u32,
    /// Whether `$PrintwatchHandled` is kept (PERMANENTFLAGS has it or `\*`).
    keyword_ok: bool,
    read_only: bool,
}

impl Imap {
    pub(crate) async fn connect(
        settings: &MailboxSettings,
        tls: Option<TlsSetup>,
    ) -> Result<Imap, MailboxError> {
        use printwatch_config::Security;

        let server = settings.server();
        let timeout = settings.command_timeout;
        let timed_out = |step: &str| MailboxError::Timeout {
            server: server.clone(),
            step: step.into(),
            after: timeout,
        };
        let tcp = open_tcp(settings).await?;
        let mut stream = MailStream::plain(tcp);
        let budget = stream.budget();
        budget.set(PRE_AUTH_BUDGET);
        if settings.security == Security::Tls {
            stream = tls_handshake(stream, tls.as_ref(), settings, "IMAP TLS handshake").await?;
        }
        let mut client = async_imap::Client::new(stream);
        let mut caps = tokio::time::timeout(timeout, greeting(&mut client, &server))
            .await
            .map_err(|_| timed_out("IMAP greeting"))??;

        if settings.security == Security::StartTls {
            if caps.is_none() {
                caps = Some(
                    tokio::time::timeout(timeout, capability(&mut client, &server))
                        .await
                        .map_err(|_| timed_out("IMAP CAPABILITY"))??,
                );
            }
            if !caps.as_ref().is_some_and(|c| has(c, "STARTTLS")) {
                return Err(MailboxError::Tls {
                    server,
                    step: "IMAP CAPABILITY".into(),
                    reason:
                        "the server does not offer STARTTLS; refusing to log in over plain text"
                            .into(),
                });
            }
            tokio::time::timeout(timeout, client.run_command_and_check_ok("STARTTLS", None))
                .await
                .map_err(|_| timed_out("IMAP STARTTLS"))?
                .map_err(|e| MailboxError::Tls {
                    server: server.clone(),
                    step: "IMAP STARTTLS".into(),
                    reason: format!(
                        "the server refused STARTTLS: {}",
                        server_text(e.to_string().as_bytes())
                    ),
                })?;
            // into_inner drops whatever async-imap had buffered beyond the
            // OK: data sent before the handshake must not be read as if it
            // came over TLS (the STARTTLS injection attack).
            let stream = client.into_inner();
            let stream =
                tls_handshake(stream, tls.as_ref(), settings, "IMAP STARTTLS handshake").await?;
            client = async_imap::Client::new(stream);
            caps = None;
        } else if settings.security == Security::None
            && caps.as_ref().is_some_and(|c| has(c, "LOGINDISABLED"))
        {
            return Err(MailboxError::Auth {
                server,
                step: "IMAP LOGIN".into(),
                username: settings.username.clone(),
                reason: "the server does not allow LOGIN over plain text (LOGINDISABLED); use security = \"starttls\" or \"tls\"".into(),
            });
        }

        let session = tokio::time::timeout(timeout, login(client, settings))
            .await
            .map_err(|_| timed_out("IMAP LOGIN"))??;
        let (mut session, login_caps) = session;
        if login_caps.is_some() {
            caps = login_caps;
        }
        if caps.is_none() {
            caps = match tokio::time::timeout(timeout, session.capabilities()).await {
                Ok(Ok(c)) => Some(c.iter().map(owned_capability).collect()),
                _ => None,
            };
        }
        let caps = caps.unwrap_or_default();
        let mut imap = Imap {
            session: Some(session),
            budget,
            server,
            command_timeout: settings.command_timeout,
            max_response_bytes: settings.max_response_bytes,
            idle: has(&caps, "IDLE"),
            uidplus: has(&caps, "UIDPLUS"),
            selected: None,
            changed: false,
            broken: None,
        };
        imap.select().await?;
        tracing::debug!(
            server = %imap.server,
            user = %settings.username,
            idle = imap.idle,
            uidplus = imap.uidplus,
            "IMAP logged in, INBOX selected"
        );
        Ok(imap)
    }

    /// `SELECT INBOX`.
    async fn select(&mut self) -> Result<Selected, MailboxError> {
        const STEP: &str = "IMAP SELECT INBOX";
        let mut exists = None;
        let mut uid_validity = None;
        let mut permanent: Option<Vec<String>> = None;
        let outcome = self
            .command(STEP, "SELECT INBOX", self.max_response_bytes, |r| match r {
                Response::MailboxData(MailboxDatum::Exists(n)) => exists = Some(*n),
                Response::Data {
                    status: Status::Ok,
                    outcome,
                } => match &outcome.code {
                    Some(ResponseCode::UidValidity(v)) => uid_validity = Some(*v),
                    Some(ResponseCode::PermanentFlags(flags)) => {
                        permanent = Some(flags.iter().map(|f| f.to_string()).collect());
                    }
                    _ => {}
                },
                _ => {}
            })
            .await;
        let read_only = match outcome {
            Ok(code) => code == Some(DoneCode::ReadOnly),
            Err(Fail::Negative(text)) => {
                self.selected = None;
                return Err(self.protocol(STEP, format!("refused: {text}")));
            }
            Err(Fail::Fatal(e)) => return Err(e),
        };
        let Some(uid_validity) = uid_validity else {
            return Err(self.fatal_protocol(
                STEP,
                "the server gave no UIDVALIDITY, so messages have no stable id".into(),
            ));
        };
        // RFC 3501 6.3.1: no PERMANENTFLAGS means every flag is permanent.
        let keyword_ok = permanent.as_ref().is_none_or(|flags| {
            flags
                .iter()
                .any(|f| f == "\\*" || f.eq_ignore_ascii_case(HANDLED_KEYWORD))
        });
        let selected = Selected {
            uid_validity,
            exists: exists.unwrap_or(0),
            keyword_ok,
            read_only,
        };
        self.selected = Some(selected.clone());
        self.changed = false;
        self.drain_unsolicited();
        Ok(selected)
    }

    pub(crate) async fn list(&mut self) -> Result<Vec<Listed>, MailboxError> {
        self.usable("IMAP SELECT INBOX")?;
        let selected = self.select().await?;
        if selected.exists == 0 {
            return Ok(Vec::new());
        }
        const SEARCH: &str = "IMAP UID SEARCH";
        let mut uids = Vec::new();
        let cmd = format!("UID SEARCH UNDELETED UNKEYWORD {HANDLED_KEYWORD}");
        match self
            .command(SEARCH, &cmd, self.max_response_bytes, |r| {
                if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                    uids.extend_from_slice(found);
                }
            })
            .await
        {
            Ok(_) => {}
            Err(Fail::Negative(text)) => return Err(self.protocol(SEARCH, text)),
            Err(Fail::Fatal(e)) => return Err(self.over_budget(e, SEARCH)),
        }
        uids.retain(|&u| u != 0);
        uids.sort_unstable();
        uids.dedup();
        let mut sizes = BTreeMap::new();
        let ranges = uid_ranges(&uids);
        for part in ranges.chunks(RANGES_PER_FETCH) {
            let set = part.join(",");
            let step = "IMAP UID FETCH (RFC822.SIZE)";
            match self
                .command(
                    step,
                    &format!("UID FETCH {set} (UID RFC822.SIZE)"),
                    self.max_response_bytes,
                    |r| {
                        if let Some((uid, size)) = uid_and_size(r) {
                            sizes.insert(uid, size);
                        }
                    },
                )
                .await
            {
                Ok(_) => {}
                Err(Fail::Negative(text)) => return Err(self.protocol(step, text)),
                Err(Fail::Fatal(e)) => return Err(self.over_budget(e, step)),
            }
        }
        // Only what the search found (a FETCH answer may carry others), and
        // only what still exists (one may have been expunged in between).
        let listed: Vec<Listed> = uids
            .iter()
            .filter_map(|uid| {
                sizes.get(uid).map(|&size| Listed {
                    id: format!("{}:{uid}", selected.uid_validity),
                    size,
                })
            })
            .collect();
        tracing::debug!(server = %self.server, count = listed.len(), "IMAP listed");
        Ok(listed)
    }

    /// The UID of `id`, checked against the selected UIDVALIDITY.
    async fn uid_of(&mut self, id: &str) -> Result<(u32, Selected), MailboxError> {
        let selected = match &self.selected {
            Some(s) => s.clone(),
            None => self.select().await?,
        };
        let parsed = id
            .split_once(':')
            .and_then(|(v, u)| Some((v.parse::<u32>().ok()?, u.parse::<u32>().ok()?)));
        let Some((validity, uid)) = parsed.filter(|&(_, uid)| uid != 0) else {
            return Err(MailboxError::NoSuchMessage {
                id: id.to_owned(),
                reason: "not an IMAP message id (<UIDVALIDITY>:<UID>)".into(),
            });
        };
        if validity != selected.uid_validity {
            return Err(MailboxError::NoSuchMessage {
                id: id.to_owned(),
                reason: format!(
                    "INBOX's UIDVALIDITY is now {}: the server renumbered its messages",
                    selected.uid_validity
                ),
            });
        }
        Ok((uid, selected))
    }

    pub(crate) async fn fetch(&mut self, id: &str, limit: u64) -> Result<Vec<u8>, MailboxError> {
        self.usable("IMAP UID FETCH")?;
        let (uid, _) = self.uid_of(id).await?;
        let step = format!("IMAP UID FETCH {uid} (RFC822.SIZE)");
        let mut size = None;
        match self
            .command(
                &step,
                &format!("UID FETCH {uid} (UID RFC822.SIZE)"),
                self.max_response_bytes,
                |r| {
                    if let Some((u, s)) = uid_and_size(r)
                        && u == uid
                    {
                        size = Some(s);
                    }
                },
            )
            .await
        {
            Ok(_) => {}
            Err(Fail::Negative(text)) => return Err(self.protocol(&step, text)),
            Err(Fail::Fatal(e)) => return Err(e),
        }
        let Some(size) = size else {
            return Err(MailboxError::NoSuchMessage {
                id: id.to_owned(),
                reason: "no longer in INBOX".into(),
            });
        };
        if size > limit {
            return Err(MailboxError::TooBig {
                id: id.to_owned(),
                size: Some(size),
                limit,
            });
        }
        let step = format!("IMAP UID FETCH {uid} BODY.PEEK[]");
        // The partial range keeps a server whose size was wrong from
        // sending more than limit + 1 bytes.
        let query = match u32::try_from(limit.saturating_add(1)) {
            Ok(n) => format!("UID FETCH {uid} (UID BODY.PEEK[]<0.{n}>)"),
            Err(_) => format!("UID FETCH {uid} (UID BODY.PEEK[])"),
        };
        let mut body: Option<Vec<u8>> = None;
        let budget = limit.saturating_add(FETCH_OVERHEAD);
        match self
            .command(&step, &query, budget, |r| {
                if let Response::Fetch(_, attrs) = r
                    && attrs
                        .iter()
                        .any(|a| matches!(a, AttributeValue::Uid(u) if *u == uid))
                {
                    for a in attrs {
                        match a {
                            AttributeValue::BodySection {
                                section: None,
                                data: Some(data),
                                ..
                            }
                            | AttributeValue::Rfc822(Some(data)) => {
                                body = Some(data.to_vec());
                            }
                            _ => {}
                        }
                    }
                }
            })
            .await
        {
            Ok(_) => {}
            Err(Fail::Negative(text)) => return Err(self.protocol(&step, text)),
            Err(Fail::Fatal(e)) => {
                return Err(if self.budget.exceeded() {
                    MailboxError::TooBig {
                        id: id.to_owned(),
                        size: None,
                        limit,
                    }
                } else {
                    e
                });
            }
        }
        let Some(body) = body else {
            return Err(MailboxError::NoSuchMessage {
                id: id.to_owned(),
                reason: "no longer in INBOX (the server sent no body)".into(),
            });
        };
        if body.len() as u64 > limit {
            return Err(MailboxError::TooBig {
                id: id.to_owned(),
                size: None,
                limit,
            });
        }
        tracing::debug!(server = %self.server, id, bytes = body.len(), "IMAP fetched");
        Ok(body)
    }

    pub(crate) async fn finish(&mut self, id: &str, expunge: bool) -> Result<(), MailboxError> {
        self.usable("IMAP UID STORE")?;
        let (uid, selected) = self.uid_of(id).await?;
        let step = format!("IMAP UID STORE {uid}");
        if selected.read_only {
            return Err(self.protocol(&step, "INBOX is read-only for this login".into()));
        }
        let keyword = if selected.keyword_ok {
            format!(" {HANDLED_KEYWORD}")
        } else if expunge {
            String::new()
        } else {
            return Err(self.protocol(
                &step,
                format!("the server does not keep the keyword {HANDLED_KEYWORD} (PERMANENTFLAGS has no \\*); use expunge"),
            ));
        };
        let flags = if expunge {
            format!("(\\Seen \\Deleted{keyword})")
        } else {
            format!("(\\Seen{keyword})")
        };
        match self
            .command(
                &step,
                &format!("UID STORE {uid} +FLAGS.SILENT {flags}"),
                self.max_response_bytes,
                |_| {},
            )
            .await
        {
            Ok(_) => {}
            Err(Fail::Negative(text)) => return Err(self.protocol(&step, text)),
            Err(Fail::Fatal(e)) => return Err(e),
        }
        if expunge {
            let (step, cmd) = if self.uidplus {
                (
                    format!("IMAP UID EXPUNGE {uid}"),
                    format!("UID EXPUNGE {uid}"),
                )
            } else {
                ("IMAP EXPUNGE".to_owned(), "EXPUNGE".to_owned())
            };
            match self
                .command(&step, &cmd, self.max_response_bytes, |_| {})
                .await
            {
                Ok(_) => {}
                Err(Fail::Negative(text)) => return Err(self.protocol(&step, text)),
                Err(Fail::Fatal(e)) => return Err(e),
            }
        }
        tracing::debug!(server = %self.server, id, expunge, "IMAP finished");
        Ok(())
    }

    pub(crate) fn can_idle(&self) -> bool {
        self.idle
    }

    pub(crate) async fn wait_for_change(
        &mut self,
        timeout: Duration,
    ) -> Result<bool, MailboxError> {
        const STEP: &str = "IMAP IDLE";
        self.usable(STEP)?;
        if !self.idle {
            return Ok(false);
        }
        self.drain_unsolicited();
        if self.changed {
            self.changed = false;
            return Ok(true);
        }
        if self.selected.is_none() {
            self.select().await?;
        }
        let Some(session) = self.session.take() else {
            return Err(self.protocol(STEP, "the session is gone".into()));
        };
        self.budget.set(self.max_response_bytes);
        let after = self.command_timeout;
        let mut handle = session.idle();
        match tokio::time::timeout(after, handle.init()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let reason = imap_error_text(&e);
                return Err(self.lost(STEP, format!("IDLE refused or failed: {reason}")));
            }
            Err(_) => return Err(self.lost_timeout(STEP, after)),
        }
        tracing::debug!(server = %self.server, ?timeout, "IMAP idling");
        let waited = {
            let (wait, stop) = handle.wait_with_timeout(timeout);
            // The inner timeout restarts on every keep-alive; this one does not.
            let waited = tokio::time::timeout(timeout, wait).await;
            drop(stop);
            waited
        };
        let changed = match waited {
            Err(_) | Ok(Ok(IdleResponse::Timeout)) => Ok(false),
            Ok(Ok(IdleResponse::NewData(data))) => match data.parsed() {
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => Err(format!(
                    "the server ended the session: {}",
                    server_text(outcome.information.as_deref().unwrap_or("").as_bytes())
                )),
                _ => Ok(true),
            },
            Ok(Ok(IdleResponse::ManualInterrupt)) => {
                Err("the server closed the connection during IDLE".to_owned())
            }
            Ok(Err(e)) => Err(imap_error_text(&e)),
        };
        let changed = match changed {
            Ok(c) => c,
            Err(reason) => return Err(self.lost(STEP, reason)),
        };
        match tokio::time::timeout(after, handle.done()).await {
            Ok(Ok(session)) => self.session = Some(session),
            Ok(Err(e)) => {
                let reason = imap_error_text(&e);
                return Err(self.lost("IMAP IDLE DONE", reason));
            }
            Err(_) => return Err(self.lost_timeout("IMAP IDLE DONE", after)),
        }
        self.drain_unsolicited();
        let changed = changed || std::mem::take(&mut self.changed);
        tracing::debug!(server = %self.server, changed, "IMAP idle ended");
        Ok(changed)
    }

    pub(crate) async fn logout(mut self) -> Result<(), MailboxError> {
        let Some(mut session) = self.session.take() else {
            // Lost earlier; flags are stored as each finish happens, so
            // there is nothing left to commit.
            return Ok(());
        };
        if self.broken.is_some() {
            return Ok(());
        }
        self.budget.set(self.max_response_bytes);
        match tokio::time::timeout(self.command_timeout, session.logout()).await {
            Ok(Ok(())) => {
                tracing::debug!(server = %self.server, "IMAP logged out");
                Ok(())
            }
            Ok(Err(e)) => Err(self.protocol("IMAP LOGOUT", imap_error_text(&e))),
            Err(_) => Err(MailboxError::Timeout {
                server: self.server.clone(),
                step: "IMAP LOGOUT".into(),
                after: self.command_timeout,
            }),
        }
    }

    // ---- plumbing -------------------------------------------------------

    /// Sends `cmd` and reads every response up to its tagged answer,
    /// handing the others to `on`, within the command timeout and with at
    /// most `budget` bytes read. Ok on a tagged `OK` (with its code).
    async fn command<F>(
        &mut self,
        step: &str,
        cmd: &str,
        budget: u64,
        mut on: F,
    ) -> Result<Option<DoneCode>, Fail>
    where
        F: FnMut(&Response<'_>),
    {
        if let Some(why) = &self.broken {
            let e = self.protocol(
                step,
                format!("the session failed earlier ({why}); connect again"),
            );
            return Err(Fail::Fatal(e));
        }
        let Some(session) = self.session.as_mut() else {
            let e = self.protocol(step, "the session is gone; connect again".into());
            return Err(Fail::Fatal(e));
        };
        self.budget.set(budget);
        let mut saw_change = false;
        let work = async {
            let tag = session
                .run_command(cmd)
                .await
                .map_err(|e| Outcome::Broken(imap_error_text(&e)))?;
            loop {
                let resp = match session.read_response().await {
                    Ok(Some(resp)) => resp,
                    Ok(None) => {
                        return Err(Outcome::Broken("the server closed the connection".into()));
                    }
                    Err(e) => return Err(Outcome::Broken(e.to_string())),
                };
                match resp.parsed() {
                    Response::Done {
                        tag: t,
                        status,
                        outcome,
                    } if *t == tag => {
                        let text =
                            server_text(outcome.information.as_deref().unwrap_or("").as_bytes());
                        return match status {
                            Status::Ok => Ok(match outcome.code {
                                Some(ResponseCode::ReadOnly) => Some(DoneCode::ReadOnly),
                                _ => None,
                            }),
                            Status::No | Status::Bad => Err(Outcome::Negative(text)),
                            _ => Err(Outcome::Broken(format!("unexpected tagged answer: {text}"))),
                        };
                    }
                    Response::Done {
                        tag: RequestId(other),
                        ..
                    } => {
                        tracing::debug!(tag = %server_text(other.as_bytes()), "IMAP answer to another command ignored");
                    }
                    Response::Data {
                        status: Status::Bye,
                        outcome,
                    } => {
                        return Err(Outcome::Broken(format!(
                            "the server ended the session: {}",
                            server_text(outcome.information.as_deref().unwrap_or("").as_bytes())
                        )));
                    }
                    other => {
                        if matches!(
                            other,
                            Response::MailboxData(
                                MailboxDatum::Exists(_) | MailboxDatum::Recent(_)
                            )
                        ) {
                            saw_change = true;
                        }
                        on(other);
                    }
                }
            }
        };
        let result = tokio::time::timeout(self.command_timeout, work).await;
        if saw_change {
            self.changed = true;
        }
        match result {
            Ok(Ok(code)) => Ok(code),
            Ok(Err(Outcome::Negative(text))) => Err(Fail::Negative(text)),
            Ok(Err(Outcome::Broken(reason))) => Err(Fail::Fatal(self.fatal_protocol(step, reason))),
            Err(_) => {
                let e = MailboxError::Timeout {
                    server: self.server.clone(),
                    step: step.to_owned(),
                    after: self.command_timeout,
                };
                self.broken = Some(e.to_string());
                Err(Fail::Fatal(e))
            }
        }
    }

    /// `e`, or a clearer message when it came from the read budget.
    fn over_budget(&self, e: MailboxError, step: &str) -> MailboxError {
        if self.budget.exceeded() {
            self.protocol(
                step,
                format!(
                    "the answer is larger than {} bytes (max_response_bytes)",
                    self.budget.limit()
                ),
            )
        } else {
            e
        }
    }

    fn drain_unsolicited(&mut self) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        while let Ok(r) = session.unsolicited_responses.try_recv() {
            if matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            ) {
                self.changed = true;
            }
        }
    }

    fn usable(&self, step: &str) -> Result<(), MailboxError> {
        match (&self.broken, &self.session) {
            (None, Some(_)) => Ok(()),
            (Some(why), _) => Err(self.protocol(
                step,
                format!("the session failed earlier ({why}); connect again"),
            )),
            (None, None) => Err(self.protocol(step, "the session is gone; connect again".into())),
        }
    }

    fn protocol(&self, step: &str, reason: String) -> MailboxError {
        MailboxError::Protocol {
            server: self.server.clone(),
            step: step.to_owned(),
            reason,
        }
    }

    fn fatal_protocol(&mut self, step: &str, reason: String) -> MailboxError {
        self.broken = Some(reason.clone());
        self.protocol(step, reason)
    }

    /// The session went with a failed IDLE.
    fn lost(&mut self, step: &str, reason: String) -> MailboxError {
        self.session = None;
        self.fatal_protocol(step, reason)
    }

    fn lost_timeout(&mut self, step: &str, after: Duration) -> MailboxError {
        self.session = None;
        let e = MailboxError::Timeout {
            server: self.server.clone(),
            step: step.to_owned(),
            after,
        };
        self.broken = Some(e.to_string());
        e
    }
}

/// A tagged OK's response code that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DoneCode {
    ReadOnly,
}

/// How the command loop ended, before it is turned into a [`Fail`].
enum Outcome {
    Negative(String),
    Broken(String),
}

/// Reads the greeting; `* OK` goes on, with the capabilities it names.
async fn greeting(
    client: &mut ImapClient,
    server: &str,
) -> Result<Option<Vec<String>>, MailboxError> {
    const STEP: &str = "IMAP greeting";
    let fail = |reason: String| MailboxError::Protocol {
        server: server.to_owned(),
        step: STEP.into(),
        reason,
    };
    let resp = match client.read_response().await {
        Ok(Some(r)) => r,
        Ok(None) => return Err(fail("the server closed the connection".into())),
        Err(source) => {
            return Err(MailboxError::Io {
                server: server.to_owned(),
                step: STEP.into(),
                source,
            });
        }
    };
    match resp.parsed() {
        Response::Data {
            status: Status::Ok,
            outcome,
        } => Ok(match &outcome.code {
            Some(ResponseCode::Capabilities(caps)) => Some(caps.iter().map(capability_name).collect()),
            _ => None,
        }),
        Response::Data {
            status: Status::PreAuth,
            ..
        } => Err(fail("the server greets with PREAUTH; printwatch logs in itself and does not use pre-authenticated connections".into())),
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Err(fail(format!(
            "the server refused the connection: {}",
            server_text(outcome.information.as_deref().unwrap_or("").as_bytes())
        ))),
        _ => Err(fail("the server's first answer is not a greeting".into())),
    }
}

/// `CAPABILITY` before login (async-imap offers it only after). Written on
/// the stream directly with its own tag; the answer is read through
/// async-imap's parser.
async fn capability(client: &mut ImapClient, server: &str) -> Result<Vec<String>, MailboxError> {
    const STEP: &str = "IMAP CAPABILITY";
    const TAG: &str = "pwcap";
    let io = |source| MailboxError::Io {
        server: server.to_owned(),
        step: STEP.into(),
        source,
    };
    let stream = client.get_mut();
    stream
        .write_all(format!("{TAG} CAPABILITY\r\n").as_bytes())
        .await
        .map_err(io)?;
    stream.flush().await.map_err(io)?;
    let mut caps = Vec::new();
    loop {
        let resp = match client.read_response().await {
            Ok(Some(r)) => r,
            Ok(None) => {
                return Err(MailboxError::Protocol {
                    server: server.to_owned(),
                    step: STEP.into(),
                    reason: "the server closed the connection".into(),
                });
            }
            Err(e) => return Err(io(e)),
        };
        match resp.parsed() {
            Response::Capabilities(list) => caps.extend(list.iter().map(capability_name)),
            Response::Done {
                tag: RequestId(t),
                status,
                ..
            } if t == TAG => {
                // A server without CAPABILITY offers nothing we rely on.
                if *status != Status::Ok {
                    caps.clear();
                }
                return Ok(caps);
            }
            _ => {}
        }
    }
}

/// LOGIN, with the password kept away from async-imap (see
/// [`crate::stream`]): async-imap sends a random placeholder, the stream
/// puts the password in its place.
async fn login(
    mut client: ImapClient,
    settings: &MailboxSettings,
) -> Result<(ImapSession, Option<Vec<String>>), MailboxError> {
    const STEP: &str = "IMAP LOGIN";
    let password = settings.password.expose();
    let placeholder = format!("pwsecret{}", uuid::Uuid::new_v4().simple());
    let mut quoted = Vec::with_capacity(password.len() + 8);
    for b in password.bytes() {
        if b == b'\\' || b == b'"' {
            quoted.push(b'\\');
        }
        quoted.push(b);
    }
    client.get_mut().substitute_once(&placeholder, quoted);
    match client
        .login_with_capabilities(&settings.username, &placeholder)
        .await
    {
        Ok((mut session, caps)) => {
            session.get_mut().clear_substitution();
            let caps = caps.map(|c| c.iter().map(owned_capability).collect());
            Ok((session, caps))
        }
        Err((e, mut client)) => {
            client.get_mut().clear_substitution();
            let reason = redact(imap_error_text(&e), password);
            match e {
                async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => {
                    Err(MailboxError::Auth {
                        server: settings.server(),
                        step: STEP.into(),
                        username: settings.username.clone(),
                        reason,
                    })
                }
                async_imap::error::Error::Io(source) => Err(MailboxError::Io {
                    server: settings.server(),
                    step: STEP.into(),
                    source,
                }),
                _ => Err(MailboxError::Protocol {
                    server: settings.server(),
                    step: STEP.into(),
                    reason,
                }),
            }
        }
    }
}

fn capability_name(c: &Capability<'_>) -> String {
    match c {
        Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
        Capability::Auth(m) => format!("AUTH={m}"),
        Capability::Atom(a) => a.to_string(),
    }
}

fn owned_capability(c: &async_imap::types::Capability) -> String {
    match c {
        async_imap::types::Capability::Imap4rev1 => "IMAP4rev1".to_owned(),
        async_imap::types::Capability::Auth(m) => format!("AUTH={m}"),
        async_imap::types::Capability::Atom(a) => a.clone(),
    }
}

fn has(caps: &[String], name: &str) -> bool {
    caps.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// An async-imap error as one clean line; for `NO`/`BAD` the server's
/// text (async-imap wraps it as `code: .., info: Some("..")`).
fn imap_error_text(e: &async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::No(s) => format!("NO {}", refusal_text(s)),
        async_imap::error::Error::Bad(s) => format!("BAD {}", refusal_text(s)),
        other => server_text(other.to_string().as_bytes()),
    }
}

fn refusal_text(s: &str) -> String {
    let info = s
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .map(|t| t.replace("\\\"", "\"").replace("\\\\", "\\"));
    server_text(info.as_deref().unwrap_or(s).as_bytes())
}

/// The UID and RFC822.SIZE of a FETCH answer carrying both.
fn uid_and_size(r: &Response<'_>) -> Option<(u32, u64)> {
    let Response::Fetch(_, attrs) = r else {
        return None;
    };
    let mut uid = None;
    let mut size = None;
    for a in attrs {
        match a {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::Rfc822Size(s) => size = Some(u64::from(*s)),
            _ => {}
        }
    }
    Some((uid?, size?))
}

/// Sorted, deduplicated UIDs as IMAP ranges (`1:3`, `7`, ...).
fn uid_ranges(uids: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    let mut iter = uids.iter().copied();
    let Some(mut start) = iter.next() else {
        return out;
    };
    let mut end = start;
    let mut push = |s: u32, e: u32| {
        out.push(if s == e {
            s.to_string()
        } else {
            format!("{s}:{e}")
        })
    };
    for uid in iter {
        if end.checked_add(1) == Some(uid) {
            end = uid;
        } else {
            push(start, end);
            start = uid;
            end = uid;
        }
    }
    push(start, end);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(uid_ranges(&[]), Vec::<String>::new());
        assert_eq!(uid_ranges(&[5]), ["5"]);
        assert_eq!(uid_ranges(&[1, 2, 3, 7, 9, 10]), ["1:3", "7", "9:10"]);
        assert_eq!(
            uid_ranges(&[u32::MAX - 1, u32::MAX]),
            [format!("{}:{}", u32::MAX - 1, u32::MAX)]
        );
    }

    #[test]
    fn refusals_read_as_the_server_wrote_them() {
        let e = async_imap::error::Error::No(
            r#"code: None, info: Some("[AUTHENTICATIONFAILED] Authentication \"failed\".")"#.into(),
        );
        assert_eq!(
            imap_error_text(&e),
            r#"NO [AUTHENTICATIONFAILED] Authentication "failed"."#
        );
        let e = async_imap::error::Error::Bad("odd".into());
        assert_eq!(imap_error_text(&e), "BAD odd");
    }

    #[test]
    fn capabilities_compare_without_case() {
        let caps = vec!["IMAP4rev1".to_owned(), "idle".to_owned()];
        assert!(has(&caps, "IDLE"));
        assert!(!has(&caps, "STARTTLS"));
    }
}
