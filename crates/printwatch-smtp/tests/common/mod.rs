//! Shared by the integration tests: SMTP settings for the local mail bed,
//! messages, reading the bed's Postfix and Dovecot logs, and a scriptable
//! fake SMTP server for replies the real bed never gives.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::Message;
use lettre::message::header::ContentType;
use printwatch_config::{AuthEncryption, PopBeforeSmtpConfig, Secret, Security, SmtpConfig};
use printwatch_testing::mail::MailBed;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const WAIT: Duration = Duration::from_secs(30);

pub fn bed() -> MailBed {
    MailBed::shared().expect("the mail test bed starts")
}

/// `[mail.smtp]` for the bed's `port` with `security`, logging in as
/// `user` with the bed's password for it.
pub fn smtp(bed: &MailBed, port: u16, security: Security, user: &str) -> SmtpConfig {
    SmtpConfig {
        host: bed.host().to_owned(),
        port,
        security,
        ca_file: (security != Security::None).then(|| bed.ca_file().to_path_buf()),
        auth: true,
        auth_address: None,
        username: Some(user.to_owned()),
        password: Some(Secret::new(bed.password_for(user))),
        auth_encryption: AuthEncryption::Auto,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(30),
        max_connections: 4,
        helo_name: None,
    }
}

/// `[mail.smtp]` without AUTH.
pub fn smtp_no_auth(host: &str, port: u16, security: Security) -> SmtpConfig {
    SmtpConfig {
        host: host.to_owned(),
        port,
        security,
        ca_file: None,
        auth: false,
        auth_address: None,
        username: None,
        password: None,
        auth_encryption: AuthEncryption::Auto,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        max_connections: 2,
        helo_name: Some("client.printwatch.test".into()),
    }
}

/// `[mail.pop_before_smtp]` for the bed.
pub fn pop(bed: &MailBed, security: Security, user: &str, wait: Duration) -> PopBeforeSmtpConfig {
    let port = match security {
        Security::Tls => bed.pop3s_port(),
        _ => bed.pop3_port(),
    };
    PopBeforeSmtpConfig {
        enabled: true,
        host: bed.host().to_owned(),
        port,
        security,
        ca_file: (security != Security::None).then(|| bed.ca_file().to_path_buf()),
        username: user.to_owned(),
        password: Secret::new(bed.password_for(user)),
        wait,
    }
}

/// A plain text mail as RFC 5322 bytes (CRLF), built with lettre.
pub fn message(from: &str, to: &str, subject: &str, body: &str) -> Vec<u8> {
    Message::builder()
        .from(from.parse().expect("from"))
        .to(to.parse().expect("to"))
        .subject(subject)
        .header(ContentType::TEXT_PLAIN)
        .body(body.to_owned())
        .expect("message")
        .formatted()
}

// ---- logs -------------------------------------------------------------

/// A time of day in a log, in seconds since the start of the year
/// (month × 31 days is enough to order and subtract within a test).
pub fn log_time(line: &str) -> Option<f64> {
    let mut it = line.split_whitespace();
    let month = it.next()?;
    let day: f64 = it.next()?.parse().ok()?;
    let clock = it.next()?;
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = months.iter().position(|x| *x == month)? as f64;
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let min: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(((m * 31.0 + day) * 24.0 + h) * 3600.0 + min * 60.0 + s)
}

/// One smtpd connection as Postfix logged it.
#[derive(Debug, Clone, Default)]
pub struct PostfixSession {
    pub service: String,
    pub pid: String,
    /// Whole seconds: Postfix 3.7 logs no fractions.
    pub connect: Option<f64>,
    pub lines: Vec<String>,
    pub closed: bool,
}

impl PostfixSession {
    pub fn mentions(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }
    /// `sasl_method=` values of the messages of this session.
    pub fn sasl_methods(&self) -> Vec<String> {
        self.lines
            .iter()
            .filter_map(|l| l.split("sasl_method=").nth(1))
            .map(|rest| rest.split(',').next().unwrap_or("").to_owned())
            .collect()
    }
    /// Messages queued in this session (`client=` lines).
    pub fn messages(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| l.contains(": client="))
            .count()
    }
}

/// Every smtpd session in the Postfix log. Each smtpd process serves one
/// connection at a time, so lines are grouped by process between its
/// `connect from` and `disconnect from` lines.
pub fn postfix_sessions(log: &Path) -> Vec<PostfixSession> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut open: HashMap<String, PostfixSession> = HashMap::new();
    let mut done = Vec::new();
    for line in text.lines() {
        // "Dec 04 21:18:45 mail postfix-pw-mailbed/submission/smtpd[1816]: connect from ..."
        let Some(proc_field) = line.split_whitespace().nth(4) else {
            continue;
        };
        if !proc_field.contains("/smtpd[") {
            continue;
        }
        let key = proc_field.trim_end_matches(':').to_owned();
        let message = line.split_once("]: ").map(|(_, m)| m).unwrap_or("");
        if message.starts_with("connect from ") {
            if let Some(old) = open.remove(&key) {
                done.push(old);
            }
            let (service, pid) = key.rsplit_once('[').unwrap_or((&key, ""));
            open.insert(
                key.clone(),
                PostfixSession {
                    service: service.to_owned(),
                    pid: pid.trim_end_matches(']').to_owned(),
                    connect: log_time(line),
                    lines: vec![line.to_owned()],
                    closed: false,
                },
            );
        } else if let Some(s) = open.get_mut(&key) {
            s.lines.push(line.to_owned());
            if message.starts_with("disconnect from ") {
                let mut s = open.remove(&key).unwrap_or_default();
                s.closed = true;
                done.push(s);
            }
        }
    }
    done.extend(open.into_values());
    done
}

