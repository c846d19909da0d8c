//! A real printer over IPP (RFC 8011; PWG 5100.9 / 5100.13 printer status
//! attributes), `ipp://` or `ipps://`.
//!
//! Each read sends one Get-Printer-Attributes request ([`REQUESTED`]) with
//! its own timeout ([`REQUEST_TIMEOUT`]), tried [`ATTEMPTS`] times, and maps
//! the answer with [`super::mapping`]:
//!
//! - `printer-state-reasons` (suffixes stripped), with `printer-state`:
//!   [`mapping::map_ipp_reasons`]; unknown keywords are logged once;
//! - `printer-alert` (`code=jam;group=mediaPath;…`) with
//!   `printer-alert-description`: the Printer-MIB alert code by name,
//!   [`mapping::map_alert`];
//! - `printer-supply` (`index=1;class=…;type=toner;…;level=25;…`) with
//!   `printer-supply-description`, or else `marker-names` / `-levels` /
//!   `-types` / `-colors`: supplies, toner and unit items, and
//!   `toner_low_level` against the configured threshold (the previous state
//!   is kept while the level cannot tell). A receptacle (waste toner) raises
//!   nothing from its level: printers disagree on whether it is the fill or
//!   the remaining space, and they report `marker-waste-*` reasons anyway;
//! - `printer-input-tray` (`type=…;maxcapacity=250;level=100;…;name=main`)
//!   and `media-col-ready`: trays (media by `media-source`), paper out;
//! - `printer-firmware-string-version` / `printer-firmware-version`:
//!   [`Reading::firmware_version`] (the device worker raises
//!   `firmware_update` when it changes);
//! - `printer-uri-supported`, `printer-more-info`, `printer-dns-sd-name`:
//!   the protocol settings (host name, addresses, IPP / IPPS / HTTP(S)).
//!
//! A connection failure, a timeout or an HTTP error is
//! [`SourceError::Unreachable`] naming the printer's URL; an IPP error
//! status names the status and the printer's `status-message`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use ipp::prelude::*;
use ipp::value::IppValue;
use printwatch_events::AlertItem;
use printwatch_proto::v1::{PaperTray, ProtocolSettings, Supply};

use super::mapping::{
    self, PrtAlert, SupplyKind, SupplyLevel, SupplyThresholds, Unknown, VendorMap, merge_condition,
};
use super::{Reading, SourceError};

/// How long one IPP request may take before it is tried again.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a request is sent before the printer counts as unreachable.
pub const ATTEMPTS: u32 = 2;

/// The printer attributes asked for.
pub const REQUESTED: &[&str] = &[
    "printer-state",
    "printer-state-reasons",
    "printer-state-message",
    "printer-alert",
    "printer-alert-description",
    "printer-supply",
    "printer-supply-description",
    "marker-names",
    "marker-levels",
    "marker-types",
    "marker-colors",
    "printer-input-tray",
    "media-ready",
    "media-col-ready",
    "printer-firmware-name",
    "printer-firmware-string-version",
    "printer-firmware-version",
    "printer-uri-supported",
    "uri-security-supported",
    "printer-more-info",
    "printer-dns-sd-name",
];

/// An attribute value as far as this source cares.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Int(i32),
    Text(String),
    Bytes(Vec<u8>),
    Coll(Attrs),
    Other,
}

/// Attributes by name; a `1setOf` value is several entries.
pub type Attrs = BTreeMap<String, Vec<Val>>;

impl Val {
    fn int(&self) -> Option<i32> {
        match self {
            Val::Int(i) => Some(*i),
            Val::Text(t) => t.trim().parse().ok(),
            _ => None,
        }
    }

