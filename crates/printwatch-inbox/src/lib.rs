//! The inbox service (`printwatch-inbox`), SPEC §1.3 for a whole fleet:
//! polls the notification account over POP3 or IMAP4 (IMAP IDLE when the
//! server offers it), answers each `requeststatus` mail with the status of
//! the device it was sent to, and never answers twice, to the wrong
//! people, or to a machine.
//!
//! - [`request`] decides what a message is (a request for which device,
//!   or why it gets no reply);
//! - [`agents`] finds the agent that owns the device and asks it;
//! - [`reply`] builds the answer; [`answered`] remembers every message, so
//!   a request is answered once and a mail that gets no reply is logged
//!   once;
//! - a request whose agent is away, or whose device was not read yet (the
//!   manual's "right after power-on"), stays in the mailbox and is tried
//!   again on each poll until `[on_demand] give_up_after`.

pub mod agents;
pub mod answered;
pub mod reply;
pub mod request;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use printwatch_config::{Config, ReceiveProtocol};
use printwatch_mailbox::{Listed, MailboxSettings, Session};
use printwatch_smtp::{CommitFuture, Mailer};
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::agents::Agents;
use crate::answered::{Answered, Claim, State};
use crate::request::{Reason, Verdict};
use printwatch_bus::now_ms;

/// Why the inbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Bus(#[from] printwatch_bus::BusError),
    #[error("SMTP settings: {0}")]
    Smtp(#[from] printwatch_smtp::SetupError),
    #[error("mailbox settings: {0}")]
    Mailbox(#[from] printwatch_mailbox::MailboxError),
    #[error("cannot serve the operations port on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// Counters, served on the operations port and logged at shutdown.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered.
    pub answered: Counter,
    /// Mails that got no reply (each once).
    pub ignored: Counter,
    /// Polls on which a request waited for its agent.
    pub waiting: Counter,
    /// Requests given up after `give_up_after`.
    pub gave_up: Counter,
    /// Every mail handled, by outcome: `answered`, `rate_limited`,
    /// `gave_up`, or the reason it got no reply (`not_allowed`, …).
    pub mails: Family<Vec<(String, String)>, Counter>,
    /// Whether the last attempt to read a mailbox worked.
    pub mailbox_ok: AtomicBool,
}

impl Counters {
    fn outcome(&self, outcome: &str) {
        self.mails
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
    }

    fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        let r = registry.sub_registry_with_prefix("printwatch_inbox");
        r.register(
            "replies_sent",
            "Status requests answered",
            self.answered.clone(),
        );
        r.register(
            "mails_ignored",
            "Mails that got no reply",
            self.ignored.clone(),
        );
        r.register(
            "requests_waiting",
            "Polls on which a request waited for its agent",
            self.waiting.clone(),
        );
        r.register(
            "requests_given_up",
            "Requests given up after give_up_after",
            self.gave_up.clone(),
        );
        r.register("mails", "Mails handled, by outcome", self.mails.clone());
    }
}

/// One mailbox the inbox reads: the shared notification account, or a
/// device's own (`[devices.mailbox]`), whose requests are all for it.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub settings: MailboxSettings,
    pub protocol: ReceiveProtocol,
    /// `user@host:port`, part of each message's ledger key.
    pub account: String,
    pub device: Option<String>,
}

/// A built, not yet running inbox.
pub struct Application {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<Config>,
    mailboxes: Vec<Mailbox>,
    mailer: Mailer,
    ledger: Answered,
    agents: Agents,
    client: async_nats::Client,
    limiter: Mutex<HashMap<String, VecDeque<Instant>>>,
    pub counters: Counters,
}

