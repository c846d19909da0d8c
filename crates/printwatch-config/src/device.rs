//! `[[devices]]`: the printers one agent watches, and what their mails say
//! about them (name, location, addresses, the device's own mail address).
//!
//! A device's `id` is a NATS subject token and a key-value key, so it is
//! checked with `printwatch_events::subject::is_token`; ids and mail
//! addresses are unique across the fleet file.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use crate::read::{Reader, Scope, Section, echo};
use crate::secret::{Secret, device_community_var};
use crate::source::{
    self, DEFAULT_COMMUNITY, DeviceSource, Parsed, SOURCE_FORMS, SnmpAuthProtocol,
    SnmpPrivProtocol, SnmpSource, SnmpV3,
};
use crate::validate;

/// The model named when a device's `model` is absent.
pub const DEFAULT_MODEL: &str = "RICOH IP C6020";

/// One `[[devices]]` entry.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    /// Unique id; a subject token (`lobby-1`).
    pub id: String,
    /// Display name; the id when absent.
    pub name: String,
    /// Where it stands, for the mail body.
    pub location: String,
    pub model: String,
    pub serial: String,
    /// The device's notification address: From: of its alerts, To: of its
    /// request mails. Unique across devices.
    pub mail_address: Option<String>,
    pub source: DeviceSource,
    /// How often this device is read; `[agent] poll_interval` when absent.
    pub poll_interval: Option<Duration>,
    /// Added to this device's alert mails after `[alerts] common_body`.
    pub common_body: Option<String>,
    /// Groups that get every alert of this device, besides the item's.
    pub extra_groups: Vec<String>,
    /// Protocol settings a mail body shows (SPEC §1.1).
    pub host_name: Option<String>,
    pub addresses: Vec<IpAddr>,
    /// Enabled protocols as the body lists them, e.g. `IPP`, `SNMPv2c`.
    pub protocols: Vec<String>,
    pub mac_address: Option<String>,
    /// `[devices.simulated]`: only for `source = "simulated"`.
    pub simulated: SimulatedSettings,
    /// `[devices.mailbox]`: this device's own mailbox on the `[mail.receive]`
    /// server, for a fleet with one account per printer. Requests found in
    /// it are for this device.
    pub mailbox: Option<DeviceMailbox>,
    /// `[devices.vendor_signals]`: this device's vendor OIDs / IPP keywords
    /// → items, on top of `[agent.vendor_signals]` ([`crate::vendor`]).
    pub vendor_signals: crate::VendorSignals,
}

/// A device's own mailbox login (`[devices.mailbox]`).
#[derive(Debug, Clone)]
pub struct DeviceMailbox {
    pub username: String,
    /// `None` when it could not be read (`require_inbox` says why).
    pub password: Option<Secret>,
}

/// Initial state of a simulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimulatedSettings {
    /// Toner remaining at start, 0..=100 (default 100).
    pub toner_level_percent: u8,
    /// How long after the agent starts the simulated printer answers no
    /// read, like a printer right after power-on (default 0s).
    pub boot_delay: Duration,
}

impl Default for SimulatedSettings {
    fn default() -> Self {
        SimulatedSettings {
            toner_level_percent: 100,
            boot_delay: Duration::ZERO,
        }
    }
}

