//! The SMTP AUTH mechanisms of the printer manual (SPEC §1.2): which one to
//! use, and the two challenge-response ones computed by hand.
//!
//! Why by hand: lettre 0.11 knows only PLAIN, LOGIN and XOAUTH2, and its
//! EHLO parser (`ServerInfo`) silently drops every other mechanism. The
//! manual's `auth_encryption = on` needs CRAM-MD5 (RFC 2195) and
//! DIGEST-MD5 (RFC 2831), so both are computed here with RustCrypto's
//! `md-5` and `hmac`, and the session module runs the exchange on lettre's
//! raw connection. PLAIN and LOGIN stay with lettre.
//!
//! Everything here is pure (no I/O) so the RFCs' own examples are the
//! tests; the DIGEST-MD5 client nonce is a parameter for that reason.

use std::fmt;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use printwatch_config::AuthEncryption;

/// An SMTP AUTH mechanism printwatch can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMechanism {
    /// RFC 4616: user name and password in one base64 line.
    Plain,
    /// The obsolete but common LOGIN exchange (user name, then password).
    Login,
    /// RFC 2195: HMAC-MD5 of a server challenge; the password never crosses.
    CramMd5,
    /// RFC 2831: MD5 digest with server and client nonces, realm, and a
    /// server proof (`rspauth`) that is checked.
    DigestMd5,
}

impl AuthMechanism {
    /// Every mechanism, strongest first (the order `auth_encryption =
    /// "auto"` tries them in).
    pub const ALL: [AuthMechanism; 4] = [
        AuthMechanism::DigestMd5,
        AuthMechanism::CramMd5,
        AuthMechanism::Plain,
        AuthMechanism::Login,
    ];

    /// The SASL name as the server announces it (`CRAM-MD5`, ...).
    pub fn name(self) -> &'static str {
        match self {
            AuthMechanism::Plain => "PLAIN",
            AuthMechanism::Login => "LOGIN",
            AuthMechanism::CramMd5 => "CRAM-MD5",
            AuthMechanism::DigestMd5 => "DIGEST-MD5",
        }
    }

    /// Whether the password itself never crosses the connection.
    pub fn is_challenge_response(self) -> bool {
        matches!(self, AuthMechanism::CramMd5 | AuthMechanism::DigestMd5)
    }

    /// Parses a SASL name, case-insensitively.
    pub fn from_name(name: &str) -> Option<AuthMechanism> {
        AuthMechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for AuthMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The mechanisms `auth_encryption` permits, strongest first.
pub(crate) fn permitted(enc: AuthEncryption) -> &'static [AuthMechanism] {
    match enc {
        AuthEncryption::Auto => &AuthMechanism::ALL,
        AuthEncryption::On => &[AuthMechanism::DigestMd5, AuthMechanism::CramMd5],
        AuthEncryption::Off => &[AuthMechanism::Plain, AuthMechanism::Login],
    }
}

/// The SASL mechanisms an EHLO reply announces (`AUTH A B C` lines, and the
/// old `AUTH=A B` form), upper-cased, in the server's order, without
/// duplicates. `lines` are the reply's text lines without the code.
pub(crate) fn offered_mechanisms<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in lines {
        let upper = line.to_ascii_uppercase();
        let mut words = upper.split_whitespace();
        let Some(first) = words.next() else { continue };
        let mechanisms: Vec<&str> = if first == "AUTH" {
            words.collect()
        } else if let Some(glued) = first.strip_prefix("AUTH=") {
            // `AUTH=PLAIN LOGIN`: the first mechanism is glued to the keyword.
            std::iter::once(glued).chain(words).collect()
        } else {
            continue;
        };
        for m in mechanisms {
            if !m.is_empty() && !out.iter().any(|o| o == m) {
                out.push(m.to_owned());
            }
        }
    }
    out
}

/// Picks the mechanism to use: the first of `preference` the server offers.
pub(crate) fn choose(preference: &[AuthMechanism], offered: &[String]) -> Option<AuthMechanism> {
    preference
        .iter()
        .copied()
        .find(|m| offered.iter().any(|o| o == m.name()))
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The CRAM-MD5 answer (RFC 2195 §2), before base64: `user SP
/// hex(HMAC-MD5(password, challenge))`.
pub(crate) fn cram_md5_response(user: &str, password: &str, challenge: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let digest = match Hmac::<Md5>::new_from_slice(password.as_bytes()) {
        Ok(mut mac) => {
            mac.update(challenge);
            mac.finalize().into_bytes()
        }
        Err(_) => unreachable!("HMAC-MD5 takes keys of every length"),
    };
    format!("{user} {}", hex(&digest))
}

/// What went wrong with a DIGEST-MD5 exchange (never contains a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DigestError {
    #[error("the server's DIGEST-MD5 challenge is malformed: {0}")]
    Malformed(String),
    #[error("the server's DIGEST-MD5 challenge {0}")]
    Unsupported(String),
    #[error(
        "the server's DIGEST-MD5 proof (rspauth) does not match: it does not know the password, or the exchange was tampered with"
    )]
    BadServerProof,
}

