//! One worker per device: reads it, reconciles its active conditions with
//! the stored record, and publishes the resulting events.
//!
//! The worker alone owns the device's record, so there are no locks: the
//! gRPC service reads the latest [`Snapshot`] from a watch channel and asks
//! for changes through the worker's command channel.
//!
//! Polling a fleet: each worker reads on its own interval, spread by
//! jitter; a read needs one of the agent's `max_concurrent_reads` permits
//! (shared [`Polling`]) and must end within `read_timeout`. A worker
//! waiting for its timer or a permit still answers commands and shutdown,
//! and one slow device holds one permit, never another device's read.
//!
//! A device that does not answer `unreachable_after` reads in a row is
//! declared unreachable: one `unit_connection_error` condition, queued
//! through the normal outbox; the next answer's reading recovers it
//! ([`Reachability`]).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tracing::Instrument as _;

use async_nats::jetstream::{self, kv};
use printwatch_bus::PublishPolicy;
use printwatch_events::{AlertItem, EventBuilder, Names};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;
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
    /// This device's interval (its own `poll_interval` or the agent's).
    pub poll_interval: Duration,
    /// The agent's polling settings and read permits, shared by all.
    pub polling: Polling,
}

/// The polling settings every worker of an agent shares.
#[derive(Clone, Debug)]
pub struct Polling {
    /// Spread of the reads as a fraction of the interval (0.0..=1.0).
    pub jitter: f64,
    /// Deadline of one whole read.
    pub read_timeout: Duration,
    /// Consecutive unanswered reads before the device is unreachable.
    pub unreachable_after: u32,
    /// `max_concurrent_reads` permits; a read holds one.
    pub permits: Arc<Semaphore>,
}

impl Polling {
    pub fn new(cfg: &printwatch_config::Polling) -> Polling {
        Polling {
            jitter: cfg.jitter.clamp(0.0, 1.0),
            read_timeout: cfg.read_timeout,
            unreachable_after: cfg.unreachable_after.max(1),
            permits: Arc::new(Semaphore::new(cfg.max_concurrent_reads.max(1))),
        }
    }
}

impl Default for Polling {
    fn default() -> Self {
        Polling::new(&printwatch_config::Polling::default())
    }
}

/// The read schedule of one device: a first read at a random point of
/// `0..jitter × interval`, then every `interval × (1 ± jitter/2)` counted
/// from the previous scheduled time (so the beat does not drift by the
/// read's duration); a device that fell a whole interval behind is
/// rescheduled from now rather than read back to back.
#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    jitter: f64,
    random: RandomState,
    draws: u64,
    /// When the next read is due.
    pub next: Instant,
}

impl Schedule {
    pub fn new(interval: Duration, jitter: f64, now: Instant) -> Schedule {
        let mut s = Schedule {
            interval,
            jitter: jitter.clamp(0.0, 1.0),
            random: RandomState::new(),
            draws: 0,
            next: now,
        };
        s.next = now + interval.mul_f64(s.jitter * s.uniform());
        s
    }

    /// A number in `0.0..1.0`.
    fn uniform(&mut self) -> f64 {
        self.draws += 1;
        let mut h = self.random.build_hasher();
        h.write_u64(self.draws);
        // 53 random bits → [0, 1).
        (h.finish() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Moves to the next read after the one due at `self.next`, given
    /// that it is `now`.
    pub fn advance(&mut self, now: Instant) {
        let step = self
            .interval
            .mul_f64(1.0 + self.jitter * (self.uniform() - 0.5));
        self.next += step;
        if self.next <= now {
            self.next = now + step;
        }
    }
}

/// Counts a device's consecutive unanswered reads and says when it turns
/// unreachable or answers again; the caller raises or lets recover the
/// condition. Kept in memory only: after a restart the stored record still
/// holds an announced `unit_connection_error`, so counting from zero again
/// neither repeats nor loses it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reachability {
    /// Unanswered reads in a row.
    pub failures: u32,
    /// Declared unreachable (`failures` reached the threshold) and no
    /// answer since.
    pub unreachable: bool,
}

/// What one unanswered read means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// The first of a streak, below the threshold.
    First,
    /// A later one, still below the threshold.
    Again,
    /// This read reached the threshold: the device is now unreachable.
    BecameUnreachable,
    /// Already unreachable.
    StillUnreachable,
}

