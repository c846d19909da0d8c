//! printwatch's use of NATS, in one place, so every service connects,
//! names its stream and buckets, and publishes events the same way.
//!
//! - [`connect`]: a client from `[nats]` (user/password, token, creds file,
//!   nkey, TLS), retrying until the server answers.
//! - [`ensure_stream`] / [`ensure_bucket`]: create or update the events
//!   stream and the `printwatch_*` key-value buckets, whichever service
//!   starts first (SPEC §3.2).
//! - [`publish_event`]: publish with `Nats-Msg-Id` = the event id and retry
//!   with the same id, so JetStream's duplicate window makes a retry safe.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_nats::{ConnectOptions, HeaderMap};
use printwatch_config::{NatsAuth, NatsConfig};
use printwatch_events::{AlertEvent, Names, TransitionKind, event};

/// How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate publish.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// What went wrong talking to NATS.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot read NATS credentials file {path}: {source}")]
    Credentials {
        path: String,
        source: std::io::Error,
    },
    #[error("NATS refused the credentials: {0}")]
    Auth(String),
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect { urls: String, reason: String },
    #[error("cannot create or update stream {stream}: {reason}")]
    Stream { stream: String, reason: String },
    #[error("cannot open key-value bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("publishing event {event_id} failed after {attempts} attempts: {reason}")]
    Publish {
        event_id: String,
        attempts: u32,
        reason: String,
    },
}

