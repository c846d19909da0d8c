//! Reading a mailbox of the bed over IMAP (async-imap on tokio).

use std::net::SocketAddr;
use std::pin::pin;

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;

use super::stream::AnyStream;
use super::{MailBed, ReceivedMail, Security};

/// A logged-in IMAP session.
pub(crate) struct Session {
    inner: async_imap::Session<AnyStream>,
}

impl Session {
    pub(crate) async fn login(
        bed: &MailBed,
        addr: SocketAddr,
        security: Security,
        user: &str,
        password: &str,
    ) -> Result<Session> {
        let client = match security {
            Security::None | Security::StartTls => {
                let mut client = async_imap::Client::new(AnyStream::connect(addr).await?);
                read_greeting(&mut client).await?;
                if security == Security::StartTls {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .context("IMAP STARTTLS")?;
                    let tls = client.into_inner().start_tls(bed).await?;
                    async_imap::Client::new(tls)
                } else {
                    client
                }
            }
            Security::Tls => {
                let mut client = async_imap::Client::new(AnyStream::connect_tls(bed, addr).await?);
                read_greeting(&mut client).await?;
                client
            }
        };
        let inner = client
            .login(user, password)
            .await
            .map_err(|(e, _)| anyhow!("IMAP LOGIN as {user} refused: {e}"))?;
        Ok(Session { inner })
    }

    /// The number of messages in INBOX now.
    pub(crate) async fn count(&mut self) -> Result<usize> {
        let status = self
            .inner
            .status("INBOX", "(MESSAGES)")
            .await
            .context("IMAP STATUS INBOX")?;
        self.drain_unsolicited();
        Ok(status.exists as usize)
    }

    /// Every message of INBOX, oldest first, leaving them unseen.
    pub(crate) async fn fetch_all(&mut self) -> Result<Vec<ReceivedMail>> {
        let mailbox = self
            .inner
            .examine("INBOX")
            .await
            .context("IMAP EXAMINE INBOX")?;
        self.drain_unsolicited();
        if mailbox.exists == 0 {
            return Ok(Vec::new());
        }
        let mut raw = Vec::new();
        {
            let fetches = self
                .inner
                .fetch("1:*", "BODY.PEEK[]")
                .await
                .context("IMAP FETCH 1:* BODY.PEEK[]")?;
            let mut fetches = pin!(fetches);
            while let Some(fetch) = fetches.next().await {
                let fetch = fetch.context("reading an IMAP FETCH response")?;
                if let Some(body) = fetch.body() {
                    raw.push((fetch.message, body.to_vec()));
                }
            }
        }
        self.drain_unsolicited();
        if raw.len() < mailbox.exists as usize {
            bail!(
                "IMAP FETCH returned {} messages but INBOX has {}",
                raw.len(),
                mailbox.exists
            );
        }
        raw.sort_by_key(|(seq, _)| *seq);
        raw.into_iter()
            .map(|(_, bytes)| ReceivedMail::parse(bytes))
            .collect()
    }

    /// Logs out, ignoring errors (the test has what it needs by then).
    pub(crate) async fn logout(mut self) {
        let _ = self.inner.logout().await;
    }

    /// async-imap queues untagged responses it does not expect in a bounded
    /// channel; empty it so a long poll never blocks on a full channel.
    fn drain_unsolicited(&mut self) {
        while self.inner.unsolicited_responses.try_recv().is_ok() {}
    }
}

async fn read_greeting(client: &mut async_imap::Client<AnyStream>) -> Result<()> {
    match client
        .read_response()
        .await
        .context("reading the IMAP greeting")?
    {
        Some(_) => Ok(()),
        None => bail!("the IMAP server closed the connection before its greeting"),
    }
}
