//! The notifier end to end: the real agent and notifier processes, a
//! private nats-server, and the mail bed's Postfix and Dovecot. What is
//! checked is what a person would see in the mailboxes.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use printwatch_bus::PublishPolicy;
use printwatch_events::{AlertItem, EventBuilder, Language, TransitionKind};
use printwatch_proto::v1::{DeviceIdentity, ProtocolSettings, SetConditionRequest};
use printwatch_testing::agent::{AgentFixture, clear, raise, toner};
use printwatch_testing::mail::{MailBed, ReceivedMail};
use printwatch_testing::proxy::TcpProxy;

const WAIT: Duration = Duration::from_secs(60);
const CALL_JA: &str = "サービス実施店に連絡してください。";

/// `[mail]` for the bed, through `port` (submission with STARTTLS unless
/// a proxy port is given), with `password` for the notify account.
fn mail_section(bed: &MailBed, port: u16, password: &str, language: &str) -> String {
    format!(
        r#"
[mail]
language = "{language}"
admin_address = "alice@{domain}"

[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
ca_file = "{ca}"
auth = true
auth_address = "notify@{domain}"
username = "notify"
password = "{password}"
max_connections = 4
connect_timeout = "2s"
command_timeout = "10s"

[mail.account]
address = "notify@{domain}"

[notifier]
ack_wait = "3s"
retry_delay = "200ms"
retry_max_delay = "2s"
"#,
        domain = bed.domain(),
        ca = bed.ca_file().display(),
    )
}

fn subjects(mails: &[ReceivedMail]) -> Vec<String> {
    let mut s: Vec<String> = mails
        .iter()
        .map(|m| m.subject().unwrap_or_default().to_owned())
        .collect();
    s.sort();
    s
}

fn subject(item: AlertItem, transition: TransitionKind, lang: Language) -> String {
    printwatch_notifier::render::subject(item, transition, lang)
}

#[tokio::test]
async fn every_item_mails_exactly_its_groups_on_occurrence_and_recovery() {
    let bed = MailBed::shared().unwrap();
    let a = bed.fresh_address("t-a");
    let b = bed.fresh_address("t-b");
    let bystander = bed.fresh_address("t-none");
    let device_mail = bed.fresh_address("t-printer");
    // Items take groups in turn: a; b; a and b (one mail each); none.
    let mut items = String::new();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let all: Vec<AlertItem> = AlertItem::keys().map(|k| k.parse().unwrap()).collect();
    for (i, item) in all.iter().enumerate() {
        let groups: &[&str] = match i % 4 {
            0 => &["ga"],
            1 => &["gb"],
            2 => &["ga", "gab"],
            _ => &[],
        };
        let quoted: Vec<String> = groups.iter().map(|g| format!("\"{g}\"")).collect();
        items.push_str(&format!(
            "[alerts.items.{}]\ngroups = [{}]\n",
            item.key(),
            quoted.join(", ")
        ));
        if *item == AlertItem::TonerLowLevel {
            items.push_str("threshold_percent = 20\n");
        }
        for (who, gets) in [
            (&a, groups.iter().any(|g| *g != "gb")),
            (&b, groups.iter().any(|g| *g != "ga")),
        ] {
            if gets {
                let e = expected.entry(who.clone()).or_default();
                e.push(subject(*item, TransitionKind::Occurred, Language::Ja));
                e.push(subject(*item, TransitionKind::Recovered, Language::Ja));
            }
        }
    }
    let config = format!(
        r#"{mail}
[alerts]
common_body = "Facilities desk: extension 1234."

[alerts.groups]
ga = ["{a}"]
gb = ["{b}"]
gab = ["{a}", "{b}"]
nobody = ["{bystander}"]

{items}
[[devices]]
id = "p1"
name = "Lobby printer"
location = "Building A, 1F lobby"
serial = "C6020-0001"
mail_address = "{device_mail}"
source = "simulated"
host_name = "lobby-c6020.printwatch.test"
addresses = ["192.0.2.10"]
protocols = ["IPP", "SNMPv2c"]
"#,
        mail = mail_section(
            &bed,
            bed.submission_port(),
            &bed.password_for("notify"),
            "ja"
        ),
    );
    let fx = AgentFixture::start(&config).await.unwrap();
    let _notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let mut agent = fx.client().await.unwrap();
    for item in &all {
        if *item == AlertItem::TonerLowLevel {
            agent.set_condition(toner("p1", 5)).await.unwrap();
        } else {
            let detail = if *item == AlertItem::ServiceCall {
                "SC542"
            } else {
                "detail"
            };
            agent
                .set_condition(raise("p1", item.key(), detail))
                .await
                .unwrap();
        }
    }
    fx.wait_for_events(all.len(), WAIT).await.unwrap();
    for item in &all {
        if *item == AlertItem::TonerLowLevel {
            agent.set_condition(toner("p1", 100)).await.unwrap();
        } else {
            agent.set_condition(clear("p1", item.key())).await.unwrap();
        }
    }
    fx.wait_for_events(all.len() * 2, WAIT).await.unwrap();

    for (who, want) in &expected {
        let mails = bed.wait_for_mail(who, want.len(), WAIT).await.unwrap();
        let mut want = want.clone();
        want.sort();
        assert_eq!(subjects(&mails), want, "mails of {who}");
        for m in &mails {
            assert_eq!(m.from().as_deref(), Some(device_mail.as_str()));
            assert_eq!(
                m.header("Auto-Submitted").as_deref(),
                Some("auto-generated")
            );
            let body = m.text_body().unwrap_or_default();
            for part in [
                "Building A, 1F lobby",
                "lobby-c6020.printwatch.test",
                "192.0.2.10",
                "IPP, SNMPv2c",
                "Facilities desk: extension 1234.",
            ] {
                assert!(
                    body.contains(part),
                    "{part:?} missing from {:?}:\n{body}",
                    m.subject()
                );
            }
            let service_call = m.subject()
                == Some(
                    subject(
                        AlertItem::ServiceCall,
                        TransitionKind::Occurred,
                        Language::Ja,
                    )
                    .as_str(),
                );
            assert_eq!(
                body.contains(CALL_JA),
                service_call,
                "service-provider line in {:?}:\n{body}",
                m.subject()
            );
        }
        bed.ensure_mail_count_stays(who, want.len(), Duration::from_secs(2))
            .await
            .unwrap();
    }
    // An address in a group no item uses gets nothing.
    assert_eq!(bed.mailbox_count(&bystander).await.unwrap_or(0), 0);
}

#[tokio::test]
async fn english_subjects_extra_groups_recovery_off_and_threading() {
    let bed = MailBed::shared().unwrap();
    let a = bed.fresh_address("t-a");
    let c = bed.fresh_address("t-c");
    let device_mail = bed.fresh_address("t-printer");
    let config = format!(
        r#"{mail}
[alerts.groups]
ga = ["{a}"]
gc = ["{c}"]

[alerts.items.paper_jam]
groups = ["ga"]
[alerts.items.cover_open]
groups = ["ga"]
notify_recovery = false

[[devices]]
id = "p2"
location = "3F office"
mail_address = "{device_mail}"
source = "simulated"
common_body = "Spare paper is in the cabinet."
extra_groups = ["gc"]
"#,
        mail = mail_section(&bed, bed.smtps_port(), &bed.password_for("notify"), "en")
            .replace("security = \"starttls\"", "security = \"tls\""),
    );
    let fx = AgentFixture::start(&config).await.unwrap();
    let _notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    fx.wait_until_read("p2", WAIT).await.unwrap();
    let mut agent = fx.client().await.unwrap();
    agent
        .set_condition(raise("p2", "paper_jam", "Tray 2"))
        .await
        .unwrap();
    agent
        .set_condition(raise("p2", "cover_open", "Front cover"))
        .await
        .unwrap();
    agent
        .set_condition(raise("p2", "toner_empty", "Black"))
        .await
        .unwrap();
    fx.wait_for_events(3, WAIT).await.unwrap();
    for item in ["paper_jam", "cover_open", "toner_empty"] {
        agent.set_condition(clear("p2", item)).await.unwrap();
    }
    fx.wait_for_events(6, WAIT).await.unwrap();

    let en = |item, t| subject(item, t, Language::En);
    let mut want_a = vec![
        en(AlertItem::PaperJam, TransitionKind::Occurred),
        en(AlertItem::PaperJam, TransitionKind::Recovered),
        en(AlertItem::CoverOpen, TransitionKind::Occurred),
    ];
    want_a.sort();
    assert!(want_a[0].starts_with("Alert "), "{want_a:?}");
    let mails_a = bed.wait_for_mail(&a, 3, WAIT).await.unwrap();
    assert_eq!(subjects(&mails_a), want_a);
    // The extra group gets every alert of the device, toner_empty too.
    let mut want_c = want_a.clone();
    want_c.push(en(AlertItem::TonerEmpty, TransitionKind::Occurred));
    want_c.push(en(AlertItem::TonerEmpty, TransitionKind::Recovered));
    want_c.sort();
    let mails_c = bed.wait_for_mail(&c, 5, WAIT).await.unwrap();
    assert_eq!(subjects(&mails_c), want_c);
    bed.ensure_mail_count_stays(&a, 3, Duration::from_secs(2))
        .await
        .unwrap();

    let by_subject: HashMap<String, &ReceivedMail> = mails_a
        .iter()
        .map(|m| (m.subject().unwrap_or_default().to_owned(), m))
        .collect();
    let occurred = by_subject[&en(AlertItem::PaperJam, TransitionKind::Occurred)];
    let recovered = by_subject[&en(AlertItem::PaperJam, TransitionKind::Recovered)];
    let id = occurred.header("Message-ID").unwrap();
    assert_eq!(
        recovered.header("In-Reply-To").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(recovered.header("References").as_deref(), Some(id.as_str()));
    assert_eq!(
        occurred.header("Reply-To").as_deref(),
        Some(format!("alice@{}", bed.domain()).as_str())
    );
    let body = occurred.text_body().unwrap();
    assert!(
        body.contains("Tray 2")
            && body.contains("3F office")
            && body.contains("Spare paper is in the cabinet."),
        "{body}"
    );
}

/// Events published straight onto the stream, as an agent would.
async fn publish_events(fx: &AgentFixture, n: usize) -> Vec<String> {
    let js = fx.jetstream().await.unwrap();
    let builder = EventBuilder {
        agent: fx.grpc_url.clone(),
        device: DeviceIdentity {
            id: "p1".into(),
            name: "Lobby".into(),
            location: "1F".into(),
            ..Default::default()
        },
        protocols: ProtocolSettings::default(),
    };
    let policy = PublishPolicy {
        attempts: 5,
        ack_timeout: Duration::from_secs(5),
    };
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let ev = builder.occurred(AlertItem::PaperJam, &format!("jam {i}"), SystemTime::now());
        printwatch_bus::publish_event(&js, &fx.names, &ev, policy)
            .await
            .unwrap();
        ids.push(ev.event_id);
    }
    ids
}

/// Waits until `address` holds one mail per id and checks none came twice.
async fn assert_each_mailed_once(bed: &MailBed, address: &str, ids: &[String]) {
    let mails = bed
        .wait_for_mail(address, ids.len(), Duration::from_secs(180))
        .await
        .unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &mails {
        *seen
            .entry(m.header("X-Printwatch-Event-Id").unwrap_or_default())
            .or_default() += 1;
    }
    let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        missing.is_empty() && twice.is_empty(),
        "{} missing, twice: {twice:?}",
        missing.len()
    );
    assert_eq!(mails.len(), ids.len());
    bed.ensure_mail_count_stays(address, ids.len(), Duration::from_secs(3))
        .await
        .unwrap();
}

