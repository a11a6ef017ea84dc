//! What the per-event telemetry costs on the hot path, side by side in one run: the producer's
//! delivery callback records, per output, the end-to-end latency (our own log-bucket histogram
//! plus the exported OpenTelemetry histogram) and the produce-acknowledgement stage latency.
//!
//!     cargo run --release -p driftline --example telemetry_cost
use std::time::{Duration, Instant};

use driftline::telemetry::metrics::{PipelineMetrics, Stage};
use opentelemetry::metrics::MeterProvider;

const EVENTS: u64 = 5_000_000;

fn main() {
    // The same reader the pipeline has: the Prometheus exporter on an SDK meter provider.
    let registry = prometheus::Registry::new();
    let reader = opentelemetry_prometheus::exporter()
        .with_registry(registry)
        .build()
        .expect("exporter");
    let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_reader(reader)
        .build();
    let metrics = PipelineMetrics::new(&provider.meter("cost"));

    for round in 1..=3 {
        let started = Instant::now();
        for i in 0..EVENTS {
            metrics.end_to_end.record_us((i % 50_000) * 1000);
        }
        let own = started.elapsed();

        let started = Instant::now();
        for i in 0..EVENTS {
            metrics.record_end_to_end_ms((i % 50_000) as i64);
            metrics.record_stage(Stage::ProduceAck, Duration::from_micros(i % 20_000));
        }
        let all = started.elapsed();
        let ns = |d: Duration| d.as_nanos() as f64 / EVENTS as f64;
        println!(
            "round {round}: own histogram only {:.1} ns/event; own + OpenTelemetry end-to-end + produce_ack {:.1} ns/event ({:.1}x)",
            ns(own),
            ns(all),
            ns(all) / ns(own)
        );
    }
}
