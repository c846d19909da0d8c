//! The send ledger: one record per (event id, recipient) in the
//! `printwatch_sent` key-value bucket, so that no crash or redelivery ever
//! mails one address twice for one event (SPEC §3.5).
//!
//! A record moves `claimed` → `committing` → `sent`:
//! - **claimed** (compare-and-set create) before the SMTP transaction;
//! - **committing** once the server accepted the recipient (RCPT) and just
//!   before DATA;
//! - **sent** once the server accepted the mail; or **failed** when it
//!   refused the recipient for good; or back to **retry** on a temporary
//!   failure, which the next delivery of the event claims again.
//!
//! A claim whose owner died is taken over once it is older than the lease
//! (the consumer's ack wait: a live owner keeps its event from being
//! redelivered). Taking over a `claimed` record is safe — that owner never
//! started DATA, so the server has no mail. Taking over a `committing`
//! record is the one window the ledger cannot close: the owner died between
//! starting DATA and recording the server's answer, so whether the mail was
//! accepted is unknown. Servers commit a mail when they receive the final
//! dot, even from a client that vanished right after, so the mail has almost
//! certainly arrived: the record becomes **uncertain**, is logged as an
//! error and counted, and is not sent again — printwatch never sends twice.

use std::time::Duration;

use async_nats::jetstream::kv;
use base64::Engine as _;
use printwatch_bus::now_ms;
use serde::{Deserialize, Serialize};

/// A record's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Claimed,
    Committing,
    Sent,
    Failed,
    Retry,
    Uncertain,
}

/// The stored record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub state: State,
    /// The notifier process that wrote it.
    pub owner: String,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// What claiming a recipient found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This process holds the claim at this revision: send.
    Mine { revision: u64 },
    /// Already sent, refused for good, or uncertain: nothing to do.
    Done(State),
    /// Another live notifier holds it; look again after this long.
    Busy { retry_in: Duration },
}

/// A ledger operation failed (NATS unreachable, …): the event is retried.
#[derive(Debug, thiserror::Error)]
#[error("send ledger: {0}")]
pub struct LedgerError(String);

/// The ledger of one notifier process.
#[derive(Clone)]
pub struct Ledger {
    store: kv::Store,
    owner: String,
    lease: Duration,
}

impl Ledger {
    pub fn new(store: kv::Store, owner: String, lease: Duration) -> Ledger {
        Ledger {
            store,
            owner,
            lease,
        }
    }

    /// The record key: `<event id>.<recipient, lower case, base64url>`.
    pub fn key(event_id: &str, recipient: &str) -> String {
        let id: String = event_id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let rcpt = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(recipient.to_ascii_lowercase().as_bytes());
        format!("{id}.{rcpt}")
    }

    fn record(&self, state: State, reason: &str) -> bytes::Bytes {
        let r = Record {
            state,
            owner: self.owner.clone(),
            at_ms: now_ms(),
            reason: reason.to_owned(),
        };
        serde_json::to_vec(&r).unwrap_or_default().into()
    }

    /// Claims `recipient` of `event_id` for this process.
    pub async fn claim(&self, event_id: &str, recipient: &str) -> Result<Claim, LedgerError> {
        let key = Self::key(event_id, recipient);
        match self
            .store
            .create(&key, self.record(State::Claimed, ""))
            .await
        {
            Ok(revision) => return Ok(Claim::Mine { revision }),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(LedgerError(format!("cannot claim {key}: {e}"))),
        }
        let entry = self
            .store
            .entry(key.clone())
            .await
            .map_err(|e| LedgerError(format!("cannot read {key}: {e}")))?;
        let Some(entry) = entry else {
            // Deleted between our create and read: claim on the next delivery.
            return Ok(Claim::Busy {
                retry_in: Duration::from_millis(100),
            });
        };
        let record: Record = match serde_json::from_slice(&entry.value) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(key, error = %e, "unreadable ledger record; claiming it anew");
                return self.take_over(&key, entry.revision).await;
            }
        };
        let age = Duration::from_millis(now_ms().saturating_sub(record.at_ms));
        match record.state {
            State::Sent | State::Failed | State::Uncertain => Ok(Claim::Done(record.state)),
            State::Retry => self.take_over(&key, entry.revision).await,
            State::Claimed | State::Committing if age < self.lease => Ok(Claim::Busy {
                retry_in: self
                    .lease
                    .saturating_sub(age)
                    .max(Duration::from_millis(200)),
            }),
            State::Claimed => {
                tracing::info!(
                    key,
                    owner = record.owner,
                    ?age,
                    "taking over the claim of a notifier that stopped before sending"
                );
                self.take_over(&key, entry.revision).await
            }
            State::Committing => {
                tracing::error!(
                    event.id = event_id,
                    recipient,
                    owner = record.owner,
                    ?age,
                    "uncertain: a notifier stopped while the server was taking this mail; it has most likely arrived and is not sent again"
                );
                crate::metrics::METRICS.uncertain.inc();
                let reason = format!("owner {} stopped during DATA", record.owner);
                match self
                    .store
                    .update(&key, self.record(State::Uncertain, &reason), entry.revision)
                    .await
                {
                    Ok(_) => Ok(Claim::Done(State::Uncertain)),
                    Err(_) => Ok(Claim::Busy {
                        retry_in: Duration::from_millis(200),
                    }),
                }
            }
        }
    }

    async fn take_over(&self, key: &str, revision: u64) -> Result<Claim, LedgerError> {
        match self
            .store
            .update(key, self.record(State::Claimed, ""), revision)
            .await
        {
            Ok(revision) => Ok(Claim::Mine { revision }),
            // Someone else moved it meanwhile: look again on the next delivery.
            Err(_) => Ok(Claim::Busy {
                retry_in: Duration::from_millis(200),
            }),
        }
    }

    /// Moves a claim of ours to `state`; returns the new revision.
    pub async fn set(
        &self,
        event_id: &str,
        recipient: &str,
        revision: u64,
        state: State,
        reason: &str,
    ) -> Result<u64, LedgerError> {
        let key = Self::key(event_id, recipient);
        self.store
            .update(&key, self.record(state, reason), revision)
            .await
            .map_err(|e| LedgerError(format!("cannot mark {key} {state:?}: {e}")))
    }

    /// The stored record, for diagnostics and tests.
    pub async fn get(
        &self,
        event_id: &str,
        recipient: &str,
    ) -> Result<Option<Record>, LedgerError> {
        let key = Self::key(event_id, recipient);
        let value = self
            .store
            .get(&key)
            .await
            .map_err(|e| LedgerError(format!("cannot read {key}: {e}")))?;
        Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_kv_keys_and_ignore_letter_case() {
        let k = Ledger::key("0190-abc", "Ops+Printers@Example.test");
        assert_eq!(k, Ledger::key("0190-abc", "ops+printers@example.test"));
        assert!(
            k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=.".contains(c)),
            "{k}"
        );
        assert_ne!(k, Ledger::key("0190-abc", "ops@example.test"));
    }
}
