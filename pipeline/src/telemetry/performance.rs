//! The model's performance as gauges: per metric, the latest complete window's realized and
//! estimated value (`driftline.performance.metric`), its labeled fraction, and the label join's
//! counters and backlog.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use driftline_operators::performance::labels::JoinCounts;
use driftline_operators::performance::windows::PerformanceReport;
use opentelemetry::metrics::Meter;
use opentelemetry::KeyValue;

/// What the gauges show, updated by the drift stage.
#[derive(Debug, Clone, Default)]
pub struct PerformanceGauges {
    /// (source, metric) → value, from the latest complete window.
    pub metrics: BTreeMap<(&'static str, String), f64>,
    pub labeled_fraction: Option<f64>,
    pub join: JoinCounts,
    /// Predictions and early labels waiting in the join now.
    pub waiting_predictions: usize,
    pub waiting_labels: usize,
    pub misrouted_labels: u64,
    /// Label events dead-lettered (not JSON, no id, no numeric label).
    pub invalid_labels: u64,
}

impl PerformanceGauges {
    /// The values of the latest complete window.
    pub fn latest(&mut self, report: &PerformanceReport) {
        self.metrics.clear();
        for m in &report.realized {
            if let Some(v) = m.value {
                self.metrics.insert(("realized", m.metric.clone()), v);
            }
        }
        for e in &report.estimated {
            if let Some(v) = e.value {
                self.metrics
                    .insert(("estimated", e.metric.name().into()), v);
            }
        }
        self.labeled_fraction = Some(report.labeled_fraction);
    }

    pub fn join(&mut self, counts: JoinCounts, waiting: usize, early: usize, misrouted: u64) {
        self.join = counts;
        self.waiting_predictions = waiting;
        self.waiting_labels = early;
        self.misrouted_labels = misrouted;
    }
}

/// Registers the performance gauges on `meter`.
pub fn observe(meter: &Meter, gauges: &Arc<Mutex<PerformanceGauges>>) {
    let m = Arc::clone(gauges);
    meter
        .f64_observable_gauge("driftline.performance.metric")
        .with_description("The latest complete performance window's metrics, realized (from labels) and estimated (CBPE)")
        .with_callback(move |o| {
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            for ((source, metric), value) in &g.metrics {
                o.observe(
                    *value,
                    &[
                        KeyValue::new("driftline.metric", metric.clone()),
                        KeyValue::new("driftline.source", *source),
                    ],
                );
            }
            if let Some(fraction) = g.labeled_fraction {
                o.observe(
                    fraction,
                    &[
                        KeyValue::new("driftline.metric", "labeled_fraction"),
                        KeyValue::new("driftline.source", "labels"),
                    ],
                );
            }
        })
        .build();
    let m = Arc::clone(gauges);
    meter
        .u64_observable_counter("driftline.labels.joined")
        .with_unit("{label}")
        .with_description("The label join: predictions labeled, expired (max_delay_ms) or evicted (max_pending); labels duplicate, unknown, on another partition than their event, or dead-lettered as unreadable")
        .with_callback(move |o| {
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            let j = g.join;
            for (n, outcome) in [
                (j.labeled, "labeled"),
                (j.expired, "expired"),
                (j.evicted, "evicted"),
                (j.duplicates, "duplicate"),
                (j.unknown, "unknown"),
                (g.misrouted_labels, "misrouted"),
                (g.invalid_labels, "invalid"),
            ] {
                o.observe(n, &[KeyValue::new("driftline.outcome", outcome)]);
            }
        })
        .build();
    let m = Arc::clone(gauges);
    meter
        .u64_observable_gauge("driftline.labels.waiting")
        .with_description("Predictions waiting for their label, and labels waiting for their prediction (bounded by labels.max_pending)")
        .with_callback(move |o| {
            let g = m.lock().unwrap_or_else(|e| e.into_inner());
            o.observe(g.waiting_predictions as u64, &[KeyValue::new("driftline.waiting", "predictions")]);
            o.observe(g.waiting_labels as u64, &[KeyValue::new("driftline.waiting", "labels")]);
        })
        .build();
}
