//! A real printer over SNMP v2c (Printer-MIB, RFC 3805; HOST-RESOURCES-MIB,
//! RFC 2790).
//!
//! Each read opens a fresh UDP session, walks the tables below with
//! GETBULK and GETs `sysName.0`, then maps what came back with
//! [`super::mapping`]:
//!
//! - prtAlertTable (43.18.1.1): one alert row each, [`mapping::map_alert`];
//! - prtMarkerSuppliesTable (43.11.1.1): levels ÷ max capacity, supplies and
//!   toner / unit items; `toner_low_level` from the configured threshold;
//! - prtInputTable (43.8.2.1): trays, paper out;
//! - prtCoverTable (43.6.1.1): cover open;
//! - hrDeviceTable (25.3.2.1) / hrPrinterTable (25.3.5.1): device status,
//!   printer status (warming up → not ready), detected error state bits;
//! - hrStorageTable (25.2.3.1): disks (fixed, removable, flash, network) at
//!   or above the configured share used → `storage_almost_full`;
//! - prtMarkerColorantValue (43.12.1.1.4): each supply's colour;
//! - ENTITY-MIB entPhysicalFirmwareRev (47.1.1.1.1.9): the firmware version
//!   (the agent raises `firmware_update` when it changes);
//! - the vendor OIDs of `vendor_signals` ([`mapping::VendorMap`]);
//! - protocol settings: sysName, the unicast addresses of IP-MIB
//!   ipAddressTable (4.34.1; the older ipAddrTable 4.20.1 when absent)
//!   without loopback and link-local ones, and the MAC address
//!   (ifPhysAddress) of the interface holding the first address.
//!
//! Every request has its own timeout ([`REQUEST_TIMEOUT`]) and is tried
//! [`ATTEMPTS`] times, each time on a new socket so a late answer to the
//! first try cannot be taken for the answer to the second. A v2c agent
//! ignores a wrong community, so "no answer" says both possibilities.
//!
//! SNMPv3 (`[devices.snmp] version = "3"`): USM authPriv with SHA / SHA-2
//! and AES. Each session first discovers the agent's engine id, boots and
//! time (tried [`ATTEMPTS`] times, same timeout); an agent that answers
//! with an unauthenticated report (unknown user, wrong digest, decryption
//! error) is a clear "authentication failed" error, never retried and
//! never naming a password.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use printwatch_config::{SnmpAuthProtocol, SnmpPrivProtocol, SnmpV3};
use printwatch_events::AlertItem;
use printwatch_proto::v1::{PaperTray, ProtocolSettings, Supply};
use snmp2::v3::{AuthErrorKind, Security};
use snmp2::{AsyncSession, Oid, Value};

use super::mapping::{
    self, DeviceStatus, PrinterStatus, PrtAlert, SupplyKind, SupplyLevel, SupplyThresholds,
    Unknown, merge_condition,
};
use super::{Reading, SourceError};

/// How long one SNMP request may take before it is tried again.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How often a request is sent before the device counts as unreachable.
pub const ATTEMPTS: u32 = 2;
/// Rows asked for per GETBULK.
const BULK_REPETITIONS: u32 = 20;
/// A table walk stops after this many requests (a broken agent could
/// otherwise loop forever).
const MAX_REQUESTS_PER_WALK: usize = 500;

const SYS_NAME: &[u64] = &[1, 3, 6, 1, 2, 1, 1, 5, 0];
const PRT_ALERT_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 43, 18, 1, 1];
const PRT_SUPPLIES_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 43, 11, 1, 1];
const PRT_INPUT_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 43, 8, 2, 1];
const PRT_COVER_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 43, 6, 1, 1];
const HR_DEVICE_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 3, 2, 1];
const HR_PRINTER_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 3, 5, 1];
const HR_STORAGE_ENTRY: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1];
/// prtMarkerColorantValue, the only colorant column needed.
const PRT_COLORANT_VALUE: &[u64] = &[1, 3, 6, 1, 2, 1, 43, 12, 1, 1, 4];
/// ENTITY-MIB entPhysicalFirmwareRev.
const ENT_FIRMWARE_REV: &[u64] = &[1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1, 9];
/// hrStorageType values (hrStorageTypes, 25.2.1.N) that hold documents:
/// fixedDisk(4), removableDisk(5), flashMemory(9), networkDisk(10). RAM and
/// virtual memory are always "full" on some devices and say nothing.
const HR_STORAGE_DISK_TYPES: &[u64] = &[4, 5, 9, 10];
const HR_STORAGE_TYPES: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 2, 1];
/// IP-MIB ipAddressIfIndex / ipAddressType (index: type, length, octets).
const IP_ADDRESS_IF_INDEX: &[u64] = &[1, 3, 6, 1, 2, 1, 4, 34, 1, 3];
const IP_ADDRESS_TYPE: &[u64] = &[1, 3, 6, 1, 2, 1, 4, 34, 1, 4];
/// RFC 1213 ipAdEntIfIndex (index: the IPv4 address).
const IP_AD_ENT_IF_INDEX: &[u64] = &[1, 3, 6, 1, 2, 1, 4, 20, 1, 2];
/// IF-MIB ifPhysAddress.
const IF_PHYS_ADDRESS: &[u64] = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 6];
/// hrDeviceType hrDevicePrinter.
const HR_DEVICE_PRINTER: &[u64] = &[1, 3, 6, 1, 2, 1, 25, 3, 1, 5];

/// A value as far as this source cares.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Int(i64),
    Bytes(Vec<u8>),
    Oid(Vec<u64>),
    /// Any other type, or noSuchObject / noSuchInstance.
    Other,
}

impl Val {
    fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Val::Bytes(b) => String::from_utf8_lossy(b)
                .trim_matches(char::from(0))
                .trim()
                .to_owned(),
            Val::Int(i) => i.to_string(),
            _ => String::new(),
        }
    }
}

fn own_value(v: &Value<'_>) -> Val {
    match v {
        Value::Integer(i) => Val::Int(*i),
        Value::Counter32(i) | Value::Unsigned32(i) | Value::Timeticks(i) => Val::Int(i64::from(*i)),
        Value::Counter64(i) => i64::try_from(*i).map(Val::Int).unwrap_or(Val::Other),
        Value::OctetString(b) => Val::Bytes(b.to_vec()),
        Value::ObjectIdentifier(o) => Val::Oid(arcs(o).unwrap_or_default()),
        _ => Val::Other,
    }
}

