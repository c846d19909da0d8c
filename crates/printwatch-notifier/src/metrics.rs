//! The notifier's counters: what was mailed, refused, retried, dead-lettered
//! or left uncertain. Logged at shutdown and readable in-process; the
//! OpenTelemetry export is wired in by the observability work.

use std::sync::atomic::{AtomicU64, Ordering};

/// One monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter of the notifier.
#[derive(Debug)]
pub struct Metrics {
    /// Events handled to the end (acked).
    pub events_done: Counter,
    /// Deliveries given back for a later retry (nak with delay).
    pub events_retried: Counter,
    /// Undecodable events moved to the dead-letter subject.
    pub events_dead_lettered: Counter,
    /// Events that route to nobody.
    pub events_unrouted: Counter,
    /// Recipients the SMTP server accepted a mail for.
    pub mails_sent: Counter,
    /// Recipients refused for good (5xx); not retried.
    pub recipients_failed: Counter,
    /// Recipients refused for now (4xx) or not reached; retried.
    pub recipients_deferred: Counter,
    /// Recipients already mailed when an event came again.
    pub recipients_already_sent: Counter,
    /// Ledger records left uncertain by a notifier that died during DATA.
    pub uncertain: Counter,
}

pub static METRICS: Metrics = Metrics {
    events_done: Counter::new(),
    events_retried: Counter::new(),
    events_dead_lettered: Counter::new(),
    events_unrouted: Counter::new(),
    mails_sent: Counter::new(),
    recipients_failed: Counter::new(),
    recipients_deferred: Counter::new(),
    recipients_already_sent: Counter::new(),
    uncertain: Counter::new(),
};

impl Metrics {
    /// Logs every counter on one line.
    pub fn log(&self) {
        tracing::info!(
            events_done = self.events_done.get(),
            events_retried = self.events_retried.get(),
            events_dead_lettered = self.events_dead_lettered.get(),
            events_unrouted = self.events_unrouted.get(),
            mails_sent = self.mails_sent.get(),
            recipients_failed = self.recipients_failed.get(),
            recipients_deferred = self.recipients_deferred.get(),
            recipients_already_sent = self.recipients_already_sent.get(),
            uncertain = self.uncertain.get(),
            "notifier counters"
        );
    }
}
