//! The pipeline's own counters and latency histograms, shared by all stages.
//!
//! Counters are atomics, cheap enough to update per event; the OpenTelemetry instruments in
//! [`crate::telemetry::otel`] observe them when a reader (Prometheus scrape, OTLP push) asks.
//! Latencies are recorded twice: into OpenTelemetry histograms (exported, with buckets that
//! Prometheus and collectors aggregate) and into a fine log-bucket histogram of our own, for
//! the exact percentiles of the run summary.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::KeyValue;

use crate::models::identity::ModelIdentity;
use crate::models::set::{ServingEntry, ServingModels};
use crate::models::shadow::Agreement;
use crate::telemetry::performance::PerformanceGauges;

/// One assigned partition's lag (read from the consumer's statistics in `kafka::stats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub lag: i64,
}

/// Log-spaced latency buckets: bucket i holds latencies below `GROWTH^(i+1)` microseconds,
/// about 4% resolution from 1 µs to over an hour.
const GROWTH: f64 = 1.04;
const BUCKETS: usize = 600;

pub struct LatencyHistogram {
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl LatencyHistogram {
    pub fn record_us(&self, us: u64) {
        let i = if us <= 1 {
            0
        } else {
            ((us as f64).ln() / GROWTH.ln()) as usize
        };
        self.buckets[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The `q` quantile in milliseconds (the upper edge of its bucket), or None when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                let upper = GROWTH.powi(i as i32 + 1) / 1000.0;
                return Some(upper.min(self.max_ms()));
            }
        }
        Some(self.max_ms())
    }

    pub fn max_ms(&self) -> f64 {
        self.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    }
}

/// The stages a batch passes through, for the per-stage latency histogram.
#[derive(Debug, Clone, Copy)]
pub enum Stage {
    /// JSON to Arrow, summed over the events of a batch.
    Decode,
    /// From the batch closing to the inference thread taking it (backpressure shows here).
    QueueWait,
    Inference,
    /// Predictions encoded and handed to the producer, per batch.
    Encode,
    /// A batch's first prediction handed to the producer to its last acknowledged by the broker
    /// (a dead letter's: its own).
    ProduceAck,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Decode,
        Stage::QueueWait,
        Stage::Inference,
        Stage::Encode,
        Stage::ProduceAck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Decode => "decode",
            Stage::QueueWait => "queue_wait",
            Stage::Inference => "inference",
            Stage::Encode => "encode",
            Stage::ProduceAck => "produce_ack",
        }
    }
}

/// Latency buckets in seconds: 100 µs to a minute, about 2.5× apart.
const SECONDS_BUCKETS: [f64; 18] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0, 60.0,
];
const BATCH_SIZE_BUCKETS: [f64; 12] = [
    1.0, 8.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0,
];

/// The exported histograms; attributes are built once, not per record.
struct Histograms {
    stage: Histogram<f64>,
    stage_attributes: [[KeyValue; 1]; 5],
    end_to_end: Histogram<f64>,
    batch_size: Histogram<u64>,
}

impl Histograms {
    fn new(meter: &Meter) -> Self {
        Histograms {
            stage: meter
                .f64_histogram("driftline.stage.duration")
                .with_unit("s")
                .with_description("Time spent in each pipeline stage")
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            stage_attributes: Stage::ALL.map(|s| [KeyValue::new("driftline.stage", s.as_str())]),
            end_to_end: meter
                .f64_histogram("driftline.end_to_end.duration")
                .with_unit("s")
                .with_description(
                    "From an event's Kafka timestamp to the acknowledgement of its output",
                )
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build(),
            batch_size: meter
                .u64_histogram("driftline.batch.size")
                .with_unit("{event}")
                .with_description("Events per batch handed to the model")
                .with_boundaries(BATCH_SIZE_BUCKETS.to_vec())
                .build(),
        }
    }
}

/// The latest drift scores of one column, from its last window report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColumnDrift {
    /// `None` when the column's config skips the statistic.
    pub psi: Option<f64>,
    pub kl: Option<f64>,
    /// KS statistic D; numeric columns only.
    pub ks: Option<f64>,
    pub drifting: bool,
}

/// Counters of one pipeline run.
pub struct PipelineMetrics {
    /// The serving model; replaced when a reload is swapped in.
    pub model: Mutex<Option<ModelIdentity>>,
    /// Every loaded model (serving, canary variants, shadow) with its role and weight.
    pub models: Mutex<Vec<ServingEntry>>,
    /// Events scored, by the name of the variant that scored them.
    pub variant_predictions: Mutex<BTreeMap<String, u64>>,
    /// The shadow against the serving model, since the start.
    pub shadow: Mutex<Agreement>,
    /// Shadow predictions acknowledged by the broker.
    pub shadow_out: AtomicU64,
    pub model_reloads: AtomicU64,
    pub model_reload_failures: AtomicU64,
    pub events_in: AtomicU64,
    pub predictions_out: AtomicU64,
    pub dead_letters_out: AtomicU64,
    pub batches: AtomicU64,
    pub delivery_failures: AtomicU64,
    pub consumer_errors: AtomicU64,
    /// Offset commits the group coordinator accepted, and those it refused (a commit with
    /// nothing new to commit counts as neither).
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    /// `traceparent`/`tracestate` headers over 512 bytes, not carried to the predictions.
    pub trace_headers_dropped: AtomicU64,
    /// Dead letters the producer refused whole, sent again without key, payload and original
    /// headers (reason and source position only).
    pub minimal_dead_letters: AtomicU64,
    pub drift_reports: AtomicU64,
    pub drift_alerts: AtomicU64,
    /// Fleet view partials published (one per column, window and partition).
    pub fleet_partials: AtomicU64,
    pub performance_reports: AtomicU64,
    pub performance_alerts: AtomicU64,
    /// The latest performance window and the label join.
    pub performance: Arc<Mutex<PerformanceGauges>>,
    /// Acknowledged dead letters by reason (dead letters are rare: a lock is fine).
    pub dead_letters_by_reason: Mutex<BTreeMap<&'static str, u64>>,
    /// From the consumer's latest statistics.
    pub consumer_lag: Mutex<Vec<PartitionLag>>,
    /// Per column, from the latest drift report.
    pub drift_columns: Mutex<BTreeMap<String, ColumnDrift>>,
    /// The event's Kafka timestamp to the acknowledgement of its prediction or dead letter.
    pub end_to_end: LatencyHistogram,
    histograms: Histograms,
}

