//! One stream type for plain TCP and TLS connections, so the IMAP and POP3
//! clients can upgrade a plain connection with STARTTLS in place.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use anyhow::{Context, Result};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::MailBed;

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A plain or TLS connection to the bed.
pub(crate) struct AnyStream {
    inner: Box<dyn Io>,
    tls: bool,
}

impl fmt::Debug for AnyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnyStream").field("tls", &self.tls).finish()
    }
}

impl AnyStream {
    /// A plain TCP connection.
    pub(crate) async fn connect(addr: SocketAddr) -> Result<AnyStream> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true).ok();
        Ok(AnyStream {
            inner: Box::new(tcp),
            tls: false,
        })
    }

    /// A TLS connection from the first byte (implicit TLS).
    pub(crate) async fn connect_tls(bed: &MailBed, addr: SocketAddr) -> Result<AnyStream> {
        AnyStream::connect(addr).await?.start_tls(bed).await
    }

    /// Runs the TLS handshake over this connection, trusting the bed's CA.
    pub(crate) async fn start_tls(self, bed: &MailBed) -> Result<AnyStream> {
        let connector = TlsConnector::from(bed.tls_client_config()?);
        let name = bed.tls_server_name()?;
        let tls = connector
            .connect(name, self)
            .await
            .context("TLS handshake with the bed (trusting its CA)")?;
        Ok(AnyStream {
            inner: Box::new(tls),
            tls: true,
        })
    }
}

impl AsyncRead for AnyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for AnyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
