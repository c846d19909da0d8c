//! The device status report: what `printwatch status` prints and what a
//! `requeststatus` reply carries, rendered in one place so both read the
//! same.

use std::fmt::Write as _;

use printwatch_proto::Timestamp;
use printwatch_proto::v1::{DeviceState, DeviceStatus};

use crate::catalog::{AlertItem, Language};

struct Labels {
    title: &'static str,
    id: &'static str,
    model: &'static str,
    serial: &'static str,
    location: &'static str,
    mail: &'static str,
    state: &'static str,
    conditions: &'static str,
    none: &'static str,
    since: &'static str,
    supplies: &'static str,
    trays: &'static str,
    protocols: &'static str,
    host: &'static str,
    ipv4: &'static str,
    ipv6: &'static str,
    mac: &'static str,
    enabled: &'static str,
    firmware: &'static str,
    read_at: &'static str,
    error: &'static str,
    unknown: &'static str,
}

const JA: Labels = Labels {
    title: "機器状態",
    id: "機器ID",
    model: "機種",
    serial: "製造番号",
    location: "設置場所",
    mail: "通知用メールアドレス",
    state: "状態",
    conditions: "発生中のアラート",
    none: "なし",
    since: "発生",
    supplies: "消耗品",
    trays: "給紙トレイ",
    protocols: "プロトコル設定",
    host: "ホスト名",
    ipv4: "IPv4アドレス",
    ipv6: "IPv6アドレス",
    mac: "MACアドレス",
    enabled: "有効なプロトコル",
    firmware: "ファームウェア",
    read_at: "取得時刻",
    error: "エラー",
    unknown: "不明",
};

const EN: Labels = Labels {
    title: "Device status",
    id: "Device ID",
    model: "Model",
    serial: "Serial number",
    location: "Location",
    mail: "Notification address",
    state: "State",
    conditions: "Active alerts",
    none: "none",
    since: "since",
    supplies: "Supplies",
    trays: "Paper trays",
    protocols: "Protocol settings",
    host: "Host name",
    ipv4: "IPv4 address",
    ipv6: "IPv6 address",
    mac: "MAC address",
    enabled: "Enabled protocols",
    firmware: "Firmware",
    read_at: "Read at",
    error: "Error",
    unknown: "unknown",
};

/// The overall state's name in `lang`.
pub fn state_label(state: DeviceState, lang: Language) -> &'static str {
    match (state, lang) {
        (DeviceState::Ready, Language::Ja) => "正常",
        (DeviceState::Warning, Language::Ja) => "警告",
        (DeviceState::Error, Language::Ja) => "エラー",
        (DeviceState::Unreachable, Language::Ja) => "応答なし",
        (_, Language::Ja) => "未取得",
        (DeviceState::Ready, Language::En) => "ready",
        (DeviceState::Warning, Language::En) => "warning",
        (DeviceState::Error, Language::En) => "error",
        (DeviceState::Unreachable, Language::En) => "unreachable",
        (_, Language::En) => "not read yet",
    }
}

/// A timestamp as RFC 3339 in UTC, or `-`.
pub fn format_time(ts: Option<&Timestamp>) -> String {
    ts.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".to_owned())
}

