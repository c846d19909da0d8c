//! Replies the real bed never gives, from a scripted in-process SMTP
//! server: no STARTTLS where it is required, a hostile EHLO reply,
//! refusals at each step, a connection lost after the final dot, a server
//! that never answers, DIGEST-MD5 with a wrong server proof, and the
//! commit hook's place in the transaction.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::*;
use printwatch_config::{AuthEncryption, Secret, Security, SmtpConfig};
use printwatch_smtp::{CommitFuture, Mailer, Step};

fn cfg(port: u16) -> SmtpConfig {
    smtp_no_auth("127.0.0.1", port, Security::None)
}

fn rcpts(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

const MSG: &[u8] = b"Subject: t\r\n\r\nbody\r\n";

#[tokio::test]
async fn starttls_required_but_not_offered_fails_at_tls_and_sends_nothing_in_plain_text() {
    let fake = FakeServer::new(&["PIPELINING", "AUTH PLAIN LOGIN"]);
    let port = fake.clone().start().await;
    let mut c = cfg(port);
    c.security = Security::StartTls;
    c.auth = true;
    c.username = Some("u".into());
    c.password = Some(Secret::new("p"));
    let e = Mailer::new(&c, None)
        .unwrap()
        .send("a@x.test", &rcpts(&["b@x.test"]), MSG)
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Tls, "{e}");
    assert!(e.permanent);
    assert!(e.reason.contains("does not offer STARTTLS"), "{e}");
    let seen = fake.seen();
    assert!(
        seen.iter().all(|l| l.starts_with("EHLO") || l == "QUIT"),
        "sent in plain text: {seen:?}"
    );
}

#[tokio::test]
async fn a_blank_line_in_the_ehlo_reply_is_an_error_not_a_panic() {
    // lettre's EHLO parser would panic on this line; the mailer must not.
    let fake = FakeServer::new(&["  ", "8BITMIME"]);
    let port = fake.start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .probe()
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Connect, "{e}");
    assert!(e.reason.contains("could not be read"), "{e}");
}

#[tokio::test]
async fn a_refusing_greeting_fails_at_connect_with_its_code() {
    let mut fake = FakeServer::new(&[]);
    fake.greeting = "554 5.3.2 no service for you".into();
    let port = fake.start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .probe()
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Connect, "{e}");
    assert!(e.permanent);
    assert!(e.reason.starts_with("554 5.3.2"), "{e}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_at_connect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let (_socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let mut c = cfg(port);
    c.command_timeout = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let e = Mailer::new(&c, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Connect, "{e}");
    assert!(e.reason.contains("no answer"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(5));
    hold.abort();
}

#[tokio::test]
async fn a_refused_sender_is_a_sender_error_with_the_servers_reply() {
    let fake = FakeServer::new(&["8BITMIME"]).reply("MAIL", &["553 5.7.1 sender not allowed"]);
    let port = fake.start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .send("a@x.test", &rcpts(&["b@x.test"]), MSG)
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Sender);
    assert!(e.permanent);
    assert_eq!(e.reason, "553 5.7.1 sender not allowed");
}

#[tokio::test]
async fn a_refused_message_is_a_data_error_permanent_by_its_code() {
    for (reply, permanent) in [
        ("554 5.6.0 content rejected", true),
        ("451 4.3.0 try later", false),
    ] {
        let mut fake = FakeServer::new(&[]);
        fake.after_dot = AfterDot::Reply(reply.into());
        let port = fake.start().await;
        let e = Mailer::new(&cfg(port), None)
            .unwrap()
            .send("a@x.test", &rcpts(&["b@x.test"]), MSG)
            .await
            .unwrap_err();
        assert_eq!(e.step, Step::Data);
        assert_eq!(e.permanent, permanent, "{reply}");
        assert_eq!(e.reason, reply);
        assert!(!e.outcome_unknown());
    }
}

#[tokio::test]
async fn a_refused_data_command_is_a_data_error() {
    let fake = FakeServer::new(&[]).reply("DATA", &["554 5.5.1 no valid recipients"]);
    let port = fake.start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .send("a@x.test", &rcpts(&["b@x.test"]), MSG)
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Data);
    assert!(e.permanent);
}

#[tokio::test]
async fn a_connection_lost_after_the_final_dot_leaves_the_outcome_unknown() {
    let mut fake = FakeServer::new(&[]);
    fake.after_dot = AfterDot::Hang;
    let port = fake.start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .send("a@x.test", &rcpts(&["b@x.test"]), MSG)
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Data);
    assert!(!e.permanent);
    assert!(e.outcome_unknown(), "{e}");
}

#[tokio::test]
async fn per_recipient_replies_are_kept_and_all_refused_sends_no_data() {
    let fake = FakeServer::new(&[]).reply(
        "RCPT",
        &["550 5.1.1 no such user", "452 4.2.2 mailbox full"],
    );
    let port = fake.clone().start().await;
    let d = Mailer::new(&cfg(port), None)
        .unwrap()
        .send("a@x.test", &rcpts(&["b@x.test", "c@x.test"]), MSG)
        .await
        .unwrap();
    assert!(d.accepted.is_empty());
    assert_eq!(d.refused.len(), 2);
    assert!(d.refused[0].permanent && !d.refused[1].permanent);
    assert_eq!(d.refused[1].reply, "452 4.2.2 mailbox full");
    assert!(
        !fake.seen().iter().any(|l| l == "DATA"),
        "{:?}",
        fake.seen()
    );
}