fn arcs(oid: &Oid<'_>) -> Option<Vec<u64>> {
    oid.iter().map(|i| i.collect())
}

fn make_oid(arcs: &[u64]) -> Result<Oid<'static>, SourceError> {
    Oid::from(arcs).map_err(|e| SourceError::Unsupported(format!("bad OID {arcs:?}: {e:?}")))
}

/// One table: column → row index (the arcs after the column) → value.
type Table = BTreeMap<u64, BTreeMap<Vec<u64>, Val>>;

fn table(rows: Vec<(Vec<u64>, Val)>, entry: &[u64]) -> Table {
    let mut out = Table::new();
    for (oid, val) in rows {
        if let Some((&column, index)) = oid.get(entry.len()..).and_then(|rest| rest.split_first()) {
            out.entry(column).or_default().insert(index.to_vec(), val);
        }
    }
    out
}

fn cell<'t>(t: &'t Table, column: u64, index: &[u64]) -> Option<&'t Val> {
    t.get(&column).and_then(|c| c.get(index))
}

fn int_at(t: &Table, column: u64, index: &[u64]) -> Option<i64> {
    cell(t, column, index).and_then(Val::int)
}

fn text_at(t: &Table, column: u64, index: &[u64]) -> String {
    cell(t, column, index).map(Val::text).unwrap_or_default()
}

