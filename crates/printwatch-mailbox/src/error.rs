//! [`MailboxError`]: what went wrong, at which step, with which server.
//!
//! Every variant names the server (`host:port`) and the step (`POP3 RETR 3`,
//! `IMAP UID FETCH 42`, ...) so an operator can tell a wrong password from
//! a firewall from a certificate problem. No message ever contains the
//! password: it is never put into one, and text the server sends back is
//! cleaned ([`server_text`]) and, during login, scrubbed of the password in
//! case a server echoes it.

use std::time::Duration;

/// A failure of a mailbox operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailboxError {
    /// The settings cannot be used (missing login, empty password, a line
    /// break in the user name, ...).
    #[error("mailbox settings: {reason}")]
    Config { reason: String },

    /// The TCP connection could not be opened.
    #[error("connecting to {server}: {reason}")]
    Connect { server: String, reason: String },

    /// TLS could not be set up: the CA file, STARTTLS/STLS not offered or
    /// refused, or the handshake (certificate, name, protocol) failed.
    #[error("TLS with {server} ({step}): {reason}")]
    Tls {
        server: String,
        step: String,
        reason: String,
    },

    /// The server refused the login.
    #[error("{step}: login as {username} at {server} refused: {reason}")]
    Auth {
        server: String,
        step: String,
        username: String,
        reason: String,
    },

    /// The server answered something other than what the protocol allows
    /// here, refused a command, or sent more than the limits allow.
    #[error("{step} at {server}: {reason}")]
    Protocol {
        server: String,
        step: String,
        reason: String,
    },

    /// A message is larger than the caller's limit. `size` is the size the
    /// server reported when the message was refused before downloading; it
    /// is `None` when the server's size was wrong and the download itself
    /// went over the limit (it was stopped there).
    #[error("message {id} is {}, over the limit of {limit} bytes", describe_size(*size, *limit))]
    TooBig {
        id: String,
        size: Option<u64>,
        limit: u64,
    },

    /// The message is not (or no longer) in the mailbox, or the id is not
    /// one that [`crate::Session::list`] gave.
    #[error("message {id}: {reason}")]
    NoSuchMessage { id: String, reason: String },

    /// The server did not answer within the time allowed for this step.
    #[error("{step} at {server}: no answer within {after:?}")]
    Timeout {
        server: String,
        step: String,
        after: Duration,
    },

    /// Reading from or writing to the connection failed.
    #[error("{step} with {server}: {source}")]
    Io {
        server: String,
        step: String,
        #[source]
        source: std::io::Error,
    },
}

fn describe_size(size: Option<u64>, limit: u64) -> String {
    match size {
        Some(size) => format!("{size} bytes"),
        None => format!("more than {limit} bytes"),
    }
}

/// The longest piece of server text kept in an error or log line.
const MAX_SERVER_TEXT: usize = 200;

/// Server-supplied text made safe for a message: lossy UTF-8, control
/// characters replaced (no forged log lines), at most 200 characters.
pub(crate) fn server_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.trim().chars().enumerate() {
        if i == MAX_SERVER_TEXT {
            out.push('…');
            break;
        }
        out.push(if c.is_control() { '?' } else { c });
    }
    if out.is_empty() {
        out.push_str("(no text)");
    }
    out
}

/// `text` with every occurrence of `secret` replaced.
pub(crate) fn redact(text: String, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        text
    } else {
        text.replace(secret, "[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_is_cleaned_and_bounded() {
        assert_eq!(server_text(b" -ERR no\r\nBcc: x "), "-ERR no??Bcc: x");
        assert_eq!(server_text(b""), "(no text)");
        let long = vec![b'a'; 1000];
        assert_eq!(server_text(&long).chars().count(), MAX_SERVER_TEXT + 1);
        assert_eq!(server_text(&[0xff, b'x']), "\u{fffd}x");
    }

    #[test]
    fn redact_hides_the_secret() {
        assert_eq!(
            redact("bad pass hunter2!".into(), "hunter2"),
            "bad pass [redacted]!"
        );
        assert_eq!(redact("nothing".into(), ""), "nothing");
    }

    #[test]
    fn too_big_says_what_is_known() {
        let known = MailboxError::TooBig {
            id: "a".into(),
            size: Some(10),
            limit: 5,
        };
        assert_eq!(
            known.to_string(),
            "message a is 10 bytes, over the limit of 5 bytes"
        );
        let unknown = MailboxError::TooBig {
            id: "a".into(),
            size: None,
            limit: 5,
        };
        assert!(unknown.to_string().contains("more than 5 bytes"));
    }
}