/// The sessions in which `user` logged in (its messages carry
/// `sasl_username=<user>`).
pub fn sessions_of(log: &Path, user: &str) -> Vec<PostfixSession> {
    let needle = format!("sasl_username={user}");
    postfix_sessions(log)
        .into_iter()
        .filter(|s| {
            s.lines.iter().any(|l| {
                l.match_indices(&needle)
                    .any(|(i, _)| matches!(l[i + needle.len()..].chars().next(), None | Some(',')))
            })
        })
        .collect()
}

/// Waits until `check` holds on the log text, or fails after `timeout`.
pub async fn wait_for_log(log: &Path, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if check(&text) || tokio::time::Instant::now() >= deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---- a fake SMTP server ---------------------------------------------------

/// What the fake server does after the message's final dot.
#[derive(Clone)]
pub enum AfterDot {
    Reply(String),
    /// Close the connection without answering.
    Hang,
}

/// A scripted SMTP server on 127.0.0.1: a greeting, an EHLO reply, replies
/// per command verb (default `250 OK`), and what to do after DATA.
#[derive(Clone)]
pub struct FakeServer {
    pub greeting: String,
    pub ehlo: Vec<String>,
    pub replies: HashMap<String, Vec<String>>,
    pub after_dot: AfterDot,
    /// Replies to the lines that follow an AUTH answered with 334, in order.
    pub auth_steps: Vec<String>,
    /// Every line the client sent (DATA content excluded).
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    pub fn new(ehlo: &[&str]) -> FakeServer {
        FakeServer {
            greeting: "220 fake.test ESMTP".into(),
            ehlo: ehlo.iter().map(|s| (*s).to_owned()).collect(),
            replies: HashMap::new(),
            after_dot: AfterDot::Reply("250 2.0.0 queued".into()),
            auth_steps: Vec::new(),
            seen: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Replies for successive uses of `verb` (the last one repeats).
    pub fn reply(mut self, verb: &str, replies: &[&str]) -> FakeServer {
        self.replies.insert(
            verb.to_ascii_uppercase(),
            replies.iter().map(|s| (*s).to_owned()).collect(),
        );
        self
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// Starts serving connections; returns the port.
    pub async fn start(self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let me = self.clone();
                tokio::spawn(async move { me.serve(socket).await });
            }
        });
        port
    }

    async fn serve(self, socket: tokio::net::TcpStream) {
        let (r, mut w) = socket.into_split();
        let mut r = BufReader::new(r);
        let mut uses: HashMap<String, usize> = HashMap::new();
        let mut pending_auth: std::collections::VecDeque<String> = Default::default();
        if w.write_all(format!("{}\r\n", self.greeting).as_bytes())
            .await
            .is_err()
        {
            return;
        }
        if !self.greeting.starts_with("220") {
            return;
        }
        loop {
            let mut line = String::new();
            match r.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end().to_owned();
            self.seen.lock().unwrap().push(line.clone());
            let verb = line
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if let Some(r) = pending_auth.pop_front() {
                if w.write_all(format!("{r}\r\n").as_bytes()).await.is_err() {
                    return;
                }
                continue;
            }
            let reply = match verb.as_str() {
                "EHLO" => {
                    let mut out = String::from("250-fake.test\r\n");
                    for (i, l) in self.ehlo.iter().enumerate() {
                        let sep = if i + 1 == self.ehlo.len() { ' ' } else { '-' };
                        out.push_str(&format!("250{sep}{l}\r\n"));
                    }
                    if self.ehlo.is_empty() {
                        out = "250 fake.test\r\n".into();
                    }
                    out
                }
                "QUIT" => {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => {
                    let n = uses.entry(verb.clone()).or_default();
                    let r = self
                        .replies
                        .get(&verb)
                        .and_then(|v| v.get(*n).or(v.last()))
                        .cloned()
                        .unwrap_or_else(|| {
                            if verb == "DATA" {
                                "354 go ahead".into()
                            } else {
                                "250 OK".into()
                            }
                        });
                    *n += 1;
                    format!("{r}\r\n")
                }
            };
            if w.write_all(reply.as_bytes()).await.is_err() {
                return;
            }
            if verb == "AUTH" && reply.starts_with("334") {
                pending_auth = self.auth_steps.iter().cloned().collect();
            }
            if verb == "DATA" && reply.starts_with("354") {
                loop {
                    let mut l = String::new();
                    match r.read_line(&mut l).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if l == ".\r\n" {
                        // The whole message arrived: what a server commits.
                        self.seen.lock().unwrap().push("<message>".into());
                        break;
                    }
                }
                match &self.after_dot {
                    AfterDot::Reply(s) => {
                        if w.write_all(format!("{s}\r\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    AfterDot::Hang => return,
                }
            }
        }
    }
}
