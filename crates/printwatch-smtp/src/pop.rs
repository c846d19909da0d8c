//! POP before SMTP (POP before SMTP / POP認証): log in to the POP3 server
//! with USER/PASS, QUIT, so that the mail server lets this client relay
//! for a while; the caller then waits `wait` and connects SMTP.
//!
//! Written here on tokio + tokio-rustls because no well-kept async POP3
//! client exists on crates.io: `async-pop` supports only native-tls (no
//! rustls, no custom CA list, no STLS), `mailme` targets tokio 0.3, and
//! `pop3-client` marks its TLS unfinished. A login is five commands.

use std::time::Duration;

use printwatch_config::{PopBeforeSmtpConfig, Security};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::error::{SendError, Step, humanize};
use crate::tls::{self, Trust};

/// Longest POP3 status line read (RFC 1939 allows 512 octets).
const MAX_LINE: usize = 4096;

/// What the POP3 login needs, checked at setup.
#[derive(Clone)]
pub(crate) struct PopLogin {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub trust: Option<Trust>,
    pub username: String,
    pub password: printwatch_config::Secret,
    pub wait: Duration,
}

impl PopLogin {
    pub fn new(cfg: &PopBeforeSmtpConfig) -> Result<PopLogin, crate::SetupError> {
        let bad = |key: &'static str, reason: &str| crate::SetupError::Setting {
            key,
            reason: reason.to_owned(),
        };
        if cfg.username.is_empty() || cfg.username.contains(['\r', '\n', '\0']) {
            return Err(bad(
                "mail.pop_before_smtp.username",
                "must be one non-empty line",
            ));
        }
        if cfg.password.is_empty() {
            return Err(bad(
                "mail.pop_before_smtp.password",
                "is empty or could not be read",
            ));
        }
        if cfg.password.expose().contains(['\r', '\n', '\0']) {
            return Err(bad(
                "mail.pop_before_smtp.password",
                "contains a line break or NUL, which POP3 cannot carry",
            ));
        }
        let trust = match cfg.security {
            Security::None => None,
            Security::StartTls | Security::Tls => {
                let extra = match &cfg.ca_file {
                    Some(p) => tls::read_ca_file("mail.pop_before_smtp.ca_file", p)?,
                    None => Vec::new(),
                };
                Some(tls::trust(&cfg.host, &extra)?)
            }
        };
        Ok(PopLogin {
            host: cfg.host.clone(),
            port: cfg.port,
            security: cfg.security,
            trust,
            username: cfg.username.clone(),
            password: cfg.password.clone(),
            wait: cfg.wait,
        })
    }

    /// Logs in and out once. Every failure is [`Step::PopBeforeSmtp`].
    pub async fn login(
        &self,
        connect_timeout: Duration,
        command_timeout: Duration,
    ) -> Result<(), SendError> {
        let at = format!("{}:{}", self.host, self.port);
        let fail = |permanent: bool, reason: String| {
            SendError::new(
                Step::PopBeforeSmtp,
                permanent,
                format!("POP3 server {at}: {reason}"),
            )
        };
        let tcp = match tokio::time::timeout(
            connect_timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(fail(false, format!("cannot connect: {e}"))),
            Err(_) => {
                return Err(fail(
                    false,
                    format!("no connection within {}", humanize(connect_timeout)),
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        match (self.security, &self.trust) {
            (Security::None, _) => {
                let mut c = Pop3::new(tcp, command_timeout);
                c.greeting()
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))?;
                self.user_pass(&mut c)
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))
            }
            (Security::Tls, Some(trust)) => {
                let tls = self
                    .handshake(trust, tcp, command_timeout)
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))?;
                let mut c = Pop3::new(tls, command_timeout);
                c.greeting()
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))?;
                self.user_pass(&mut c)
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))
            }
            (Security::StartTls, Some(trust)) => {
                let mut c = Pop3::new(tcp, command_timeout);
                c.greeting()
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))?;
                c.command("STLS", "STLS").await.map_err(|e| {
                    fail(
                        true,
                        format!(
                            "does not offer STLS, refusing to log in in plain text ({})",
                            e.reason
                        ),
                    )
                })?;
                // Anything the server sent after "+OK" to STLS would be
                // read as if it came over TLS: refuse (RFC 2595 §3).
                if !c.stream.buffer().is_empty() {
                    return Err(fail(true, "sent data after accepting STLS".into()));
                }
                let tcp = c.stream.into_inner();
                let tls = self
                    .handshake(trust, tcp, command_timeout)
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))?;
                let mut c = Pop3::new(tls, command_timeout);
                self.user_pass(&mut c)
                    .await
                    .map_err(|e| fail(e.permanent, e.reason))
            }
            // `new` builds a trust for every TLS security.
            (_, None) => Err(fail(true, "TLS is not set up".into())),
        }
    }

    async fn handshake(
        &self,
        trust: &Trust,
        tcp: TcpStream,
        limit: Duration,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
        let connector = TlsConnector::from(trust.config.clone());
        match tokio::time::timeout(limit, connector.connect(trust.server_name.clone(), tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(Failure {
                permanent: tls::failure_is_permanent(&e),
                reason: format!("TLS handshake failed: {e}"),
            }),
            Err(_) => Err(Failure {
                permanent: false,
                reason: format!("no TLS handshake within {}", humanize(limit)),
            }),
        }
    }

    async fn user_pass<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        c: &mut Pop3<S>,
    ) -> Result<(), Failure> {
        c.command(&format!("USER {}", self.username), "USER")
            .await
            .map_err(|e| e.context(&format!("USER {} refused", self.username)))?;
        c.command(&format!("PASS {}", self.password.expose()), "PASS")
            .await
            .map_err(|e| e.context(&format!("login as {} refused", self.username)))?;
        tracing::debug!(user = %self.username, host = %self.host, port = self.port, "POP3 login done");
        // The login is what counts; a failed QUIT changes nothing.
        let _ = c.command("QUIT", "QUIT").await;
        Ok(())
    }
}

