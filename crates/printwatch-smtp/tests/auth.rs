//! SMTP AUTH against the real bed (Postfix with Dovecot SASL): every
//! mechanism of the manual over STARTTLS and implicit TLS, realms, the
//! `auth_encryption` rules, and wrong passwords. Each test logs in as its
//! own fresh user, so Postfix's log line for the message
//! (`sasl_method=..., sasl_username=<user>`) shows which mechanism the
//! server saw, and the mail itself is read back from the mailbox.

mod common;

use common::*;
use printwatch_config::{AuthEncryption, Secret, Security};
use printwatch_smtp::{AuthMechanism, Mailer, Step};
use printwatch_testing::mail::MailBed;

/// Sends one mail logging in as a fresh user with only `mechanism`, and
/// checks the mailbox and the mechanism Postfix recorded.
async fn delivers_with(mechanism: AuthMechanism, port_of: fn(&MailBed) -> u16, security: Security) {
    let bed = bed();
    let login = bed.fresh_address(&format!("auth-{}", mechanism.name().to_ascii_lowercase()));
    let to = bed.fresh_address("rcpt");
    let mailer = Mailer::new(&smtp(&bed, port_of(&bed), security, &login), None)
        .unwrap()
        .with_mechanisms(&[mechanism]);
    let subject = format!("{mechanism} over {security:?}");
    let delivery = mailer
        .send(
            &login,
            std::slice::from_ref(&to),
            &message(&login, &to, &subject, "body line\r\n.leading dot\r\n"),
        )
        .await
        .unwrap_or_else(|e| panic!("{mechanism} over {security:?}: {e}"));
    assert_eq!(delivery.accepted, [to.as_str()]);
    assert!(delivery.refused.is_empty());

    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    assert_eq!(mails[0].subject(), Some(subject.as_str()));
    let body = mails[0].text_body().unwrap_or_default();
    assert!(
        body.contains("body line") && body.contains(".leading dot"),
        "{body:?}"
    );

    let log = wait_for_log(bed.postfix_log(), WAIT, |t| {
        t.contains(&format!("sasl_username={login}"))
    })
    .await;
    assert!(
        log.contains(&format!(
            "sasl_method={}, sasl_username={login}",
            mechanism.name()
        )),
        "Postfix did not record {mechanism} for {login}:\n{}",
        bed.log_lines_about(&login)
    );
}

fn submission(bed: &MailBed) -> u16 {
    bed.submission_port()
}
fn smtps(bed: &MailBed) -> u16 {
    bed.smtps_port()
}

#[tokio::test]
async fn plain_delivers_over_starttls() {
    delivers_with(AuthMechanism::Plain, submission, Security::StartTls).await;
}
#[tokio::test]
async fn login_delivers_over_starttls() {
    delivers_with(AuthMechanism::Login, submission, Security::StartTls).await;
}
#[tokio::test]
async fn cram_md5_delivers_over_starttls() {
    delivers_with(AuthMechanism::CramMd5, submission, Security::StartTls).await;
}
#[tokio::test]
async fn digest_md5_delivers_over_starttls() {
    delivers_with(AuthMechanism::DigestMd5, submission, Security::StartTls).await;
}
#[tokio::test]
async fn plain_delivers_over_implicit_tls() {
    delivers_with(AuthMechanism::Plain, smtps, Security::Tls).await;
}
#[tokio::test]
async fn login_delivers_over_implicit_tls() {
    delivers_with(AuthMechanism::Login, smtps, Security::Tls).await;
}
#[tokio::test]
async fn cram_md5_delivers_over_implicit_tls() {
    delivers_with(AuthMechanism::CramMd5, smtps, Security::Tls).await;
}
#[tokio::test]
async fn digest_md5_delivers_over_implicit_tls() {
    delivers_with(AuthMechanism::DigestMd5, smtps, Security::Tls).await;
}

#[tokio::test]
async fn auto_picks_digest_md5_when_the_server_offers_everything() {
    let bed = bed();
    let login = bed.fresh_address("auth-auto");
    let mailer = Mailer::new(
        &smtp(&bed, bed.submission_port(), Security::StartTls, &login),
        None,
    )
    .unwrap();
    let info = mailer.probe().await.unwrap();
    assert_eq!(info.mechanism, Some(AuthMechanism::DigestMd5));
    for m in ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5"] {
        assert!(
            info.offered_mechanisms.iter().any(|o| o == m),
            "{:?}",
            info.offered_mechanisms
        );
    }
}

/// DIGEST-MD5 with the realm written in the user name (`notify@printwatch.test`,
/// username "notify" + realm) and without (`notify`, the server's realm).
#[tokio::test]
async fn digest_md5_works_with_and_without_the_realm_in_the_user_name() {
    let bed = bed();
    for login in ["notify@printwatch.test", "notify"] {
        let to = bed.fresh_address("realm");
        let mailer = Mailer::new(
            &smtp(&bed, bed.submission_port(), Security::StartTls, login),
            None,
        )
        .unwrap()
        .with_mechanisms(&[AuthMechanism::DigestMd5]);
        let subject = format!("realm form {login}");
        mailer
            .send(
                "notify@printwatch.test",
                std::slice::from_ref(&to),
                &message("notify@printwatch.test", &to, &subject, "x"),
            )
            .await
            .unwrap_or_else(|e| panic!("DIGEST-MD5 as {login}: {e}"));
        let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
        assert_eq!(mails[0].subject(), Some(subject.as_str()));
    }
}

