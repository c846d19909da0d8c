//! The notifier (`printwatch-notifier`): turns the agent's occurred and
//! recovered events into the alert mails of the printer manual (SPEC §1.1)
//! and sends them by SMTP with every auth mode of §1.2.
//!
//! - A durable JetStream pull consumer on the events stream, shared by
//!   every replica: each event is handled by one of them, up to
//!   `[notifier] concurrency` at once, while SMTP connections are bounded by
//!   `[mail.smtp] max_connections` ([`printwatch_smtp::Mailer`]).
//! - [`route`] picks the recipients, [`render`] builds the mail, the send
//!   [`ledger`] makes sure no address gets one event's mail twice, and
//!   [`handle`] ties them together for one event.
//! - An event is acked only when every recipient is finished (accepted by
//!   the server, or refused for good); a temporary failure naks it with a
//!   growing delay; a message that is not an event goes to the dead-letter
//!   stream with the reason and is acked, so it never blocks the rest.

pub mod handle;
pub mod ledger;
pub mod metrics;
pub mod render;
pub mod route;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer};
use futures::StreamExt as _;
use printwatch_config::Config;
use printwatch_events::Names;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::handle::{Handler, Outcome};
use crate::ledger::Ledger;
use crate::metrics::METRICS;

/// How long the send ledger keeps a record: longer than the events stream
/// keeps an event (7 days), so no redelivery can outlive its record.
pub const LEDGER_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long shutdown waits for the events in hand to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the notifier could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error(transparent)]
    Bus(#[from] printwatch_bus::BusError),
    #[error("cannot serve the operations port on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("[mail.smtp] is missing")]
    NoSmtp,
    #[error("SMTP settings: {0}")]
    Smtp(#[from] printwatch_smtp::SetupError),
    #[error("cannot open the durable consumer {name}: {reason}")]
    Consumer { name: String, reason: String },
}

/// A built, not yet running notifier.
pub struct Application {
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: consumer::PullConsumer,
    handler: Arc<Handler>,
    cfg: Arc<Config>,
}

impl Application {
    /// Connects to NATS, makes sure the stream, the dead-letter stream, the
    /// ledger bucket and the durable consumer exist, and checks the SMTP
    /// settings (CA files). Sends nothing yet.
    pub async fn build(cfg: &Config) -> Result<Application, NotifierError> {
        let cfg = Arc::new(cfg.clone());
        let smtp = cfg.mail.smtp.as_ref().ok_or(NotifierError::NoSmtp)?;
        let mailer = printwatch_smtp::Mailer::new(smtp, cfg.mail.pop_before_smtp.as_ref())?;
        let names = cfg.names();
        let client = printwatch_bus::connect(&cfg.nats, "printwatch-notifier", None).await?;
        let js = jetstream::new(client.clone());
        let replicas = cfg.nats.replicas;
        printwatch_bus::ensure_stream(&js, &names, replicas).await?;
        printwatch_bus::ensure_dead_letter_stream(&js, &names, replicas).await?;
        let store = printwatch_bus::ensure_bucket_with_max_age(
            &js,
            &names.sent_bucket(),
            replicas,
            LEDGER_MAX_AGE,
        )
        .await?;
        let owner = format!(
            "notifier-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let ledger = Ledger::new(store, owner.clone(), cfg.notifier.ack_wait);
        let consumer = open_consumer(&js, &names, &cfg).await?;
        tracing::info!(
            owner,
            consumer = cfg.notifier.durable_name,
            stream = names.stream,
            "notifier ready"
        );
        let handler = Arc::new(Handler {
            cfg: cfg.clone(),
            names,
            mailer,
            ledger,
        });
        if let Some(addr) = cfg.telemetry.http_listen {
            let mut registry = prometheus_client::registry::Registry::default();
            METRICS.register(&mut registry);
            let nats = client.clone();
            let ready =
                printwatch_runtime::http::nats_ready(move || printwatch_bus::is_connected(&nats));
            printwatch_runtime::http::serve(addr, registry, ready)
                .await
                .map_err(|source| NotifierError::Listen { addr, source })?;
        }
        Ok(Application {
            client,
            js,
            consumer,
            handler,
            cfg,
        })
    }

    /// Handles events until `shutdown` completes, then lets the events in
    /// hand finish (up to 30 s) and drains the NATS connection. Events not
    /// finished are simply not acked: JetStream hands them to another
    /// replica, or to this one when it is back.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), NotifierError> {
        let concurrency = self.cfg.notifier.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let mut tasks: JoinSet<()> = JoinSet::new();
        tokio::pin!(shutdown);
        'outer: loop {
            let mut messages = match self
                .consumer
                .stream()
                .max_messages_per_batch(concurrency)
                .heartbeat(Duration::from_secs(5))
                .messages()
                .await
            {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot pull events; trying again");
                    tokio::select! {
                        () = &mut shutdown => break 'outer,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue 'outer,
                    }
                }
            };
            loop {
                let permit = tokio::select! {
                    () = &mut shutdown => break 'outer,
                    p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break 'outer },
                };
                let next = tokio::select! {
                    () = &mut shutdown => break 'outer,
                    next = messages.next() => next,
                };
                while tasks.try_join_next().is_some() {}
                match next {
                    Some(Ok(msg)) => {
                        let handler = self.handler.clone();
                        let js = self.js.clone();
                        tasks.spawn(async move {
                            process(&handler, &js, msg).await;
                            drop(permit);
                        });
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "pulling events failed; re-subscribing");
                        continue 'outer;
                    }
                    None => continue 'outer,
                }
            }
        }
        tracing::info!(
            in_hand = tasks.len(),
            "stopping: finishing the events in hand"
        );
        let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "events still in hand after the grace period; they will be redelivered"
            );
            tasks.abort_all();
        }
        METRICS.log();
        if let Err(e) = self.client.drain().await {
            tracing::warn!(error = %e, "NATS drain failed");
        }
        Ok(())
    }
}

