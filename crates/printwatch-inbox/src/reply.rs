//! The reply to a `requeststatus` mail (SPEC §1.3): To the request's From,
//! Subject `[on_demand] common_subject` + the status subject, a body of
//! `common_body` and the same report `printwatch status` prints, threaded
//! to the request, and marked `Auto-Submitted: auto-replied` so that no
//! auto-responder answers it back.

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use printwatch_events::Language;
use printwatch_proto::v1::DeviceStatus;
use printwatch_smtp::headers::{AutoSubmitted, TraceId, header_text};

/// Why a reply could not be built (an address that does not parse).
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("invalid {what} address {address:?}")]
    Address { what: &'static str, address: String },
    #[error("cannot build the reply: {0}")]
    Build(#[from] lettre::error::Error),
}

/// The status subject after the common subject.
pub fn status_subject(status: &DeviceStatus, lang: Language) -> String {
    let d = status.device.clone().unwrap_or_default();
    let name = if d.name.is_empty() { d.id } else { d.name };
    match lang {
        Language::Ja => format!("機器状態通知:{name}"),
        Language::En => format!("Device status: {name}"),
    }
}

/// Everything the reply is made of.
pub struct ReplyParts<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub common_subject: &'a str,
    pub common_body: &'a str,
    pub language: Language,
    /// The request's Message-ID (`<…>`), and its References.
    pub in_reply_to: Option<&'a str>,
    pub references: &'a [String],
    /// A stable id for this reply (the same for every attempt).
    pub reply_id: &'a str,
    /// The trace this reply belongs to, as `X-Printwatch-Trace-Id`.
    pub trace_id: Option<&'a str>,
}

pub fn message(status: &DeviceStatus, p: &ReplyParts<'_>) -> Result<Vec<u8>, ReplyError> {
    let from: Mailbox = p.from.parse().map_err(|_| ReplyError::Address {
        what: "sender",
        address: p.from.to_owned(),
    })?;
    let to: Mailbox = p.to.parse().map_err(|_| ReplyError::Address {
        what: "recipient",
        address: p.to.to_owned(),
    })?;
    let domain = from.email.domain().to_owned();
    let subject = header_text(&format!(
        "{}{}",
        p.common_subject,
        status_subject(status, p.language)
    ));
    let mut body = String::new();
    let common = p.common_body.trim_end();
    if !common.is_empty() {
        body.push_str(common);
        body.push_str("\n\n");
    }
    body.push_str(&printwatch_events::report::render(status, p.language));
    let mut b = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date_now()
        .message_id(Some(format!(
            "<{}.reply.printwatch@{domain}>",
            token(p.reply_id)
        )))
        .header(AutoSubmitted::Replied)
        .header(ContentType::TEXT_PLAIN);
    if let Some(id) = p.trace_id {
        b = b.header(TraceId::new(id));
    }
    if let Some(parent) = p.in_reply_to.filter(|m| is_msg_id(m)) {
        let mut refs: Vec<&str> = p
            .references
            .iter()
            .map(String::as_str)
            .filter(|r| is_msg_id(r))
            .collect();
        refs.push(parent);
        b = b.in_reply_to(parent.to_owned()).references(refs.join(" "));
    }
    Ok(b.body(body)?.formatted())
}

/// `<…>` with nothing that could break a header.
fn is_msg_id(s: &str) -> bool {
    s.len() <= 998
        && s.starts_with('<')
        && s.ends_with('>')
        && s.chars().all(|c| c.is_ascii_graphic())
}

fn token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use printwatch_proto::v1::DeviceIdentity;

    #[test]
    fn the_reply_threads_to_the_request_and_is_marked_auto_replied() {
        let status = DeviceStatus {
            device: Some(DeviceIdentity {
                id: "p1".into(),
                name: "Lobby".into(),
                location: "1F".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let refs = vec!["<a@x>".to_owned(), "bad\r\nBcc: x@y".to_owned()];
        let m = message(
            &status,
            &ReplyParts {
                from: "p1@printers.test",
                to: "ops@example.test",
                common_subject: "[printwatch] ",
                common_body: "Questions: desk 1234",
                language: Language::En,
                in_reply_to: Some("<req@example.test>"),
                references: &refs,
                reply_id: "abc",
                trace_id: Some("0123456789abcdef0123456789abcdef"),
            },
        )
        .unwrap();
        let text = String::from_utf8(m).unwrap();
        assert!(text.contains("In-Reply-To: <req@example.test>"), "{text}");
        assert!(
            text.contains("References: <a@x> <req@example.test>"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(
            text.contains("Subject: [printwatch] Device status: Lobby"),
            "{text}"
        );
        assert!(!text.to_ascii_lowercase().contains("bcc:"), "{text}");
    }
}
