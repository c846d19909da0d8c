//! What a real printer reports, mapped to the alert items: one table-driven
//! place shared by the SNMP and the IPP sources (issue 6, item 3).
//!
//! Everything here is a pure function of what a device sent (plus two tiny
//! memories, [`FirmwareWatch`] and [`Unknown`]); no network.
//!
//! Every number is taken from `shared/printer-signals.md`, which cites:
//! - Printer-MIB (RFC 3805) and its companion IANA-PRINTER-MIB rev 2004-06-02
//!   for `prtAlertCode` (PrtAlertCodeTC), `prtAlertGroup` (PrtAlertGroupTC),
//!   `prtAlertSeverityLevel`, `prtAlertTrainingLevel` and
//!   `prtMarkerSuppliesType` (PrtMarkerSuppliesTypeTC). Later IANA revisions
//!   (PWG 5100.9, 2009) add codes, so unknown codes are tolerated:
//!   [`map_alert`] returns `None` and [`is_known_alert_code`] plus
//!   [`Unknown`] let the caller log a new code once.
//! - HOST-RESOURCES-MIB (RFC 2790) for `hrPrinterDetectedErrorState` (bit 0
//!   is the most significant bit of the first octet, 0x80; a device may send
//!   a single octet), `hrDeviceStatus` and `hrPrinterStatus`. CUPS v2.4.2
//!   `backend-private.h` uses the same layout, and its
//!   `backend/snmp-supplies.c` calls the `offline` and `serviceRequested`
//!   bits unreliable: they only count when the caller trusts them.
//! - IPP `printer-state-reasons`: the RFC 8011 base set and the registered
//!   PWG 5100.9 keywords (as listed in CUPS v2.4.2 `locale/ipp-strings.c`).
//!   The `-report` / `-warning` / `-error` suffixes are stripped first; `none`
//!   means nothing is wrong.
//!
//! # Entry points
//!
//! - SNMP: [`map_alert`] (prtAlertTable rows, [`ALERT_CODES`]),
//!   [`error_state_items`] ([`ERROR_STATE_BITS`]), [`device_status_item`] /
//!   [`PrinterStatus::is_warming_up`], [`snmp_supply_level`] +
//!   [`SupplyKind::from_snmp_type`] + [`supply_items`], [`input_tray_item`],
//!   [`cover_item`], [`storage_item`], [`VendorMap::oid_value_item`].
//! - IPP: [`map_ipp_reasons`] ([`IPP_REASONS`]), [`ipp_marker_level`] +
//!   [`SupplyKind::from_ipp_marker_type`] + [`supply_items`].
//! - Both: [`FirmwareWatch`], [`toner_below_threshold`], [`merge_condition`]
//!   to gather several signals of one item into one condition.
//!
//! # Items no standard signal carries
//!
//! - `proxy_auth_error` (Proxy authentication error): no Printer-MIB code, no
//!   hrPrinterDetectedErrorState bit, no IPP keyword.
//! - `access_attack` (Access attack detected): none either (the SNMPv2
//!   `authenticationFailure` trap only covers SNMP itself).
//! - `storage_almost_full` (Document storage almost full): no "nearly full"
//!   signal; the closest are `subunitAlmostFull(14)` in group
//!   `hostResourcesMIBStorageTable(3)` and IPP `spool-area-full` (only when
//!   full), which are mapped; an hrStorage used/size threshold is left to the
//!   source.
//! - `firmware_update` (Firmware update check): no signal; detected as a
//!   change of the reported firmware version ([`FirmwareWatch`]).
//! - `service_call` and `unit_connection_error` have no dedicated signal; the
//!   closest generic ones are mapped (subunit failure / missing / offline
//!   codes, the field-service training level, `hrDeviceStatus down(5)`).
//!
//! These items are simulated-only unless a configuration names a vendor
//! extension for them: a [`VendorMap`] maps a vendor-specific OID (active
//! while its value is non-zero) or IPP keyword to an item.

use std::collections::{BTreeMap, HashSet};
use std::hash::Hash;

use printwatch_events::{AlertItem, Severity};

