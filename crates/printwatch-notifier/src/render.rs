//! The alert mail of SPEC §1.1: subject exactly `アラート発生通知:` /
//! `アラート復旧通知:` + what occurred (`Alert occurred: ` / `Alert
//! recovered: ` in English), and a UTF-8 text body with what happened and
//! when, the device, its protocol settings, the common bodies and — for
//! the service-call messages — the line telling the reader to call the
//! service provider.
//!
//! The message is built with lettre's builder, which RFC 2047-encodes the
//! subject. Every text that reaches a header is first made one line with no
//! control characters, so neither the config nor a device can add a header.
//! The same event always renders to the same mail (Message-ID from the
//! event id, Date from the time it was observed), so a retry sends the very
//! mail a first attempt may have sent, and a recovery mail threads to its
//! occurrence with `In-Reply-To` / `References`.

use std::fmt::Write as _;

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use printwatch_events::catalog::service_call_message;
use printwatch_events::report::format_time;
use printwatch_events::{AlertItem, CheckedEvent, Language, TransitionKind};
pub use printwatch_smtp::headers::header_text;
use printwatch_smtp::headers::{AutoSubmitted, TraceId};

/// Why a mail could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid {what} address {address:?}: {reason}")]
    Address {
        what: &'static str,
        address: String,
        reason: String,
    },
    #[error("cannot build the mail: {0}")]
    Build(#[from] lettre::error::Error),
}

/// What the config adds to every mail.
#[derive(Debug, Clone, Default)]
pub struct Extras<'a> {
    pub language: Language,
    /// `[alerts] common_body` (共通本文).
    pub common_body: &'a str,
    /// The device's own `common_body`, after the common one.
    pub device_body: Option<&'a str>,
    /// `Reply-To:`, the administrator (`[mail] admin_address`).
    pub reply_to: Option<&'a str>,
}

/// The subject: the manual's prefix and the item's label.
pub fn subject(item: AlertItem, transition: TransitionKind, lang: Language) -> String {
    let prefix = match (transition, lang) {
        (TransitionKind::Occurred, Language::Ja) => "アラート発生通知:",
        (TransitionKind::Recovered, Language::Ja) => "アラート復旧通知:",
        (TransitionKind::Occurred, Language::En) => "Alert occurred: ",
        (TransitionKind::Recovered, Language::En) => "Alert recovered: ",
    };
    format!("{prefix}{}", item.label(lang))
}

/// Whether the body must tell the reader to call the service provider: a
/// service call, or a device message of the manual's service-call list.
pub fn needs_service_provider(ev: &CheckedEvent) -> bool {
    ev.item == AlertItem::ServiceCall || service_call_message(&ev.event.detail).is_some()
}

struct Words {
    occurred: &'static str,
    recovered: &'static str,
    alert: &'static str,
    detail: &'static str,
    began: &'static str,
    cleared: &'static str,
    call: &'static str,
    device: &'static str,
    name: &'static str,
    id: &'static str,
    model: &'static str,
    serial: &'static str,
    location: &'static str,
    mail: &'static str,
    protocols: &'static str,
    host: &'static str,
    ipv4: &'static str,
    ipv6: &'static str,
    enabled: &'static str,
    mac: &'static str,
}

const JA: Words = Words {
    occurred: "次のアラートが発生しました。",
    recovered: "次のアラートが復旧しました。",
    alert: "アラート",
    detail: "詳細",
    began: "発生日時",
    cleared: "復旧日時",
    call: "サービス実施店に連絡してください。",
    device: "機器情報",
    name: "機器名",
    id: "機器ID",
    model: "機種",
    serial: "製造番号",
    location: "設置場所",
    mail: "通知用メールアドレス",
    protocols: "プロトコル設定",
    host: "ホスト名",
    ipv4: "IPv4アドレス",
    ipv6: "IPv6アドレス",
    enabled: "有効なプロトコル",
    mac: "MACアドレス",
};

