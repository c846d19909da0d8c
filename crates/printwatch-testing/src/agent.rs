//! A running `printwatch-agent` process on its own nats-server, with
//! unique stream and bucket names, a gRPC client and a reader of what the
//! agent put on the stream.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use printwatch_events::Names;
use printwatch_events::event::{self, CheckedEvent};
use printwatch_proto::v1::DeviceStatus;
use printwatch_proto::v1::GetDeviceStatusRequest;
use printwatch_proto::v1::device_agent_client::DeviceAgentClient;
use tonic::transport::Channel;

use crate::nats::NatsServer;
use crate::process::{Service, free_port};
use crate::unique_name;

/// One event as it sits on the stream.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub sequence: u64,
    pub subject: String,
    /// The `Nats-Msg-Id` header.
    pub msg_id: Option<String>,
    pub event: CheckedEvent,
}

/// An agent process with everything it needs.
pub struct AgentFixture {
    pub nats: NatsServer,
    pub names: Names,
    pub grpc_url: String,
    pub config_path: PathBuf,
    pub agent: Service,
    pub dir: tempfile::TempDir,
}

impl AgentFixture {
    /// Writes a config with `[nats]` and `[agent]` filled in for this test,
    /// followed by `rest` (devices, alerts…), and starts the agent.
    pub async fn start(rest: &str) -> anyhow::Result<AgentFixture> {
        Self::start_with("", "", rest).await
    }

    /// [`AgentFixture::start`] with more `[agent]` keys (`agent_keys`, not
    /// `poll_interval`, which is set) and `[telemetry]` keys (not
    /// `log_level`), such as `http_listen` for the metrics.
    pub async fn start_with(
        agent_keys: &str,
        telemetry_keys: &str,
        rest: &str,
    ) -> anyhow::Result<AgentFixture> {
        let nats = NatsServer::start()?;
        let tag = unique_name("t");
        let names = Names {
            subject_prefix: format!("pw{tag}"),
            stream: format!("EVENTS_{tag}"),
            bucket_prefix: format!("pw{tag}_"),
        };
        let port = free_port()?;
        let dir = tempfile::Builder::new().prefix("pw-agent-").tempdir()?;
        let config = format!(
            r#"[nats]
url = "{url}"
stream = "{stream}"
subject_prefix = "{prefix}"
bucket_prefix = "{buckets}"

[agent]
grpc_listen = "127.0.0.1:{port}"
advertise = "http://127.0.0.1:{port}"
poll_interval = "200ms"
{agent_keys}

[telemetry]
log_level = "info,printwatch_agent=debug"
{telemetry_keys}

{rest}
"#,
            url = nats.url(),
            stream = names.stream,
            prefix = names.subject_prefix,
            buckets = names.bucket_prefix,
        );
        let config_path = dir.path().join("printwatch.toml");
        std::fs::write(&config_path, config)?;
        let config_arg = config_path.to_string_lossy().into_owned();
        let agent = Service::start(
            "printwatch-agent",
            &["--config", &config_arg],
            &dir.path().join("agent.log"),
        )?;
        let fixture = AgentFixture {
            nats,
            names,
            grpc_url: format!("http://127.0.0.1:{port}"),
            config_path,
            agent,
            dir,
        };
        fixture.wait_for_grpc(Duration::from_secs(20)).await?;
        Ok(fixture)
    }

    /// Starts another printwatch service (`printwatch-notifier`, …) with
    /// this fixture's config file, logging to `<dir>/<log_name>.log`.
    pub fn start_service(&self, name: &str, log_name: &str) -> anyhow::Result<Service> {
        let config = self.config_path.to_string_lossy().into_owned();
        Service::start(
            name,
            &["--config", &config],
            &self.dir.path().join(format!("{log_name}.log")),
        )
    }

