//! Finding the agent that owns a device (the `printwatch_devices` registry
//! the agents keep) and asking it for the device's status over gRPC.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::kv;
use printwatch_proto::v1::device_agent_client::DeviceAgentClient;
use printwatch_proto::v1::{DeviceStatus, GetDeviceStatusRequest};
use tonic::transport::{Channel, Endpoint};

/// Why no status could be had now; the request waits and is tried again.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("no agent has registered device {0} yet")]
    Unregistered(String),
    #[error("the device registry cannot be read: {0}")]
    Registry(String),
    #[error("the agent at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the agent has not read the device yet (UNAVAILABLE): {0}")]
    NotReady(String),
    #[error("the agent answered {code:?}: {message}")]
    Agent { code: tonic::Code, message: String },
}

/// The agents, found through the registry; one channel per agent URL.
pub struct Agents {
    registry: kv::Store,
    channels: Mutex<HashMap<String, Channel>>,
    timeout: Duration,
}

impl Agents {
    pub fn new(registry: kv::Store, timeout: Duration) -> Agents {
        Agents {
            registry,
            channels: Mutex::new(HashMap::new()),
            timeout,
        }
    }

    /// The URL of the agent that registered `device_id`.
    pub async fn url_of(&self, device_id: &str) -> Result<String, StatusError> {
        let value = self
            .registry
            .get(device_id)
            .await
            .map_err(|e| StatusError::Registry(e.to_string()))?
            .ok_or_else(|| StatusError::Unregistered(device_id.to_owned()))?;
        let record: serde_json::Value = serde_json::from_slice(&value)
            .map_err(|e| StatusError::Registry(format!("record of {device_id}: {e}")))?;
        record
            .get("agent")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| StatusError::Registry(format!("record of {device_id} names no agent")))
    }

    fn channel(&self, url: &str) -> Result<Channel, StatusError> {
        if let Ok(map) = self.channels.lock()
            && let Some(c) = map.get(url)
        {
            return Ok(c.clone());
        }
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| StatusError::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(self.timeout)
            .timeout(self.timeout);
        let channel = endpoint.connect_lazy();
        if let Ok(mut map) = self.channels.lock() {
            map.insert(url.to_owned(), channel.clone());
        }
        Ok(channel)
    }

    /// The status of `device_id` from its agent.
    pub async fn status(&self, device_id: &str) -> Result<DeviceStatus, StatusError> {
        let url = self.url_of(device_id).await?;
        let mut client = DeviceAgentClient::new(self.channel(&url)?);
        let mut request = tonic::Request::new(GetDeviceStatusRequest {
            device_id: device_id.to_owned(),
        });
        // The request's trace continues in the agent.
        printwatch_runtime::trace::inject(|k, v| {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(k.as_bytes()),
                tonic::metadata::MetadataValue::try_from(v.as_str()),
            ) {
                request.metadata_mut().insert(key, value);
            }
        });
        match client.get_device_status(request).await {
            Ok(r) => Ok(r.into_inner()),
            Err(s)
                if s.code() == tonic::Code::Unavailable
                    && s.message().contains("not")
                    && !s.message().contains("transport") =>
            {
                Err(StatusError::NotReady(s.message().to_owned()))
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown
                ) =>
            {
                Err(StatusError::Unreachable {
                    url,
                    reason: s.message().to_owned(),
                })
            }
            Err(s) => Err(StatusError::Agent {
                code: s.code(),
                message: s.message().to_owned(),
            }),
        }
    }
}
