//! The device-agent (`printwatch-agent`).
//!
//! Watches every device of `[[devices]]` through its [`source`], keeps each
//! device's set of active conditions in the `printwatch_conditions` bucket
//! ([`state`]), publishes one occurred or recovered event per change to the
//! events stream ([`device`]), registers each device with this agent's
//! `advertise` URL, and serves device status over gRPC ([`grpc`]).
//!
//! Built as [`Application::build`] → [`Application::local_addr`] →
//! [`Application::run_until_stopped`], so tests run it in-process on a free
//! port and the binary stays a few lines.

pub mod device;
pub mod grpc;
pub mod metrics;
pub mod source;
pub mod state;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream;
use printwatch_bus::PublishPolicy;
use printwatch_config::{Config, DeviceConfig, DeviceSource, VendorSignal};
use printwatch_events::{EventBuilder, Names};
use printwatch_proto::v1::device_agent_server::DeviceAgentServer;
use printwatch_proto::v1::{DeviceIdentity, ProtocolSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::device::Worker;
use crate::grpc::{AgentService, Device};
use crate::source::ipp::IppTls;
use crate::source::{IppSource, Simulated, SnmpSource, Source};

/// How long shutdown waits for device workers to finish what they do.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Why the agent could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot listen for gRPC on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve the operations port on {addr}: {source}")]
    OpsListen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Bus(#[from] printwatch_bus::BusError),
    #[error("device `{device}`: {reason}")]
    Device { device: String, reason: String },
    #[error("cannot register devices: {0}")]
    Registry(String),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// A built, not yet running agent.
pub struct Application {
    listener: TcpListener,
    client: async_nats::Client,
    workers: Vec<Worker>,
    identities: BTreeMap<String, DeviceIdentity>,
}

impl Application {
    /// Connects to NATS, creates the stream and buckets, binds the gRPC
    /// port and prepares one worker per device. Nothing runs yet.
    pub async fn build(cfg: &Config) -> Result<Application, AgentError> {
        let listener = TcpListener::bind(cfg.agent.grpc_listen)
            .await
            .map_err(|source| AgentError::Listen {
                addr: cfg.agent.grpc_listen,
                source,
            })?;
        let names = Arc::new(cfg.names());
        let client = printwatch_bus::connect(&cfg.nats, "printwatch-agent", None).await?;
        let js = jetstream::new(client.clone());
        let replicas = cfg.nats.replicas;
        printwatch_bus::ensure_stream(&js, &names, replicas).await?;
        let conditions =
            printwatch_bus::ensure_bucket(&js, &names.conditions_bucket(), replicas).await?;
        let simulated =
            printwatch_bus::ensure_bucket(&js, &simulated_bucket(&names), replicas).await?;
        let registry =
            printwatch_bus::ensure_bucket(&js, &names.devices_bucket(), replicas).await?;

        let advertise = cfg.agent.advertise.clone();
        let policy = PublishPolicy {
            attempts: cfg.agent.publish_retries.max(1),
            ack_timeout: cfg.agent.publish_timeout,
        };
        let threshold = cfg.alerts.toner_threshold_percent();
        // One set of read permits for the whole fleet.
        let polling = device::Polling::new(&cfg.agent.polling);
        let mut workers = Vec::new();
        let mut identities = BTreeMap::new();
        for dev in &cfg.devices {
            let identity = identity(dev);
            let source = match &dev.source {
                DeviceSource::Simulated => Source::Simulated(Box::new(Simulated::new(
                    &dev.id,
                    simulated.clone(),
                    dev.simulated.toner_level_percent,
                    threshold,
                    dev.simulated.boot_delay,
                    configured_protocols(dev),
                ))),
                DeviceSource::Snmp(snmp) => {
                    let mut protocols = configured_protocols(dev);
                    if dev.protocols.is_empty() {
                        let version = if snmp.v3.is_some() {
                            "SNMPv3"
                        } else {
                            "SNMPv1/v2c"
                        };
                        protocols.enabled_protocols = vec![version.to_owned()];
                    }
                    if dev.host_name.is_none() {
                        // Until the device's sysName says otherwise.
                        protocols.host_name = snmp.host.clone();
                    }
                    let source = SnmpSource::new(
                        &dev.id,
                        &snmp.host,
                        snmp.port,
                        snmp.community.expose(),
                        threshold,
                        protocols,
                    );
                    let source = source
                        .with_storage_threshold(cfg.alerts.storage_threshold_percent())
                        .with_vendor_map(vendor_map(cfg, dev));
                    Source::Snmp(Box::new(match &snmp.v3 {
                        Some(v3) => source.with_v3(v3),
                        None => source,
                    }))
                }
                DeviceSource::Ipp(ipp) => {
                    let mut protocols = configured_protocols(dev);
                    if dev.protocols.is_empty() {
                        // The printer's printer-uri-supported tells.
                        protocols.enabled_protocols = Vec::new();
                    }
                    if dev.host_name.is_none() {
                        // Until the printer's URIs say otherwise.
                        protocols.host_name = ipp.url.host_str().unwrap_or_default().to_owned();
                    }
                    let mut tls = IppTls {
                        ca_certs: Vec::new(),
                        skip_verify: !ipp.tls_verify,
                    };
                    if let Some(path) = &ipp.ca_file {
                        let pem = std::fs::read(path).map_err(|e| AgentError::Device {
                            device: dev.id.clone(),
                            reason: format!(
                                "cannot read [devices.ipp] ca_file {}: {e}",
                                path.display()
                            ),
                        })?;
                        tls.ca_certs.push(pem);
                    }
                    Source::Ipp(Box::new(
                        IppSource::new(
                            &dev.id,
                            ipp.url.as_str(),
                            threshold,
                            protocols,
                            vendor_map(cfg, dev),
                        )
                        .with_tls(tls),
                    ))
                }
            };
            register(&registry, dev, &advertise).await?;
            workers.push(Worker {
                device_id: dev.id.clone(),
                source,
                builder: EventBuilder {
                    agent: advertise.clone(),
                    device: identity.clone(),
                    protocols: ProtocolSettings::default(),
                },
                conditions: conditions.clone(),
                js: js.clone(),
                names: names.clone(),
                publish: policy,
                poll_interval: dev.poll_interval.unwrap_or(cfg.agent.poll_interval),
                polling: polling.clone(),
            });
            identities.insert(dev.id.clone(), identity);
        }
        if let Some(addr) = cfg.telemetry.http_listen {
            let mut registry = prometheus_client::registry::Registry::default();
            metrics::METRICS.register(&mut registry);
            let nats = client.clone();
            let ready =
                printwatch_runtime::http::nats_ready(move || printwatch_bus::is_connected(&nats));
            printwatch_runtime::http::serve(addr, registry, ready)
                .await
                .map_err(|source| AgentError::OpsListen { addr, source })?;
        }
        Ok(Application {
            listener,
            client,
            workers,
            identities,
        })
    }

    /// The address the gRPC server listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has a local address.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Runs until `shutdown` completes, then stops taking requests, lets
    /// every device worker finish its read and publishes, and drains the
    /// NATS connection.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), AgentError> {
        tracing::info!(grpc = %self.local_addr(), "gRPC listening");
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut devices = BTreeMap::new();
        for worker in self.workers {
            let id = worker.device_id.clone();
            let handle = worker.spawn(stop.clone(), &tracker);
            let identity = self.identities.get(&id).cloned().unwrap_or_default();
            devices.insert(id, Device { identity, handle });
        }
        tracker.close();

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_serving::<DeviceAgentServer<AgentService>>()
            .await;
        let service = DeviceAgentServer::new(AgentService::new(devices));
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(self.listener);
        let stop_serving = stop.clone();
        let server = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move { stop_serving.cancelled().await });
        tracing::info!(devices = tracker.len(), "agent running");

        let result = tokio::select! {
            r = server => r.map_err(AgentError::from),
            () = shutdown => {
                tracing::info!("shutdown requested");
                Ok(())
            }
        };
        health
            .set_not_serving::<DeviceAgentServer<AgentService>>()
            .await;
        stop.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("device workers did not finish within {SHUTDOWN_GRACE:?}");
        }
        if let Err(e) = self.client.drain().await {
            tracing::warn!(error = %e, "NATS drain failed");
        }
        tracing::info!("agent stopped");
        result
    }
}

