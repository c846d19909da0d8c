//! OpenTelemetry traces, configured the standard way (`OTEL_*` variables:
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`,
//! `OTEL_BSP_SCHEDULE_DELAY`…) or by `[telemetry] otlp_endpoint`. With no
//! endpoint there is no exporter and no cost.
//!
//! W3C trace context crosses process borders in NATS message headers and
//! gRPC metadata (`traceparent`), through [`inject`] and [`extract`], so
//! one alert is one trace from the agent to the SMTP server.

use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Flushes and stops the exporter when dropped (at the end of `main`).
pub struct TraceGuard(Option<SdkTracerProvider>);

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = p.shutdown();
        }
    }
}

/// The OTLP endpoint to export to, if any: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the config's.
pub fn endpoint(config: Option<&str>) -> Option<String> {
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty()))
    .or_else(|| config.map(str::to_owned))
}

/// Builds the tracer provider for `service` exporting to `endpoint`.
pub(crate) fn provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| e.to_string())?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service.to_owned());
    }
    Ok(SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build())
}

/// The tracing layer and guard for `service`, or none without an endpoint.
pub(crate) fn layer<S>(
    service: &str,
    config_endpoint: Option<&str>,
) -> (
    Option<tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>>,
    TraceGuard,
    Option<String>,
)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let Some(ep) = endpoint(config_endpoint) else {
        return (None, TraceGuard(None), None);
    };
    match provider(service, &ep) {
        Ok(p) => {
            let tracer = p.tracer(service.to_owned());
            opentelemetry::global::set_tracer_provider(p.clone());
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                TraceGuard(Some(p)),
                None,
            )
        }
        Err(e) => (
            None,
            TraceGuard(None),
            Some(format!("traces are not exported: {e}")),
        ),
    }
}

struct Put<'a, F: FnMut(&str, String)>(&'a mut F);
impl<F: FnMut(&str, String)> Injector for Put<'_, F> {
    fn set(&mut self, key: &str, value: String) {
        (self.0)(key, value);
    }
}

/// Writes the current span's trace context (`traceparent`, `tracestate`)
/// with `put(name, value)`.
pub fn inject(mut put: impl FnMut(&str, String)) {
    let cx = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&cx, &mut Put(&mut put));
}

/// The trace context in `traceparent` / `tracestate` values, for a span's
/// parent.
pub fn extract(traceparent: Option<&str>, tracestate: Option<&str>) -> opentelemetry::Context {
    let mut map = std::collections::HashMap::new();
    if let Some(v) = traceparent {
        map.insert("traceparent".to_owned(), v.to_owned());
    }
    if let Some(v) = tracestate {
        map.insert("tracestate".to_owned(), v.to_owned());
    }
    TraceContextPropagator::new().extract(&map)
}

/// Makes `cx` (from another process) the parent of `span`.
pub fn set_parent(span: &tracing::Span, cx: opentelemetry::Context) {
    let _ = span.set_parent(cx);
}

/// The current span's trace id (32 hex digits), when traces are on.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Records `span`'s trace id in its `trace_id` field (declared
/// `trace_id = tracing::field::Empty`), so every log line inside the span
/// names the trace. Nothing happens when traces are off.
pub fn record_trace_id(span: &tracing::Span) {
    let sc = span.context().span().span_context().clone();
    if sc.is_valid() {
        span.record("trace_id", sc.trace_id().to_string());
    }
}