/// Renders the report as plain text lines.
pub fn render(status: &DeviceStatus, lang: Language) -> String {
    let l = match lang {
        Language::Ja => &JA,
        Language::En => &EN,
    };
    let mut out = String::new();
    let dev = status.device.clone().unwrap_or_default();
    let or = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    // Writing into a String cannot fail.
    let _ = writeln!(out, "{}: {}", l.title, or(&dev.name));
    let _ = writeln!(out, "{}: {}", l.id, dev.id);
    let _ = writeln!(out, "{}: {}", l.model, or(&dev.model));
    let _ = writeln!(out, "{}: {}", l.serial, or(&dev.serial));
    let _ = writeln!(out, "{}: {}", l.location, or(&dev.location));
    let _ = writeln!(out, "{}: {}", l.mail, or(&dev.mail_address));
    let state = DeviceState::try_from(status.state).unwrap_or(DeviceState::Unknown);
    let _ = writeln!(out, "{}: {}", l.state, state_label(state, lang));
    if !status.error.is_empty() {
        let _ = writeln!(out, "{}: {}", l.error, status.error);
    }
    let _ = writeln!(out, "\n{}:", l.conditions);
    if status.conditions.is_empty() {
        let _ = writeln!(out, "  {}", l.none);
    }
    for c in &status.conditions {
        let label = c
            .item
            .parse::<AlertItem>()
            .map_or(c.item.as_str(), |i| i.label(lang));
        let detail = if c.detail.is_empty() {
            String::new()
        } else {
            format!(" — {}", c.detail)
        };
        let _ = writeln!(
            out,
            "  - {label} [{}]{detail} ({} {})",
            c.item,
            l.since,
            format_time(c.since.as_ref())
        );
    }
    let _ = writeln!(out, "\n{}:", l.supplies);
    if status.supplies.is_empty() {
        let _ = writeln!(out, "  {}", l.none);
    }
    for s in &status.supplies {
        let level = if s.level_percent < 0 {
            l.unknown.to_owned()
        } else {
            format!("{}%", s.level_percent)
        };
        // The colour when the name does not already say it.
        let colour = s.color.trim();
        if colour.is_empty() || s.name.to_lowercase().contains(&colour.to_lowercase()) {
            let _ = writeln!(out, "  - {}: {level}", s.name);
        } else {
            let _ = writeln!(out, "  - {} ({colour}): {level}", s.name);
        }
    }
    let _ = writeln!(out, "\n{}:", l.trays);
    if status.trays.is_empty() {
        let _ = writeln!(out, "  {}", l.none);
    }
    for t in &status.trays {
        let level = if t.level_percent < 0 {
            l.unknown.to_owned()
        } else {
            format!("{}%", t.level_percent)
        };
        let _ = writeln!(
            out,
            "  - {} ({}): {}, {level}",
            t.name,
            or(&t.media),
            or(&t.state)
        );
    }
    let p = status.protocols.clone().unwrap_or_default();
    let _ = writeln!(out, "\n{}:", l.protocols);
    let _ = writeln!(out, "  {}: {}", l.host, or(&p.host_name));
    let _ = writeln!(out, "  {}: {}", l.ipv4, or(&p.ipv4_addresses.join(", ")));
    if !p.ipv6_addresses.is_empty() {
        let _ = writeln!(out, "  {}: {}", l.ipv6, p.ipv6_addresses.join(", "));
    }
    if !p.mac_address.is_empty() {
        let _ = writeln!(out, "  {}: {}", l.mac, p.mac_address);
    }
    let _ = writeln!(
        out,
        "  {}: {}",
        l.enabled,
        or(&p.enabled_protocols.join(", "))
    );
    if !status.firmware_version.is_empty() {
        let _ = writeln!(out, "  {}: {}", l.firmware, status.firmware_version);
    }
    let _ = writeln!(
        out,
        "\n{}: {}",
        l.read_at,
        format_time(status.read_at.as_ref())
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_proto::v1::{ActiveCondition, DeviceIdentity, ProtocolSettings, Supply};

    fn status() -> DeviceStatus {
        DeviceStatus {
            device: Some(DeviceIdentity {
                id: "p1".into(),
                name: "Lobby printer".into(),
                location: "1F lobby".into(),
                ..Default::default()
            }),
            state: DeviceState::Error as i32,
            conditions: vec![ActiveCondition {
                item: "paper_jam".into(),
                detail: "Tray 2".into(),
                since: Some(Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                event_id: "e1".into(),
            }],
            supplies: vec![
                Supply {
                    name: "Black toner".into(),
                    color: "black".into(),
                    level_percent: 42,
                    ..Default::default()
                },
                Supply {
                    name: "Toner C".into(),
                    color: "cyan".into(),
                    level_percent: 7,
                    ..Default::default()
                },
            ],
            protocols: Some(ProtocolSettings {
                host_name: "lobby".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_english_report_names_the_device_its_alerts_and_supplies() {
        let text = render(&status(), Language::En);
        assert!(text.contains("Device status: Lobby printer"), "{text}");
        assert!(text.contains("Location: 1F lobby"));
        assert!(text.contains("State: error"));
        assert!(
            text.contains("  - Paper jam [paper_jam] — Tray 2 (since 2023-11-14T22:13:20Z)"),
            "{text}"
        );
        assert!(text.contains("  - Black toner: 42%"), "{text}");
        assert!(text.contains("  - Toner C (cyan): 7%"), "{text}");
        assert!(text.contains("Host name: lobby"));
    }

    #[test]
    fn the_japanese_report_uses_the_catalog_labels() {
        let text = render(&status(), Language::Ja);
        assert!(text.contains("設置場所: 1F lobby"));
        assert!(text.contains("用紙づまり"));
        assert!(text.contains("状態: エラー"));
    }
}