/// A parsed DIGEST-MD5 challenge (RFC 2831 §2.1.1), the parts a client uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DigestChallenge {
    pub realms: Vec<String>,
    pub nonce: String,
    pub qop: Vec<String>,
    pub utf8: bool,
}

/// `key=value` pairs of a DIGEST-MD5 challenge or server response; values
/// are tokens or quoted strings with `\` escapes.
fn directives(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DigestError::Malformed(format!(
                "directive {key:?} has no value"
            )));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(e) => value.push(e),
                        None => break,
                    },
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(DigestError::Malformed(format!(
                    "the value of {key:?} has no closing quote"
                )));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if key.is_empty() {
            return Err(DigestError::Malformed("a directive has no name".into()));
        }
        out.push((key.to_ascii_lowercase(), value));
    }
}

impl DigestChallenge {
    /// Parses the decoded challenge text.
    pub fn parse(text: &str) -> Result<DigestChallenge, DigestError> {
        let mut realms = Vec::new();
        let mut nonce = None;
        let mut qop = None;
        let mut utf8 = false;
        let mut algorithm = None;
        for (key, value) in directives(text)? {
            match key.as_str() {
                "realm" => realms.push(value),
                "nonce" if nonce.is_some() => {
                    return Err(DigestError::Malformed("nonce is given twice".into()));
                }
                "nonce" => nonce = Some(value),
                "qop" => {
                    qop = Some(
                        value
                            .split(',')
                            .map(|q| q.trim().to_ascii_lowercase())
                            .filter(|q| !q.is_empty())
                            .collect::<Vec<_>>(),
                    );
                }
                "charset" => utf8 = value.eq_ignore_ascii_case("utf-8"),
                "algorithm" => algorithm = Some(value),
                // stale, maxbuf, cipher and extensions do not matter for
                // qop=auth.
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| DigestError::Malformed("there is no nonce".into()))?;
        match algorithm {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            Some(a) => {
                return Err(DigestError::Unsupported(format!(
                    "asks for algorithm {a:?}; only md5-sess exists"
                )));
            }
            None => {
                return Err(DigestError::Malformed(
                    "there is no algorithm=md5-sess".into(),
                ));
            }
        }
        // RFC 2831: a missing qop means "auth".
        let qop = qop.unwrap_or_else(|| vec!["auth".to_owned()]);
        if !qop.iter().any(|q| q == "auth") {
            return Err(DigestError::Unsupported(format!(
                "offers qop {qop:?} but not \"auth\""
            )));
        }
        Ok(DigestChallenge {
            realms,
            nonce,
            qop,
            utf8,
        })
    }
}

/// The client's answer to a DIGEST-MD5 challenge, and the server proof to
/// expect back.
pub(crate) struct DigestAnswer {
    /// The response text to send (base64-encode it first).
    pub response: String,
    /// The `rspauth` value the server must send if it knows the password.
    pub expected_rspauth: String,
}

/// Splits a login written `user@realm` (SPEC §1.2: "a realm is given as
/// user@realmID") into user name and realm. A login without `@` has no
/// realm of its own.
pub(crate) fn split_realm(login: &str) -> (&str, Option<&str>) {
    match login.rsplit_once('@') {
        Some((user, realm)) if !user.is_empty() && !realm.is_empty() => (user, Some(realm)),
        _ => (login, None),
    }
}

/// Computes the DIGEST-MD5 answer (RFC 2831 §2.1.2, qop=auth).
///
/// `login` may carry the realm as `user@realm`; otherwise the server's
/// first offered realm is used (the RFC lets the client pick one), or none.
/// That is also what Dovecot expects: it joins `username` and `realm` back
/// into `user@realm` and hashes `user:realm:password`, so `alice` (with the
/// server's realm) and `alice@printwatch.test` give the same answer.
/// Strings are hashed as UTF-8 bytes (we answer `charset=utf-8` when the
/// server offers it; ASCII credentials are the same either way).
pub(crate) fn digest_md5_answer(
    challenge: &DigestChallenge,
    login: &str,
    password: &str,
    service: &str,
    host: &str,
    cnonce: &str,
) -> DigestAnswer {
    let (user, own_realm) = split_realm(login);
    let realm = own_realm
        .map(str::to_owned)
        .or_else(|| challenge.realms.first().cloned());
    let realm_for_hash = realm.as_deref().unwrap_or("");
    let digest_uri = format!("{service}/{host}");
    let nc = "00000001";
    let qop = "auth";

    let secret = md5(&[
        user.as_bytes(),
        b":",
        realm_for_hash.as_bytes(),
        b":",
        password.as_bytes(),
    ]);
    let ha1 = hex(&md5(&[
        &secret,
        b":",
        challenge.nonce.as_bytes(),
        b":",
        cnonce.as_bytes(),
    ]));
    let kd = |a2: &str| {
        let ha2 = hex(&md5(&[a2.as_bytes()]));
        hex(&md5(&[
            ha1.as_bytes(),
            b":",
            challenge.nonce.as_bytes(),
            b":",
            nc.as_bytes(),
            b":",
            cnonce.as_bytes(),
            b":",
            qop.as_bytes(),
            b":",
            ha2.as_bytes(),
        ]))
    };
    let response_value = kd(&format!("AUTHENTICATE:{digest_uri}"));
    let expected_rspauth = kd(&format!(":{digest_uri}"));

    let mut parts = Vec::new();
    if challenge.utf8 {
        parts.push("charset=utf-8".to_owned());
    }
    parts.push(format!("username={}", quote(user)));
    if let Some(r) = &realm {
        parts.push(format!("realm={}", quote(r)));
    }
    parts.push(format!("nonce={}", quote(&challenge.nonce)));
    parts.push(format!("nc={nc}"));
    parts.push(format!("cnonce={}", quote(cnonce)));
    parts.push(format!("digest-uri={}", quote(&digest_uri)));
    parts.push(format!("response={response_value}"));
    parts.push(format!("qop={qop}"));
    DigestAnswer {
        response: parts.join(","),
        expected_rspauth,
    }
}

/// Checks the server's second DIGEST-MD5 message (`rspauth=...`).
pub(crate) fn check_rspauth(server_text: &str, expected: &str) -> Result<(), DigestError> {
    let got = directives(server_text)?
        .into_iter()
        .find(|(k, _)| k == "rspauth")
        .map(|(_, v)| v)
        .ok_or_else(|| {
            DigestError::Malformed("the server's second message has no rspauth".into())
        })?;
    if got.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        Err(DigestError::BadServerProof)
    }
}

