//! Checks on text that the sections share: e-mail addresses, host names,
//! NATS names, and text bound for a mail header or body.
//!
//! Anything that can reach a mail header (a subject, an address, a group
//! name, a device name) must be one line without control characters, or a
//! configured `Bcc:` could ride in on a CR LF (header injection, SPEC §3.5).
//! Each check returns the reason text naming the expected form.

use std::net::IpAddr;

use crate::read::echo;

const ADDRESS_FORM: &str = "an e-mail address such as ops@example.test";

/// Text that may go into a mail header: no CR, LF or other control
/// characters.
pub(crate) fn header_text(s: &str) -> Result<(), String> {
    if s.chars().any(char::is_control) {
        return Err("must be one line without control characters (CR, LF, tab, …): it goes into a mail header".into());
    }
    Ok(())
}

/// Text for a mail body: line breaks and tabs are fine, NUL and other
/// control characters are not.
pub(crate) fn body_text(s: &str) -> Result<(), String> {
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(
            "must not contain NUL or control characters other than line breaks and tabs".into(),
        );
    }
    Ok(())
}

/// A bare e-mail address `local@domain`: no display name, no spaces, no
/// `<>`, no line breaks.
pub(crate) fn email(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err(format!("expected {ADDRESS_FORM}, found an empty string"));
    }
    header_text(s).map_err(|_| {
        format!("expected {ADDRESS_FORM}; line breaks and control characters are not allowed")
    })?;
    if s.len() > 254
        || s.chars()
            .any(|c| c.is_whitespace() || "<>()[],;:\"\\".contains(c))
    {
        return Err(format!(
            "expected {ADDRESS_FORM} (a bare address: no display name, spaces, <> or quotes), found {}",
            echo(s)
        ));
    }
    let Some((local, domain_part)) = s.rsplit_once('@') else {
        return Err(format!("expected {ADDRESS_FORM}, found {} (no @)", echo(s)));
    };
    if local.is_empty() || local.contains('@') || local.starts_with('.') || local.ends_with('.') {
        return Err(format!("expected {ADDRESS_FORM}, found {}", echo(s)));
    }
    domain(domain_part)
        .map_err(|_| format!("expected {ADDRESS_FORM}, found {} (bad domain)", echo(s)))
}

/// A mail domain such as `example.test`: dot-separated labels of letters,
/// digits and `-`.
pub(crate) fn domain(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a domain such as example.test, found {}",
            echo(s)
        ))
    }
}

/// A host: an IP address or a DNS name (`_` allowed, as some internal
/// names carry it).
pub(crate) fn host(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let name = s.strip_suffix('.').unwrap_or(s);
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected a host name or IP address such as mail.example.test or 192.0.2.10, found {}",
            echo(s)
        ))
    }
}

/// A NATS subject prefix: one or more tokens joined by `.`.
pub(crate) fn subject_prefix(s: &str) -> Result<(), String> {
    if s.split('.').all(printwatch_events::subject::is_token) {
        Ok(())
    } else {
        Err(format!(
            "expected subject tokens (letters, digits, - and _) joined by dots, such as printwatch, found {}",
            echo(s)
        ))
    }
}

/// A name that is one NATS subject token / key-value key / stream name.
pub(crate) fn token(s: &str, what: &str) -> Result<(), String> {
    if printwatch_events::subject::is_token(s) {
        Ok(())
    } else {
        Err(format!(
            "expected {what} made of ASCII letters, digits, - and _ (at most 128), found {}",
            echo(s)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in [
            "ops@example.test",
            "a.b+tag@mail.example.test",
            "root@localhost",
            "x@192-0-2-1.test",
        ] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ops",
            "@example.test",
            "ops@",
            "ops@@example.test",
            "Ops <ops@example.test>",
            "ops@example.test\r\nBcc: x@y.test",
            "o ps@example.test",
            "ops@exa_mple.test",
            "ops@.test",
            "a@b@c.test",
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn header_and_body_text() {
        assert!(header_text("[printwatch] status").is_ok());
        assert!(header_text("a\r\nBcc: x@y.test").is_err());
        assert!(header_text("a\tb").is_err());
        assert!(body_text("line 1\nline 2\r\n\tindented").is_ok());
        assert!(body_text("nul\0").is_err());
    }

    #[test]
    fn hosts_and_names() {
        for ok in [
            "smtp.example.test",
            "192.0.2.1",
            "::1",
            "mail_1.internal",
            "localhost",
        ] {
            assert!(host(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "smtp.example.test:25", "a..b", "http://x"] {
            assert!(host(bad).is_err(), "{bad}");
        }
        assert!(subject_prefix("acme.printwatch").is_ok());
        assert!(subject_prefix("acme..printwatch").is_err());
        assert!(subject_prefix("a>").is_err());
        assert!(token("PRINTWATCH_EVENTS", "a stream name").is_ok());
        assert!(token("a.b", "a stream name").is_err());
    }
}
