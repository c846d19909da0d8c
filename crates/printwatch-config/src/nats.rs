//! `[nats]`: how every service reaches NATS, and the names it uses there.
//!
//! One authentication method at a time (user + password, token, creds
//! file, nkey seed), secrets wrapped, and no credentials in URLs: a URL
//! ends up in log lines and error messages, a `Secret` does not.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};
use url::Url;

use crate::duration::{DAY, millis, secs};
use crate::read::{Reader, Scope, Section, echo, type_name};
use crate::secret::Secret;
use crate::validate;

/// The URL used when `[nats] url` is absent.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// `[nats]`.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// Server URLs (`url`: one URL, a comma-separated list, or an array).
    pub urls: Vec<String>,
    pub auth: NatsAuth,
    /// `[nats.tls]`, if given.
    pub tls: Option<NatsTls>,
    /// The JetStream stream of events.
    pub stream: String,
    /// First token(s) of every subject.
    pub subject_prefix: String,
    /// Prefix of every key-value bucket.
    pub bucket_prefix: String,
    pub connect_timeout: Duration,
    /// The client name shown by the server; the service's own name if unset.
    pub name: Option<String>,
    /// Replicas of the stream and buckets when a service creates them.
    pub replicas: usize,
}

impl Default for NatsConfig {
    fn default() -> Self {
        let names = printwatch_events::Names::default();
        NatsConfig {
            urls: vec![DEFAULT_NATS_URL.to_owned()],
            auth: NatsAuth::None,
            tls: None,
            stream: names.stream,
            subject_prefix: names.subject_prefix,
            bucket_prefix: names.bucket_prefix,
            connect_timeout: secs(5),
            name: None,
            replicas: 1,
        }
    }
}

/// How to authenticate to NATS.
#[derive(Debug, Clone)]
pub enum NatsAuth {
    None,
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
    /// A `.creds` file (JWT + nkey seed).
    CredsFile(PathBuf),
    /// A user nkey seed (`SU…`).
    NkeySeed(Secret),
}

