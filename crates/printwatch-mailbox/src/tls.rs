//! TLS client setup: the system's root certificates plus `ca_file`, the
//! server name checked against `host`, rustls with the ring provider (the
//! one the whole workspace uses, so no process-wide default is needed).

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::error::MailboxError;

/// The largest CA file read (a full public bundle is about 250 KB).
const MAX_CA_FILE: u64 = 16 * 1024 * 1024;

/// The system's root certificates, loaded once per process (reading them
/// takes a while and they do not change under a running service).
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::debug!(%error, "skipping a system root certificate source");
        }
        loaded.certs
    })
}

/// What [`crate::connect`] needs to run a handshake.
#[derive(Clone)]
pub(crate) struct TlsSetup {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) name: ServerName<'static>,
}

impl TlsSetup {
    /// Trust the system roots and the certificates of `ca_file`; check the
    /// certificate against `host`.
    pub(crate) fn new(
        host: &str,
        ca_file: Option<&Path>,
        server: &str,
    ) -> Result<TlsSetup, MailboxError> {
        let fail = |step: &str, reason: String| MailboxError::Tls {
            server: server.to_owned(),
            step: step.to_owned(),
            reason,
        };
        let mut roots = RootCertStore::empty();
        let (_added, _ignored) = roots.add_parsable_certificates(system_roots().iter().cloned());
        if let Some(path) = ca_file {
            let step = format!("reading ca_file {}", path.display());
            let certs = read_pem_certs(path).map_err(|reason| fail(&step, reason))?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| fail(&step, format!("not a usable CA certificate: {e}")))?;
            }
        }
        if roots.is_empty() {
            return Err(fail(
                "choosing trusted certificates",
                "no system root certificates were found and no ca_file is set".into(),
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail("choosing TLS versions", e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(host.trim().to_owned()).map_err(|e| {
            fail(
                "checking the server name",
                format!("{host:?} cannot be checked against a certificate: {e}"),
            )
        })?;
        Ok(TlsSetup {
            config: Arc::new(config),
            name,
        })
    }
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| e.to_string())?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(format!("larger than {MAX_CA_FILE} bytes"));
    }
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("holds no PEM CERTIFICATE block".into());
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ca_file_is_a_tls_error_naming_it() {
        let err = TlsSetup::new("localhost", Some(Path::new("/nonexistent/ca.pem")), "x:1")
            .err()
            .expect("missing file");
        let text = err.to_string();
        assert!(matches!(err, MailboxError::Tls { .. }), "{text}");
        assert!(text.contains("/nonexistent/ca.pem"), "{text}");
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("pw-mailbox-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("empty.pem");
        std::fs::write(&path, "not a certificate\n").expect("write");
        let err = TlsSetup::new("localhost", Some(&path), "x:1")
            .err()
            .expect("no certs");
        assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn ip_addresses_are_valid_server_names() {
        // With no ca_file this may fail only for lack of system roots.
        match TlsSetup::new("127.0.0.1", None, "x:1") {
            Ok(setup) => assert!(matches!(setup.name, ServerName::IpAddress(_))),
            Err(e) => assert!(e.to_string().contains("no system root"), "{e}"),
        }
    }
}
