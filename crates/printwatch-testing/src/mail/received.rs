//! A message read back from a mailbox of the bed.

use std::borrow::Cow;
use std::fmt;

use anyhow::{Context, Result};
use mail_parser::{Message, MessageParser};

/// A received message: the raw bytes as stored by Dovecot (including the
/// `Return-Path`/`Delivered-To`/`Received` headers added on the way) and
/// the parsed view of them.
#[derive(Clone)]
pub struct ReceivedMail {
    /// The message exactly as the mailbox holds it.
    pub raw: Vec<u8>,
    message: Message<'static>,
}

impl fmt::Debug for ReceivedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedMail")
            .field("subject", &self.subject())
            .field("from", &self.from())
            .field("to", &self.to())
            .field("raw", &self.raw_text())
            .finish()
    }
}

impl ReceivedMail {
    /// Parses `raw` with mail-parser.
    pub fn parse(raw: Vec<u8>) -> Result<ReceivedMail> {
        let message = MessageParser::default()
            .parse(&raw)
            .map(Message::into_owned)
            .with_context(|| {
                format!(
                    "mail-parser could not parse a {}-byte message: {:?}",
                    raw.len(),
                    String::from_utf8_lossy(&raw[..raw.len().min(200)])
                )
            })?;
        Ok(ReceivedMail { raw, message })
    }

    /// The decoded `Subject:` (RFC 2047 words decoded).
    pub fn subject(&self) -> Option<&str> {
        self.message.subject()
    }

    /// The address of the first `From:` mailbox.
    pub fn from(&self) -> Option<String> {
        self.message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned)
    }

    /// The display name of the first `From:` mailbox, decoded.
    pub fn from_name(&self) -> Option<String> {
        self.message
            .from()
            .and_then(|a| a.first())
            .and_then(|a| a.name())
            .map(str::to_owned)
    }

    /// Every `To:` address.
    pub fn to(&self) -> Vec<String> {
        addresses(self.message.to())
    }

    /// Every `Cc:` address.
    pub fn cc(&self) -> Vec<String> {
        addresses(self.message.cc())
    }

    /// The first text body, decoded (transfer encoding and charset); an
    /// HTML-only message gives its text rendering.
    pub fn text_body(&self) -> Option<String> {
        self.message.body_text(0).map(Cow::into_owned)
    }

    /// The first header called `name` (any case), exactly as received but
    /// unfolded and trimmed — not RFC 2047 decoded, so tests can see what
    /// went over the wire.
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// Every header called `name` (any case), in order, as [`Self::header`].
    pub fn header_all(&self, name: &str) -> Vec<String> {
        let raw = self.message.raw_message();
        self.message
            .headers()
            .iter()
            .filter(|h| h.name.as_str().eq_ignore_ascii_case(name))
            .filter_map(|h| raw.get(h.offset_start as usize..h.offset_end as usize))
            .map(|v| unfold(&String::from_utf8_lossy(v)))
            .collect()
    }

    /// The first header called `name`, decoded to text (RFC 2047 words,
    /// unstructured text); `None` if absent or not text-like.
    pub fn header_text(&self, name: &str) -> Option<String> {
        self.message
            .header(name)
            .and_then(|v| v.as_text())
            .map(str::to_owned)
    }

    /// Every header name, in order.
    pub fn header_names(&self) -> Vec<String> {
        self.message
            .headers()
            .iter()
            .map(|h| h.name.as_str().to_owned())
            .collect()
    }

    /// The raw message as text (lossy for invalid UTF-8).
    pub fn raw_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.raw)
    }

    /// The full mail-parser view.
    pub fn message(&self) -> &Message<'static> {
        &self.message
    }
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|addr| addr.address())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

/// Removes header folding (CRLF before whitespace) and trims the value.
fn unfold(v: &str) -> String {
    v.replace("\r\n", "").replace('\n', "").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &str = "Return-Path: <a@printwatch.test>\r\nFrom: =?UTF-8?B?5Y2w5Yi35qmf?= <a@printwatch.test>\r\n\
        To: b@printwatch.test, c@printwatch.test\r\nSubject: =?UTF-8?B?44Ki44Op44O844OI55m655Sf6YCa55+lOuODiOODiuODvOWIh+OCjA==?=\r\n\
        X-Folded: one\r\n two\r\nX-Folded: second\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: base64\r\n\r\n5pys5paH\r\n";

    #[test]
    fn parses_encoded_subject_addresses_body_and_headers() {
        let mail = ReceivedMail::parse(MAIL.as_bytes().to_vec()).expect("parse");
        assert_eq!(mail.subject(), Some("アラート発生通知:トナー切れ"));
        assert_eq!(mail.from().as_deref(), Some("a@printwatch.test"));
        assert_eq!(mail.from_name().as_deref(), Some("印刷機"));
        assert_eq!(mail.to(), ["b@printwatch.test", "c@printwatch.test"]);
        assert_eq!(mail.text_body().as_deref().map(str::trim), Some("本文"));
        assert_eq!(mail.header("x-folded").as_deref(), Some("one two"));
        assert_eq!(mail.header_all("X-Folded"), ["one two", "second"]);
        assert_eq!(mail.header("Missing"), None);
    }
}