/// `auth_encryption = "on"` against the port offering only PLAIN and
/// LOGIN: refused before any credential is sent. The user is fresh and its
/// password wrong, so any AUTH would show up in Dovecot's log (every login
/// of a non-named user logs a `passwd-file(<user>,...)` line — the wrong
/// password test below checks that).
#[tokio::test]
async fn auth_encryption_on_refuses_a_server_offering_only_plain_and_login_and_sends_no_credentials()
 {
    let bed = bed();
    let login = bed.fresh_address("auth-on");
    let to = bed.fresh_address("rcpt");
    let mut cfg = smtp(
        &bed,
        bed.submission_plain_only_port(),
        Security::StartTls,
        &login,
    );
    cfg.auth_encryption = AuthEncryption::On;
    cfg.password = Some(Secret::new("wrong-on-purpose"));
    let mailer = Mailer::new(&cfg, None).unwrap();
    let e = mailer
        .send(
            &login,
            std::slice::from_ref(&to),
            &message(&login, &to, "never", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Auth, "{e}");
    assert!(e.permanent, "{e}");
    assert!(e.reason.contains("offers AUTH PLAIN LOGIN"), "{e}");
    assert!(
        e.reason.contains("CRAM-MD5") && e.reason.contains("DIGEST-MD5"),
        "{e}"
    );
    assert!(e.reason.contains("no credentials were sent"), "{e}");

    // Give Dovecot time to log anything it might have seen.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let dovecot = std::fs::read_to_string(bed.dovecot_log()).unwrap();
    assert!(
        !dovecot.contains(&login),
        "an AUTH reached Dovecot:\n{}",
        bed.log_lines_about(&login)
    );
    bed.ensure_mail_count_stays(&to, 0, std::time::Duration::from_millis(500))
        .await
        .unwrap();
}

#[tokio::test]
async fn auth_encryption_on_uses_cram_md5_or_digest_md5_where_offered() {
    let bed = bed();
    let login = bed.fresh_address("auth-on-ok");
    let to = bed.fresh_address("rcpt");
    let mut cfg = smtp(&bed, bed.submission_port(), Security::StartTls, &login);
    cfg.auth_encryption = AuthEncryption::On;
    let mailer = Mailer::new(&cfg, None)
        .unwrap()
        .with_mechanisms(&[AuthMechanism::CramMd5, AuthMechanism::Plain]);
    // PLAIN is excluded by auth_encryption = on, so CRAM-MD5 it is.
    assert_eq!(
        mailer.probe().await.unwrap().mechanism,
        Some(AuthMechanism::CramMd5)
    );
    mailer
        .send(
            &login,
            std::slice::from_ref(&to),
            &message(&login, &to, "on", "x"),
        )
        .await
        .unwrap();
    bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
}

#[tokio::test]
async fn auth_encryption_off_uses_plain_even_when_digest_md5_is_offered() {
    let bed = bed();
    let login = bed.fresh_address("auth-off");
    let mut cfg = smtp(&bed, bed.smtps_port(), Security::Tls, &login);
    cfg.auth_encryption = AuthEncryption::Off;
    let mailer = Mailer::new(&cfg, None).unwrap();
    assert_eq!(
        mailer.probe().await.unwrap().mechanism,
        Some(AuthMechanism::Plain)
    );
}

/// A wrong password: Step::Auth with the server's 535, nothing delivered,
/// the password in no error text. Also the control for the "no
/// credentials were sent" test: a refused login does reach Dovecot's log.
#[tokio::test]
async fn a_wrong_password_fails_at_auth_for_every_mechanism_and_delivers_nothing() {
    let bed = bed();
    let to = bed.fresh_address("rcpt");
    for mechanism in AuthMechanism::ALL {
        let login = bed.fresh_address("auth-wrong");
        let mut cfg = smtp(&bed, bed.submission_port(), Security::StartTls, &login);
        cfg.password = Some(Secret::new("hunter2-wrong"));
        let mailer = Mailer::new(&cfg, None)
            .unwrap()
            .with_mechanisms(&[mechanism]);
        let e = mailer
            .send(
                &login,
                std::slice::from_ref(&to),
                &message(&login, &to, "never", "x"),
            )
            .await
            .unwrap_err();
        assert_eq!(e.step, Step::Auth, "{mechanism}: {e}");
        assert!(e.reason.starts_with("535"), "{mechanism}: {e}");
        assert!(e.permanent, "{mechanism}: {e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        let dovecot = wait_for_log(bed.dovecot_log(), WAIT, |t| t.contains(&login)).await;
        assert!(
            dovecot.contains(&login),
            "{mechanism}: the refused login is not in Dovecot's log"
        );
    }
    // A named user with another user's password is refused too.
    let mut cfg = smtp(&bed, bed.submission_port(), Security::StartTls, "alice");
    cfg.password = Some(Secret::new("secret-bob"));
    let e = Mailer::new(&cfg, None)
        .unwrap()
        .send(
            "alice@printwatch.test",
            std::slice::from_ref(&to),
            &message("alice@printwatch.test", &to, "never", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Auth, "{e}");
    bed.ensure_mail_count_stays(&to, 0, std::time::Duration::from_millis(500))
        .await
        .unwrap();
}

/// Without STARTTLS the submission port offers no AUTH; the error says so.
#[tokio::test]
async fn auth_without_tls_on_a_tls_only_submission_port_is_refused_clearly() {
    let bed = bed();
    let cfg = smtp(&bed, bed.smtp_port(), Security::None, "alice");
    // Port 10025 offers no AUTH at all.
    let e = Mailer::new(&cfg, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Auth, "{e}");
    assert!(e.reason.contains("offers no SMTP AUTH"), "{e}");
}
