//! A small POP3 client (RFC 1939, CAPA from RFC 2449, STLS from RFC 2595,
//! response codes from RFC 3206) on tokio and tokio-rustls.
//!
//! Written by hand, on purpose. Of the POP3 crates on crates.io, `pop3`
//! (1.0.6) is blocking and tied to OpenSSL, `async-pop3` (0.1.0) is an
//! early port of it, and `async-pop` (1.1.3), the maintained one, speaks TLS
//! only through async-native-tls or the unmaintained `async-rustls`, has no
//! STLS upgrade of a live connection, no timeouts, and a fixed 20 MiB
//! response buffer instead of a per-download limit. What the inbox needs is
//! small — USER/PASS, CAPA/STLS, UIDL, LIST, RETR, DELE, QUIT — and what
//! matters is how it behaves against a hostile or broken server, so it is
//! written here where every bound is visible:
//!
//! - a status line is at most [`MAX_STATUS_LINE`] bytes, a line of a
//!   `CAPA`/`UIDL`/`LIST` answer at most [`MAX_LIST_LINE`], the whole
//!   answer at most `max_response_bytes`;
//! - a download is refused before `RETR` when `LIST` already says it is
//!   over the limit; when the server's size was wrong the download keeps at
//!   most `limit` bytes and reads the rest away (memory stays bounded, the
//!   command timeout bounds the time) so the session stays usable;
//! - every command, with its whole answer, is bounded by the command
//!   timeout; after a timeout, an I/O error or an answer the protocol does
//!   not allow, the session refuses further commands (its position in the
//!   byte stream is unknown). A `-ERR` answer leaves it usable.
//!
//! Deletions (`DELE`) take effect only at `QUIT`: a session dropped
//! without [`Pop3Session::logout`] deletes nothing, so a crash between
//! handling a message and quitting leaves the message in the mailbox
//! rather than losing it.
//!
//! APOP is not implemented: it rests on MD5 and the servers that offer it
//! also offer STLS or POP3S, which protect USER/PASS properly.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::error::{MailboxError, redact, server_text};
use crate::settings::MailboxSettings;
use crate::stream::MailStream;
use crate::tls::TlsSetup;
use crate::{Listed, open_tcp, tls_handshake};

/// Longest status line accepted (RFC 1939 allows 512 octets).
pub const MAX_STATUS_LINE: usize = 8 * 1024;
/// Longest line of a `CAPA`, `UIDL` or `LIST` answer.
pub const MAX_LIST_LINE: usize = 8 * 1024;
/// Largest `CAPA` answer accepted.
const MAX_CAPA: u64 = 64 * 1024;
/// Largest piece read at once from a download.
const CHUNK: usize = 64 * 1024;

/// How a command failed.
enum Fail {
    /// The server answered `-ERR text`; the session goes on.
    Negative(String),
    /// The session cannot go on.
    Fatal(MailboxError),
}

/// A multi-line answer.
enum Lines {
    Data(Vec<u8>),
    /// Longer than allowed; read away to its end and dropped.
    Over,
}

/// A logged-in POP3 session.
pub(crate) struct Pop3Session {
    conn: BufReader<MailStream>,
    server: String,
    command_timeout: Duration,
    max_response_bytes: u64,
    /// UIDL → (message number, size), from the last `list`.
    index: HashMap<String, (u32, u64)>,
    /// Set once the session cannot be used any more, with why.
    broken: Option<String>,
}

impl Pop3Session {
    /// Connects, upgrades or starts TLS as `settings.security` says, and
    /// logs in with USER/PASS.
    pub(crate) async fn connect(
        settings: &MailboxSettings,
        tls: Option<TlsSetup>,
    ) -> Result<Pop3Session, MailboxError> {
        use printwatch_config::Security;

        let server = settings.server();
        let tcp = open_tcp(settings).await?;
        let mut stream = MailStream::plain(tcp);
        if settings.security == Security::Tls {
            stream = tls_handshake(stream, tls.as_ref(), settings, "POP3 TLS handshake").await?;
        }
        let mut pop = Pop3Session {
            conn: BufReader::new(stream),
            server,
            command_timeout: settings.command_timeout,
            max_response_bytes: settings.max_response_bytes,
            index: HashMap::new(),
            broken: None,
        };
        let greeting = tokio::time::timeout(pop.command_timeout, pop.status("POP3 greeting")).await;
        let greeting = match greeting {
            Ok(r) => r,
            Err(_) => Err(pop.timeout("POP3 greeting", pop.command_timeout)),
        };
        match greeting {
            Ok(_) => {}
            Err(Fail::Negative(text)) => {
                return Err(pop.protocol("POP3 greeting", format!("server refused: {text}")));
            }
            Err(Fail::Fatal(e)) => return Err(e),
        }
        if settings.security == Security::StartTls {
            pop = pop.stls(tls.as_ref(), settings).await?;
        }
        pop.login(settings).await?;
        tracing::debug!(server = %pop.server, user = %settings.username, tls = pop.conn.get_ref().is_tls(), "POP3 logged in");
        Ok(pop)
    }

