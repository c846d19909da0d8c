//! `[notifier]`: how `printwatch-notifier` consumes events — how many it
//! handles at once, how long JetStream waits before redelivering an event
//! whose notifier died, and how far retries back off. Every key has a
//! default that suits a fleet; the section may be left out.

use std::time::Duration;

use crate::duration::{DAY, millis, secs};
use crate::read::{Reader, Section};
use crate::validate;

/// `[notifier]`.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// The durable JetStream consumer shared by every notifier replica.
    pub durable_name: String,
    /// Events handled at once by one replica (SMTP concurrency is bounded
    /// separately by `[mail.smtp] max_connections`).
    pub concurrency: usize,
    /// How long JetStream waits for an ack before it redelivers an event;
    /// a live notifier keeps extending it while it works.
    pub ack_wait: Duration,
    /// The first retry delay after a temporary failure; it doubles on each
    /// delivery up to `retry_max_delay`.
    pub retry_delay: Duration,
    pub retry_max_delay: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            durable_name: "printwatch-notifier".into(),
            concurrency: 64,
            ack_wait: secs(30),
            retry_delay: secs(5),
            retry_max_delay: secs(300),
        }
    }
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> NotifierConfig {
    let mut c = NotifierConfig::default();
    let Some(mut s) = r.table(root, "notifier") else {
        return c;
    };
    if let Some(name) = r.string(&mut s, "durable_name") {
        match validate::token(&name, "a consumer name") {
            Ok(()) => c.durable_name = name,
            Err(e) => r.problem(s.key("durable_name"), e),
        }
    }
    if let Some(n) = r.integer(&mut s, "concurrency", 1, 10_000, "a number 1..=10000") {
        c.concurrency = usize::try_from(n).unwrap_or(64);
    }
    if let Some(d) = r.duration(&mut s, "ack_wait", secs(1), DAY) {
        c.ack_wait = d;
    }
    if let Some(d) = r.duration(&mut s, "retry_delay", millis(10), DAY) {
        c.retry_delay = d;
    }
    if let Some(d) = r.duration(&mut s, "retry_max_delay", millis(10), DAY) {
        c.retry_max_delay = d;
    }
    if c.retry_max_delay < c.retry_delay {
        r.problem(
            s.key("retry_max_delay"),
            "must not be shorter than retry_delay",
        );
    }
    r.finish(s);
    c
}
