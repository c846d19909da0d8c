//! Injecting test mail over the bed's plain SMTP port. The dialogue is
//! written by hand (EHLO, MAIL, RCPT, DATA, QUIT): test support only needs
//! this one unauthenticated path, and keeping it independent of lettre means
//! the bed's own tests do not depend on the client the notifier uses.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A text/plain UTF-8 message with the usual headers. Non-ASCII in the
/// subject is sent as an RFC 2047 encoded word.
pub(crate) fn build_message(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    domain: &str,
) -> String {
    let date = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 +0000".to_owned());
    let id = uuid::Uuid::new_v4().simple();
    let mut body = body.replace("\r\n", "\n").replace('\n', "\r\n");
    if !body.ends_with("\r\n") {
        body.push_str("\r\n");
    }
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <{id}@{domain}>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
        encode_header_text(subject)
    )
}

/// `text` as is if it is printable ASCII, else one RFC 2047 `B` word per
/// chunk of whole characters (each word at most 75 bytes).
fn encode_header_text(text: &str) -> String {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        // 45 bytes of UTF-8 encode to 60 base64 chars + 12 for =?UTF-8?B??=
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w)
            )
        })
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// Sends `raw` to `recipients` over plain SMTP at `addr`.
pub(crate) async fn send(
    addr: SocketAddr,
    from: &str,
    recipients: &[&str],
    raw: &[u8],
) -> Result<()> {
    if recipients.is_empty() {
        bail!("no recipients");
    }
    for a in std::iter::once(&from).chain(recipients) {
        if a.contains(['\r', '\n', '<', '>']) {
            bail!("envelope address {a:?} contains CR, LF or angle brackets");
        }
    }
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let mut conn = BufReader::new(tcp);
    expect(&mut conn, None, 220).await?;
    expect(&mut conn, Some("EHLO printwatch-testing"), 250).await?;
    expect(&mut conn, Some(&format!("MAIL FROM:<{from}>")), 250).await?;
    for rcpt in recipients {
        expect(&mut conn, Some(&format!("RCPT TO:<{rcpt}>")), 250).await?;
    }
    expect(&mut conn, Some("DATA"), 354).await?;
    let data = dot_stuff(raw);
    conn.get_mut()
        .write_all(&data)
        .await
        .context("writing the message")?;
    expect(&mut conn, Some("."), 250).await?;
    // The mail is accepted; a failing QUIT does not matter.
    let _ = expect(&mut conn, Some("QUIT"), 221).await;
    Ok(())
}

/// CRLF line ends, dot-stuffing; no terminating `.` line.
fn dot_stuff(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    let mut at_line_start = true;
    let mut prev = 0u8;
    for &b in raw {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        at_line_start = b == b'\n';
        prev = b;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Sends `command` (if any) and reads a possibly multi-line reply, which
/// must have code `code`.
async fn expect(
    conn: &mut BufReader<TcpStream>,
    command: Option<&str>,
    code: u16,
) -> Result<String> {
    if let Some(cmd) = command {
        conn.get_mut()
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .with_context(|| format!("sending {cmd}"))?;
    }
    let what = command.unwrap_or("the greeting");
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        let n = conn
            .read_line(&mut line)
            .await
            .with_context(|| format!("reading the reply to {what}"))?;
        if n == 0 {
            bail!("the SMTP server closed the connection after {what} (reply so far: {reply:?})");
        }
        reply.push_str(&line);
        if line.len() < 4 || line.as_bytes()[3] != b'-' {
            break;
        }
    }
    let got: Option<u16> = reply.get(..3).and_then(|c| c.parse().ok());
    if got != Some(code) {
        bail!(
            "SMTP server answered {:?} to {what}, expected {code}",
            reply.trim_end()
        );
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff(b"a\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n");
    }

    #[test]
    fn non_ascii_subjects_are_encoded_words() {
        assert_eq!(encode_header_text("plain"), "plain");
        let enc = encode_header_text("アラート発生通知:トナー切れ");
        assert!(enc.starts_with("=?UTF-8?B?"), "{enc}");
        assert!(enc.lines().all(|l| l.trim().len() <= 75), "{enc}");
    }
}
