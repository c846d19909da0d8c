//! POP before SMTP against the real bed: a POP3 login (plain, STLS or
//! implicit TLS), the configured wait, then the SMTP connection — checked
//! in the servers' own logs, not in the client.

mod common;

use std::time::Duration;

use common::*;
use printwatch_config::Security;
use printwatch_smtp::{Mailer, Step};

/// The time of Dovecot's `pop3-login: ... Login: user=<user>` line.
fn pop_login_time(dovecot_log: &str, user: &str) -> Option<f64> {
    let needle = format!("Login: user=<{user}>");
    dovecot_log
        .lines()
        .find(|l| l.contains("pop3-login") && l.contains(&needle))
        .and_then(log_time)
}

/// The POP3 login comes first and the SMTP connection at least the wait
/// later, by the servers' clocks. Dovecot logs microseconds, Postfix whole
/// seconds, so with a wait of 1.5 s the Postfix second of the connect is
/// provably at least 0.5 s after the login (connect ≥ login + 1.5 s, and
/// the logged second is > connect − 1 s); without the wait it would be
/// before or at the login's second.
#[tokio::test]
async fn the_pop3_login_precedes_the_smtp_connection_by_the_wait() {
    let bed = bed();
    let pop_user = bed.fresh_address("pop");
    let smtp_user = bed.fresh_address("pop-smtp");
    let to = bed.fresh_address("rcpt");
    let wait = Duration::from_millis(1500);
    let mailer = Mailer::new(
        &smtp(&bed, bed.submission_port(), Security::StartTls, &smtp_user),
        Some(&pop(&bed, Security::StartTls, &pop_user, wait)),
    )
    .unwrap();
    let started = std::time::Instant::now();
    mailer
        .send(
            &smtp_user,
            std::slice::from_ref(&to),
            &message(&smtp_user, &to, "after POP", "x"),
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= wait);
    assert_eq!(
        bed.wait_for_mail(&to, 1, WAIT).await.unwrap()[0].subject(),
        Some("after POP")
    );

    let dovecot = wait_for_log(bed.dovecot_log(), WAIT, |t| {
        pop_login_time(t, &pop_user).is_some()
    })
    .await;
    let login_at = pop_login_time(&dovecot, &pop_user).expect("Dovecot logged the POP3 login");
    let sessions = sessions_of(bed.postfix_log(), &smtp_user);
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    let connect_second = sessions[0].connect.expect("Postfix logged the connect");
    assert!(
        connect_second - login_at >= 0.5,
        "SMTP connect (second {connect_second}) is not at least 0.5 s after the POP3 login ({login_at})"
    );
    assert!(connect_second - login_at < 10.0);
}

#[tokio::test]
async fn pop_before_smtp_works_over_plain_pop3_and_pop3s() {
    let bed = bed();
    for security in [Security::None, Security::Tls] {
        let pop_user = bed.fresh_address("pop");
        let to = bed.fresh_address("rcpt");
        let mailer = Mailer::new(
            &smtp(&bed, bed.smtps_port(), Security::Tls, "alice"),
            Some(&pop(&bed, security, &pop_user, Duration::from_millis(300))),
        )
        .unwrap();
        let info = mailer.probe().await.unwrap();
        assert!(info.pop_before_smtp);
        mailer
            .send(
                "alice@printwatch.test",
                std::slice::from_ref(&to),
                &message("alice@printwatch.test", &to, "pop", "x"),
            )
            .await
            .unwrap_or_else(|e| panic!("POP3 {security:?}: {e}"));
        bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
        let log = wait_for_log(bed.dovecot_log(), WAIT, |t| {
            t.contains(&format!("Login: user=<{pop_user}>"))
        })
        .await;
        assert!(
            log.contains(&format!("Login: user=<{pop_user}>")),
            "POP3 {security:?}"
        );
    }
}

#[tokio::test]
async fn a_refused_pop3_login_fails_before_any_smtp_connection() {
    let bed = bed();
    let smtp_user = bed.fresh_address("pop-smtp");
    let mut p = pop(&bed, Security::None, "alice", Duration::ZERO);
    p.password = printwatch_config::Secret::new("wrong-pop-password");
    let mailer = Mailer::new(
        &smtp(&bed, bed.submission_port(), Security::StartTls, &smtp_user),
        Some(&p),
    )
    .unwrap();
    let e = mailer.probe().await.unwrap_err();
    assert_eq!(e.step, Step::PopBeforeSmtp, "{e}");
    assert!(e.reason.contains("-ERR"), "{e}");
    assert!(!e.to_string().contains("wrong-pop-password"));
    assert!(e.to_string().starts_with("POP before SMTP: "), "{e}");
}
