//! What the notifier does with one event: decode, route, claim each
//! recipient in the send ledger, render the mail, send it in one SMTP
//! transaction, record each recipient's outcome — and say whether the
//! event is finished (ack), must come again later (nak with delay) or is
//! garbage (dead letter).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use printwatch_config::Config;
use printwatch_events::{CheckedEvent, Names, event};
use printwatch_smtp::Mailer;
use tracing::Instrument as _;

use crate::ledger::{Claim, Ledger, State};
use crate::metrics::METRICS;
use crate::render::{self, Extras};
use crate::route;

/// What became of one delivery of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every recipient is finished: ack.
    Done,
    /// Some recipient must be tried again: nak, after `after` or the
    /// backoff for this delivery.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// The message is not a printwatch event: dead-letter it, then ack.
    DeadLetter { reason: String },
}

/// What every event's handling shares.
pub struct Handler {
    pub cfg: Arc<Config>,
    pub names: Names,
    pub mailer: Mailer,
    pub ledger: Ledger,
}

impl Handler {
    /// Handles one delivery of the message on `subject`.
    pub async fn handle(&self, subject: &str, payload: &[u8]) -> Outcome {
        let ev = match event::decode(payload) {
            Ok(ev) => ev,
            Err(e) => {
                return Outcome::DeadLetter {
                    reason: format!("cannot decode the event: {e}"),
                };
            }
        };
        match self.names.parse_event_subject(subject) {
            Ok(s)
                if s.device_id == ev.event.device_id
                    && s.item == ev.item
                    && s.transition == ev.transition => {}
            _ => {
                return Outcome::DeadLetter {
                    reason: format!(
                        "the subject does not match the event (device {:?}, item {}, {})",
                        ev.event.device_id,
                        ev.item.key(),
                        ev.transition
                    ),
                };
            }
        }
        let span = tracing::info_span!(
            "route and mail",
            printwatch.event.id = %ev.event.event_id,
            printwatch.device.id = %ev.event.device_id,
            printwatch.alert.item = ev.item.key(),
            printwatch.transition = %ev.transition,
        );
        self.deliver(&ev).instrument(span).await
    }

    async fn deliver(&self, ev: &CheckedEvent) -> Outcome {
        let id = ev.event.event_id.as_str();
        let recipients =
            match route::recipients(&self.cfg, &ev.event.device_id, ev.item, ev.transition) {
                Ok(r) => r,
                Err(why) => {
                    tracing::info!(event.id = id, reason = why.as_str(), "nothing to mail");
                    METRICS.events_unrouted.inc();
                    return Outcome::Done;
                }
            };
        let Some(from) = self.sender(ev) else {
            return Outcome::Retry {
                after: None,
                reason: "no valid sender address: give the device a mail_address or set [mail.account] address".into(),
            };
        };

        // Claim every recipient not yet finished.
        let mut mine: Vec<(String, u64)> = Vec::new();
        let mut busy: Option<Duration> = None;
        for rcpt in &recipients {
            match self.ledger.claim(id, rcpt).await {
                Ok(Claim::Mine { revision }) => mine.push((rcpt.clone(), revision)),
                Ok(Claim::Done(state)) => {
                    if state == State::Sent {
                        METRICS.recipients_already_sent.inc();
                    }
                    tracing::debug!(event.id = id, recipient = rcpt, ?state, "already finished");
                }
                Ok(Claim::Busy { retry_in }) => {
                    busy = Some(busy.map_or(retry_in, |b| b.max(retry_in)))
                }
                Err(e) => {
                    self.release(id, &mine, &e.to_string()).await;
                    return Outcome::Retry {
                        after: None,
                        reason: e.to_string(),
                    };
                }
            }
        }
        if mine.is_empty() {
            return match busy {
                None => Outcome::Done,
                Some(after) => Outcome::Retry {
                    after: Some(after),
                    reason: "another notifier is mailing this event".into(),
                },
            };
        }

        let device = self.cfg.device(&ev.event.device_id);
        let extras = Extras {
            language: self.cfg.mail.language,
            common_body: &self.cfg.alerts.common_body,
            device_body: device.and_then(|d| d.common_body.as_deref()),
            reply_to: self.cfg.mail.admin_address.as_deref(),
        };
        let trace_id = printwatch_runtime::trace::current_trace_id();
        let message = match render::message(ev, &from, &recipients, &extras, trace_id.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                // Only a malformed address gets here; retrying cannot help.
                tracing::error!(event.id = id, error = %e, "cannot build the mail");
                for (rcpt, rev) in &mine {
                    let _ = self
                        .ledger
                        .set(id, rcpt, *rev, State::Failed, &e.to_string())
                        .await;
                    METRICS.failed("invalid_address");
                }
                return Outcome::Done;
            }
        };

