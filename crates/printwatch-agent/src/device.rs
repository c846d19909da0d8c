//! One worker per device: reads it, reconciles its active conditions with
//! the stored record, and publishes the resulting events.
//!
//! The worker alone owns the device's record, so there are no locks: the
//! gRPC service reads the latest [`Snapshot`] from a watch channel and asks
//! for changes through the worker's command channel.

use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::Instrument as _;

use async_nats::jetstream::{self, kv};
use printwatch_bus::PublishPolicy;
use printwatch_events::{EventBuilder, Names};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::source::{Reading, SimChange, Source, SourceError};
use crate::state::DeviceRecord;

/// What the agent knows of a device at one moment.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The last successful reading; `None` until the device was read.
    pub reading: Option<Reading>,
    /// When it was read.
    pub read_at: Option<SystemTime>,
    /// The error of the last read, when it failed.
    pub error: Option<String>,
    /// The active conditions the agent has announced.
    pub record: DeviceRecord,
}

/// A request to a device worker.
pub enum Command {
    /// Change a simulated device, read it at once, and answer whether the
    /// active set changed.
    Simulate {
        change: SimChange,
        reply: oneshot::Sender<Result<bool, SourceError>>,
    },
}

/// The handle the rest of the agent keeps for a device.
#[derive(Clone)]
pub struct DeviceHandle {
    pub commands: mpsc::Sender<Command>,
    pub snapshot: watch::Receiver<Snapshot>,
    pub source_kind: &'static str,
}

/// Everything a worker needs.
pub struct Worker {
    pub device_id: String,
    pub source: Source,
    pub builder: EventBuilder,
    pub conditions: kv::Store,
    pub js: jetstream::Context,
    pub names: Arc<Names>,
    pub publish: PublishPolicy,
    pub poll_interval: Duration,
}

impl Worker {
    /// Spawns the worker; it stops when `stop` is cancelled, after finishing
    /// the read and the publishes under way.
    pub fn spawn(
        self,
        stop: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) -> DeviceHandle {
        let (tx, rx) = mpsc::channel(16);
        let (snap_tx, snap_rx) = watch::channel(Snapshot::default());
        let kind = self.source.kind();
        tracker.spawn(self.run(rx, snap_tx, stop));
        DeviceHandle {
            commands: tx,
            snapshot: snap_rx,
            source_kind: kind,
        }
    }

    async fn run(
        self,
        mut commands: mpsc::Receiver<Command>,
        snapshot: watch::Sender<Snapshot>,
        stop: CancellationToken,
    ) {
        // Without the stored record the agent cannot tell a persisting
        // condition from a new one, so it waits for the store rather than
        // guess (a guess would mail every active condition again).
        let mut record = loop {
            match self.load_record().await {
                Ok(r) => break r,
                Err(LoadError::Corrupt(reason)) => {
                    tracing::error!(device.id = %self.device_id, %reason, "stored conditions unreadable; starting from none");
                    break DeviceRecord::default();
                }
                Err(LoadError::Store(reason)) => {
                    tracing::warn!(device.id = %self.device_id, %reason, "cannot load stored conditions yet");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        self.flush(&mut record).await;
        snapshot.send_modify(|s| s.record = record.clone());
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Simulate { change, reply }) => {
                        let result = match self.source.simulate(change).await {
                            Ok(()) => Ok(self.poll(&mut record, &snapshot).await > 0),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(result);
                    }
                    None => break,
                },
                _ = ticker.tick() => {
                    self.poll(&mut record, &snapshot).await;
                }
            }
        }
        tracing::debug!(device.id = %self.device_id, "device worker stopped");
    }

