//! Per-recipient outcomes against the real bed: `reject-*@printwatch.test`
//! is refused at RCPT with 550 and `defer-*@printwatch.test` with 450
//! (`deploy/dev/mailbed.sh`); every other address of the domain is
//! delivered. (Other domains are accepted at RCPT and bounced afterwards,
//! so they cannot show a refusal.)

mod common;

use common::*;
use printwatch_config::Security;
use printwatch_smtp::{Mailer, Step};

fn mailer() -> (printwatch_testing::mail::MailBed, Mailer, String) {
    let bed = bed();
    let login = bed.fresh_address("rcpt-sender");
    let m = Mailer::new(
        &smtp(&bed, bed.submission_port(), Security::StartTls, &login),
        None,
    )
    .unwrap();
    (bed, m, login)
}

#[tokio::test]
async fn a_refused_recipient_does_not_cost_the_others_their_mail() {
    let (bed, mailer, from) = mailer();
    let first = bed.fresh_address("keep");
    let refused = bed.fresh_address("reject");
    let second = bed.fresh_address("keep");
    let rcpts = vec![first.clone(), refused.clone(), second.clone()];
    let d = mailer
        .send(
            &from,
            &rcpts,
            &message(&from, &first, "partly refused", "hello"),
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, [first.as_str(), second.as_str()]);
    assert_eq!(d.refused.len(), 1);
    let r = &d.refused[0];
    assert_eq!(r.recipient, refused);
    assert!(r.permanent, "{r:?}");
    assert!(r.reply.starts_with("550 5.1.1 <reject-"), "{}", r.reply);
    assert!(
        r.reply.contains("Recipient address rejected"),
        "{}",
        r.reply
    );
    for to in [&first, &second] {
        let mails = bed.wait_for_mail(to, 1, WAIT).await.unwrap();
        assert_eq!(mails[0].subject(), Some("partly refused"));
    }
}

#[tokio::test]
async fn a_temporarily_refused_recipient_is_not_permanent() {
    let (bed, mailer, from) = mailer();
    let ok = bed.fresh_address("keep");
    let later = bed.fresh_address("defer");
    let d = mailer
        .send(
            &from,
            &[later.clone(), ok.clone()],
            &message(&from, &ok, "one deferred", "x"),
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, [ok.as_str()]);
    assert_eq!(d.refused[0].recipient, later);
    assert!(!d.refused[0].permanent);
    assert!(
        d.refused[0].reply.starts_with("450 4.2.1"),
        "{}",
        d.refused[0].reply
    );
    bed.wait_for_mail(&ok, 1, WAIT).await.unwrap();
}

/// All refused: Ok with nothing accepted and no DATA; the same connection
/// then serves the next mail (after RSET).
#[tokio::test]
async fn when_every_recipient_is_refused_nothing_is_sent_and_the_next_mail_still_goes() {
    let (bed, mailer, from) = mailer();
    let r1 = bed.fresh_address("reject");
    let r2 = bed.fresh_address("reject");
    let d = mailer
        .send(
            &from,
            &[r1, r2],
            &message(&from, "x@printwatch.test", "nobody", "x"),
        )
        .await
        .unwrap();
    assert!(d.accepted.is_empty());
    assert_eq!(d.refused.len(), 2);
    assert!(d.refused.iter().all(|r| r.permanent));

    let to = bed.fresh_address("after");
    mailer
        .send(
            &from,
            std::slice::from_ref(&to),
            &message(&from, &to, "after all refused", "x"),
        )
        .await
        .unwrap();
    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    assert_eq!(mails[0].subject(), Some("after all refused"));
    mailer.close().await;
    let sessions = wait_until_closed(&bed, &from).await;
    assert_eq!(
        sessions.len(),
        1,
        "expected one connection for both sends: {sessions:#?}"
    );
}

async fn wait_until_closed(
    bed: &printwatch_testing::mail::MailBed,
    login: &str,
) -> Vec<PostfixSession> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = sessions_of(bed.postfix_log(), login);
        if (!s.is_empty() && s.iter().all(|s| s.closed)) || tokio::time::Instant::now() >= deadline
        {
            return s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_malformed_recipient_is_refused_without_asking_the_server() {
    let (bed, mailer, from) = mailer();
    let to = bed.fresh_address("keep");
    let d = mailer
        .send(
            &from,
            &[to.clone(), "not an address".into()],
            &message(&from, &to, "one malformed", "x"),
        )
        .await
        .unwrap();
    assert_eq!(d.accepted, [to.as_str()]);
    assert!(
        d.refused[0].reply.starts_with("invalid address"),
        "{:?}",
        d.refused
    );
    bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
}

#[tokio::test]
async fn a_malformed_sender_is_a_permanent_sender_error() {
    let (bed, mailer, _) = mailer();
    let to = bed.fresh_address("keep");
    let e = mailer
        .send(
            "no at sign",
            std::slice::from_ref(&to),
            &message("a@printwatch.test", &to, "x", "x"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.step, Step::Sender);
    assert!(e.permanent);
}

/// A message with bare LF line ends arrives intact (sent as CRLF).
#[tokio::test]
async fn bare_lf_line_ends_are_sent_as_crlf() {
    let (bed, mailer, from) = mailer();
    let to = bed.fresh_address("lf");
    let raw = format!("From: {from}\nTo: {to}\nSubject: bare LF\n\nline one\n.\nline three\n");
    mailer
        .send(&from, std::slice::from_ref(&to), raw.as_bytes())
        .await
        .unwrap();
    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    assert_eq!(mails[0].subject(), Some("bare LF"));
    let body = mails[0].text_body().unwrap_or_default();
    // The lone "." line survives (dot-stuffed on the way), stored with CRLF.
    assert!(body.contains("line one\r\n.\r\nline three"), "{body:?}");
}
