//! The device-agent against a real nats-server with JetStream: events on
//! the stream, restarts, the simulated toner level, status over gRPC.

use std::time::Duration;

use async_nats::jetstream::kv;
use printwatch_agent::source::simulated::SimState;
use printwatch_events::{AlertItem, TransitionKind};
use printwatch_proto::v1::{GetDeviceStatusRequest, ListDevicesRequest};
use printwatch_testing::agent::{AgentFixture, clear, raise, toner};

const WAIT: Duration = Duration::from_secs(20);

const FLEET: &str = r#"
[alerts.items.toner_low_level]
threshold_percent = 20

[[devices]]
id = "p1"
name = "Lobby printer"
location = "1F lobby"
serial = "C6020-0001"
mail_address = "printer1@printwatch.test"
source = "simulated"
host_name = "lobby-c6020"
addresses = ["192.0.2.10"]

[[devices]]
id = "p2"
name = "Office printer"
location = "3F office"
mail_address = "printer2@printwatch.test"
source = "simulated"
"#;

#[tokio::test]
async fn raising_a_condition_puts_exactly_one_occurred_event_on_the_stream_and_clearing_it_one_recovered()
 {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let mut client = fx.client().await.unwrap();

    let resp = client
        .set_condition(raise("p1", "paper_jam", "Tray 2"))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.changed);
    let events = fx.wait_for_events(1, WAIT).await.unwrap();
    assert_eq!(events.len(), 1);
    let occurred = &events[0];
    assert_eq!(
        occurred.subject,
        format!("{}.event.p1.occurred.paper_jam", fx.names.subject_prefix)
    );
    assert_eq!(
        occurred.msg_id.as_deref(),
        Some(occurred.event.event.event_id.as_str())
    );
    assert_eq!(occurred.event.item, AlertItem::PaperJam);
    assert_eq!(occurred.event.transition, TransitionKind::Occurred);
    assert_eq!(occurred.event.event.device_id, "p1");
    assert_eq!(occurred.event.event.detail, "Tray 2");
    let dev = occurred.event.event.device.clone().unwrap();
    assert_eq!(dev.location, "1F lobby");
    assert_eq!(dev.mail_address, "printer1@printwatch.test");
    let protocols = occurred.event.event.protocols.clone().unwrap();
    assert_eq!(protocols.host_name, "lobby-c6020");
    assert_eq!(protocols.ipv4_addresses, vec!["192.0.2.10".to_owned()]);
    let observed =
        printwatch_events::event::to_system_time(occurred.event.event.observed_at.as_ref());
    let age = std::time::SystemTime::now()
        .duration_since(observed)
        .unwrap();
    assert!(age < Duration::from_secs(60), "observed_at is {age:?} old");

    // Raising it again changes nothing and publishes nothing.
    let again = client
        .set_condition(raise("p1", "paper_jam", "Tray 2"))
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    // Several polls pass; still one event.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(fx.events().await.unwrap().len(), 1);

    let cleared = client
        .set_condition(clear("p1", "paper_jam"))
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.changed);
    let events = fx.wait_for_events(2, WAIT).await.unwrap();
    assert_eq!(events.len(), 2);
    let recovered = &events[1];
    assert_eq!(
        recovered.subject,
        format!("{}.event.p1.recovered.paper_jam", fx.names.subject_prefix)
    );
    assert_eq!(recovered.event.transition, TransitionKind::Recovered);
    assert_eq!(
        recovered.event.event.occurred_event_id,
        occurred.event.event.event_id
    );
    assert_ne!(
        recovered.event.event.event_id,
        occurred.event.event.event_id
    );
    assert_eq!(
        recovered.msg_id.as_deref(),
        Some(recovered.event.event.event_id.as_str())
    );
}

