//! printwatch-mailbox against the real local mail bed (Postfix + Dovecot,
//! `deploy/dev/mailbed.sh`): POP3 and IMAP, each with no TLS, STARTTLS and
//! implicit TLS.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mail_parser::MessageParser;
use printwatch_mailbox::{
    Listed, MailboxError, MailboxSettings, ReceiveProtocol, Secret, Security, Session, connect,
    pop3_login_only,
};
use printwatch_testing::mail::{self, MailBed};

const BIG: u64 = 1024 * 1024;
/// Time for Postfix to deliver injected mail.
const DELIVERY: Duration = Duration::from_secs(30);

fn bed() -> MailBed {
    MailBed::shared().expect("mail test bed")
}

fn bed_security(security: Security) -> mail::Security {
    match security {
        Security::None => mail::Security::None,
        Security::StartTls => mail::Security::StartTls,
        Security::Tls => mail::Security::Tls,
    }
}

fn settings_as(
    bed: &MailBed,
    protocol: ReceiveProtocol,
    security: Security,
    user: &str,
    password: &str,
) -> MailboxSettings {
    let port = match protocol {
        ReceiveProtocol::Pop3 => bed.pop3_port_for(bed_security(security)),
        ReceiveProtocol::Imap => bed.imap_port_for(bed_security(security)),
    };
    MailboxSettings {
        host: bed.host().to_owned(),
        port,
        security,
        ca_file: (security != Security::None).then(|| bed.ca_file().to_path_buf()),
        username: user.to_owned(),
        password: Secret::new(password),
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(20),
        max_response_bytes: 16 * 1024 * 1024,
    }
}

fn settings(
    bed: &MailBed,
    protocol: ReceiveProtocol,
    security: Security,
    address: &str,
) -> MailboxSettings {
    settings_as(bed, protocol, security, address, &bed.password_for(address))
}

/// Sends `count` mails to a fresh address and waits until they are
/// delivered; returns the address and the subjects. Each body has lines
/// that start with dots, which POP3 must dot-unstuff.
async fn mailbox_with(bed: &MailBed, count: usize) -> (String, Vec<String>) {
    let to = bed.fresh_address("mbx");
    let mut subjects = Vec::new();
    for i in 1..=count {
        let subject = format!("mailbox test {i} {}", &to[4..16]);
        let body = format!("message {i}\n.leading dot\n..two dots\n.\nend\n");
        bed.send_plain("sender@printwatch.test", &to, &subject, &body)
            .await
            .expect("inject mail");
        subjects.push(subject);
    }
    bed.wait_for_mail(&to, count, DELIVERY)
        .await
        .expect("mail delivered");
    (to, subjects)
}

fn subject_of(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.subject().map(str::to_owned))
        .unwrap_or_default()
}

fn body_of(raw: &[u8]) -> String {
    MessageParser::default()
        .parse(raw)
        .and_then(|m| m.body_text(0).map(|b| b.replace("\r\n", "\n")))
        .unwrap_or_default()
}

/// The whole cycle for one protocol and security mode.
async fn round_trip(protocol: ReceiveProtocol, security: Security) {
    let bed = bed();
    let (to, subjects) = mailbox_with(&bed, 3).await;
    let s = settings(&bed, protocol, security, &to);

    let mut session = connect(&s, protocol).await.expect("connect and log in");
    assert_eq!(session.protocol(), protocol);
    let listed = session.list().await.expect("list");
    assert_eq!(listed.len(), 3, "{listed:?}");
    let ids: BTreeSet<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "ids are distinct: {listed:?}");

    // Every message: the listed size is the number of bytes fetched, the
    // subject is one sent, the dot lines survive.
    let mut got = BTreeSet::new();
    for l in &listed {
        let raw = session.fetch(&l.id, BIG).await.expect("fetch");
        assert_eq!(raw.len() as u64, l.size, "listed size of {}", l.id);
        got.insert(subject_of(&raw));
        let body = body_of(&raw);
        assert!(
            body.contains("\n.leading dot\n..two dots\n.\nend"),
            "dot lines kept: {body:?}"
        );
    }
    assert_eq!(got, subjects.iter().cloned().collect::<BTreeSet<_>>());

    // A limit below the size is refused from the listed size, before any
    // download (size: Some), and the session goes on.
    let first = listed[0].clone();
    match session.fetch(&first.id, first.size - 1).await {
        Err(MailboxError::TooBig { id, size, limit }) => {
            assert_eq!(id, first.id);
            assert_eq!(size, Some(first.size));
            assert_eq!(limit, first.size - 1);
        }
        other => panic!("expected TooBig, got {other:?}"),
    }
    let again = session
        .fetch(&first.id, first.size)
        .await
        .expect("fetch at the exact size");
    assert_eq!(again.len() as u64, first.size);

    // Finish one; a new session lists the other two, with the same ids.
    session.finish(&first.id, false).await.expect("finish");
    session.logout().await.expect("logout");

    let mut session = connect(&s, protocol).await.expect("second session");
    let rest = session.list().await.expect("list again");
    let expected: Vec<Listed> = listed[1..].to_vec();
    assert_eq!(rest, expected);
    session.logout().await.expect("logout");

    let kept = bed.mailbox_count(&to).await.expect("count");
    match protocol {
        // DELE + QUIT removed it.
        ReceiveProtocol::Pop3 => assert_eq!(kept, 2),
        // Only flagged: still there, but not listed.
        ReceiveProtocol::Imap => assert_eq!(kept, 3),
    }
}

