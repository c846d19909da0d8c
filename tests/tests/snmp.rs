//! The agent reading a simulated printer over SNMP v2c: a private snmpd per
//! test (`deploy/dev/snmpbed.sh` with its own folder and port) serving
//! Printer-MIB data that the test rewrites.

use std::time::Duration;

use printwatch_events::{AlertItem, TransitionKind};
use printwatch_proto::v1::{DeviceState, DeviceStatus};
use printwatch_testing::agent::{AgentFixture, StoredEvent};
use printwatch_testing::snmp::SnmpBed;

const WAIT: Duration = Duration::from_secs(30);

const TONER_LEVEL: &str = ".1.3.6.1.2.1.43.11.1.1.9.1.1";
const ALERT_ROW: &str = ".1.3.6.1.2.1.43.18.1.1";

/// A paper jam in paper path 1 (prtAlertCode jam(8), group mediaPath(13)).
fn add_jam_alert(bed: &SnmpBed) {
    for (col, kind, value) in [
        (2, "integer", "4"),
        (3, "integer", "4"),
        (4, "integer", "13"),
        (5, "integer", "1"),
        (6, "integer", "-1"),
        (7, "integer", "8"),
        (8, "string", "Paper jam in the paper path"),
        (9, "timeticks", "0"),
    ] {
        bed.set(&format!("{ALERT_ROW}.{col}.1.1"), kind, value)
            .unwrap();
    }
}

fn config(bed: &SnmpBed) -> String {
    format!(
        r#"
[alerts.items.toner_low_level]
threshold_percent = 20

[[devices]]
id = "s1"
name = "SNMP printer"
location = "2F"
mail_address = "printer1@printwatch.test"
source = "{url}"
"#,
        url = bed.url()
    )
}

/// The device's status once the agent has read its supplies.
async fn read_with_supplies(fx: &AgentFixture, bed: &SnmpBed) -> DeviceStatus {
    match fx
        .wait_for_device("s1", WAIT, |s| !s.supplies.is_empty())
        .await
    {
        Ok(s) => s,
        Err(e) => panic!("no SNMP reading: {e}\n{}", bed.logs()),
    }
}

fn of(events: &[StoredEvent], item: AlertItem, t: TransitionKind) -> Vec<&StoredEvent> {
    events
        .iter()
        .filter(|e| e.event.item == item && e.event.transition == t)
        .collect()
}

