//! Where an agent reads a device from: `source = "simulated"`,
//! `"snmp://host[:port][?community=…]"` or `"ipp[s]://host[:port]/path"`.
//!
//! The source string can carry the SNMP community, a secret, so nothing
//! here echoes it: errors name at most the scheme, and [`DeviceSource`]'s
//! `Display` rebuilds the address without the community. A new kind of
//! source is one variant here and one arm in [`parse`].

use std::fmt;

use url::{Host, Url};

use crate::read::echo;
use crate::secret::Secret;
use crate::validate;

/// The forms `source` takes, for error messages.
pub const SOURCE_FORMS: &str = "\"simulated\", \"snmp://host[:port][?community=…]\", \"ipp://host[:port]/path\" or \"ipps://host[:port]/path\"";

/// The SNMP port when the URL names none.
pub const SNMP_DEFAULT_PORT: u16 = 161;
/// The IPP port when the URL names none.
pub const IPP_DEFAULT_PORT: u16 = 631;
/// The SNMP community when none is given.
pub const DEFAULT_COMMUNITY: &str = "public";

/// How the agent reads a device.
#[derive(Debug, Clone)]
pub enum DeviceSource {
    /// An in-memory device driven by `printwatch raise` / `clear`.
    Simulated,
    /// SNMP v2c, Printer-MIB (RFC 3805).
    Snmp(SnmpSource),
    /// IPP Get-Printer-Attributes (`printer-state-reasons`, marker levels).
    Ipp(IppSource),
}

/// An SNMP agent on a device.
#[derive(Debug, Clone)]
pub struct SnmpSource {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// UDP port, 161 unless the URL says otherwise.
    pub port: u16,
    /// The read community: from the URL query, the device's `community*`
    /// keys or `PRINTWATCH_DEVICES_<ID>_COMMUNITY`; `public` by default.
    /// Unused when `v3` is set.
    pub community: Secret,
    /// `[devices.snmp]` with `version = "3"`: SNMPv3 authPriv instead of
    /// the v2c community.
    pub v3: Option<SnmpV3>,
}

/// SNMPv3 USM credentials (authPriv) of one device (`[devices.snmp]`).
#[derive(Debug, Clone)]
pub struct SnmpV3 {
    /// The USM user name.
    pub user: String,
    pub auth_protocol: SnmpAuthProtocol,
    /// Empty when it could not be read (`require_agent` says why).
    pub auth_password: Secret,
    pub priv_protocol: SnmpPrivProtocol,
    /// Empty when it could not be read (`require_agent` says why).
    pub priv_password: Secret,
}

/// The USM authentication protocol (`auth_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpAuthProtocol {
    /// `"sha"`: HMAC-SHA-96 (RFC 3414).
    Sha1,
    /// `"sha224"` .. `"sha512"`: HMAC-SHA-2 (RFC 7860).
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

/// The USM privacy protocol (`priv_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnmpPrivProtocol {
    /// `"aes"`: AES-128-CFB (RFC 3826).
    Aes128,
    /// `"aes192"` / `"aes256"`: the longer-key variants (Blumenthal key
    /// extension).
    Aes192,
    Aes256,
}

/// An IPP printer URI.
#[derive(Debug, Clone)]
pub struct IppSource {
    /// The `ipp://` or `ipps://` URI, as given (no credentials allowed).
    pub url: Url,
    /// `ipps`: IPP over TLS.
    pub tls: bool,
    /// `[devices.ipp] ca_file`: a PEM certificate trusted for `ipps://`
    /// besides the system's (e.g. the printer's self-signed one).
    pub ca_file: Option<std::path::PathBuf>,
    /// `[devices.ipp] tls_verify` (default `true`); `false` accepts any
    /// certificate of an `ipps://` printer.
    pub tls_verify: bool,
}

impl IppSource {
    /// The port, 631 unless the URI says otherwise.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(IPP_DEFAULT_PORT)
    }

    /// The HTTP(S) URL an IPP client posts to (RFC 8010 §3.4: `ipp` is
    /// HTTP on port 631, `ipps` is HTTPS).
    pub fn http_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = self.url.host_str().unwrap_or_default();
        let mut out = format!("{scheme}://{host}:{}{}", self.port(), self.url.path());
        if let Some(q) = self.url.query() {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

impl DeviceSource {
    /// `simulated`, `snmp` or `ipp` (also for `ipps`).
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceSource::Simulated => "simulated",
            DeviceSource::Snmp(_) => "snmp",
            DeviceSource::Ipp(_) => "ipp",
        }
    }
}

/// The source as the operator wrote it, minus the community.
impl fmt::Display for DeviceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSource::Simulated => f.write_str("simulated"),
            DeviceSource::Snmp(s) if s.host.contains(':') => {
                write!(f, "snmp://[{}]:{}", s.host, s.port)
            }
            DeviceSource::Snmp(s) => write!(f, "snmp://{}:{}", s.host, s.port),
            DeviceSource::Ipp(i) => f.write_str(i.url.as_str()),
        }
    }
}

