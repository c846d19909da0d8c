//! printwatch-mailbox against scripted fake servers: STARTTLS/STLS not
//! offered, servers that lie about sizes, send endless lines or literals,
//! go silent, send garbage, echo the password, or refuse a flag change.
//! None of it may panic, hang, grow memory without bound, leak the
//! password, or pass for success.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use printwatch_mailbox::{
    MailboxError, MailboxSettings, ReceiveProtocol, Secret, Security, connect,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the fake server does after a command line.
enum Reply {
    Send(Vec<u8>),
    /// Sends this, then zeros until the client goes away.
    Endless(Vec<u8>),
    /// Answers nothing (the client must time out).
    Silence,
    Close,
}

fn send(s: impl Into<Vec<u8>>) -> Reply {
    Reply::Send(s.into())
}

/// A one-connection fake server; returns its port and the lines it got.
async fn fake<F>(greeting: Vec<u8>, mut answer: F) -> (u16, Arc<Mutex<Vec<String>>>)
where
    F: FnMut(&str) -> Reply + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = tcp.into_split();
        let mut read = BufReader::new(read);
        if write.write_all(&greeting).await.is_err() {
            return;
        }
        loop {
            let mut line = Vec::new();
            match (&mut read).take(1 << 20).read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_owned();
            log.lock().expect("log").push(line.clone());
            match answer(&line) {
                Reply::Send(bytes) => {
                    if write.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Reply::Endless(prefix) => {
                    if write.write_all(&prefix).await.is_err() {
                        return;
                    }
                    let zeros = vec![b'0'; 64 * 1024];
                    while write.write_all(&zeros).await.is_ok() {}
                    return;
                }
                Reply::Silence => {}
                Reply::Close => return,
            }
        }
    });
    (port, seen)
}

fn settings(port: u16, security: Security) -> MailboxSettings {
    MailboxSettings {
        host: "127.0.0.1".into(),
        port,
        security,
        ca_file: None,
        username: "user".into(),
        password: Secret::new("hunter2-secret"),
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(2),
        max_response_bytes: 1024 * 1024,
    }
}

fn sent_any(seen: &Arc<Mutex<Vec<String>>>, prefix: &str) -> bool {
    seen.lock()
        .expect("log")
        .iter()
        .any(|l| l.to_ascii_uppercase().contains(prefix))
}

// ---- POP3 ---------------------------------------------------------------

/// A POP3 server that logs anyone in and serves `uidl`/`list`, with
/// `other` for everything else.
async fn pop3<F>(uidl: &'static str, list: &'static str, mut other: F) -> u16
where
    F: FnMut(&str) -> Reply + Send + 'static,
{
    let (port, _) = fake(b"+OK fake POP3\r\n".to_vec(), move |line| {
        let cmd = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match cmd.as_str() {
            "USER" | "PASS" => send("+OK\r\n"),
            "UIDL" => send(format!("+OK\r\n{uidl}.\r\n")),
            "LIST" => send(format!("+OK\r\n{list}.\r\n")),
            "QUIT" => send("+OK bye\r\n"),
            _ => other(line),
        }
    })
    .await;
    port
}

