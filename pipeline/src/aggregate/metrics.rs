//! What the aggregator counts: its `/metrics` instruments and the summary it prints when it
//! stops, from the same counters.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use opentelemetry::KeyValue;
use serde::Serialize;

use crate::aggregate::pending::Taken;
use crate::telemetry::otel::MetricsExporter;

/// What one run did, printed as JSON when it stops.
#[derive(Debug, Default, Serialize)]
pub struct AggregateSummary {
    pub partials: u64,
    pub ignored: u64,
    pub windows_complete: u64,
    pub windows_incomplete: u64,
    pub reports: u64,
    pub alerts: u64,
}

/// The counters behind `/metrics` and the summary.
#[derive(Default)]
pub struct AggregateMetrics {
    partials: AtomicU64,
    ignored: AtomicU64,
    windows_complete: AtomicU64,
    windows_incomplete: AtomicU64,
    reports: AtomicU64,
    alerts: AtomicU64,
    /// Windows waiting for partitions to report.
    pub pending: AtomicUsize,
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl AggregateMetrics {
    /// One record of the partials topic.
    pub fn taken(&self, taken: Taken) {
        match taken {
            Taken::Partial => add(&self.partials, 1),
            Taken::Ignored => add(&self.ignored, 1),
            Taken::Progress => {}
        }
    }

    /// One window judged, with the reports and alerts it published.
    pub fn judged(&self, complete: bool, reports: usize, alerts: usize) {
        match complete {
            true => add(&self.windows_complete, 1),
            false => add(&self.windows_incomplete, 1),
        }
        add(&self.reports, reports as u64);
        add(&self.alerts, alerts as u64);
    }

    pub fn summary(&self) -> AggregateSummary {
        AggregateSummary {
            partials: get(&self.partials),
            ignored: get(&self.ignored),
            windows_complete: get(&self.windows_complete),
            windows_incomplete: get(&self.windows_incomplete),
            reports: get(&self.reports),
            alerts: get(&self.alerts),
        }
    }

    /// The aggregator's instruments on `/metrics`, read from these counters when collected.
    pub fn observe(self: &Arc<Self>, exporter: &MetricsExporter) {
        let meter = exporter.meter();
        let m = Arc::clone(self);
        meter
            .u64_observable_counter("driftline.fleet.partials")
            .with_description("Partials read from the partials topic: counted, or ignored (another fleet's, or of a window judged already)")
            .with_callback(move |o| {
                o.observe(get(&m.partials), &[KeyValue::new("outcome", "counted")]);
                o.observe(get(&m.ignored), &[KeyValue::new("outcome", "ignored")]);
            })
            .build();
        let m = Arc::clone(self);
        meter
            .u64_observable_counter("driftline.fleet.windows")
            .with_description("Fleet windows judged: complete (every partition reported) or incomplete (after aggregate.max_wait_ms)")
            .with_callback(move |o| {
                o.observe(get(&m.windows_complete), &[KeyValue::new("complete", "true")]);
                o.observe(get(&m.windows_incomplete), &[KeyValue::new("complete", "false")]);
            })
            .build();
        let m = Arc::clone(self);
        meter
            .u64_observable_counter("driftline.fleet.alerts")
            .with_description("Fleet drift alerts published (opened and resolved)")
            .with_callback(move |o| o.observe(get(&m.alerts), &[]))
            .build();
        let m = Arc::clone(self);
        meter
            .u64_observable_gauge("driftline.fleet.pending_windows")
            .with_description("Fleet windows waiting for partitions to report")
            .with_callback(move |o| o.observe(m.pending.load(Ordering::Relaxed) as u64, &[]))
            .build();
    }
}