#[tokio::test]
async fn pop3_plain_round_trip() {
    round_trip(ReceiveProtocol::Pop3, Security::None).await;
}

#[tokio::test]
async fn pop3_stls_round_trip() {
    round_trip(ReceiveProtocol::Pop3, Security::StartTls).await;
}

#[tokio::test]
async fn pop3s_round_trip() {
    round_trip(ReceiveProtocol::Pop3, Security::Tls).await;
}

#[tokio::test]
async fn imap_plain_round_trip() {
    round_trip(ReceiveProtocol::Imap, Security::None).await;
}

#[tokio::test]
async fn imap_starttls_round_trip() {
    round_trip(ReceiveProtocol::Imap, Security::StartTls).await;
}

#[tokio::test]
async fn imaps_round_trip() {
    round_trip(ReceiveProtocol::Imap, Security::Tls).await;
}

/// A wrong password is an Auth error in every mode, and neither the
/// message nor the debug form contains the password.
#[tokio::test]
async fn wrong_password_is_an_auth_error_without_the_password() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 1).await;
    let wrong = format!("Wr0ng-{}", uuid_like());
    for protocol in [ReceiveProtocol::Pop3, ReceiveProtocol::Imap] {
        for security in [Security::None, Security::StartTls, Security::Tls] {
            let s = settings_as(&bed, protocol, security, &to, &wrong);
            let err = connect(&s, protocol)
                .await
                .expect_err("wrong password must fail");
            let text = err.to_string();
            assert!(
                matches!(err, MailboxError::Auth { .. }),
                "{protocol:?}/{security:?}: {text}"
            );
            assert!(!text.contains(&wrong), "{text}");
            assert!(!format!("{err:?}").contains(&wrong), "{err:?}");
            assert!(text.contains(&to), "names the user: {text}");
        }
    }
    // POP before SMTP's login-only helper reports it the same way.
    let s = settings_as(&bed, ReceiveProtocol::Pop3, Security::Tls, &to, &wrong);
    let err = pop3_login_only(&s).await.expect_err("wrong password");
    assert!(matches!(err, MailboxError::Auth { .. }), "{err}");
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(7)
    )
}

/// POP before SMTP: log in and quit, nothing deleted.
#[tokio::test]
async fn pop3_login_only_logs_in_and_quits() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 1).await;
    for security in [Security::None, Security::StartTls, Security::Tls] {
        let s = settings(&bed, ReceiveProtocol::Pop3, security, &to);
        pop3_login_only(&s).await.expect("POP3 login");
    }
    assert_eq!(bed.mailbox_count(&to).await.expect("count"), 1);
}

/// DELE takes effect only at QUIT: a session dropped without logout
/// deletes nothing, so a crash loses no request.
#[tokio::test]
async fn pop3_deletes_only_at_quit() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 2).await;
    let s = settings(&bed, ReceiveProtocol::Pop3, Security::Tls, &to);
    let mut session = connect(&s, ReceiveProtocol::Pop3).await.expect("connect");
    let listed = session.list().await.expect("list");
    session.finish(&listed[0].id, false).await.expect("DELE");
    // Finished in this session: neither listed nor fetchable again.
    assert_eq!(session.list().await.expect("list").len(), 1);
    assert!(matches!(
        session.fetch(&listed[0].id, BIG).await,
        Err(MailboxError::NoSuchMessage { .. })
    ));
    assert!(
        !session
            .wait_for_change(Duration::from_secs(5))
            .await
            .expect("no IDLE")
    );
    assert!(!session.can_wait());
    drop(session);

    let mut session = connect(&s, ReceiveProtocol::Pop3).await.expect("connect");
    assert_eq!(session.list().await.expect("list"), listed);
    session.logout().await.expect("quit");
}

