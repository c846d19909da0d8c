//! The commands that talk to an agent over gRPC.

use std::time::Duration;

use printwatch_events::report;
use printwatch_events::{AlertItem, Language};
use printwatch_proto::v1::device_agent_client::DeviceAgentClient;
use printwatch_proto::v1::{
    DeviceState, GetDeviceStatusRequest, ListDevicesRequest, SetConditionRequest,
};
use tonic::Code;
use tonic::transport::{Channel, Endpoint};

use crate::Failure;
use crate::json;

pub type Client = DeviceAgentClient<Channel>;

/// Connects to the agent, naming the URL when it cannot.
pub async fn connect(url: &str) -> Result<Client, Failure> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|e| Failure::new(format!("bad agent URL `{url}`: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(90));
    let channel = endpoint.connect().await.map_err(|e| {
        Failure::new(format!(
            "cannot reach the agent at {url}: {}",
            source_chain(&e)
        ))
    })?;
    Ok(DeviceAgentClient::new(channel))
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        text.push_str(": ");
        text.push_str(&s.to_string());
        cur = s.source();
    }
    text
}

fn failure(status: tonic::Status) -> Failure {
    let what = match status.code() {
        Code::NotFound => "not found",
        Code::Unavailable => "unavailable",
        Code::InvalidArgument => "invalid argument",
        Code::FailedPrecondition => "not possible",
        Code::DeadlineExceeded => "timed out",
        _ => "agent error",
    };
    Failure::new(format!("{what}: {}", status.message()))
}

pub async fn devices(client: &mut Client, as_json: bool, lang: Language) -> Result<(), Failure> {
    let list = client
        .list_devices(ListDevicesRequest {})
        .await
        .map_err(failure)?
        .into_inner();
    if as_json {
        let devices: Vec<_> = list.devices.iter().map(json::status).collect();
        println!("{}", serde_json::Value::Array(devices));
        return Ok(());
    }
    println!(
        "{} {} {} ACTIVE",
        pad("DEVICE", 20),
        pad("STATE", 10),
        pad("LOCATION", 26)
    );
    for d in &list.devices {
        let dev = d.device.clone().unwrap_or_default();
        let state = report::state_label(
            DeviceState::try_from(d.state).unwrap_or(DeviceState::Unknown),
            lang,
        );
        let active: Vec<&str> = d.conditions.iter().map(|c| c.item.as_str()).collect();
        let active = if active.is_empty() {
            "-".to_owned()
        } else {
            active.join(",")
        };
        println!(
            "{} {} {} {active}",
            pad(&dev.id, 20),
            pad(state, 10),
            pad(&dev.location, 26)
        );
    }
    Ok(())
}

pub async fn status(
    client: &mut Client,
    device: &str,
    as_json: bool,
    lang: Language,
) -> Result<(), Failure> {
    let status = client
        .get_device_status(GetDeviceStatusRequest {
            device_id: device.to_owned(),
        })
        .await
        .map_err(failure)?
        .into_inner();
    if as_json {
        println!("{}", json::status(&status));
    } else {
        print!("{}", report::render(&status, lang));
    }
    Ok(())
}

/// A change to a simulated device.
pub enum Change {
    Raise { item: String, detail: String },
    Clear { item: String },
    Toner(i32),
}

pub async fn set(
    client: &mut Client,
    device: &str,
    change: Change,
    as_json: bool,
) -> Result<(), Failure> {
    let mut req = SetConditionRequest {
        device_id: device.to_owned(),
        ..Default::default()
    };
    let what = match &change {
        Change::Raise { item, detail } => {
            check_item(item)?;
            req.item.clone_from(item);
            req.active = true;
            req.detail.clone_from(detail);
            format!("raised {item} on {device}")
        }
        Change::Clear { item } => {
            check_item(item)?;
            req.item.clone_from(item);
            format!("cleared {item} on {device}")
        }
        Change::Toner(level) => {
            req.toner_level_percent = Some(*level);
            format!("set the toner of {device} to {level}%")
        }
    };
    let resp = client
        .set_condition(req)
        .await
        .map_err(failure)?
        .into_inner();
    if as_json {
        let status = resp
            .status
            .as_ref()
            .map(json::status)
            .unwrap_or(serde_json::Value::Null);
        println!(
            "{}",
            serde_json::json!({"changed": resp.changed, "status": status})
        );
    } else if resp.changed {
        println!("{what}: the active conditions changed");
    } else {
        println!("{what}: no change in the active conditions");
    }
    Ok(())
}

fn check_item(item: &str) -> Result<(), Failure> {
    item.parse::<AlertItem>()
        .map(|_| ())
        .map_err(|e| Failure::new(e.to_string()))
}

/// `text` padded with spaces to `columns` terminal columns; Japanese
/// labels take two columns a character, so `{:<N}` would misalign them.
fn pad(text: &str, columns: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    let width = text.width();
    format!("{text}{}", " ".repeat(columns.saturating_sub(width)))
}