/// A failure inside the POP3 exchange.
struct Failure {
    permanent: bool,
    reason: String,
}

impl Failure {
    fn context(self, what: &str) -> Failure {
        Failure {
            permanent: self.permanent,
            reason: format!("{what}: {}", self.reason),
        }
    }
}

/// A POP3 connection, one line per reply.
struct Pop3<S> {
    stream: BufReader<S>,
    timeout: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Pop3<S> {
    fn new(stream: S, timeout: Duration) -> Self {
        Pop3 {
            stream: BufReader::new(stream),
            timeout,
        }
    }

    async fn greeting(&mut self) -> Result<(), Failure> {
        self.reply("the greeting").await.map(|_| ())
    }

    /// Sends `line` (never logged: it may be PASS) and reads the reply.
    /// `name` is what error messages call the command.
    async fn command(&mut self, line: &str, name: &str) -> Result<String, Failure> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let write = async {
            self.stream.get_mut().write_all(&bytes).await?;
            self.stream.get_mut().flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(Failure {
                    permanent: false,
                    reason: format!("sending {name}: {e}"),
                });
            }
            Err(_) => {
                return Err(Failure {
                    permanent: false,
                    reason: format!("sending {name} took longer than {}", humanize(self.timeout)),
                });
            }
        }
        self.reply(name).await
    }

    /// Reads one status line: `+OK ...` is Ok, `-ERR ...` an error whose
    /// permanence follows RFC 3206's response codes.
    async fn reply(&mut self, name: &str) -> Result<String, Failure> {
        let mut line = Vec::new();
        let read = async {
            let mut limited = (&mut self.stream).take(MAX_LINE as u64);
            limited.read_until(b'\n', &mut line).await
        };
        let n = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                return Err(Failure {
                    permanent: false,
                    reason: format!("reading the reply to {name}: {e}"),
                });
            }
            Err(_) => {
                return Err(Failure {
                    permanent: false,
                    reason: format!("no reply to {name} within {}", humanize(self.timeout)),
                });
            }
        };
        if n == 0 {
            return Err(Failure {
                permanent: false,
                reason: format!("the server closed the connection instead of answering {name}"),
            });
        }
        if !line.ends_with(b"\n") {
            return Err(Failure {
                permanent: false,
                reason: format!("the reply to {name} is longer than {MAX_LINE} bytes"),
            });
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        if text.starts_with("+OK") {
            Ok(text)
        } else if text.starts_with("-ERR") {
            let temporary = ["[SYS/TEMP]", "[IN-USE]", "[LOGIN-DELAY]"]
                .iter()
                .any(|code| text.contains(code));
            Err(Failure {
                permanent: !temporary,
                reason: text,
            })
        } else {
            Err(Failure {
                permanent: false,
                reason: format!("not a POP3 reply to {name}: {:?}", truncate(&text, 120)),
            })
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` (lines the fake server sends, one per client line
    /// read) against a POP3 client and returns what the client sent.
    async fn exchange(greeting: &str, replies: &[&str]) -> (Result<(), Failure>, String) {
        let (client, mut server) = tokio::io::duplex(4096);
        let greeting = greeting.to_owned();
        let replies: Vec<String> = replies.iter().map(|s| (*s).to_owned()).collect();
        let server_task = tokio::spawn(async move {
            let mut seen = String::new();
            if server.write_all(greeting.as_bytes()).await.is_err() {
                return seen;
            }
            let mut buf = [0u8; 1024];
            for r in replies {
                let Ok(n) = server.read(&mut buf).await else {
                    break;
                };
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                if server.write_all(r.as_bytes()).await.is_err() {
                    break;
                }
            }
            seen
        });
        let login = PopLogin {
            host: "pop.test".into(),
            port: 110,
            security: Security::None,
            trust: None,
            username: "alice".into(),
            password: "s3cret".into(),
            wait: Duration::ZERO,
        };
        let mut c = Pop3::new(client, Duration::from_secs(5));
        let r = match c.greeting().await {
            Ok(()) => login.user_pass(&mut c).await,
            Err(e) => Err(e),
        };
        drop(c);
        (r, server_task.await.unwrap())
    }

    #[tokio::test]
    async fn a_login_sends_user_pass_and_quit() {
        let (r, seen) = exchange(
            "+OK ready\r\n",
            &["+OK\r\n", "+OK logged in\r\n", "+OK bye\r\n"],
        )
        .await;
        assert!(r.is_ok());
        assert_eq!(seen, "USER alice\r\nPASS s3cret\r\nQUIT\r\n");
    }

    #[tokio::test]
    async fn a_refused_password_is_permanent_and_does_not_echo_it() {
        let (r, _) = exchange(
            "+OK ready\r\n",
            &["+OK\r\n", "-ERR [AUTH] Authentication failed.\r\n"],
        )
        .await;
        let e = r.err().unwrap();
        assert!(e.permanent);
        assert!(
            e.reason.contains("[AUTH] Authentication failed"),
            "{}",
            e.reason
        );
        assert!(!e.reason.contains("s3cret"));
    }

    #[tokio::test]
    async fn a_temporary_refusal_is_not_permanent() {
        let (r, _) = exchange("+OK\r\n", &["+OK\r\n", "-ERR [SYS/TEMP] try later\r\n"]).await;
        assert!(!r.err().unwrap().permanent);
    }

    #[tokio::test]
    async fn garbage_and_overlong_replies_are_errors() {
        let (r, _) = exchange("HELLO\r\n", &[]).await;
        assert!(r.err().unwrap().reason.contains("not a POP3 reply"));
        let long = format!("+OK {}\r\n", "x".repeat(MAX_LINE * 2));
        let (r, _) = exchange(&long, &[]).await;
        assert!(r.err().unwrap().reason.contains("longer than"));
    }
}