/// Every row index of a table (from any column).
fn indexes(t: &Table) -> Vec<Vec<u64>> {
    let mut all: Vec<Vec<u64>> = t.values().flat_map(|c| c.keys().cloned()).collect();
    all.sort();
    all.dedup();
    all
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The last arc of a row index as a number (the tray / supply / cover
/// number within the printer).
fn last_arc(index: &[u64]) -> i32 {
    index.last().map_or(0, |&i| clamp_i32(i as i64))
}

/// What was fetched from a device in one read.
#[derive(Debug, Default, Clone)]
pub(crate) struct Walked {
    sys_name: String,
    /// The device's own addresses and the MAC of the first one's interface.
    addresses: Vec<std::net::IpAddr>,
    mac_address: String,
    alerts: Table,
    supplies: Table,
    inputs: Table,
    covers: Table,
    devices: Table,
    printers: Table,
    storage: Table,
    /// prtMarkerColorantValue by (hrDeviceIndex, colorant index).
    colorants: BTreeMap<Vec<u64>, String>,
    /// The first non-empty entPhysicalFirmwareRev.
    firmware: String,
    /// Configured vendor OIDs with what was found at or below them.
    vendor: Vec<(Vec<u64>, Val)>,
}

/// Memory kept between reads.
#[derive(Default)]
struct Memory {
    unknown_codes: Unknown<i32>,
    /// Per toner supply index: its last `toner_low_level` detail, kept
    /// while the level cannot tell (-1/-2/-3).
    toner_low: HashMap<Vec<u64>, Option<String>>,
}

/// How a request is authorised.
#[derive(Clone)]
enum Credentials {
    /// v2c read community.
    Community(Vec<u8>),
    /// SNMPv3 USM (the security state holds the passwords and keys).
    V3 {
        user: String,
        security: Box<Security>,
    },
}

/// The snmp2 security settings for `v3` (authPriv).
fn v3_security(v3: &SnmpV3) -> Security {
    let auth_protocol = match v3.auth_protocol {
        SnmpAuthProtocol::Sha1 => snmp2::v3::AuthProtocol::Sha1,
        SnmpAuthProtocol::Sha224 => snmp2::v3::AuthProtocol::Sha224,
        SnmpAuthProtocol::Sha256 => snmp2::v3::AuthProtocol::Sha256,
        SnmpAuthProtocol::Sha384 => snmp2::v3::AuthProtocol::Sha384,
        SnmpAuthProtocol::Sha512 => snmp2::v3::AuthProtocol::Sha512,
    };
    let cipher = match v3.priv_protocol {
        SnmpPrivProtocol::Aes128 => snmp2::v3::Cipher::Aes128,
        SnmpPrivProtocol::Aes192 => snmp2::v3::Cipher::Aes192,
        SnmpPrivProtocol::Aes256 => snmp2::v3::Cipher::Aes256,
    };
    Security::new(v3.user.as_bytes(), v3.auth_password.expose().as_bytes())
        .with_auth_protocol(auth_protocol)
        .with_auth(snmp2::v3::Auth::AuthPriv {
            cipher,
            privacy_password: v3.priv_password.expose().as_bytes().to_vec(),
        })
        // net-snmp and most printers extend short AES-192/256 keys this way.
        .with_key_extension_method(snmp2::v3::KeyExtension::Blumenthal)
}

/// A printer read over SNMP v2c or v3.
pub struct SnmpSource {
    device_id: String,
    target: String,
    credentials: Credentials,
    thresholds: SupplyThresholds,
    protocols: ProtocolSettings,
    memory: Mutex<Memory>,
    timeout: Duration,
    storage_threshold_percent: u8,
    vendor: mapping::VendorMap,
    /// The vendor map's OIDs as arcs, polled each read.
    vendor_oids: Vec<Vec<u64>>,
}

impl SnmpSource {
    /// A device at `host:port` with read community `community`; supplies are
    /// judged against `threshold_percent` (`toner_low_level`); `protocols`
    /// is what the configuration says, the device's sysName replaces its
    /// host name.
    pub fn new(
        device_id: &str,
        host: &str,
        port: u16,
        community: &str,
        threshold_percent: u8,
        protocols: ProtocolSettings,
    ) -> SnmpSource {
        let target = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        SnmpSource {
            device_id: device_id.to_owned(),
            target,
            credentials: Credentials::Community(community.as_bytes().to_vec()),
            thresholds: SupplyThresholds::with_toner_threshold(threshold_percent),
            protocols,
            memory: Mutex::new(Memory::default()),
            timeout: REQUEST_TIMEOUT,
            storage_threshold_percent: printwatch_config::DEFAULT_STORAGE_THRESHOLD_PERCENT,
            vendor: mapping::VendorMap::new(),
            vendor_oids: Vec::new(),
        }
    }

    /// Judges document storage against `percent` used
    /// (`[alerts.items.storage_almost_full] threshold_percent`).
    pub fn with_storage_threshold(mut self, percent: u8) -> SnmpSource {
        self.storage_threshold_percent = percent;
        self
    }

    /// Polls `vendor`'s OIDs too (`vendor_signals`).
    pub fn with_vendor_map(mut self, vendor: mapping::VendorMap) -> SnmpSource {
        self.vendor_oids = vendor
            .oids()
            .filter_map(|(oid, _)| oid.split('.').map(|a| a.parse::<u64>().ok()).collect())
            .collect();
        self.vendor = vendor;
        self
    }

    /// Reads the device over SNMPv3 with `v3`'s user instead of a
    /// community.
    pub fn with_v3(mut self, v3: &SnmpV3) -> SnmpSource {
        self.credentials = Credentials::V3 {
            user: v3.user.clone(),
            security: Box::new(v3_security(v3)),
        };
        self
    }

    /// `host:port` as used on the wire.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Reads the device now.
    pub async fn read(&self) -> Result<Reading, SourceError> {
        let walked = self.walk_all().await?;
        let hr_printer = walked
            .printers
            .get(&1)
            .and_then(|c| c.values().next())
            .and_then(Val::int);
        if let Some(status) = hr_printer
            && PrinterStatus::from_code(clamp_i32(status)).is_warming_up()
        {
            return Err(SourceError::NotReady(
                "the printer is warming up (hrPrinterStatus warmup)".into(),
            ));
        }
        Ok(self.reading(&walked))
    }

    async fn walk_all(&self) -> Result<Walked, SourceError> {
        let mut client = Client::new(&self.target, &self.credentials, self.timeout);
        let sys_name = client.get(SYS_NAME).await?.map(|v| v.text());
        let (addresses, mac_address) = self.walk_addresses(&mut client).await?;
        Ok(Walked {
            sys_name: sys_name.unwrap_or_default(),
            addresses,
            mac_address,
            alerts: table(client.walk(PRT_ALERT_ENTRY).await?, PRT_ALERT_ENTRY),
            supplies: table(client.walk(PRT_SUPPLIES_ENTRY).await?, PRT_SUPPLIES_ENTRY),
            inputs: table(client.walk(PRT_INPUT_ENTRY).await?, PRT_INPUT_ENTRY),
            covers: table(client.walk(PRT_COVER_ENTRY).await?, PRT_COVER_ENTRY),
            devices: table(client.walk(HR_DEVICE_ENTRY).await?, HR_DEVICE_ENTRY),
            printers: table(client.walk(HR_PRINTER_ENTRY).await?, HR_PRINTER_ENTRY),
            storage: table(client.walk(HR_STORAGE_ENTRY).await?, HR_STORAGE_ENTRY),
            colorants: client
                .walk(PRT_COLORANT_VALUE)
                .await?
                .into_iter()
                .filter_map(|(oid, val)| {
                    let index = oid.get(PRT_COLORANT_VALUE.len()..)?.to_vec();
                    Some((index, val.text()))
                })
                .collect(),
            firmware: client
                .walk(ENT_FIRMWARE_REV)
                .await?
                .iter()
                .map(|(_, v)| v.text())
                .find(|t| !t.is_empty())
                .unwrap_or_default(),
            vendor: self.walk_vendor(&mut client).await?,
        })
    }

    /// The device's unicast addresses (ipAddressTable, else ipAddrTable)
    /// and the MAC address of the first one's interface.
    async fn walk_addresses(
        &self,
        client: &mut Client<'_>,
    ) -> Result<(Vec<std::net::IpAddr>, String), SourceError> {
        let types = client.walk(IP_ADDRESS_TYPE).await?;
        let if_index = client.walk(IP_ADDRESS_IF_INDEX).await?;
        let mut found = ip_address_table(&types, &if_index);
        if found.is_empty() {
            found = ip_addr_table(&client.walk(IP_AD_ENT_IF_INDEX).await?);
        }
        let Some(&(_, first_if)) = found.first() else {
            return Ok((Vec::new(), String::new()));
        };
        let mut oid = IF_PHYS_ADDRESS.to_vec();
        oid.push(first_if);
        let mac = match client.get(&oid).await? {
            Some(Val::Bytes(b)) => mac_text(&b),
            _ => String::new(),
        };
        Ok((found.into_iter().map(|(a, _)| a).collect(), mac))
    }

    /// What lies at or below each configured vendor OID: a walk for a
    /// column or subtree, a GET when the OID names one instance.
    async fn walk_vendor(
        &self,
        client: &mut Client<'_>,
    ) -> Result<Vec<(Vec<u64>, Val)>, SourceError> {
        let mut out = Vec::new();
        for oid in &self.vendor_oids {
            let below = client.walk(oid).await?;
            if below.is_empty() {
                if let Some(val) = client.get(oid).await? {
                    out.push((oid.clone(), val));
                }
            } else {
                out.extend(below);
            }
        }
        Ok(out)
    }

    /// Maps what was fetched into a reading (no network).
    fn reading(&self, w: &Walked) -> Reading {
        let mut memory = self
            .memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut conditions: BTreeMap<AlertItem, String> = BTreeMap::new();

        // prtAlertTable: 2 severity, 3 training, 4 group, 5 group index,
        // 6 location, 7 code, 8 description.
        for index in indexes(&w.alerts) {
            let int = |c| clamp_i32(int_at(&w.alerts, c, &index).unwrap_or(0));
            let Some(code) = int_at(&w.alerts, 7, &index).map(clamp_i32) else {
                continue;
            };
            let alert = PrtAlert {
                severity: int(2),
                training: int(3),
                group: int(4),
                group_index: clamp_i32(int_at(&w.alerts, 5, &index).unwrap_or(-1)),
                location: int(6),
                code,
                description: text_at(&w.alerts, 8, &index),
            };
            if !mapping::is_known_alert_code(code) && memory.unknown_codes.is_new(code) {
                tracing::warn!(
                    device.id = %self.device_id,
                    code,
                    description = %alert.description,
                    "unknown prtAlertCode (newer than IANA-PRINTER-MIB 2004?); ignored unless it needs field service"
                );
            }
            if let Some((item, detail)) = mapping::map_alert(&alert) {
                merge_condition(&mut conditions, item, &detail);
            }
        }

        // hrPrinterDetectedErrorState (hrPrinterEntry column 2).
        if let Some(col) = w.printers.get(&2) {
            for val in col.values() {
                if let Val::Bytes(octets) = val {
                    for (item, detail) in mapping::error_state_items(octets, false) {
                        merge_condition(&mut conditions, item, &detail);
                    }
                }
            }
        }

        // Supplies: 5 type, 6 description, 8 max capacity, 9 level.
        let mut supplies = Vec::new();
        for index in indexes(&w.supplies) {
            let Some(level) = int_at(&w.supplies, 9, &index) else {
                continue;
            };
            let max = int_at(&w.supplies, 8, &index).unwrap_or(-2);
            let supply_type = clamp_i32(int_at(&w.supplies, 5, &index).unwrap_or(1));
            let mut name = text_at(&w.supplies, 6, &index);
            if name.is_empty() {
                name = format!("Supply {}", last_arc(&index));
            }
            let kind = SupplyKind::from_snmp_type(supply_type);
            let level = mapping::snmp_supply_level(clamp_i32(level), clamp_i32(max));
            for (item, detail) in mapping::supply_items(kind, &name, level, &self.thresholds) {
                if item != AlertItem::TonerLowLevel {
                    merge_condition(&mut conditions, item, &detail);
                }
            }
            if kind == SupplyKind::Toner {
                let remembered = memory.toner_low.entry(index.clone()).or_default();
                let below =
                    mapping::toner_below_threshold(level, self.thresholds.toner_low_level_percent);
                match (below, level) {
                    (Some(true), SupplyLevel::Percent(p)) => {
                        *remembered = Some(format!(
                            "{name} at {p}% (below the selected level of {}%)",
                            self.thresholds.toner_low_level_percent
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
            // 3 ColorantIndex → prtMarkerColorantValue (0: no colorant).
            let color = int_at(&w.supplies, 3, &index)
                .filter(|&c| c > 0)
                .and_then(|c| {
                    let mut key = index.clone();
                    *key.last_mut()? = c as u64;
                    w.colorants.get(&key).cloned()
                })
                .unwrap_or_default();
            supplies.push(Supply {
                name,
                kind: supply_kind_name(supply_type).into(),
                color,
                level_percent: match level {
                    SupplyLevel::Percent(p) => i32::from(p),
                    _ => -1,
                },
            });
        }

        // Input trays: 9 max capacity, 10 current level, 12 media name,
        // 13 name, 18 description.
        let mut trays = Vec::new();
        for index in indexes(&w.inputs) {
            let n = last_arc(&index);
            let current = int_at(&w.inputs, 10, &index).map_or(-2, clamp_i32);
            let max = int_at(&w.inputs, 9, &index).map_or(-2, clamp_i32);
            let mut name = text_at(&w.inputs, 13, &index);
            if name.is_empty() {
                name = text_at(&w.inputs, 18, &index);
            }
            if name.is_empty() {
                name = format!("Tray {n}");
            }
            let empty = mapping::input_tray_item(n, &name, current, max);
            let state = if empty.is_some() { "empty" } else { "ok" };
            if let Some((item, detail)) = empty {
                merge_condition(&mut conditions, item, &detail);
            }
            trays.push(PaperTray {
                name,
                media: text_at(&w.inputs, 12, &index),
                level_percent: tray_percent(current, max),
                state: state.into(),
            });
        }

        // Covers: 2 description, 3 status.
        for index in indexes(&w.covers) {
            if let Some(status) = int_at(&w.covers, 3, &index)
                && let Some((item, detail)) = mapping::cover_item(
                    last_arc(&index),
                    &text_at(&w.covers, 2, &index),
                    clamp_i32(status),
                )
            {
                merge_condition(&mut conditions, item, &detail);
            }
        }

        // hrDeviceStatus last: the printer's own "down" only counts when no
        // error item explains it.
        let mut device_items = Vec::new();
        for index in indexes(&w.devices) {
            let Some(status) = int_at(&w.devices, 5, &index) else {
                continue;
            };
            let printer = match cell(&w.devices, 2, &index) {
                Some(Val::Oid(t)) => t.as_slice() == HR_DEVICE_PRINTER,
                _ => w.devices.get(&5).map(|c| c.len()) == Some(1),
            };
            if let Some(hit) = mapping::device_status_item(
                DeviceStatus::from_code(clamp_i32(status)),
                printer,
                &text_at(&w.devices, 3, &index),
                &conditions,
            ) {
                device_items.push(hit);
            }
        }
        for (item, detail) in device_items {
            merge_condition(&mut conditions, item, &detail);
        }

        // hrStorage: 2 type, 3 description, 5 size, 6 used (same units).
        for index in indexes(&w.storage) {
            let disk = match cell(&w.storage, 2, &index) {
                Some(Val::Oid(t)) => t.strip_prefix(HR_STORAGE_TYPES).is_some_and(|rest| {
                    rest.len() == 1 && HR_STORAGE_DISK_TYPES.contains(&rest[0])
                }),
                _ => false,
            };
            let (Some(size), Some(used)) =
                (int_at(&w.storage, 5, &index), int_at(&w.storage, 6, &index))
            else {
                continue;
            };
            if disk
                && let Some((item, detail)) = mapping::storage_item(
                    &text_at(&w.storage, 3, &index),
                    size,
                    used,
                    self.storage_threshold_percent,
                )
            {
                merge_condition(&mut conditions, item, &detail);
            }
        }

        // Vendor extensions, after the standard signals.
        for (oid, val) in &w.vendor {
            let Some(value) = val.int() else { continue };
            let text: Vec<String> = oid.iter().map(u64::to_string).collect();
            if let Some((item, detail)) = self.vendor.oid_value_item(&text.join("."), value) {
                merge_condition(&mut conditions, item, &detail);
            }
        }

        let mut protocols = self.protocols.clone();
        if !w.sys_name.is_empty() {
            protocols.host_name = w.sys_name.clone();
        }
        // What the device says about itself wins over the config.
        if !w.addresses.is_empty() {
            protocols.ipv4_addresses = w
                .addresses
                .iter()
                .filter(|a| a.is_ipv4())
                .map(ToString::to_string)
                .collect();
            protocols.ipv6_addresses = w
                .addresses
                .iter()
                .filter(|a| a.is_ipv6())
                .map(ToString::to_string)
                .collect();
        }
        if !w.mac_address.is_empty() {
            protocols.mac_address = w.mac_address.clone();
        }
        Reading {
            conditions,
            supplies,
            trays,
            protocols,
            firmware_version: w.firmware.clone(),
        }
    }
}

/// An address worth showing: not loopback, link-local or unspecified.
fn is_reported(addr: &std::net::IpAddr) -> bool {
    match addr {
        std::net::IpAddr::V4(a) => !(a.is_loopback() || a.is_link_local() || a.is_unspecified()),
        std::net::IpAddr::V6(a) => {
            !(a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80)
        }
    }
}

/// Unicast addresses from IP-MIB ipAddressTable rows (index: addrType
/// ipv4(1)/ipv6(2), length, octets), with their ifIndex, in table order.
fn ip_address_table(
    types: &[(Vec<u64>, Val)],
    if_index: &[(Vec<u64>, Val)],
) -> Vec<(std::net::IpAddr, u64)> {
    let unicast: std::collections::HashSet<&[u64]> = types
        .iter()
        .filter(|(_, v)| v.int() == Some(1))
        .filter_map(|(oid, _)| oid.get(IP_ADDRESS_TYPE.len()..))
        .collect();
    let mut out = Vec::new();
    for (oid, val) in if_index {
        let Some(index) = oid.get(IP_ADDRESS_IF_INDEX.len()..) else {
            continue;
        };
        let (Some(ifx), true) = (val.int(), unicast.contains(index)) else {
            continue;
        };
        let octets: Option<Vec<u8>> = index
            .get(2..)
            .map(|o| o.iter().map(|&b| u8::try_from(b).ok()).collect())
            .and_then(|v| v);
        let addr = match (index.first(), index.get(1), octets) {
            (Some(1), Some(4), Some(o)) if o.len() == 4 => {
                std::net::IpAddr::from([o[0], o[1], o[2], o[3]])
            }
            (Some(2), Some(16), Some(o)) if o.len() == 16 => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&o);
                std::net::IpAddr::from(b)
            }
            _ => continue,
        };
        if is_reported(&addr) && ifx > 0 {
            out.push((addr, ifx as u64));
        }
    }
    out
}

/// IPv4 addresses from RFC 1213 ipAdEntIfIndex rows (index: the address).
fn ip_addr_table(rows: &[(Vec<u64>, Val)]) -> Vec<(std::net::IpAddr, u64)> {
    rows.iter()
        .filter_map(|(oid, val)| {
            let o = oid.get(IP_AD_ENT_IF_INDEX.len()..)?;
            let o: Vec<u8> = o
                .iter()
                .map(|&b| u8::try_from(b).ok())
                .collect::<Option<_>>()?;
            let addr = std::net::IpAddr::from(<[u8; 4]>::try_from(o.as_slice()).ok()?);
            let ifx = u64::try_from(val.int()?).ok().filter(|&i| i > 0)?;
            is_reported(&addr).then_some((addr, ifx))
        })
        .collect()
}

/// `aa:bb:cc:dd:ee:ff` for a 6-octet ifPhysAddress; empty for anything
/// else (none, or all zero).
fn mac_text(octets: &[u8]) -> String {
    if octets.len() != 6 || octets.iter().all(|&b| b == 0) {
        return String::new();
    }
    octets
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn tray_percent(current: i32, max: i32) -> i32 {
    if current < 0 || max <= 0 {
        return -1;
    }
    (i64::from(current) * 100 / i64::from(max)).clamp(0, 100) as i32
}

/// prtMarkerSuppliesType (PrtMarkerSuppliesTypeTC) as a `Supply.kind`.
fn supply_kind_name(t: i32) -> &'static str {
    match t {
        3 => "toner",
        4 => "waste_toner",
        5 => "ink",
        6 => "ink_cartridge",
        9 => "opc",
        10 => "developer",
        15 => "fuser",
        18 => "cleaner_unit",
        20 => "transfer_unit",
        21 => "toner_cartridge",
        _ => "other",
    }
}

/// An SNMP v2c / v3 client for one read: timeouts, retries on a fresh
/// socket, errors as [`SourceError`].
struct Client<'a> {
    target: &'a str,
    credentials: &'a Credentials,
    timeout: Duration,
    session: Option<AsyncSession>,
    next_request_id: i32,
}

enum Request<'o> {
    Get(&'o [u64]),
    Bulk(&'o [u64]),
}

impl<'a> Client<'a> {
    fn new(target: &'a str, credentials: &'a Credentials, timeout: Duration) -> Client<'a> {
        // Request ids differ between reads, so an answer that arrives late
        // can never match.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(1);
        Client {
            target,
            credentials,
            timeout,
            session: None,
            next_request_id: (seed & 0x3fff_ffff) as i32,
        }
    }

    fn no_answer(&self) -> SourceError {
        let (version, why) = match self.credentials {
            Credentials::Community(_) => ("SNMP v2c", "wrong community or unreachable"),
            Credentials::V3 { .. } => ("SNMPv3", "unreachable or no SNMPv3 there"),
        };
        SourceError::Unreachable(format!(
            "no answer from {} over {version} within {}s, tried {ATTEMPTS} times ({why})",
            self.target,
            self.timeout.as_secs_f32()
        ))
    }

    /// The error for an agent that refused our v3 credentials.
    fn auth_failed(&self, kind: &AuthErrorKind) -> SourceError {
        let user = match self.credentials {
            Credentials::V3 { user, .. } => user.as_str(),
            Credentials::Community(_) => "",
        };
        SourceError::Unreachable(format!(
            "SNMPv3 authentication failed for user {user} at {} ({kind}): wrong user, password or protocol?",
            self.target
        ))
    }

    /// Opens a session; for v3 with engine discovery, tried [`ATTEMPTS`]
    /// times.
    async fn open(&self) -> Result<AsyncSession, SourceError> {
        let cannot_resolve = || {
            SourceError::Unreachable(format!(
                "cannot resolve {} within {}s",
                self.target,
                self.timeout.as_secs_f32()
            ))
        };
        let cannot_open = |e: std::io::Error| {
            SourceError::Unreachable(format!(
                "cannot open an SNMP session to {}: {e}",
                self.target
            ))
        };
        let security = match self.credentials {
            Credentials::Community(community) => {
                return match tokio::time::timeout(
                    self.timeout,
                    AsyncSession::new_v2c(self.target, community, self.next_request_id),
                )
                .await
                {
                    Ok(Ok(s)) => Ok(s),
                    Ok(Err(e)) => Err(cannot_open(e)),
                    Err(_) => Err(cannot_resolve()),
                };
            }
            Credentials::V3 { security, .. } => security,
        };
        let mut last = self.no_answer();
        for _ in 0..ATTEMPTS {
            let mut session = match tokio::time::timeout(
                self.timeout,
                AsyncSession::new_v3(self.target, self.next_request_id, (**security).clone()),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(cannot_open(e)),
                Err(_) => return Err(cannot_resolve()),
            };
            match tokio::time::timeout(self.timeout, session.init()).await {
                Ok(Ok(())) => return Ok(session),
                Ok(Err(snmp2::Error::AuthFailure(kind))) => return Err(self.auth_failed(&kind)),
                Ok(Err(snmp2::Error::Receive)) => {
                    last = SourceError::Unreachable(format!(
                        "nothing answers SNMP at {} (connection refused: no agent on that port?)",
                        self.target
                    ));
                }
                Ok(Err(e)) => {
                    last = SourceError::Unreachable(format!(
                        "SNMPv3 engine discovery at {} failed: {e}",
                        self.target
                    ));
                }
                Err(_) => last = self.no_answer(),
            }
        }
        Err(last)
    }

    /// Sends `req`, up to [`ATTEMPTS`] times; the varbinds of the answer.
    async fn request(&mut self, req: &Request<'_>) -> Result<Vec<(Vec<u64>, Val)>, SourceError> {
        let mut last = self.no_answer();
        for _ in 0..ATTEMPTS {
            let session = match &mut self.session {
                Some(s) => s,
                None => {
                    let opened = self.open().await?;
                    self.session.insert(opened)
                }
            };
            self.next_request_id = self.next_request_id.wrapping_add(1) & 0x3fff_ffff;
            let answer = match req {
                Request::Get(oid) => {
                    let oid = make_oid(oid)?;
                    tokio::time::timeout(self.timeout, async {
                        session.get(&oid).await.map(owned_pdu)
                    })
                    .await
                }
                Request::Bulk(oid) => {
                    let oid = make_oid(oid)?;
                    tokio::time::timeout(self.timeout, async {
                        session
                            .getbulk(&[&oid], 0, BULK_REPETITIONS)
                            .await
                            .map(owned_pdu)
                    })
                    .await
                }
            };
            match answer {
                Ok(Ok((0, varbinds))) => return Ok(varbinds),
                Ok(Ok((status, _))) => {
                    return Err(SourceError::Unreachable(format!(
                        "{} answered with SNMP error status {status} ({})",
                        self.target,
                        error_status_name(status)
                    )));
                }
                Ok(Err(snmp2::Error::AuthFailure(
                    kind @ (AuthErrorKind::NotAuthenticated
                    | AuthErrorKind::SignatureMismatch
                    | AuthErrorKind::UsernameMismatch),
                ))) => return Err(self.auth_failed(&kind)),
                Ok(Err(snmp2::Error::Receive)) => {
                    // ICMP port unreachable on the connected socket.
                    self.session = None;
                    last = SourceError::Unreachable(format!(
                        "nothing answers SNMP at {} (connection refused: no agent on that port?)",
                        self.target
                    ));
                }
                Ok(Err(e)) => {
                    self.session = None;
                    last = SourceError::Unreachable(format!(
                        "bad SNMP answer from {}: {e:?}",
                        self.target
                    ));
                }
                Err(_) => {
                    // A late answer to this try must not be read as the
                    // answer to the next one: start over on a new socket.
                    self.session = None;
                    last = self.no_answer();
                }
            }
        }
        Err(last)
    }

    /// GET one scalar; `None` for noSuchObject / noSuchInstance.
    async fn get(&mut self, oid: &[u64]) -> Result<Option<Val>, SourceError> {
        let varbinds = self.request(&Request::Get(oid)).await?;
        Ok(varbinds
            .into_iter()
            .find(|(o, _)| o.as_slice() == oid)
            .map(|(_, v)| v)
            .filter(|v| *v != Val::Other))
    }

    /// Every (OID, value) under `prefix`, by GETBULK.
    async fn walk(&mut self, prefix: &[u64]) -> Result<Vec<(Vec<u64>, Val)>, SourceError> {
        let mut out = Vec::new();
        let mut cursor = prefix.to_vec();
        for _ in 0..MAX_REQUESTS_PER_WALK {
            let varbinds = self.request(&Request::Bulk(&cursor)).await?;
            if varbinds.is_empty() {
                return Ok(out);
            }
            for (oid, val) in varbinds {
                // endOfMibView comes back as Other with the same OID; a
                // non-increasing OID would loop.
                if !oid.starts_with(prefix) || oid <= cursor {
                    return Ok(out);
                }
                cursor = oid.clone();
                out.push((oid, val));
            }
        }
        tracing::warn!(target = %self.target, ?prefix, "SNMP walk stopped after {MAX_REQUESTS_PER_WALK} requests");
        Ok(out)
    }
}

/// The error status and owned varbinds of an answer (endOfMibView ends the
/// list).
fn owned_pdu(pdu: snmp2::Pdu<'_>) -> (u32, Vec<(Vec<u64>, Val)>) {
    let status = pdu.error_status;
    let mut out = Vec::new();
    for (oid, value) in pdu.varbinds {
        if matches!(value, Value::EndOfMibView) {
            break;
        }
        let Some(arcs) = arcs(&oid) else { break };
        out.push((arcs, own_value(&value)));
    }
    (status, out)
}

fn error_status_name(status: u32) -> &'static str {
    match status {
        1 => "tooBig",
        2 => "noSuchName",
        3 => "badValue",
        4 => "readOnly",
        5 => "genErr",
        6 => "noAccess",
        16 => "authorizationError",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(entry: &[u64], cells: &[(u64, &[u64], Val)]) -> Table {
        let list = cells
            .iter()
            .map(|(col, idx, v)| {
                let mut oid = entry.to_vec();
                oid.push(*col);
                oid.extend_from_slice(idx);
                (oid, v.clone())
            })
            .collect();
        table(list, entry)
    }

    fn source() -> SnmpSource {
        SnmpSource::new(
            "p1",
            "127.0.0.1",
            11161,
            "public",
            20,
            ProtocolSettings::default(),
        )
    }

    fn s(text: &str) -> Val {
        Val::Bytes(text.as_bytes().to_vec())
    }

    #[test]
    fn maps_alerts_supplies_trays_covers_and_error_bits() {
        let w = Walked {
            sys_name: "mfp-3f".into(),
            alerts: rows(
                PRT_ALERT_ENTRY,
                &[
                    (2, &[1, 1], Val::Int(4)),
                    (3, &[1, 1], Val::Int(4)),
                    (4, &[1, 1], Val::Int(13)),
                    (5, &[1, 1], Val::Int(1)),
                    (7, &[1, 1], Val::Int(8)),
                    (8, &[1, 1], s("Paper jam in the duplex unit")),
                    (7, &[1, 2], Val::Int(4242)),
                ],
            ),
            supplies: rows(
                PRT_SUPPLIES_ENTRY,
                &[
                    (5, &[1, 1], Val::Int(3)),
                    (6, &[1, 1], s("Black Toner")),
                    (8, &[1, 1], Val::Int(200)),
                    (9, &[1, 1], Val::Int(20)),
                ],
            ),
            inputs: rows(
                PRT_INPUT_ENTRY,
                &[
                    (9, &[1, 1], Val::Int(500)),
                    (10, &[1, 1], Val::Int(0)),
                    (13, &[1, 1], s("Tray 1")),
                    (9, &[1, 2], Val::Int(500)),
                    (10, &[1, 2], Val::Int(250)),
                ],
            ),
            covers: rows(
                PRT_COVER_ENTRY,
                &[(2, &[1, 1], s("Front Cover")), (3, &[1, 1], Val::Int(3))],
            ),
            devices: rows(HR_DEVICE_ENTRY, &[(5, &[1], Val::Int(2))]),
            printers: rows(HR_PRINTER_ENTRY, &[(2, &[1], Val::Bytes(vec![0x04]))]),
            ..Walked::default()
        };
        let src = source();
        let r = src.reading(&w);
        assert_eq!(
            r.conditions.get(&AlertItem::PaperJam).map(String::as_str),
            Some("Paper path 1: Paper jam in the duplex unit; jammed")
        );
        assert_eq!(
            r.conditions
                .get(&AlertItem::TonerLowLevel)
                .map(String::as_str),
            Some("Black Toner at 10% (below the selected level of 20%)")
        );
        assert_eq!(
            r.conditions.get(&AlertItem::PaperOut).map(String::as_str),
            Some("Tray 1: empty")
        );
        assert_eq!(
            r.conditions.get(&AlertItem::CoverOpen).map(String::as_str),
            Some("Front Cover: open")
        );
        assert_eq!(r.conditions.len(), 4, "{:?}", r.conditions);
        assert_eq!(r.supplies[0].level_percent, 10);
        assert_eq!(r.supplies[0].kind, "toner");
        assert_eq!(r.trays.len(), 2);
        assert_eq!(
            (r.trays[0].state.as_str(), r.trays[0].level_percent),
            ("empty", 0)
        );
        assert_eq!(r.trays[1].name, "Tray 2");
        assert_eq!(r.trays[1].level_percent, 50);
        assert_eq!(r.protocols.host_name, "mfp-3f");
        // The unknown code was remembered once.
        assert_eq!(src.memory.lock().unwrap().unknown_codes.len(), 1);
    }

    #[test]
    fn storage_counts_disks_only_and_vendor_oids_match_below_a_column() {
        let mut vendor = mapping::VendorMap::new();
        vendor.insert_oid("1.3.6.1.4.1.367.9", AlertItem::AccessAttack);
        let src = source().with_storage_threshold(80).with_vendor_map(vendor);
        let disk = HR_STORAGE_TYPES.iter().copied().chain([4]).collect();
        let ram = HR_STORAGE_TYPES.iter().copied().chain([2]).collect();
        let w = Walked {
            storage: rows(
                HR_STORAGE_ENTRY,
                &[
                    (2, &[1], Val::Oid(disk)),
                    (3, &[1], s("HDD")),
                    (5, &[1], Val::Int(100)),
                    (6, &[1], Val::Int(85)),
                    // RAM is always nearly full: never an alert.
                    (2, &[2], Val::Oid(ram)),
                    (5, &[2], Val::Int(100)),
                    (6, &[2], Val::Int(99)),
                ],
            ),
            vendor: vec![
                (vec![1, 3, 6, 1, 4, 1, 367, 9, 1], Val::Int(0)),
                (vec![1, 3, 6, 1, 4, 1, 367, 9, 2], Val::Int(3)),
                (vec![1, 3, 6, 1, 4, 1, 367, 10, 1], Val::Int(1)),
            ],
            firmware: "2.0".into(),
            ..Walked::default()
        };
        let r = src.reading(&w);
        assert_eq!(
            r.conditions
                .get(&AlertItem::StorageAlmostFull)
                .map(String::as_str),
            Some("HDD: 85% used")
        );
        assert_eq!(
            r.conditions
                .get(&AlertItem::AccessAttack)
                .map(String::as_str),
            Some("1.3.6.1.4.1.367.9.2 = 3")
        );
        assert_eq!(r.conditions.len(), 2, "{:?}", r.conditions);
        assert_eq!(r.firmware_version, "2.0");
    }

    #[test]
    fn addresses_skip_loopback_link_local_and_broadcast() {
        let at = |base: &[u64], idx: &[u64], v: i64| {
            let mut oid = base.to_vec();
            oid.extend_from_slice(idx);
            (oid, Val::Int(v))
        };
        let lo = [1, 4, 127, 0, 0, 1];
        let v4 = [1, 4, 192, 0, 2, 2];
        let bcast = [1, 4, 192, 0, 2, 255];
        let mut v6 = vec![2, 16, 0xfd, 0];
        v6.extend([0; 13]);
        v6.push(2);
        let mut ll = vec![2, 16, 0xfe, 0x80];
        ll.extend([0; 13]);
        ll.push(1);
        let bad = [1, 4, 999, 0, 0, 1];
        let types = vec![
            at(IP_ADDRESS_TYPE, &lo, 1),
            at(IP_ADDRESS_TYPE, &v4, 1),
            at(IP_ADDRESS_TYPE, &bcast, 3),
            at(IP_ADDRESS_TYPE, &v6, 1),
            at(IP_ADDRESS_TYPE, &ll, 1),
            at(IP_ADDRESS_TYPE, &bad, 1),
        ];
        let ifs = vec![
            at(IP_ADDRESS_IF_INDEX, &lo, 1),
            at(IP_ADDRESS_IF_INDEX, &v4, 4),
            at(IP_ADDRESS_IF_INDEX, &bcast, 4),
            at(IP_ADDRESS_IF_INDEX, &v6, 4),
            at(IP_ADDRESS_IF_INDEX, &ll, 4),
            at(IP_ADDRESS_IF_INDEX, &bad, 4),
        ];
        let found: Vec<String> = ip_address_table(&types, &ifs)
            .iter()
            .map(|(a, i)| format!("{a}@{i}"))
            .collect();
        assert_eq!(found, ["192.0.2.2@4", "fd00::2@4"]);
        let old = vec![
            at(IP_AD_ENT_IF_INDEX, &[127, 0, 0, 1], 1),
            at(IP_AD_ENT_IF_INDEX, &[198, 51, 100, 7], 2),
            at(IP_AD_ENT_IF_INDEX, &[1, 2, 3], 2),
        ];
        let found: Vec<String> = ip_addr_table(&old)
            .iter()
            .map(|(a, _)| a.to_string())
            .collect();
        assert_eq!(found, ["198.51.100.7"]);
        assert_eq!(
            mac_text(&[0x00, 0x00, 0x74, 0x12, 0x34, 0x56]),
            "00:00:74:12:34:56"
        );
        assert_eq!(mac_text(&[0; 6]), "");
        assert_eq!(mac_text(&[1, 2]), "");
    }

    #[test]
    fn toner_low_level_is_kept_while_the_level_cannot_tell() {
        let src = source();
        let at = |level: i64| Walked {
            supplies: rows(
                PRT_SUPPLIES_ENTRY,
                &[
                    (5, &[1, 1], Val::Int(3)),
                    (8, &[1, 1], Val::Int(100)),
                    (9, &[1, 1], Val::Int(level)),
                ],
            ),
            ..Walked::default()
        };
        let low = |w: &Walked| {
            src.reading(w)
                .conditions
                .contains_key(&AlertItem::TonerLowLevel)
        };
        assert!(!low(&at(50)));
        assert!(low(&at(10)));
        assert!(low(&at(-3)));
        assert!(!low(&at(20)));
        assert!(!low(&at(-2)));
    }

    /// Whatever a broken or hostile agent sends — any type in any column,
    /// extreme numbers, odd indexes, huge or empty strings — a reading
    /// comes out and nothing panics.
    #[test]
    fn garbage_from_the_device_never_panics() {
        // A small deterministic generator (xorshift), so a failure repeats.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let value = |r: u64| match r % 9 {
            0 => Val::Int(i64::MIN),
            1 => Val::Int(i64::MAX),
            2 => Val::Int((r % 7) as i64 - 3),
            3 => Val::Int((r >> 8) as i64 % 100_000),
            4 => Val::Bytes(Vec::new()),
            5 => Val::Bytes((0..(r % 300)).map(|i| (i * 37 + r) as u8).collect()),
            6 => Val::Oid(vec![1, 3, 6, 1, 2, 1, 25, 2, 1, r % 12]),
            7 => Val::Oid(Vec::new()),
            _ => Val::Other,
        };
        let mut vendor = mapping::VendorMap::new();
        vendor.insert_oid("1.3.6.1.4.1.367", AlertItem::ServiceCall);
        let src = source().with_vendor_map(vendor);
        for _ in 0..300 {
            let mut table_of = |entry: &[u64], columns: u64| {
                let rows = (0..(next() % 12))
                    .map(|_| {
                        let mut oid = entry.to_vec();
                        oid.push(next() % columns);
                        for _ in 0..(next() % 4) {
                            oid.push(next() % 5);
                        }
                        (oid, value(next()))
                    })
                    .collect();
                table(rows, entry)
            };
            let w = Walked {
                sys_name: String::from_utf8_lossy(&[0xff, 0, b'a']).into_owned(),
                alerts: table_of(PRT_ALERT_ENTRY, 10),
                supplies: table_of(PRT_SUPPLIES_ENTRY, 10),
                inputs: table_of(PRT_INPUT_ENTRY, 20),
                covers: table_of(PRT_COVER_ENTRY, 4),
                devices: table_of(HR_DEVICE_ENTRY, 7),
                printers: table_of(HR_PRINTER_ENTRY, 3),
                storage: table_of(HR_STORAGE_ENTRY, 8),
                colorants: (0..(next() % 3))
                    .map(|_| (vec![1, next() % 3], "x".repeat((next() % 50) as usize)))
                    .collect(),
                firmware: String::new(),
                vendor: (0..(next() % 3))
                    .map(|_| (vec![1, 3, 6, 1, 4, 1, 367, next() % 3], value(next())))
                    .collect(),
                ..Walked::default()
            };
            let r = src.reading(&w);
            for s in &r.supplies {
                assert!((-1..=100).contains(&s.level_percent), "{s:?}");
            }
        }
    }

    #[test]
    fn printer_down_without_an_error_is_a_service_call() {
        let w = Walked {
            devices: rows(
                HR_DEVICE_ENTRY,
                &[
                    (2, &[1], Val::Oid(HR_DEVICE_PRINTER.to_vec())),
                    (3, &[1], s("Test MFP")),
                    (5, &[1], Val::Int(5)),
                ],
            ),
            ..Walked::default()
        };
        let r = source().reading(&w);
        assert_eq!(
            r.conditions
                .get(&AlertItem::ServiceCall)
                .map(String::as_str),
            Some("Test MFP is down (hrDeviceStatus down)")
        );
    }

    #[tokio::test]
    async fn a_silent_port_is_unreachable_with_a_clear_message() {
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let mut src = SnmpSource::new("p1", "127.0.0.1", port, "public", 20, Default::default());
        src.timeout = Duration::from_millis(100);
        let err = src.read().await.unwrap_err();
        assert!(matches!(err, SourceError::Unreachable(_)), "{err}");
        assert!(
            err.to_string().contains("wrong community or unreachable"),
            "{err}"
        );
    }
}
