//! The agent reading a printer over IPP: a private CUPS ippeveprinter per
//! test (`deploy/dev/ippbed.sh` with its own folder and port), changed by
//! printing `STATE:` / `ATTR:` documents and through its /supplies and
//! /media web forms.

use std::time::{Duration, Instant};

use printwatch_events::{AlertItem, TransitionKind};
use printwatch_proto::v1::{DeviceState, DeviceStatus};
use printwatch_testing::agent::{AgentFixture, StoredEvent};
use printwatch_testing::ipp::IppBed;

const WAIT: Duration = Duration::from_secs(30);

fn config(bed: &IppBed) -> String {
    format!(
        r#"
[alerts.items.toner_low_level]
threshold_percent = 20

[[devices]]
id = "i1"
name = "IPP printer"
location = "3F"
mail_address = "printer-ipp@printwatch.test"
source = "{url}"
"#,
        url = bed.url()
    )
}

/// Waits for the first reading with supplies (the printer answered).
async fn first_reading(fx: &AgentFixture) -> DeviceStatus {
    fx.wait_for_device("i1", WAIT, |s| s.read_at.is_some() && s.error.is_empty())
        .await
        .unwrap()
}

/// Waits for `total` events, checks that nothing more comes for a while,
/// and returns the events from index `from` on.
async fn settled(fx: &AgentFixture, total: usize, from: usize) -> Vec<StoredEvent> {
    fx.wait_for_events(total, WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let events = fx.events().await.unwrap();
    assert_eq!(
        events.len(),
        total,
        "{:#?}",
        events
            .iter()
            .map(|e| (&e.subject, &e.event.event.detail))
            .collect::<Vec<_>>()
    );
    events[from..].to_vec()
}

fn items(events: &[StoredEvent]) -> Vec<(AlertItem, TransitionKind)> {
    let mut out: Vec<_> = events
        .iter()
        .map(|e| (e.event.item, e.event.transition))
        .collect();
    out.sort_by_key(|(i, t)| (i.key(), *t == TransitionKind::Recovered));
    out
}

/// Every printer-state-reasons keyword ippeveprinter (CUPS 2.4) accepts in
/// a `STATE:` line, with the item it maps to (`None`: no item).
const IPPEVE_REASONS: &[(&str, Option<AlertItem>)] = &[
    ("cover-open", Some(AlertItem::CoverOpen)),
    ("input-tray-missing", Some(AlertItem::TrayError)),
    ("marker-supply-empty", Some(AlertItem::TonerEmpty)),
    ("marker-supply-low", Some(AlertItem::TonerAlmostEmpty)),
    (
        "marker-waste-almost-full",
        Some(AlertItem::UnitReplacementSoon),
    ),
    ("marker-waste-full", Some(AlertItem::UnitReplacementNow)),
    ("media-empty", Some(AlertItem::PaperOut)),
    ("media-jam", Some(AlertItem::PaperJam)),
    ("media-needed", Some(AlertItem::PaperOut)),
    ("spool-area-full", Some(AlertItem::StorageAlmostFull)),
    ("toner-empty", Some(AlertItem::TonerEmpty)),
    ("toner-low", Some(AlertItem::TonerAlmostEmpty)),
    // `other` is a service call only while the printer is stopped, which
    // ippeveprinter never is.
    ("other", None),
    ("media-low", None),
    ("moving-to-paused", None),
    ("paused", None),
];

#[tokio::test]
async fn ipp_every_ippeveprinter_reason_occurs_once_and_recovers_once() {
    let bed = IppBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    let s = first_reading(&fx).await;
    assert_eq!(s.source, "ipp");
    assert!(s.conditions.is_empty(), "{:?}", s.conditions);

    let mut total = 0;
    for &(reason, item) in IPPEVE_REASONS.iter().filter(|(_, i)| i.is_some()) {
        let item = item.unwrap();
        bed.add_reasons(&[reason]).unwrap();
        let occurred = settled(&fx, total + 1, total).await;
        assert_eq!(
            (occurred[0].event.item, occurred[0].event.transition),
            (item, TransitionKind::Occurred),
            "{reason}"
        );
        assert_eq!(occurred[0].event.event.detail, reason);
        let s = fx.status("i1").await.unwrap();
        assert!(
            s.conditions.iter().any(|c| c.item == item.key()),
            "{reason}: {s:?}"
        );

        if reason == "media-empty" {
            // ippeveprinter holds jobs while out of paper (so a
            // `STATE: -media-empty` document would wait): load paper.
            bed.set_main_tray(250).unwrap();
        } else {
            bed.remove_reasons(&[reason]).unwrap();
        }
        let recovered = settled(&fx, total + 2, total + 1).await;
        assert_eq!(
            (recovered[0].event.item, recovered[0].event.transition),
            (item, TransitionKind::Recovered),
            "{reason}"
        );
        assert_eq!(
            recovered[0].event.event.occurred_event_id,
            occurred[0].event.event.event_id
        );
        total += 2;
    }

    // The keywords that map to no item raise nothing, all at once.
    let unmapped: Vec<&str> = IPPEVE_REASONS
        .iter()
        .filter(|(_, i)| i.is_none())
        .map(|(r, _)| *r)
        .collect();
    bed.add_reasons(&unmapped).unwrap();
    // The printer took them (the agent saw the job through).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fx.events().await.unwrap().len(), total);
    assert!(fx.status("i1").await.unwrap().conditions.is_empty());
    bed.remove_reasons(&unmapped).unwrap();
}

#[tokio::test]
async fn ipp_printer_alert_maps_through_the_alert_code_table() {
    let bed = IppBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    first_reading(&fx).await;
    bed.set_attrs(
        r#"printer-alert="code=jam;group=mediaPath" printer-alert-description="Jam in path A""#,
    )
    .unwrap();
    let occurred = settled(&fx, 1, 0).await;
    assert_eq!(
        (occurred[0].event.item, occurred[0].event.transition),
        (AlertItem::PaperJam, TransitionKind::Occurred)
    );
    assert_eq!(occurred[0].event.event.detail, "Jam in path A");
    bed.set_attrs(r#"printer-alert="code=coverClosed;group=cover" printer-alert-description="""#)
        .unwrap();
    let recovered = settled(&fx, 2, 1).await;
    assert_eq!(
        (recovered[0].event.item, recovered[0].event.transition),
        (AlertItem::PaperJam, TransitionKind::Recovered)
    );
}

#[tokio::test]
async fn ipp_supplies_and_media_forms_raise_toner_and_paper_items() {
    let bed = IppBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    first_reading(&fx).await;

    // Black toner to 0 %: toner_empty (ippeveprinter's toner-empty reason
    // and the level) and toner_low_level (below 20 %), one event each.
    bed.set_supplies(25, 0).unwrap();
    let occurred = settled(&fx, 2, 0).await;
    assert_eq!(
        items(&occurred),
        vec![
            (AlertItem::TonerEmpty, TransitionKind::Occurred),
            (AlertItem::TonerLowLevel, TransitionKind::Occurred),
        ]
    );
    let detail = |events: &[StoredEvent], item: AlertItem| {
        events
            .iter()
            .find(|e| e.event.item == item)
            .map(|e| e.event.event.detail.clone())
            .unwrap()
    };
    let empty = detail(&occurred, AlertItem::TonerEmpty);
    assert!(empty.contains("Black Toner: 0%"), "{empty}");
    assert_eq!(
        detail(&occurred, AlertItem::TonerLowLevel),
        "Black Toner at 0% (below the selected level of 20%)"
    );
    let s = fx.status("i1").await.unwrap();
    let black = s.supplies.iter().find(|x| x.name == "Black Toner").unwrap();
    assert_eq!(black.level_percent, 0);

    bed.set_supplies(25, 75).unwrap();
    let recovered = settled(&fx, 4, 2).await;
    assert_eq!(
        items(&recovered),
        vec![
            (AlertItem::TonerEmpty, TransitionKind::Recovered),
            (AlertItem::TonerLowLevel, TransitionKind::Recovered),
        ]
    );

    // Tray `main` to 0 sheets: paper_out.
    bed.set_main_tray(0).unwrap();
    let occurred = settled(&fx, 5, 4).await;
    assert_eq!(
        items(&occurred),
        vec![(AlertItem::PaperOut, TransitionKind::Occurred)]
    );
    let d = &occurred[0].event.event.detail;
    assert!(d.contains("main: empty"), "{d}");
    let s = fx.status("i1").await.unwrap();
    let main = s.trays.iter().find(|t| t.name == "main").unwrap();
    assert_eq!((main.level_percent, main.state.as_str()), (0, "empty"));

    bed.set_main_tray(250).unwrap();
    let recovered = settled(&fx, 6, 5).await;
    assert_eq!(
        items(&recovered),
        vec![(AlertItem::PaperOut, TransitionKind::Recovered)]
    );
    let s = fx.status("i1").await.unwrap();
    let main = s.trays.iter().find(|t| t.name == "main").unwrap();
    assert_eq!((main.level_percent, main.state.as_str()), (100, "ok"));
}

#[tokio::test]
async fn ipp_status_shows_the_printers_supplies_trays_and_protocols() {
    let bed = IppBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    let s = first_reading(&fx).await;
    let supplies: Vec<_> = s
        .supplies
        .iter()
        .map(|x| {
            (
                x.name.as_str(),
                x.kind.as_str(),
                x.color.as_str(),
                x.level_percent,
            )
        })
        .collect();
    assert_eq!(
        supplies,
        vec![
            ("Toner Waste Tank", "waste_toner", "", 25),
            ("Black Toner", "toner", "black", 75),
        ]
    );
    let trays: Vec<_> = s
        .trays
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.media.as_str(),
                t.level_percent,
                t.state.as_str(),
            )
        })
        .collect();
    assert!(
        trays.contains(&("main", "na_letter_8.5x11in", 40, "ok")),
        "{trays:?}"
    );
    assert!(
        trays.contains(&("by-pass-tray", "na_number-10_4.125x9.5in", -1, "ok")),
        "{trays:?}"
    );
    // From printer-uri-supported (ippeveprinter names itself by the Host
    // the client used) and printer-more-info: the configuration names no
    // addresses or protocols.
    let p = s.protocols.clone().unwrap();
    assert_eq!(p.host_name, "127.0.0.1");
    assert_eq!(p.ipv4_addresses, vec!["127.0.0.1"]);
    assert_eq!(p.enabled_protocols, vec!["IPP", "IPPS", "HTTPS"]);
    assert_eq!(s.state(), DeviceState::Ready);
}

