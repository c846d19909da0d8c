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
    /// How often each device is read.
    pub poll_interval: Duration,
    /// How long to wait for JetStream's ack of one publish.
    pub publish_timeout: Duration,
    /// Further attempts after a failed publish (same `Nats-Msg-Id`).
    pub publish_retries: u32,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            grpc_listen: DEFAULT_GRPC_LISTEN,
            advertise: format!("http://{DEFAULT_GRPC_LISTEN}"),
            poll_interval: secs(5),
            publish_timeout: secs(5),
            publish_retries: 10,
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
    if let Some(d) = r.duration(&mut s, "poll_interval", millis(100), DAY) {
        c.poll_interval = d;
    }
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