#[tokio::test]
async fn an_agent_killed_and_restarted_announces_only_what_changed_while_it_was_down() {
    let mut fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let mut client = fx.client().await.unwrap();
    client
        .set_condition(raise("p1", "cover_open", "Front cover"))
        .await
        .unwrap();
    client
        .set_condition(raise("p1", "toner_empty", "Black"))
        .await
        .unwrap();
    client
        .set_condition(raise("p2", "paper_out", "Tray 1"))
        .await
        .unwrap();
    assert_eq!(fx.wait_for_events(3, WAIT).await.unwrap().len(), 3);

    fx.agent.kill();

    // While the agent is down the printer's toner is replaced and its tray
    // removed; the cover stays open.
    let js = fx.jetstream().await.unwrap();
    let sim: kv::Store = js
        .get_key_value(format!("{}simulated", fx.names.bucket_prefix))
        .await
        .unwrap();
    let entry = sim
        .get("p1")
        .await
        .unwrap()
        .expect("simulator state stored");
    let mut state: SimState = serde_json::from_slice(&entry).unwrap();
    state.conditions.remove(&AlertItem::TonerEmpty);
    state
        .conditions
        .insert(AlertItem::TrayError, "Tray 2 missing".into());
    sim.put("p1", serde_json::to_vec(&state).unwrap().into())
        .await
        .unwrap();

    fx.agent.restart().unwrap();
    fx.wait_for_grpc(WAIT).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    fx.wait_until_read("p2", WAIT).await.unwrap();
    let events = fx.wait_for_events(5, WAIT).await.unwrap();
    // Let a few more polls pass to catch anything extra.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let events_after = fx.events().await.unwrap();
    assert_eq!(
        events_after.len(),
        5,
        "{:?}",
        events_after.iter().map(|e| &e.subject).collect::<Vec<_>>()
    );
    let new: Vec<String> = events[3..].iter().map(|e| e.subject.clone()).collect();
    let p = &fx.names.subject_prefix;
    assert!(
        new.contains(&format!("{p}.event.p1.recovered.toner_empty")),
        "{new:?}"
    );
    assert!(
        new.contains(&format!("{p}.event.p1.occurred.tray_error")),
        "{new:?}"
    );

    let status = fx.status("p1").await.unwrap();
    let items: Vec<&str> = status.conditions.iter().map(|c| c.item.as_str()).collect();
    assert_eq!(items, vec!["cover_open", "tray_error"]);
}

