//! TLS trust for SMTP and POP3: the system's roots plus the configured
//! `ca_file` (a PEM bundle), server name = the configured host, always
//! verified. Built once in [`crate::Mailer::new`], so a missing or broken CA
//! file is an error at start that names the file, not a failure per mail.
//!
//! Two forms of the same trust are kept because lettre cannot be handed a
//! rustls config: lettre's [`TlsParameters`] for STARTTLS (which lettre
//! performs on its own stream), and a rustls [`ClientConfig`] for implicit
//! TLS and POP3, whose handshakes happen here — so that a TLS failure is
//! told apart from a TCP failure and bounded by its own timeout.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use lettre::transport::smtp::client::{AsyncTokioStream, Certificate, TlsParameters};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::SetupError;

/// The trust for one server.
#[derive(Clone)]
pub(crate) struct Trust {
    /// For handshakes done here (implicit TLS, POP3).
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.errors.is_empty() {
            tracing::debug!(
                errors = found.errors.len(),
                "some system CA certificates could not be read"
            );
        }
        found.certs
    })
}

/// The certificates of a PEM bundle; at least one.
pub(crate) fn read_ca_file(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let fail = |reason: String| SetupError::CaFile {
        key,
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM file: {e}")))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate (BEGIN CERTIFICATE)".into()));
    }
    Ok(certs)
}

/// The server name a certificate must carry: the host as configured (a DNS
/// name or an IP address).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>, SetupError> {
    ServerName::try_from(host.to_owned()).map_err(|_| SetupError::Tls {
        host: host.to_owned(),
        reason: "the host is neither a DNS name nor an IP address usable for TLS".into(),
    })
}

/// The rustls trust (system roots + `extra`) for `host`.
pub(crate) fn trust(host: &str, extra: &[CertificateDer<'static>]) -> Result<Trust, SetupError> {
    let tls_err = |reason: String| SetupError::Tls {
        host: host.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    let (_added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
    for cert in extra {
        roots
            .add(cert.clone())
            .map_err(|e| tls_err(format!("a CA certificate is not usable: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Trust {
        config: Arc::new(config),
        server_name: server_name(host)?,
    })
}

/// lettre's form of the same trust, for STARTTLS.
pub(crate) fn lettre_parameters(
    host: &str,
    extra: &[CertificateDer<'static>],
) -> Result<TlsParameters, SetupError> {
    let tls_err = |reason: String| SetupError::Tls {
        host: host.to_owned(),
        reason,
    };
    let mut builder = TlsParameters::builder(host.to_owned());
    for cert in extra {
        let cert = Certificate::from_der(cert.to_vec()).map_err(|e| tls_err(e.to_string()))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build_rustls().map_err(|e| tls_err(e.to_string()))
}

/// Whether a TLS failure is one that retrying cannot fix (the certificate
/// does not verify, or the peer refused our parameters), found anywhere in
/// the error's source chain.
pub(crate) fn failure_is_permanent(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(tls) = tls {
            return matches!(
                tls,
                rustls::Error::InvalidCertificate(_)
                    | rustls::Error::NoCertificatesPresented
                    | rustls::Error::AlertReceived(_)
                    | rustls::Error::PeerIncompatible(_)
            );
        }
        cur = err.source();
    }
    false
}

/// A TLS stream over TCP that lettre can use as its transport
/// ([`AsyncTokioStream`] is lettre's trait for "bring your own stream").
#[derive(Debug)]
pub(crate) struct TlsTcp(pub tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsTcp {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsTcp {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for TlsTcp {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_named() {
        let e = read_ca_file("mail.smtp.ca_file", Path::new("/nonexistent/ca.pem")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/nonexistent/ca.pem"), "{s}");
        assert!(s.contains("mail.smtp.ca_file"), "{s}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("empty.pem");
        std::fs::write(&p, "just text\n").unwrap();
        let s = read_ca_file("mail.smtp.ca_file", &p)
            .unwrap_err()
            .to_string();
        assert!(s.contains("no PEM certificate"), "{s}");
    }

    #[test]
    fn ip_addresses_and_names_are_server_names() {
        assert!(server_name("127.0.0.1").is_ok());
        assert!(server_name("mail.example.test").is_ok());
        assert!(server_name("bad name!").is_err());
    }
}
