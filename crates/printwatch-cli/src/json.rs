//! JSON renderings of the agent's messages for `--json` (prost types have
//! no serde support, and the field names here are a stable CLI contract).

use printwatch_events::report::format_time;
use printwatch_proto::v1::{DeviceState, DeviceStatus};
use serde_json::{Value, json};

pub fn status(s: &DeviceStatus) -> Value {
    let dev = s.device.clone().unwrap_or_default();
    let p = s.protocols.clone().unwrap_or_default();
    let state = DeviceState::try_from(s.state).unwrap_or(DeviceState::Unknown);
    json!({
        "id": dev.id,
        "name": dev.name,
        "model": dev.model,
        "serial": dev.serial,
        "location": dev.location,
        "mail_address": dev.mail_address,
        "state": state.as_str_name().trim_start_matches("DEVICE_STATE_").to_lowercase(),
        "source": s.source,
        "error": s.error,
        "read_at": format_time(s.read_at.as_ref()),
        "conditions": s.conditions.iter().map(|c| json!({
            "item": c.item, "detail": c.detail, "since": format_time(c.since.as_ref()), "event_id": c.event_id,
        })).collect::<Vec<_>>(),
        "supplies": s.supplies.iter().map(|x| json!({
            "name": x.name, "kind": x.kind, "color": x.color, "level_percent": x.level_percent,
        })).collect::<Vec<_>>(),
        "trays": s.trays.iter().map(|t| json!({
            "name": t.name, "media": t.media, "state": t.state, "level_percent": t.level_percent,
        })).collect::<Vec<_>>(),
        "protocols": {
            "host_name": p.host_name,
            "ipv4_addresses": p.ipv4_addresses,
            "ipv6_addresses": p.ipv6_addresses,
            "enabled_protocols": p.enabled_protocols,
        },
        "firmware_version": s.firmware_version,
    })
}