#[tokio::test]
async fn commit_is_called_with_the_accepted_recipients_after_data_before_the_message() {
    let fake = FakeServer::new(&[]).reply("RCPT", &["250 ok", "550 5.1.1 no"]);
    let port = fake.clone().start().await;
    let mailer = Mailer::new(&cfg(port), None).unwrap();
    let committed: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen_at_commit: Arc<Mutex<Vec<String>>> = Arc::default();
    let (c2, s2, log) = (committed.clone(), seen_at_commit.clone(), fake.seen.clone());
    let d = mailer
        .send_committing(
            "a@x.test",
            &rcpts(&["b@x.test", "c@x.test"]),
            MSG,
            move |accepted: &[String]| -> CommitFuture {
                let accepted = accepted.to_vec();
                Box::pin(async move {
                    *c2.lock().unwrap() = accepted;
                    *s2.lock().unwrap() = log.lock().unwrap().clone();
                    Ok(())
                })
            },
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, ["b@x.test"]);
    assert_eq!(*committed.lock().unwrap(), ["b@x.test"]);
    let before = seen_at_commit.lock().unwrap().clone();
    assert_eq!(
        before.last().map(String::as_str),
        Some("DATA"),
        "commit must run right after DATA's 354, before the message: {before:?}"
    );
    assert!(fake.seen().iter().any(|l| l == "<message>"));
}

#[tokio::test]
async fn a_failing_commit_sends_nothing_and_is_retryable() {
    let fake = FakeServer::new(&[]);
    let port = fake.clone().start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .send_committing(
            "a@x.test",
            &rcpts(&["b@x.test"]),
            MSG,
            |_: &[String]| -> CommitFuture {
                Box::pin(async { Err("ledger unavailable".to_owned()) })
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Data);
    assert!(!e.permanent && !e.outcome_unknown());
    assert!(e.reason.contains("ledger unavailable"), "{e}");
    // The connection is dropped before the final dot: no message.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !fake.seen().iter().any(|l| l == "<message>"),
        "{:?}",
        fake.seen()
    );
}

#[tokio::test]
async fn eight_bit_mail_to_a_server_without_8bitmime_is_refused_before_mail_from() {
    let fake = FakeServer::new(&[]);
    let port = fake.clone().start().await;
    let e = Mailer::new(&cfg(port), None)
        .unwrap()
        .send(
            "a@x.test",
            &rcpts(&["b@x.test"]),
            "Subject: t\r\n\r\nテスト\r\n".as_bytes(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Data);
    assert!(e.reason.contains("8BITMIME"), "{e}");
    assert!(!fake.seen().iter().any(|l| l.starts_with("MAIL")));
}

#[tokio::test]
async fn digest_md5_with_a_wrong_server_proof_is_refused_and_cancelled() {
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let challenge =
        b64("realm=\"x.test\",nonce=\"abc\",qop=\"auth\",algorithm=md5-sess,charset=utf-8");
    let mut fake = FakeServer::new(&["AUTH CRAM-MD5 DIGEST-MD5"])
        .reply("AUTH", &[&format!("334 {challenge}")]);
    fake.auth_steps = vec![
        format!("334 {}", b64("rspauth=00000000000000000000000000000000")),
        "501 5.7.0 authentication cancelled".into(),
    ];
    let port = fake.clone().start().await;
    let mut c = cfg(port);
    c.auth = true;
    c.username = Some("u".into());
    c.password = Some(Secret::new("p"));
    c.auth_encryption = AuthEncryption::On;
    let e = Mailer::new(&c, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Auth, "{e}");
    assert!(e.permanent);
    assert!(e.reason.contains("rspauth"), "{e}");
    let seen = fake.seen();
    assert_eq!(
        seen.iter().filter(|l| l.starts_with("AUTH")).count(),
        1,
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l.starts_with("AUTH DIGEST-MD5")),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|l| l == "*"),
        "the exchange was not cancelled: {seen:?}"
    );
}

#[tokio::test]
async fn a_malformed_digest_md5_challenge_is_an_auth_error() {
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    let mut fake = FakeServer::new(&["AUTH DIGEST-MD5"])
        .reply("AUTH", &[&format!("334 {}", b64("nonce=\"unterminated"))]);
    fake.auth_steps = vec!["501 5.7.0 cancelled".into()];
    let port = fake.clone().start().await;
    let mut c = cfg(port);
    c.auth = true;
    c.username = Some("u".into());
    c.password = Some(Secret::new("p"));
    let e = Mailer::new(&c, None).unwrap().probe().await.unwrap_err();
    assert_eq!(e.step, Step::Auth, "{e}");
    assert!(e.reason.contains("malformed"), "{e}");
}