    /// Text, or an octet string read as (lossy) UTF-8.
    fn text(&self) -> String {
        match self {
            Val::Text(t) => t.trim().to_owned(),
            Val::Bytes(b) => String::from_utf8_lossy(b)
                .trim_matches(char::from(0))
                .trim()
                .to_owned(),
            Val::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }
}

fn own_value(v: &IppValue, out: &mut Vec<Val>) {
    match v {
        IppValue::Array(items) => {
            for i in items {
                own_value(i, out);
            }
        }
        IppValue::Integer(i) | IppValue::Enum(i) => out.push(Val::Int(*i)),
        IppValue::OctetString(b) => out.push(Val::Bytes(b.to_vec())),
        IppValue::NonUtf8 { data, .. } | IppValue::Other { data, .. } => {
            out.push(Val::Bytes(data.to_vec()))
        }
        IppValue::TextWithLanguage { text, .. } => out.push(Val::Text(text.to_string())),
        IppValue::NameWithLanguage { name, .. } => out.push(Val::Text(name.to_string())),
        IppValue::Collection(members) => {
            let mut coll = Attrs::new();
            for (k, v) in members {
                let mut vals = Vec::new();
                own_value(v, &mut vals);
                coll.insert(k.to_string(), vals);
            }
            out.push(Val::Coll(coll));
        }
        IppValue::TextWithoutLanguage(_)
        | IppValue::NameWithoutLanguage(_)
        | IppValue::Keyword(_)
        | IppValue::Uri(_)
        | IppValue::UriScheme(_)
        | IppValue::MimeMediaType(_)
        | IppValue::Charset(_)
        | IppValue::NaturalLanguage(_)
        | IppValue::MemberAttrName(_) => out.push(Val::Text(v.to_string())),
        _ => out.push(Val::Other),
    }
}

fn first_text(a: &Attrs, name: &str) -> String {
    a.get(name)
        .and_then(|v| v.first())
        .map(Val::text)
        .unwrap_or_default()
}

fn texts(a: &Attrs, name: &str) -> Vec<String> {
    a.get(name)
        .map(|v| v.iter().map(Val::text).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Pure parsers of the PWG 5100.13 octet-string formats.
// ---------------------------------------------------------------------------

/// `key=value;key=value;…` (printer-supply, printer-input-tray,
/// printer-alert) as pairs, keys lower-cased. Pieces without `=` or with an
/// empty key are skipped; never fails.
pub fn parse_kv(text: &str) -> Vec<(String, String)> {
    text.split(';')
        .filter_map(|piece| {
            let (k, v) = piece.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            (!k.is_empty()).then(|| (k, v.trim().to_owned()))
        })
        .collect()
}

fn kv_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn kv_int(pairs: &[(String, String)], key: &str) -> Option<i32> {
    kv_get(pairs, key).and_then(|v| v.parse().ok())
}

/// One `printer-supply` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupplyEntry {
    pub index: Option<i32>,
    /// `supplyThatIsConsumed`, `receptacleThatIsFilled`, …
    pub class: String,
    /// PWG / Printer-MIB type name: `toner`, `wasteToner`, `opc`, …
    pub supply_type: String,
    /// `percent`, `sheets`, …
    pub unit: String,
    pub max_capacity: Option<i32>,
    pub level: Option<i32>,
    /// `black`, `cyan`, … (`unknown` when none).
    pub colorant: String,
}

impl SupplyEntry {
    /// Parses one `printer-supply` octet string; `None` without a level.
    pub fn parse(text: &str) -> Option<SupplyEntry> {
        let kv = parse_kv(text);
        let entry = SupplyEntry {
            index: kv_int(&kv, "index"),
            class: kv_get(&kv, "class").unwrap_or_default().to_owned(),
            supply_type: kv_get(&kv, "type").unwrap_or_default().to_owned(),
            unit: kv_get(&kv, "unit").unwrap_or_default().to_owned(),
            max_capacity: kv_int(&kv, "maxcapacity"),
            level: kv_int(&kv, "level"),
            colorant: kv_get(&kv, "colorantname").unwrap_or_default().to_owned(),
        };
        entry.level.is_some().then_some(entry)
    }

    /// The level: a percentage when the unit is `percent` (or the maximum is
    /// 100), level ÷ max capacity otherwise; -1/-2/-3 as in Printer-MIB.
    pub fn supply_level(&self) -> SupplyLevel {
        let level = self.level.unwrap_or(-2);
        if self.unit.eq_ignore_ascii_case("percent") {
            return mapping::ipp_marker_level(level);
        }
        mapping::snmp_supply_level(level, self.max_capacity.unwrap_or(-2))
    }

    /// A receptacle (waste toner): its level is how full it is.
    pub fn is_receptacle(&self) -> bool {
        self.class.to_ascii_lowercase().starts_with("receptacle")
            || self.supply_type.to_ascii_lowercase().starts_with("waste")
    }
}

/// `wasteToner` → `waste-toner` (PWG keyword spelling of a Printer-MIB
/// name); already-kebab names stay.
pub fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.trim().chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A supply type keyword as a `Supply.kind` (`waste_toner`, `toner`, …).
fn kind_name(keyword: &str) -> String {
    match kebab(keyword).replace('-', "_") {
        k if k.is_empty() => "other".to_owned(),
        k => k,
    }
}

/// One `printer-input-tray` value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrayEntry {
    pub name: String,
    pub tray_type: String,
    pub max_capacity: i32,
    pub level: i32,
    /// PrtSubUnitStatusTC bits.
    pub status: i32,
}

impl TrayEntry {
    /// Parses one `printer-input-tray` octet string; `None` without a name
    /// or a level.
    pub fn parse(text: &str) -> Option<TrayEntry> {
        let kv = parse_kv(text);
        let name = kv_get(&kv, "name")?.trim().to_owned();
        if name.is_empty() {
            return None;
        }
        Some(TrayEntry {
            name,
            tray_type: kv_get(&kv, "type").unwrap_or_default().to_owned(),
            max_capacity: kv_int(&kv, "maxcapacity").unwrap_or(-2),
            level: kv_int(&kv, "level")?,
            status: kv_int(&kv, "status").unwrap_or(0),
        })
    }