fn one_group_config(bed: &MailBed, port: u16, password: &str, to: &str) -> String {
    format!(
        "{}\n[alerts.groups]\nops = [\"{to}\"]\n[alerts.items.paper_jam]\ngroups = [\"ops\"]\n\n[[devices]]\nid = \"p1\"\nsource = \"simulated\"\n",
        mail_section(bed, port, password, "ja")
    )
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_does_not_block_the_next_event() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-dl");
    let fx = AgentFixture::start(&one_group_config(
        &bed,
        bed.submission_port(),
        &bed.password_for("notify"),
        &to,
    ))
    .await
    .unwrap();
    let notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    let js = fx.jetstream().await.unwrap();
    let subject = format!("{}.event.p1.occurred.paper_jam", fx.names.subject_prefix);
    js.publish(subject.clone(), "not a protobuf event".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let ids = publish_events(&fx, 1).await;
    assert_each_mailed_once(&bed, &to, &ids).await;

    let deadline = std::time::Instant::now() + WAIT;
    let dl_stream = format!("{}_DEADLETTER", fx.names.stream);
    let stored = loop {
        if let Ok(mut s) = js.get_stream(&dl_stream).await
            && s.info().await.unwrap().state.messages == 1
        {
            break s.get_raw_message(1).await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter; notifier log:\n{}",
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stored.subject.as_str(), fx.names.dead_letter_subject());
    assert_eq!(&stored.payload[..], b"not a protobuf event");
    let headers = stored.headers;
    assert_eq!(
        headers.get("Printwatch-Subject").map(|v| v.as_str()),
        Some(subject.as_str())
    );
    assert!(
        headers
            .get("Printwatch-Reason")
            .is_some_and(|v| v.as_str().contains("decode")),
        "{headers:?}"
    );
}

#[tokio::test]
async fn a_wrong_password_is_retried_and_the_event_is_not_lost() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-pw");
    let fx = AgentFixture::start(&one_group_config(
        &bed,
        bed.submission_port(),
        "wrong-password",
        &to,
    ))
    .await
    .unwrap();
    let mut notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    let ids = publish_events(&fx, 1).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(bed.mailbox_count(&to).await.unwrap_or(0), 0);
    let log = notifier.log();
    assert!(
        log.contains("auth"),
        "the log names the auth failure:\n{log}"
    );
    assert!(
        !log.contains("wrong-password"),
        "the password is never logged"
    );
    notifier.terminate(Duration::from_secs(40)).unwrap();

    // The operator fixes the password; the event is mailed once.
    let text = std::fs::read_to_string(&fx.config_path)
        .unwrap()
        .replace("wrong-password", &bed.password_for("notify"));
    std::fs::write(&fx.config_path, text).unwrap();
    let _notifier = fx
        .start_service("printwatch-notifier", "notifier2")
        .unwrap();
    assert_each_mailed_once(&bed, &to, &ids).await;
}

#[tokio::test]
async fn mails_held_while_the_mail_server_is_unreachable_arrive_once_it_is_back() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-down");
    let target = format!("127.0.0.1:{}", bed.submission_port())
        .parse()
        .unwrap();
    let mut proxy = TcpProxy::start(target).await.unwrap();
    let fx = AgentFixture::start(&one_group_config(
        &bed,
        proxy.port(),
        &bed.password_for("notify"),
        &to,
    ))
    .await
    .unwrap();
    let _notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    proxy.down();
    let ids = publish_events(&fx, 100).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(bed.mailbox_count(&to).await.unwrap_or(0), 0);
    proxy.up().await.unwrap();
    assert_each_mailed_once(&bed, &to, &ids).await;
}

