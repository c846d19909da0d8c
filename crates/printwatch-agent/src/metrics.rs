//! The agent's metrics, served on the operations port (`[telemetry]
//! http_listen`): events published and failed publishes.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Events the stream acknowledged (duplicates included).
    pub events_published: Counter,
    /// Publish attempts that failed after every retry.
    pub publish_failures: Counter,
    /// Active conditions across this agent's devices, by item.
    pub active_conditions: Family<Vec<(String, String)>, Gauge>,
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