/// Adds `item` with `detail` to `conditions`; a second signal for the same
/// item appends its detail (`"a; b"`) unless it says the same thing.
pub fn merge_condition(
    conditions: &mut BTreeMap<AlertItem, String>,
    item: AlertItem,
    detail: &str,
) {
    match conditions.get_mut(&item) {
        None => {
            conditions.insert(item, detail.to_owned());
        }
        Some(existing) => {
            if !detail.is_empty() && existing.split("; ").all(|d| d != detail) {
                if existing.is_empty() {
                    detail.clone_into(existing);
                } else {
                    existing.push_str("; ");
                    existing.push_str(detail);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Printer-MIB alert table (RFC 3805 / IANA-PRINTER-MIB).
// ---------------------------------------------------------------------------

/// PrtAlertGroupTC values that matter here (IANA-PRINTER-MIB).
pub mod group {
    /// hostResourcesMIBStorageTable(3).
    pub const HR_STORAGE: i32 = 3;
    /// hostResourcesMIBDeviceTable(4).
    pub const HR_DEVICE: i32 = 4;
    /// generalPrinter(5).
    pub const GENERAL_PRINTER: i32 = 5;
    /// cover(6).
    pub const COVER: i32 = 6;
    /// input(8): the group index is the prtInputIndex, i.e. the tray.
    pub const INPUT: i32 = 8;
    /// output(9).
    pub const OUTPUT: i32 = 9;
    /// marker(10).
    pub const MARKER: i32 = 10;
    /// markerSupplies(11).
    pub const MARKER_SUPPLIES: i32 = 11;
    /// mediaPath(13).
    pub const MEDIA_PATH: i32 = 13;
}

/// prtAlertSeverityLevel critical(3) (PrtAlertSeverityLevelTC).
pub const SEVERITY_CRITICAL: i32 = 3;
/// prtAlertTrainingLevel fieldService(5) (PrtAlertTrainingLevelTC): only a
/// service technician can act, i.e. a service call.
pub const TRAINING_FIELD_SERVICE: i32 = 5;

/// One row of prtAlertTable (43.18.1.1.{2..8}.1.N).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrtAlert {
    pub severity: i32,
    pub training: i32,
    pub group: i32,
    /// prtAlertGroupIndex: the tray / supply / cover index in `group`, or
    /// -1 (not applicable).
    pub group_index: i32,
    pub location: i32,
    pub code: i32,
    pub description: String,
}

/// When an alert-code row applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Whatever the group.
    Always,
    /// Only for alerts in one of these PrtAlertGroupTC groups.
    InGroups(&'static [i32]),
    /// Only with training level fieldService(5) or severity critical(3).
    FieldServiceOrCritical,
}

/// One row of the alert-code table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRow {
    /// PrtAlertCodeTC value.
    pub code: i32,
    /// Its IANA-PRINTER-MIB name, used as detail when the device sends no
    /// description.
    pub name: &'static str,
    /// The item, or `None` for a known code that raises none.
    pub item: Option<AlertItem>,
    pub when: When,
}

const fn row(code: i32, name: &'static str, item: Option<AlertItem>, when: When) -> AlertRow {
    AlertRow {
        code,
        name,
        item,
        when,
    }
}

const fn known(code: i32, name: &'static str) -> AlertRow {
    row(code, name, None, When::Always)
}

use AlertItem as I;

/// PrtAlertCodeTC (IANA-PRINTER-MIB rev 2004-06-02) → item, first matching
/// row wins (so a group-specific row comes before the general one). Rows
/// with `item: None` are known codes that raise no item. Source: the table
/// in `shared/printer-signals.md`.
#[rustfmt::skip]
pub const ALERT_CODES: &[AlertRow] = &[
    // Service call: no dedicated code; unrecoverable failure always, a
    // recoverable one when it needs a technician or is critical. Any other
    // code with training fieldService(5) also falls back to a service call.
    known(1, "other"),
    known(2, "unknown"),
    row(30, "subunitUnrecoverableFailure", Some(I::ServiceCall), When::Always),
    row(29, "subunitRecoverableFailure", Some(I::ServiceCall), When::FieldServiceOrCritical),
    // Cover open: coverOpen(3), interlockOpen(5), doorOpen(501).
    row(3, "coverOpen", Some(I::CoverOpen), When::Always),
    known(4, "coverClosed"),
    row(5, "interlockOpen", Some(I::CoverOpen), When::Always),
    known(6, "interlockClosed"),
    row(501, "doorOpen", Some(I::CoverOpen), When::Always),
    known(502, "doorClosed"),
    // Firmware: configurationChange(7) only says something changed.
    known(7, "configurationChange"),
    // Paper jam: jam(8), in mediaPath(13) / input(8) / output(9) or any.
    row(8, "jam", Some(I::PaperJam), When::Always),
    // Tray error (a missing subunit in the input group is a missing tray).
    row(9, "subunitMissing", Some(I::TrayError), When::InGroups(&[group::INPUT])),
    row(801, "inputMediaTrayMissing", Some(I::TrayError), When::Always),
    row(811, "inputTrayPositionFailure", Some(I::TrayError), When::Always),
    row(812, "inputTrayElevationFailure", Some(I::TrayError), When::Always),
    row(813, "inputCannotFeedSizeSelected", Some(I::TrayError), When::Always),
    row(1301, "mediaPathMediaTrayMissing", Some(I::TrayError), When::Always),
    // Unit connection error: subunitMissing(9) / Offline(22) / Removed(26).
    row(9, "subunitMissing", Some(I::UnitConnectionError), When::Always),
    row(22, "subunitOffline", Some(I::UnitConnectionError), When::Always),
    row(26, "subunitRemoved", Some(I::UnitConnectionError), When::Always),
    // Paper out: inputMediaSupplyEmpty(808); subunitEmpty(13) of an input.
    row(808, "inputMediaSupplyEmpty", Some(I::PaperOut), When::Always),
    row(13, "subunitEmpty", Some(I::PaperOut), When::InGroups(&[group::INPUT])),
    known(13, "subunitEmpty"),
    // Document storage: subunitAlmostFull(14) of hrStorageTable(3).
    row(14, "subunitAlmostFull", Some(I::StorageAlmostFull), When::InGroups(&[group::HR_STORAGE])),
    known(14, "subunitAlmostFull"),
    // Toner.
    row(1101, "markerTonerEmpty", Some(I::TonerEmpty), When::Always),
    row(1104, "markerTonerAlmostEmpty", Some(I::TonerAlmostEmpty), When::Always),
    // Unit replacement approaching / imminent (life codes).
    row(10, "subunitLifeAlmostOver", Some(I::UnitReplacementSoon), When::Always),
    row(16, "subunitNearLimit", Some(I::UnitReplacementSoon), When::Always),
    row(1111, "markerOpcLifeAlmostOver", Some(I::UnitReplacementSoon), When::Always),
    row(1107, "markerWasteTonerReceptacleAlmostFull", Some(I::UnitReplacementSoon), When::Always),
    row(11, "subunitLifeOver", Some(I::UnitReplacementNow), When::Always),
    row(17, "subunitAtLimit", Some(I::UnitReplacementNow), When::Always),
    row(1112, "markerOpcLifeOver", Some(I::UnitReplacementNow), When::Always),
    row(1109, "markerWasteTonerReceptacleFull", Some(I::UnitReplacementNow), When::Always),
    // Known codes of the 2004 revision that raise no item.
    known(12, "subunitAlmostEmpty"),
    known(15, "subunitFull"),
    known(18, "subunitOpened"),
    known(19, "subunitClosed"),
    known(20, "subunitTurnedOn"),
    known(21, "subunitTurnedOff"),
    known(23, "subunitPowerSaver"),
    known(24, "subunitWarmingUp"),
    known(25, "subunitAdded"),
    known(27, "subunitResourceAdded"),
    known(28, "subunitResourceRemoved"),
    known(29, "subunitRecoverableFailure"),
    known(31, "subunitRecoverableStorageError"),
    known(32, "subunitUnrecoverableStorageError"),
    known(33, "subunitMotorFailure"),
    known(34, "subunitMemoryExhausted"),
    known(35, "subunitUnderTemperature"),
    known(36, "subunitOverTemperature"),
    known(37, "subunitTimingFailure"),
    known(38, "subunitThermistorFailure"),
    known(503, "poweredUp"),
    known(504, "poweredDown"),
    known(505, "printerNMSReset"),
    known(506, "printerManualReset"),
    known(507, "printerReadyToPrint"),
    known(802, "inputMediaSizeChange"),
    known(803, "inputMediaWeightChange"),
    known(804, "inputMediaTypeChange"),
    known(805, "inputMediaColorChange"),
    known(806, "inputMediaFormPartsChange"),
    known(807, "inputMediaSupplyLow"),
    known(809, "inputMediaChangeRequest"),
    known(810, "inputManualInputRequest"),
    known(901, "outputMediaTrayMissing"),
    known(902, "outputMediaTrayAlmostFull"),
    known(903, "outputMediaTrayFull"),
    known(904, "outputMailboxSelectFailure"),
    known(1001, "markerFuserUnderTemperature"),
    known(1002, "markerFuserOverTemperature"),
    known(1003, "markerFuserTimingFailure"),
    known(1004, "markerFuserThermistorFailure"),
    known(1005, "markerAdjustingPrintQuality"),
    known(1102, "markerInkEmpty"),
    known(1103, "markerPrintRibbonEmpty"),
    known(1105, "markerInkAlmostEmpty"),
    known(1106, "markerPrintRibbonAlmostEmpty"),
    known(1108, "markerWasteInkReceptacleAlmostFull"),
    known(1110, "markerWasteInkReceptacleFull"),
    known(1113, "markerDeveloperAlmostEmpty"),
    known(1114, "markerDeveloperEmpty"),
    known(1115, "markerTonerCartridgeMissing"),
    known(1302, "mediaPathMediaTrayAlmostFull"),
    known(1303, "mediaPathMediaTrayFull"),
    known(1304, "mediaPathCannotDuplexMediaSelected"),
];

/// Whether `code` is a PrtAlertCodeTC value this table knows (mapped or
/// deliberately ignored). An unknown code should be logged once.
pub fn is_known_alert_code(code: i32) -> bool {
    ALERT_CODES.iter().any(|r| r.code == code)
}

/// Where an alert is, from its group and group index: `Tray 2`,
/// `Output tray 1`, `Cover 1`, `Supply 3`, `Paper path 1`, `Storage 4`.
pub fn alert_place(group: i32, group_index: i32) -> Option<String> {
    if group_index <= 0 {
        return None;
    }
    let what = match group {
        group::INPUT => "Tray",
        group::OUTPUT => "Output tray",
        group::COVER => "Cover",
        group::MARKER => "Marker",
        group::MARKER_SUPPLIES => "Supply",
        group::MEDIA_PATH => "Paper path",
        group::HR_STORAGE => "Storage",
        group::HR_DEVICE => "Device",
        _ => return None,
    };
    Some(format!("{what} {group_index}"))
}

fn row_applies(row: &AlertRow, alert: &PrtAlert) -> bool {
    match row.when {
        When::Always => true,
        When::InGroups(groups) => groups.contains(&alert.group),
        When::FieldServiceOrCritical => {
            alert.training == TRAINING_FIELD_SERVICE || alert.severity == SEVERITY_CRITICAL
        }
    }
}

/// The item and detail text of one prtAlertTable row, or `None` when the
/// code raises no item (or is unknown: check [`is_known_alert_code`]).
///
/// The detail names the place (`Tray 2`) and the device's description:
/// `Tray 2: Paper tray 2 is empty`; without a description, the code's name.
/// An otherwise unmapped alert (also an unknown code) with training level
/// fieldService(5) is a service call.
pub fn map_alert(alert: &PrtAlert) -> Option<(AlertItem, String)> {
    let rows = ALERT_CODES.iter().filter(|r| r.code == alert.code);
    let hit = rows.clone().find(|r| row_applies(r, alert));
    let name = rows
        .clone()
        .next()
        .map(|r| r.name.to_owned())
        .unwrap_or_else(|| format!("alert code {}", alert.code));
    let item = match hit.and_then(|r| r.item) {
        Some(item) => item,
        None if alert.training == TRAINING_FIELD_SERVICE => AlertItem::ServiceCall,
        None => return None,
    };
    let desc = alert.description.trim();
    let detail = match (alert_place(alert.group, alert.group_index), desc) {
        (Some(place), "") => format!("{place}: {name}"),
        (Some(place), d) => format!("{place}: {d}"),
        (None, "") => name,
        (None, d) => d.to_owned(),
    };
    Some((item, detail))
}

// ---------------------------------------------------------------------------
// HOST-RESOURCES-MIB (RFC 2790).
// ---------------------------------------------------------------------------

/// One hrPrinterDetectedErrorState bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorBit {
    /// Bit number: bit 0 is 0x80 of the first octet.
    pub bit: u8,
    /// RFC 2790 name.
    pub name: &'static str,
    pub item: Option<AlertItem>,
    /// CUPS (snmp-supplies.c) calls the bit unreliable: it only counts when
    /// the caller trusts it.
    pub unreliable: bool,
}

const fn bit(bit: u8, name: &'static str, item: Option<AlertItem>, unreliable: bool) -> ErrorBit {
    ErrorBit {
        bit,
        name,
        item,
        unreliable,
    }
}

/// hrPrinterDetectedErrorState bits (RFC 2790) → item.
/// `overduePreventMaint(14)` is mapped to "approaching": the life-over codes
/// and unit levels say "imminent".
pub const ERROR_STATE_BITS: [ErrorBit; 15] = [
    bit(0, "lowPaper", None, false),
    bit(1, "noPaper", Some(I::PaperOut), false),
    bit(2, "lowToner", Some(I::TonerAlmostEmpty), false),
    bit(3, "noToner", Some(I::TonerEmpty), false),
    bit(4, "doorOpen", Some(I::CoverOpen), false),
    bit(5, "jammed", Some(I::PaperJam), false),
    bit(6, "offline", Some(I::UnitConnectionError), true),
    bit(7, "serviceRequested", Some(I::ServiceCall), true),
    bit(8, "inputTrayMissing", Some(I::TrayError), false),
    bit(9, "outputTrayMissing", None, false),
    bit(10, "markerSupplyMissing", None, false),
    bit(11, "outputNearFull", None, false),
    bit(12, "outputFull", None, false),
    bit(13, "inputTrayEmpty", Some(I::PaperOut), false),
    bit(
        14,
        "overduePreventMaint",
        Some(I::UnitReplacementSoon),
        false,
    ),
];

/// The set bit numbers of an hrPrinterDetectedErrorState value: bit 0 is the
/// most significant bit of the first octet; octets a device leaves out are
/// zero (a one-octet value carries bits 0–7 only).
pub fn error_state_bits(octets: &[u8]) -> Vec<u32> {
    let mut bits = Vec::new();
    for (i, octet) in octets.iter().enumerate() {
        for b in 0..8u32 {
            if octet & (0x80 >> b) != 0 {
                bits.push(i as u32 * 8 + b);
            }
        }
    }
    bits
}

/// The items an hrPrinterDetectedErrorState value raises, with the bit names
/// as detail. `trust_unreliable` lets `offline` / `serviceRequested` count.
/// Bits beyond the table (15 and up) are ignored.
pub fn error_state_items(octets: &[u8], trust_unreliable: bool) -> BTreeMap<AlertItem, String> {
    let mut out = BTreeMap::new();
    for b in error_state_bits(octets) {
        let Some(row) = ERROR_STATE_BITS.get(b as usize) else {
            continue;
        };
        if row.unreliable && !trust_unreliable {
            continue;
        }
        if let Some(item) = row.item {
            merge_condition(&mut out, item, row.name);
        }
    }
    out
}

/// hrDeviceStatus (RFC 2790).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Unknown = 1,
    Running = 2,
    Warning = 3,
    Testing = 4,
    Down = 5,
}

impl DeviceStatus {
    /// From the integer; out-of-range values are `Unknown`.
    pub fn from_code(code: i32) -> DeviceStatus {
        match code {
            2 => DeviceStatus::Running,
            3 => DeviceStatus::Warning,
            4 => DeviceStatus::Testing,
            5 => DeviceStatus::Down,
            _ => DeviceStatus::Unknown,
        }
    }
}

/// hrPrinterStatus (RFC 2790).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrinterStatus {
    Other = 1,
    Unknown = 2,
    Idle = 3,
    Printing = 4,
    Warmup = 5,
}