#[tokio::test]
async fn a_notifier_killed_in_the_middle_of_1000_events_mails_each_exactly_once_after_restart() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-kill");
    let fx = AgentFixture::start(&one_group_config(
        &bed,
        bed.submission_port(),
        &bed.password_for("notify"),
        &to,
    ))
    .await
    .unwrap();
    let ids = publish_events(&fx, 1000).await;
    let mut notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    // Kill it once a good part has gone out.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while bed.mailbox_count(&to).await.unwrap_or(0) < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "too slow:\n{}",
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    notifier.kill();
    let at_kill = bed.mailbox_count(&to).await.unwrap_or(0);
    assert!(at_kill < ids.len(), "all mails went out before the kill");
    notifier.restart().unwrap();

    // Nothing is ever mailed twice. A mail whose DATA the killed notifier
    // had begun but not finished is the documented window: it is logged as
    // uncertain (at most one per SMTP connection) and not sent again; every
    // other event arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    loop {
        let mails = bed.read_mailbox_now(&to).await.unwrap();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for m in &mails {
            *seen
                .entry(m.header("X-Printwatch-Event-Id").unwrap_or_default())
                .or_default() += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "mailed twice: {twice:?}");
        let log = notifier.log();
        let uncertain: Vec<&String> = ids
            .iter()
            .filter(|id| {
                log.contains("uncertain")
                    && log
                        .lines()
                        .any(|l| l.contains("uncertain") && l.contains(id.as_str()))
            })
            .collect();
        let missing: Vec<&String> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
        assert!(
            uncertain.len() <= 4,
            "more uncertain mails than SMTP connections: {uncertain:?}"
        );
        if missing.iter().all(|id| uncertain.contains(id)) {
            eprintln!(
                "{} of {} events mailed, {} uncertain (killed at {at_kill})",
                seen.len(),
                ids.len(),
                uncertain.len()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} events neither mailed nor reported uncertain",
            missing.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    bed.ensure_mail_count_stays(
        &to,
        bed.mailbox_count(&to).await.unwrap(),
        Duration::from_secs(3),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn two_replicas_share_the_events_and_mail_each_exactly_once() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-two");
    let fx = AgentFixture::start(&one_group_config(
        &bed,
        bed.submission_port(),
        &bed.password_for("notify"),
        &to,
    ))
    .await
    .unwrap();
    let one = fx
        .start_service("printwatch-notifier", "notifier-1")
        .unwrap();
    let two = fx
        .start_service("printwatch-notifier", "notifier-2")
        .unwrap();
    let ids = publish_events(&fx, 300).await;
    assert_each_mailed_once(&bed, &to, &ids).await;
    // Both did part of the work.
    for n in [&one, &two] {
        assert!(
            n.log().contains("mail accepted by the SMTP server"),
            "a replica sent nothing:\n{}",
            n.log()
        );
    }
}

#[tokio::test]
async fn a_refused_recipient_neither_holds_up_the_others_nor_makes_them_get_a_second_mail() {
    let bed = MailBed::shared().unwrap();
    let good = bed.fresh_address("t-good");
    let refused = bed.fresh_address("reject");
    let deferred = bed.fresh_address("defer");
    let config = format!(
        "{}\n[alerts.groups]\nops = [\"{good}\", \"{refused}\", \"{deferred}\"]\n[alerts.items.paper_jam]\ngroups = [\"ops\"]\n\n[[devices]]\nid = \"p1\"\nsource = \"simulated\"\n",
        mail_section(
            &bed,
            bed.submission_port(),
            &bed.password_for("notify"),
            "ja"
        )
    );
    let fx = AgentFixture::start(&config).await.unwrap();
    let notifier = fx.start_service("printwatch-notifier", "notifier").unwrap();
    let ids = publish_events(&fx, 1).await;
    assert_each_mailed_once(&bed, &good, &ids).await;
    // The deferred recipient (450) makes the event come again and again;
    // the good recipient still has exactly one mail after several rounds.
    let deadline = std::time::Instant::now() + WAIT;
    while notifier
        .log()
        .matches("refused for now; will retry")
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no retries:\n{}",
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bed.ensure_mail_count_stays(&good, 1, Duration::from_secs(2))
        .await
        .unwrap();
    let log = notifier.log();
    assert_eq!(
        log.matches("recipient refused for good; not retried")
            .count(),
        1,
        "{log}"
    );
    assert!(log.contains(&refused) && log.contains("550"), "{log}");
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_move_with_a_sent_mail_and_readyz_follows_nats() {
    use printwatch_testing::process::{free_port, http_get};
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-metrics");
    let mut fx = AgentFixture::start(&one_group_config(
        &bed,
        bed.submission_port(),
        &bed.password_for("notify"),
        &to,
    ))
    .await
    .unwrap();
    let port = free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let notifier = fx
        .start_service_with_env(
            "printwatch-notifier",
            "notifier",
            &[("PRINTWATCH_HTTP_LISTEN", &listen)],
        )
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while http_get(port, "/readyz").await.map(|(c, _)| c).unwrap_or(0) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "never ready:\n{}",
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(port, "/healthz").await.unwrap().0, 200);
    let (_, before) = http_get(port, "/metrics").await.unwrap();
    let sent_before = metric(&before, "printwatch_notifier_mails_sent_total");
    let latency_before = metric(
        &before,
        "printwatch_notifier_delivery_latency_seconds_count",
    );

    fx.client()
        .await
        .unwrap()
        .set_condition(SetConditionRequest {
            device_id: "p1".into(),
            item: "paper_jam".into(),
            active: true,
            detail: "Tray 1".into(),
            toner_level_percent: None,
        })
        .await
        .unwrap();
    bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    let (_, after) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(
        metric(&after, "printwatch_notifier_mails_sent_total"),
        sent_before + 1.0,
        "{after}"
    );
    assert_eq!(
        metric(&after, "printwatch_notifier_delivery_latency_seconds_count"),
        latency_before + 1.0,
        "{after}"
    );

    // NATS away: not ready; back: ready again.
    fx.nats.stop();
    let deadline = std::time::Instant::now() + WAIT;
    while http_get(port, "/readyz").await.map(|(c, _)| c).unwrap_or(0) != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready without NATS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        http_get(port, "/healthz").await.unwrap().0,
        200,
        "alive all the same"
    );
    fx.nats.restart().unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while http_get(port, "/readyz").await.map(|(c, _)| c).unwrap_or(0) != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "not ready again after NATS came back:\n{}",
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
