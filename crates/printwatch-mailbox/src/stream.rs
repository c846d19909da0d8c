//! The connection under both protocols: plain TCP or TLS (upgradable in
//! place for STARTTLS/STLS), with two safety devices for the IMAP side,
//! where async-imap owns the reading and writing:
//!
//! - a **read budget** ([`Budget`]): async-imap would buffer a single
//!   response of up to 512 MiB, so a hostile server could make a service
//!   allocate that much. Every command sets how many bytes its answer may
//!   take; a read beyond that fails with an I/O error and the session is
//!   given up.
//! - a **password substitution**: async-imap writes each command to its
//!   `log` target at TRACE level, and the usual tracing setup forwards
//!   `log` records, so `RUST_LOG=trace` would print `LOGIN "user"
//!   "password"`. The password is therefore never handed to async-imap: it
//!   gets a random placeholder, and this stream swaps the placeholder for
//!   the password on its way to the socket.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::tls::TlsSetup;

/// How many more bytes the server may send before reads fail.
#[derive(Clone, Debug, Default)]
pub(crate) struct Budget(Arc<BudgetState>);

#[derive(Debug, Default)]
struct BudgetState {
    remaining: AtomicU64,
    limit: AtomicU64,
    exceeded: AtomicBool,
}

impl Budget {
    fn unlimited() -> Budget {
        let b = Budget::default();
        b.set(u64::MAX);
        b
    }

    /// Allows `bytes` more from now on (for the next command's answer).
    pub(crate) fn set(&self, bytes: u64) {
        self.0.remaining.store(bytes, Ordering::Relaxed);
        self.0.limit.store(bytes, Ordering::Relaxed);
        self.0.exceeded.store(false, Ordering::Relaxed);
    }

    /// Whether a read failed because the budget ran out since [`Budget::set`].
    pub(crate) fn exceeded(&self) -> bool {
        self.0.exceeded.load(Ordering::Relaxed)
    }

    /// The amount last [`Budget::set`].
    pub(crate) fn limit(&self) -> u64 {
        self.0.limit.load(Ordering::Relaxed)
    }

    fn remaining(&self) -> u64 {
        self.0.remaining.load(Ordering::Relaxed)
    }

    fn spend(&self, n: u64) {
        let left = self.remaining();
        self.0
            .remaining
            .store(left.saturating_sub(n), Ordering::Relaxed);
    }

    fn mark_exceeded(&self) {
        self.0.exceeded.store(true, Ordering::Relaxed);
    }
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// The password waiting to replace its placeholder.
struct Substitution {
    placeholder: Vec<u8>,
    replacement: Vec<u8>,
}

impl Drop for Substitution {
    fn drop(&mut self) {
        self.replacement.fill(0);
    }
}

/// A plain or TLS connection to the mail server.
pub(crate) struct MailStream {
    inner: Inner,
    budget: Budget,
    secret: Option<Substitution>,
    /// Bytes accepted from the writer but not yet written to the socket
    /// (only ever the command that carried the placeholder).
    pending: Vec<u8>,
    pending_pos: usize,
}

impl fmt::Debug for MailStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailStream")
            .field("tls", &self.is_tls())
            .finish_non_exhaustive()
    }
}

impl MailStream {
    pub(crate) fn plain(tcp: TcpStream) -> MailStream {
        tcp.set_nodelay(true).ok();
        MailStream {
            inner: Inner::Plain(tcp),
            budget: Budget::unlimited(),
            secret: None,
            pending: Vec::new(),
            pending_pos: 0,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.inner, Inner::Tls(_))
    }

    /// The budget shared with whoever drives this stream.
    pub(crate) fn budget(&self) -> Budget {
        self.budget.clone()
    }

    /// Runs the TLS handshake over this (plain) connection.
    pub(crate) async fn start_tls(self, tls: &TlsSetup) -> io::Result<MailStream> {
        let MailStream {
            inner,
            budget,
            secret,
            pending,
            pending_pos,
        } = self;
        let tcp = match inner {
            Inner::Plain(tcp) => tcp,
            Inner::Tls(_) => {
                return Err(io::Error::other("the connection already uses TLS"));
            }
        };
        if pending_pos < pending.len() {
            return Err(io::Error::other("unsent data before the TLS handshake"));
        }
        let connector = TlsConnector::from(tls.config.clone());
        let stream = connector.connect(tls.name.clone(), tcp).await?;
        Ok(MailStream {
            inner: Inner::Tls(Box::new(stream)),
            budget,
            secret,
            pending: Vec::new(),
            pending_pos: 0,
        })
    }

