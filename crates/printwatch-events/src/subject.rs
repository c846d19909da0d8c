//! NATS subjects, the stream and the key-value bucket names (SPEC §3.2).
//!
//! The names are a contract with operators (their NATS permissions and
//! dashboards name them), so they are built only here. Tests give each run
//! its own [`Names`] so they never collide.

use std::fmt;

use crate::catalog::AlertItem;
use crate::event::TransitionKind;

/// The names printwatch uses on one NATS deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// First token of every subject (`printwatch`).
    pub subject_prefix: String,
    /// The JetStream stream over `<prefix>.event.>` (`PRINTWATCH_EVENTS`).
    pub stream: String,
    /// Prefix of every key-value bucket (`printwatch_`).
    pub bucket_prefix: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            subject_prefix: "printwatch".into(),
            stream: "PRINTWATCH_EVENTS".into(),
            bucket_prefix: "printwatch_".into(),
        }
    }
}

impl Names {
    /// `printwatch.event.>`: what the stream holds.
    pub fn events_wildcard(&self) -> String {
        format!("{}.event.>", self.subject_prefix)
    }

    /// The subject of one event.
    pub fn event_subject(
        &self,
        device_id: &str,
        transition: TransitionKind,
        item: AlertItem,
    ) -> String {
        format!(
            "{}.event.{device_id}.{}.{}",
            self.subject_prefix,
            transition.as_str(),
            item.key()
        )
    }

    /// Where undecodable events go, with the reason in a header.
    pub fn dead_letter_subject(&self) -> String {
        format!("{}.deadletter.event", self.subject_prefix)
    }

    /// Active conditions per device (agent).
    pub fn conditions_bucket(&self) -> String {
        format!("{}conditions", self.bucket_prefix)
    }

    /// Device id → the gRPC URL of the agent that owns it.
    pub fn devices_bucket(&self) -> String {
        format!("{}devices", self.bucket_prefix)
    }

    /// The notifier's send ledger: (event id, recipient) → claimed / sent.
    pub fn sent_bucket(&self) -> String {
        format!("{}sent", self.bucket_prefix)
    }

    /// The inbox's answered-request ledger.
    pub fn answered_bucket(&self) -> String {
        format!("{}answered", self.bucket_prefix)
    }

    /// Parses an event subject back into its parts.
    pub fn parse_event_subject<'a>(
        &self,
        subject: &'a str,
    ) -> Result<EventSubject<'a>, SubjectError> {
        let bad = || SubjectError(subject.to_owned());
        let rest = subject
            .strip_prefix(self.subject_prefix.as_str())
            .and_then(|r| r.strip_prefix(".event."))
            .ok_or_else(bad)?;
        let mut parts = rest.split('.');
        let (Some(device_id), Some(transition), Some(item), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let transition = match transition {
            "occurred" => TransitionKind::Occurred,
            "recovered" => TransitionKind::Recovered,
            _ => return Err(bad()),
        };
        let item = item.parse().map_err(|_| bad())?;
        if !is_token(device_id) {
            return Err(bad());
        }
        Ok(EventSubject {
            device_id,
            transition,
            item,
        })
    }
}

/// The parts of an event subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSubject<'a> {
    pub device_id: &'a str,
    pub transition: TransitionKind,
    pub item: AlertItem,
}

/// A subject that is not a printwatch event subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an event subject")]
pub struct SubjectError(pub String);

impl fmt::Display for TransitionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `s` can stand as one subject token and one key-value key:
/// non-empty, ASCII letters, digits, `-` and `_` only.
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_subjects_round_trip() {
        let names = Names::default();
        let s = names.event_subject("lobby-1", TransitionKind::Occurred, AlertItem::PaperJam);
        assert_eq!(s, "printwatch.event.lobby-1.occurred.paper_jam");
        let parsed = names.parse_event_subject(&s).unwrap();
        assert_eq!(parsed.device_id, "lobby-1");
        assert_eq!(parsed.transition, TransitionKind::Occurred);
        assert_eq!(parsed.item, AlertItem::PaperJam);
    }

    #[test]
    fn foreign_subjects_are_rejected() {
        let names = Names::default();
        for s in [
            "printwatch.event.a.b",
            "printwatch.event.a.occurred.nope",
            "printwatch.event.a.gone.paper_jam",
            "other.event.a.occurred.paper_jam",
            "printwatch.event.a.occurred.paper_jam.x",
        ] {
            assert!(names.parse_event_subject(s).is_err(), "{s}");
        }
    }

    #[test]
    fn tokens_exclude_subject_syntax() {
        assert!(is_token("printer_01-b"));
        for bad in ["", "a.b", "a*", "a>", "a b", "ü"] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
