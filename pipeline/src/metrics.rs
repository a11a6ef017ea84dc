//! The pipeline's own counters and its end-to-end latency histogram, shared by all stages.
//! Lock-free (atomics), cheap enough to update per event; read for the live line, the summary
//! and (later) the exporters.
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Counters of one pipeline run.
#[derive(Default)]
pub struct PipelineMetrics {
    /// The execution provider the model actually runs on ("cpu" or "cuda"), set once at startup.
    pub execution_provider: std::sync::OnceLock<&'static str>,
    pub events_in: AtomicU64,
    pub predictions_out: AtomicU64,
    pub dead_letters_out: AtomicU64,
    pub batches: AtomicU64,
    pub delivery_failures: AtomicU64,
    pub consumer_errors: AtomicU64,
    pub drift_reports: AtomicU64,
    pub drift_alerts: AtomicU64,
    /// The event's Kafka timestamp to the acknowledgement of its prediction or dead letter.
    pub end_to_end: LatencyHistogram,
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
    pub drift_reports: u64,
    pub drift_alerts: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub latency_max_ms: f64,
}

impl PipelineMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            execution_provider: self.execution_provider.get().copied().unwrap_or("none"),
            events_in: get(&self.events_in),
            predictions_out: get(&self.predictions_out),
            dead_letters_out: get(&self.dead_letters_out),
            batches: get(&self.batches),
            delivery_failures: get(&self.delivery_failures),
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