    /// From now on, the first write containing `placeholder` goes out with
    /// `replacement` in its place (once).
    pub(crate) fn substitute_once(&mut self, placeholder: &str, replacement: Vec<u8>) {
        self.secret = Some(Substitution {
            placeholder: placeholder.as_bytes().to_vec(),
            replacement,
        });
    }

    /// Forgets a substitution that was not used.
    pub(crate) fn clear_substitution(&mut self) {
        self.secret = None;
    }

    fn inner_pin(&mut self) -> Pin<&mut dyn AsyncIo> {
        match &mut self.inner {
            Inner::Plain(s) => Pin::new(s),
            Inner::Tls(s) => Pin::new(s.as_mut()),
        }
    }

    /// Writes out `pending`; Ready(Ok) once it is all gone.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_pos < self.pending.len() {
            let pos = self.pending_pos;
            let mut pending = std::mem::take(&mut self.pending);
            let res = self.inner_pin().poll_write(cx, &pending[pos..]);
            match res {
                Poll::Ready(Ok(0)) => {
                    pending.fill(0);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => {
                    self.pending = pending;
                    self.pending_pos += n;
                }
                Poll::Ready(Err(e)) => {
                    pending.fill(0);
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    self.pending = pending;
                    return Poll::Pending;
                }
            }
        }
        self.pending.fill(0);
        self.pending.clear();
        self.pending_pos = 0;
        Poll::Ready(Ok(()))
    }
}

trait AsyncIo: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> AsyncIo for T {}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl AsyncRead for MailStream {
    /// Reads at most what the budget has left; with nothing left, fails
    /// (having read nothing, as `AsyncRead` requires of an error).
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let left = this.budget.remaining();
        if left == 0 || this.budget.exceeded() {
            this.budget.mark_exceeded();
            return Poll::Ready(Err(over_budget(&this.budget)));
        }
        if buf.remaining() as u64 <= left {
            let before = buf.filled().len();
            ready!(this.inner_pin().poll_read(cx, buf))?;
            this.budget.spend((buf.filled().len() - before) as u64);
        } else {
            // `left` is less than the free space of `buf`, so this is small.
            let mut tmp = vec![0u8; left as usize];
            let mut small = ReadBuf::new(&mut tmp);
            ready!(this.inner_pin().poll_read(cx, &mut small))?;
            let n = small.filled().len();
            buf.put_slice(small.filled());
            this.budget.spend(n as u64);
        }
        Poll::Ready(Ok(()))
    }
}

fn over_budget(budget: &Budget) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the server sent more than the {} bytes allowed for this answer",
            budget.limit()
        ),
    )
}

impl AsyncWrite for MailStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(sub) = &this.secret
            && let Some(at) = find(buf, &sub.placeholder)
        {
            let mut out = Vec::with_capacity(buf.len() + sub.replacement.len());
            out.extend_from_slice(&buf[..at]);
            out.extend_from_slice(&sub.replacement);
            out.extend_from_slice(&buf[at + sub.placeholder.len()..]);
            this.secret = None;
            this.pending = out;
            this.pending_pos = 0;
            // Start sending now; the rest goes out on the next write or flush.
            if let Poll::Ready(Err(e)) = this.poll_pending(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        this.inner_pin().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        this.inner_pin().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        this.inner_pin().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (MailStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            MailStream::plain(client.expect("connect")),
            server.expect("accept").0,
        )
    }

    #[tokio::test]
    async fn the_placeholder_is_replaced_once_on_the_wire() {
        let (mut client, mut server) = pair().await;
        client.substitute_once("@@PH@@", b"s3cr\\\"et".to_vec());
        client
            .write_all(b"a1 LOGIN \"u\" \"@@PH@@\"\r\n")
            .await
            .expect("write");
        client
            .write_all(b"a2 NOOP @@PH@@\r\n")
            .await
            .expect("write");
        client.flush().await.expect("flush");
        drop(client);
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read");
        assert_eq!(
            got,
            b"a1 LOGIN \"u\" \"s3cr\\\"et\"\r\na2 NOOP @@PH@@\r\n".to_vec()
        );
    }

    #[tokio::test]
    async fn reads_beyond_the_budget_fail() {
        let (mut client, mut server) = pair().await;
        let budget = client.budget();
        budget.set(10);
        server.write_all(&[b'x'; 64]).await.expect("write");
        drop(server);
        let mut got = Vec::new();
        let err = client.read_to_end(&mut got).await.expect_err("over budget");
        assert!(err.to_string().contains("10 bytes"), "{err}");
        assert!(budget.exceeded());
        budget.set(100);
        assert!(!budget.exceeded());
    }
}