const EN: Words = Words {
    occurred: "The following alert occurred.",
    recovered: "The following alert has recovered.",
    alert: "Alert",
    detail: "Detail",
    began: "Occurred at",
    cleared: "Recovered at",
    call: "Call your service provider.",
    device: "Device",
    name: "Name",
    id: "Device ID",
    model: "Model",
    serial: "Serial number",
    location: "Location",
    mail: "Notification address",
    protocols: "Protocol settings",
    host: "Host name",
    ipv4: "IPv4 address",
    ipv6: "IPv6 address",
    enabled: "Enabled protocols",
    mac: "MAC address",
};

/// The text body.
pub fn body(ev: &CheckedEvent, extras: &Extras<'_>) -> String {
    let w = match extras.language {
        Language::Ja => &JA,
        Language::En => &EN,
    };
    let e = &ev.event;
    let or = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            body_line(s)
        }
    };
    let mut out = String::new();
    // Writing into a String cannot fail.
    let intro = match ev.transition {
        TransitionKind::Occurred => w.occurred,
        TransitionKind::Recovered => w.recovered,
    };
    let _ = writeln!(out, "{intro}\n");
    let _ = writeln!(
        out,
        "{}: {} [{}]",
        w.alert,
        ev.item.label(extras.language),
        ev.item.key()
    );
    if !e.detail.trim().is_empty() {
        let _ = writeln!(out, "{}: {}", w.detail, body_line(&e.detail));
    }
    match ev.transition {
        TransitionKind::Occurred => {
            let _ = writeln!(out, "{}: {}", w.began, format_time(e.observed_at.as_ref()));
        }
        TransitionKind::Recovered => {
            if e.began_at.is_some() {
                let _ = writeln!(out, "{}: {}", w.began, format_time(e.began_at.as_ref()));
            }
            let _ = writeln!(
                out,
                "{}: {}",
                w.cleared,
                format_time(e.observed_at.as_ref())
            );
        }
    }
    if ev.transition == TransitionKind::Occurred && needs_service_provider(ev) {
        let _ = writeln!(out, "\n{}", w.call);
    }
    let d = e.device.clone().unwrap_or_default();
    let _ = writeln!(out, "\n{}:", w.device);
    let _ = writeln!(out, "  {}: {}", w.name, or(&d.name));
    let _ = writeln!(out, "  {}: {}", w.id, or(&d.id));
    let _ = writeln!(out, "  {}: {}", w.model, or(&d.model));
    let _ = writeln!(out, "  {}: {}", w.serial, or(&d.serial));
    let _ = writeln!(out, "  {}: {}", w.location, or(&d.location));
    if !d.mail_address.is_empty() {
        let _ = writeln!(out, "  {}: {}", w.mail, body_line(&d.mail_address));
    }
    let p = e.protocols.clone().unwrap_or_default();
    let _ = writeln!(out, "\n{}:", w.protocols);
    let _ = writeln!(out, "  {}: {}", w.host, or(&p.host_name));
    let _ = writeln!(out, "  {}: {}", w.ipv4, or(&p.ipv4_addresses.join(", ")));
    let _ = writeln!(out, "  {}: {}", w.ipv6, or(&p.ipv6_addresses.join(", ")));
    let _ = writeln!(
        out,
        "  {}: {}",
        w.enabled,
        or(&p.enabled_protocols.join(", "))
    );
    if !p.mac_address.is_empty() {
        let _ = writeln!(out, "  {}: {}", w.mac, body_line(&p.mac_address));
    }
    for extra in [extras.common_body, extras.device_body.unwrap_or_default()] {
        let extra = body_text(extra);
        if !extra.trim().is_empty() {
            let _ = writeln!(out, "\n{}", extra.trim_end());
        }
    }
    out
}