impl PrinterStatus {
    /// From the integer; out-of-range values are `Unknown`.
    pub fn from_code(code: i32) -> PrinterStatus {
        match code {
            1 => PrinterStatus::Other,
            3 => PrinterStatus::Idle,
            4 => PrinterStatus::Printing,
            5 => PrinterStatus::Warmup,
            _ => PrinterStatus::Unknown,
        }
    }

    /// A warming-up printer cannot be judged yet: a source may answer
    /// `SourceError::NotReady` instead of a reading.
    pub fn is_warming_up(self) -> bool {
        self == PrinterStatus::Warmup
    }
}

/// Context from hrDeviceStatus. The printer's own hrDevice row `down(5)`
/// is a service call, unless an error-severity item in `active` already
/// explains it (a jam also makes a printer "down"); another device of the
/// printer (a finisher, a tray unit: `printer == false`) that is down is a
/// unit connection error named by its hrDeviceDescr.
pub fn device_status_item(
    status: DeviceStatus,
    printer: bool,
    descr: &str,
    active: &BTreeMap<AlertItem, String>,
) -> Option<(AlertItem, String)> {
    if status != DeviceStatus::Down {
        return None;
    }
    let descr = descr.trim();
    let detail = if descr.is_empty() {
        "device is down (hrDeviceStatus down)".to_owned()
    } else {
        format!("{descr} is down (hrDeviceStatus down)")
    };
    if printer {
        let explained = active.keys().any(|i| i.severity() == Severity::Error);
        (!explained).then_some((AlertItem::ServiceCall, detail))
    } else {
        Some((AlertItem::UnitConnectionError, detail))
    }
}

// ---------------------------------------------------------------------------
// Supplies: prtMarkerSupplies (RFC 3805) and IPP marker-levels.
// ---------------------------------------------------------------------------

/// A supply's level, from SNMP level ÷ max capacity or IPP marker-levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplyLevel {
    /// 0–100 percent. A non-zero level is at least 1 %, never "empty".
    Percent(u8),
    /// -1: other (SNMP) / unavailable (IPP).
    Other,
    /// -2: unknown; also any other negative value or a level without a
    /// usable maximum capacity.
    Unknown,
    /// -3: some remains (SNMP "at least one unit", IPP "not empty").
    SomeRemaining,
}

fn special_level(level: i32) -> Option<SupplyLevel> {
    match level {
        -1 => Some(SupplyLevel::Other),
        -2 => Some(SupplyLevel::Unknown),
        -3 => Some(SupplyLevel::SomeRemaining),
        l if l < 0 => Some(SupplyLevel::Unknown),
        _ => None,
    }
}

/// prtMarkerSuppliesLevel ÷ prtMarkerSuppliesMaxCapacity as a level. For a
/// receptacle (waste toner) RFC 3805 reports the remaining space, so low
/// means "almost full" there too. Level 0 is empty whatever the capacity.
pub fn snmp_supply_level(level: i32, max_capacity: i32) -> SupplyLevel {
    if let Some(special) = special_level(level) {
        return special;
    }
    if level == 0 {
        return SupplyLevel::Percent(0);
    }
    if max_capacity <= 0 {
        return SupplyLevel::Unknown;
    }
    let pct = (i64::from(level) * 100 / i64::from(max_capacity)).clamp(1, 100);
    SupplyLevel::Percent(pct as u8)
}

/// An IPP marker-levels value (already a percentage; -1 unavailable,
/// -2 unknown, -3 not empty).
pub fn ipp_marker_level(level: i32) -> SupplyLevel {
    match special_level(level) {
        Some(special) => special,
        None => SupplyLevel::Percent(level.min(100) as u8),
    }
}

/// What a supply is, as far as the items care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SupplyKind {
    Toner,
    /// A replaceable unit: OPC drum, developer, fuser, cleaner, transfer
    /// unit, waste toner receptacle.
    Unit,
    Other,
}

impl SupplyKind {
    /// From prtMarkerSuppliesType (PrtMarkerSuppliesTypeTC): toner(3),
    /// tonerCartridge(21); wasteToner(4), opc(9), developer(10), fuser(15),
    /// cleanerUnit(18), transferUnit(20).
    pub fn from_snmp_type(supply_type: i32) -> SupplyKind {
        match supply_type {
            3 | 21 => SupplyKind::Toner,
            4 | 9 | 10 | 15 | 18 | 20 => SupplyKind::Unit,
            _ => SupplyKind::Other,
        }
    }