    /// `CAPA` must list `STLS`; then `STLS` and the handshake.
    async fn stls(
        mut self,
        tls: Option<&TlsSetup>,
        settings: &MailboxSettings,
    ) -> Result<Pop3Session, MailboxError> {
        let capa = match self
            .lines("POP3 CAPA", "CAPA", MAX_CAPA, Some(MAX_LIST_LINE))
            .await
        {
            Ok(Lines::Data(d)) => Some(d),
            Ok(Lines::Over) => None,
            Err(Fail::Negative(_)) => None,
            Err(Fail::Fatal(e)) => return Err(e),
        };
        let offered = capa.as_deref().is_some_and(|c| {
            c.split(|&b| b == b'\n').any(|line| {
                let word = line
                    .split(|b| b.is_ascii_whitespace())
                    .find(|w| !w.is_empty())
                    .unwrap_or_default();
                word.eq_ignore_ascii_case(b"STLS")
            })
        });
        if !offered {
            return Err(MailboxError::Tls {
                server: self.server.clone(),
                step: "POP3 CAPA".into(),
                reason: "the server does not offer STLS; refusing to log in over plain text".into(),
            });
        }
        match self.simple("POP3 STLS", "STLS").await {
            Ok(_) => {}
            Err(Fail::Negative(text)) => {
                return Err(MailboxError::Tls {
                    server: self.server.clone(),
                    step: "POP3 STLS".into(),
                    reason: format!("the server refused STLS: {text}"),
                });
            }
            Err(Fail::Fatal(e)) => return Err(e),
        }
        if !self.conn.buffer().is_empty() {
            // Anything sent after "+OK" and before the handshake would be
            // read as if it came over TLS (the STARTTLS injection attack).
            return Err(MailboxError::Tls {
                server: self.server.clone(),
                step: "POP3 STLS".into(),
                reason: "the server sent data before the TLS handshake".into(),
            });
        }
        let stream = self.conn.into_inner();
        let stream = tls_handshake(stream, tls, settings, "POP3 STLS handshake").await?;
        Ok(Pop3Session {
            conn: BufReader::new(stream),
            server: self.server,
            command_timeout: self.command_timeout,
            max_response_bytes: self.max_response_bytes,
            index: HashMap::new(),
            broken: None,
        })
    }

