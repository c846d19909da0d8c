//! Test support for printwatch's end-to-end tests.
//!
//! Tests talk to real servers, never mocks: each test starts its own
//! `nats-server` with JetStream on a free port ([`nats`]), and all tests
//! share the project's local Postfix + Dovecot mail test bed ([`mail`]),
//! keeping apart by using fresh mailbox addresses and unique stream and
//! bucket names ([`unique_name`]).

pub mod agent;
pub mod ipp;
pub mod mail;
pub mod nats;
pub mod otlp;
pub mod process;
pub mod proxy;
pub mod snmp;

/// A name unique to this test run, usable as a NATS stream, bucket or
/// subject token (`[A-Za-z0-9_]` only).
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &id[..12])
}
