//! `[on_demand]`: the manual's on-demand e-mail notification (要求時メール
//! 通知, SPEC §1.3) — what a `requeststatus` reply carries and who may ask.
//!
//! `allowed_senders` entries are an address (`ops@example.test`) or a
//! domain (`example.test`). A domain matches addresses at exactly that
//! domain, not its subdomains (`mail.example.test` is listed on its own):
//! an allow list that grows by itself is not an allow list.

use std::time::Duration;

use crate::duration::{DAY, secs};
use crate::read::{Reader, Section, echo};
use crate::validate;

/// The largest request mail accepted when none is set (the manual: 1 MB).
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1_048_576;
/// The most `max_request_bytes` may be.
pub const MAX_REQUEST_BYTES_LIMIT: u64 = 64 * 1_048_576;

/// `[on_demand]`.
#[derive(Debug, Clone)]
pub struct OnDemandConfig {
    /// 共通件名: prefixed to every reply's subject. One line.
    pub common_subject: String,
    /// 共通本文: added to every reply.
    pub common_body: String,
    /// 機器状態情報通知の制限: true = never reply.
    pub restrict: bool,
    /// 受信可能メールアドレス/ドメイン: who may request the status.
    pub allowed_senders: Vec<SenderPattern>,
    /// Request mails larger than this are not answered.
    pub max_request_bytes: u64,
    /// At most this many replies to one sender per `reply_window`, so the
    /// printers cannot be used to flood someone.
    pub max_replies_per_sender: u32,
    pub reply_window: Duration,
    /// How long a request is kept and retried while its device's agent is
    /// away or the device is not yet readable, before giving up.
    pub give_up_after: Duration,
    /// Delete mail that is not answered (not a request, not allowed, …)
    /// instead of leaving it in the mailbox.
    pub delete_ignored: bool,
}

impl Default for OnDemandConfig {
    fn default() -> Self {
        OnDemandConfig {
            common_subject: String::new(),
            common_body: String::new(),
            restrict: false,
            allowed_senders: Vec::new(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_replies_per_sender: 10,
            reply_window: secs(3600),
            give_up_after: DAY,
            delete_ignored: false,
        }
    }
}

impl OnDemandConfig {
    /// Whether `address` may request the status (ignores `restrict`).
    pub fn allows(&self, address: &str) -> bool {
        self.allowed_senders.iter().any(|p| p.matches(address))
    }
}

/// One `allowed_senders` entry, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderPattern {
    /// Exactly this address.
    Address(String),
    /// Any address at exactly this domain.
    Domain(String),
}

impl SenderPattern {
    /// Parses `ops@example.test`, `example.test` or `@example.test`.
    pub fn parse(text: &str) -> Result<Self, String> {
        const FORM: &str = "an address such as ops@example.test or a domain such as example.test";
        let t = text.trim().to_lowercase();
        if t.starts_with("*.") {
            return Err(format!(
                "expected {FORM}; wildcards are not supported, list each domain"
            ));
        }
        if let Some(domain) = t.strip_prefix('@') {
            return validate::domain(domain)
                .map(|()| SenderPattern::Domain(domain.to_owned()))
                .map_err(|_| format!("expected {FORM}, found {}", echo(text)));
        }
        if t.contains('@') {
            return validate::email(&t)
                .map(|()| SenderPattern::Address(t))
                .map_err(|e| e.replace("an e-mail address", FORM));
        }
        validate::domain(&t)
            .map(|()| SenderPattern::Domain(t))
            .map_err(|_| format!("expected {FORM}, found {}", echo(text)))
    }

    /// Whether the bare address `address` matches, without letter case.
    pub fn matches(&self, address: &str) -> bool {
        let address = address.trim();
        match self {
            SenderPattern::Address(a) => a.eq_ignore_ascii_case(address),
            SenderPattern::Domain(d) => address
                .rsplit_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.eq_ignore_ascii_case(d)),
        }
    }
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> OnDemandConfig {
    let mut c = OnDemandConfig::default();
    let Some(mut s) = r.table(root, "on_demand") else {
        return c;
    };
    if let Some(v) = r.string(&mut s, "common_subject") {
        match validate::header_text(&v) {
            Ok(()) => c.common_subject = v,
            Err(e) => r.problem(s.key("common_subject"), e),
        }
    }
    if let Some(v) = r.string(&mut s, "common_body") {
        match validate::body_text(&v) {
            Ok(()) => c.common_body = v,
            Err(e) => r.problem(s.key("common_body"), e),
        }
    }
    if let Some(b) = r.bool(&mut s, "restrict") {
        c.restrict = b;
    }
    for (key, text) in r.strings(&mut s, "allowed_senders").unwrap_or_default() {
        match SenderPattern::parse(&text) {
            Ok(p) if c.allowed_senders.contains(&p) => {
                r.problem(key, format!("{} is listed twice", echo(&text)))
            }
            Ok(p) => c.allowed_senders.push(p),
            Err(e) => r.problem(key, e),
        }
    }
    let limit = i64::try_from(MAX_REQUEST_BYTES_LIMIT).unwrap_or(i64::MAX);
    if let Some(n) = r.integer(
        &mut s,
        "max_request_bytes",
        1,
        limit,
        "a size in bytes 1..=67108864",
    ) {
        c.max_request_bytes = u64::try_from(n).unwrap_or(DEFAULT_MAX_REQUEST_BYTES);
    }
    if let Some(n) = r.integer(
        &mut s,
        "max_replies_per_sender",
        1,
        100_000,
        "a number 1..=100000",
    ) {
        c.max_replies_per_sender = u32::try_from(n).unwrap_or(10);
    }
    if let Some(d) = r.duration(&mut s, "reply_window", secs(1), secs(7 * 24 * 3600)) {
        c.reply_window = d;
    }
    if let Some(d) = r.duration(&mut s, "give_up_after", secs(1), secs(30 * 24 * 3600)) {
        c.give_up_after = d;
    }
    if let Some(b) = r.bool(&mut s, "delete_ignored") {
        c.delete_ignored = b;
    }
    r.finish(s);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_match_without_case() {
        let a = SenderPattern::parse("Ops@Example.test").unwrap();
        assert_eq!(a, SenderPattern::Address("ops@example.test".into()));
        assert!(a.matches("OPS@example.TEST"));
        assert!(!a.matches("ops2@example.test"));
        for text in ["example.test", "@example.test"] {
            let d = SenderPattern::parse(text).unwrap();
            assert_eq!(d, SenderPattern::Domain("example.test".into()));
            assert!(d.matches("anyone@EXAMPLE.test"));
            assert!(
                !d.matches("anyone@mail.example.test"),
                "subdomains are not matched"
            );
            assert!(!d.matches("anyone@badexample.test"));
            assert!(!d.matches("example.test"));
        }
        for bad in [
            "",
            "*.example.test",
            "a b@example.test",
            "exa mple.test",
            "x@y@z",
        ] {
            assert!(SenderPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
