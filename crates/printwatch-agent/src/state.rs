//! A device's active conditions and its outbox, as kept in the
//! `printwatch_conditions` bucket.
//!
//! The agent writes the new active set *and* the events it is about to
//! publish (the outbox) before publishing them. After a crash the next
//! start republishes the outbox with the same event ids, which JetStream's
//! duplicate window (and the notifier's ledger beyond it) makes harmless;
//! then it compares the stored active set with what the device reports
//! now, so a condition that cleared while the agent was down yields one
//! recovered event and one that persists yields none.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use printwatch_events::event::{self, CheckedEvent};
use printwatch_events::{AlertEvent, AlertItem, EventBuilder};
use serde::{Deserialize, Serialize};

use crate::source::mapping::FirmwareWatch;

/// One active condition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub detail: String,
    /// Unix time in milliseconds when the condition appeared.
    pub since_ms: u64,
    /// The occurred event that announced it.
    pub event_id: String,
}

impl Active {
    pub fn since(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.since_ms)
    }
}

/// What the agent remembers of one device across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceRecord {
    pub active: BTreeMap<AlertItem, Active>,
    /// Protobuf-encoded events not yet acknowledged by the stream, base64.
    #[serde(default)]
    pub outbox: Vec<String>,
    /// The firmware version the device last reported; a change raises
    /// `firmware_update` for one reading.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub firmware: FirmwareWatch,
}

fn is_unset(f: &FirmwareWatch) -> bool {
    f.last().is_none()
}

/// A stored record that could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("stored conditions are unreadable: {0}")]
pub struct RecordError(String);

impl DeviceRecord {
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain maps, strings and integers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<DeviceRecord, RecordError> {
        serde_json::from_slice(bytes).map_err(|e| RecordError(e.to_string()))
    }

    /// The outbox's events; an entry that does not decode is dropped with a
    /// log line (it can only come from a corrupted bucket).
    pub fn outbox_events(&self) -> Vec<AlertEvent> {
        self.outbox
            .iter()
            .filter_map(|b64| {
                let decoded = STANDARD
                    .decode(b64)
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| event::decode(&bytes).map_err(|e| e.to_string()));
                match decoded {
                    Ok(CheckedEvent { event, .. }) => Some(event),
                    Err(reason) => {
                        tracing::error!(%reason, "dropping an unreadable outbox entry");
                        None
                    }
                }
            })
            .collect()
    }

    /// Brings the active set in line with what the device reports now and
    /// queues one event per change. Returns how many events were queued.
    pub fn reconcile(
        &mut self,
        reported: &BTreeMap<AlertItem, String>,
        builder: &EventBuilder,
        now: SystemTime,
    ) -> usize {
        let mut events = Vec::new();
        let gone: Vec<AlertItem> = self
            .active
            .keys()
            .filter(|i| !reported.contains_key(i))
            .copied()
            .collect();
        for item in gone {
            if let Some(active) = self.active.remove(&item) {
                events.push(builder.recovered(
                    item,
                    &active.detail,
                    active.since(),
                    &active.event_id,
                    now,
                ));
            }
        }
        for (item, detail) in reported {
            match self.active.get_mut(item) {
                Some(active) => {
                    // Same condition, new wording: remember it, announce nothing.
                    if &active.detail != detail {
                        active.detail.clone_from(detail);
                    }
                }
                None => {
                    let ev = builder.occurred(*item, detail, now);
                    self.active.insert(
                        *item,
                        Active {
                            detail: detail.clone(),
                            since_ms: printwatch_bus::unix_ms(now),
                            event_id: ev.event_id.clone(),
                        },
                    );
                    events.push(ev);
                }
            }
        }
        let queued = events.len();
        self.outbox
            .extend(events.iter().map(|e| STANDARD.encode(event::encode(e))));
        queued
    }

    /// Removes the first outbox entry (after the stream acknowledged it).
    pub fn pop_outbox(&mut self) {
        if !self.outbox.is_empty() {
            self.outbox.remove(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_proto::v1::{DeviceIdentity, ProtocolSettings, Transition};

    fn builder() -> EventBuilder {
        EventBuilder {
            agent: "http://a".into(),
            device: DeviceIdentity {
                id: "p1".into(),
                ..Default::default()
            },
            protocols: ProtocolSettings::default(),
        }
    }

    fn reported(items: &[(AlertItem, &str)]) -> BTreeMap<AlertItem, String> {
        items.iter().map(|(i, d)| (*i, (*d).to_owned())).collect()
    }

    #[test]
    fn the_firmware_version_survives_a_store_and_old_records_still_load() {
        let mut rec = DeviceRecord::default();
        assert_eq!(rec.firmware.observe("1.0"), None);
        let back = DeviceRecord::from_json(&rec.to_json()).unwrap();
        assert_eq!(back.firmware.last(), Some("1.0"));
        let mut back = back;
        assert_eq!(
            back.firmware.observe("1.1"),
            Some((
                AlertItem::FirmwareUpdate,
                "firmware changed from 1.0 to 1.1".to_owned()
            ))
        );
        // A record stored before the field existed.
        let old = DeviceRecord::from_json(br#"{"active":{},"outbox":[]}"#).unwrap();
        assert_eq!(old.firmware.last(), None);
        assert!(
            !String::from_utf8(DeviceRecord::default().to_json())
                .unwrap()
                .contains("firmware")
        );
    }

    #[test]
    fn a_new_condition_queues_one_occurred_event_and_repeating_it_queues_none() {
        let mut rec = DeviceRecord::default();
        let now = SystemTime::now();
        assert_eq!(
            rec.reconcile(
                &reported(&[(AlertItem::PaperJam, "tray 2")]),
                &builder(),
                now
            ),
            1
        );
        assert_eq!(
            rec.reconcile(
                &reported(&[(AlertItem::PaperJam, "tray 2")]),
                &builder(),
                now
            ),
            0
        );
        let events = rec.outbox_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].transition(), Transition::Occurred);
        assert_eq!(events[0].detail, "tray 2");
        assert_eq!(
            rec.active[&AlertItem::PaperJam].event_id,
            events[0].event_id
        );
    }

    #[test]
    fn a_cleared_condition_queues_one_recovered_event_pointing_at_its_occurrence() {
        let mut rec = DeviceRecord::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        rec.reconcile(
            &reported(&[(AlertItem::CoverOpen, "front")]),
            &builder(),
            t0,
        );
        let occurred = rec.outbox_events().remove(0);
        rec.pop_outbox();
        assert_eq!(
            rec.reconcile(&reported(&[]), &builder(), t0 + Duration::from_secs(5)),
            1
        );
        let recovered = rec.outbox_events().remove(0);
        assert_eq!(recovered.transition(), Transition::Recovered);
        assert_eq!(recovered.occurred_event_id, occurred.event_id);
        assert_eq!(event::to_system_time(recovered.began_at.as_ref()), t0);
        assert!(rec.active.is_empty());
    }

    #[test]
    fn a_record_survives_json_and_garbage_is_an_error() {
        let mut rec = DeviceRecord::default();
        rec.reconcile(
            &reported(&[(AlertItem::TonerLowLevel, "12%")]),
            &builder(),
            SystemTime::now(),
        );
        let back = DeviceRecord::from_json(&rec.to_json()).unwrap();
        assert_eq!(back, rec);
        assert!(DeviceRecord::from_json(b"{not json").is_err());
        let bad = DeviceRecord {
            outbox: vec!["!!".into()],
            ..Default::default()
        };
        assert!(bad.outbox_events().is_empty());
    }
}