#[tokio::test]
async fn ipp_a_printer_that_stops_answering_reports_why_and_is_read_again_when_back() {
    let bed = IppBed::private().unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    first_reading(&fx).await;

    bed.stop().unwrap();
    let s = fx
        .wait_for_device("i1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(s.error.contains(&bed.url()), "{}", s.error);
    assert!(s.error.contains("did not answer"), "{}", s.error);
    let occurred = settled(&fx, 1, 0).await;
    assert_eq!(
        (occurred[0].event.item, occurred[0].event.transition),
        (AlertItem::UnitConnectionError, TransitionKind::Occurred)
    );

    bed.start().unwrap();
    let s = fx
        .wait_for_device("i1", WAIT, |s| s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Ready);
    let recovered = settled(&fx, 2, 1).await;
    assert_eq!(
        (recovered[0].event.item, recovered[0].event.transition),
        (AlertItem::UnitConnectionError, TransitionKind::Recovered)
    );
    // Read again: the supplies are back.
    assert_eq!(fx.status("i1").await.unwrap().supplies.len(), 2);
}

fn firmware_conf(version: &str) -> String {
    format!(
        "ATTR textWithoutLanguage printer-make-and-model \"RICOH IP C6020\"\n\
         ATTR textWithoutLanguage printer-firmware-name \"Main\"\n\
         ATTR textWithoutLanguage printer-firmware-string-version \"{version}\"\n\
         ATTR octetString printer-firmware-version \"{version}\"\n"
    )
}

#[tokio::test]
async fn ipp_firmware_version_change_raises_firmware_update_once() {
    let bed = IppBed::private_with_attrs(&firmware_conf("1.00")).unwrap();
    let fx = AgentFixture::start(&config(&bed)).await.unwrap();
    let s = first_reading(&fx).await;
    assert_eq!(s.firmware_version, "1.00");

    bed.restart_with_attrs(&firmware_conf("1.01")).unwrap();
    let deadline = Instant::now() + WAIT;
    let fw = |events: &[StoredEvent]| -> Vec<(AlertItem, TransitionKind, String)> {
        events
            .iter()
            .filter(|e| e.event.item == AlertItem::FirmwareUpdate)
            .map(|e| {
                (
                    e.event.item,
                    e.event.transition,
                    e.event.event.detail.clone(),
                )
            })
            .collect()
    };
    loop {
        let events = fx.events().await.unwrap();
        if fw(&events).len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{events:?}\n{}\n{}",
            fx.agent.log(),
            bed.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let events = fx.events().await.unwrap();
    let fw = fw(&events);
    assert_eq!(
        fw.iter().map(|(_, t, _)| *t).collect::<Vec<_>>(),
        vec![TransitionKind::Occurred, TransitionKind::Recovered],
        "{fw:?}"
    );
    assert_eq!(fw[0].2, "firmware changed from 1.00 to 1.01");
    assert_eq!(fx.status("i1").await.unwrap().firmware_version, "1.01");
}

fn tls_config(bed: &IppBed, ipp_table: &str) -> String {
    format!(
        r#"
[[devices]]
id = "i1"
name = "IPPS printer"
location = "3F"
mail_address = "printer-ipps@printwatch.test"
source = "{url}"
{ipp_table}
"#,
        url = bed.tls_url()
    )
}

#[tokio::test]
async fn ipps_with_the_printers_certificate_reads_and_without_it_says_why() {
    let bed = IppBed::private().unwrap();

    // Trusting the printer's self-signed certificate: read like ipp://.
    let table = format!(
        "[devices.ipp]\nca_file = \"{}\"\n",
        bed.cert_path().display()
    );
    let fx = AgentFixture::start(&tls_config(&bed, &table))
        .await
        .unwrap();
    let s = first_reading(&fx).await;
    assert_eq!(s.supplies.len(), 2, "{s:?}");
    assert_eq!(s.protocols.unwrap().host_name, "localhost");
    drop(fx);

    // tls_verify = false: read too.
    let fx = AgentFixture::start(&tls_config(&bed, "[devices.ipp]\ntls_verify = false\n"))
        .await
        .unwrap();
    assert_eq!(first_reading(&fx).await.supplies.len(), 2);
    drop(fx);

    // The system's roots only: unreachable, saying it is the certificate.
    let fx = AgentFixture::start(&tls_config(&bed, "")).await.unwrap();
    let s = fx
        .wait_for_device("i1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(s.error.contains(&bed.tls_url()), "{}", s.error);
    assert!(
        s.error.to_lowercase().contains("certificate"),
        "{}",
        s.error
    );
}

#[tokio::test]
async fn ipp_a_wrong_printer_path_is_a_clear_per_device_error() {
    let bed = IppBed::private().unwrap();
    let wrong = bed.url().replace("/ipp/print", "/ipp/nothing-here");
    let fx = AgentFixture::start(&config(&bed).replace(&bed.url(), &wrong))
        .await
        .unwrap();
    let s = fx
        .wait_for_device("i1", WAIT, |s| !s.error.is_empty())
        .await
        .unwrap();
    assert_eq!(s.state(), DeviceState::Unreachable);
    assert!(s.error.contains(&wrong), "{}", s.error);
    assert!(s.error.contains("client-error-not-found"), "{}", s.error);
}

#[tokio::test]
async fn ipp_a_vendor_signal_keyword_maps_a_reason_the_table_leaves_alone() {
    // `moving-to-paused` raises nothing by itself; a fleet may decide it
    // matters (the same path a vendor keyword takes).
    let bed = IppBed::private().unwrap();
    let text = format!(
        "{}\n[devices.vendor_signals]\n\"moving-to-paused-report\" = \"service_call\"\n",
        config(&bed)
    );
    let fx = AgentFixture::start(&text).await.unwrap();
    first_reading(&fx).await;
    bed.add_reasons(&["moving-to-paused"]).unwrap();
    let occurred = settled(&fx, 1, 0).await;
    assert_eq!(
        (
            occurred[0].event.item,
            occurred[0].event.transition,
            occurred[0].event.event.detail.as_str()
        ),
        (
            AlertItem::ServiceCall,
            TransitionKind::Occurred,
            "moving-to-paused"
        )
    );
    bed.remove_reasons(&["moving-to-paused"]).unwrap();
    let recovered = settled(&fx, 2, 1).await;
    assert_eq!(
        (recovered[0].event.item, recovered[0].event.transition),
        (AlertItem::ServiceCall, TransitionKind::Recovered)
    );
}
