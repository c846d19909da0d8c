//! Where the agent learns a device's state: one [`Source`] per device.
//!
//! A source answers one question, "what does the device report now?", as a
//! [`Reading`]; the agent alone turns readings into events. Adding a kind of
//! source (SNMP, IPP) is one module and one variant here.

pub mod ipp;
pub mod mapping;
pub mod simulated;
pub mod snmp;

use std::collections::BTreeMap;

use printwatch_events::AlertItem;
use printwatch_proto::v1::{PaperTray, ProtocolSettings, Supply};

pub use ipp::IppSource;
pub use simulated::{SimChange, Simulated};
pub use snmp::SnmpSource;

/// What a device reports at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Every active alert item with the device's detail text.
    pub conditions: BTreeMap<AlertItem, String>,
    pub supplies: Vec<Supply>,
    pub trays: Vec<PaperTray>,
    pub protocols: ProtocolSettings,
    pub firmware_version: String,
}

/// Why a device could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The device is starting up and cannot answer yet (the manual's "right
    /// after power-on"); the device stays "not yet read".
    #[error("device is not ready yet: {0}")]
    NotReady(String),
    /// The device or its backing store did not answer.
    #[error("device did not answer: {0}")]
    Unreachable(String),
    /// The request makes no sense for this device.
    #[error("{0}")]
    Unsupported(String),
}

/// A device's source.
pub enum Source {
    // Boxed: the variants differ much in size.
    Simulated(Box<Simulated>),
    /// A real printer over SNMP v2c.
    Snmp(Box<SnmpSource>),
    /// A real printer over IPP / IPPS.
    Ipp(Box<IppSource>),
}

impl Source {
    /// Reads the device now.
    pub async fn read(&self) -> Result<Reading, SourceError> {
        match self {
            Source::Simulated(s) => s.read().await,
            Source::Snmp(s) => s.read().await,
            Source::Ipp(s) => s.read().await,
        }
    }

    /// `simulated`, `snmp` or `ipp`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Simulated(_) => "simulated",
            Source::Snmp(_) => "snmp",
            Source::Ipp(_) => "ipp",
        }
    }

    /// Changes a simulated device; other sources refuse.
    pub async fn simulate(&self, change: SimChange) -> Result<(), SourceError> {
        match self {
            Source::Simulated(s) => s.apply(change).await,
            Source::Snmp(s) => Err(SourceError::Unsupported(format!(
                "the device is read over SNMP from {}; only a simulated device can be changed",
                s.target()
            ))),
            Source::Ipp(s) => Err(SourceError::Unsupported(format!(
                "the device is read over IPP from {}; only a simulated device can be changed",
                s.url()
            ))),
        }
    }
}
