//! The wire contracts of printwatch (SPEC §3.2, §3.3), generated from
//! `proto/printwatch/v1/`: the `AlertEvent` carried on NATS and the
//! `DeviceAgent` gRPC service served by the agent.

/// Package `printwatch.v1`.
pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("printwatch.v1");
}

pub use prost_types::Timestamp;