/// Connects to NATS as `[nats]` says. Authentication and TLS setup errors
/// are returned at once; an unreachable server is retried with backoff up
/// to `attempts` times (`None`: until it answers).
pub async fn connect(
    cfg: &NatsConfig,
    client_name: &str,
    attempts: Option<u32>,
) -> Result<async_nats::Client, BusError> {
    let urls = cfg.urls.join(",");
    let mut delay = Duration::from_millis(200);
    let mut tried = 0u32;
    loop {
        tried += 1;
        let options = options(cfg, client_name).await?;
        match options.connect(urls.as_str()).await {
            Ok(client) => return Ok(client),
            Err(err) => {
                use async_nats::ConnectErrorKind as K;
                let reason = err.to_string();
                match err.kind() {
                    K::Authentication | K::AuthorizationViolation => {
                        return Err(BusError::Auth(reason));
                    }
                    K::Tls | K::ServerParse => return Err(BusError::Connect { urls, reason }),
                    _ => {}
                }
                if attempts.is_some_and(|max| tried >= max) {
                    return Err(BusError::Connect { urls, reason });
                }
                tracing::warn!(nats.urls = %urls, error = %reason, retry_in = ?delay, "NATS not reachable yet");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn options(cfg: &NatsConfig, client_name: &str) -> Result<ConnectOptions, BusError> {
    let mut options = ConnectOptions::new()
        .name(cfg.name.clone().unwrap_or_else(|| client_name.to_owned()))
        .connection_timeout(cfg.connect_timeout)
        .max_reconnects(None);
    options = match &cfg.auth {
        NatsAuth::None => options,
        NatsAuth::UserPassword { user, password } => {
            options.user_and_password(user.clone(), password.expose().to_owned())
        }
        NatsAuth::Token(token) => options.token(token.expose().to_owned()),
        NatsAuth::NkeySeed(seed) => options.nkey(seed.expose().to_owned()),
        NatsAuth::CredsFile(path) => {
            options
                .credentials_file(path)
                .await
                .map_err(|source| BusError::Credentials {
                    path: path.display().to_string(),
                    source,
                })?
        }
    };
    if let Some(tls) = &cfg.tls {
        options = options.require_tls(tls.required);
        if let Some(ca) = &tls.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    Ok(options)
}

/// Creates the events stream, or updates it to the settings printwatch
/// needs: file storage, the events wildcard, a duplicate window.
pub async fn ensure_stream(
    js: &jetstream::Context,
    names: &Names,
    replicas: usize,
) -> Result<stream::Info, BusError> {
    let config = stream::Config {
        name: names.stream.clone(),
        subjects: vec![names.events_wildcard()],
        storage: stream::StorageType::File,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: replicas.max(1),
        max_age: Duration::from_secs(7 * 24 * 3600),
        description: Some("printwatch alert events (occurred / recovered)".into()),
        ..Default::default()
    };
    let failed = |e: &dyn std::fmt::Display| BusError::Stream {
        stream: names.stream.clone(),
        reason: e.to_string(),
    };
    match js.get_stream(&names.stream).await {
        Ok(mut existing) => {
            // Keep what an operator tuned (limits, replicas, placement);
            // correct only what printwatch relies on.
            let info = existing.info().await.map_err(|e| failed(&e))?.clone();
            let mut wanted = info.config.clone();
            if !wanted.subjects.contains(&config.subjects[0]) {
                wanted.subjects.push(config.subjects[0].clone());
            }
            if wanted.duplicate_window < DUPLICATE_WINDOW {
                wanted.duplicate_window = DUPLICATE_WINDOW;
            }
            if wanted.subjects == info.config.subjects
                && wanted.duplicate_window == info.config.duplicate_window
            {
                return Ok(info);
            }
            js.update_stream(wanted).await.map_err(|e| failed(&e))
        }
        Err(_) => match js.create_stream(config).await {
            Ok(stream) => Ok(stream.cached_info().clone()),
            // Another service may have created it meanwhile.
            Err(e) => js
                .get_stream(&names.stream)
                .await
                .map(|s| s.cached_info().clone())
                .map_err(|_| failed(&e)),
        },
    }
}

/// The stream that keeps dead letters (`<prefix>.deadletter.>`): events
/// no service could read, with the reason, for an operator to inspect.
/// Named `<stream>_DEADLETTER`; kept 30 days.
pub async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    names: &Names,
    replicas: usize,
) -> Result<String, BusError> {
    let name = format!("{}_DEADLETTER", names.stream);
    if js.get_stream(&name).await.is_ok() {
        return Ok(name);
    }
    let created = js
        .create_stream(stream::Config {
            name: name.clone(),
            description: Some("printwatch messages no service could read, with the reason".into()),
            subjects: vec![format!("{}.deadletter.>", names.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: replicas.max(1),
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await;
    match created {
        Ok(_) => Ok(name),
        Err(e) => js
            .get_stream(&name)
            .await
            .map(|_| name.clone())
            .map_err(|_| BusError::Stream {
                stream: name.clone(),
                reason: e.to_string(),
            }),
    }
}

/// Opens a key-value bucket, creating it (file storage, one value per key)
/// if it does not exist yet.
pub async fn ensure_bucket(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<kv::Store, BusError> {
    ensure_bucket_with_max_age(js, bucket, replicas, Duration::ZERO).await
}

/// [`ensure_bucket`] whose values expire `max_age` after they were written
/// (`Duration::ZERO`: never), for records that only matter for a while.
pub async fn ensure_bucket_with_max_age(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
    max_age: Duration,
) -> Result<kv::Store, BusError> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    // The bucket's stream is created here rather than with
    // `Context::create_key_value`, which first asks for the account info and
    // cannot parse the answer of a NATS 2.9 server (Debian 12's). The stream
    // is exactly what a KV bucket is (see async-nats `kv_to_stream_config`).
    let created = js
        .create_stream(stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(format!("printwatch key-value bucket {bucket}")),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: stream::StorageType::File,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: replicas.max(1),
            max_age,
            discard: stream::DiscardPolicy::New,
            ..Default::default()
        })
        .await;
    match created {
        Ok(_) => js
            .get_key_value(bucket)
            .await
            .map_err(|e| BusError::Bucket {
                bucket: bucket.to_owned(),
                reason: e.to_string(),
            }),
        // Another service may have created it between our get and create.
        Err(e) => js
            .get_key_value(bucket)
            .await
            .map_err(|_| BusError::Bucket {
                bucket: bucket.to_owned(),
                reason: e.to_string(),
            }),
    }
}

/// How hard [`publish_event`] tries.
#[derive(Debug, Clone, Copy)]
pub struct PublishPolicy {
    /// Attempts in all, at least one.
    pub attempts: u32,
    /// How long to wait for the server's ack of one attempt.
    pub ack_timeout: Duration,
}

/// Publishes one event on its subject with `Nats-Msg-Id`, waiting for the
/// stream's ack and retrying with the same id on failure (async-nats does
/// not retry a publish that finds no stream, so this does).
/// Returns the stream sequence and whether JetStream saw it as a duplicate.
pub async fn publish_event(
    js: &jetstream::Context,
    names: &Names,
    ev: &AlertEvent,
    policy: PublishPolicy,
) -> Result<(u64, bool), BusError> {
    let checked_item = ev
        .item
        .parse()
        .map_err(|e: printwatch_events::UnknownItem| BusError::Publish {
            event_id: ev.event_id.clone(),
            attempts: 0,
            reason: e.to_string(),
        })?;
    let transition = match ev.transition() {
        printwatch_events::Transition::Recovered => TransitionKind::Recovered,
        _ => TransitionKind::Occurred,
    };
    let subject = names.event_subject(&ev.device_id, transition, checked_item);
    let payload = bytes::Bytes::from(event::encode(ev));
    let mut delay = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=policy.attempts.max(1) {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, ev.event_id.as_str());
        // W3C trace context of the publishing span, for the consumer's span.
        printwatch_runtime::trace::inject(|k, v| headers.insert(k, v.as_str()));
        let result = async {
            let ack = js
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::timeout(policy.ack_timeout, ack)
                .await
                .map_err(|_| "timed out waiting for the stream's ack".to_owned())?
                .map_err(|e| e.to_string())
        }
        .await;
        match result {
            Ok(ack) => return Ok((ack.sequence, ack.duplicate)),
            Err(reason) => {
                tracing::warn!(event.id = %ev.event_id, attempt, error = %reason, "publish failed, retrying with the same id");
                last = reason;
                if attempt < policy.attempts {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
    Err(BusError::Publish {
        event_id: ev.event_id.clone(),
        attempts: policy.attempts.max(1),
        reason: last,
    })
}

/// Milliseconds since the Unix epoch, as the services' key-value records
/// store times (0 before 1970, saturating far in the future).
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// [`unix_ms`] of now.
pub fn now_ms() -> u64 {
    unix_ms(std::time::SystemTime::now())
}

/// Whether `client` is connected to a NATS server right now (the services'
/// readiness).
pub fn is_connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