/// `finish(.., expunge = true)` removes the message from the IMAP mailbox.
#[tokio::test]
async fn imap_finish_with_expunge_removes_the_message() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 2).await;
    let s = settings(&bed, ReceiveProtocol::Imap, Security::Tls, &to);
    let mut session = connect(&s, ReceiveProtocol::Imap).await.expect("connect");
    let listed = session.list().await.expect("list");
    session.finish(&listed[0].id, true).await.expect("expunge");
    assert_eq!(session.list().await.expect("list"), listed[1..].to_vec());
    session.logout().await.expect("logout");
    assert_eq!(bed.mailbox_count(&to).await.expect("count"), 1);
}

/// IDLE wakes up within seconds when mail arrives, and the session goes on
/// afterwards (the new mail is listed).
#[tokio::test]
async fn imap_idle_wakes_on_new_mail() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 1).await;
    for security in [Security::None, Security::Tls] {
        let s = settings(&bed, ReceiveProtocol::Imap, security, &to);
        let mut session = connect(&s, ReceiveProtocol::Imap).await.expect("connect");
        assert!(session.can_wait(), "Dovecot offers IDLE");
        let before = session.list().await.expect("list").len();

        let started = Instant::now();
        let inject = async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            bed.send_plain("sender@printwatch.test", &to, "during idle", "hi")
                .await
                .expect("inject");
        };
        let (changed, ()) = tokio::join!(session.wait_for_change(Duration::from_secs(60)), inject);
        let took = started.elapsed();
        assert!(changed.expect("idle"), "a change was reported");
        assert!(took < Duration::from_secs(15), "woke after {took:?}");

        // The session is usable after IDLE; the new mail may need a moment
        // to be complete in the listing.
        let deadline = Instant::now() + DELIVERY;
        loop {
            let n = session.list().await.expect("list after idle").len();
            if n == before + 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "listed {n}, expected {}",
                before + 1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        session.logout().await.expect("logout");
    }
}

/// Without mail, IDLE returns false after the timeout and the session goes
/// on.
#[tokio::test]
async fn imap_idle_times_out_quietly() {
    let bed = bed();
    let (to, _) = mailbox_with(&bed, 1).await;
    let s = settings(&bed, ReceiveProtocol::Imap, Security::StartTls, &to);
    let mut session: Session = connect(&s, ReceiveProtocol::Imap).await.expect("connect");
    session.list().await.expect("list");
    let started = Instant::now();
    let changed = session
        .wait_for_change(Duration::from_millis(1500))
        .await
        .expect("idle");
    let took = started.elapsed();
    assert!(!changed);
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert_eq!(session.list().await.expect("list after idle").len(), 1);
    session.logout().await.expect("logout");
}

/// TLS is verified: without the bed's CA the handshake fails as a TLS
/// error, with either protocol, implicit TLS or STARTTLS.
#[tokio::test]
async fn certificates_are_verified() {
    let bed = bed();
    let to = bed.fresh_address("mbx");
    for protocol in [ReceiveProtocol::Pop3, ReceiveProtocol::Imap] {
        for security in [Security::StartTls, Security::Tls] {
            let mut s = settings(&bed, protocol, security, &to);
            s.ca_file = None;
            let err = connect(&s, protocol)
                .await
                .expect_err("untrusted certificate");
            assert!(
                matches!(err, MailboxError::Tls { .. }),
                "{protocol:?}/{security:?}: {err}"
            );
        }
    }
}

/// A closed port is a Connect error naming the server.
#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let s = MailboxSettings {
        host: "127.0.0.1".into(),
        port,
        security: Security::None,
        ca_file: None,
        username: "u".into(),
        password: Secret::new("p"),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        max_response_bytes: 1024,
    };
    let err = connect(&s, ReceiveProtocol::Pop3)
        .await
        .expect_err("closed");
    assert!(matches!(err, MailboxError::Connect { .. }), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
