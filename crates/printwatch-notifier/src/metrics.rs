//! The notifier's metrics: what was mailed, refused, retried, dead-lettered
//! or left uncertain, and how long an event took from the device to the
//! SMTP server's acceptance. Served in Prometheus text format on the
//! operations port (`[telemetry] http_listen`) and logged at shutdown.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric of the notifier.
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
    /// The same, by reason: `recipient_refused`, `message_refused`,
    /// `invalid_address`.
    pub mails_failed: Family<Vec<(String, String)>, Counter>,
    /// Recipients refused for now (4xx) or not reached; retried.
    pub recipients_deferred: Counter,
    /// Recipients already mailed when an event came again.
    pub recipients_already_sent: Counter,
    /// Ledger records left uncertain by a notifier that died during DATA.
    pub uncertain: Counter,
    /// Seconds from the event being observed to the SMTP server accepting
    /// its mail.
    pub delivery_latency: Histogram,
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    events_done: Counter::default(),
    events_retried: Counter::default(),
    events_dead_lettered: Counter::default(),
    events_unrouted: Counter::default(),
    mails_sent: Counter::default(),
    recipients_failed: Counter::default(),
    mails_failed: Family::default(),
    recipients_deferred: Counter::default(),
    recipients_already_sent: Counter::default(),
    uncertain: Counter::default(),
    delivery_latency: Histogram::new([
        0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
    ]),
});

impl Metrics {
    /// Adds every metric to `registry` under `printwatch_notifier_…`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("printwatch_notifier");
        r.register(
            "events_done",
            "Events handled to the end (acked)",
            self.events_done.clone(),
        );
        r.register(
            "events_retried",
            "Event deliveries given back for a later retry",
            self.events_retried.clone(),
        );
        r.register(
            "events_dead_lettered",
            "Messages moved to the dead-letter subject",
            self.events_dead_lettered.clone(),
        );
        r.register(
            "events_unrouted",
            "Events that route to nobody",
            self.events_unrouted.clone(),
        );
        r.register(
            "mails_sent",
            "Recipients the SMTP server accepted an alert mail for",
            self.mails_sent.clone(),
        );
        r.register(
            "recipients_failed",
            "Recipients refused for good (not retried)",
            self.recipients_failed.clone(),
        );
        r.register(
            "recipients_deferred",
            "Recipients refused for now or not reached (retried)",
            self.recipients_deferred.clone(),
        );
        r.register(
            "recipients_already_sent",
            "Recipients skipped because the ledger says they were mailed",
            self.recipients_already_sent.clone(),
        );
        r.register(
            "uncertain",
            "Mails whose acceptance is unknown after a crash during DATA (not resent)",
            self.uncertain.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "Seconds from the event being observed to the SMTP server accepting its mail",
            self.delivery_latency.clone(),
        );
    }

    /// Counts one recipient refused for good.
    pub fn failed(&self, reason: &str) {
        self.recipients_failed.inc();
        self.mails_failed
            .get_or_create(&vec![("reason".to_owned(), reason.to_owned())])
            .inc();
    }

    /// Logs the counters on one line.
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