/// `[nats.tls]`.
#[derive(Debug, Clone, Default)]
pub struct NatsTls {
    /// CA bundle (PEM) trusted for the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `key_file`.
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM), with `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Refuse a connection without TLS (default true when `[nats.tls]` is
    /// given).
    pub required: bool,
}

pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> NatsConfig {
    let empty = Table::new();
    let mut s = r
        .table(root, "nats")
        .unwrap_or_else(|| Section::new("nats".into(), &empty));
    let mut c = NatsConfig::default();

    if let Some(urls) = urls(r, &mut s) {
        c.urls = urls;
    }
    c.auth = auth(r, &mut s);
    if let Some(mut t) = r.table(&mut s, "tls") {
        c.tls = Some(tls(r, &mut t));
        r.finish(t);
    }
    if let Some(v) = r.string(&mut s, "stream") {
        match validate::token(&v, "a stream name") {
            Ok(()) => c.stream = v,
            Err(e) => r.problem(s.key("stream"), e),
        }
    }
    if let Some(v) = r.string(&mut s, "subject_prefix") {
        match validate::subject_prefix(&v) {
            Ok(()) => c.subject_prefix = v,
            Err(e) => r.problem(s.key("subject_prefix"), e),
        }
    }
    if let Some(v) = r.string(&mut s, "bucket_prefix") {
        match validate::token(&v, "a bucket name prefix") {
            Ok(()) => c.bucket_prefix = v,
            Err(e) => r.problem(s.key("bucket_prefix"), e),
        }
    }
    if let Some(d) = r.duration(&mut s, "connect_timeout", millis(1), DAY) {
        c.connect_timeout = d;
    }
    if let Some(v) = r.string(&mut s, "name") {
        match validate::header_text(&v).and_then(|()| nonempty(&v)) {
            Ok(()) => c.name = Some(v),
            Err(e) => r.problem(s.key("name"), e),
        }
    }
    if let Some(n) = r.integer(&mut s, "replicas", 1, 5, "a replica count 1..=5") {
        c.replicas = usize::try_from(n).unwrap_or(1);
    }
    r.finish(s);
    c
}

fn nonempty(v: &str) -> Result<(), String> {
    if v.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(())
    }
}

/// `url`: one URL, `"a, b"`, or `["a", "b"]`.
fn urls(r: &mut Reader<'_>, s: &mut Section<'_>) -> Option<Vec<String>> {
    let path = s.key("url");
    let list: Vec<(String, String)> = match r.value(s, "url")? {
        Value::String(v) => v
            .split(',')
            .map(|u| (path.clone(), u.trim().to_owned()))
            .collect(),
        Value::Array(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(v) => out.push((format!("{path}[{i}]"), v.trim().to_owned())),
                    other => r.problem(
                        format!("{path}[{i}]"),
                        format!("expected a string, found {}", type_name(other)),
                    ),
                }
            }
            out
        }
        other => {
            r.problem(
                path,
                format!(
                    "expected a URL such as \"{DEFAULT_NATS_URL}\" or a list of them, found {}",
                    type_name(other)
                ),
            );
            return None;
        }
    };
    let mut good = Vec::new();
    for (key, u) in list.into_iter().filter(|(_, u)| !u.is_empty()) {
        match check_url(&u) {
            Ok(()) => good.push(u),
            Err(e) => r.problem(key, e),
        }
    }
    if good.is_empty() {
        r.problem(
            path,
            format!("expected at least one URL such as \"{DEFAULT_NATS_URL}\""),
        );
        return None;
    }
    Some(good)
}

fn check_url(u: &str) -> Result<(), String> {
    const FORM: &str = "a URL such as nats://127.0.0.1:4222 (schemes nats, tls, ws, wss)";
    // A URL with `@` may carry a password: never echo it.
    let shown = if u.contains('@') {
        "the URL".to_owned()
    } else {
        echo(u)
    };
    if !u.contains("://") {
        return Err(format!("expected {FORM}, found {shown}"));
    }
    let url =
        Url::parse(u).map_err(|e| format!("expected {FORM}; {shown} is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "nats" | "tls" | "ws" | "wss") {
        return Err(format!(
            "unknown scheme {}; expected {FORM}",
            echo(url.scheme())
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL would be logged; give them as nats.user + nats.password, nats.token, nats.creds_file or nats.nkey_seed".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("expected {FORM}; {shown} names no host"));
    }
    Ok(())
}

fn auth(r: &mut Reader<'_>, s: &mut Section<'_>) -> NatsAuth {
    let user = r.string(s, "user");
    let password = r.secret(s, "password", Scope::Nats, Some("PRINTWATCH_NATS_PASSWORD"));
    let token = r.secret(s, "token", Scope::Nats, Some("PRINTWATCH_NATS_TOKEN"));
    let creds = r.path(s, "creds_file");
    let seed = r.secret(
        s,
        "nkey_seed",
        Scope::Nats,
        Some("PRINTWATCH_NATS_NKEY_SEED"),
    );

    let mut methods = Vec::new();
    if user.is_some() || password.is_given() {
        methods.push("user + password");
    }
    if token.is_given() {
        methods.push("token");
    }
    if creds.is_some() {
        methods.push("creds_file");
    }
    if seed.is_given() {
        methods.push("nkey_seed");
    }
    if methods.len() > 1 {
        r.problem(
            s.path.clone(),
            format!(
                "more than one authentication method is given ({}); keep one (the PRINTWATCH_NATS_* overrides count too)",
                methods.join(", ")
            ),
        );
        return NatsAuth::None;
    }
    if let Some(user) = user {
        if let Err(e) = validate::header_text(&user).and_then(|()| nonempty(&user)) {
            r.problem(s.key("user"), e);
        }
        if !password.is_given() {
            r.defer(
                Scope::Nats,
                s.key("password"),
                "required with nats.user: give password, password_file or password_env, or set PRINTWATCH_NATS_PASSWORD",
            );
        }
        let password = password
            .or_placeholder()
            .unwrap_or_else(|| Secret::new(String::new()));
        return NatsAuth::UserPassword { user, password };
    }
    if password.is_given() {
        r.problem(
            s.key("user"),
            "required with nats.password (or PRINTWATCH_NATS_PASSWORD)",
        );
        return NatsAuth::None;
    }
    if let Some(t) = token.or_placeholder() {
        return NatsAuth::Token(t);
    }
    if let Some(path) = creds {
        r.check_file(Scope::Nats, s.key("creds_file"), &path);
        return NatsAuth::CredsFile(path);
    }
    if let Some(seed) = seed.or_placeholder() {
        // Checked without echoing: a seed is a private key.
        if !seed.is_empty() && !seed.expose().starts_with("SU") {
            r.problem(
                s.key("nkey_seed"),
                "is not a user nkey seed (those start with `SU`)",
            );
        }
        return NatsAuth::NkeySeed(seed);
    }
    NatsAuth::None
}

fn tls(r: &mut Reader<'_>, t: &mut Section<'_>) -> NatsTls {
    let mut tls = NatsTls {
        required: true,
        ..NatsTls::default()
    };
    for (key, slot) in [
        ("ca_file", &mut tls.ca_file),
        ("cert_file", &mut tls.cert_file),
        ("key_file", &mut tls.key_file),
    ] {
        if let Some(p) = r.path(t, key) {
            r.check_file(Scope::Nats, t.key(key), &p);
            *slot = Some(p);
        }
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(_), None) => r.problem(
            t.key("key_file"),
            "required with cert_file (the client certificate's key)",
        ),
        (None, Some(_)) => r.problem(
            t.key("cert_file"),
            "required with key_file (the client certificate)",
        ),
        _ => {}
    }
    if let Some(b) = r.bool(t, "required") {
        tls.required = b;
    }
    tls
}