/// A device's vendor extensions: `[agent.vendor_signals]`, then the
/// device's own `[devices.vendor_signals]` (which wins for the same signal).
pub fn vendor_map(cfg: &Config, dev: &DeviceConfig) -> source::mapping::VendorMap {
    let mut map = source::mapping::VendorMap::new();
    for (signal, item) in cfg.agent.vendor_signals.iter().chain(&dev.vendor_signals) {
        match signal {
            VendorSignal::Oid(oid) => map.insert_oid(oid, *item),
            VendorSignal::IppKeyword(keyword) => map.insert_ipp_keyword(keyword, *item),
        }
    }
    map
}

/// The bucket where simulated printers keep their state.
pub fn simulated_bucket(names: &Names) -> String {
    format!("{}simulated", names.bucket_prefix)
}

fn identity(dev: &DeviceConfig) -> DeviceIdentity {
    DeviceIdentity {
        id: dev.id.clone(),
        name: dev.name.clone(),
        model: dev.model.clone(),
        serial: dev.serial.clone(),
        location: dev.location.clone(),
        mail_address: dev.mail_address.clone().unwrap_or_default(),
    }
}

/// The protocol settings a device's config states (what a simulated
/// printer reports): host name (default: the id), addresses, MAC address
/// and enabled protocols (default: `simulated` plus the address families).
fn configured_protocols(dev: &DeviceConfig) -> ProtocolSettings {
    let mut p = ProtocolSettings {
        host_name: dev.host_name.clone().unwrap_or_else(|| dev.id.clone()),
        mac_address: dev.mac_address.clone().unwrap_or_default(),
        ..Default::default()
    };
    for addr in &dev.addresses {
        match addr {
            std::net::IpAddr::V4(a) => p.ipv4_addresses.push(a.to_string()),
            std::net::IpAddr::V6(a) => p.ipv6_addresses.push(a.to_string()),
        }
    }
    p.enabled_protocols = if dev.protocols.is_empty() {
        let mut list = vec!["simulated".to_owned()];
        if !p.ipv4_addresses.is_empty() {
            list.push("IPv4".into());
        }
        if !p.ipv6_addresses.is_empty() {
            list.push("IPv6".into());
        }
        list
    } else {
        dev.protocols.clone()
    };
    p
}

/// Records in the registry bucket that `advertise` owns this device, so an
/// inbox can find the agent to ask.
async fn register(
    registry: &async_nats::jetstream::kv::Store,
    dev: &DeviceConfig,
    advertise: &str,
) -> Result<(), AgentError> {
    let record = serde_json::json!({
        "agent": advertise,
        "name": dev.name,
        "mail_address": dev.mail_address,
        "registered_at_ms": printwatch_bus::unix_ms(SystemTime::now()),
    });
    registry
        .put(dev.id.as_str(), record.to_string().into())
        .await
        .map(|_| ())
        .map_err(|e| AgentError::Registry(format!("{}: {e}", dev.id)))
}

impl printwatch_runtime::service::App for Application {
    type Error = AgentError;
    fn build(cfg: &Config) -> impl Future<Output = Result<Self, Self::Error>> {
        Application::build(cfg)
    }
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        Application::run_until_stopped(self, shutdown)
    }
}