    /// From an IPP marker-types keyword (the same kinds, PWG spelling).
    pub fn from_ipp_marker_type(keyword: &str) -> SupplyKind {
        match keyword {
            "toner" | "toner-cartridge" => SupplyKind::Toner,
            "waste-toner" | "opc" | "developer" | "fuser" | "cleaner-unit" | "transfer-unit" => {
                SupplyKind::Unit
            }
            _ => SupplyKind::Other,
        }
    }
}

/// The levels at which supply items are raised; all "at or below" except
/// the user's threshold, which is "below" like the simulated printer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupplyThresholds {
    /// `toner_low_level` while the toner is below this (the configured
    /// `toner_threshold_percent`).
    pub toner_low_level_percent: u8,
    /// `toner_almost_empty` at or below this (IPP: the marker-low-levels
    /// value when the device gives one).
    pub toner_almost_empty_percent: u8,
    /// `unit_replacement_soon` at or below this.
    pub unit_soon_percent: u8,
    /// `unit_replacement_now` at or below this.
    pub unit_now_percent: u8,
}

impl SupplyThresholds {
    /// Defaults with the user's toner threshold.
    pub fn with_toner_threshold(toner_low_level_percent: u8) -> SupplyThresholds {
        SupplyThresholds {
            toner_low_level_percent,
            toner_almost_empty_percent: 5,
            unit_soon_percent: 10,
            unit_now_percent: 0,
        }
    }
}

/// Whether a toner level is below the user's threshold: `None` when the
/// level cannot tell (-1/-2/-3), in which case the caller keeps the previous
/// state rather than flapping.
pub fn toner_below_threshold(level: SupplyLevel, threshold_percent: u8) -> Option<bool> {
    match level {
        SupplyLevel::Percent(p) => Some(p < threshold_percent),
        _ => None,
    }
}

/// The items one supply raises, with `name: N%` (or the special level) as
/// detail. Special levels raise nothing.
pub fn supply_items(
    kind: SupplyKind,
    name: &str,
    level: SupplyLevel,
    th: &SupplyThresholds,
) -> Vec<(AlertItem, String)> {
    let SupplyLevel::Percent(p) = level else {
        return Vec::new();
    };
    let name = if name.trim().is_empty() {
        "Supply"
    } else {
        name.trim()
    };
    let detail = format!("{name}: {p}%");
    let mut out = Vec::new();
    match kind {
        SupplyKind::Toner => {
            if p == 0 {
                out.push((AlertItem::TonerEmpty, detail.clone()));
            } else if p <= th.toner_almost_empty_percent {
                out.push((AlertItem::TonerAlmostEmpty, detail.clone()));
            }
            if toner_below_threshold(level, th.toner_low_level_percent) == Some(true) {
                out.push((
                    AlertItem::TonerLowLevel,
                    format!(
                        "{name} at {p}% (below the selected level of {}%)",
                        th.toner_low_level_percent
                    ),
                ));
            }
        }
        SupplyKind::Unit => {
            if p <= th.unit_now_percent {
                out.push((AlertItem::UnitReplacementNow, detail));
            } else if p <= th.unit_soon_percent {
                out.push((AlertItem::UnitReplacementSoon, detail));
            }
        }
        SupplyKind::Other => {}
    }
    out
}

// ---------------------------------------------------------------------------
// Input trays, covers, document storage (RFC 3805 / RFC 2790 tables).
// ---------------------------------------------------------------------------

/// A tray's name: prtInputName, or `Tray N`.
fn tray_name(index: i32, name: &str) -> String {
    match name.trim() {
        "" => format!("Tray {index}"),
        n => n.to_owned(),
    }
}

/// An input tray (prtInputTable 43.8.2.1) reporting prtInputCurrentLevel 0
/// is out of paper. -1 (other), -2 (unknown) and -3 (some left) raise
/// nothing, nor does a tray with no capacity (prtInputMaxCapacity 0: a
/// manual feed slot).
pub fn input_tray_item(
    index: i32,
    name: &str,
    current_level: i32,
    max_capacity: i32,
) -> Option<(AlertItem, String)> {
    (current_level == 0 && max_capacity != 0).then(|| {
        (
            AlertItem::PaperOut,
            format!("{}: empty", tray_name(index, name)),
        )
    })
}

/// prtCoverStatus coverOpen(3) / interlockOpen(5) (PrtCoverStatusTC).
pub fn cover_item(index: i32, description: &str, status: i32) -> Option<(AlertItem, String)> {
    let what = match status {
        3 => "open",
        5 => "interlock open",
        _ => return None,
    };
    let name = match description.trim() {
        "" => format!("Cover {index}"),
        d => d.to_owned(),
    };
    Some((AlertItem::CoverOpen, format!("{name}: {what}")))
}

/// Document storage from an hrStorage row (hrStorageSize / hrStorageUsed,
/// both in allocation units): `storage_almost_full` at or above
/// `threshold_percent` used. No standard signal says "nearly full"
/// (printer-signals.md), so the threshold is the agent's.
pub fn storage_item(
    description: &str,
    size: i64,
    used: i64,
    threshold_percent: u8,
) -> Option<(AlertItem, String)> {
    if size <= 0 || used < 0 {
        return None;
    }
    let pct = (used.min(size) * 100 / size) as u8;
    (pct >= threshold_percent).then(|| {
        let name = match description.trim() {
            "" => "Storage",
            d => d,
        };
        (AlertItem::StorageAlmostFull, format!("{name}: {pct}% used"))
    })
}

// ---------------------------------------------------------------------------
// IPP printer-state-reasons (RFC 8011, PWG 5100.9).
// ---------------------------------------------------------------------------

/// printer-state stopped(5) (RFC 8011).
pub const IPP_PRINTER_STOPPED: i32 = 5;

/// A keyword without its `-report` / `-warning` / `-error` suffix.
pub fn strip_reason_suffix(keyword: &str) -> &str {
    ["-report", "-warning", "-error"]
        .iter()
        .find_map(|s| keyword.strip_suffix(s))
        .unwrap_or(keyword)
}

/// IPP printer-state-reasons keyword (suffix stripped) → item. Source: the
/// table in `shared/printer-signals.md`.
pub const IPP_REASONS: &[(&str, AlertItem)] = &[
    ("toner-empty", I::TonerEmpty),
    ("marker-supply-empty", I::TonerEmpty),
    ("toner-low", I::TonerAlmostEmpty),
    ("marker-supply-low", I::TonerAlmostEmpty),
    ("media-jam", I::PaperJam),
    ("media-path-jam", I::PaperJam),
    ("input-media-tray-jam", I::PaperJam),
    ("output-media-tray-jam", I::PaperJam),
    ("cover-open", I::CoverOpen),
    ("door-open", I::CoverOpen),
    ("interlock-open", I::CoverOpen),
    ("media-empty", I::PaperOut),
    ("media-needed", I::PaperOut),
    ("input-tray-missing", I::TrayError),
    ("input-tray-position-failure", I::TrayError),
    ("input-tray-elevation-failure", I::TrayError),
    ("input-cannot-feed-size-selected", I::TrayError),
    ("input-media-tray-failure", I::TrayError),
    ("subunit-missing", I::UnitConnectionError),
    ("subunit-offline", I::UnitConnectionError),
    ("spool-area-full", I::StorageAlmostFull),
    ("opc-near-eol", I::UnitReplacementSoon),
    ("cleaner-life-almost-over", I::UnitReplacementSoon),
    ("subunit-life-almost-over", I::UnitReplacementSoon),
    ("marker-waste-almost-full", I::UnitReplacementSoon),
    ("opc-life-over", I::UnitReplacementNow),
    ("cleaner-life-over", I::UnitReplacementNow),
    ("subunit-life-over", I::UnitReplacementNow),
    ("marker-waste-full", I::UnitReplacementNow),
];

/// RFC 8011 base keywords that raise no item by themselves (`other` is a
/// service call only while the printer is stopped).
pub const IPP_KNOWN_UNMAPPED: &[&str] = &[
    "none",
    "other",
    "moving-to-paused",
    "paused",
    "shutdown",
    "connecting-to-device",
    "timed-out",
    "stopping",
    "stopped-partly",
    "media-low",
    "output-tray-missing",
    "output-area-almost-full",
    "output-area-full",
    "fuser-over-temp",
    "fuser-under-temp",
    "developer-low",
    "developer-empty",
    "interpreter-resource-unavailable",
];