    async fn login(&mut self, settings: &MailboxSettings) -> Result<(), MailboxError> {
        let password = settings.password.expose();
        let auth = |step: &str, text: String| MailboxError::Auth {
            server: settings.server(),
            step: step.into(),
            username: settings.username.clone(),
            reason: redact(text, password),
        };
        match self
            .simple("POP3 USER", &format!("USER {}", settings.username))
            .await
        {
            Ok(_) => {}
            Err(Fail::Negative(text)) => return Err(auth("POP3 USER", text)),
            Err(Fail::Fatal(e)) => return Err(e),
        }
        match self.simple("POP3 PASS", &format!("PASS {password}")).await {
            Ok(_) => Ok(()),
            // RFC 3206: the mailbox is locked by another session, or the
            // server has trouble; the password may well be right.
            Err(Fail::Negative(text))
                if text.starts_with("[IN-USE]") || text.starts_with("[SYS/") =>
            {
                Err(self.protocol("POP3 PASS", redact(text, password)))
            }
            Err(Fail::Negative(text)) => Err(auth("POP3 PASS", text)),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    /// UIDL and LIST, joined by message number.
    pub(crate) async fn list(&mut self) -> Result<Vec<Listed>, MailboxError> {
        self.usable("POP3 UIDL")?;
        let uidl = self.list_answer("POP3 UIDL", "UIDL").await?;
        let list = self.list_answer("POP3 LIST", "LIST").await?;
        let mut sizes = HashMap::new();
        for line in list.split(|&b| b == b'\n') {
            let Some((number, size)) = two_fields(line) else {
                continue;
            };
            let (Ok(number), Ok(size)) = (number.parse::<u32>(), size.parse::<u64>()) else {
                return Err(self.fatal_protocol(
                    "POP3 LIST",
                    format!("unreadable line {}", server_text(line)),
                ));
            };
            sizes.insert(number, size);
        }
        let mut index = HashMap::new();
        let mut listed = Vec::new();
        for line in uidl.split(|&b| b == b'\n') {
            let Some((number, uid)) = two_fields(line) else {
                continue;
            };
            let Ok(number) = number.parse::<u32>() else {
                return Err(self.fatal_protocol(
                    "POP3 UIDL",
                    format!("unreadable line {}", server_text(line)),
                ));
            };
            // RFC 1939: 1 to 70 characters 0x21..=0x7E.
            if uid.is_empty() || uid.len() > 70 || !uid.bytes().all(|b| (0x21..=0x7e).contains(&b))
            {
                return Err(self.fatal_protocol(
                    "POP3 UIDL",
                    format!("message {number} has an invalid unique id"),
                ));
            }
            let Some(&size) = sizes.get(&number) else {
                tracing::warn!(server = %self.server, number, "POP3 message in UIDL but not in LIST; skipped");
                continue;
            };
            if index.contains_key(uid) {
                tracing::warn!(server = %self.server, number, uid, "POP3 server gives two messages one unique id; the later one is skipped");
                continue;
            }
            index.insert(uid.to_owned(), (number, size));
            listed.push((
                number,
                Listed {
                    id: uid.to_owned(),
                    size,
                },
            ));
        }
        listed.sort_by_key(|(number, _)| *number);
        self.index = index;
        tracing::debug!(server = %self.server, count = listed.len(), "POP3 listed");
        Ok(listed.into_iter().map(|(_, l)| l).collect())
    }

    async fn list_answer(&mut self, step: &str, cmd: &str) -> Result<Vec<u8>, MailboxError> {
        match self
            .lines(step, cmd, self.max_response_bytes, Some(MAX_LIST_LINE))
            .await
        {
            Ok(Lines::Data(d)) => Ok(d),
            Ok(Lines::Over) => Err(self.fatal_protocol(
                step,
                format!(
                    "the answer is larger than {} bytes (max_response_bytes)",
                    self.max_response_bytes
                ),
            )),
            Err(Fail::Negative(text)) if cmd == "UIDL" => Err(self.protocol(
                step,
                format!("the server has no UIDL, so messages have no stable id: {text}"),
            )),
            Err(Fail::Negative(text)) => Err(self.protocol(step, text)),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    async fn lookup(&mut self, id: &str) -> Result<(u32, u64), MailboxError> {
        if self.index.is_empty() {
            self.list().await?;
        }
        self.index
            .get(id)
            .copied()
            .ok_or_else(|| MailboxError::NoSuchMessage {
                id: id.to_owned(),
                reason: "not in the mailbox (or already finished in this session)".into(),
            })
    }

    pub(crate) async fn fetch(&mut self, id: &str, limit: u64) -> Result<Vec<u8>, MailboxError> {
        self.usable("POP3 RETR")?;
        let (number, size) = self.lookup(id).await?;
        if size > limit {
            return Err(MailboxError::TooBig {
                id: id.to_owned(),
                size: Some(size),
                limit,
            });
        }
        let step = format!("POP3 RETR {number}");
        match self
            .lines(&step, &format!("RETR {number}"), limit, None)
            .await
        {
            Ok(Lines::Data(d)) => {
                tracing::debug!(server = %self.server, id, bytes = d.len(), "POP3 fetched");
                Ok(d)
            }
            Ok(Lines::Over) => Err(MailboxError::TooBig {
                id: id.to_owned(),
                size: None,
                limit,
            }),
            Err(Fail::Negative(text)) => Err(self.protocol(&step, text)),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    pub(crate) async fn finish(&mut self, id: &str) -> Result<(), MailboxError> {
        self.usable("POP3 DELE")?;
        let (number, _) = self.lookup(id).await?;
        let step = format!("POP3 DELE {number}");
        match self.simple(&step, &format!("DELE {number}")).await {
            Ok(_) => {
                self.index.remove(id);
                tracing::debug!(server = %self.server, id, "POP3 marked for deletion");
                Ok(())
            }
            Err(Fail::Negative(text)) => Err(self.protocol(&step, text)),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    /// `QUIT`: the server deletes what was `DELE`d.
    pub(crate) async fn logout(mut self) -> Result<(), MailboxError> {
        if let Some(why) = &self.broken {
            return Err(self.protocol(
                "POP3 QUIT",
                format!("not sent: the session failed earlier ({why}); nothing was deleted"),
            ));
        }
        match self.simple("POP3 QUIT", "QUIT").await {
            Ok(_) => {
                tracing::debug!(server = %self.server, "POP3 quit");
                Ok(())
            }
            Err(Fail::Negative(text)) => Err(self.protocol(
                "POP3 QUIT",
                format!("the server did not commit the deletions: {text}"),
            )),
            Err(Fail::Fatal(e)) => Err(e),
        }
    }

    // ---- plumbing -------------------------------------------------------

    fn usable(&self, step: &str) -> Result<(), MailboxError> {
        match &self.broken {
            None => Ok(()),
            Some(why) => Err(self.protocol(
                step,
                format!("the session failed earlier ({why}); connect again"),
            )),
        }
    }

    fn protocol(&self, step: &str, reason: String) -> MailboxError {
        MailboxError::Protocol {
            server: self.server.clone(),
            step: step.to_owned(),
            reason,
        }
    }

    /// A protocol error after which the session cannot go on.
    fn fatal_protocol(&mut self, step: &str, reason: String) -> MailboxError {
        self.broken = Some(reason.clone());
        self.protocol(step, reason)
    }

    /// Marks the session broken for `e` (and returns it).
    fn fatal(&mut self, e: MailboxError) -> Fail {
        self.broken = Some(e.to_string());
        Fail::Fatal(e)
    }

    /// Sends `cmd` and reads its status line, within the command timeout.
    /// `step` names the command in errors (never `cmd`: it may hold the
    /// password).
    async fn simple(&mut self, step: &str, cmd: &str) -> Result<String, Fail> {
        let after = self.command_timeout;
        match tokio::time::timeout(after, self.send_and_status(step, cmd)).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout(step, after)),
        }
    }

    /// Sends `cmd` and reads its status line and multi-line answer (at most
    /// `limit` bytes, else [`Lines::Over`]; lines at most `max_line`), all
    /// within the command timeout.
    async fn lines(
        &mut self,
        step: &str,
        cmd: &str,
        limit: u64,
        max_line: Option<usize>,
    ) -> Result<Lines, Fail> {
        let after = self.command_timeout;
        let work = async {
            self.send_and_status(step, cmd).await?;
            self.multiline(step, limit, max_line).await
        };
        match tokio::time::timeout(after, work).await {
            Ok(r) => r,
            Err(_) => Err(self.timeout(step, after)),
        }
    }

    fn timeout(&mut self, step: &str, after: Duration) -> Fail {
        let e = MailboxError::Timeout {
            server: self.server.clone(),
            step: step.to_owned(),
            after,
        };
        self.fatal(e)
    }

    async fn send_and_status(&mut self, step: &str, cmd: &str) -> Result<String, Fail> {
        let mut line = Vec::with_capacity(cmd.len() + 2);
        line.extend_from_slice(cmd.as_bytes());
        line.extend_from_slice(b"\r\n");
        let sent = async {
            let stream = self.conn.get_mut();
            stream.write_all(&line).await?;
            stream.flush().await
        }
        .await;
        line.fill(0);
        if let Err(source) = sent {
            let e = MailboxError::Io {
                server: self.server.clone(),
                step: step.to_owned(),
                source,
            };
            return Err(self.fatal(e));
        }
        self.status(step).await
    }

    /// Reads a status line: `+OK text` → Ok(text), `-ERR text` → Negative.
    async fn status(&mut self, step: &str) -> Result<String, Fail> {
        let mut line = Vec::new();
        let complete = self.read_chunk(step, MAX_STATUS_LINE, &mut line).await?;
        if !complete {
            let e = MailboxError::Protocol {
                server: self.server.clone(),
                step: step.to_owned(),
                reason: format!("status line longer than {MAX_STATUS_LINE} bytes"),
            };
            return Err(self.fatal(e));
        }
        let line = trim_eol(&line);
        if let Some(rest) = strip_indicator(line, b"+OK") {
            return Ok(server_text(rest));
        }
        if let Some(rest) = strip_indicator(line, b"-ERR") {
            return Err(Fail::Negative(server_text(rest)));
        }
        let e = MailboxError::Protocol {
            server: self.server.clone(),
            step: step.to_owned(),
            reason: format!("unexpected answer {:?}", server_text(line)),
        };
        Err(self.fatal(e))
    }

    /// Reads up to and including the next LF, at most `max` bytes, into
    /// `buf`; true if the line is complete. End of stream is fatal.
    async fn read_chunk(
        &mut self,
        step: &str,
        max: usize,
        buf: &mut Vec<u8>,
    ) -> Result<bool, Fail> {
        match (&mut self.conn)
            .take(max as u64)
            .read_until(b'\n', buf)
            .await
        {
            Ok(0) => {
                let e = MailboxError::Protocol {
                    server: self.server.clone(),
                    step: step.to_owned(),
                    reason: "the server closed the connection".into(),
                };
                Err(self.fatal(e))
            }
            Ok(_) => Ok(buf.last() == Some(&b'\n')),
            Err(source) => {
                let e = MailboxError::Io {
                    server: self.server.clone(),
                    step: step.to_owned(),
                    source,
                };
                Err(self.fatal(e))
            }
        }
    }

    /// Reads a multi-line answer up to the lone ".", undoing dot-stuffing
    /// and giving every line a CRLF end. Keeps at most `limit` bytes (then
    /// reads on to the end and answers [`Lines::Over`]); a line longer than
    /// `max_line` is fatal.
    async fn multiline(
        &mut self,
        step: &str,
        limit: u64,
        max_line: Option<usize>,
    ) -> Result<Lines, Fail> {
        let mut out = Vec::new();
        let mut over = false;
        let mut chunk = Vec::new();
        let mut at_line_start = true;
        let mut line_len = 0usize;
        let mut pending_cr = false;
        // Keeps `bytes` unless that would pass the limit; from then on
        // keeps nothing.
        let emit = |out: &mut Vec<u8>, over: &mut bool, bytes: &[u8]| {
            if *over {
                return;
            }
            if (out.len() + bytes.len()) as u64 > limit {
                *over = true;
                *out = Vec::new();
            } else {
                out.extend_from_slice(bytes);
            }
        };
        loop {
            chunk.clear();
            let complete = self.read_chunk(step, CHUNK, &mut chunk).await?;
            if at_line_start && (chunk == b".\r\n" || chunk == b".\n") {
                return Ok(if over { Lines::Over } else { Lines::Data(out) });
            }
            if pending_cr {
                pending_cr = false;
                if chunk != b"\n" {
                    emit(&mut out, &mut over, b"\r");
                }
            }
            let mut data: &[u8] = &chunk;
            if at_line_start && data.first() == Some(&b'.') {
                data = &data[1..];
            }
            if complete {
                data = trim_eol(data);
            } else if let Some(rest) = data.strip_suffix(b"\r") {
                data = rest;
                pending_cr = true;
            }
            line_len += data.len();
            if let Some(max) = max_line
                && line_len > max
            {
                let e = MailboxError::Protocol {
                    server: self.server.clone(),
                    step: step.to_owned(),
                    reason: format!("answer line longer than {max} bytes"),
                };
                return Err(self.fatal(e));
            }
            emit(&mut out, &mut over, data);
            if complete {
                emit(&mut out, &mut over, b"\r\n");
                at_line_start = true;
                line_len = 0;
            } else {
                at_line_start = false;
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `+OK` / `-ERR` at the start of `line`, followed by a space or nothing.
fn strip_indicator<'a>(line: &'a [u8], indicator: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(indicator)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(b" ")
    }
}

/// The first two whitespace-separated fields of a line, as text.
fn two_fields(line: &[u8]) -> Option<(&str, &str)> {
    let line = std::str::from_utf8(trim_eol(line)).ok()?;
    let mut fields = line.split_ascii_whitespace();
    Some((fields.next()?, fields.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indicators_need_a_space_or_the_end() {
        assert_eq!(strip_indicator(b"+OK hi", b"+OK"), Some(&b"hi"[..]));
        assert_eq!(strip_indicator(b"+OK", b"+OK"), Some(&b""[..]));
        assert_eq!(strip_indicator(b"+OKAY", b"+OK"), None);
        assert_eq!(
            strip_indicator(b"-ERR [AUTH] no", b"-ERR"),
            Some(&b"[AUTH] no"[..])
        );
    }

    #[test]
    fn fields_and_line_ends() {
        assert_eq!(two_fields(b"1 abc\r\n"), Some(("1", "abc")));
        assert_eq!(two_fields(b"1\r\n"), None);
        assert_eq!(two_fields(&[0xff, b' ', b'x']), None);
        assert_eq!(trim_eol(b"a\r\n"), b"a");
        assert_eq!(trim_eol(b"a\n"), b"a");
    }
}