/// A parsed `source`, before the community is settled.
pub(crate) enum Parsed {
    Simulated,
    Snmp {
        host: String,
        port: u16,
        community: Option<String>,
    },
    Ipp(IppSource),
}

/// Parses a `source` string. The error never contains the string itself.
pub(crate) fn parse(text: &str) -> Result<Parsed, String> {
    let text = text.trim();
    if text == "simulated" {
        return Ok(Parsed::Simulated);
    }
    let Some((scheme, _)) = text.split_once("://") else {
        return Err(format!("expected {SOURCE_FORMS}"));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "snmp" | "ipp" | "ipps") {
        return Err(format!(
            "unknown source scheme {}; expected {SOURCE_FORMS}",
            echo(&scheme)
        ));
    }
    let url = Url::parse(text)
        .map_err(|e| format!("not a valid {scheme} URL ({e}); expected {SOURCE_FORMS}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(match scheme.as_str() {
            "snmp" => "the community goes in the query or the `community` key, not before the host"
                .to_owned(),
            _ => "credentials in an IPP URL are not supported".to_owned(),
        });
    }
    if url.fragment().is_some() {
        return Err(format!("a {scheme} URL takes no #fragment"));
    }
    let host = match url.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(a)) => a.to_string(),
        Some(Host::Ipv6(a)) => a.to_string(),
        None => {
            return Err(format!(
                "the {scheme} URL names no host; expected {SOURCE_FORMS}"
            ));
        }
    };
    validate::host(&host)?;
    if url.port() == Some(0) {
        return Err("expected a port number 1..=65535, found 0".into());
    }
    if scheme == "snmp" {
        if !matches!(url.path(), "" | "/") {
            return Err(
                "an snmp URL takes no path; expected \"snmp://host[:port][?community=…]\"".into(),
            );
        }
        let mut community = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "community" if community.is_none() => community = Some(v.into_owned()),
                "community" => return Err("the community is given twice".into()),
                other => {
                    return Err(format!(
                        "unknown snmp URL parameter {}; only `community` is known",
                        echo(other)
                    ));
                }
            }
        }
        if community.as_deref() == Some("") {
            return Err("the community in the URL is empty".into());
        }
        return Ok(Parsed::Snmp {
            host,
            port: url.port().unwrap_or(SNMP_DEFAULT_PORT),
            community,
        });
    }
    if matches!(url.path(), "" | "/") {
        return Err(format!(
            "an {scheme} URL needs the printer's path, such as {scheme}://printer.example.test/ipp/print"
        ));
    }
    Ok(Parsed::Ipp(IppSource {
        tls: scheme == "ipps",
        url,
        ca_file: None,
        tls_verify: true,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match parse(s) {
            Err(e) => e,
            Ok(_) => panic!("{s} parsed"),
        }
    }

    #[test]
    fn the_three_forms_parse() {
        assert!(matches!(parse("simulated"), Ok(Parsed::Simulated)));
        let Ok(Parsed::Snmp {
            host,
            port,
            community,
        }) = parse("snmp://192.0.2.10?community=s3cret")
        else {
            panic!()
        };
        assert_eq!(
            (host.as_str(), port, community.as_deref()),
            ("192.0.2.10", 161, Some("s3cret"))
        );
        let Ok(Parsed::Snmp {
            host,
            port,
            community,
        }) = parse("snmp://[2001:db8::1]:1161")
        else {
            panic!()
        };
        assert_eq!(
            (host.as_str(), port, community),
            ("2001:db8::1", 1161, None)
        );
        let Ok(Parsed::Ipp(ipp)) = parse("ipps://printer.example.test/ipp/print") else {
            panic!()
        };
        assert!(ipp.tls);
        assert_eq!(ipp.http_url(), "https://printer.example.test:631/ipp/print");
    }

    #[test]
    fn bad_sources_say_what_is_expected_and_never_echo_the_community() {
        assert!(err("http://printer/ipp").contains("unknown source scheme `http`"));
        assert!(err("http://printer/ipp").contains("simulated"));
        assert!(err("printer.example.test").contains("snmp://"));
        for bad in [
            "snmp://h?community=s3cret&version=1",
            "snmp://user:s3cret@h",
            "snmp://h/path?community=s3cret",
            "snmp://h:0?community=s3cret",
            "snmp://h?community=s3cret&community=s3cret",
            "snmp://bad host?community=s3cret",
        ] {
            let e = err(bad);
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
        assert!(err("ipp://printer").contains("path"));
        assert!(err("ipp://u:p@printer/ipp").contains("credentials"));
    }

    #[test]
    fn display_hides_the_community() {
        let s = DeviceSource::Snmp(SnmpSource {
            host: "::1".into(),
            port: 161,
            community: Secret::new("s3cret"),
            v3: None,
        });
        assert_eq!(s.to_string(), "snmp://[::1]:161");
        assert!(!format!("{s:?}").contains("s3cret"));
    }
}