    /// [`AgentFixture::start_service`] with extra environment variables.
    pub fn start_service_with_env(
        &self,
        name: &str,
        log_name: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Service> {
        let config = self.config_path.to_string_lossy().into_owned();
        Service::start_with_env(
            name,
            &["--config", &config],
            env,
            &self.dir.path().join(format!("{log_name}.log")),
        )
    }

    /// Waits until the agent's gRPC port answers.
    pub async fn wait_for_grpc(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if DeviceAgentClient::connect(self.grpc_url.clone())
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "agent did not serve gRPC within {timeout:?}; log:\n{}",
                    self.agent.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A gRPC client of the agent.
    pub async fn client(&self) -> anyhow::Result<DeviceAgentClient<Channel>> {
        DeviceAgentClient::connect(self.grpc_url.clone())
            .await
            .with_context(|| format!("connecting to the agent at {}", self.grpc_url))
    }

    /// `device`'s status now (GetDeviceStatus); an error when the agent
    /// has not read it yet or does not know it.
    pub async fn status(&self, device: &str) -> anyhow::Result<DeviceStatus> {
        let mut client = self.client().await?;
        let status = client
            .get_device_status(GetDeviceStatusRequest {
                device_id: device.to_owned(),
            })
            .await
            .with_context(|| format!("GetDeviceStatus({device})"))?;
        Ok(status.into_inner())
    }

    /// Waits until the agent has read `device` and returns its status.
    pub async fn wait_until_read(
        &self,
        device: &str,
        timeout: Duration,
    ) -> anyhow::Result<DeviceStatus> {
        let deadline = Instant::now() + timeout;
        let mut client = self.client().await?;
        loop {
            match client
                .get_device_status(GetDeviceStatusRequest {
                    device_id: device.to_owned(),
                })
                .await
            {
                Ok(resp) => return Ok(resp.into_inner()),
                Err(status) if status.code() == tonic::Code::Unavailable => {}
                Err(status) => bail!("GetDeviceStatus({device}) failed: {status}"),
            }
            if Instant::now() > deadline {
                bail!(
                    "agent did not read {device} within {timeout:?}; log:\n{}",
                    self.agent.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `device`'s status — as `ListDevices` shows it, so also
    /// for a device never read, with its read error — satisfies `until`,
    /// and returns that status. On timeout the error holds the last status
    /// and the agent's log.
    pub async fn wait_for_device(
        &self,
        device: &str,
        timeout: Duration,
        until: impl Fn(&DeviceStatus) -> bool,
    ) -> anyhow::Result<DeviceStatus> {
        let deadline = Instant::now() + timeout;
        let mut client = self.client().await?;
        loop {
            let list = client
                .list_devices(printwatch_proto::v1::ListDevicesRequest {})
                .await
                .context("ListDevices")?
                .into_inner();
            let status = list
                .devices
                .into_iter()
                .find(|d| d.device.as_ref().is_some_and(|i| i.id == device));
            if let Some(s) = &status
                && until(s)
            {
                return Ok(s.clone());
            }
            if Instant::now() > deadline {
                bail!(
                    "{device} did not reach the awaited state within {timeout:?}: {status:?}\nagent log:\n{}",
                    self.agent.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A JetStream context on the test's nats-server.
    pub async fn jetstream(&self) -> anyhow::Result<jetstream::Context> {
        Ok(jetstream::new(self.nats.client().await?))
    }

    /// Every event on the stream, in order.
    pub async fn events(&self) -> anyhow::Result<Vec<StoredEvent>> {
        let js = self.jetstream().await?;
        let mut stream = js
            .get_stream(&self.names.stream)
            .await
            .context("opening the events stream")?;
        let state = stream
            .info()
            .await
            .context("reading stream info")?
            .state
            .clone();
        let mut out = Vec::new();
        if state.messages == 0 {
            return Ok(out);
        }
        for seq in state.first_sequence..=state.last_sequence {
            let msg = stream
                .get_raw_message(seq)
                .await
                .with_context(|| format!("reading message {seq}"))?;
            let event =
                event::decode(&msg.payload).with_context(|| format!("decoding message {seq}"))?;
            out.push(StoredEvent {
                sequence: seq,
                subject: msg.subject.to_string(),
                msg_id: msg
                    .headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.as_str().to_owned()),
                event,
            });
        }
        Ok(out)
    }

    /// Waits until the stream holds at least `count` events, then returns all.
    pub async fn wait_for_events(
        &self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<StoredEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let events = self.events().await?;
            if events.len() >= count {
                return Ok(events);
            }
            if Instant::now() > deadline {
                bail!(
                    "expected {count} events within {timeout:?}, found {}: {:?}\nagent log:\n{}",
                    events.len(),
                    events.iter().map(|e| &e.subject).collect::<Vec<_>>(),
                    self.agent.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A `SetCondition` request that raises `item` on `device` with `detail`.
pub fn raise(device: &str, item: &str, detail: &str) -> printwatch_proto::v1::SetConditionRequest {
    printwatch_proto::v1::SetConditionRequest {
        device_id: device.into(),
        item: item.into(),
        active: true,
        detail: detail.into(),
        toner_level_percent: None,
    }
}

/// A `SetCondition` request that clears `item` on `device`.
pub fn clear(device: &str, item: &str) -> printwatch_proto::v1::SetConditionRequest {
    printwatch_proto::v1::SetConditionRequest {
        device_id: device.into(),
        item: item.into(),
        active: false,
        ..Default::default()
    }
}

/// A `SetCondition` request that sets a simulated device's toner level.
pub fn toner(device: &str, level: i32) -> printwatch_proto::v1::SetConditionRequest {
    printwatch_proto::v1::SetConditionRequest {
        device_id: device.into(),
        toner_level_percent: Some(level),
        ..Default::default()
    }
}