#[tokio::test]
async fn snmp_toner_low_and_paper_jam_occur_once_and_recover_once() {
    let bed = SnmpBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    let status = fx.wait_until_read("s1", WAIT).await.unwrap();
    assert_eq!(status.source, "snmp");

    // Wait for a first successful reading of the normal printer.
    let status = read_with_supplies(&fx, &bed).await;
    assert!(status.conditions.is_empty(), "{:?}", status.conditions);
    assert!(fx.events().await.unwrap().is_empty());
    let toner = &status.supplies[0];
    assert_eq!(
        (
            toner.name.as_str(),
            toner.kind.as_str(),
            toner.level_percent
        ),
        ("Black Toner", "toner", 80)
    );
    let drum = &status.supplies[1];
    assert_eq!((drum.name.as_str(), drum.level_percent), ("Drum Unit", 60));
    let trays: Vec<_> = status
        .trays
        .iter()
        .map(|t| (t.name.as_str(), t.level_percent, t.state.as_str()))
        .collect();
    assert_eq!(trays, [("Tray 1", 50, "ok"), ("Tray 2", 100, "ok")]);
    let protocols = status.protocols.clone().unwrap();
    assert_eq!(protocols.host_name, "printwatch-snmpbed");
    // The bed's snmpd reports this machine's own addresses (IP-MIB): the
    // same as `hostname -I`, without loopback and link-local ones.
    let own = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .unwrap();
    let own: Vec<std::net::IpAddr> = String::from_utf8_lossy(&own.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut want_v4: Vec<String> = own
        .iter()
        .filter(|a| a.is_ipv4())
        .map(ToString::to_string)
        .collect();
    let mut got_v4 = protocols.ipv4_addresses.clone();
    want_v4.sort();
    got_v4.sort();
    assert_eq!(got_v4, want_v4, "{protocols:?}");
    if !want_v4.is_empty() {
        // aa:bb:cc:dd:ee:ff of the first address's interface.
        assert_eq!(protocols.mac_address.len(), 17, "{protocols:?}");
    }

    // Toner low and a paper jam.
    let normal = bed.data().unwrap();
    bed.set(TONER_LEVEL, "integer", "10").unwrap();
    add_jam_alert(&bed);
    // Two events, and a few more polls show nothing else comes.
    let events = settled(&fx, 2, 0).await;
    let low = of(&events, AlertItem::TonerLowLevel, TransitionKind::Occurred);
    assert_eq!(low.len(), 1, "{events:?}");
    assert_eq!(
        low[0].event.event.detail,
        "Black Toner at 10% (below the selected level of 20%)"
    );
    assert_eq!(
        low[0].subject,
        format!(
            "{}.event.s1.occurred.toner_low_level",
            fx.names.subject_prefix
        )
    );
    let jam = of(&events, AlertItem::PaperJam, TransitionKind::Occurred);
    assert_eq!(jam.len(), 1, "{events:?}");
    assert_eq!(
        jam[0].event.event.detail,
        "Paper path 1: Paper jam in the paper path"
    );
    let protocols = jam[0].event.event.protocols.clone().unwrap();
    assert_eq!(protocols.host_name, "printwatch-snmpbed");

    let status = fx.status("s1").await.unwrap();
    assert_eq!(status.supplies[0].level_percent, 10);
    assert_eq!(status.conditions.len(), 2, "{:?}", status.conditions);

    // Back to normal: one recovered event each.
    bed.write_data(&normal).unwrap();
    let events = settled(&fx, 4, 0).await;
    for item in [AlertItem::TonerLowLevel, AlertItem::PaperJam] {
        assert_eq!(
            of(&events, item, TransitionKind::Recovered).len(),
            1,
            "{item:?}: {events:?}"
        );
    }
    let status = fx.status("s1").await.unwrap();
    assert!(status.conditions.is_empty(), "{:?}", status.conditions);
    assert_eq!(status.supplies[0].level_percent, 80);
}

#[tokio::test]
async fn a_wrong_community_is_a_clear_per_device_error_not_a_crash() {
    let bed = SnmpBed::private().unwrap();
    let text = config(&bed).replace(&bed.url(), &format!("{}?community=s3cret-wrong", bed.url()));
    let fx = AgentFixture::start(&text).await.unwrap();
    // A device never read answers GetDeviceStatus with "not read yet";
    // ListDevices shows the read error.
    let s = fx
        .wait_for_device("s1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(
        s.error.contains("wrong community or unreachable"),
        "{}",
        s.error
    );
    assert!(!s.error.contains("s3cret"), "{}", s.error);
    assert!(fx.events().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_device_that_stops_answering_reports_why_and_is_read_again_when_back() {
    let bed = SnmpBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    fx.wait_until_read("s1", WAIT).await.unwrap();

    bed.stop().unwrap();
    let s = fx
        .wait_for_device("s1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(s.error.contains(&bed.url()[7..]), "{}", s.error);
    // After [agent] unreachable_after (3) failed reads it is declared
    // unreachable: one unit_connection_error, however long it stays silent.
    let occurred = settled(&fx, 1, 0).await;
    assert_eq!(
        (occurred[0].event.item, occurred[0].event.transition),
        (AlertItem::UnitConnectionError, TransitionKind::Occurred)
    );
    assert!(
        occurred[0]
            .event
            .event
            .detail
            .starts_with("device unreachable: "),
        "{}",
        occurred[0].event.event.detail
    );
    let s = fx.wait_for_device("s1", WAIT, |_| true).await.unwrap();
    assert!(
        s.conditions
            .iter()
            .any(|c| c.item == "unit_connection_error"),
        "{s:?}"
    );

    bed.start().unwrap();
    let s = fx
        .wait_for_device("s1", WAIT, |s| s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Ready);
    // Its reading recovers the condition: one recovered event.
    let recovered = settled(&fx, 2, 1).await;
    assert_eq!(
        (recovered[0].event.item, recovered[0].event.transition),
        (AlertItem::UnitConnectionError, TransitionKind::Recovered)
    );
    assert_eq!(
        recovered[0].event.event.occurred_event_id,
        occurred[0].event.event.event_id
    );
}

/// Waits for `total` events, checks that nothing more comes, and returns
/// the events from index `from` on.
async fn settled(fx: &AgentFixture, total: usize, from: usize) -> Vec<StoredEvent> {
    fx.wait_for_events(total, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = fx.events().await.unwrap();
    assert_eq!(events.len(), total, "{events:?}");
    events[from..].to_vec()
}

fn details(events: &[StoredEvent], t: TransitionKind) -> Vec<(AlertItem, String)> {
    let mut out: Vec<_> = events
        .iter()
        .filter(|e| e.event.transition == t)
        .map(|e| (e.event.item, e.event.event.detail.clone()))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn covers_trays_units_error_bits_and_device_status_each_occur_and_recover_once() {
    let bed = SnmpBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    fx.wait_until_read("s1", WAIT).await.unwrap();
    let normal = bed.data().unwrap();

    // Cover open, tray 2 empty, drum at 5 %, tray 1 missing (alert 801).
    bed.set(".1.3.6.1.2.1.43.6.1.1.3.1.1", "integer", "3")
        .unwrap();
    bed.set(".1.3.6.1.2.1.43.8.2.1.10.1.2", "integer", "0")
        .unwrap();
    bed.set(".1.3.6.1.2.1.43.11.1.1.9.1.2", "integer", "5")
        .unwrap();
    for (col, kind, value) in [
        (2, "integer", "4"),
        (3, "integer", "4"),
        (4, "integer", "8"),
        (5, "integer", "1"),
        (7, "integer", "801"),
        (8, "string", "Tray 1 is missing"),
    ] {
        bed.set(&format!("{ALERT_ROW}.{col}.1.1"), kind, value)
            .unwrap();
    }
    let mut want = vec![
        (AlertItem::CoverOpen, "Front Cover: open".to_owned()),
        (AlertItem::PaperOut, "Tray 2: empty".to_owned()),
        (AlertItem::TrayError, "Tray 1: Tray 1 is missing".to_owned()),
        (AlertItem::UnitReplacementSoon, "Drum Unit: 5%".to_owned()),
    ];
    want.sort();
    let events = settled(&fx, 4, 0).await;
    assert_eq!(details(&events, TransitionKind::Occurred), want);
    bed.write_data(&normal).unwrap();
    let events = settled(&fx, 8, 4).await;
    let recovered: Vec<_> = details(&events, TransitionKind::Recovered)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(recovered, want.iter().map(|(i, _)| *i).collect::<Vec<_>>());

    // hrPrinterDetectedErrorState noToner (bit 3, one octet).
    bed.set(".1.3.6.1.2.1.25.3.5.1.2.1", "octet", "10").unwrap();
    let events = settled(&fx, 9, 8).await;
    assert_eq!(
        details(&events, TransitionKind::Occurred),
        vec![(AlertItem::TonerEmpty, "noToner".to_owned())]
    );
    bed.write_data(&normal).unwrap();
    let events = settled(&fx, 10, 9).await;
    assert_eq!(events[0].event.item, AlertItem::TonerEmpty);
    assert_eq!(events[0].event.transition, TransitionKind::Recovered);

    // The printer down with nothing to explain it: a service call.
    bed.set(".1.3.6.1.2.1.25.3.2.1.5.1", "integer", "5")
        .unwrap();
    let events = settled(&fx, 11, 10).await;
    assert_eq!(
        details(&events, TransitionKind::Occurred),
        vec![(
            AlertItem::ServiceCall,
            "Printwatch Test MFP is down (hrDeviceStatus down)".to_owned()
        )]
    );
    bed.write_data(&normal).unwrap();
    let events = settled(&fx, 12, 11).await;
    assert_eq!(events[0].event.item, AlertItem::ServiceCall);
    assert_eq!(events[0].event.transition, TransitionKind::Recovered);
}

/// The bed's SNMPv3 passwords (deploy/dev/snmpbed.sh: its defaults unless
/// the environment sets them).
fn bed_secret(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn v3_auth_password() -> String {
    bed_secret("PW_SNMP_V3_AUTH_PASSWORD", "pw-auth-secret")
}

fn v3_priv_password() -> String {
    bed_secret("PW_SNMP_V3_PRIV_PASSWORD", "pw-priv-secret")
}

fn v3_config(bed: &SnmpBed, auth_password: &str) -> String {
    format!(
        r#"
[[devices]]
id = "s1"
name = "SNMPv3 printer"
mail_address = "printer1@printwatch.test"
source = "snmp://{host}:{port}"

[devices.snmp]
version = "3"
user = "pwsha256"
auth_protocol = "sha256"
auth_password = "{auth_password}"
priv_protocol = "aes"
priv_password = "{priv_password}"
"#,
        host = bed.host(),
        priv_password = v3_priv_password(),
        port = bed.port(),
    )
}

#[tokio::test]
async fn snmpv3_auth_priv_reads_supplies_and_a_wrong_password_is_a_clear_error() {
    let bed = SnmpBed::private().unwrap();
    let fx = AgentFixture::start(&v3_config(&bed, &v3_auth_password()))
        .await
        .unwrap();
    let status = read_with_supplies(&fx, &bed).await;
    let toner = &status.supplies[0];
    assert_eq!(
        (toner.name.as_str(), toner.level_percent),
        ("Black Toner", 80)
    );
    assert_eq!(status.trays.len(), 2, "{:?}", status.trays);
    assert_eq!(
        status.protocols.clone().unwrap().host_name,
        "printwatch-snmpbed"
    );
    drop(fx);

    let wrong = "wrong-auth-s3cret";
    let fx = AgentFixture::start(&v3_config(&bed, wrong)).await.unwrap();
    let s = fx
        .wait_for_device("s1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(
        s.error
            .contains("SNMPv3 authentication failed for user pwsha256"),
        "{}",
        s.error
    );
    assert!(!s.error.contains(wrong), "{}", s.error);
    assert!(!s.error.contains(&v3_priv_password()), "{}", s.error);
    assert!(!fx.agent.log().contains(wrong), "{}", fx.agent.log());
    assert!(fx.events().await.unwrap().is_empty());
}

const STORAGE_USED: &str = ".1.3.6.1.2.1.25.2.3.1.6.1";
const FIRMWARE_REV: &str = ".1.3.6.1.2.1.47.1.1.1.1.9.1";
const VENDOR_FLAG: &str = ".1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.1";

/// The signals beyond the alert table: document storage (hrStorage) against
/// the configured threshold, a vendor OID named in `vendor_signals` (an item
/// no standard signal carries), a firmware version change, and each
/// supply's colour.
#[tokio::test]
async fn snmp_storage_vendor_oid_and_firmware_change_occur_once_and_recover_once() {
    let bed = SnmpBed::private().unwrap();
    let text = format!(
        r#"{}
[devices.vendor_signals]
# The column: its instance .1 matches.
"1.3.6.1.4.1.367.3.2.1.2.24.1.1.5" = "proxy_auth_error"

[alerts.items.storage_almost_full]
threshold_percent = 80
"#,
        config(&bed)
    );
    let mut fx = AgentFixture::start(&text).await.unwrap();
    let status = read_with_supplies(&fx, &bed).await;
    // Colour from prtMarkerColorantValue; the drum has no colorant.
    let colours: Vec<_> = status
        .supplies
        .iter()
        .map(|s| (s.name.as_str(), s.color.as_str()))
        .collect();
    assert_eq!(colours, [("Black Toner", "black"), ("Drum Unit", "")]);
    // What an operator (and a requeststatus reply, the same report) sees.
    let out = printwatch_testing::process::run_bin(
        "printwatch",
        &[
            "--config",
            fx.config_path.to_str().unwrap(),
            "--agent",
            &fx.grpc_url,
            "status",
            "s1",
        ],
    )
    .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    for line in [
        "  - Black Toner: 80%",
        "  - Drum Unit: 60%",
        "  - Tray 1 (-): ok, 50%",
        "  - Tray 2 (-): ok, 100%",
        "printwatch-snmpbed",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }
    assert_eq!(status.firmware_version, "1.00");
    // 25 % used, flag 0, first firmware seen: nothing.
    assert!(status.conditions.is_empty(), "{:?}", status.conditions);

    let mut data = bed.data().unwrap();
    for (oid, kind, value) in [
        (STORAGE_USED, "integer", "900000"),
        (VENDOR_FLAG, "integer", "1"),
        (FIRMWARE_REV, "string", "\"1.01\""),
    ] {
        data = printwatch_testing::snmp::with_value(&data, oid, kind, value);
    }
    bed.write_data(&data).unwrap();
    // Storage and vendor flag occur; the firmware update occurs and, one
    // read later, recovers.
    let events = settled(&fx, 4, 0).await;
    let storage = of(
        &events,
        AlertItem::StorageAlmostFull,
        TransitionKind::Occurred,
    );
    assert_eq!(storage.len(), 1, "{events:?}");
    assert_eq!(storage[0].event.event.detail, "Document Server: 90% used");
    let vendor = of(&events, AlertItem::ProxyAuthError, TransitionKind::Occurred);
    assert_eq!(vendor.len(), 1, "{events:?}");
    assert_eq!(
        vendor[0].event.event.detail,
        "1.3.6.1.4.1.367.3.2.1.2.24.1.1.5.1 = 1"
    );
    let firmware = of(&events, AlertItem::FirmwareUpdate, TransitionKind::Occurred);
    assert_eq!(firmware.len(), 1, "{events:?}");
    assert_eq!(
        firmware[0].event.event.detail,
        "firmware changed from 1.00 to 1.01"
    );
    assert_eq!(
        of(
            &events,
            AlertItem::FirmwareUpdate,
            TransitionKind::Recovered
        )
        .len(),
        1,
        "{events:?}"
    );

    // Storage freed, flag cleared; the new firmware stays.
    let mut data = bed.data().unwrap();
    for (oid, value) in [(STORAGE_USED, "100000"), (VENDOR_FLAG, "0")] {
        data = printwatch_testing::snmp::with_value(&data, oid, "integer", value);
    }
    bed.write_data(&data).unwrap();
    let events = settled(&fx, 6, 0).await;
    for item in [AlertItem::StorageAlmostFull, AlertItem::ProxyAuthError] {
        assert_eq!(
            of(&events, item, TransitionKind::Recovered).len(),
            1,
            "{item:?}: {events:?}"
        );
    }
    let status = fx.status("s1").await.unwrap();
    assert_eq!(status.firmware_version, "1.01");
    assert!(status.conditions.is_empty(), "{:?}", status.conditions);

    // The firmware changes while the agent is down: the stored version
    // still makes it one update.
    fx.agent.kill();
    let data = printwatch_testing::snmp::with_value(
        &bed.data().unwrap(),
        FIRMWARE_REV,
        "string",
        "\"1.02\"",
    );
    bed.write_data(&data).unwrap();
    fx.agent.restart().unwrap();
    let events = settled(&fx, 8, 0).await;
    let firmware = of(&events, AlertItem::FirmwareUpdate, TransitionKind::Occurred);
    assert_eq!(firmware.len(), 2, "{events:?}");
    assert_eq!(
        firmware[1].event.event.detail,
        "firmware changed from 1.01 to 1.02"
    );
    assert_eq!(
        of(
            &events,
            AlertItem::FirmwareUpdate,
            TransitionKind::Recovered
        )
        .len(),
        2,
        "{events:?}"
    );
}

/// One prtAlertTable row (index .1.1) as data-file lines: severity warning,
/// training untrained, `code` in `group` / `index` with `description`.
fn with_alert(text: &str, group: u32, index: u32, code: u32, description: &str) -> String {
    let mut text = text.to_owned();
    for (col, kind, value) in [
        (2, "integer", "4".to_owned()),
        (3, "integer", "4".to_owned()),
        (4, "integer", group.to_string()),
        (5, "integer", index.to_string()),
        (6, "integer", "-1".to_owned()),
        (7, "integer", code.to_string()),
        (8, "string", format!("\"{description}\"")),
        (9, "timeticks", "0".to_owned()),
    ] {
        text = printwatch_testing::snmp::with_value(
            &text,
            &format!("{ALERT_ROW}.{col}.1.1"),
            kind,
            &value,
        );
    }
    text
}

/// The standard signals the other tests leave out, one at a time: each
/// change is exactly one occurred event with the device's words, and
/// changing it back exactly one recovered event.
#[tokio::test]
async fn the_remaining_standard_signals_each_occur_once_and_recover_once() {
    let bed = SnmpBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    fx.wait_until_read("s1", WAIT).await.unwrap();
    let normal = bed.data().unwrap();
    let drum_level = ".1.3.6.1.2.1.43.11.1.1.9.1.2";
    let error_state = ".1.3.6.1.2.1.25.3.5.1.2.1";
    let cases: Vec<(&str, String, AlertItem, &str)> = vec![
        (
            "markerTonerAlmostEmpty(1104) in markerSupplies(11)",
            with_alert(&normal, 11, 1, 1104, "Black toner is almost empty"),
            AlertItem::TonerAlmostEmpty,
            "Supply 1: Black toner is almost empty",
        ),
        (
            "hrPrinterDetectedErrorState lowToner (bit 2)",
            printwatch_testing::snmp::with_value(&normal, error_state, "octet", "20 00"),
            AlertItem::TonerAlmostEmpty,
            "lowToner",
        ),
        (
            "drum level 0",
            printwatch_testing::snmp::with_value(&normal, drum_level, "integer", "0"),
            AlertItem::UnitReplacementNow,
            "Drum Unit: 0%",
        ),
        (
            "subunitLifeOver(11) of the fuser, marker(10)",
            with_alert(&normal, 10, 1, 11, "Replace the fuser unit"),
            AlertItem::UnitReplacementNow,
            "Marker 1: Replace the fuser unit",
        ),
        (
            "subunitOffline(22) of device 3, hostResourcesMIBDeviceTable(4)",
            with_alert(&normal, 4, 3, 22, "Finisher is not connected"),
            AlertItem::UnitConnectionError,
            "Device 3: Finisher is not connected",
        ),
        (
            "doorOpen(501) of cover 2, cover(6)",
            with_alert(&normal, 6, 2, 501, "Right door open"),
            AlertItem::CoverOpen,
            "Cover 2: Right door open",
        ),
        (
            "inputMediaSupplyEmpty(808) of tray 2, input(8)",
            with_alert(&normal, 8, 2, 808, "Tray 2 is empty"),
            AlertItem::PaperOut,
            "Tray 2: Tray 2 is empty",
        ),
        (
            "hrPrinterDetectedErrorState inputTrayMissing (bit 8)",
            printwatch_testing::snmp::with_value(&normal, error_state, "octet", "00 80"),
            AlertItem::TrayError,
            "inputTrayMissing",
        ),
    ];
    let mut total = 0;
    for (what, data, item, detail) in cases {
        bed.write_data(&data).unwrap();
        total += 1;
        let events = settled(&fx, total, total - 1).await;
        assert_eq!(
            details(&events, TransitionKind::Occurred),
            vec![(item, detail.to_owned())],
            "{what}"
        );
        bed.write_data(&normal).unwrap();
        total += 1;
        let events = settled(&fx, total, total - 1).await;
        assert_eq!(
            (events[0].event.item, events[0].event.transition),
            (item, TransitionKind::Recovered),
            "{what}"
        );
    }
}