/// Reads every `[[devices]]`; `groups` are the names in `[alerts.groups]`.
pub(crate) fn read(
    r: &mut Reader<'_>,
    root: &mut Section<'_>,
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<DeviceConfig> {
    let mut out = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut addresses: HashMap<String, String> = HashMap::new();
    for mut s in r.tables(root, "devices") {
        let device = device(r, &mut s, groups);
        if let Some(d) = device {
            if let Some(first) = ids.get(&d.id) {
                r.problem(
                    s.key("id"),
                    format!("duplicate device id {} (also {first})", echo(&d.id)),
                );
            } else {
                ids.insert(d.id.clone(), s.key("id"));
            }
            if let Some(addr) = &d.mail_address {
                let lower = addr.to_lowercase();
                if let Some(first) = addresses.get(&lower) {
                    r.problem(
                        s.key("mail_address"),
                        format!("{} is already the mail address of {first}", echo(addr)),
                    );
                } else {
                    addresses.insert(lower, s.key("mail_address"));
                }
            }
            out.push(d);
        }
        r.finish(s);
    }
    out
}

fn single_line(r: &mut Reader<'_>, s: &mut Section<'_>, key: &str) -> Option<String> {
    let v = r.string(s, key)?;
    match validate::header_text(&v) {
        Ok(()) => Some(v),
        Err(e) => {
            r.problem(s.key(key), e);
            None
        }
    }
}

fn device(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    groups: &BTreeMap<String, Vec<String>>,
) -> Option<DeviceConfig> {
    let id = r.string(s, "id");
    let id = match id {
        None if !s.has("id") => {
            r.problem(
                s.key("id"),
                "required: a device id of letters, digits, - and _, such as lobby-1",
            );
            None
        }
        None => None,
        Some(id) => match validate::token(&id, "a device id") {
            Ok(()) => Some(id),
            Err(e) => {
                r.problem(s.key("id"), e);
                None
            }
        },
    };
    let name = single_line(r, s, "name");
    let location = single_line(r, s, "location").unwrap_or_default();
    let model = single_line(r, s, "model").unwrap_or_else(|| DEFAULT_MODEL.to_owned());
    let serial = single_line(r, s, "serial").unwrap_or_default();
    let mail_address = r
        .string(s, "mail_address")
        .and_then(|a| match validate::email(&a) {
            Ok(()) => Some(a),
            Err(e) => {
                r.problem(s.key("mail_address"), e);
                None
            }
        });
    let parsed = match r.string(s, "source") {
        Some(text) => match source::parse(&text) {
            Ok(p) => Some(p),
            Err(e) => {
                r.problem(s.key("source"), e);
                None
            }
        },
        None if !s.has("source") => {
            r.problem(s.key("source"), format!("required: {SOURCE_FORMS}"));
            None
        }
        None => None,
    };
    // The override is applied here, not in `secret`, so a community in the
    // URL and one in the keys can be told apart from an override.
    let community_key = r.secret(s, "community", Scope::Devices, None);
    let community_override = id
        .as_deref()
        .and_then(|id| r.env.var(&device_community_var(id)))
        .filter(|v| !v.is_empty());
    let common_body = r
        .string(s, "common_body")
        .and_then(|b| match validate::body_text(&b) {
            Ok(()) => Some(b),
            Err(e) => {
                r.problem(s.key("common_body"), e);
                None
            }
        });
    let extra_groups = group_refs(r, s, "extra_groups", groups);
    let host_name = r
        .string(s, "host_name")
        .and_then(|h| match validate::host(&h) {
            Ok(()) => Some(h),
            Err(e) => {
                r.problem(s.key("host_name"), e);
                None
            }
        });
    let mut ip_addresses = Vec::new();
    for (key, text) in r.strings(s, "addresses").unwrap_or_default() {
        match text.trim().parse::<IpAddr>() {
            Ok(a) => ip_addresses.push(a),
            Err(_) => r.problem(
                key,
                format!(
                    "expected an IPv4 or IPv6 address such as 192.0.2.10, found {}",
                    echo(&text)
                ),
            ),
        }
    }
    let mut protocols = Vec::new();
    for (key, text) in r.strings(s, "protocols").unwrap_or_default() {
        match validate::header_text(&text) {
            Ok(()) if !text.trim().is_empty() => protocols.push(text),
            Ok(()) => r.problem(key, "must not be empty"),
            Err(e) => r.problem(key, e),
        }
    }
    let mac_address = r.string(s, "mac_address").and_then(|m| {
        if is_mac(&m) {
            Some(m)
        } else {
            r.problem(
                s.key("mac_address"),
                format!(
                    "expected a MAC address such as 00:00:74:12:34:56, found {}",
                    echo(&m)
                ),
            );
            None
        }
    });
    let poll_interval = r.duration(
        s,
        "poll_interval",
        Duration::from_millis(100),
        Duration::from_secs(24 * 3600),
    );
    let mut simulated = SimulatedSettings::default();
    if let Some(mut t) = r.table(s, "simulated") {
        if !matches!(parsed, Some(Parsed::Simulated) | None) {
            r.problem(
                t.path.clone(),
                "only for a device with source = \"simulated\"",
            );
        }
        if let Some(n) = r.integer(
            &mut t,
            "toner_level_percent",
            0,
            100,
            "a percentage 0..=100",
        ) {
            simulated.toner_level_percent = u8::try_from(n).unwrap_or(100);
        }
        if let Some(d) = r.duration(
            &mut t,
            "boot_delay",
            Duration::ZERO,
            Duration::from_secs(24 * 3600),
        ) {
            simulated.boot_delay = d;
        }
        r.finish(t);
    }

    // `[devices.snmp]`: `Some(v3)` for version 3, `None` for 2c or absent.
    let mut snmp_v3 = None;
    let mut wants_v3 = false;
    let mut snmp_table_path = None;
    if let Some(mut t) = r.table(s, "snmp") {
        if !matches!(parsed, Some(Parsed::Snmp { .. }) | None) {
            r.problem(t.path.clone(), "only for a device with an snmp:// source");
        }
        snmp_table_path = Some(t.path.clone());
        (wants_v3, snmp_v3) = snmp_settings(r, &mut t, id.as_deref());
        r.finish(t);
    }

    // `[devices.ipp]`: TLS trust for an `ipps://` printer.
    let mut ipp_ca_file = None;
    let mut ipp_tls_verify = true;
    if let Some(mut t) = r.table(s, "ipp") {
        let ipps = match &parsed {
            Some(Parsed::Ipp(i)) => Some(i.tls),
            None => None,
            Some(_) => {
                r.problem(
                    t.path.clone(),
                    "only for a device with an ipp:// or ipps:// source",
                );
                None
            }
        };
        if let Some(p) = r.path(&mut t, "ca_file") {
            if ipps == Some(false) {
                r.problem(t.key("ca_file"), "only used with an ipps:// source");
            }
            r.check_file(Scope::Devices, t.key("ca_file"), &p);
            ipp_ca_file = Some(p);
        }
        if let Some(v) = r.bool(&mut t, "tls_verify") {
            if ipps == Some(false) {
                r.problem(t.key("tls_verify"), "only used with an ipps:// source");
            }
            ipp_tls_verify = v;
        }
        r.finish(t);
    }

    let vendor_signals = crate::vendor::read(r, s);

    let mailbox = match r.table(s, "mailbox") {
        None => None,
        Some(mut t) => {
            let var = id
                .as_deref()
                .map(|id| crate::secret::override_var(&format!("devices.{id}.mailbox.password")));
            let username = single_line(r, &mut t, "username");
            if username.is_none() && !t.has("username") {
                r.problem(t.key("username"), "required: this device's mailbox login");
            }
            let password = r.secret(&mut t, "password", Scope::Account, var.as_deref());
            if !password.is_given() {
                r.problem(
                    t.key("password"),
                    "required: give password, password_file or password_env",
                );
            }
            r.finish(t);
            username.map(|username| DeviceMailbox {
                username,
                password: password.ok(),
            })
        }
    };

    let source = match parsed? {
        Parsed::Simulated | Parsed::Ipp(_) if community_key.is_given() => {
            r.problem(s.key("community"), "only for an snmp:// source");
            return None;
        }
        Parsed::Simulated => DeviceSource::Simulated,
        Parsed::Ipp(ipp) => DeviceSource::Ipp(source::IppSource {
            ca_file: ipp_ca_file,
            tls_verify: ipp_tls_verify,
            ..ipp
        }),
        Parsed::Snmp {
            host,
            port,
            community,
        } => {
            let url_community = community.is_some();
            let key_community = community_key.is_given();
            if community.is_some() && community_key.is_given() {
                r.problem(
                    s.key("community"),
                    "the source URL gives the community too; give it in one place",
                );
            }
            let community = match (
                community_override,
                community_key.or_placeholder(),
                community,
            ) {
                (Some(v), _, _) => Secret::new(v),
                (None, Some(k), _) => k,
                (None, None, Some(u)) => Secret::new(u),
                (None, None, None) => Secret::new(DEFAULT_COMMUNITY),
            };
            if wants_v3 && (key_community || url_community) {
                r.problem(
                    s.key("community"),
                    format!(
                        "an SNMPv3 device ({}.version = \"3\") has no community; remove it",
                        snmp_table_path.as_deref().unwrap_or("snmp")
                    ),
                );
            }
            DeviceSource::Snmp(SnmpSource {
                host,
                port,
                community,
                v3: snmp_v3,
            })
        }
    };
    let id = id?;
    Some(DeviceConfig {
        name: name.unwrap_or_else(|| id.clone()),
        id,
        location,
        model,
        serial,
        mail_address,
        source,
        poll_interval,
        common_body,
        extra_groups,
        host_name,
        addresses: ip_addresses,
        protocols,
        mac_address,
        simulated,
        mailbox,
        vendor_signals,
    })
}

/// The auth protocols `auth_protocol` takes.
const AUTH_PROTOCOLS: &[(&str, SnmpAuthProtocol)] = &[
    ("sha", SnmpAuthProtocol::Sha1),
    ("sha224", SnmpAuthProtocol::Sha224),
    ("sha256", SnmpAuthProtocol::Sha256),
    ("sha384", SnmpAuthProtocol::Sha384),
    ("sha512", SnmpAuthProtocol::Sha512),
];

/// The privacy protocols `priv_protocol` takes.
const PRIV_PROTOCOLS: &[(&str, SnmpPrivProtocol)] = &[
    ("aes", SnmpPrivProtocol::Aes128),
    ("aes128", SnmpPrivProtocol::Aes128),
    ("aes192", SnmpPrivProtocol::Aes192),
    ("aes256", SnmpPrivProtocol::Aes256),
];

/// The v3 keys of `[devices.snmp]`, for "only with version 3" problems.
const V3_KEYS: &[&str] = &[
    "user",
    "auth_protocol",
    "auth_password",
    "auth_password_file",
    "auth_password_env",
    "priv_protocol",
    "priv_password",
    "priv_password_file",
    "priv_password_env",
];

/// Reads `[devices.snmp]`: `version = "2c"` (the default without the
/// table) or `"3"` with the USM user, its protocols and its two passwords.
/// Whether it asks for version 3, and the settings when they are complete.
fn snmp_settings(
    r: &mut Reader<'_>,
    t: &mut Section<'_>,
    id: Option<&str>,
) -> (bool, Option<SnmpV3>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Version {
        V2c,
        V3,
    }
    let version = if t.has("version") {
        r.choice(t, "version", &[("2c", Version::V2c), ("3", Version::V3)])
    } else {
        r.value(t, "version");
        r.problem(t.key("version"), "required: \"2c\" or \"3\"");
        None
    };
    if version == Some(Version::V2c) {
        for key in V3_KEYS {
            if t.has(key) {
                r.value(t, key);
                r.problem(t.key(key), "only with version = \"3\"");
            }
        }
        return (false, None);
    }
    let var =
        |key: &str| id.map(|id| crate::secret::override_var(&format!("devices.{id}.snmp.{key}")));
    let user = single_line(r, t, "user");
    if user.is_none() && !t.has("user") {
        r.problem(t.key("user"), "required: the SNMPv3 (USM) user name");
    }
    let auth_protocol = r.choice(t, "auth_protocol", AUTH_PROTOCOLS);
    if !t.has("auth_protocol") {
        r.problem(
            t.key("auth_protocol"),
            "required: \"sha\", \"sha224\", \"sha256\", \"sha384\" or \"sha512\"",
        );
    }
    let auth_var = var("auth_password");
    let auth_password = r.secret(t, "auth_password", Scope::Devices, auth_var.as_deref());
    if !auth_password.is_given() {
        r.problem(
            t.key("auth_password"),
            "required: give auth_password, auth_password_file or auth_password_env",
        );
    }
    let priv_protocol = r.choice(t, "priv_protocol", PRIV_PROTOCOLS);
    if !t.has("priv_protocol") {
        r.problem(
            t.key("priv_protocol"),
            "required: \"aes\", \"aes192\" or \"aes256\"",
        );
    }
    let priv_var = var("priv_password");
    let priv_password = r.secret(t, "priv_password", Scope::Devices, priv_var.as_deref());
    if !priv_password.is_given() {
        r.problem(
            t.key("priv_password"),
            "required: give priv_password, priv_password_file or priv_password_env",
        );
    }
    // RFC 3414 §11.2: a password shorter than 8 characters is refused by
    // most agents (net-snmp among them). Only the length is named.
    let auth_password = auth_password.or_placeholder();
    let priv_password = priv_password.or_placeholder();
    for (key, secret) in [
        ("auth_password", &auth_password),
        ("priv_password", &priv_password),
    ] {
        if let Some(secret) = secret
            && !secret.is_empty()
            && secret.expose().chars().count() < 8
        {
            r.problem(
                t.key(key),
                "is shorter than 8 characters; SNMPv3 agents refuse such a password",
            );
        }
    }
    let settings = (|| {
        version?;
        Some(SnmpV3 {
            user: user?,
            auth_protocol: auth_protocol?,
            auth_password: auth_password?,
            priv_protocol: priv_protocol?,
            priv_password: priv_password?,
        })
    })();
    (version == Some(Version::V3), settings)
}

/// A list of group names that must exist in `[alerts.groups]`.
pub(crate) fn group_refs(
    r: &mut Reader<'_>,
    s: &mut Section<'_>,
    key: &str,
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (path, name) in r.strings(s, key).unwrap_or_default() {
        if !groups.contains_key(&name) {
            let known: Vec<&str> = groups.keys().map(String::as_str).collect();
            let hint = match crate::read::closest(&name, &known) {
                Some(near) => format!(" (did you mean `{near}`?)"),
                None => String::new(),
            };
            let listed = if known.is_empty() {
                "none are defined".to_owned()
            } else {
                format!("defined: {}", known.join(", "))
            };
            r.problem(
                path,
                format!(
                    "no group {} in [alerts.groups]{hint}; {listed}",
                    echo(&name)
                ),
            );
        } else if out.contains(&name) {
            r.problem(path, format!("group {} is listed twice", echo(&name)));
        } else {
            out.push(name);
        }
    }
    out
}

fn is_mac(m: &str) -> bool {
    let parts: Vec<&str> = m.split([':', '-']).collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}
