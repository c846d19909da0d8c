//! What an alert is and how it travels between printwatch's services.
//!
//! - [`catalog`]: the fifteen alert items of the printer manual (SPEC §1.1)
//!   with their stable keys and Japanese and English labels, and the
//!   service-call messages whose mails tell the reader to call the service
//!   provider.
//! - [`subject`]: the NATS subjects, stream and bucket names of SPEC §3.2.
//! - [`event`]: building, encoding and decoding the `AlertEvent` payload.
//! - [`report`]: the device status report that `printwatch status` prints
//!   and a `requeststatus` reply carries.
//!
//! Every service and the CLI read these from here, so a new alert item is
//! one variant in [`catalog::AlertItem`] and nothing else.

pub mod catalog;
pub mod event;
pub mod report;
pub mod subject;

pub use catalog::{AlertItem, Language, Severity, UnknownItem};
pub use event::{CheckedEvent, DecodeError, EventBuilder, TransitionKind};
pub use printwatch_proto::v1::{AlertEvent, Transition};
pub use subject::{EventSubject, Names, SubjectError};