/// The whole mail, ready for SMTP DATA.
pub fn message(
    ev: &CheckedEvent,
    from: &str,
    to: &[String],
    extras: &Extras<'_>,
    trace_id: Option<&str>,
) -> Result<Vec<u8>, RenderError> {
    let from_box: Mailbox =
        from.parse()
            .map_err(|e: lettre::address::AddressError| RenderError::Address {
                what: "sender",
                address: from.to_owned(),
                reason: e.to_string(),
            })?;
    let domain = from_box.email.domain().to_owned();
    let e = &ev.event;
    let mut builder = Message::builder()
        .from(from_box)
        .subject(header_text(&subject(
            ev.item,
            ev.transition,
            extras.language,
        )))
        .date(printwatch_events::event::to_system_time(
            e.observed_at.as_ref(),
        ))
        .message_id(Some(message_id(&e.event_id, &domain)))
        .header(AutoSubmitted::Generated)
        .header(PrintwatchHeader::event_id(&e.event_id))
        .header(PrintwatchHeader::device(&e.device_id))
        .header(PrintwatchHeader::item(ev.item.key()))
        .header(ContentType::TEXT_PLAIN);
    for rcpt in to {
        let mbox: Mailbox =
            rcpt.parse()
                .map_err(|e: lettre::address::AddressError| RenderError::Address {
                    what: "recipient",
                    address: rcpt.clone(),
                    reason: e.to_string(),
                })?;
        builder = builder.to(mbox);
    }
    if let Some(id) = trace_id {
        builder = builder.header(TraceId::new(id));
    }
    if let Some(reply_to) = extras.reply_to {
        let mbox: Mailbox = reply_to
            .parse()
            .map_err(|e: lettre::address::AddressError| RenderError::Address {
                what: "Reply-To",
                address: reply_to.to_owned(),
                reason: e.to_string(),
            })?;
        builder = builder.reply_to(mbox);
    }
    if ev.transition == TransitionKind::Recovered && !e.occurred_event_id.is_empty() {
        let parent = message_id(&e.occurred_event_id, &domain);
        builder = builder.in_reply_to(parent.clone()).references(parent);
    }
    let mail = builder.body(body(ev, extras))?;
    Ok(mail.formatted())
}

/// `<event-id@domain>`: the same for every attempt at one event, and what a
/// recovery mail's `In-Reply-To` names.
pub fn message_id(event_id: &str, domain: &str) -> String {
    let id: String = event_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        .collect();
    format!("<{id}.printwatch@{domain}>")
}

/// Text for one body line: no line breaks or other control characters.
fn body_line(s: &str) -> String {
    header_text(s)
}