    /// 0..=100, or -1 when the tray does not tell.
    pub fn level_percent(&self) -> i32 {
        if self.level < 0 || self.max_capacity <= 0 {
            return -1;
        }
        (i64::from(self.level) * 100 / i64::from(self.max_capacity)).clamp(0, 100) as i32
    }
}

/// PrtAlertGroupTC by its IANA name (`mediaPath` → 13).
pub fn alert_group_code(name: &str) -> Option<i32> {
    if let Ok(n) = name.trim().parse() {
        return Some(n);
    }
    Some(match name.trim() {
        "other" => 1,
        "hostResourcesMIBStorageTable" => 3,
        "hostResourcesMIBDeviceTable" => 4,
        "generalPrinter" => 5,
        "cover" => 6,
        "localization" => 7,
        "input" => 8,
        "output" => 9,
        "marker" => 10,
        "markerSupplies" => 11,
        "markerColorant" => 12,
        "mediaPath" => 13,
        "channel" => 14,
        "interpreter" => 15,
        "consoleDisplayBuffer" => 16,
        "consoleLights" => 17,
        "alert" => 18,
        "finDevice" => 30,
        "finSupply" => 31,
        "finSupplyMediaInput" => 32,
        "finAttribute" => 33,
        _ => return None,
    })
}

/// PrtAlertCodeTC by its IANA name (`jam` → 8), or a number.
pub fn alert_code(name: &str) -> Option<i32> {
    let name = name.trim();
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    mapping::ALERT_CODES
        .iter()
        .find(|r| r.name.eq_ignore_ascii_case(name))
        .map(|r| r.code)
}

/// One `printer-alert` value as a prtAlertTable row; `None` when the code
/// is missing or unknown (the caller logs it once).
pub fn parse_alert(text: &str, description: &str) -> Option<PrtAlert> {
    let kv = parse_kv(text);
    let code = alert_code(kv_get(&kv, "code")?)?;
    let severity = match kv_get(&kv, "severity").unwrap_or_default() {
        "critical" => mapping::SEVERITY_CRITICAL,
        "warning" => 4,
        "other" => 1,
        s => s.parse().unwrap_or(1),
    };
    let training = match kv_get(&kv, "traininglevel")
        .or_else(|| kv_get(&kv, "training"))
        .unwrap_or_default()
    {
        "fieldService" => mapping::TRAINING_FIELD_SERVICE,
        "management" => 6,
        "trained" => 4,
        "untrained" => 3,
        "noInterventionRequired" => 7,
        t => t.parse().unwrap_or(2),
    };
    Some(PrtAlert {
        severity,
        training,
        group: kv_get(&kv, "group").and_then(alert_group_code).unwrap_or(1),
        group_index: kv_int(&kv, "groupindex").unwrap_or(-1),
        location: kv_int(&kv, "location").unwrap_or(-1),
        code,
        description: description.trim().to_owned(),
    })
}

/// The host of a URI (`ipp://[::1]:631/x` → `::1`), without user info.
fn uri_host(uri: &str) -> Option<String> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        authority.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_owned())
}

fn uri_scheme(uri: &str) -> String {
    uri.split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Protocol settings from what the printer says about itself: host name
/// (printer-uri-supported's host, else printer-dns-sd-name), IP literals
/// among those hosts, and, when `fill_protocols`, IPP / IPPS / HTTP /
/// HTTPS from the URI schemes.
pub fn device_protocols(
    a: &Attrs,
    mut base: ProtocolSettings,
    fill_protocols: bool,
) -> ProtocolSettings {
    let uris = texts(a, "printer-uri-supported");
    let host = uris
        .iter()
        .find_map(|u| uri_host(u))
        .or_else(|| Some(first_text(a, "printer-dns-sd-name")).filter(|n| !n.is_empty()));
    if let Some(host) = host {
        base.host_name = host;
    }
    for u in &uris {
        match uri_host(u).and_then(|h| h.parse::<std::net::IpAddr>().ok()) {
            Some(std::net::IpAddr::V4(v4)) if !base.ipv4_addresses.contains(&v4.to_string()) => {
                base.ipv4_addresses.push(v4.to_string())
            }
            Some(std::net::IpAddr::V6(v6)) if !base.ipv6_addresses.contains(&v6.to_string()) => {
                base.ipv6_addresses.push(v6.to_string())
            }
            _ => {}
        }
    }
    if fill_protocols {
        let mut list: Vec<String> = Vec::new();
        let more_info = first_text(a, "printer-more-info");
        for u in uris.iter().chain(std::iter::once(&more_info)) {
            let p = match uri_scheme(u).as_str() {
                "ipp" => "IPP",
                "ipps" => "IPPS",
                "http" => "HTTP",
                "https" => "HTTPS",
                _ => continue,
            };
            if !list.iter().any(|l| l == p) {
                list.push(p.to_owned());
            }
        }
        if !list.is_empty() {
            base.enabled_protocols = list;
        }
    }
    base
}

/// The firmware version: printer-firmware-string-version (several
/// firmwares joined as `name version`), else printer-firmware-version.
pub fn firmware_version(a: &Attrs) -> String {
    let names = texts(a, "printer-firmware-name");
    let mut versions = texts(a, "printer-firmware-string-version");
    if versions.iter().all(|v| v.is_empty()) {
        versions = texts(a, "printer-firmware-version");
    }
    let parts: Vec<String> = versions
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| match names.get(i) {
            Some(n) if versions.len() > 1 && !n.is_empty() => format!("{n} {v}"),
            _ => v.clone(),
        })
        .collect();
    parts.join(", ")
}

/// The media loaded per source (`main` → `na_letter_8.5x11in`) from
/// media-col-ready.
fn media_by_source(a: &Attrs) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for v in a.get("media-col-ready").into_iter().flatten() {
        let Val::Coll(c) = v else { continue };
        let source = first_text(c, "media-source");
        let mut size = first_text(c, "media-size-name");
        if size.is_empty() {
            size = first_text(c, "media-key");
        }
        if !source.is_empty() && !size.is_empty() {
            out.entry(source).or_insert(size);
        }
    }
    out
}

/// Memory kept between reads.
#[derive(Default)]
struct Memory {
    unknown_reasons: Unknown<String>,
    unknown_alerts: Unknown<String>,
    /// Per toner supply: its last `toner_low_level` detail, kept while the
    /// level cannot tell.
    toner_low: HashMap<String, Option<String>>,
}