/// The item of one printer-state-reasons keyword, standard table first,
/// then `vendor`. `none` and unknown keywords give `None`.
pub fn map_ipp_reason(keyword: &str, vendor: &VendorMap) -> Option<AlertItem> {
    let kw = strip_reason_suffix(keyword);
    IPP_REASONS
        .iter()
        .find(|(k, _)| *k == kw)
        .map(|(_, item)| *item)
        .or_else(|| vendor.ipp_keyword(keyword))
}

/// What a printer-state-reasons value maps to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IppMapped {
    pub conditions: BTreeMap<AlertItem, String>,
    /// Keywords neither table knows (suffix stripped): log each once.
    pub unknown: Vec<String>,
}

/// Maps a whole printer-state-reasons value; the detail is the keyword(s).
/// `other` while `printer_state` is stopped(5) is a service call.
pub fn map_ipp_reasons<'a>(
    reasons: impl IntoIterator<Item = &'a str>,
    printer_state: i32,
    vendor: &VendorMap,
) -> IppMapped {
    let mut out = IppMapped::default();
    for raw in reasons {
        let kw = strip_reason_suffix(raw.trim());
        if let Some(item) = map_ipp_reason(raw.trim(), vendor) {
            merge_condition(&mut out.conditions, item, kw);
        } else if kw == "other" && printer_state == IPP_PRINTER_STOPPED {
            merge_condition(
                &mut out.conditions,
                AlertItem::ServiceCall,
                "other (stopped)",
            );
        } else if !kw.is_empty() && !IPP_KNOWN_UNMAPPED.contains(&kw) {
            out.unknown.push(kw.to_owned());
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Firmware, vendor extensions, unknown codes.
// ---------------------------------------------------------------------------

/// Remembers a device's last firmware version: a change raises
/// `firmware_update` (no standard signal carries it; printer-signals.md).
/// The item is active in the one reading that sees the change, so the agent
/// publishes one occurred and, at the next reading, one recovered event.
///
/// The agent keeps it in the device's stored record, so a version that
/// changed while the agent was down is still noticed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FirmwareWatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<String>,
}

impl FirmwareWatch {
    pub fn new() -> FirmwareWatch {
        FirmwareWatch::default()
    }

    /// The last version seen.
    pub fn last(&self) -> Option<&str> {
        self.last.as_deref()
    }

    /// Records `version`; `Some` when it differs from a previously seen one.
    /// The first version and empty versions (not reported) raise nothing.
    pub fn observe(&mut self, version: &str) -> Option<(AlertItem, String)> {
        let version = version.trim();
        if version.is_empty() {
            return None;
        }
        let previous = self.last.replace(version.to_owned())?;
        (previous != version).then(|| {
            (
                AlertItem::FirmwareUpdate,
                format!("firmware changed from {previous} to {version}"),
            )
        })
    }
}

/// A vendor-extension map from config: a vendor OID (active while its value
/// is non-zero; an instance below a configured OID matches it too) or an IPP
/// keyword → item. This is how the items without a standard signal
/// (`proxy_auth_error`, `access_attack`, …) can come from a real device.
/// The config (`printwatch_config::vendor`) checks and classifies the keys;
/// the agent fills the map with [`VendorMap::insert_oid`] and
/// [`VendorMap::insert_ipp_keyword`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorMap {
    oids: BTreeMap<String, AlertItem>,
    keywords: BTreeMap<String, AlertItem>,
}

fn normalise_oid(oid: &str) -> Option<String> {
    let oid = oid.trim().trim_start_matches('.');
    let ok = !oid.is_empty()
        && oid
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| oid.to_owned())
}

impl VendorMap {
    pub fn new() -> VendorMap {
        VendorMap::default()
    }

    /// Maps `oid` (leading dot optional) to `item`; ignores a malformed OID.
    pub fn insert_oid(&mut self, oid: &str, item: AlertItem) {
        if let Some(oid) = normalise_oid(oid) {
            self.oids.insert(oid, item);
        }
    }

    /// Maps an IPP keyword (suffix stripped) to `item`.
    pub fn insert_ipp_keyword(&mut self, keyword: &str, item: AlertItem) {
        self.keywords
            .insert(strip_reason_suffix(keyword.trim()).to_owned(), item);
    }

    /// The configured OIDs, for a source to poll.
    pub fn oids(&self) -> impl Iterator<Item = (&str, AlertItem)> {
        self.oids.iter().map(|(o, i)| (o.as_str(), *i))
    }

    /// The item of `oid`: exact, or the longest configured OID it lies under.
    pub fn oid(&self, oid: &str) -> Option<AlertItem> {
        let oid = normalise_oid(oid)?;
        self.oids
            .iter()
            .filter(|(k, _)| {
                oid == **k || (oid.starts_with(k.as_str()) && oid.as_bytes()[k.len()] == b'.')
            })
            .max_by_key(|(k, _)| k.len())
            .map(|(_, i)| *i)
    }

    /// The item of an IPP keyword (suffix stripped).
    pub fn ipp_keyword(&self, keyword: &str) -> Option<AlertItem> {
        self.keywords
            .get(strip_reason_suffix(keyword.trim()))
            .copied()
    }

    /// The item a polled vendor OID raises with `value`: `Some` while the
    /// value is non-zero, with `oid = value` as detail.
    pub fn oid_value_item(&self, oid: &str, value: i64) -> Option<(AlertItem, String)> {
        let item = self.oid(oid)?;
        (value != 0).then(|| (item, format!("{} = {value}", oid.trim_start_matches('.'))))
    }

    pub fn is_empty(&self) -> bool {
        self.oids.is_empty() && self.keywords.is_empty()
    }
}

/// Codes or keywords already seen unknown, so each is logged once:
/// `if !is_known_alert_code(c) && unknown.is_new(c) { warn!(…) }`.
#[derive(Debug, Clone)]
pub struct Unknown<K> {
    seen: HashSet<K>,
}

impl<K> Default for Unknown<K> {
    fn default() -> Self {
        Unknown {
            seen: HashSet::new(),
        }
    }
}

impl<K: Eq + Hash> Unknown<K> {
    pub fn new() -> Unknown<K> {
        Unknown::default()
    }

    /// `true` the first time `key` is seen.
    pub fn is_new(&mut self, key: K) -> bool {
        self.seen.insert(key)
    }

