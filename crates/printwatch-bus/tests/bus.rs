//! The stream, buckets and publishing against a real nats-server (2.9, as
//! Debian ships it): what a fresh or an operator-tuned server ends up with,
//! and that a publish retried across a server restart lands once.

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, stream};
use printwatch_bus::{PublishPolicy, ensure_bucket, ensure_stream, publish_event};
use printwatch_events::{AlertItem, EventBuilder, Names};
use printwatch_proto::v1::{DeviceIdentity, ProtocolSettings};
use printwatch_testing::{nats::NatsServer, unique_name};

fn names() -> Names {
    let tag = unique_name("t");
    Names {
        subject_prefix: format!("pw{tag}"),
        stream: format!("EVENTS{tag}"),
        bucket_prefix: format!("pw{tag}_"),
    }
}

fn builder() -> EventBuilder {
    EventBuilder {
        agent: "http://127.0.0.1:1".into(),
        device: DeviceIdentity {
            id: "lobby-1".into(),
            ..Default::default()
        },
        protocols: ProtocolSettings::default(),
    }
}

async fn message_count(js: &jetstream::Context, names: &Names) -> anyhow::Result<u64> {
    let mut s = js.get_stream(&names.stream).await?;
    Ok(s.info().await?.state.messages)
}

#[tokio::test]
async fn a_fresh_server_gets_the_stream_with_a_two_minute_duplicate_window() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let js = jetstream::new(nats.client().await?);
    let names = names();
    let info = ensure_stream(&js, &names, 1).await?;
    assert_eq!(info.config.subjects, vec![names.events_wildcard()]);
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.config.storage, stream::StorageType::File);
    // A second service starting changes nothing.
    let again = ensure_stream(&js, &names, 1).await?;
    assert_eq!(again.config.subjects, info.config.subjects);
    Ok(())
}

#[tokio::test]
async fn an_operator_tuned_stream_keeps_its_limits_and_gains_what_printwatch_needs()
-> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let js = jetstream::new(nats.client().await?);
    let names = names();
    js.create_stream(stream::Config {
        name: names.stream.clone(),
        subjects: vec![format!("{}.other.>", names.subject_prefix)],
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(10),
        ..Default::default()
    })
    .await?;
    let info = ensure_stream(&js, &names, 1).await?;
    assert!(
        info.config.subjects.contains(&names.events_wildcard()),
        "{:?}",
        info.config.subjects
    );
    assert!(
        info.config
            .subjects
            .contains(&format!("{}.other.>", names.subject_prefix))
    );
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(info.config.max_bytes, 1 << 20);
    assert_eq!(info.config.max_age, Duration::from_secs(3600));
    Ok(())
}

#[tokio::test]
async fn a_bucket_is_created_once_and_shared() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let js = jetstream::new(nats.client().await?);
    let bucket = format!("{}conditions", names().bucket_prefix);
    let first = ensure_bucket(&js, &bucket, 1).await?;
    first.put("lobby-1", "one".into()).await?;
    let second = ensure_bucket(&js, &bucket, 1).await?;
    let value = second
        .get("lobby-1")
        .await?
        .expect("the value put through the first handle");
    assert_eq!(&value[..], b"one");
    Ok(())
}

#[tokio::test]
async fn an_event_published_twice_is_stored_once() -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let js = jetstream::new(nats.client().await?);
    let names = names();
    ensure_stream(&js, &names, 1).await?;
    let ev = builder().occurred(AlertItem::PaperJam, "Tray 2", SystemTime::now());
    let policy = PublishPolicy {
        attempts: 3,
        ack_timeout: Duration::from_secs(5),
    };
    let (seq, duplicate) = publish_event(&js, &names, &ev, policy).await?;
    assert!(!duplicate);
    let (seq2, duplicate2) = publish_event(&js, &names, &ev, policy).await?;
    assert!(
        duplicate2,
        "the same Nats-Msg-Id must be dropped as a duplicate"
    );
    assert_eq!(seq, seq2);
    assert_eq!(message_count(&js, &names).await?, 1);
    Ok(())
}

#[tokio::test]
async fn a_publish_retried_across_a_server_restart_lands_once() -> anyhow::Result<()> {
    let mut nats = NatsServer::start()?;
    let js = jetstream::new(nats.client().await?);
    let names = names();
    ensure_stream(&js, &names, 1).await?;
    let ev = builder().occurred(AlertItem::CoverOpen, "Front cover", SystemTime::now());

    nats.stop();
    let publisher = {
        let (js, names, ev) = (js.clone(), names.clone(), ev.clone());
        tokio::spawn(async move {
            let policy = PublishPolicy {
                attempts: 30,
                ack_timeout: Duration::from_millis(500),
            };
            publish_event(&js, &names, &ev, policy).await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart()?;
    let (_, _) = tokio::time::timeout(Duration::from_secs(60), publisher).await???;

    let js = jetstream::new(nats.client().await?);
    assert_eq!(message_count(&js, &names).await?, 1);
    let s = js.get_stream(&names.stream).await?;
    let stored = s.get_raw_message(1).await?;
    let decoded = printwatch_events::event::decode(&stored.payload)?;
    assert_eq!(decoded.event.event_id, ev.event_id);
    Ok(())
}