/// How `ipps://` checks the printer's certificate.
#[derive(Debug, Clone, Default)]
pub struct IppTls {
    /// Extra trusted CA certificates (PEM or DER).
    pub ca_certs: Vec<Vec<u8>>,
    /// `false` accepts any certificate (printers often have self-signed
    /// ones); only for a trusted network.
    pub skip_verify: bool,
}

/// A printer read over IPP.
pub struct IppSource {
    device_id: String,
    /// `ipp://…` or `ipps://…` as configured.
    url: String,
    thresholds: SupplyThresholds,
    protocols: ProtocolSettings,
    fill_protocols: bool,
    vendor: VendorMap,
    tls: IppTls,
    memory: Mutex<Memory>,
    timeout: Duration,
    /// One HTTP client per printer, built at the first read and kept: it
    /// holds the TLS settings and the kept-alive connection. (The `ipp`
    /// crate's own client builds a new HTTP client — TLS roots and all —
    /// for every request: some 30 times the CPU per read; see
    /// `tests/benches/ipp_read.rs`.)
    http: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

/// The largest Get-Printer-Attributes answer read; a printer's is a few
/// tens of KiB.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Why one request failed.
enum Failure {
    /// Worth another try (network, timeout, HTTP).
    Transient(String),
    /// The printer answered with an error: no retry.
    Final(String),
}

impl IppSource {
    /// A printer at `url` (`ipp://host:port/path` or `ipps://…`); supplies
    /// are judged against `threshold_percent`; `protocols` is what the
    /// configuration says (the device's URIs replace its host name, and
    /// fill `enabled_protocols` when that is empty); `vendor` maps vendor
    /// printer-state-reasons keywords to items.
    pub fn new(
        device_id: &str,
        url: &str,
        threshold_percent: u8,
        protocols: ProtocolSettings,
        vendor: VendorMap,
    ) -> IppSource {
        // reqwest is built without a default crypto provider; the rest of
        // printwatch uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let fill_protocols = protocols.enabled_protocols.is_empty();
        IppSource {
            device_id: device_id.to_owned(),
            url: url.to_owned(),
            thresholds: SupplyThresholds::with_toner_threshold(threshold_percent),
            protocols,
            fill_protocols,
            vendor,
            tls: IppTls::default(),
            memory: Mutex::new(Memory::default()),
            timeout: REQUEST_TIMEOUT,
            http: std::sync::OnceLock::new(),
        }
    }

    /// How `ipps://` checks the printer's certificate.
    pub fn with_tls(mut self, tls: IppTls) -> IppSource {
        self.tls = tls;
        self
    }

    /// Another request timeout (tests).
    pub fn with_timeout(mut self, timeout: Duration) -> IppSource {
        self.timeout = timeout;
        self
    }

    /// The printer's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Reads the printer now.
    pub async fn read(&self) -> Result<Reading, SourceError> {
        let attrs = self.fetch().await?;
        Ok(self.reading(&attrs))
    }

    async fn fetch(&self) -> Result<Attrs, SourceError> {
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            match tokio::time::timeout(self.timeout, self.request()).await {
                Ok(Ok(attrs)) => return Ok(attrs),
                Ok(Err(Failure::Final(why))) => {
                    return Err(SourceError::Unreachable(format!(
                        "IPP printer {}: {why}",
                        self.url
                    )));
                }
                Ok(Err(Failure::Transient(why))) => last = why,
                Err(_) => {
                    last = format!("no answer within {} s", self.timeout.as_secs_f32());
                }
            }
        }
        Err(SourceError::Unreachable(format!(
            "IPP printer {} did not answer: {last} (tried {ATTEMPTS} times)",
            self.url
        )))
    }