        let revisions: Arc<Mutex<HashMap<String, u64>>> =
            Arc::new(Mutex::new(mine.iter().cloned().collect()));
        let rcpts: Vec<String> = mine.iter().map(|(r, _)| r.clone()).collect();
        let commit = {
            let ledger = self.ledger.clone();
            let revisions = revisions.clone();
            let id = id.to_owned();
            move |accepted: &[String]| -> printwatch_smtp::CommitFuture {
                let accepted = accepted.to_vec();
                Box::pin(async move {
                    for rcpt in accepted {
                        let rev = revision_of(&revisions, &rcpt);
                        let new = ledger
                            .set(&id, &rcpt, rev, State::Committing, "")
                            .await
                            .map_err(|e| e.to_string())?;
                        set_revision(&revisions, &rcpt, new);
                    }
                    Ok(())
                })
            }
        };
        let mut retry = busy.map(|after| {
            (
                Some(after),
                "another notifier is mailing this event".to_owned(),
            )
        });
        let smtp_span = tracing::info_span!(
            "smtp send",
            otel.kind = "client",
            network.transport = "tcp",
            server.address = self
                .cfg
                .mail
                .smtp
                .as_ref()
                .map(|s| s.host.as_str())
                .unwrap_or_default(),
            server.port = self
                .cfg
                .mail
                .smtp
                .as_ref()
                .map(|s| s.port)
                .unwrap_or_default(),
            smtp.recipients = rcpts.len(),
            smtp.accepted = tracing::field::Empty,
            smtp.reply = tracing::field::Empty,
        );
        let sent = self
            .mailer
            .send_committing(&from, &rcpts, &message, commit)
            .instrument(smtp_span.clone())
            .await;
        match &sent {
            Ok(d) => {
                smtp_span.record("smtp.accepted", d.accepted.len());
                let reply = d.refused.first().map_or("250", |r| r.reply.as_str());
                smtp_span.record("smtp.reply", reply);
            }
            Err(e) => {
                smtp_span.record("smtp.reply", e.reason.as_str());
            }
        }
        match sent {
            Ok(delivery) => {
                let observed =
                    printwatch_events::event::to_system_time(ev.event.observed_at.as_ref());
                let latency = std::time::SystemTime::now()
                    .duration_since(observed)
                    .unwrap_or_default();
                for rcpt in &delivery.accepted {
                    METRICS.mails_sent.inc();
                    METRICS.delivery_latency.observe(latency.as_secs_f64());
                    let rev = revision_of(&revisions, rcpt);
                    if let Err(e) = self.ledger.set(id, rcpt, rev, State::Sent, "").await {
                        // The mail went out; the record stays `committing`
                        // and is never sent again.
                        tracing::warn!(event.id = id, recipient = rcpt, error = %e, "mail sent but not recorded");
                    }
                }
                if !delivery.accepted.is_empty() {
                    tracing::info!(
                        event.id = id,
                        recipients = delivery.accepted.len(),
                        "mail accepted by the SMTP server"
                    );
                }
                for refused in &delivery.refused {
                    let rev = revision_of(&revisions, &refused.recipient);
                    if refused.permanent {
                        tracing::warn!(
                            event.id = id,
                            recipient = refused.recipient,
                            reply = refused.reply,
                            "recipient refused for good; not retried"
                        );
                        METRICS.failed("recipient_refused");
                        let _ = self
                            .ledger
                            .set(id, &refused.recipient, rev, State::Failed, &refused.reply)
                            .await;
                    } else {
                        tracing::warn!(
                            event.id = id,
                            recipient = refused.recipient,
                            reply = refused.reply,
                            "recipient refused for now; will retry"
                        );
                        METRICS.recipients_deferred.inc();
                        let _ = self
                            .ledger
                            .set(id, &refused.recipient, rev, State::Retry, &refused.reply)
                            .await;
                        retry = Some((
                            None,
                            format!("{} refused for now: {}", refused.recipient, refused.reply),
                        ));
                    }
                }
            }
            Err(e) => {
                let uncertain = e.outcome_unknown();
                for rcpt in &rcpts {
                    let rev = revision_of(&revisions, rcpt);
                    let (state, note) = if uncertain {
                        tracing::error!(event.id = id, recipient = rcpt, error = %e, "uncertain: the connection failed after the mail was handed over; it has most likely arrived and is not sent again");
                        METRICS.uncertain.inc();
                        (State::Uncertain, "connection lost after DATA")
                    } else if e.permanent && e.step == printwatch_smtp::Step::Data {
                        tracing::error!(event.id = id, recipient = rcpt, error = %e, "the server refused the mail for good");
                        METRICS.failed("message_refused");
                        (State::Failed, "")
                    } else {
                        METRICS.recipients_deferred.inc();
                        (State::Retry, "")
                    };
                    let reason = if note.is_empty() {
                        e.to_string()
                    } else {
                        format!("{note}: {e}")
                    };
                    let _ = self.ledger.set(id, rcpt, rev, state, &reason).await;
                }
                if !(uncertain || e.permanent && e.step == printwatch_smtp::Step::Data) {
                    tracing::warn!(event.id = id, error = %e, "sending failed; will retry");
                    retry = Some((None, e.to_string()));
                }
            }
        }
        match retry {
            None => Outcome::Done,
            Some((after, reason)) => Outcome::Retry { after, reason },
        }
    }

    /// From: the device's notification address, else the notification
    /// account's, else the SMTP auth address.
    fn sender(&self, ev: &CheckedEvent) -> Option<String> {
        let from_event = ev.event.device.as_ref().map(|d| d.mail_address.as_str());
        let from_config = self
            .cfg
            .device(&ev.event.device_id)
            .and_then(|d| d.mail_address.as_deref());
        let account = self.cfg.mail.account.as_ref().map(|a| a.address.as_str());
        let auth = self
            .cfg
            .mail
            .smtp
            .as_ref()
            .and_then(|s| s.auth_address.as_deref());
        [from_event, from_config, account, auth]
            .into_iter()
            .flatten()
            .find(|a| !a.is_empty() && a.parse::<lettre::Address>().is_ok())
            .map(str::to_owned)
    }

    /// Gives claims back after a failure before any mail was sent.
    async fn release(&self, id: &str, mine: &[(String, u64)], reason: &str) {
        for (rcpt, rev) in mine {
            let _ = self.ledger.set(id, rcpt, *rev, State::Retry, reason).await;
        }
    }
}

fn revision_of(revisions: &Mutex<HashMap<String, u64>>, rcpt: &str) -> u64 {
    revisions
        .lock()
        .map(|m| m.get(rcpt).copied().unwrap_or(0))
        .unwrap_or(0)
}

fn set_revision(revisions: &Mutex<HashMap<String, u64>>, rcpt: &str, rev: u64) {
    if let Ok(mut m) = revisions.lock() {
        m.insert(rcpt.to_owned(), rev);
    }
}