/// Text for a body block: line breaks and tabs kept, other control
/// characters (and bare CR) dropped.
fn body_text(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

macro_rules! text_header {
    ($ty:ident, $name:literal) => {
        /// A printwatch header naming what the mail is about, for mail
        /// filters and for tracing a mail back to its event.
        #[derive(Debug, Clone)]
        pub struct $ty(String);
        impl Header for $ty {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }
            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($ty(header_text(s)))
            }
            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(EventIdHeader, "X-Printwatch-Event-Id");
text_header!(DeviceHeader, "X-Printwatch-Device");
text_header!(ItemHeader, "X-Printwatch-Item");

/// Constructors of the printwatch headers, each value made header-safe.
pub struct PrintwatchHeader;

impl PrintwatchHeader {
    pub fn event_id(v: &str) -> EventIdHeader {
        EventIdHeader(ascii_token(v))
    }
    pub fn device(v: &str) -> DeviceHeader {
        DeviceHeader(ascii_token(v))
    }
    pub fn item(v: &str) -> ItemHeader {
        ItemHeader(ascii_token(v))
    }
}

fn ascii_token(v: &str) -> String {
    v.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_events::EventBuilder;
    use printwatch_proto::v1::{DeviceIdentity, ProtocolSettings};
    use std::time::SystemTime;

    fn builder() -> EventBuilder {
        EventBuilder {
            agent: "http://agent:50051".into(),
            device: DeviceIdentity {
                id: "lobby-1".into(),
                name: "Lobby printer".into(),
                model: "RICOH IP C6020".into(),
                serial: "C6020-0001".into(),
                location: "Building A, 1F".into(),
                mail_address: "lobby-1@printers.example.test".into(),
            },
            protocols: ProtocolSettings {
                host_name: "lobby-1.example.test".into(),
                ipv4_addresses: vec!["192.0.2.11".into()],
                ipv6_addresses: vec!["2001:db8::11".into()],
                enabled_protocols: vec!["IPP".into(), "SNMPv2c".into()],
                mac_address: "00:00:74:12:34:56".into(),
            },
        }
    }

    fn checked(ev: printwatch_events::AlertEvent) -> CheckedEvent {
        printwatch_events::event::decode(&printwatch_events::event::encode(&ev)).unwrap()
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn subjects_are_the_manuals_exactly() {
        assert_eq!(
            subject(AlertItem::PaperJam, TransitionKind::Occurred, Language::Ja),
            format!(
                "アラート発生通知:{}",
                AlertItem::PaperJam.label(Language::Ja)
            )
        );
        assert_eq!(
            subject(AlertItem::PaperJam, TransitionKind::Recovered, Language::En),
            format!(
                "Alert recovered: {}",
                AlertItem::PaperJam.label(Language::En)
            )
        );
    }

    #[test]
    fn the_body_names_what_when_the_device_and_its_protocols() {
        let ev = checked(builder().occurred(AlertItem::PaperJam, "Tray 2", SystemTime::now()));
        let extras = Extras {
            common_body: "Call desk 1234.",
            device_body: Some("Spare paper: cabinet"),
            ..Default::default()
        };
        let b = body(&ev, &extras);
        for want in [
            "用紙",
            "Tray 2",
            "Lobby printer",
            "Building A, 1F",
            "RICOH IP C6020",
            "C6020-0001",
            "lobby-1.example.test",
            "192.0.2.11",
            "2001:db8::11",
            "IPP, SNMPv2c",
            "Call desk 1234.",
            "Spare paper: cabinet",
        ] {
            assert!(b.contains(want), "{want:?} missing from:\n{b}");
        }
        assert!(
            !b.contains(JA.call),
            "a paper jam is not a service call:\n{b}"
        );
    }

    #[test]
    fn service_call_messages_tell_the_reader_to_call_the_service_provider() {
        for detail in [
            "Tray 3 error",
            "トレイ1エラーです",
            "hdd_board_error",
            "USB error",
        ] {
            let ev = checked(builder().occurred(AlertItem::TrayError, detail, SystemTime::now()));
            assert!(body(&ev, &Extras::default()).contains(JA.call), "{detail}");
        }
        let ev = checked(builder().occurred(AlertItem::ServiceCall, "SC542", SystemTime::now()));
        let en = Extras {
            language: Language::En,
            ..Default::default()
        };
        assert!(body(&ev, &en).contains(EN.call));
    }

    #[test]
    fn a_recovery_threads_to_its_occurrence() {
        let b = builder();
        let at = SystemTime::now();
        let occurred = b.occurred(AlertItem::CoverOpen, "Front cover", at);
        let recovered = checked(b.recovered(
            AlertItem::CoverOpen,
            "Front cover",
            at,
            &occurred.event_id,
            at,
        ));
        let mail = text(
            &message(
                &recovered,
                "lobby-1@printers.example.test",
                &["a@example.test".into()],
                &Extras::default(),
                None,
            )
            .unwrap(),
        );
        let parent = message_id(&occurred.event_id, "printers.example.test");
        assert!(mail.contains(&format!("In-Reply-To: {parent}")), "{mail}");
        assert!(mail.contains(&format!("References: {parent}")), "{mail}");
        assert!(mail.contains("Auto-Submitted: auto-generated"), "{mail}");
        assert!(
            mail.contains(&format!(
                "Message-ID: {}",
                message_id(&recovered.event.event_id, "printers.example.test")
            )),
            "{mail}"
        );
    }

    #[test]
    fn no_text_can_add_a_header() {
        let mut ev = builder().occurred(
            AlertItem::PaperJam,
            "x\r\nBcc: evil@example.test",
            SystemTime::now(),
        );
        ev.device_id = "lobby-1\r\nBcc: evil@example.test".into();
        let ev = CheckedEvent {
            event: ev,
            item: AlertItem::PaperJam,
            transition: TransitionKind::Occurred,
        };
        let extras = Extras {
            common_body: "ok\r\nBcc: evil@example.test\r\n",
            ..Default::default()
        };
        let mail = text(
            &message(
                &ev,
                "p@example.test",
                &["a@example.test".into()],
                &extras,
                None,
            )
            .unwrap(),
        );
        let head = mail.split("\r\n\r\n").next().unwrap();
        assert!(
            !head
                .lines()
                .any(|l| l.to_ascii_lowercase().starts_with("bcc:")),
            "{head}"
        );
        assert!(
            message(
                &ev,
                "p@example.test\r\nBcc: x@example.test",
                &[],
                &extras,
                None
            )
            .is_err()
        );
    }
}