impl Application {
    pub async fn build(cfg: &Config) -> Result<Application, InboxError> {
        let cfg = Arc::new(cfg.clone());
        let smtp = cfg
            .mail
            .smtp
            .as_ref()
            .ok_or(InboxError::Missing("[mail.smtp]"))?;
        let receive = cfg
            .mail
            .receive
            .as_ref()
            .ok_or(InboxError::Missing("[mail.receive]"))?;
        let mut mailboxes = Vec::new();
        if let Some(account) = cfg.mail.account.as_ref().filter(|a| a.receive) {
            let settings = MailboxSettings::from_config(receive, account)?;
            mailboxes.push(Mailbox {
                account: format!("{}@{}:{}", settings.username, settings.host, settings.port),
                settings,
                protocol: receive.protocol,
                device: None,
            });
        }
        for dev in &cfg.devices {
            let Some(mb) = &dev.mailbox else { continue };
            let account = printwatch_config::AccountConfig {
                address: dev
                    .mail_address
                    .clone()
                    .unwrap_or_else(|| mb.username.clone()),
                receive: true,
                username: Some(mb.username.clone()),
                password: mb.password.clone(),
            };
            let settings = MailboxSettings::from_config(receive, &account)?;
            mailboxes.push(Mailbox {
                account: format!("{}@{}:{}", settings.username, settings.host, settings.port),
                settings,
                protocol: receive.protocol,
                device: Some(dev.id.clone()),
            });
        }
        if mailboxes.is_empty() {
            return Err(InboxError::Missing(
                "a mailbox ([mail.account] receive = true or [devices.mailbox])",
            ));
        }
        let mailer = Mailer::new(smtp, cfg.mail.pop_before_smtp.as_ref())?;
        let names = cfg.names();
        let client = printwatch_bus::connect(&cfg.nats, "printwatch-inbox", None).await?;
        let js = jetstream::new(client.clone());
        let replicas = cfg.nats.replicas;
        let store = printwatch_bus::ensure_bucket_with_max_age(
            &js,
            &names.answered_bucket(),
            replicas,
            Duration::from_secs(30 * 24 * 3600),
        )
        .await?;
        let registry =
            printwatch_bus::ensure_bucket(&js, &names.devices_bucket(), replicas).await?;
        let owner = format!("inbox-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        // A slow live inbox that loses its claim cannot send: its "committing"
        // update is a compare-and-set on the revision it claimed.
        let lease = (receive.poll_interval * 2).max(Duration::from_secs(10));
        let names: Vec<&str> = mailboxes.iter().map(|m| m.account.as_str()).collect();
        tracing::info!(owner, mailboxes = ?names, protocol = ?receive.protocol, "inbox ready");
        let inner = Inner {
            mailboxes,
            mailer,
            ledger: Answered::new(store, owner, lease),
            agents: Agents::new(registry, Duration::from_secs(10)),
            client,
            limiter: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            cfg,
        };
        let inner = Arc::new(inner);
        if let Some(addr) = inner.cfg.telemetry.http_listen {
            let mut registry = prometheus_client::registry::Registry::default();
            inner.counters.register(&mut registry);
            let probe = inner.clone();
            let ready: printwatch_runtime::http::ReadyCheck = Arc::new(move || {
                if !printwatch_bus::is_connected(&probe.client) {
                    Err("not connected to NATS".into())
                } else if !probe.counters.mailbox_ok.load(Ordering::Relaxed) {
                    Err("the mailbox cannot be read".into())
                } else {
                    Ok(())
                }
            });
            printwatch_runtime::http::serve(addr, registry, ready)
                .await
                .map_err(|source| InboxError::Listen { addr, source })?;
        }
        Ok(Application { inner })
    }

    /// The counters (for tests and diagnostics).
    pub fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// Polls every mailbox and answers until `shutdown` completes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), InboxError> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut loops = tokio::task::JoinSet::new();
        for mailbox in self.inner.mailboxes.clone() {
            let inner = self.inner.clone();
            let stop = stop_rx.clone();
            loops.spawn(async move { inner.poll_loop(&mailbox, stop).await });
        }
        shutdown.await;
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        let c = &self.inner.counters;
        tracing::info!(
            answered = c.answered.get(),
            ignored = c.ignored.get(),
            waiting = c.waiting.get(),
            gave_up = c.gave_up.get(),
            "inbox stopped"
        );
        self.inner.mailer.close().await;
        let _ = self.inner.client.drain().await;
        Ok(())
    }
}