/// A point-in-time copy of the counters, for printing and tests.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MetricsSnapshot {
    pub execution_provider: &'static str,
    pub events_in: u64,
    pub predictions_out: u64,
    pub dead_letters_out: u64,
    pub batches: u64,
    pub delivery_failures: u64,
    pub model_reloads: u64,
    pub model_reload_failures: u64,
    pub drift_reports: u64,
    pub drift_alerts: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: f64,
}

impl PipelineMetrics {
    /// Counters at zero; histograms recorded through `meter`.
    pub fn new(meter: &Meter) -> Self {
        PipelineMetrics {
            model: Default::default(),
            models: Default::default(),
            variant_predictions: Default::default(),
            shadow: Default::default(),
            shadow_out: Default::default(),
            model_reloads: Default::default(),
            model_reload_failures: Default::default(),
            events_in: Default::default(),
            predictions_out: Default::default(),
            dead_letters_out: Default::default(),
            batches: Default::default(),
            delivery_failures: Default::default(),
            consumer_errors: Default::default(),
            commits: Default::default(),
            commit_failures: Default::default(),
            trace_headers_dropped: Default::default(),
            minimal_dead_letters: Default::default(),
            drift_reports: Default::default(),
            drift_alerts: Default::default(),
            fleet_partials: Default::default(),
            performance_reports: Default::default(),
            performance_alerts: Default::default(),
            performance: Default::default(),
            dead_letters_by_reason: Default::default(),
            consumer_lag: Default::default(),
            drift_columns: Default::default(),
            end_to_end: Default::default(),
            histograms: Histograms::new(meter),
        }
    }

    /// Records which models serve now (at start and after each reload).
    pub fn set_models(&self, models: &ServingModels) {
        *self.model.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(models.serving_identity().as_ref().clone());
        *self.models.lock().unwrap_or_else(|e| e.into_inner()) = models.entries();
    }

    /// Counts one batch's events by the variant that scored them.
    pub fn count_variants(
        &self,
        identities: &[std::sync::Arc<ModelIdentity>],
        variant_of_row: Option<&[u8]>,
        rows: usize,
    ) {
        let mut counts = vec![0u64; identities.len()];
        match variant_of_row {
            Some(variants) => variants.iter().for_each(|&v| counts[v as usize] += 1),
            None => counts[0] = rows as u64,
        }
        let mut by_name = self
            .variant_predictions
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (identity, n) in identities.iter().zip(counts) {
            if n > 0 {
                *by_name.entry(identity.name.clone()).or_default() += n;
            }
        }
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_stage(&self, stage: Stage, elapsed: Duration) {
        let h = &self.histograms;
        h.stage
            .record(elapsed.as_secs_f64(), &h.stage_attributes[stage as usize]);
    }

    pub fn record_end_to_end_ms(&self, latency_ms: i64) {
        let ms = latency_ms.max(0) as u64;
        self.end_to_end.record_us(ms * 1000);
        self.histograms.end_to_end.record(ms as f64 / 1000.0, &[]);
    }

    pub fn record_batch(&self, rows: usize) {
        Self::add(&self.batches, 1);
        self.histograms.batch_size.record(rows as u64, &[]);
    }

    pub fn count_dead_letter(&self, reason: &'static str) {
        Self::add(&self.dead_letters_out, 1);
        if let Ok(mut by_reason) = self.dead_letters_by_reason.lock() {
            *by_reason.entry(reason).or_default() += 1;
        }
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            // The provider the serving model actually runs on ("cpu" or "cuda").
            execution_provider: self
                .model
                .lock()
                .ok()
                .and_then(|m| m.as_ref().map(|m| m.execution_provider))
                .unwrap_or("none"),
            events_in: get(&self.events_in),
            predictions_out: get(&self.predictions_out),
            dead_letters_out: get(&self.dead_letters_out),
            batches: get(&self.batches),
            delivery_failures: get(&self.delivery_failures),
            model_reloads: get(&self.model_reloads),
            model_reload_failures: get(&self.model_reload_failures),
            drift_reports: get(&self.drift_reports),
            drift_alerts: get(&self.drift_alerts),
            latency_p50_ms: self.end_to_end.quantile_ms(0.50),
            latency_p95_ms: self.end_to_end.quantile_ms(0.95),
            latency_p99_ms: self.end_to_end.quantile_ms(0.99),
            latency_max_ms: self.end_to_end.max_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_bucket_resolution() {
        let h = LatencyHistogram::default();
        for ms in 1..=1000u64 {
            h.record_us(ms * 1000);
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile_ms(q).expect("non-empty");
            assert!(
                got >= exact && got <= exact * 1.05,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(h.max_ms(), 1000.0);
        assert_eq!(LatencyHistogram::default().quantile_ms(0.5), None);
    }
}
