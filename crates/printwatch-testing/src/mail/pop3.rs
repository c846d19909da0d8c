//! A minimal POP3 client (USER/PASS, STAT, LIST, RETR, QUIT, STLS).
//!
//! Written by hand because the one maintained async POP3 crate, `async-pop`
//! 1.1, supports TLS only through async-native-tls or the unmaintained
//! `async-rustls`, not tokio-rustls; the subset tests need is small.

use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::stream::AnyStream;
use super::{MailBed, ReceivedMail, Security};

/// Longest line accepted from the server.
const MAX_LINE: usize = 64 * 1024;

struct Pop3 {
    conn: BufReader<AnyStream>,
}

impl Pop3 {
    /// Reads one line without its CRLF.
    async fn line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = (&mut self.conn)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .await
            .context("reading from the POP3 server")?;
        if n == 0 {
            bail!("the POP3 server closed the connection");
        }
        if !line.ends_with(b"\n") {
            bail!("POP3 line longer than {MAX_LINE} bytes");
        }
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
        Ok(line)
    }

    /// Reads a status line; it must be `+OK`.
    async fn ok(&mut self, what: &str) -> Result<String> {
        let line = String::from_utf8_lossy(&self.line().await?).into_owned();
        match line.strip_prefix("+OK") {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => bail!("POP3 server answered {line:?} to {what}"),
        }
    }

    /// Sends `cmd`; `shown` is what error messages call it (no passwords).
    async fn command(&mut self, cmd: &str, shown: &str) -> Result<String> {
        self.conn
            .get_mut()
            .write_all(format!("{cmd}\r\n").as_bytes())
            .await
            .with_context(|| format!("sending {shown}"))?;
        self.ok(shown).await
    }

    /// Reads a multi-line body up to the lone `.`, undoing dot-stuffing;
    /// lines end in CRLF.
    async fn multiline(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let line = self.line().await?;
            if line == b"." {
                return Ok(out);
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
    }
}

pub(crate) async fn fetch_all(
    bed: &MailBed,
    addr: SocketAddr,
    security: Security,
    user: &str,
    password: &str,
) -> Result<Vec<ReceivedMail>> {
    let stream = match security {
        Security::Tls => AnyStream::connect_tls(bed, addr).await?,
        Security::None | Security::StartTls => AnyStream::connect(addr).await?,
    };
    let mut pop = Pop3 {
        conn: BufReader::new(stream),
    };
    pop.ok("the greeting").await?;
    if security == Security::StartTls {
        pop.command("STLS", "STLS").await?;
        let plain = pop.conn.into_inner();
        pop = Pop3 {
            conn: BufReader::new(plain.start_tls(bed).await?),
        };
    }
    pop.command(&format!("USER {user}"), &format!("USER {user}"))
        .await?;
    pop.command(&format!("PASS {password}"), "PASS <password>")
        .await
        .with_context(|| format!("POP3 login as {user} refused"))?;
    let stat = pop.command("STAT", "STAT").await?;
    let count: usize = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("POP3 STAT answer {stat:?} has no message count"))?;
    pop.command("LIST", "LIST").await?;
    let list = pop.multiline().await?;
    let numbers: Vec<u32> = String::from_utf8_lossy(&list)
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    if numbers.len() != count {
        bail!(
            "POP3 STAT said {count} messages but LIST gave {}",
            numbers.len()
        );
    }
    let mut mails = Vec::with_capacity(count);
    for n in numbers {
        pop.command(&format!("RETR {n}"), &format!("RETR {n}"))
            .await?;
        let raw = pop.multiline().await?;
        mails.push(ReceivedMail::parse(raw)?);
    }
    // The messages are read; a failing QUIT does not matter.
    let _ = pop.command("QUIT", "QUIT").await;
    Ok(mails)
}
