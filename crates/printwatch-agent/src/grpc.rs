//! The `DeviceAgent` gRPC service (SPEC §3.3).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use printwatch_events::{AlertItem, Severity};
use printwatch_proto::Timestamp;
use printwatch_proto::v1::device_agent_server::DeviceAgent;
use printwatch_proto::v1::{
    ActiveCondition, DeviceIdentity, DeviceState, DeviceStatus, GetDeviceStatusRequest,
    ListDevicesRequest, ListDevicesResponse, SetConditionRequest, SetConditionResponse,
};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use crate::device::{Command, DeviceHandle, Snapshot};
use crate::source::{SimChange, SourceError};

/// The longest detail text a caller may set (it ends up in mail bodies).
const MAX_DETAIL_CHARS: usize = 1000;

/// One device as the service sees it.
pub struct Device {
    pub identity: DeviceIdentity,
    pub handle: DeviceHandle,
}

/// The service: the agent's devices by id.
#[derive(Clone)]
pub struct AgentService {
    devices: Arc<BTreeMap<String, Device>>,
}

impl AgentService {
    pub fn new(devices: BTreeMap<String, Device>) -> AgentService {
        AgentService {
            devices: Arc::new(devices),
        }
    }

    fn device(&self, id: &str) -> Result<&Device, Status> {
        self.devices
            .get(id)
            .ok_or_else(|| Status::not_found(format!("no device `{id}` on this agent")))
    }
}

/// Builds the status report of a device from its snapshot.
pub fn status_of(device: &Device, snap: &Snapshot) -> DeviceStatus {
    let conditions = snap
        .record
        .active
        .iter()
        .map(|(item, a)| ActiveCondition {
            item: item.key().to_owned(),
            detail: a.detail.clone(),
            since: Some(Timestamp::from(a.since())),
            event_id: a.event_id.clone(),
        })
        .collect();
    let state = if snap.error.is_some() {
        DeviceState::Unreachable
    } else if snap.reading.is_none() {
        DeviceState::Unknown
    } else {
        match snap.record.active.keys().map(|i| i.severity()).max() {
            Some(Severity::Error) => DeviceState::Error,
            Some(Severity::Warning) => DeviceState::Warning,
            None => DeviceState::Ready,
        }
    };
    let reading = snap.reading.clone().unwrap_or_default();
    DeviceStatus {
        device: Some(device.identity.clone()),
        state: state as i32,
        conditions,
        supplies: reading.supplies,
        trays: reading.trays,
        protocols: Some(reading.protocols),
        read_at: snap.read_at.map(Timestamp::from),
        source: device.handle.source_kind.to_owned(),
        error: snap.error.clone().unwrap_or_default(),
        firmware_version: reading.firmware_version,
    }
}

#[tonic::async_trait]
impl DeviceAgent for AgentService {
    async fn get_device_status(
        &self,
        request: Request<GetDeviceStatusRequest>,
    ) -> Result<Response<DeviceStatus>, Status> {
        // The caller's trace (an inbox answering a request) continues here
        // through the gRPC metadata.
        let meta = |k: &str| {
            request
                .metadata()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let span = tracing::info_span!(
            parent: None,
            "GetDeviceStatus",
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = "printwatch.v1.DeviceAgent",
            rpc.method = "GetDeviceStatus",
            printwatch.device.id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        printwatch_runtime::trace::set_parent(
            &span,
            printwatch_runtime::trace::extract(
                meta("traceparent").as_deref(),
                meta("tracestate").as_deref(),
            ),
        );
        printwatch_runtime::trace::record_trace_id(&span);
        let _entered = span.enter();
        let id = request.into_inner().device_id;
        span.record("printwatch.device.id", id.as_str());
        let device = self.device(&id)?;
        let snap = device.handle.snapshot.borrow().clone();
        if snap.reading.is_none() {
            return Err(Status::unavailable(format!(
                "device `{id}` has not been read yet; try again shortly"
            )));
        }
        Ok(Response::new(status_of(device, &snap)))
    }

    async fn list_devices(
        &self,
        _: Request<ListDevicesRequest>,
    ) -> Result<Response<ListDevicesResponse>, Status> {
        let devices = self
            .devices
            .values()
            .map(|d| status_of(d, &d.handle.snapshot.borrow()))
            .collect();
        Ok(Response::new(ListDevicesResponse { devices }))
    }

    async fn set_condition(
        &self,
        request: Request<SetConditionRequest>,
    ) -> Result<Response<SetConditionResponse>, Status> {
        let req = request.into_inner();
        let device = self.device(&req.device_id)?;
        let change = match req.toner_level_percent {
            Some(level) => {
                let level = u8::try_from(level)
                    .ok()
                    .filter(|l| *l <= 100)
                    .ok_or_else(|| {
                        Status::invalid_argument("toner_level_percent must be 0 to 100")
                    })?;
                SimChange::TonerLevel(level)
            }
            None => {
                let item: AlertItem =
                    req.item
                        .parse()
                        .map_err(|e: printwatch_events::UnknownItem| {
                            Status::invalid_argument(e.to_string())
                        })?;
                if req.active {
                    if req.detail.chars().count() > MAX_DETAIL_CHARS || req.detail.contains('\0') {
                        return Err(Status::invalid_argument(format!(
                            "detail must be at most {MAX_DETAIL_CHARS} characters without NUL"
                        )));
                    }
                    SimChange::Raise {
                        item,
                        detail: req.detail,
                    }
                } else {
                    SimChange::Clear { item }
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        device
            .handle
            .commands
            .send(Command::Simulate { change, reply })
            .await
            .map_err(|_| Status::unavailable("the agent is shutting down"))?;
        let changed = tokio::time::timeout(Duration::from_secs(60), answer)
            .await
            .map_err(|_| Status::deadline_exceeded("the device did not answer in time"))?
            .map_err(|_| Status::unavailable("the agent is shutting down"))?
            .map_err(|e| match e {
                SourceError::Unsupported(m) => Status::failed_precondition(m),
                SourceError::NotReady(m) => Status::unavailable(m),
                SourceError::Unreachable(m) => Status::unavailable(m),
            })?;
        let status = status_of(device, &device.handle.snapshot.borrow());
        Ok(Response::new(SetConditionResponse {
            changed,
            status: Some(status),
        }))
    }
}