    async fn request(&self) -> Result<Attrs, Failure> {
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| Failure::Final(format!("not a usable URL ({e})")))?;
        let op = IppOperationBuilder::get_printer_attributes(uri.clone())
            .attributes(REQUESTED)
            .build()
            .map_err(|e| Failure::Final(format!("cannot build the request ({e})")))?;
        let client = self
            .http
            .get_or_init(|| self.build_http())
            .as_ref()
            .map_err(|e| Failure::Final(e.clone()))?;
        let body = IppRequestResponse::from(op).to_bytes();
        let mut answer = client
            .post(http_url(&uri))
            .header("content-type", "application/ipp")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Transient(root_cause(&e)))?;
        let code = answer.status().as_u16();
        if (400..500).contains(&code) {
            return Err(Failure::Final(format!(
                "the server answered HTTP {code} (is it an IPP printer, and the path right?)"
            )));
        } else if !answer.status().is_success() {
            return Err(Failure::Transient(format!(
                "the server answered HTTP {code}"
            )));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = answer
            .chunk()
            .await
            .map_err(|e| Failure::Transient(root_cause(&e)))?
        {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(Failure::Final(format!(
                    "the answer is larger than {} MiB",
                    MAX_ANSWER_BYTES >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let resp =
            ipp::parser::IppParser::new(ipp::reader::IppReader::new(std::io::Cursor::new(bytes)))
                .parse()
                .map_err(|e| {
                    Failure::Final(format!("the answer is not a valid IPP response ({e})"))
                })?;
        let status = resp.header().status_code();
        let mut attrs = Attrs::new();
        let mut message = String::new();
        for group in resp.attributes().groups() {
            for attr in group.attributes() {
                let mut vals = Vec::new();
                own_value(attr.value(), &mut vals);
                if group.tag() == DelimiterTag::OperationAttributes {
                    if attr.name().as_str() == "status-message" {
                        message = vals.first().map(Val::text).unwrap_or_default();
                    }
                } else if group.tag() == DelimiterTag::PrinterAttributes {
                    attrs
                        .entry(attr.name().to_string())
                        .or_default()
                        .extend(vals);
                }
            }
        }
        if !status.is_success() {
            let detail = if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            };
            return Err(Failure::Final(format!(
                "Get-Printer-Attributes failed with IPP status {}{detail}",
                status_keyword(status)
            )));
        }
        Ok(attrs)
    }

    /// The HTTP client for this printer: its CA certificates (every one in
    /// the PEM file) and whether to verify at all.
    fn build_http(&self) -> Result<reqwest::Client, String> {
        // No timeouts here: `fetch` bounds each whole request (connect, send,
        // answer) by `self.timeout`.
        let mut builder = reqwest::Client::builder()
            // One printer, one connection kept alive between reads.
            .pool_max_idle_per_host(1)
            .user_agent(concat!("printwatch-agent/", env!("CARGO_PKG_VERSION")));
        for ca in &self.tls.ca_certs {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .ok()
                .filter(|c| !c.is_empty())
                .or_else(|| reqwest::Certificate::from_der(ca).ok().map(|c| vec![c]))
                .ok_or("the CA file holds no PEM or DER certificate")?;
            builder = builder.tls_certs_merge(certs);
        }
        if self.tls.skip_verify {
            builder = builder
                .tls_danger_accept_invalid_certs(true)
                .tls_danger_accept_invalid_hostnames(true);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up HTTP/TLS: {}", root_cause(&e)))
    }

    /// Maps the printer's attributes into a reading (no network).
    fn reading(&self, a: &Attrs) -> Reading {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let state = a
            .get("printer-state")
            .and_then(|v| v.first())
            .and_then(Val::int)
            .unwrap_or(3);

        // printer-state-reasons.
        let reasons = texts(a, "printer-state-reasons");
        let mapped =
            mapping::map_ipp_reasons(reasons.iter().map(String::as_str), state, &self.vendor);
        let mut conditions = mapped.conditions;
        for kw in mapped.unknown {
            if memory.unknown_reasons.is_new(kw.clone()) {
                tracing::warn!(
                    device.id = %self.device_id,
                    keyword = %kw,
                    "unknown printer-state-reasons keyword; ignored (map it in the vendor table if it matters)"
                );
            }
        }

        // printer-alert with printer-alert-description (same position).
        let descriptions = texts(a, "printer-alert-description");
        for (i, alert) in texts(a, "printer-alert").iter().enumerate() {
            let desc = descriptions.get(i).map(String::as_str).unwrap_or_default();
            match parse_alert(alert, desc) {
                Some(row) => {
                    if let Some((item, detail)) = mapping::map_alert(&row) {
                        merge_condition(&mut conditions, item, &detail);
                    }
                }
                None => {
                    if !alert.is_empty() && memory.unknown_alerts.is_new(alert.clone()) {
                        tracing::warn!(
                            device.id = %self.device_id,
                            alert = %alert,
                            "printer-alert without a known code; ignored"
                        );
                    }
                }
            }
        }

        // Supplies: printer-supply, else the marker-* attributes.
        let mut supplies = Vec::new();
        let names = texts(a, "printer-supply-description");
        let entries: Vec<SupplyEntry> = texts(a, "printer-supply")
            .iter()
            .filter_map(|t| SupplyEntry::parse(t))
            .collect();
        let mut found: Vec<(String, String, String, SupplyLevel, bool)> = Vec::new();
        if !entries.is_empty() {
            for (i, e) in entries.iter().enumerate() {
                let n = e.index.unwrap_or(i as i32 + 1);
                let name = names
                    .get(i)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("Supply {n}"));
                let color = match e.colorant.as_str() {
                    "unknown" | "none" => String::new(),
                    c => c.to_owned(),
                };
                found.push((
                    name,
                    e.supply_type.clone(),
                    color,
                    e.supply_level(),
                    e.is_receptacle(),
                ));
            }
        } else {
            let m_names = texts(a, "marker-names");
            let m_types = texts(a, "marker-types");
            let m_colors = texts(a, "marker-colors");
            let levels: Vec<i32> = a
                .get("marker-levels")
                .map(|v| v.iter().map(|x| x.int().unwrap_or(-2)).collect())
                .unwrap_or_default();
            for (i, level) in levels.iter().enumerate() {
                let name = m_names
                    .get(i)
                    .filter(|n| !n.is_empty())
                    .cloned()
                    .unwrap_or_else(|| format!("Supply {}", i + 1));
                let t = m_types.get(i).cloned().unwrap_or_default();
                let receptacle = t.starts_with("waste");
                found.push((
                    name,
                    t,
                    m_colors.get(i).cloned().unwrap_or_default(),
                    mapping::ipp_marker_level(*level),
                    receptacle,
                ));
            }
        }
        for (name, supply_type, color, level, receptacle) in found {
            let kind = SupplyKind::from_ipp_marker_type(&kebab(&supply_type));
            if !receptacle {
                for (item, detail) in mapping::supply_items(kind, &name, level, &self.thresholds) {
                    if item != AlertItem::TonerLowLevel {
                        merge_condition(&mut conditions, item, &detail);
                    }
                }
            }
            if kind == SupplyKind::Toner {
                let remembered = memory.toner_low.entry(name.clone()).or_default();
                let th = self.thresholds.toner_low_level_percent;
                match (mapping::toner_below_threshold(level, th), level) {
                    (Some(true), SupplyLevel::Percent(p)) => {
                        *remembered = Some(format!(
                            "{name} at {p}% (below the selected level of {th}%)"
                        ));
                    }
                    (Some(false), _) => *remembered = None,
                    // The level cannot tell: keep the previous state.
                    _ => {}
                }
                if let Some(detail) = remembered.clone() {
                    merge_condition(&mut conditions, AlertItem::TonerLowLevel, &detail);
                }
            }
            supplies.push(Supply {
                name,
                kind: kind_name(&supply_type),
                color,
                level_percent: match level {
                    SupplyLevel::Percent(p) => i32::from(p),
                    _ => -1,
                },
            });
        }

        // Trays.
        let media = media_by_source(a);
        let mut trays = Vec::new();
        for (i, t) in texts(a, "printer-input-tray")
            .iter()
            .filter_map(|t| TrayEntry::parse(t))
            .enumerate()
        {
            let empty = mapping::input_tray_item(i as i32 + 1, &t.name, t.level, t.max_capacity);
            let state = if empty.is_some() { "empty" } else { "ok" };
            if let Some((item, detail)) = empty {
                merge_condition(&mut conditions, item, &detail);
            }
            trays.push(PaperTray {
                media: media.get(&t.name).cloned().unwrap_or_default(),
                level_percent: t.level_percent(),
                state: state.into(),
                name: t.name,
            });
        }

        Reading {
            conditions,
            supplies,
            trays,
            protocols: device_protocols(a, self.protocols.clone(), self.fill_protocols),
            firmware_version: firmware_version(a),
        }
    }
}

/// An IPP status code as its RFC 8011 keyword (`client-error-not-found`).
fn status_keyword(status: StatusCode) -> String {
    kebab(&format!("{status:?}"))
}

/// The innermost message of an error chain ("Connection refused (os error
/// 111)" rather than "error sending request for url (…)").
/// The HTTP(S) URL an IPP URI posts to (RFC 8010 §3.4: `ipp` is HTTP on
/// port 631 by default, `ipps` HTTPS).
fn http_url(uri: &Uri) -> String {
    let scheme = match uri.scheme_str() {
        Some("ipps" | "https") => "https",
        _ => "http",
    };
    let host = uri.host().unwrap_or("localhost");
    let port = uri.port_u16().unwrap_or(631);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}:{port}{path}")
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    let msg = cur.to_string();
    if msg.is_empty() { e.to_string() } else { msg }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Val {
        Val::Text(s.to_owned())
    }

    fn bytes(s: &str) -> Val {
        Val::Bytes(s.as_bytes().to_vec())
    }

    fn source() -> IppSource {
        IppSource::new(
            "p1",
            "ipp://127.0.0.1:631/ipp/print",
            20,
            ProtocolSettings {
                host_name: "127.0.0.1".into(),
                ..Default::default()
            },
            VendorMap::new(),
        )
    }

    /// What ippeveprinter (CUPS 2.4) answers, trimmed.
    fn ippeve(reasons: &[&str], toner: i32, main_level: i32) -> Attrs {
        let mut a = Attrs::new();
        a.insert("printer-state".into(), vec![Val::Int(3)]);
        a.insert(
            "printer-state-reasons".into(),
            reasons.iter().map(|r| text(r)).collect(),
        );
        a.insert(
            "printer-supply".into(),
            vec![
                bytes("index=1;class=receptacleThatIsFilled;type=wasteToner;unit=percent;maxcapacity=100;level=25;colorantname=unknown;"),
                bytes(&format!("index=2;class=supplyThatIsConsumed;type=toner;unit=percent;maxcapacity=100;level={toner};colorantname=black;")),
            ],
        );
        a.insert(
            "printer-supply-description".into(),
            vec![text("Toner Waste Tank"), text("Black Toner")],
        );
        a.insert(
            "printer-input-tray".into(),
            vec![
                bytes("type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=-2;level=-2;status=0;name=auto"),
                bytes(&format!("type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=250;level={main_level};status=0;name=main")),
            ],
        );
        let mut coll = Attrs::new();
        coll.insert("media-source".into(), vec![text("main")]);
        coll.insert("media-size-name".into(), vec![text("na_letter_8.5x11in")]);
        a.insert("media-col-ready".into(), vec![Val::Coll(coll)]);
        a.insert(
            "printer-uri-supported".into(),
            vec![
                text("ipp://localhost:8631/ipp/print"),
                text("ipps://localhost:8631/ipp/print"),
            ],
        );
        a.insert(
            "printer-more-info".into(),
            vec![text("https://localhost:8631/")],
        );
        a
    }

    #[test]
    fn ipp_uris_post_to_http_on_port_631_by_default() {
        let url = |u: &str| http_url(&u.parse().unwrap());
        assert_eq!(
            url("ipp://printer.test/ipp/print"),
            "http://printer.test:631/ipp/print"
        );
        assert_eq!(
            url("ipps://printer.test:8443/ipp"),
            "https://printer.test:8443/ipp"
        );
        assert_eq!(
            url("ipp://[2001:db8::7]/ipp/print"),
            "http://[2001:db8::7]:631/ipp/print"
        );
        assert_eq!(url("ipp://10.0.0.5"), "http://10.0.0.5:631/");
    }

    #[test]
    fn kv_parsing_tolerates_garbage() {
        assert_eq!(
            parse_kv("index=1;type=toner;;=x;junk;level= 25 ;"),
            vec![
                ("index".to_owned(), "1".to_owned()),
                ("type".to_owned(), "toner".to_owned()),
                ("level".to_owned(), "25".to_owned()),
            ]
        );
        for garbage in [
            "",
            ";;;",
            "====",
            "level=abc",
            "level=99999999999999999999",
            "\u{0}\u{ffff}=\u{1}",
            "name=;level=",
            "type",
        ] {
            let _ = parse_kv(garbage);
            assert_eq!(SupplyEntry::parse(garbage), None, "{garbage:?}");
            assert_eq!(TrayEntry::parse(garbage), None, "{garbage:?}");
            assert_eq!(parse_alert(garbage, ""), None, "{garbage:?}");
        }
        // Any byte soup never panics.
        let soup: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        let s = String::from_utf8_lossy(&soup);
        let _ = SupplyEntry::parse(&s);
        let _ = TrayEntry::parse(&s);
        let _ = parse_alert(&s, &s);
        let _ = uri_host(&s);
    }

    #[test]
    fn supplies_parse_and_level() {
        let e = SupplyEntry::parse("index=2;class=supplyThatIsConsumed;type=toner;unit=percent;maxcapacity=100;level=75;colorantname=black;").unwrap();
        assert_eq!(e.index, Some(2));
        assert_eq!(e.supply_type, "toner");
        assert_eq!(e.colorant, "black");
        assert_eq!(e.supply_level(), SupplyLevel::Percent(75));
        assert!(!e.is_receptacle());
        let sheets =
            SupplyEntry::parse("type=opc;unit=impressions;maxcapacity=2000;level=500").unwrap();
        assert_eq!(sheets.supply_level(), SupplyLevel::Percent(25));
        let unknown = SupplyEntry::parse("type=toner;unit=percent;level=-2").unwrap();
        assert_eq!(unknown.supply_level(), SupplyLevel::Unknown);
        let waste =
            SupplyEntry::parse("class=receptacleThatIsFilled;type=wasteToner;level=100").unwrap();
        assert!(waste.is_receptacle());
        assert_eq!(kebab("wasteToner"), "waste-toner");
        assert_eq!(kebab("toner-cartridge"), "toner-cartridge");
        assert_eq!(kind_name("wasteToner"), "waste_toner");
        assert_eq!(kind_name(""), "other");
        assert_eq!(
            status_keyword(StatusCode::ClientErrorNotFound),
            "client-error-not-found"
        );
    }

    #[test]
    fn trays_parse() {
        let t = TrayEntry::parse("type=sheetFeedAutoRemovableTray;mediafeed=0;mediaxfeed=0;maxcapacity=250;level=100;status=0;name=main").unwrap();
        assert_eq!(t.name, "main");
        assert_eq!(t.level_percent(), 40);
        let manual =
            TrayEntry::parse("type=sheetFeedManual;maxcapacity=1;level=-2;status=0;name=manual")
                .unwrap();
        assert_eq!(manual.level_percent(), -1);
        assert_eq!(TrayEntry::parse("maxcapacity=1;level=0;name="), None);
    }

    #[test]
    fn alerts_parse_by_name_and_number() {
        let a = parse_alert("code=jam;group=mediaPath", "Jam in path A").unwrap();
        assert_eq!((a.code, a.group), (8, 13));
        assert_eq!(
            mapping::map_alert(&a),
            Some((AlertItem::PaperJam, "Jam in path A".to_owned()))
        );
        let b = parse_alert("code=1101;group=markerSupplies;groupindex=2", "").unwrap();
        assert_eq!(
            mapping::map_alert(&b),
            Some((
                AlertItem::TonerEmpty,
                "Supply 2: markerTonerEmpty".to_owned()
            ))
        );
        let c = parse_alert(
            "code=coverOpen;severity=critical;traininglevel=fieldService",
            "",
        )
        .unwrap();
        assert_eq!(c.severity, mapping::SEVERITY_CRITICAL);
        assert_eq!(c.training, mapping::TRAINING_FIELD_SERVICE);
        assert_eq!(parse_alert("code=noSuchThing;group=cover", ""), None);
        assert_eq!(alert_group_code("wat"), None);
    }

    #[test]
    fn uri_hosts_and_protocols() {
        assert_eq!(
            uri_host("ipp://localhost:631/ipp/print").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            uri_host("ipps://[fe80::1]:443/x").as_deref(),
            Some("fe80::1")
        );
        assert_eq!(uri_host("ipp://u@10.0.0.5/x").as_deref(), Some("10.0.0.5"));
        assert_eq!(uri_host("garbage"), None);
        assert_eq!(uri_host("ipp:///x"), None);
        let mut a = Attrs::new();
        a.insert(
            "printer-uri-supported".into(),
            vec![
                text("ipp://192.0.2.7/ipp/print"),
                text("ipps://192.0.2.7/ipp/print"),
            ],
        );
        a.insert("printer-more-info".into(), vec![text("http://192.0.2.7/")]);
        let p = device_protocols(&a, ProtocolSettings::default(), true);
        assert_eq!(p.host_name, "192.0.2.7");
        assert_eq!(p.ipv4_addresses, vec!["192.0.2.7".to_owned()]);
        assert_eq!(p.enabled_protocols, vec!["IPP", "IPPS", "HTTP"]);
        let configured = ProtocolSettings {
            enabled_protocols: vec!["IPP".into(), "LPD".into()],
            ..Default::default()
        };
        assert_eq!(
            device_protocols(&a, configured, false).enabled_protocols,
            vec!["IPP", "LPD"]
        );
        let mut dns = Attrs::new();
        dns.insert("printer-dns-sd-name".into(), vec![text("Office MFP")]);
        assert_eq!(
            device_protocols(&dns, ProtocolSettings::default(), true).host_name,
            "Office MFP"
        );
    }

    #[test]
    fn firmware_versions() {
        let mut a = Attrs::new();
        assert_eq!(firmware_version(&a), "");
        a.insert("printer-firmware-version".into(), vec![bytes("1.0.0\u{0}")]);
        assert_eq!(firmware_version(&a), "1.0.0");
        a.insert(
            "printer-firmware-string-version".into(),
            vec![text("2.1"), text("0.9")],
        );
        a.insert(
            "printer-firmware-name".into(),
            vec![text("Main"), text("Engine")],
        );
        assert_eq!(firmware_version(&a), "Main 2.1, Engine 0.9");
    }

    #[test]
    fn reading_of_an_ippeveprinter() {
        let s = source();
        let r = s.reading(&ippeve(&["none"], 75, 100));
        assert!(r.conditions.is_empty(), "{:?}", r.conditions);
        assert_eq!(
            r.supplies,
            vec![
                Supply {
                    name: "Toner Waste Tank".into(),
                    kind: "waste_toner".into(),
                    color: String::new(),
                    level_percent: 25
                },
                Supply {
                    name: "Black Toner".into(),
                    kind: "toner".into(),
                    color: "black".into(),
                    level_percent: 75
                },
            ]
        );
        assert_eq!(r.trays[1].name, "main");
        assert_eq!(r.trays[1].media, "na_letter_8.5x11in");
        assert_eq!(r.trays[1].level_percent, 40);
        assert_eq!(r.protocols.host_name, "localhost");
        assert_eq!(r.protocols.enabled_protocols, vec!["IPP", "IPPS", "HTTPS"]);

        let r = s.reading(&ippeve(
            &[
                "media-jam-report",
                "cover-open-report",
                "toner-empty-report",
            ],
            0,
            0,
        ));
        assert_eq!(r.conditions[&AlertItem::PaperJam], "media-jam");
        assert_eq!(r.conditions[&AlertItem::CoverOpen], "cover-open");
        assert_eq!(
            r.conditions[&AlertItem::TonerEmpty],
            "toner-empty; Black Toner: 0%"
        );
        assert_eq!(
            r.conditions[&AlertItem::TonerLowLevel],
            "Black Toner at 0% (below the selected level of 20%)"
        );
        assert_eq!(r.conditions[&AlertItem::PaperOut], "main: empty");
        assert_eq!(r.trays[1].state, "empty");

        // Unknown level keeps toner_low_level; a full toner clears it.
        let r = s.reading(&ippeve(&["none"], -2, 100));
        assert!(r.conditions.contains_key(&AlertItem::TonerLowLevel));
        let r = s.reading(&ippeve(&["none"], 80, 100));
        assert!(r.conditions.is_empty(), "{:?}", r.conditions);
    }

    #[test]
    fn firmware_version_and_marker_fallback() {
        let s = source();
        let mut a = Attrs::new();
        a.insert("printer-firmware-string-version".into(), vec![text("1.0")]);
        a.insert("marker-names".into(), vec![text("Cyan"), text("Drum")]);
        a.insert("marker-types".into(), vec![text("toner"), text("opc")]);
        a.insert("marker-colors".into(), vec![text("#00FFFF")]);
        a.insert("marker-levels".into(), vec![Val::Int(3), Val::Int(0)]);
        let r = s.reading(&a);
        assert_eq!(r.firmware_version, "1.0");
        assert_eq!(r.conditions[&AlertItem::TonerAlmostEmpty], "Cyan: 3%");
        assert_eq!(r.conditions[&AlertItem::UnitReplacementNow], "Drum: 0%");
        assert_eq!(r.supplies[1].kind, "opc");
    }

    #[test]
    fn garbage_attributes_never_panic() {
        let s = source();
        let mut a = Attrs::new();
        for name in REQUESTED {
            a.insert(
                (*name).to_owned(),
                vec![
                    Val::Other,
                    Val::Int(i32::MIN),
                    bytes("level=-2147483648;maxcapacity=-1;name=x;code=8"),
                    Val::Coll(Attrs::new()),
                    text("=;="),
                ],
            );
        }
        let _ = s.reading(&a);
        let _ = s.reading(&Attrs::new());
    }

    #[tokio::test]
    async fn unreachable_printer_is_a_clear_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("ipp://127.0.0.1:{port}/ipp/print");
        let s = IppSource::new(
            "p1",
            &url,
            20,
            ProtocolSettings::default(),
            VendorMap::new(),
        )
        .with_timeout(Duration::from_secs(2));
        let err = s.read().await.unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SourceError::Unreachable(_)), "{msg}");
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.to_lowercase().contains("refused"), "{msg}");
    }
}