async fn open_consumer(
    js: &jetstream::Context,
    names: &Names,
    cfg: &Config,
) -> Result<consumer::PullConsumer, NotifierError> {
    let n = &cfg.notifier;
    let failed = |e: &dyn std::fmt::Display| NotifierError::Consumer {
        name: n.durable_name.clone(),
        reason: e.to_string(),
    };
    let stream = js.get_stream(&names.stream).await.map_err(|e| failed(&e))?;
    let config = consumer::pull::Config {
        durable_name: Some(n.durable_name.clone()),
        description: Some("printwatch-notifier: alert mails".into()),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: n.ack_wait,
        // Never give an event up: a mail server may be down for days.
        max_deliver: -1,
        max_ack_pending: i64::try_from(n.concurrency.max(1) * 4).unwrap_or(1000),
        filter_subject: names.events_wildcard(),
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    };
    stream
        .get_or_create_consumer(&n.durable_name, config)
        .await
        .map_err(|e| failed(&e))
}

/// Handles one message and answers JetStream, keeping the delivery alive
/// (in-progress acks) while the mail is being sent.
async fn process(handler: &Handler, js: &jetstream::Context, msg: jetstream::Message) {
    let ack_wait = handler.cfg.notifier.ack_wait;
    let keep_alive = async {
        let mut tick = tokio::time::interval((ack_wait / 3).max(Duration::from_millis(200)));
        tick.tick().await;
        loop {
            tick.tick().await;
            let _ = msg.ack_with(AckKind::Progress).await;
        }
    };
    // The event's trace continues here: its parent is the agent's span,
    // carried in the message's `traceparent` header.
    let span = tracing::info_span!(
        parent: None,
        "notifier consume",
        otel.kind = "consumer",
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.destination.name = msg.subject.as_str(),
        messaging.consumer.group.name = handler.cfg.notifier.durable_name.as_str(),
        trace_id = tracing::field::Empty,
    );
    let header = |name: &str| {
        msg.headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    printwatch_runtime::trace::set_parent(
        &span,
        printwatch_runtime::trace::extract(
            header("traceparent").as_deref(),
            header("tracestate").as_deref(),
        ),
    );
    printwatch_runtime::trace::record_trace_id(&span);
    let outcome = tokio::select! {
        o = handler.handle(msg.subject.as_str(), &msg.payload).instrument(span) => o,
        () = keep_alive => unreachable_outcome(),
    };
    let (delivered, sequence) = msg
        .info()
        .map(|i| (i.delivered, i.stream_sequence))
        .unwrap_or((1, 0));
    match outcome {
        Outcome::Done => {
            METRICS.events_done.inc();
            if let Err(e) = msg.double_ack().await {
                tracing::warn!(error = %e, sequence, "ack failed; the event will come again and the ledger will skip what was sent");
            }
        }
        Outcome::Retry { after, reason } => {
            METRICS.events_retried.inc();
            let delay = after.unwrap_or_else(|| backoff(handler, delivered));
            tracing::warn!(
                sequence,
                delivered,
                ?delay,
                reason,
                "event not finished; retrying later"
            );
            let _ = msg.ack_with(AckKind::Nak(Some(delay))).await;
        }
        Outcome::DeadLetter { reason } => {
            tracing::error!(
                sequence,
                subject = msg.subject.as_str(),
                reason,
                "not an event; moving it to the dead-letter subject"
            );
            let mut headers = HeaderMap::new();
            headers.insert("Printwatch-Reason", one_line(&reason).as_str());
            headers.insert("Printwatch-Subject", msg.subject.as_str());
            headers.insert("Printwatch-Stream-Sequence", sequence.to_string().as_str());
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{}-{sequence}", handler.names.stream).as_str(),
            );
            let subject = handler.names.dead_letter_subject();
            let stored = async {
                js.publish_with_headers(subject, headers, msg.payload.clone())
                    .await?
                    .await?;
                Ok::<(), async_nats::Error>(())
            }
            .await;
            match stored {
                Ok(()) => {
                    METRICS.events_dead_lettered.inc();
                    let _ = msg.double_ack().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store the dead letter; retrying later");
                    let _ = msg
                        .ack_with(AckKind::Nak(Some(backoff(handler, delivered))))
                        .await;
                }
            }
        }
    }
}

/// The keep-alive loop never ends; this only satisfies the type checker.
fn unreachable_outcome() -> Outcome {
    Outcome::Retry {
        after: None,
        reason: "keep-alive ended".into(),
    }
}

/// `retry_delay` doubled per earlier delivery, at most `retry_max_delay`.
fn backoff(handler: &Handler, delivered: i64) -> Duration {
    let n = &handler.cfg.notifier;
    let doublings = u32::try_from(delivered.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    n.retry_delay
        .saturating_mul(2u32.saturating_pow(doublings))
        .min(n.retry_max_delay)
}

/// The reason as one header-safe line of at most 500 characters.
fn one_line(s: &str) -> String {
    printwatch_smtp::headers::header_text(s)
        .chars()
        .take(500)
        .collect()
}

impl printwatch_runtime::service::App for Application {
    type Error = NotifierError;
    fn build(cfg: &Config) -> impl Future<Output = Result<Self, Self::Error>> {
        Application::build(cfg)
    }
    fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> impl Future<Output = Result<(), Self::Error>> {
        Application::run_until_stopped(self, shutdown)
    }
}