/// A quoted-string with `"` and `\` escaped.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A fresh client nonce: 128 random bits as hex (uuid v4 draws from the
/// OS random source).
pub(crate) fn new_cnonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cram_md5_matches_the_rfc_2195_example() {
        // RFC 2195 §2.
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        assert_eq!(
            cram_md5_response("tim", "tanstaaftanstaaf", challenge),
            "tim b913a602c7eda7a495b4e6e7334d3890"
        );
    }

    const RFC2831_CHALLENGE: &str = "realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth\",algorithm=md5-sess,charset=utf-8";

    #[test]
    fn digest_md5_matches_the_rfc_2831_example() {
        // RFC 2831 §4 (an IMAP example, hence service "imap").
        let c = DigestChallenge::parse(RFC2831_CHALLENGE).unwrap();
        assert_eq!(c.realms, ["elwood.innosoft.com"]);
        assert_eq!(c.nonce, "OA6MG9tEQGm2hh");
        assert!(c.utf8);
        let a = digest_md5_answer(
            &c,
            "chris",
            "secret",
            "imap",
            "elwood.innosoft.com",
            "OA6MHXh6VqTrRk",
        );
        assert_eq!(
            a.response,
            "charset=utf-8,username=\"chris\",realm=\"elwood.innosoft.com\",nonce=\"OA6MG9tEQGm2hh\",\
             nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"imap/elwood.innosoft.com\",\
             response=d388dad90d4bbd760a152321f2143af7,qop=auth"
        );
        assert_eq!(a.expected_rspauth, "ea40f60335c427b5527b84dbabcdfffd");
        check_rspauth(
            "rspauth=ea40f60335c427b5527b84dbabcdfffd",
            &a.expected_rspauth,
        )
        .unwrap();
        assert_eq!(
            check_rspauth(
                "rspauth=00000000000000000000000000000000",
                &a.expected_rspauth
            ),
            Err(DigestError::BadServerProof)
        );
    }

    #[test]
    fn a_realm_written_in_the_login_gives_the_same_answer_as_the_offered_realm() {
        let c = DigestChallenge::parse(RFC2831_CHALLENGE).unwrap();
        let plain = digest_md5_answer(&c, "chris", "secret", "imap", "elwood.innosoft.com", "x");
        let with_realm = digest_md5_answer(
            &c,
            "chris@elwood.innosoft.com",
            "secret",
            "imap",
            "elwood.innosoft.com",
            "x",
        );
        assert_eq!(plain.response, with_realm.response);
        assert!(with_realm.response.contains("username=\"chris\""));
    }

    #[test]
    fn a_realm_in_the_login_wins_over_the_offered_one() {
        let c = DigestChallenge::parse(RFC2831_CHALLENGE).unwrap();
        let a = digest_md5_answer(&c, "u@other.test", "p", "smtp", "h", "x");
        assert!(
            a.response.contains("realm=\"other.test\""),
            "{}",
            a.response
        );
    }

    #[test]
    fn without_any_realm_no_realm_directive_is_sent() {
        let c = DigestChallenge::parse("nonce=\"n\",algorithm=md5-sess").unwrap();
        let a = digest_md5_answer(&c, "u", "p", "smtp", "h", "x");
        assert!(!a.response.contains("realm="), "{}", a.response);
        assert!(!a.response.contains("charset"), "{}", a.response);
        assert_eq!(c.qop, ["auth"]);
    }

    #[test]
    fn quoted_values_with_escapes_commas_and_spaces_parse() {
        let c = DigestChallenge::parse(
            " realm = \"a\\\"b\" , realm=\"c,d\",nonce=\"n\\\\1\", qop=\"auth,auth-int\",maxbuf=1024,algorithm=MD5-SESS",
        )
        .unwrap();
        assert_eq!(c.realms, ["a\"b", "c,d"]);
        assert_eq!(c.nonce, "n\\1");
        assert_eq!(c.qop, ["auth", "auth-int"]);
        let a = digest_md5_answer(&c, "us\"er", "p", "smtp", "h", "x");
        assert!(
            a.response.contains("username=\"us\\\"er\""),
            "{}",
            a.response
        );
        assert!(a.response.contains("realm=\"a\\\"b\""), "{}", a.response);
    }

    #[test]
    fn bad_challenges_are_errors_not_panics() {
        for bad in [
            "",
            "nonce",
            "nonce=\"unterminated",
            "=x",
            "nonce=\"a\",nonce=\"b\",algorithm=md5-sess",
            "nonce=\"a\"",
            "nonce=\"a\",algorithm=md5",
            "nonce=\"a\",algorithm=md5-sess,qop=\"auth-conf\"",
            "\u{0}\u{ffff}=\"\\",
        ] {
            assert!(DigestChallenge::parse(bad).is_err(), "{bad:?}");
        }
        assert!(check_rspauth("nothing=here", "x").is_err());
        assert!(check_rspauth("rspauth=\"", "x").is_err());
    }

    #[test]
    fn mechanisms_are_read_from_every_auth_line_form() {
        let lines = [
            "mail.printwatch.test",
            "PIPELINING",
            "AUTH PLAIN login CRAM-MD5 DIGEST-MD5",
            "AUTH=PLAIN LOGIN XOAUTH2",
            "8BITMIME",
            " ",
            "",
        ];
        assert_eq!(
            offered_mechanisms(lines),
            ["PLAIN", "LOGIN", "CRAM-MD5", "DIGEST-MD5", "XOAUTH2"]
        );
        assert!(offered_mechanisms(["AUTH"]).is_empty());
    }

    #[test]
    fn auth_encryption_decides_what_may_be_chosen() {
        let all = offered_mechanisms(["AUTH PLAIN LOGIN CRAM-MD5 DIGEST-MD5"]);
        let plain_only = offered_mechanisms(["AUTH PLAIN LOGIN"]);
        let cram_only = offered_mechanisms(["AUTH LOGIN CRAM-MD5"]);
        assert_eq!(
            choose(permitted(AuthEncryption::Auto), &all),
            Some(AuthMechanism::DigestMd5)
        );
        assert_eq!(
            choose(permitted(AuthEncryption::Auto), &cram_only),
            Some(AuthMechanism::CramMd5)
        );
        assert_eq!(
            choose(permitted(AuthEncryption::Auto), &plain_only),
            Some(AuthMechanism::Plain)
        );
        assert_eq!(choose(permitted(AuthEncryption::On), &plain_only), None);
        assert_eq!(
            choose(permitted(AuthEncryption::On), &cram_only),
            Some(AuthMechanism::CramMd5)
        );
        assert_eq!(
            choose(permitted(AuthEncryption::Off), &all),
            Some(AuthMechanism::Plain)
        );
        assert_eq!(
            choose(
                permitted(AuthEncryption::Off),
                &offered_mechanisms(["AUTH CRAM-MD5"])
            ),
            None
        );
    }

    #[test]
    fn realms_split_at_the_last_at_sign() {
        assert_eq!(split_realm("alice"), ("alice", None));
        assert_eq!(
            split_realm("alice@printwatch.test"),
            ("alice", Some("printwatch.test"))
        );
        assert_eq!(split_realm("a@b@c"), ("a@b", Some("c")));
        assert_eq!(split_realm("@realm"), ("@realm", None));
        assert_eq!(split_realm("user@"), ("user@", None));
    }
}