    /// Reads the device once, reconciles and publishes. Returns the number
    /// of events the reading caused.
    async fn poll(&self, record: &mut DeviceRecord, snapshot: &watch::Sender<Snapshot>) -> usize {
        let now = SystemTime::now();
        let reading = match self.source.read().await {
            Ok(r) => r,
            Err(SourceError::NotReady(reason)) => {
                tracing::debug!(device.id = %self.device_id, %reason, "device not ready");
                return 0;
            }
            Err(err) => {
                tracing::warn!(device.id = %self.device_id, error = %err, "device read failed");
                snapshot.send_modify(|s| s.error = Some(err.to_string()));
                // Events queued earlier still go out.
                self.flush(record).await;
                return 0;
            }
        };
        // Events carry the protocol settings the device reports now.
        let builder = EventBuilder {
            protocols: reading.protocols.clone(),
            ..self.builder.clone()
        };
        let counted: Vec<printwatch_events::AlertItem> =
            snapshot.borrow().record.active.keys().copied().collect();
        let queued = record.reconcile(&reading.conditions, &builder, now);
        crate::metrics::METRICS.count_active(&counted, record.active.keys().copied());
        if queued > 0 {
            // The outbox is stored before anything is published, so a crash
            // in between republishes the same event ids on the next start.
            if let Err(reason) = self.store_record(record).await {
                tracing::error!(device.id = %self.device_id, %reason, "cannot store conditions; events wait for the next read");
            }
        }
        self.flush(record).await;
        snapshot.send_modify(|s| {
            s.reading = Some(reading);
            s.read_at = Some(now);
            s.error = None;
            s.record = record.clone();
        });
        queued
    }

    /// Publishes the outbox in order, stopping at the first failure; stores
    /// the record when anything was published.
    async fn flush(&self, record: &mut DeviceRecord) {
        let before = record.outbox.len();
        for ev in record.outbox_events() {
            // One trace per event: it starts here, where the change was
            // detected, and continues in the notifier through the message
            // headers.
            let span = tracing::info_span!(
                parent: None,
                "alert event",
                otel.kind = "producer",
                messaging.system = "nats",
                messaging.operation.type = "publish",
                printwatch.device.id = %self.device_id,
                printwatch.alert.item = %ev.item,
                printwatch.event.id = %ev.event_id,
                printwatch.transition = ev.transition().as_str_name(),
                trace_id = tracing::field::Empty,
            );
            printwatch_runtime::trace::record_trace_id(&span);
            let published = printwatch_bus::publish_event(&self.js, &self.names, &ev, self.publish)
                .instrument(span)
                .await;
            match published {
                Ok((seq, duplicate)) => {
                    tracing::info!(
                        device.id = %self.device_id,
                        alert.item = %ev.item,
                        event.id = %ev.event_id,
                        transition = ev.transition().as_str_name(),
                        stream.sequence = seq,
                        duplicate,
                        "event published"
                    );
                    crate::metrics::METRICS.events_published.inc();
                    record.pop_outbox();
                }
                Err(err) => {
                    crate::metrics::METRICS.publish_failures.inc();
                    tracing::error!(device.id = %self.device_id, error = %err, "publish failed; will retry at the next read");
                    break;
                }
            }
        }
        if record.outbox.len() != before
            && let Err(reason) = self.store_record(record).await
        {
            tracing::warn!(device.id = %self.device_id, %reason, "cannot store the emptied outbox; it will be republished (deduplicated)");
        }
    }

    async fn load_record(&self) -> Result<DeviceRecord, LoadError> {
        match self.conditions.get(self.device_id.as_str()).await {
            Ok(Some(bytes)) => {
                DeviceRecord::from_json(&bytes).map_err(|e| LoadError::Corrupt(e.to_string()))
            }
            Ok(None) => Ok(DeviceRecord::default()),
            Err(e) => Err(LoadError::Store(e.to_string())),
        }
    }

    async fn store_record(&self, record: &DeviceRecord) -> Result<(), String> {
        self.conditions
            .put(self.device_id.as_str(), record.to_json().into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

enum LoadError {
    Corrupt(String),
    Store(String),
}
