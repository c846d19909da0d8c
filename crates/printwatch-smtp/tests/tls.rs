//! Transport security against the real bed: certificates are verified
//! (a CA other than the bed's fails at TLS, permanently), the security
//! mode is never guessed from the port, and `security = "none"` works
//! where the server allows it.

mod common;

use std::path::PathBuf;

use common::*;
use printwatch_config::Security;
use printwatch_smtp::{Mailer, SetupError, Step};

/// A CA bundle that does not contain the bed's CA: the system's.
fn other_ca() -> Option<PathBuf> {
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[tokio::test]
async fn a_wrong_ca_fails_at_tls_for_starttls_and_implicit_tls() {
    let bed = bed();
    for (port, security) in [
        (bed.submission_port(), Security::StartTls),
        (bed.smtps_port(), Security::Tls),
    ] {
        for ca in [None, other_ca()] {
            let mut cfg = smtp(&bed, port, security, "alice");
            cfg.ca_file = ca.clone();
            let e = Mailer::new(&cfg, None).unwrap().probe().await.unwrap_err();
            assert_eq!(e.step, Step::Tls, "{security:?} with {ca:?}: {e}");
            assert!(e.permanent, "{e}");
            assert!(e.reason.contains("certificate"), "{e}");
        }
    }
}

#[tokio::test]
async fn implicit_tls_against_a_starttls_port_fails_at_tls() {
    let bed = bed();
    let mut cfg = smtp(&bed, bed.submission_port(), Security::Tls, "alice");
    cfg.command_timeout = std::time::Duration::from_secs(5);
    let e = Mailer::new(&cfg, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Tls, "{e}");
}

#[tokio::test]
async fn a_closed_port_fails_at_connect() {
    let port = printwatch_testing::process::free_port().unwrap();
    let cfg = smtp_no_auth("127.0.0.1", port, Security::None);
    let e = Mailer::new(&cfg, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Connect, "{e}");
    assert!(!e.permanent);
    assert!(e.reason.contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn plain_smtp_without_auth_delivers_where_the_server_allows_it() {
    let bed = bed();
    let to = bed.fresh_address("plain");
    let cfg = smtp_no_auth(bed.host(), bed.smtp_port(), Security::None);
    let mailer = Mailer::new(&cfg, None).unwrap();
    let info = mailer.probe().await.unwrap();
    assert_eq!(info.mechanism, None);
    mailer
        .send(
            "printer1@printwatch.test",
            std::slice::from_ref(&to),
            &message("printer1@printwatch.test", &to, "plain", "x"),
        )
        .await
        .unwrap();
    assert_eq!(
        bed.wait_for_mail(&to, 1, WAIT).await.unwrap()[0].subject(),
        Some("plain")
    );
}

#[test]
fn a_missing_ca_file_is_a_setup_error_naming_the_file() {
    let bed = bed();
    let mut cfg = smtp(&bed, bed.submission_port(), Security::StartTls, "alice");
    cfg.ca_file = Some("/nonexistent/pw-ca.pem".into());
    let Err(e) = Mailer::new(&cfg, None) else {
        panic!("built with a missing CA file")
    };
    assert!(matches!(e, SetupError::CaFile { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/pw-ca.pem"), "{e}");
}
