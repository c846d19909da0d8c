//! `[agent]`: where the device agent serves gRPC, the URL others reach it
//! by, and how often it reads devices and how hard it publishes.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use url::Url;

use crate::duration::{DAY, millis, secs};
use crate::read::{Reader, Section, echo};

/// The gRPC address when `[agent] grpc_listen` is absent.
pub const DEFAULT_GRPC_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 50051);

/// `[agent]`.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Where the gRPC server listens.
    pub grpc_listen: SocketAddr,
    /// The URL other services and the CLI use (`http://<grpc_listen>` by
    /// default); stored with each device in the devices bucket.
    pub advertise: String,
    /// How often each device is read (a device's own `poll_interval`
    /// overrides it).
    pub poll_interval: Duration,
    /// How reads are spread, bounded and timed out across the fleet.
    pub polling: Polling,
    /// How long to wait for JetStream's ack of one publish.
    pub publish_timeout: Duration,
    /// Further attempts after a failed publish (same `Nats-Msg-Id`).
    pub publish_retries: u32,
    /// `[agent.vendor_signals]`: vendor OIDs / IPP keywords → items, for
    /// every device ([`crate::vendor`]).
    pub vendor_signals: crate::VendorSignals,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            grpc_listen: DEFAULT_GRPC_LISTEN,
            advertise: format!("http://{DEFAULT_GRPC_LISTEN}"),
            poll_interval: secs(5),
            polling: Polling::default(),
            publish_timeout: secs(5),
            publish_retries: 10,
            vendor_signals: crate::VendorSignals::new(),
        }
    }
}

/// Reads `[agent]`; also says whether `advertise` was written out.
pub(crate) fn read(r: &mut Reader<'_>, root: &mut Section<'_>) -> (AgentConfig, bool) {
    let mut c = AgentConfig::default();
    let Some(mut s) = r.table(root, "agent") else {
        return (c, false);
    };
    if let Some(text) = r.string(&mut s, "grpc_listen") {
        match text.trim().parse::<SocketAddr>() {
            Ok(a) => c.grpc_listen = a,
            Err(_) => r.problem(
                s.key("grpc_listen"),
                format!("expected an IP address and port such as 127.0.0.1:50051 or [::]:50051, found {}", echo(&text)),
            ),
        }
    }
    c.advertise = format!("http://{}", c.grpc_listen);
    let mut given = false;
    if let Some(text) = r.string(&mut s, "advertise") {
        match check_advertise(text.trim()) {
            Ok(()) => {
                c.advertise = text.trim().trim_end_matches('/').to_owned();
                given = true;
            }
            Err(e) => r.problem(s.key("advertise"), e),
        }
    }
    c.vendor_signals = crate::vendor::read(r, &mut s);
    if let Some(d) = r.duration(&mut s, "poll_interval", millis(100), DAY) {
        c.poll_interval = d;
    }
    read_polling(r, &mut s, &mut c.polling);
    if let Some(d) = r.duration(&mut s, "publish_timeout", millis(1), DAY) {
        c.publish_timeout = d;
    }
    if let Some(n) = r.integer(
        &mut s,
        "publish_retries",
        0,
        1000,
        "a number of retries 0..=1000",
    ) {
        c.publish_retries = u32::try_from(n).unwrap_or(10);
    }
    r.finish(s);
    (c, given)
}

/// `[agent]` keys of polling a fleet: jitter, bounded concurrency, the
/// deadline of one read and when a silent device counts as unreachable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Polling {
    /// Spread of the reads, as a fraction of the device's interval
    /// (0.0..=1.0): the first read waits a random 0..jitter × interval,
    /// each next one interval × (1 ± jitter/2).
    pub jitter: f64,
    /// At most this many devices are being read at once.
    pub max_concurrent_reads: usize,
    /// A whole read (every request of it) must finish within this, or it
    /// counts as "did not answer".
    pub read_timeout: Duration,
    /// Consecutive unanswered reads before the device is declared
    /// unreachable (`unit_connection_error`).
    pub unreachable_after: u32,
}

/// `[agent] poll_jitter` by default.
pub const DEFAULT_POLL_JITTER: f64 = 0.2;
/// `[agent] max_concurrent_reads` by default.
pub const DEFAULT_MAX_CONCURRENT_READS: usize = 64;
/// `[agent] read_timeout` by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// `[agent] unreachable_after` by default.
pub const DEFAULT_UNREACHABLE_AFTER: u32 = 3;

impl Default for Polling {
    fn default() -> Self {
        Polling {
            jitter: DEFAULT_POLL_JITTER,
            max_concurrent_reads: DEFAULT_MAX_CONCURRENT_READS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            unreachable_after: DEFAULT_UNREACHABLE_AFTER,
        }
    }
}

fn read_polling(r: &mut Reader<'_>, s: &mut Section<'_>, p: &mut Polling) {
    const JITTER: &str = "a fraction of the poll interval 0.0..=1.0, such as 0.2";
    let path = s.key("poll_jitter");
    match r.value(s, "poll_jitter") {
        None => {}
        Some(toml::Value::Float(f)) if (0.0..=1.0).contains(f) => p.jitter = *f,
        Some(toml::Value::Integer(n)) if (0..=1).contains(n) => p.jitter = *n as f64,
        Some(v @ (toml::Value::Float(_) | toml::Value::Integer(_))) => {
            r.problem(path, format!("expected {JITTER}, found {v}"));
        }
        Some(other) => r.wrong_type(path, JITTER, other),
    }
    if let Some(n) = r.integer(
        s,
        "max_concurrent_reads",
        1,
        10_000,
        "a number of devices 1..=10000",
    ) {
        p.max_concurrent_reads = usize::try_from(n).unwrap_or(DEFAULT_MAX_CONCURRENT_READS);
    }
    if let Some(d) = r.duration(s, "read_timeout", millis(100), secs(3600)) {
        p.read_timeout = d;
    }
    if let Some(n) = r.integer(
        s,
        "unreachable_after",
        1,
        1000,
        "a number of consecutive failed reads 1..=1000",
    ) {
        p.unreachable_after = u32::try_from(n).unwrap_or(DEFAULT_UNREACHABLE_AFTER);
    }
}

/// An `http://` or `https://` URL with a host and nothing after the port.
pub(crate) fn check_advertise(text: &str) -> Result<(), String> {
    const FORM: &str = "an http:// or https:// URL such as http://printwatch-agent:50051";
    let shown = if text.contains('@') {
        "the URL".to_owned()
    } else {
        echo(text)
    };
    let url = Url::parse(text)
        .map_err(|e| format!("expected {FORM}; {shown} is not a valid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected {FORM}, found the scheme {}",
            echo(url.scheme())
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("expected {FORM}; {shown} names no host"));
    }
    if !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(format!(
            "expected {FORM} without credentials, query or fragment"
        ));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(format!("expected {FORM} without a path"));
    }
    Ok(())
}
