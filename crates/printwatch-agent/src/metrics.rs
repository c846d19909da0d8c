//! The agent's metrics, served on the operations port (`[telemetry]
//! http_listen`): events published and failed publishes.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Debug)]
pub struct Metrics {
    /// Events the stream acknowledged (duplicates included).
    pub events_published: Counter,
    /// Publish attempts that failed after every retry.
    pub publish_failures: Counter,
    /// Active conditions across this agent's devices, by item.
    pub active_conditions: Family<Vec<(String, String)>, Gauge>,
    /// Device reads by outcome: `ok`, `not_ready`, `unreachable`,
    /// `timeout`, `error`.
    pub reads: Family<Vec<(String, String)>, Counter>,
    /// How long one read took (seconds), whatever its outcome.
    pub read_duration: Histogram,
    /// How late a scheduled read started (seconds): timer lateness plus
    /// the wait for a `max_concurrent_reads` permit.
    pub poll_lag: Histogram,
    /// Devices declared unreachable now (`unreachable_after` failed reads
    /// in a row, no answer since).
    pub devices_unreachable: Gauge,
}

/// Histogram buckets in seconds, 1 ms to 60 s.
const SECONDS_BUCKETS: [f64; 15] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events_published: Counter::default(),
            publish_failures: Counter::default(),
            active_conditions: Family::default(),
            reads: Family::default(),
            read_duration: Histogram::new(SECONDS_BUCKETS),
            poll_lag: Histogram::new(SECONDS_BUCKETS),
            devices_unreachable: Gauge::default(),
        }
    }
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

impl Metrics {
    /// Adds every metric to `registry` under `printwatch_agent_…`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("printwatch_agent");
        r.register(
            "events_published",
            "Events the stream acknowledged",
            self.events_published.clone(),
        );
        r.register(
            "publish_failures",
            "Publishes that failed after every retry",
            self.publish_failures.clone(),
        );
        r.register(
            "active_conditions",
            "Active conditions across this agent's devices, by item",
            self.active_conditions.clone(),
        );
        r.register(
            "reads",
            "Device reads by outcome (ok, not_ready, unreachable, timeout, error)",
            self.reads.clone(),
        );
        r.register_with_unit(
            "read_duration",
            "How long one device read took",
            prometheus_client::registry::Unit::Seconds,
            self.read_duration.clone(),
        );
        r.register_with_unit(
            "poll_lag",
            "How late a scheduled device read started (timer lateness and the wait for a read permit)",
            prometheus_client::registry::Unit::Seconds,
            self.poll_lag.clone(),
        );
        r.register(
            "devices_unreachable",
            "Devices declared unreachable: unreachable_after or more reads in a row unanswered",
            self.devices_unreachable.clone(),
        );
    }

    /// Counts one read with its outcome and duration.
    pub fn read(&self, outcome: &str, took: std::time::Duration) {
        self.reads
            .get_or_create(&vec![("outcome".to_owned(), outcome.to_owned())])
            .inc();
        self.read_duration.observe(took.as_secs_f64());
    }

    /// Moves the active-conditions gauges of one device from the items it
    /// had (`before`) to the items it has now.
    pub fn count_active(
        &self,
        before: &[printwatch_events::AlertItem],
        now: impl Iterator<Item = printwatch_events::AlertItem>,
    ) {
        let now: Vec<_> = now.collect();
        let gauge = |item: printwatch_events::AlertItem| {
            self.active_conditions
                .get_or_create(&vec![("item".to_owned(), item.key().to_owned())])
                .clone()
        };
        for item in before.iter().filter(|i| !now.contains(i)) {
            gauge(*item).dec();
        }
        for item in now.iter().filter(|i| !before.contains(i)) {
            gauge(*item).inc();
        }
    }
}