impl Inner {
    async fn poll_loop(&self, mailbox: &Mailbox, mut stop: tokio::sync::watch::Receiver<bool>) {
        let poll = self
            .cfg
            .mail
            .receive
            .as_ref()
            .map_or(Duration::from_secs(30), |r| r.poll_interval);
        let stopped = |stop: &mut tokio::sync::watch::Receiver<bool>| {
            let mut stop = stop.clone();
            async move {
                let _ = stop.wait_for(|s| *s).await;
            }
        };
        loop {
            if *stop.borrow() {
                break;
            }
            let session = tokio::select! {
                () = stopped(&mut stop) => break,
                s = printwatch_mailbox::connect(&mailbox.settings, mailbox.protocol) => s,
            };
            let mut session = match session {
                Ok(s) => {
                    self.counters.mailbox_ok.store(true, Ordering::Relaxed);
                    s
                }
                Err(e) => {
                    self.counters.mailbox_ok.store(false, Ordering::Relaxed);
                    tracing::warn!(mailbox = mailbox.account, error = %e, "cannot open the mailbox; trying again");
                    tokio::select! {
                        () = stopped(&mut stop) => break,
                        () = tokio::time::sleep(poll) => continue,
                    }
                }
            };
            let quit = loop {
                if let Err(e) = self.poll_once(mailbox, &mut session).await {
                    tracing::warn!(mailbox = mailbox.account, error = %e, "mailbox session failed; reconnecting");
                    break false;
                }
                if session.can_wait() {
                    tokio::select! {
                        () = stopped(&mut stop) => break true,
                        r = session.wait_for_change(poll) => if let Err(e) = r {
                            tracing::warn!(mailbox = mailbox.account, error = %e, "waiting for new mail failed; reconnecting");
                            break false;
                        },
                    }
                } else {
                    // POP3: QUIT commits the deletions; new mail shows on
                    // the next connection.
                    break false;
                }
            };
            let _ = session.logout().await;
            if quit {
                break;
            }
            if !matches!(mailbox.protocol, ReceiveProtocol::Imap) {
                tokio::select! {
                    () = stopped(&mut stop) => break,
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// Handles every message in the mailbox once.
    async fn poll_once(
        &self,
        mailbox: &Mailbox,
        session: &mut Session,
    ) -> Result<(), printwatch_mailbox::MailboxError> {
        let listed = session.list().await?;
        for item in listed {
            // One trace per mail: the checks, the agent's answer (over
            // gRPC, same trace) and the reply.
            let span = tracing::info_span!(
                parent: None,
                "inbox message",
                printwatch.mailbox = mailbox.account.as_str(),
                printwatch.message.id = item.id.as_str(),
                printwatch.message.size = item.size,
                trace_id = tracing::field::Empty,
            );
            printwatch_runtime::trace::record_trace_id(&span);
            self.handle(mailbox, session, &item)
                .instrument(span)
                .await?;
        }
        Ok(())
    }

    async fn handle(
        &self,
        mailbox: &Mailbox,
        session: &mut Session,
        item: &Listed,
    ) -> Result<(), printwatch_mailbox::MailboxError> {
        let key = Answered::key(&mailbox.account, &item.id);
        let od = &self.cfg.on_demand;
        match self.ledger.get(&key).await {
            Ok(Some((record, _))) if matches!(record.state, State::Answered) => {
                return session.finish(&item.id, false).await;
            }
            Ok(Some((record, _))) if matches!(record.state, State::Ignored) => {
                if od.delete_ignored {
                    return session.finish(&item.id, true).await;
                }
                return Ok(());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the answered ledger; trying on the next poll");
                return Ok(());
            }
        }
        if item.size > od.max_request_bytes {
            return self
                .ignore(session, item, &key, Reason::TooBig, None, None)
                .await;
        }
        let raw = match session.fetch(&item.id, od.max_request_bytes).await {
            Ok(raw) => raw,
            Err(printwatch_mailbox::MailboxError::TooBig { .. }) => {
                return self
                    .ignore(session, item, &key, Reason::TooBig, None, None)
                    .await;
            }
            Err(e) => return Err(e),
        };
        let verdict = match &mailbox.device {
            Some(device) => request::classify_for_device(&raw, item.size, &self.cfg, device),
            None => request::classify(&raw, item.size, &self.cfg),
        };
        let request = match verdict {
            Verdict::Answer(r) => r,
            Verdict::Ignore(i) => {
                return self
                    .ignore(
                        session,
                        item,
                        &key,
                        i.reason,
                        i.sender.as_deref(),
                        i.subject.as_deref(),
                    )
                    .await;
            }
        };
        let (revision, first_seen_ms) = match self.ledger.claim(&key).await {
            Ok(Claim::Mine {
                revision,
                first_seen_ms,
            }) => (revision, first_seen_ms),
            Ok(Claim::Done(State::Answered)) => return session.finish(&item.id, false).await,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim the request; trying on the next poll");
                return Ok(());
            }
        };
        if !self.allow_reply(&request.reply_to).await {
            let _ = self
                .ledger
                .set(
                    &key,
                    revision,
                    State::Ignored,
                    first_seen_ms,
                    "rate limited",
                )
                .await;
            self.counters.ignored.inc();
            self.counters.outcome("rate_limited");
            tracing::warn!(
                sender = request.reply_to,
                device.id = request.device_id,
                reason = "rate limited",
                "no reply: the sender asked more often than [on_demand] max_replies_per_sender allows"
            );
            return Ok(());
        }
        let status = match self.agents.status(&request.device_id).await {
            Ok(s) => s,
            Err(e) => {
                let waited = Duration::from_millis(now_ms().saturating_sub(first_seen_ms));
                if waited >= od.give_up_after {
                    tracing::error!(sender = request.reply_to, device.id = request.device_id, error = %e, ?waited,
                        "giving up on a request: no status within [on_demand] give_up_after");
                    self.counters.gave_up.inc();
                    self.counters.outcome("gave_up");
                    let _ = self
                        .ledger
                        .set(
                            &key,
                            revision,
                            State::Ignored,
                            first_seen_ms,
                            &format!("gave up: {e}"),
                        )
                        .await;
                    return Ok(());
                }
                tracing::info!(sender = request.reply_to, device.id = request.device_id, error = %e,
                    "no status yet; the request is kept and tried again on the next poll");
                self.counters.waiting.inc();
                let _ = self
                    .ledger
                    .set(
                        &key,
                        revision,
                        State::Waiting,
                        first_seen_ms,
                        &e.to_string(),
                    )
                    .await;
                return Ok(());
            }
        };
        let device = self.cfg.device(&request.device_id);
        let from = device
            .and_then(|d| d.mail_address.clone())
            .or_else(|| self.cfg.mail.account.as_ref().map(|a| a.address.clone()))
            .unwrap_or_default();
        let message = match reply::message(
            &status,
            &reply::ReplyParts {
                from: &from,
                to: &request.reply_to,
                common_subject: &od.common_subject,
                common_body: &od.common_body,
                language: self.cfg.mail.language,
                in_reply_to: request.message_id.as_deref(),
                references: &request.references,
                reply_id: &key,
                trace_id: printwatch_runtime::trace::current_trace_id().as_deref(),
            },
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the reply; not answered");
                let _ = self
                    .ledger
                    .set(
                        &key,
                        revision,
                        State::Ignored,
                        first_seen_ms,
                        &e.to_string(),
                    )
                    .await;
                return Ok(());
            }
        };
        let rev = Arc::new(std::sync::Mutex::new(revision));
        let commit = {
            let ledger = self.ledger.clone();
            let key = key.clone();
            let rev = rev.clone();
            move |_: &[String]| -> CommitFuture {
                Box::pin(async move {
                    let current = rev.lock().map(|r| *r).unwrap_or(0);
                    let new = ledger
                        .set(&key, current, State::Committing, first_seen_ms, "")
                        .await
                        .map_err(|e| e.to_string())?;
                    if let Ok(mut r) = rev.lock() {
                        *r = new;
                    }
                    Ok(())
                })
            }
        };
        let current = |rev: &std::sync::Mutex<u64>| rev.lock().map(|r| *r).unwrap_or(0);
        match self
            .mailer
            .send_committing(
                &from,
                std::slice::from_ref(&request.reply_to),
                &message,
                commit,
            )
            .await
        {
            Ok(d) if !d.accepted.is_empty() => {
                let _ = self
                    .ledger
                    .set(&key, current(&rev), State::Answered, first_seen_ms, "")
                    .await;
                self.counters.answered.inc();
                self.counters.outcome("answered");
                tracing::info!(
                    to = request.reply_to,
                    device.id = request.device_id,
                    "status reply sent"
                );
                session.finish(&item.id, false).await?;
            }
            Ok(d) => {
                let why = d
                    .refused
                    .first()
                    .map(|r| r.reply.clone())
                    .unwrap_or_default();
                tracing::warn!(
                    to = request.reply_to,
                    reply = why,
                    "the reply's recipient was refused; not answered"
                );
                let _ = self
                    .ledger
                    .set(&key, current(&rev), State::Ignored, first_seen_ms, &why)
                    .await;
                self.counters.ignored.inc();
                self.counters.outcome("reply_refused");
            }
            Err(e) if e.outcome_unknown() => {
                tracing::error!(to = request.reply_to, error = %e, "uncertain: the connection failed after the reply was handed over; not sent again");
                let _ = self
                    .ledger
                    .set(
                        &key,
                        current(&rev),
                        State::Answered,
                        first_seen_ms,
                        &e.to_string(),
                    )
                    .await;
                session.finish(&item.id, false).await?;
            }
            Err(e) => {
                tracing::warn!(to = request.reply_to, error = %e, "sending the reply failed; trying on the next poll");
                let _ = self
                    .ledger
                    .set(
                        &key,
                        current(&rev),
                        State::Waiting,
                        first_seen_ms,
                        &e.to_string(),
                    )
                    .await;
            }
        }
        Ok(())
    }

    async fn ignore(
        &self,
        session: &mut Session,
        item: &Listed,
        key: &str,
        reason: Reason,
        sender: Option<&str>,
        subject: Option<&str>,
    ) -> Result<(), printwatch_mailbox::MailboxError> {
        match self.ledger.ignore(key, reason.as_str()).await {
            Ok(true) => {
                self.counters.ignored.inc();
                self.counters.outcome(reason.key());
                tracing::info!(
                    message = item.id,
                    size = item.size,
                    sender,
                    subject,
                    reason = reason.as_str(),
                    "no reply"
                );
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record an ignored message"),
        }
        if self.cfg.on_demand.delete_ignored {
            session.finish(&item.id, true).await?;
        }
        Ok(())
    }

    /// The per-sender reply limit: at most `max_replies_per_sender` per
    /// `reply_window` (kept by each inbox process).
    async fn allow_reply(&self, sender: &str) -> bool {
        let od = &self.cfg.on_demand;
        let now = Instant::now();
        let mut map = self.limiter.lock().await;
        let times = map.entry(sender.to_ascii_lowercase()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) > od.reply_window)
        {
            times.pop_front();
        }
        if times.len() >= od.max_replies_per_sender as usize {
            return false;
        }
        times.push_back(now);
        true
    }
}

impl printwatch_runtime::service::App for Application {
    type Error = InboxError;
    fn build(cfg: &Config) -> impl Future<Output = Result<Self, Self::Error>> {
        Application::build(cfg)
    }
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        Application::run_until_stopped(self, shutdown)
    }
}
