//! Header pieces every printwatch mail shares (alert mails and status
//! replies): header-safe text, `Auto-Submitted` (RFC 3834) and the
//! `X-Printwatch-Trace-Id` that leads from a mail to its trace.

use lettre::message::header::{Header, HeaderName, HeaderValue};

/// Text for a header: one line, no control characters, trimmed — so no
/// configured or received text can end a header and start another.
pub fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// `Auto-Submitted` (RFC 3834): auto-responders — and printwatch's own
/// inbox — must not answer these mails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoSubmitted {
    /// `auto-generated`: alert and recovery mails.
    Generated,
    /// `auto-replied`: status replies.
    Replied,
}

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(if s.trim().eq_ignore_ascii_case("auto-replied") {
            AutoSubmitted::Replied
        } else {
            AutoSubmitted::Generated
        })
    }
    fn display(&self) -> HeaderValue {
        let value = match self {
            AutoSubmitted::Generated => "auto-generated",
            AutoSubmitted::Replied => "auto-replied",
        };
        HeaderValue::new(Self::name(), value.to_owned())
    }
}

/// `X-Printwatch-Trace-Id`: the trace a mail belongs to.
#[derive(Debug, Clone)]
pub struct TraceId(String);

impl TraceId {
    /// A trace id made header-safe (printable ASCII, at most 200).
    pub fn new(id: &str) -> TraceId {
        TraceId(
            id.chars()
                .filter(|c| c.is_ascii_graphic())
                .take(200)
                .collect(),
        )
    }
}

impl Header for TraceId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Printwatch-Trace-Id")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(TraceId::new(s))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}