#[tokio::test]
async fn pop3_refuses_plain_text_when_stls_is_not_offered() {
    let (port, seen) = fake(b"+OK fake\r\n".to_vec(), |line| {
        if line == "CAPA" {
            send("+OK\r\nUSER\r\nUIDL\r\n.\r\n")
        } else {
            send("+OK\r\n")
        }
    })
    .await;
    let err = connect(&settings(port, Security::StartTls), ReceiveProtocol::Pop3)
        .await
        .expect_err("no STLS");
    assert!(matches!(err, MailboxError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("STLS"), "{err}");
    assert!(!sent_any(&seen, "USER") && !sent_any(&seen, "PASS"));

    // CAPA itself refused: same answer.
    let (port, seen) = fake(b"+OK fake\r\n".to_vec(), |_| send("-ERR what\r\n")).await;
    let err = connect(&settings(port, Security::StartTls), ReceiveProtocol::Pop3)
        .await
        .expect_err("no CAPA");
    assert!(matches!(err, MailboxError::Tls { .. }), "{err}");
    assert!(!sent_any(&seen, "PASS"));
}

#[tokio::test]
async fn pop3_download_larger_than_the_listed_size_is_cut_and_the_session_goes_on() {
    let port = pop3("1 abc\r\n", "1 100\r\n", |line| {
        if line == "RETR 1" {
            let mut body = b"+OK\r\n".to_vec();
            for _ in 0..40_000 {
                body.extend_from_slice(&[b'x'; 78]);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b".\r\n");
            send(body)
        } else {
            send("-ERR no\r\n")
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect("login");
    let listed = s.list().await.expect("list");
    assert_eq!(listed[0].size, 100);
    match s.fetch("abc", 10_000).await {
        Err(MailboxError::TooBig {
            size: None,
            limit: 10_000,
            ..
        }) => {}
        other => panic!("expected TooBig while downloading, got {other:?}"),
    }
    // The rest of the answer was read away: the session is in step.
    assert_eq!(s.list().await.expect("list again").len(), 1);
    s.logout().await.expect("quit");
}

#[tokio::test]
async fn pop3_too_big_by_list_is_refused_without_retr() {
    let (port, seen) = fake(b"+OK fake\r\n".to_vec(), |line| {
        match line.split(' ').next().unwrap_or("") {
            "UIDL" => send("+OK\r\n1 abc\r\n.\r\n"),
            "LIST" => send("+OK\r\n1 5000000\r\n.\r\n"),
            _ => send("+OK\r\n"),
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect("login");
    match s.fetch("abc", 1_000_000).await {
        Err(MailboxError::TooBig {
            size: Some(5_000_000),
            ..
        }) => {}
        other => panic!("expected TooBig, got {other:?}"),
    }
    assert!(!sent_any(&seen, "RETR"));
}

#[tokio::test]
async fn pop3_endless_status_line_is_refused_quickly() {
    let mut greeting = b"+OK ".to_vec();
    greeting.extend(std::iter::repeat_n(b'A', 2 * 1024 * 1024));
    let (port, _) = fake(greeting, |_| Reply::Close).await;
    let started = Instant::now();
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect_err("endless line");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("longer than"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn pop3_endless_list_line_is_refused() {
    // LIST answered with one endless line.
    let (port, _) = fake(b"+OK\r\n".to_vec(), |line| match line {
        "UIDL" => send("+OK\r\n1 abc\r\n.\r\n"),
        "LIST" => Reply::Endless(b"+OK\r\n1 ".to_vec()),
        _ => send("+OK\r\n"),
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect("login");
    let err = s.list().await.expect_err("endless line");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
    // The session refuses to go on, and QUIT says nothing was deleted.
    let again = s.list().await.expect_err("broken");
    assert!(again.to_string().contains("failed earlier"), "{again}");
    let quit = s.logout().await.expect_err("no QUIT");
    assert!(quit.to_string().contains("nothing was deleted"), "{quit}");
}

#[tokio::test]
async fn pop3_silent_server_times_out() {
    let (port, _) = fake(b"+OK\r\n".to_vec(), |_| Reply::Silence).await;
    let started = Instant::now();
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect_err("silence");
    match &err {
        MailboxError::Timeout { step, after, .. } => {
            assert_eq!(step, "POP3 USER");
            assert_eq!(*after, Duration::from_secs(2));
        }
        other => panic!("expected Timeout, got {other}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn pop3_garbage_and_bad_ids_are_protocol_errors() {
    // Garbage with NULs and invalid UTF-8 instead of a status.
    let (port, _) = fake(b"+OK\r\n".to_vec(), |_| {
        send(b"\0\0\xff\xfe garbage\r\n".to_vec())
    })
    .await;
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect_err("garbage");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
    assert!(!err.to_string().contains('\0'));

    // A unique id with a control character, one 100 characters long, a
    // message number that is not one.
    for uidl in [
        "1 a\x01b\r\n",
        "1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n",
        "one abc\r\n",
    ] {
        let port = pop3(uidl, "1 10\r\n", |_| send("-ERR\r\n")).await;
        let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
            .await
            .expect("login");
        let err = s.list().await.expect_err("bad UIDL");
        assert!(
            matches!(err, MailboxError::Protocol { .. }),
            "{uidl:?}: {err}"
        );
    }
}

#[tokio::test]
async fn pop3_connection_closed_in_the_middle_of_a_download() {
    let port = pop3("1 abc\r\n", "1 100\r\n", |line| {
        if line == "RETR 1" {
            Reply::Send(b"+OK\r\nSubject: half\r\n".to_vec())
        } else {
            Reply::Close
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect("login");
    s.list().await.expect("list");
    // The fake keeps the connection open without finishing: a timeout.
    let err = s.fetch("abc", 1000).await.expect_err("unfinished");
    assert!(matches!(err, MailboxError::Timeout { .. }), "{err}");
    assert!(s.fetch("abc", 1000).await.is_err());
}

#[tokio::test]
async fn pop3_echoed_password_is_redacted_and_in_use_is_not_an_auth_error() {
    let (port, _) = fake(b"+OK\r\n".to_vec(), |line| {
        if let Some(pw) = line.strip_prefix("PASS ") {
            send(format!("-ERR [AUTH] wrong password {pw}\r\n"))
        } else {
            send("+OK\r\n")
        }
    })
    .await;
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect_err("refused");
    assert!(matches!(err, MailboxError::Auth { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2-secret"), "{err}");
    assert!(err.to_string().contains("[redacted]"), "{err}");

    let (port, _) = fake(b"+OK\r\n".to_vec(), |line| {
        if line.starts_with("PASS") {
            send("-ERR [IN-USE] mailbox locked\r\n")
        } else {
            send("+OK\r\n")
        }
    })
    .await;
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect_err("locked");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn pop3_quit_refused_is_reported() {
    let (port, _) = fake(b"+OK\r\n".to_vec(), |line| {
        if line == "QUIT" {
            send("-ERR could not delete\r\n")
        } else {
            send("+OK\r\n")
        }
    })
    .await;
    let s = connect(&settings(port, Security::None), ReceiveProtocol::Pop3)
        .await
        .expect("login");
    let err = s.logout().await.expect_err("QUIT refused");
    assert!(err.to_string().contains("did not commit"), "{err}");
}

// ---- IMAP ---------------------------------------------------------------

/// An IMAP server that answers LOGIN, SELECT, CAPABILITY and LOGOUT, with
/// `other(tag, command)` for everything else.
async fn imap<F>(
    greeting: &'static str,
    select: &'static str,
    mut other: F,
) -> (u16, Arc<Mutex<Vec<String>>>)
where
    F: FnMut(&str, &str) -> Reply + Send + 'static,
{
    fake(greeting.as_bytes().to_vec(), move |line| {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        let cmd = rest.split(' ').next().unwrap_or("").to_ascii_uppercase();
        match cmd.as_str() {
            "LOGIN" => send(format!("{tag} OK [CAPABILITY IMAP4rev1] in\r\n")),
            "SELECT" => send(format!("{select}{tag} OK [READ-WRITE] selected\r\n")),
            "CAPABILITY" => send(format!("* CAPABILITY IMAP4rev1\r\n{tag} OK\r\n")),
            "LOGOUT" => send(format!("* BYE\r\n{tag} OK\r\n")),
            _ => other(tag, rest),
        }
    })
    .await
}

const GREETING: &str = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] fake\r\n";
const SELECTED: &str =
    "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] f\r\n";

#[tokio::test]
async fn imap_refuses_plain_text_when_starttls_is_not_offered() {
    // Capabilities in the greeting.
    let (port, seen) = imap(GREETING, SELECTED, |tag, _| send(format!("{tag} OK\r\n"))).await;
    let err = connect(&settings(port, Security::StartTls), ReceiveProtocol::Imap)
        .await
        .expect_err("no STARTTLS");
    assert!(matches!(err, MailboxError::Tls { .. }), "{err}");
    assert!(!sent_any(&seen, "LOGIN") && !sent_any(&seen, "STARTTLS"));

    // Capabilities asked for.
    let (port, seen) = imap("* OK fake\r\n", SELECTED, |tag, _| {
        send(format!("{tag} OK\r\n"))
    })
    .await;
    let err = connect(&settings(port, Security::StartTls), ReceiveProtocol::Imap)
        .await
        .expect_err("no STARTTLS");
    assert!(matches!(err, MailboxError::Tls { .. }), "{err}");
    assert!(sent_any(&seen, "CAPABILITY"));
    assert!(!sent_any(&seen, "LOGIN"));

    // Offered but refused.
    let (port, seen) = imap(
        "* OK [CAPABILITY IMAP4rev1 STARTTLS] fake\r\n",
        SELECTED,
        |tag, _| send(format!("{tag} NO not today\r\n")),
    )
    .await;
    let err = connect(&settings(port, Security::StartTls), ReceiveProtocol::Imap)
        .await
        .expect_err("STARTTLS refused");
    assert!(matches!(err, MailboxError::Tls { .. }), "{err}");
    assert!(!sent_any(&seen, "LOGIN"));
}

#[tokio::test]
async fn imap_logindisabled_is_respected() {
    let (port, seen) = imap(
        "* OK [CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS] fake\r\n",
        SELECTED,
        |tag, _| send(format!("{tag} OK\r\n")),
    )
    .await;
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect_err("LOGINDISABLED");
    assert!(matches!(err, MailboxError::Auth { .. }), "{err}");
    assert!(!sent_any(&seen, "LOGIN "));
}

#[tokio::test]
async fn imap_password_goes_only_to_the_socket_and_is_quoted() {
    let (port, seen) = imap(GREETING, SELECTED, |tag, _| send(format!("{tag} OK\r\n"))).await;
    let mut s = settings(port, Security::None);
    s.password = Secret::new(r#"pa"ss\word"#);
    let session = connect(&s, ReceiveProtocol::Imap).await.expect("login");
    session.logout().await.expect("logout");
    let lines = seen.lock().expect("log").clone();
    let login = lines
        .iter()
        .find(|l| l.contains("LOGIN"))
        .expect("a LOGIN line");
    assert!(login.ends_with(r#"LOGIN "user" "pa\"ss\\word""#), "{login}");
    assert!(!lines.iter().any(|l| l.contains("pwsecret")), "{lines:?}");
}

#[tokio::test]
async fn imap_huge_literal_is_cut_at_the_budget() {
    // SELECT is answered normally; the first SEARCH gets a 50 MB literal.
    let (port, _) = fake(GREETING.as_bytes().to_vec(), |line| {
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        if rest.starts_with("LOGIN") {
            send(format!("{tag} OK [CAPABILITY IMAP4rev1] in\r\n"))
        } else if rest.starts_with("SELECT") {
            send(format!("{SELECTED}{tag} OK\r\n"))
        } else {
            Reply::Endless(b"* 1 FETCH (UID 1 BODY[] {50000000}\r\n".to_vec())
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect("login");
    let started = Instant::now();
    let err = s.list().await.expect_err("endless literal");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("1048576"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(s.list().await.is_err(), "the session is given up");
}

#[tokio::test]
async fn imap_refused_store_is_an_error_not_a_success() {
    let (port, _) = imap(GREETING, SELECTED, |tag, rest| {
        if rest.starts_with("UID STORE") {
            send(format!("{tag} NO [CANNOT] flags not stored\r\n"))
        } else if rest.starts_with("UID SEARCH") {
            send(format!("* SEARCH 4\r\n{tag} OK\r\n"))
        } else if rest.starts_with("UID FETCH") {
            send(format!("* 1 FETCH (UID 4 RFC822.SIZE 10)\r\n{tag} OK\r\n"))
        } else {
            send(format!("{tag} OK\r\n"))
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect("login");
    let listed = s.list().await.expect("list");
    assert_eq!(listed[0].id, "7:4");
    let err = s.finish("7:4", false).await.expect_err("NO to STORE");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("flags not stored"), "{err}");
    // A NO leaves the session usable; ids of another UIDVALIDITY are refused.
    assert_eq!(s.list().await.expect("list").len(), 1);
    assert!(matches!(
        s.fetch("8:4", 100).await,
        Err(MailboxError::NoSuchMessage { .. })
    ));
    assert!(matches!(
        s.fetch("garbage", 100).await,
        Err(MailboxError::NoSuchMessage { .. })
    ));
    // No IDLE offered: wait_for_change answers false at once.
    let started = Instant::now();
    assert!(
        !s.wait_for_change(Duration::from_secs(30))
            .await
            .expect("no idle")
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn imap_refused_search_is_an_error_not_an_empty_mailbox() {
    let (port, _) = imap(GREETING, SELECTED, |tag, rest| {
        if rest.starts_with("UID SEARCH") {
            send(format!("{tag} BAD what is UNKEYWORD\r\n"))
        } else {
            send(format!("{tag} OK\r\n"))
        }
    })
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect("login");
    let err = s.list().await.expect_err("BAD to SEARCH");
    assert!(matches!(err, MailboxError::Protocol { .. }), "{err}");
}

#[tokio::test]
async fn imap_odd_greetings_and_mailboxes_are_refused() {
    // PREAUTH, BYE, garbage.
    for greeting in [
        "* PREAUTH hi\r\n",
        "* BYE go away\r\n",
        "\0\0\0 nonsense\r\n",
    ] {
        let (port, _) = imap(greeting, SELECTED, |tag, _| send(format!("{tag} OK\r\n"))).await;
        let err = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
            .await
            .expect_err("odd greeting");
        assert!(
            matches!(err, MailboxError::Protocol { .. } | MailboxError::Io { .. }),
            "{greeting:?}: {err}"
        );
    }
    // No UIDVALIDITY: no stable ids.
    let (port, _) = imap(GREETING, "* 1 EXISTS\r\n", |tag, _| {
        send(format!("{tag} OK\r\n"))
    })
    .await;
    let err = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect_err("no UIDVALIDITY");
    assert!(err.to_string().contains("UIDVALIDITY"), "{err}");
    // A keyword the server will not keep: finish without expunge refuses.
    let (port, _) = imap(
        GREETING,
        "* 1 EXISTS\r\n* OK [UIDVALIDITY 7] v\r\n* OK [PERMANENTFLAGS (\\Seen \\Deleted)] f\r\n",
        |tag, _| send(format!("{tag} OK\r\n")),
    )
    .await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect("login");
    let err = s.finish("7:1", false).await.expect_err("keyword not kept");
    assert!(err.to_string().contains("$PrintwatchHandled"), "{err}");
}

#[tokio::test]
async fn imap_silent_server_times_out() {
    let (port, _) = imap(GREETING, SELECTED, |_, _| Reply::Silence).await;
    let mut s = connect(&settings(port, Security::None), ReceiveProtocol::Imap)
        .await
        .expect("login");
    let started = Instant::now();
    let err = s.list().await.expect_err("silence");
    assert!(matches!(err, MailboxError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_server_that_never_greets_times_out() {
    for protocol in [ReceiveProtocol::Pop3, ReceiveProtocol::Imap] {
        let (port, _) = fake(Vec::new(), |_| Reply::Silence).await;
        let started = Instant::now();
        let err = connect(&settings(port, Security::None), protocol)
            .await
            .expect_err("no greeting");
        assert!(
            matches!(err, MailboxError::Timeout { .. }),
            "{protocol:?}: {err}"
        );
        assert!(err.to_string().contains("greeting"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