#[tokio::test]
async fn toner_low_level_fires_once_below_the_threshold_and_recovers_once_above_it() {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p2", WAIT).await.unwrap();
    let mut client = fx.client().await.unwrap();

    assert!(
        !client
            .set_condition(toner("p2", 50))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    assert!(
        client
            .set_condition(toner("p2", 15))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    assert!(
        !client
            .set_condition(toner("p2", 10))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    let events = fx.wait_for_events(1, WAIT).await.unwrap();
    assert_eq!(events[0].event.item, AlertItem::TonerLowLevel);
    assert_eq!(events[0].event.transition, TransitionKind::Occurred);
    assert!(
        events[0].event.event.detail.contains("15%"),
        "{}",
        events[0].event.event.detail
    );

    assert!(
        client
            .set_condition(toner("p2", 40))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    assert!(
        !client
            .set_condition(toner("p2", 90))
            .await
            .unwrap()
            .into_inner()
            .changed
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    let events = fx.events().await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].event.item, AlertItem::TonerLowLevel);
    assert_eq!(events[1].event.transition, TransitionKind::Recovered);

    let status = fx.status("p2").await.unwrap();
    assert_eq!(status.supplies[0].level_percent, 90);
    // toner_low_level follows the level; it cannot be raised by hand.
    let err = client
        .set_condition(raise("p2", "toner_low_level", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn a_device_that_has_not_been_read_answers_unavailable_and_bad_requests_are_refused() {
    let fleet = format!(
        "{FLEET}\n[[devices]]\nid = \"booting\"\nsource = \"simulated\"\n[devices.simulated]\nboot_delay = \"1h\"\n"
    );
    let fx = AgentFixture::start(&fleet).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let mut client = fx.client().await.unwrap();

    let err = client
        .get_device_status(GetDeviceStatusRequest {
            device_id: "booting".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    let err = client
        .get_device_status(GetDeviceStatusRequest {
            device_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = client
        .set_condition(raise("p1", "coffee_empty", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = client.set_condition(toner("p1", 101)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    let list = client
        .list_devices(ListDevicesRequest {})
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<String> = list
        .devices
        .iter()
        .map(|d| d.device.clone().unwrap().id)
        .collect();
    assert_eq!(ids, vec!["booting", "p1", "p2"]);
    assert_eq!(
        list.devices[0].state,
        printwatch_proto::v1::DeviceState::Unknown as i32
    );
    assert_eq!(
        list.devices[1].state,
        printwatch_proto::v1::DeviceState::Ready as i32
    );
}

#[tokio::test]
async fn each_device_is_registered_with_the_agents_advertise_url() {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let js = fx.jetstream().await.unwrap();
    let registry = js
        .get_key_value(format!("{}devices", fx.names.bucket_prefix))
        .await
        .unwrap();
    for id in ["p1", "p2"] {
        let entry = registry.get(id).await.unwrap().expect("device registered");
        let json: serde_json::Value = serde_json::from_slice(&entry).unwrap();
        assert_eq!(json["agent"], fx.grpc_url.as_str());
    }
}

#[tokio::test]
async fn the_agent_stops_cleanly_on_sigterm() {
    let mut fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let status = fx.agent.terminate(Duration::from_secs(15)).unwrap();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        fx.agent.log()
    );
    assert!(fx.agent.log().contains("agent stopped"));
}

#[tokio::test]
async fn get_device_status_reports_identity_conditions_supplies_trays_and_protocols() {
    let fx = AgentFixture::start(FLEET).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    let mut client = fx.client().await.unwrap();
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    client
        .set_condition(raise("p1", "cover_open", "Front cover"))
        .await
        .unwrap();
    fx.wait_for_events(1, WAIT).await.unwrap();

    let status = fx.status("p1").await.unwrap();
    let dev = status.device.clone().unwrap();
    assert_eq!(
        (dev.id.as_str(), dev.name.as_str(), dev.model.as_str()),
        ("p1", "Lobby printer", "RICOH IP C6020")
    );
    assert_eq!(dev.serial, "C6020-0001");
    assert_eq!(dev.location, "1F lobby");
    assert_eq!(dev.mail_address, "printer1@printwatch.test");
    assert_eq!(
        status.state(),
        printwatch_proto::v1::DeviceState::Error,
        "an open cover stops the printer"
    );
    assert_eq!(status.conditions.len(), 1);
    let cond = &status.conditions[0];
    assert_eq!(
        (cond.item.as_str(), cond.detail.as_str()),
        ("cover_open", "Front cover")
    );
    let since = printwatch_events::event::to_system_time(cond.since.as_ref());
    assert!(
        since >= before,
        "the condition began {since:?}, before it was raised"
    );
    assert!(!status.supplies.is_empty(), "toner levels are reported");
    assert!(
        status
            .supplies
            .iter()
            .all(|s| (0..=100).contains(&s.level_percent))
    );
    assert!(!status.trays.is_empty(), "paper trays are reported");
    let protocols = status.protocols.clone().unwrap();
    assert_eq!(protocols.host_name, "lobby-c6020");
    assert_eq!(protocols.ipv4_addresses, vec!["192.0.2.10".to_owned()]);

    // The other device is untouched and ready.
    let p2 = fx.status("p2").await.unwrap();
    assert_eq!(p2.state(), printwatch_proto::v1::DeviceState::Ready);
    assert!(p2.conditions.is_empty());
}

#[tokio::test]
async fn the_standard_grpc_health_service_reports_serving() {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let fx = AgentFixture::start(FLEET).await.unwrap();
    let channel = tonic::transport::Endpoint::from_shared(fx.grpc_url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status(), ServingStatus::Serving);
    let agent = health
        .check(HealthCheckRequest {
            service: "printwatch.v1.DeviceAgent".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(agent.status(), ServingStatus::Serving);
}

#[tokio::test]
async fn the_operations_port_counts_published_events_and_follows_nats() {
    use printwatch_testing::process::{free_port, http_get};
    let port = free_port().unwrap();
    let mut fx = AgentFixture::start(FLEET).await.unwrap();
    // Run the fixture's agent again, now with the operations port.
    fx.agent.kill();
    let listen = format!("127.0.0.1:{port}");
    fx.agent = fx
        .start_service_with_env(
            "printwatch-agent",
            "agent-ops",
            &[("PRINTWATCH_HTTP_LISTEN", &listen)],
        )
        .unwrap();
    fx.wait_for_grpc(WAIT).await.unwrap();
    fx.wait_until_read("p1", WAIT).await.unwrap();
    assert_eq!(http_get(port, "/readyz").await.unwrap().0, 200);
    let count = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("printwatch_agent_events_published_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let before = count(&http_get(port, "/metrics").await.unwrap().1);
    fx.client()
        .await
        .unwrap()
        .set_condition(raise("p1", "paper_jam", "Tray 1"))
        .await
        .unwrap();
    fx.wait_for_events(1, WAIT).await.unwrap();
    let metrics = http_get(port, "/metrics").await.unwrap().1;
    let after = count(&metrics);
    assert_eq!(after, before + 1.0);
    // The raised item is counted among the active conditions.
    let deadline = std::time::Instant::now() + WAIT;
    while !http_get(port, "/metrics")
        .await
        .unwrap()
        .1
        .contains("printwatch_agent_active_conditions{item=\"paper_jam\"} 1")
    {
        assert!(std::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fx.nats.stop();
    let deadline = std::time::Instant::now() + WAIT;
    while http_get(port, "/readyz").await.map(|r| r.0).unwrap_or(0) != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready without NATS"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(http_get(port, "/healthz").await.unwrap().0, 200);
}
