//! Logs and traces.
//!
//! Every process logs with `tracing` (JSON lines when `NOL_LOG_FORMAT=json`, plain text
//! otherwise; `RUST_LOG` filters) and keeps an OpenTelemetry tracer. Spans are exported over OTLP
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set and are not exported otherwise; either way trace
//! ids are real, so the W3C trace context carried in gRPC metadata and NATS headers (and the event
//! envelope) joins one hand-off into one trace across both provinces.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the tracer provider alive; flushes pending spans when dropped.
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        let _ = self.provider.shutdown();
    }
}

/// Installs the global subscriber for a process named `service_name`. Call once, first thing.
pub fn init(service_name: &str) -> anyhow::Result<TelemetryGuard> {
    init_for(service_name, None)
}

/// Installs the global subscriber for a service of one province: its spans' resource names the
/// province (`nol.province`, and `service.namespace` = `nol-<province>`), and every log line
/// carries `province=` (a `"province"` field in JSON), so an operator tells one province's work
/// from another's in a shared trace or log store.
pub fn init_for(service_name: &str, province: Option<&str>) -> anyhow::Result<TelemetryGuard> {
    let mut resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.to_owned());
    if let Some(province) = province {
        resource = resource.with_attributes([
            opentelemetry::KeyValue::new("nol.province", province.to_owned()),
            opentelemetry::KeyValue::new("service.namespace", format!("nol-{province}")),
        ]);
    }
    let resource = resource.build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if !endpoint.is_empty() {
        let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer("not-one-less");

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,h2=warn,hyper=warn,tower=warn,sqlx=warn,async_nats=off"));
    let otel_layer = tracing_opentelemetry::layer().with_tracer(tracer);
    let json = std::env::var("NOL_LOG_FORMAT").is_ok_and(|format| format == "json");
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let province = province.map(str::to_owned);
    if json {
        let format = Tagged::new(tracing_subscriber::fmt::format().json(), province, true);
        registry.with(tracing_subscriber::fmt::layer().event_format(format).with_writer(std::io::stderr)).try_init()?;
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let format = Tagged::new(tracing_subscriber::fmt::format().with_ansi(ansi), province, false);
        registry
            .with(tracing_subscriber::fmt::layer().event_format(format).with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()?;
    }
    Ok(TelemetryGuard { provider })
}

/// An event format that puts the province in front of every line: `province=320000 ` before a
/// text line, `"province":"320000",` first in a JSON object.
struct Tagged<F> {
    inner: F,
    tag: Option<String>,
    json: bool,
}

impl<F> Tagged<F> {
    fn new(inner: F, province: Option<String>, json: bool) -> Self {
        let tag =
            province.map(
                |province| {
                    if json { format!("\"province\":\"{province}\",") } else { format!("province={province} ") }
                },
            );
        Tagged { inner, tag, json }
    }
}

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Tagged<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(tag) = &self.tag else { return self.inner.format_event(ctx, writer, event) };
        if self.json {
            let mut line = String::new();
            self.inner.format_event(ctx, tracing_subscriber::fmt::format::Writer::new(&mut line), event)?;
            match line.strip_prefix('{') {
                Some(rest) => write!(writer, "{{{tag}{rest}"),
                None => write!(writer, "{line}"),
            }
        } else {
            write!(writer, "{tag}")?;
            self.inner.format_event(ctx, writer, event)
        }
    }
}

/// The W3C trace context of the current span, as `traceparent` / `tracestate` entries.
pub fn current_trace_context() -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier
}

/// Makes `span` a child of the trace described by `carrier` (an envelope's trace context).
pub fn set_parent_from_map(span: &tracing::Span, carrier: &HashMap<String, String>) {
    let parent = TraceContextPropagator::new().extract(carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Makes `span` a child of the trace in an incoming request's HTTP/2 headers.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current trace id in hex, for log lines and error reports.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|key| key.as_str()).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), tonic::metadata::MetadataValue::try_from(value))
        {
            self.0.insert(key, value);
        }
    }
}

/// Client-side interceptor: puts the current trace context into outgoing gRPC metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct PropagateTrace;

impl tonic::service::Interceptor for PropagateTrace {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}

/// Puts the current span's trace context into gRPC metadata.
pub fn inject_into_metadata(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(json: bool) -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let province = Some("340000".to_owned());
        let subscriber = tracing_subscriber::registry();
        if json {
            let format = Tagged::new(tracing_subscriber::fmt::format().json(), province, true);
            let layer = tracing_subscriber::fmt::layer().event_format(format).with_writer(move || writer.clone());
            tracing::subscriber::with_default(subscriber.with(layer), || tracing::info!(case = 7, "hand-off received"));
        } else {
            let format = Tagged::new(tracing_subscriber::fmt::format().with_ansi(false), province, false);
            let layer = tracing_subscriber::fmt::layer()
                .event_format(format)
                .with_ansi(false)
                .with_writer(move || writer.clone());
            tracing::subscriber::with_default(subscriber.with(layer), || tracing::info!(case = 7, "hand-off received"));
        }
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn every_line_names_the_province() {
        let text = logged(false);
        assert!(text.starts_with("province=340000 "), "{text}");
        assert!(text.contains("hand-off received"), "{text}");
        let json = logged(true);
        let value: serde_json::Value = serde_json::from_str(json.trim()).expect(&json);
        assert_eq!(value["province"], "340000");
        assert_eq!(value["fields"]["message"], "hand-off received");
    }
}
