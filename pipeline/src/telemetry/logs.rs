//! Logs and traces: `tracing` everywhere, written by `tracing-subscriber` (pretty or JSON,
//! filtered by `log.level`; RUST_LOG wins when set) and, when `telemetry.otlp_endpoint` is set,
//! exported as OpenTelemetry spans over OTLP/HTTP by `tracing-opentelemetry`.
//! ONNX Runtime's own INFO logging is very chatty, so `ort` is held at WARN unless asked.
//!
//! Secrets never reach a log from driftline: settings are logged only through their redacted
//! form (tests/tests/operations.rs checks a password from the environment). librdkafka's own
//! `debug=conf` would print its configuration: leave that off in production.
use anyhow::Context;
use opentelemetry::trace::TracerProvider;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, LogSettings, Settings};

/// Flushes and stops the span exporter when dropped (at the end of `main`).
pub struct TracesGuard(Option<SdkTracerProvider>);

impl Drop for TracesGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            if let Err(e) = provider.shutdown() {
                eprintln!("warning: flushing spans: {e}");
            }
        }
    }
}

/// Logs only: for the commands that export no traces (profile, drift, gen).
pub fn init(log: &LogSettings) {
    // The filter goes last: as a plain layer it filters for every layer beneath it.
    let _ = Registry::default()
        .with(log_layer(log))
        .with(filter(log))
        .try_init();
}

/// Logs, and spans over OTLP when an endpoint is configured.
pub fn init_with_traces(settings: &Settings) -> anyhow::Result<TracesGuard> {
    let endpoint = &settings.telemetry.otlp_endpoint;
    if endpoint.is_empty() {
        init(&settings.log);
        return Ok(TracesGuard(None));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .context("creating the OTLP span exporter")?;
    let provider = SdkTracerProvider::builder()
        .with_resource(crate::telemetry::otel::resource(settings))
        .with_batch_exporter(exporter)
        .build();
    let traces = tracing_opentelemetry::layer().with_tracer(provider.tracer("driftline"));
    let _ = Registry::default()
        .with(log_layer(&settings.log))
        .with(traces)
        .with(filter(&settings.log))
        .try_init();
    tracing::info!(%endpoint, "exporting traces and metrics over OTLP/HTTP");
    Ok(TracesGuard(Some(provider)))
}

fn filter(log: &LogSettings) -> EnvFilter {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| format!("{},ort=warn", log.level));
    EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info,ort=warn"))
}

fn log_layer(log: &LogSettings) -> Box<dyn Layer<Registry> + Send + Sync> {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match log.format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Pretty => layer.boxed(),
    }
}
