//! POP before SMTP against a server that really requires it: the bed's
//! gate port (`PW_SUBMISSION_POP_GATE_PORT`, 10589: STARTTLS, no SMTP
//! AUTH) relays only for a sender that logged in over POP3 from the same
//! address within `PW_POP_GATE_SECONDS` (see deploy/dev/README.md).

mod common;

use std::time::Duration;

use common::*;
use printwatch_config::Security;
use printwatch_smtp::Mailer;
use printwatch_testing::mail::MailBed;

/// The gate port from the bed's description (the testing crate's
/// `MailBed` predates it).
fn gate_port(bed: &MailBed) -> u16 {
    let env = std::fs::read_to_string(bed.dir().join("env")).expect("the bed's env file");
    env.lines()
        .find_map(|l| l.strip_prefix("PW_SUBMISSION_POP_GATE_PORT="))
        .and_then(|p| p.trim().parse().ok())
        .expect("the bed has a POP before SMTP gate port")
}

fn gate_smtp(bed: &MailBed) -> printwatch_config::SmtpConfig {
    let mut cfg = smtp_no_auth(bed.host(), gate_port(bed), Security::StartTls);
    cfg.ca_file = Some(bed.ca_file().to_path_buf());
    cfg
}

#[tokio::test]
async fn without_a_pop3_login_the_gate_refuses_to_relay() {
    let bed = bed();
    let sender = bed.fresh_address("gate");
    let to = bed.fresh_address("gate-rcpt");
    let mailer = Mailer::new(&gate_smtp(&bed), None).unwrap();
    let d = mailer
        .send(
            &sender,
            std::slice::from_ref(&to),
            &message(&sender, &to, "no POP", "x"),
        )
        .await
        .unwrap();
    assert!(d.accepted.is_empty(), "{d:?}");
    assert!(d.refused[0].permanent);
    assert!(
        d.refused[0].reply.starts_with("554 5.7.1"),
        "{}",
        d.refused[0].reply
    );
    assert!(
        d.refused[0].reply.contains("POP before SMTP required"),
        "{}",
        d.refused[0].reply
    );
    bed.ensure_mail_count_stays(&to, 0, Duration::from_millis(500))
        .await
        .unwrap();
}

#[tokio::test]
async fn with_pop_before_smtp_the_gate_relays() {
    let bed = bed();
    let sender = bed.fresh_address("gate");
    let to = bed.fresh_address("gate-rcpt");
    let mailer = Mailer::new(
        &gate_smtp(&bed),
        Some(&pop(
            &bed,
            Security::StartTls,
            &sender,
            Duration::from_millis(200),
        )),
    )
    .unwrap();
    let d = mailer
        .send(
            &sender,
            std::slice::from_ref(&to),
            &message(&sender, &to, "through the gate", "x"),
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, [to.as_str()], "{d:?}");
    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    assert_eq!(mails[0].subject(), Some("through the gate"));
}

/// The gate keys on the sender: another user's POP3 login opens nothing.
#[tokio::test]
async fn a_pop3_login_of_another_user_does_not_open_the_gate() {
    let bed = bed();
    let sender = bed.fresh_address("gate");
    let someone_else = bed.fresh_address("gate-other");
    let to = bed.fresh_address("gate-rcpt");
    let mailer = Mailer::new(
        &gate_smtp(&bed),
        Some(&pop(&bed, Security::None, &someone_else, Duration::ZERO)),
    )
    .unwrap();
    let d = mailer
        .send(
            &sender,
            std::slice::from_ref(&to),
            &message(&sender, &to, "wrong POP user", "x"),
        )
        .await
        .unwrap();
    assert!(d.accepted.is_empty(), "{d:?}");
    assert!(
        d.refused[0].reply.contains("POP before SMTP required"),
        "{}",
        d.refused[0].reply
    );
}
