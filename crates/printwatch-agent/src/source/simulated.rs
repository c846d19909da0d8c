//! A simulated printer, for demos, tests and trying routing rules.
//!
//! Its state (raised conditions and toner level) lives in the
//! `printwatch_simulated` key-value bucket, not in the agent: like a real
//! printer it keeps its state while the agent is down, and whoever changes
//! it there (the agent's `SetCondition`, a test) is seen at the next read.
//! `toner_low_level` is derived from the toner level and the configured
//! threshold, as a printer with a selectable remaining level would do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use printwatch_events::AlertItem;
use printwatch_proto::v1::{PaperTray, ProtocolSettings, Supply};
use serde::{Deserialize, Serialize};

use super::{Reading, SourceError};

/// The simulated printer's own memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimState {
    /// Raised items and their detail text.
    pub conditions: BTreeMap<AlertItem, String>,
    pub toner_level_percent: u8,
}

/// A change asked of the simulator.
#[derive(Debug, Clone)]
pub enum SimChange {
    Raise { item: AlertItem, detail: String },
    Clear { item: AlertItem },
    TonerLevel(u8),
}

/// A simulated printer backed by the simulator bucket.
pub struct Simulated {
    key: String,
    store: kv::Store,
    initial_toner: u8,
    threshold_percent: u8,
    ready_at: Instant,
    protocols: ProtocolSettings,
}

impl Simulated {
    /// A simulated device stored under `device_id`, answering reads only
    /// `boot_delay` after now, reporting `protocols` as its settings.
    pub fn new(
        device_id: &str,
        store: kv::Store,
        initial_toner: u8,
        threshold_percent: u8,
        boot_delay: Duration,
        protocols: ProtocolSettings,
    ) -> Simulated {
        Simulated {
            key: device_id.to_owned(),
            store,
            initial_toner,
            threshold_percent,
            ready_at: Instant::now() + boot_delay,
            protocols,
        }
    }

    async fn load(&self) -> Result<(SimState, u64), SourceError> {
        let entry = self
            .store
            .entry(self.key.as_str())
            .await
            .map_err(|e| SourceError::Unreachable(format!("simulator store: {e}")))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                match serde_json::from_slice(&e.value) {
                    Ok(state) => Ok((state, e.revision)),
                    Err(err) => {
                        tracing::warn!(device.id = %self.key, error = %err, "simulator state unreadable, starting afresh");
                        Ok((self.initial(), e.revision))
                    }
                }
            }
            Some(e) => Ok((self.initial(), e.revision)),
            None => Ok((self.initial(), 0)),
        }
    }

    fn initial(&self) -> SimState {
        SimState {
            conditions: BTreeMap::new(),
            toner_level_percent: self.initial_toner,
        }
    }

    /// Reads the simulated printer.
    pub async fn read(&self) -> Result<Reading, SourceError> {
        if Instant::now() < self.ready_at {
            return Err(SourceError::NotReady(
                "the simulated printer is still starting".into(),
            ));
        }
        let (state, _) = self.load().await?;
        Ok(self.reading(&state))
    }

    fn reading(&self, state: &SimState) -> Reading {
        let mut conditions = state.conditions.clone();
        // The selectable-level item is the device's own judgement of its level.
        conditions.remove(&AlertItem::TonerLowLevel);
        if state.toner_level_percent < self.threshold_percent {
            conditions.insert(
                AlertItem::TonerLowLevel,
                format!(
                    "Black toner at {}% (below the selected level of {}%)",
                    state.toner_level_percent, self.threshold_percent
                ),
            );
        }
        let tray_state = |n: usize| -> (&'static str, i32) {
            let named = |item| {
                conditions
                    .get(&item)
                    .is_some_and(|d| d.contains(&format!("{n}")) || d.is_empty())
            };
            if named(AlertItem::PaperOut) {
                ("empty", 0)
            } else if named(AlertItem::TrayError) {
                ("error", -1)
            } else {
                ("ok", 80)
            }
        };
        let trays = [(1, "A4"), (2, "A3")]
            .into_iter()
            .map(|(n, media)| {
                let (state, level) = tray_state(n);
                PaperTray {
                    name: format!("Tray {n}"),
                    media: media.into(),
                    level_percent: level,
                    state: state.into(),
                }
            })
            .collect();
        let toner_level = if conditions.contains_key(&AlertItem::TonerEmpty) {
            0
        } else {
            state.toner_level_percent
        };
        Reading {
            conditions,
            supplies: vec![Supply {
                name: "Black toner".into(),
                kind: "toner".into(),
                color: "black".into(),
                level_percent: i32::from(toner_level),
            }],
            trays,
            protocols: self.protocols.clone(),
            firmware_version: "sim-1.0".into(),
        }
    }

    /// Applies a change to the simulated printer (compare-and-set, retried
    /// if someone else changed it at the same moment).
    pub async fn apply(&self, change: SimChange) -> Result<(), SourceError> {
        for _ in 0..5 {
            let (mut state, revision) = self.load().await?;
            match &change {
                SimChange::Raise {
                    item: AlertItem::TonerLowLevel,
                    ..
                }
                | SimChange::Clear {
                    item: AlertItem::TonerLowLevel,
                } => {
                    return Err(SourceError::Unsupported(
                        "toner_low_level follows the toner level: set the level instead".into(),
                    ));
                }
                SimChange::Raise { item, detail } => {
                    state.conditions.insert(*item, detail.clone());
                }
                SimChange::Clear { item } => {
                    state.conditions.remove(item);
                }
                SimChange::TonerLevel(level) => state.toner_level_percent = (*level).min(100),
            }
            let value = serde_json::to_vec(&state).unwrap_or_default().into();
            let written = if revision == 0 {
                self.store
                    .create(self.key.as_str(), value)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            } else {
                self.store
                    .update(self.key.as_str(), value, revision)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            };
            match written {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    tracing::debug!(device.id = %self.key, %reason, "simulator state changed meanwhile, retrying")
                }
            }
        }
        Err(SourceError::Unreachable(
            "simulator store: too many concurrent changes".into(),
        ))
    }
}
