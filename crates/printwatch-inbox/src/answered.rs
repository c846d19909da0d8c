//! Which mailbox messages were already handled, in the `printwatch_answered`
//! key-value bucket, so a request is never answered twice — across polls,
//! restarts, several inbox replicas, and a crash between sending a reply
//! and removing the request from the mailbox (SPEC §3.5).
//!
//! One record per message (account + the server's stable id: POP3 UIDL,
//! IMAP UIDVALIDITY:UID). A request moves `answering` (claimed, before
//! anything is sent) → `committing` (the SMTP server is about to receive
//! the reply) → `answered`. A request whose agent is away stays `waiting`
//! with the time it was first seen and is tried again on later polls until
//! `[on_demand] give_up_after`. Mail that gets no reply is `ignored` with
//! the reason, so it is logged once. As in the notifier's send ledger, a
//! `committing` record left by a dead inbox means the reply most likely
//! went out: it is treated as answered, never sent again.

use std::time::Duration;

use async_nats::jetstream::kv;
use base64::Engine as _;
use printwatch_bus::now_ms;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Answering,
    Committing,
    Answered,
    Waiting,
    Ignored,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    pub owner: String,
    pub at_ms: u64,
    /// When the message was first seen (for `give_up_after`).
    pub first_seen_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// What the ledger says about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours to handle, at this revision; first seen at `first_seen_ms`.
    Mine { revision: u64, first_seen_ms: u64 },
    /// Handled already (answered or ignored): only tidy the mailbox.
    Done(State),
    /// Another inbox is on it right now.
    Busy,
}

#[derive(Debug, thiserror::Error)]
#[error("answered ledger: {0}")]
pub struct LedgerError(String);

#[derive(Clone)]
pub struct Answered {
    store: kv::Store,
    owner: String,
    lease: Duration,
}

impl Answered {
    pub fn new(store: kv::Store, owner: String, lease: Duration) -> Answered {
        Answered {
            store,
            owner,
            lease,
        }
    }

    /// The key of message `id` in the mailbox `account`.
    pub fn key(account: &str, id: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{account}\u{0}{id}").as_bytes())
    }

    fn value(&self, state: State, first_seen_ms: u64, reason: &str) -> bytes::Bytes {
        let r = Record {
            state,
            owner: self.owner.clone(),
            at_ms: now_ms(),
            first_seen_ms,
            reason: reason.chars().take(500).collect(),
        };
        serde_json::to_vec(&r).unwrap_or_default().into()
    }

    /// The record of `key`, if any.
    pub async fn get(&self, key: &str) -> Result<Option<(Record, u64)>, LedgerError> {
        let entry = self
            .store
            .entry(key.to_owned())
            .await
            .map_err(|e| LedgerError(e.to_string()))?;
        Ok(entry.and_then(|e| {
            if e.operation != kv::Operation::Put {
                return None;
            }
            serde_json::from_slice::<Record>(&e.value)
                .ok()
                .map(|r| (r, e.revision))
        }))
    }

    /// Claims `key` for this process.
    pub async fn claim(&self, key: &str) -> Result<Claim, LedgerError> {
        let now = now_ms();
        match self
            .store
            .create(key, self.value(State::Answering, now, ""))
            .await
        {
            Ok(revision) => {
                return Ok(Claim::Mine {
                    revision,
                    first_seen_ms: now,
                });
            }
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(LedgerError(e.to_string())),
        }
        let Some((record, revision)) = self.get(key).await? else {
            return Ok(Claim::Busy);
        };
        let age = Duration::from_millis(now.saturating_sub(record.at_ms));
        match record.state {
            State::Answered | State::Ignored => Ok(Claim::Done(record.state)),
            State::Answering | State::Committing if age < self.lease => Ok(Claim::Busy),
            State::Committing => {
                tracing::error!(
                    message = key,
                    owner = record.owner,
                    "uncertain: an inbox stopped while the server was taking its reply; it has most likely gone out and is not sent again"
                );
                let _ = self
                    .set(
                        key,
                        revision,
                        State::Answered,
                        record.first_seen_ms,
                        "reply most likely sent by a stopped inbox",
                    )
                    .await;
                Ok(Claim::Done(State::Answered))
            }
            State::Answering | State::Waiting => {
                match self
                    .store
                    .update(
                        key,
                        self.value(State::Answering, record.first_seen_ms, ""),
                        revision,
                    )
                    .await
                {
                    Ok(revision) => Ok(Claim::Mine {
                        revision,
                        first_seen_ms: record.first_seen_ms,
                    }),
                    Err(_) => Ok(Claim::Busy),
                }
            }
        }
    }

    /// Moves our claim on `key` to `state`; returns the new revision.
    pub async fn set(
        &self,
        key: &str,
        revision: u64,
        state: State,
        first_seen_ms: u64,
        reason: &str,
    ) -> Result<u64, LedgerError> {
        self.store
            .update(key, self.value(state, first_seen_ms, reason), revision)
            .await
            .map_err(|e| LedgerError(format!("cannot mark {state:?}: {e}")))
    }

    /// Records a message that gets no reply (first sight only).
    pub async fn ignore(&self, key: &str, reason: &str) -> Result<bool, LedgerError> {
        match self
            .store
            .create(key, self.value(State::Ignored, now_ms(), reason))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(LedgerError(e.to_string())),
        }
    }
}
