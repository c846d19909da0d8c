//! Building, encoding and decoding `AlertEvent`s.
//!
//! An event's id is a UUID v7: unique, and ordered by time, which makes the
//! notifier's ledger keys and JetStream's dedup window easy to reason about.

use std::time::SystemTime;

use printwatch_proto::Timestamp;
use printwatch_proto::v1::{AlertEvent, DeviceIdentity, ProtocolSettings, Transition};
use prost::Message;

use crate::catalog::AlertItem;

/// Occurred or recovered, without protobuf's "unspecified".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransitionKind {
    Occurred,
    Recovered,
}

impl TransitionKind {
    /// The subject token: `occurred` or `recovered`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransitionKind::Occurred => "occurred",
            TransitionKind::Recovered => "recovered",
        }
    }

    /// The protobuf value.
    pub fn to_proto(self) -> Transition {
        match self {
            TransitionKind::Occurred => Transition::Occurred,
            TransitionKind::Recovered => Transition::Recovered,
        }
    }
}

/// Builds events for one device with the device snapshot filled in.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    /// The publishing agent's advertise URL.
    pub agent: String,
    pub device: DeviceIdentity,
    pub protocols: ProtocolSettings,
}

impl EventBuilder {
    /// An occurred event for `item`, observed at `at`.
    pub fn occurred(&self, item: AlertItem, detail: &str, at: SystemTime) -> AlertEvent {
        AlertEvent {
            event_id: new_event_id(),
            device_id: self.device.id.clone(),
            item: item.key().to_owned(),
            transition: Transition::Occurred as i32,
            detail: detail.to_owned(),
            observed_at: Some(Timestamp::from(at)),
            began_at: Some(Timestamp::from(at)),
            occurred_event_id: String::new(),
            agent: self.agent.clone(),
            device: Some(self.device.clone()),
            protocols: Some(self.protocols.clone()),
        }
    }

    /// A recovered event ending the condition that `occurred_event_id`
    /// announced at `began_at`.
    pub fn recovered(
        &self,
        item: AlertItem,
        detail: &str,
        began_at: SystemTime,
        occurred_event_id: &str,
        at: SystemTime,
    ) -> AlertEvent {
        AlertEvent {
            event_id: new_event_id(),
            device_id: self.device.id.clone(),
            item: item.key().to_owned(),
            transition: Transition::Recovered as i32,
            detail: detail.to_owned(),
            observed_at: Some(Timestamp::from(at)),
            began_at: Some(Timestamp::from(began_at)),
            occurred_event_id: occurred_event_id.to_owned(),
            agent: self.agent.clone(),
            device: Some(self.device.clone()),
            protocols: Some(self.protocols.clone()),
        }
    }
}

/// A fresh event id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Encodes an event for the wire.
pub fn encode(event: &AlertEvent) -> Vec<u8> {
    event.encode_to_vec()
}

/// Why a payload is not a usable event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not an AlertEvent: {0}")]
    Protobuf(#[from] prost::DecodeError),
    #[error("event has no {0}")]
    Missing(&'static str),
    #[error("event names unknown alert item `{0}`")]
    UnknownItem(String),
    #[error("event has no valid transition")]
    Transition,
}

/// A decoded, checked event.
#[derive(Debug, Clone)]
pub struct CheckedEvent {
    pub event: AlertEvent,
    pub item: AlertItem,
    pub transition: TransitionKind,
}

/// Decodes and checks an event payload: a valid protobuf with an id, a
/// device, a known item and a transition.
pub fn decode(payload: &[u8]) -> Result<CheckedEvent, DecodeError> {
    let event = AlertEvent::decode(payload)?;
    if event.event_id.is_empty() {
        return Err(DecodeError::Missing("event_id"));
    }
    if event.device_id.is_empty() {
        return Err(DecodeError::Missing("device_id"));
    }
    let item = event
        .item
        .parse()
        .map_err(|_| DecodeError::UnknownItem(event.item.clone()))?;
    let transition = match Transition::try_from(event.transition) {
        Ok(Transition::Occurred) => TransitionKind::Occurred,
        Ok(Transition::Recovered) => TransitionKind::Recovered,
        _ => return Err(DecodeError::Transition),
    };
    Ok(CheckedEvent {
        event,
        item,
        transition,
    })
}

/// A protobuf timestamp as `SystemTime` (the epoch for a missing or
/// out-of-range one).
pub fn to_system_time(ts: Option<&Timestamp>) -> SystemTime {
    ts.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> EventBuilder {
        EventBuilder {
            agent: "http://127.0.0.1:50051".into(),
            device: DeviceIdentity {
                id: "p1".into(),
                name: "Printer 1".into(),
                ..Default::default()
            },
            protocols: ProtocolSettings::default(),
        }
    }

    #[test]
    fn an_encoded_event_decodes_to_the_same_fields() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let ev = builder().occurred(AlertItem::CoverOpen, "front cover", at);
        let back = decode(&encode(&ev)).unwrap();
        assert_eq!(back.item, AlertItem::CoverOpen);
        assert_eq!(back.transition, TransitionKind::Occurred);
        assert_eq!(back.event.detail, "front cover");
        assert_eq!(back.event.device_id, "p1");
        assert_eq!(to_system_time(back.event.observed_at.as_ref()), at);
        assert_eq!(back.event, ev);
    }

    #[test]
    fn event_ids_are_unique() {
        let b = builder();
        let now = SystemTime::now();
        assert_ne!(
            b.occurred(AlertItem::PaperOut, "", now).event_id,
            b.occurred(AlertItem::PaperOut, "", now).event_id
        );
    }

    #[test]
    fn garbage_and_incomplete_payloads_are_errors_not_panics() {
        assert!(decode(b"\xff\xff\xff\xff").is_err());
        assert!(matches!(decode(&[]), Err(DecodeError::Missing("event_id"))));
        let mut ev = builder().occurred(AlertItem::PaperOut, "", SystemTime::now());
        ev.item = "coffee_empty".into();
        assert!(matches!(
            decode(&encode(&ev)),
            Err(DecodeError::UnknownItem(_))
        ));
        ev.item = "paper_out".into();
        ev.transition = 7;
        assert!(matches!(decode(&encode(&ev)), Err(DecodeError::Transition)));
    }
}