    /// How many distinct unknown keys were seen.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(code: i32, group: i32, group_index: i32, description: &str) -> PrtAlert {
        PrtAlert {
            severity: 4,
            training: 4,
            group,
            group_index,
            location: -1,
            code,
            description: description.to_owned(),
        }
    }

    #[test]
    fn every_alert_code_row_maps_as_the_table_says() {
        // (code, group, group index, expected item, expected detail)
        #[rustfmt::skip]
        let cases: &[(i32, i32, i32, Option<AlertItem>, &str)] = &[
            (30, 5, -1, Some(I::ServiceCall), "subunitUnrecoverableFailure"),
            (3, 6, 1, Some(I::CoverOpen), "Cover 1: coverOpen"),
            (5, 6, 2, Some(I::CoverOpen), "Cover 2: interlockOpen"),
            (501, 6, -1, Some(I::CoverOpen), "doorOpen"),
            (8, 13, 1, Some(I::PaperJam), "Paper path 1: jam"),
            (8, 8, 3, Some(I::PaperJam), "Tray 3: jam"),
            (8, 9, 1, Some(I::PaperJam), "Output tray 1: jam"),
            (9, 8, 2, Some(I::TrayError), "Tray 2: subunitMissing"),
            (801, 8, 2, Some(I::TrayError), "Tray 2: inputMediaTrayMissing"),
            (811, 8, 1, Some(I::TrayError), "Tray 1: inputTrayPositionFailure"),
            (812, 8, 4, Some(I::TrayError), "Tray 4: inputTrayElevationFailure"),
            (813, 8, 5, Some(I::TrayError), "Tray 5: inputCannotFeedSizeSelected"),
            (1301, 13, 1, Some(I::TrayError), "Paper path 1: mediaPathMediaTrayMissing"),
            (9, 5, -1, Some(I::UnitConnectionError), "subunitMissing"),
            (22, 4, 3, Some(I::UnitConnectionError), "Device 3: subunitOffline"),
            (26, 5, -1, Some(I::UnitConnectionError), "subunitRemoved"),
            (808, 8, 2, Some(I::PaperOut), "Tray 2: inputMediaSupplyEmpty"),
            (13, 8, 1, Some(I::PaperOut), "Tray 1: subunitEmpty"),
            (13, 11, 1, None, ""),
            (14, 3, 2, Some(I::StorageAlmostFull), "Storage 2: subunitAlmostFull"),
            (14, 9, 1, None, ""),
            (1101, 11, 1, Some(I::TonerEmpty), "Supply 1: markerTonerEmpty"),
            (1104, 11, 1, Some(I::TonerAlmostEmpty), "Supply 1: markerTonerAlmostEmpty"),
            (10, 11, 2, Some(I::UnitReplacementSoon), "Supply 2: subunitLifeAlmostOver"),
            (16, 5, -1, Some(I::UnitReplacementSoon), "subunitNearLimit"),
            (1111, 11, 3, Some(I::UnitReplacementSoon), "Supply 3: markerOpcLifeAlmostOver"),
            (1107, 11, 4, Some(I::UnitReplacementSoon), "Supply 4: markerWasteTonerReceptacleAlmostFull"),
            (11, 11, 2, Some(I::UnitReplacementNow), "Supply 2: subunitLifeOver"),
            (17, 5, -1, Some(I::UnitReplacementNow), "subunitAtLimit"),
            (1112, 11, 3, Some(I::UnitReplacementNow), "Supply 3: markerOpcLifeOver"),
            (1109, 11, 4, Some(I::UnitReplacementNow), "Supply 4: markerWasteTonerReceptacleFull"),
            (7, 5, -1, None, ""),
            (4, 6, 1, None, ""),
            (503, 5, -1, None, ""),
            (29, 5, -1, None, ""),
            (1, 5, -1, None, ""),
        ];
        for &(code, group, index, item, detail) in cases {
            let got = map_alert(&alert(code, group, index, ""));
            assert_eq!(
                got,
                item.map(|i| (i, detail.to_owned())),
                "code {code} group {group}"
            );
            assert!(is_known_alert_code(code), "{code}");
        }
        // Every mapped row of the table is exercised above.
        for row in ALERT_CODES
            .iter()
            .filter(|r| r.item.is_some() && r.when != When::FieldServiceOrCritical)
        {
            assert!(
                cases.iter().any(|c| c.0 == row.code && c.3 == row.item),
                "row {} untested",
                row.code
            );
        }
    }

    #[test]
    fn the_description_is_the_detail_and_the_tray_comes_first() {
        assert_eq!(
            map_alert(&alert(808, 8, 2, " Tray 2 is empty ")),
            Some((I::PaperOut, "Tray 2: Tray 2 is empty".into()))
        );
        assert_eq!(
            map_alert(&alert(8, 5, -1, "Jam in the fuser")),
            Some((I::PaperJam, "Jam in the fuser".into()))
        );
    }

    #[test]
    fn field_service_and_critical_make_a_service_call() {
        let mut a = alert(29, 5, -1, "SC542");
        assert_eq!(map_alert(&a), None);
        a.training = TRAINING_FIELD_SERVICE;
        assert_eq!(map_alert(&a), Some((I::ServiceCall, "SC542".into())));
        a.training = 4;
        a.severity = SEVERITY_CRITICAL;
        assert_eq!(map_alert(&a), Some((I::ServiceCall, "SC542".into())));
        // other(1) and even an unknown code with fieldService training.
        let mut o = alert(1, 5, -1, "");
        o.training = TRAINING_FIELD_SERVICE;
        assert_eq!(map_alert(&o), Some((I::ServiceCall, "other".into())));
        let mut u = alert(4242, 5, -1, "");
        u.training = TRAINING_FIELD_SERVICE;
        assert_eq!(
            map_alert(&u),
            Some((I::ServiceCall, "alert code 4242".into()))
        );
        // A mapped code keeps its item even with fieldService training.
        let mut life = alert(1112, 11, 1, "");
        life.training = TRAINING_FIELD_SERVICE;
        assert_eq!(map_alert(&life).map(|m| m.0), Some(I::UnitReplacementNow));
    }

    #[test]
    fn unknown_codes_are_tolerated_and_reported_once() {
        assert_eq!(map_alert(&alert(1116, 11, 1, "cleaner missing")), None);
        assert!(!is_known_alert_code(1116));
        let mut unknown = Unknown::new();
        assert!(unknown.is_new(1116));
        assert!(!unknown.is_new(1116));
        assert!(unknown.is_new(1117));
        assert_eq!(unknown.len(), 2);
        let mut kw: Unknown<String> = Unknown::default();
        assert!(kw.is_empty());
        assert!(kw.is_new("toner-glitter".into()));
        assert!(!kw.is_new("toner-glitter".into()));
    }

    #[test]
    fn error_state_bit_order_msb_first_one_and_two_octets() {
        assert_eq!(error_state_bits(&[0x80]), vec![0]);
        assert_eq!(error_state_bits(&[0x01]), vec![7]);
        assert_eq!(error_state_bits(&[0x00, 0x80]), vec![8]);
        assert_eq!(error_state_bits(&[0x00, 0x02]), vec![14]);
        assert_eq!(error_state_bits(&[0x44, 0x04]), vec![1, 5, 13]);
        assert_eq!(error_state_bits(&[]), Vec::<u32>::new());
        // One octet: noPaper (0x40) is bit 1, not bit 9 or 14.
        let one = error_state_items(&[0x40], false);
        assert_eq!(one, BTreeMap::from([(I::PaperOut, "noPaper".to_owned())]));
        // The same bit with a second octet is the same item.
        assert_eq!(error_state_items(&[0x40, 0x00], false), one);
        // noPaper + inputTrayEmpty merge into one paper-out condition.
        assert_eq!(
            error_state_items(&[0x40, 0x04], false),
            BTreeMap::from([(I::PaperOut, "noPaper; inputTrayEmpty".to_owned())])
        );
    }

    #[test]
    fn every_error_state_bit_maps_as_the_table_says() {
        for row in ERROR_STATE_BITS {
            let octets = {
                let mut v = [0u8; 2];
                v[row.bit as usize / 8] = 0x80 >> (row.bit % 8);
                v
            };
            let got = error_state_items(&octets, true);
            match row.item {
                Some(item) => assert_eq!(
                    got,
                    BTreeMap::from([(item, row.name.to_owned())]),
                    "bit {}",
                    row.bit
                ),
                None => assert!(got.is_empty(), "bit {}", row.bit),
            }
            if row.unreliable {
                assert!(error_state_items(&octets, false).is_empty());
            }
        }
        let expected = [
            (1, Some(I::PaperOut)),
            (2, Some(I::TonerAlmostEmpty)),
            (3, Some(I::TonerEmpty)),
            (4, Some(I::CoverOpen)),
            (5, Some(I::PaperJam)),
            (6, Some(I::UnitConnectionError)),
            (7, Some(I::ServiceCall)),
            (8, Some(I::TrayError)),
            (13, Some(I::PaperOut)),
            (14, Some(I::UnitReplacementSoon)),
            (0, None),
            (12, None),
        ];
        for (b, item) in expected {
            assert_eq!(ERROR_STATE_BITS[b].item, item, "bit {b}");
            assert_eq!(ERROR_STATE_BITS[b].bit as usize, b);
        }
        // Bit 15 and beyond are not in RFC 2790: ignored.
        assert!(error_state_items(&[0x00, 0x01, 0xff], true).is_empty());
    }

    #[test]
    fn device_and_printer_status_give_context() {
        assert_eq!(DeviceStatus::from_code(5), DeviceStatus::Down);
        assert_eq!(DeviceStatus::from_code(9), DeviceStatus::Unknown);
        assert!(PrinterStatus::from_code(5).is_warming_up());
        assert!(!PrinterStatus::from_code(3).is_warming_up());
        assert_eq!(PrinterStatus::from_code(0), PrinterStatus::Unknown);
        let none = BTreeMap::new();
        assert_eq!(
            device_status_item(DeviceStatus::Down, true, "MP C3004", &none),
            Some((
                I::ServiceCall,
                "MP C3004 is down (hrDeviceStatus down)".into()
            ))
        );
        let jam = BTreeMap::from([(I::PaperJam, "jam".to_owned())]);
        assert_eq!(device_status_item(DeviceStatus::Down, true, "", &jam), None);
        let warn = BTreeMap::from([(I::TonerAlmostEmpty, "low".to_owned())]);
        assert_eq!(
            device_status_item(DeviceStatus::Down, true, "", &warn).map(|m| m.0),
            Some(I::ServiceCall)
        );
        assert_eq!(
            device_status_item(DeviceStatus::Down, false, "Finisher", &jam),
            Some((
                I::UnitConnectionError,
                "Finisher is down (hrDeviceStatus down)".into()
            ))
        );
        assert_eq!(
            device_status_item(DeviceStatus::Warning, true, "", &none),
            None
        );
    }

    #[test]
    fn supply_levels_and_special_values() {
        assert_eq!(snmp_supply_level(50, 200), SupplyLevel::Percent(25));
        assert_eq!(snmp_supply_level(200, 200), SupplyLevel::Percent(100));
        assert_eq!(snmp_supply_level(300, 200), SupplyLevel::Percent(100));
        assert_eq!(snmp_supply_level(0, 200), SupplyLevel::Percent(0));
        assert_eq!(snmp_supply_level(0, -2), SupplyLevel::Percent(0));
        // A little left is never "empty".
        assert_eq!(snmp_supply_level(1, 1000), SupplyLevel::Percent(1));
        assert_eq!(snmp_supply_level(-1, 100), SupplyLevel::Other);
        assert_eq!(snmp_supply_level(-2, 100), SupplyLevel::Unknown);
        assert_eq!(snmp_supply_level(-3, 100), SupplyLevel::SomeRemaining);
        assert_eq!(snmp_supply_level(-7, 100), SupplyLevel::Unknown);
        assert_eq!(snmp_supply_level(40, -2), SupplyLevel::Unknown);
        assert_eq!(snmp_supply_level(40, 0), SupplyLevel::Unknown);
        assert_eq!(ipp_marker_level(42), SupplyLevel::Percent(42));
        assert_eq!(ipp_marker_level(0), SupplyLevel::Percent(0));
        assert_eq!(ipp_marker_level(-1), SupplyLevel::Other);
        assert_eq!(ipp_marker_level(-2), SupplyLevel::Unknown);
        assert_eq!(ipp_marker_level(-3), SupplyLevel::SomeRemaining);
        let th = SupplyThresholds::with_toner_threshold(20);
        for special in [-1, -2, -3] {
            let level = snmp_supply_level(special, 100);
            assert!(supply_items(SupplyKind::Toner, "Black", level, &th).is_empty());
            assert!(supply_items(SupplyKind::Unit, "Drum", level, &th).is_empty());
            assert_eq!(toner_below_threshold(level, 20), None);
        }
    }

    #[test]
    fn supply_kinds() {
        for t in [3, 21] {
            assert_eq!(SupplyKind::from_snmp_type(t), SupplyKind::Toner);
        }
        for t in [4, 9, 10, 15, 18, 20] {
            assert_eq!(SupplyKind::from_snmp_type(t), SupplyKind::Unit);
        }
        for t in [1, 2, 5, 32] {
            assert_eq!(SupplyKind::from_snmp_type(t), SupplyKind::Other);
        }
        assert_eq!(SupplyKind::from_ipp_marker_type("toner"), SupplyKind::Toner);
        assert_eq!(
            SupplyKind::from_ipp_marker_type("toner-cartridge"),
            SupplyKind::Toner
        );
        assert_eq!(SupplyKind::from_ipp_marker_type("opc"), SupplyKind::Unit);
        assert_eq!(
            SupplyKind::from_ipp_marker_type("waste-toner"),
            SupplyKind::Unit
        );
        assert_eq!(SupplyKind::from_ipp_marker_type("ink"), SupplyKind::Other);
    }

    #[test]
    fn toner_levels_raise_empty_almost_empty_and_low_level() {
        let th = SupplyThresholds::with_toner_threshold(20);
        let items = |p: u8| -> Vec<AlertItem> {
            supply_items(
                SupplyKind::Toner,
                "Black Toner",
                SupplyLevel::Percent(p),
                &th,
            )
            .into_iter()
            .map(|(i, _)| i)
            .collect()
        };
        assert_eq!(items(0), vec![I::TonerEmpty, I::TonerLowLevel]);
        assert_eq!(items(5), vec![I::TonerAlmostEmpty, I::TonerLowLevel]);
        assert_eq!(items(6), vec![I::TonerLowLevel]);
        assert_eq!(items(19), vec![I::TonerLowLevel]);
        assert_eq!(items(20), vec![]);
        assert_eq!(items(100), vec![]);
        let got = supply_items(SupplyKind::Toner, "", SupplyLevel::Percent(0), &th);
        assert_eq!(got[0], (I::TonerEmpty, "Supply: 0%".to_owned()));
        assert_eq!(got[1].1, "Supply at 0% (below the selected level of 20%)");
        assert!(
            supply_items(SupplyKind::Other, "Staples", SupplyLevel::Percent(0), &th).is_empty()
        );
    }

    #[test]
    fn toner_low_level_crosses_the_threshold_both_ways() {
        // The caller keeps the previous state when the level cannot tell.
        let levels = [
            SupplyLevel::Percent(50),
            SupplyLevel::Percent(20),
            SupplyLevel::Percent(19),
            SupplyLevel::SomeRemaining,
            SupplyLevel::Percent(10),
            SupplyLevel::Unknown,
            SupplyLevel::Percent(20),
            SupplyLevel::Other,
            SupplyLevel::Percent(80),
        ];
        let mut active = false;
        let mut seen = Vec::new();
        for level in levels {
            if let Some(below) = toner_below_threshold(level, 20) {
                active = below;
            }
            seen.push(active);
        }
        assert_eq!(
            seen,
            [false, false, true, true, true, true, false, false, false]
        );
        // Threshold 0 never raises; 100 raises below full.
        assert_eq!(
            toner_below_threshold(SupplyLevel::Percent(0), 0),
            Some(false)
        );
        assert_eq!(
            toner_below_threshold(SupplyLevel::Percent(99), 100),
            Some(true)
        );
    }

    #[test]
    fn trays_covers_and_storage() {
        assert_eq!(
            input_tray_item(2, "", 0, 500),
            Some((I::PaperOut, "Tray 2: empty".into()))
        );
        assert_eq!(
            input_tray_item(1, "Bypass Tray", 0, -2),
            Some((I::PaperOut, "Bypass Tray: empty".into()))
        );
        for level in [1, 250, -1, -2, -3] {
            assert_eq!(input_tray_item(1, "Tray 1", level, 500), None, "{level}");
        }
        assert_eq!(input_tray_item(3, "", 0, 0), None);

        assert_eq!(
            cover_item(1, "Front Cover", 3),
            Some((I::CoverOpen, "Front Cover: open".into()))
        );
        assert_eq!(
            cover_item(2, "", 5),
            Some((I::CoverOpen, "Cover 2: interlock open".into()))
        );
        for status in [1, 2, 4, 6] {
            assert_eq!(cover_item(1, "Front Cover", status), None);
        }

        assert_eq!(
            storage_item("Document Server", 1000, 900, 90),
            Some((I::StorageAlmostFull, "Document Server: 90% used".into()))
        );
        assert_eq!(storage_item("Document Server", 1000, 899, 90), None);
        assert_eq!(
            storage_item("", 1000, 5000, 90).map(|m| m.1),
            Some("Storage: 100% used".into())
        );
        assert_eq!(storage_item("x", 0, 0, 90), None);
        assert_eq!(storage_item("x", 100, -1, 90), None);
    }

    #[test]
    fn unit_levels_raise_soon_then_now() {
        let th = SupplyThresholds::with_toner_threshold(20);
        let unit =
            |p: u8| supply_items(SupplyKind::Unit, "Drum Unit", SupplyLevel::Percent(p), &th);
        assert_eq!(
            unit(0),
            vec![(I::UnitReplacementNow, "Drum Unit: 0%".into())]
        );
        assert_eq!(
            unit(1),
            vec![(I::UnitReplacementSoon, "Drum Unit: 1%".into())]
        );
        assert_eq!(
            unit(10),
            vec![(I::UnitReplacementSoon, "Drum Unit: 10%".into())]
        );
        assert_eq!(unit(11), vec![]);
        let strict = SupplyThresholds {
            unit_now_percent: 2,
            ..th
        };
        assert_eq!(
            supply_items(SupplyKind::Unit, "Fuser", SupplyLevel::Percent(2), &strict)[0].0,
            I::UnitReplacementNow
        );
    }

    #[test]
    fn ipp_suffixes_are_stripped() {
        assert_eq!(strip_reason_suffix("toner-low-report"), "toner-low");
        assert_eq!(strip_reason_suffix("toner-low-warning"), "toner-low");
        assert_eq!(strip_reason_suffix("media-jam-error"), "media-jam");
        assert_eq!(strip_reason_suffix("media-jam"), "media-jam");
        assert_eq!(strip_reason_suffix("none"), "none");
        // Only one suffix, only at the end.
        assert_eq!(strip_reason_suffix("x-error-report"), "x-error");
        assert_eq!(strip_reason_suffix("error-report-y"), "error-report-y");
    }

    #[test]
    fn every_ipp_keyword_maps_with_and_without_suffix() {
        let vendor = VendorMap::new();
        let expected: &[(&str, AlertItem)] = &[
            ("toner-empty", I::TonerEmpty),
            ("marker-supply-empty", I::TonerEmpty),
            ("toner-low", I::TonerAlmostEmpty),
            ("marker-supply-low", I::TonerAlmostEmpty),
            ("media-jam", I::PaperJam),
            ("media-path-jam", I::PaperJam),
            ("input-media-tray-jam", I::PaperJam),
            ("output-media-tray-jam", I::PaperJam),
            ("cover-open", I::CoverOpen),
            ("door-open", I::CoverOpen),
            ("interlock-open", I::CoverOpen),
            ("media-empty", I::PaperOut),
            ("media-needed", I::PaperOut),
            ("input-tray-missing", I::TrayError),
            ("input-tray-position-failure", I::TrayError),
            ("input-tray-elevation-failure", I::TrayError),
            ("input-cannot-feed-size-selected", I::TrayError),
            ("input-media-tray-failure", I::TrayError),
            ("subunit-missing", I::UnitConnectionError),
            ("subunit-offline", I::UnitConnectionError),
            ("spool-area-full", I::StorageAlmostFull),
            ("opc-near-eol", I::UnitReplacementSoon),
            ("cleaner-life-almost-over", I::UnitReplacementSoon),
            ("subunit-life-almost-over", I::UnitReplacementSoon),
            ("marker-waste-almost-full", I::UnitReplacementSoon),
            ("opc-life-over", I::UnitReplacementNow),
            ("cleaner-life-over", I::UnitReplacementNow),
            ("subunit-life-over", I::UnitReplacementNow),
            ("marker-waste-full", I::UnitReplacementNow),
        ];
        assert_eq!(expected.len(), IPP_REASONS.len());
        for &(kw, item) in expected {
            for suffix in ["", "-report", "-warning", "-error"] {
                let raw = format!("{kw}{suffix}");
                assert_eq!(map_ipp_reason(&raw, &vendor), Some(item), "{raw}");
                let m = map_ipp_reasons([raw.as_str()], 3, &vendor);
                assert_eq!(m.conditions, BTreeMap::from([(item, kw.to_owned())]));
                assert!(m.unknown.is_empty());
            }
        }
    }

    #[test]
    fn ipp_reasons_none_other_and_unknown() {
        let vendor = VendorMap::new();
        let none = map_ipp_reasons(["none"], 3, &vendor);
        assert_eq!(none, IppMapped::default());
        assert_eq!(map_ipp_reason("none", &vendor), None);
        // `other` only while stopped.
        assert!(map_ipp_reasons(["other"], 4, &vendor).conditions.is_empty());
        assert_eq!(
            map_ipp_reasons(["other-error"], IPP_PRINTER_STOPPED, &vendor).conditions,
            BTreeMap::from([(I::ServiceCall, "other (stopped)".to_owned())])
        );
        let m = map_ipp_reasons(
            [
                "media-empty-error",
                "media-needed",
                "paused",
                "toner-glitter-warning",
            ],
            3,
            &vendor,
        );
        assert_eq!(
            m.conditions,
            BTreeMap::from([(I::PaperOut, "media-empty; media-needed".to_owned())])
        );
        assert_eq!(m.unknown, vec!["toner-glitter".to_owned()]);
    }

    #[test]
    fn vendor_map_from_config() {
        // As lib.rs builds it from [agent] / [devices] vendor_signals (the
        // config has checked the keys).
        let mut vendor = VendorMap::new();
        vendor.insert_oid(".1.3.6.1.4.1.367.3.2.1.2.99", I::ProxyAuthError);
        vendor.insert_oid("1.3.6.1.4.1.367.3.2.1.2.99.7", I::AccessAttack);
        vendor.insert_ipp_keyword("com.example-attack-detected-report", I::AccessAttack);
        assert!(!vendor.is_empty());
        assert_eq!(vendor.oids().count(), 2);
        assert_eq!(
            vendor.oid("1.3.6.1.4.1.367.3.2.1.2.99"),
            Some(I::ProxyAuthError)
        );
        assert_eq!(
            vendor.oid(".1.3.6.1.4.1.367.3.2.1.2.99.0"),
            Some(I::ProxyAuthError)
        );
        // The longest configured prefix wins.
        assert_eq!(
            vendor.oid("1.3.6.1.4.1.367.3.2.1.2.99.7.1"),
            Some(I::AccessAttack)
        );
        // 99 is not a prefix of 990.
        assert_eq!(vendor.oid("1.3.6.1.4.1.367.3.2.1.2.990"), None);
        assert_eq!(vendor.oid("not.an.oid"), None);
        assert_eq!(
            vendor.oid_value_item(".1.3.6.1.4.1.367.3.2.1.2.99.0", 1),
            Some((I::ProxyAuthError, "1.3.6.1.4.1.367.3.2.1.2.99.0 = 1".into()))
        );
        assert_eq!(
            vendor.oid_value_item("1.3.6.1.4.1.367.3.2.1.2.99.0", 0),
            None
        );
        assert_eq!(
            map_ipp_reasons(["com.example-attack-detected-error"], 3, &vendor).conditions,
            BTreeMap::from([(I::AccessAttack, "com.example-attack-detected".to_owned())])
        );
        assert_eq!(
            vendor.ipp_keyword("com.example-attack-detected"),
            Some(I::AccessAttack)
        );

        let mut m = VendorMap::new();
        m.insert_oid("garbage", I::AccessAttack);
        m.insert_oid(".1.2.3", I::AccessAttack);
        m.insert_ipp_keyword("x-proxy-auth-failed-warning", I::ProxyAuthError);
        assert_eq!(
            m.oids().collect::<Vec<_>>(),
            vec![("1.2.3", I::AccessAttack)]
        );
        assert_eq!(
            map_ipp_reason("x-proxy-auth-failed", &m),
            Some(I::ProxyAuthError)
        );
    }

    #[test]
    fn firmware_change_raises_firmware_update_once() {
        let mut fw = FirmwareWatch::new();
        assert_eq!(fw.observe("1.00"), None);
        assert_eq!(fw.observe("1.00"), None);
        assert_eq!(fw.observe(""), None);
        assert_eq!(fw.last(), Some("1.00"));
        assert_eq!(
            fw.observe(" 1.01 "),
            Some((
                I::FirmwareUpdate,
                "firmware changed from 1.00 to 1.01".into()
            ))
        );
        assert_eq!(fw.observe("1.01"), None);
        assert_eq!(fw.last(), Some("1.01"));
    }

    #[test]
    fn merge_condition_joins_distinct_details() {
        let mut m = BTreeMap::new();
        merge_condition(&mut m, I::PaperOut, "noPaper");
        merge_condition(&mut m, I::PaperOut, "noPaper");
        merge_condition(&mut m, I::PaperOut, "Tray 2");
        merge_condition(&mut m, I::PaperOut, "");
        assert_eq!(m[&I::PaperOut], "noPaper; Tray 2");
        merge_condition(&mut m, I::CoverOpen, "");
        merge_condition(&mut m, I::CoverOpen, "Cover 1");
        assert_eq!(m[&I::CoverOpen], "Cover 1");
    }
}