impl Reachability {
    /// Records an unanswered read (unreachable or timed out).
    pub fn failed(&mut self, threshold: u32) -> Failed {
        self.failures = self.failures.saturating_add(1);
        if self.unreachable {
            Failed::StillUnreachable
        } else if self.failures >= threshold.max(1) {
            self.unreachable = true;
            Failed::BecameUnreachable
        } else if self.failures == 1 {
            Failed::First
        } else {
            Failed::Again
        }
    }

    /// Records an answer (a reading); returns the failed reads before it
    /// when the device had been declared unreachable.
    pub fn answered(&mut self) -> Option<u32> {
        let was = self.unreachable.then_some(self.failures);
        *self = Reachability::default();
        was
    }

    /// The device answered "not ready": it is there, so the streak ends,
    /// but without a reading nothing is recovered yet.
    pub fn not_ready(&mut self) {
        self.failures = 0;
    }
}

/// The outcome label of a read in the metrics.
fn outcome(result: &Result<Reading, SourceError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(SourceError::NotReady(_)) => "not_ready",
        Err(SourceError::Unreachable(_)) => "unreachable",
        Err(SourceError::Unsupported(_)) => "error",
    }
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
        let mut state = PollState {
            record,
            reach: Reachability::default(),
        };
        let mut schedule = Schedule::new(self.poll_interval, self.polling.jitter, Instant::now());
        let permits = self.polling.permits.clone();
        loop {
            // Waiting for the timer and then for a read permit; dropped
            // (and started afresh) whenever a command or shutdown comes
            // first, so neither waits for a busy fleet.
            let due = schedule.next;
            let turn = async {
                tokio::time::sleep_until(due).await;
                permits.clone().acquire_owned().await
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Simulate { change, reply }) => {
                        let result = match self.source.simulate(change).await {
                            Ok(()) => Ok(self.poll(&mut state, &snapshot, &stop, None).await > 0),
                            Err(e) => Err(e),
                        };
                        let _ = reply.send(result);
                    }
                    None => break,
                },
                permit = turn => {
                    let Ok(permit) = permit else { break };
                    let now = Instant::now();
                    crate::metrics::METRICS
                        .poll_lag
                        .observe(now.saturating_duration_since(due).as_secs_f64());
                    self.poll(&mut state, &snapshot, &stop, Some(permit)).await;
                    schedule.advance(Instant::now());
                }
            }
        }
        if state.reach.unreachable {
            crate::metrics::METRICS.devices_unreachable.dec();
        }
        tracing::debug!(device.id = %self.device_id, "device worker stopped");
    }

    /// Reads the device once (holding `permit` for the read only),
    /// reconciles and publishes. Returns the number of events the reading
    /// caused.
    async fn poll(
        &self,
        state: &mut PollState,
        snapshot: &watch::Sender<Snapshot>,
        stop: &CancellationToken,
        permit: Option<OwnedSemaphorePermit>,
    ) -> usize {
        let now = SystemTime::now();
        let started = Instant::now();
        let timeout = self.polling.read_timeout;
        let read = tokio::select! {
            r = tokio::time::timeout(timeout, self.source.read()) => r,
            // Shutdown does not wait for a device that takes its time.
            () = stop.cancelled() => return 0,
        };
        drop(permit);
        let (result, label) = match read {
            Ok(r) => {
                let label = outcome(&r);
                (r, label)
            }
            Err(_) => (
                Err(SourceError::Unreachable(format!(
                    "no complete answer within {} (read_timeout)",
                    humanize(timeout)
                ))),
                "timeout",
            ),
        };
        crate::metrics::METRICS.read(label, started.elapsed());
        let mut reading = match result {
            Ok(r) => r,
            Err(SourceError::NotReady(reason)) => {
                tracing::debug!(device.id = %self.device_id, %reason, "device not ready");
                state.reach.not_ready();
                return 0;
            }
            Err(SourceError::Unreachable(reason)) => {
                self.unanswered(state, snapshot, now, &reason).await;
                return 0;
            }
            Err(err @ SourceError::Unsupported(_)) => {
                // The device answered something this agent cannot use: not
                // a connection problem, so no unreachable condition; said
                // once per distinct error.
                let text = err.to_string();
                if snapshot.borrow().error.as_deref() == Some(text.as_str()) {
                    tracing::debug!(device.id = %self.device_id, error = %text, "device read failed");
                } else {
                    tracing::warn!(device.id = %self.device_id, error = %text, "device read failed");
                }
                snapshot.send_modify(|s| s.error = Some(text));
                // Events queued earlier still go out.
                self.flush(&mut state.record).await;
                return 0;
            }
        };
        if let Some(failed) = state.reach.answered() {
            tracing::warn!(device.id = %self.device_id, failed_reads = failed, "device answers again");
            crate::metrics::METRICS.devices_unreachable.dec();
        }
        let record = &mut state.record;
        // Events carry the protocol settings the device reports now.
        let builder = EventBuilder {
            protocols: reading.protocols.clone(),
            ..self.builder.clone()
        };
        // A new firmware version is an update for this one reading (no
        // standard signal says "firmware updated"; printer-signals.md).
        let known_firmware = record.firmware.last().map(str::to_owned);
        if let Some((item, detail)) = record.firmware.observe(&reading.firmware_version) {
            crate::source::mapping::merge_condition(&mut reading.conditions, item, &detail);
        }
        let queued = self
            .reconcile(record, snapshot, &reading.conditions, &builder, now)
            .await;
        if queued == 0 && record.firmware.last() != known_firmware.as_deref() {
            // Remember the version even when nothing else changed.
            // On failure the next stored change carries it.
            if let Err(reason) = self.store_record(record).await {
                tracing::warn!(device.id = %self.device_id, %reason, "cannot store the firmware version yet");
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

    /// A read the device did not answer: counts it, and at the threshold
    /// raises `unit_connection_error` keeping the other active conditions
    /// as they were (nothing is known of them while it is silent).
    async fn unanswered(
        &self,
        state: &mut PollState,
        snapshot: &watch::Sender<Snapshot>,
        now: SystemTime,
        reason: &str,
    ) {
        let threshold = self.polling.unreachable_after;
        let step = state.reach.failed(threshold);
        let failures = state.reach.failures;
        match step {
            Failed::First => {
                tracing::info!(device.id = %self.device_id, error = %reason, failures, threshold, "device did not answer");
            }
            Failed::Again | Failed::StillUnreachable => {
                tracing::debug!(device.id = %self.device_id, error = %reason, failures, threshold, "device did not answer");
            }
            Failed::BecameUnreachable => {
                tracing::warn!(device.id = %self.device_id, error = %reason, failures, "device unreachable");
                crate::metrics::METRICS.devices_unreachable.inc();
            }
        }
        let record = &mut state.record;
        // A simulated printer "fails" only when its state store (NATS) does:
        // the agent's own outage, not the device's, so no alert for it.
        let is_device = self.source.kind() != "simulated";
        if is_device
            && state.reach.unreachable
            && !record.active.contains_key(&AlertItem::UnitConnectionError)
        {
            let mut reported: BTreeMap<AlertItem, String> = record
                .active
                .iter()
                .map(|(item, a)| (*item, a.detail.clone()))
                .collect();
            reported.insert(
                AlertItem::UnitConnectionError,
                format!("device unreachable: {reason}"),
            );
            // The protocol settings it reported last, if it ever answered.
            let protocols = snapshot
                .borrow()
                .reading
                .as_ref()
                .map(|r| r.protocols.clone());
            let builder = match protocols {
                Some(protocols) => EventBuilder {
                    protocols,
                    ..self.builder.clone()
                },
                None => self.builder.clone(),
            };
            self.reconcile(record, snapshot, &reported, &builder, now)
                .await;
        }
        // Events queued earlier still go out.
        self.flush(record).await;
        let error = SourceError::Unreachable(reason.to_owned()).to_string();
        snapshot.send_modify(|s| {
            s.error = Some(error);
            s.record = record.clone();
        });
    }

    /// Brings `record` in line with `reported`, counts the active gauges and
    /// stores the record with its outbox before anything is published.
    async fn reconcile(
        &self,
        record: &mut DeviceRecord,
        snapshot: &watch::Sender<Snapshot>,
        reported: &BTreeMap<AlertItem, String>,
        builder: &EventBuilder,
        now: SystemTime,
    ) -> usize {
        let counted: Vec<AlertItem> = snapshot.borrow().record.active.keys().copied().collect();
        let queued = record.reconcile(reported, builder, now);
        crate::metrics::METRICS.count_active(&counted, record.active.keys().copied());
        if queued > 0 {
            // The outbox is stored before anything is published, so a crash
            // in between republishes the same event ids on the next start.
            if let Err(reason) = self.store_record(record).await {
                tracing::error!(device.id = %self.device_id, %reason, "cannot store conditions; events wait for the next read");
            }
        }
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

/// What a worker keeps between reads.
struct PollState {
    record: DeviceRecord,
    reach: Reachability,
}

/// `30s`, `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

enum LoadError {
    Corrupt(String),
    Store(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_turns_unreachable_once_at_the_threshold_and_answers_again() {
        let mut r = Reachability::default();
        assert_eq!(r.failed(3), Failed::First);
        assert_eq!(r.failed(3), Failed::Again);
        assert!(!r.unreachable);
        assert_eq!(r.failed(3), Failed::BecameUnreachable);
        assert_eq!(r.failed(3), Failed::StillUnreachable);
        assert_eq!(r.failed(3), Failed::StillUnreachable);
        assert_eq!(r.answered(), Some(5));
        assert_eq!(r, Reachability::default());
        // A streak below the threshold that ends in an answer is nothing.
        r.failed(3);
        assert_eq!(r.answered(), None);
    }

    #[test]
    fn a_threshold_of_one_declares_at_the_first_failure() {
        let mut r = Reachability::default();
        assert_eq!(r.failed(1), Failed::BecameUnreachable);
        assert_eq!(r.failed(0), Failed::StillUnreachable);
    }

    #[test]
    fn not_ready_ends_a_streak_but_keeps_a_declared_device_unreachable() {
        let mut r = Reachability::default();
        r.failed(3);
        r.failed(3);
        r.not_ready();
        assert_eq!(r.failed(3), Failed::First);
        r.failed(3);
        assert_eq!(r.failed(3), Failed::BecameUnreachable);
        r.not_ready();
        assert!(r.unreachable);
        assert_eq!(r.failed(3), Failed::StillUnreachable);
    }

    #[test]
    fn the_schedule_spreads_first_reads_and_keeps_the_beat() {
        let now = Instant::now();
        let interval = Duration::from_secs(5);
        let firsts: Vec<Duration> = (0..200)
            .map(|_| Schedule::new(interval, 0.2, now).next - now)
            .collect();
        assert!(firsts.iter().all(|d| *d <= Duration::from_secs(1)));
        // Spread, not one instant.
        let distinct: std::collections::BTreeSet<_> = firsts.iter().collect();
        assert!(distinct.len() > 150, "{}", distinct.len());

        let mut s = Schedule::new(interval, 0.2, now);
        let first = s.next;
        for _ in 0..100 {
            let before = s.next;
            s.advance(before);
            let step = s.next - before;
            assert!(
                step >= Duration::from_millis(4500) && step <= Duration::from_millis(5500),
                "{step:?}"
            );
        }
        // On average it keeps the interval.
        let mean = (s.next - first) / 100;
        assert!(
            mean > Duration::from_millis(4800) && mean < Duration::from_millis(5200),
            "{mean:?}"
        );

        // Without jitter: at once, then exactly every interval.
        let mut s = Schedule::new(interval, 0.0, now);
        assert_eq!(s.next, now);
        s.advance(now);
        assert_eq!(s.next, now + interval);
    }

    #[test]
    fn a_device_a_whole_interval_behind_is_rescheduled_from_now() {
        let now = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(5), 0.0, now);
        // The read took 12 s.
        let late = now + Duration::from_secs(12);
        s.advance(late);
        assert_eq!(s.next, late + Duration::from_secs(5));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
    }
}
