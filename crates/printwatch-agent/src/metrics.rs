//! The agent's metrics, served on the operations port (`[telemetry]
//! http_listen`): events published and failed publishes.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

#[derive(Debug, Default)]
pub struct Metrics {
    /// Events the stream acknowledged (duplicates included).
    pub events_published: Counter,
    /// Publish attempts that failed after every retry.
    pub publish_failures: Counter,
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
    }
}
