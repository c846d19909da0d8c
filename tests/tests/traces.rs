//! Traces across processes: one raise is one trace from the agent through
//! NATS to the notifier's SMTP send, seen by a real OTLP receiver in the
//! test; the delivered mail names that trace.

use std::time::{Duration, Instant};

use printwatch_proto::v1::SetConditionRequest;
use printwatch_testing::agent::AgentFixture;
use printwatch_testing::mail::MailBed;
use printwatch_testing::otlp::{OtlpReceiver, ReceivedSpan};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn one_raise_is_one_trace_from_the_agent_to_the_smtp_send() {
    let bed = MailBed::shared().unwrap();
    let to = bed.fresh_address("t-trace");
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let config = format!(
        r#"
[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
ca_file = "{ca}"
auth = true
username = "notify"
password = "{password}"

[mail.account]
address = "notify@{domain}"

[alerts.groups]
ops = ["{to}"]
[alerts.items.paper_jam]
groups = ["ops"]

[[devices]]
id = "p1"
source = "simulated"
"#,
        port = bed.submission_port(),
        ca = bed.ca_file().display(),
        password = bed.password_for("notify"),
        domain = bed.domain(),
    );
    let mut fx = AgentFixture::start(&config).await.unwrap();
    fx.agent.kill();
    fx.agent = fx
        .start_service_with_env("printwatch-agent", "agent-traced", &env)
        .unwrap();
    fx.wait_for_grpc(WAIT).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let notifier = fx
        .start_service_with_env("printwatch-notifier", "notifier", &env)
        .unwrap();

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
    let mails = bed.wait_for_mail(&to, 1, WAIT).await.unwrap();
    let trace_id = mails[0]
        .header("X-Printwatch-Trace-Id")
        .unwrap_or_else(|| panic!("no trace id header:\n{}", mails[0].raw_text()));

    let find = |spans: &[ReceivedSpan], service: &str, name: &str| {
        spans
            .iter()
            .find(|s| s.trace_id == trace_id && s.service == service && s.name == name)
            .cloned()
    };
    let deadline = Instant::now() + WAIT;
    let (agent, consume, route, smtp) = loop {
        let spans = receiver.spans();
        if let (Some(a), Some(c), Some(r), Some(s)) = (
            find(&spans, "printwatch-agent", "alert event"),
            find(&spans, "printwatch-notifier", "notifier consume"),
            find(&spans, "printwatch-notifier", "route and mail"),
            find(&spans, "printwatch-notifier", "smtp send"),
        ) {
            break (a, c, r, s);
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} incomplete: {:?}\nnotifier log:\n{}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name, &s.trace_id))
                .collect::<Vec<_>>(),
            notifier.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        agent.parent_span_id.is_empty(),
        "the agent's span starts the trace"
    );
    assert_eq!(
        consume.parent_span_id, agent.span_id,
        "the notifier continues the agent's span"
    );
    assert_eq!(route.parent_span_id, consume.span_id);
    assert_eq!(smtp.parent_span_id, route.span_id);
    // Log lines inside the trace's spans name it.
    assert!(notifier.log().contains(&trace_id), "{}", notifier.log());
    let attr = |s: &ReceivedSpan, k: &str| {
        s.attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr(&agent, "printwatch.device.id").as_deref(), Some("p1"));
    assert_eq!(
        attr(&agent, "printwatch.alert.item").as_deref(),
        Some("paper_jam")
    );
    assert_eq!(attr(&agent, "messaging.system").as_deref(), Some("nats"));
    assert_eq!(attr(&smtp, "smtp.reply").as_deref(), Some("250"));
    // Never a password or a mail body in a span.
    let secret = bed.password_for("notify");
    for s in receiver.spans() {
        assert!(
            s.attributes.iter().all(|(_, v)| !v.contains(&secret)),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn without_an_endpoint_nothing_about_tracing_is_logged() {
    let fx = AgentFixture::start("[[devices]]\nid = \"p1\"\nsource = \"simulated\"\n")
        .await
        .unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let log = fx.agent.log().to_lowercase();
    assert!(
        !log.contains("opentelemetry") && !log.contains("otlp") && !log.contains("trace export"),
        "{log}"
    );
}

#[tokio::test]
async fn one_request_mail_is_one_trace_through_the_inbox_and_the_agent() {
    let bed = MailBed::shared().unwrap();
    let account = bed.fresh_address("t-inbox");
    let ops = bed.fresh_address("t-ops");
    let receiver = OtlpReceiver::start().await.unwrap();
    let endpoint = receiver.endpoint();
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let config = format!(
        r#"
[mail.smtp]
host = "127.0.0.1"
port = {port}
security = "starttls"
ca_file = "{ca}"
auth = true
username = "notify"
password = "{password}"

[mail.account]
address = "{account}"
receive = true
username = "{account}"
password = "{account_password}"

[mail.receive]
protocol = "imap"
host = "127.0.0.1"
port = {imaps}
security = "tls"
ca_file = "{ca}"
poll_interval = "1s"

[on_demand]
allowed_senders = ["{ops}"]

[[devices]]
id = "p1"
mail_address = "p1-dev@{domain}"
source = "simulated"
"#,
        port = bed.submission_port(),
        imaps = bed.imaps_port(),
        ca = bed.ca_file().display(),
        password = bed.password_for("notify"),
        account_password = bed.password_for(&account),
        domain = bed.domain(),
    );
    let mut fx = AgentFixture::start(&config).await.unwrap();
    fx.agent.kill();
    fx.agent = fx
        .start_service_with_env("printwatch-agent", "agent-traced", &env)
        .unwrap();
    fx.wait_for_grpc(WAIT).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let inbox = fx
        .start_service_with_env("printwatch-inbox", "inbox", &env)
        .unwrap();
    let raw = format!(
        "From: {ops}\r\nTo: p1-dev@{}\r\nSubject: requeststatus\r\nMessage-ID: <trace-req@example.test>\r\n\r\nplease\r\n",
        bed.domain()
    );
    bed.send_raw(&ops, &[&account], raw.as_bytes())
        .await
        .unwrap();
    let replies = bed
        .wait_for_mail(&ops, 1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", inbox.log()));
    let trace_id = replies[0]
        .header("X-Printwatch-Trace-Id")
        .expect("the reply names its trace");
    let deadline = Instant::now() + WAIT;
    loop {
        let spans = receiver.spans();
        let inbox_span = spans.iter().find(|s| {
            s.trace_id == trace_id && s.service == "printwatch-inbox" && s.name == "inbox message"
        });
        let agent_span = spans.iter().find(|s| {
            s.trace_id == trace_id && s.service == "printwatch-agent" && s.name == "GetDeviceStatus"
        });
        if let (Some(i), Some(a)) = (inbox_span, agent_span) {
            assert!(i.parent_span_id.is_empty(), "the mail starts the trace");
            assert_eq!(
                a.parent_span_id, i.span_id,
                "the agent's span continues the inbox's"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "trace {trace_id} incomplete: {:?}",
            spans
                .iter()
                .map(|s| (&s.service, &s.name))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
