//! The drift side stream: a thread beside the data path that keeps rolling histograms of every
//! feature and every model output, and publishes a report per column at each window close and
//! an alert whenever a column starts or stops drifting.
//!
//! It is fed by the inference stage through a bounded channel of shared batches (Arrow arrays
//! are reference-counted: no copy). The policy is lossless: when the channel is full the
//! inference stage waits, so every scored event is counted. Reports and alerts do not hold
//! input offsets back: their delivery is not tracked by the offset tracker.
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use driftline_operators::drift::monitor::{DriftOutcome, Finish};
use rdkafka::producer::BaseRecord;

use crate::clock::now_ms;
use crate::config::Settings;
use crate::kafka::delivery::Delivery;
use crate::kafka::producer::{try_send, SendRefusal, SinkProducer, QUEUE_FULL_BACKOFF};
use crate::report::live::DriftBoard;
use crate::stages::drift::tracker::DriftTracker;
use crate::stages::messages::DriftInput;
use crate::telemetry::metrics::{ColumnDrift, PipelineMetrics};

pub struct DriftStage {
    settings: Settings,
    producer: Arc<SinkProducer>,
    metrics: Arc<PipelineMetrics>,
    tracker: DriftTracker,
    /// The live drift page's data.
    board: Arc<DriftBoard>,
}

impl DriftStage {
    /// Loads the profile (or prepares to learn one) so a bad profile fails at startup.
    pub fn new(
        settings: &Settings,
        producer: Arc<SinkProducer>,
        metrics: Arc<PipelineMetrics>,
        board: Arc<DriftBoard>,
    ) -> anyhow::Result<DriftStage> {
        Ok(DriftStage {
            settings: settings.clone(),
            producer,
            metrics,
            tracker: DriftTracker::new(settings)?,
            board,
        })
    }

    /// Runs until the channel closes; a timer closes processing-time panes.
    pub fn run(mut self, rx: Receiver<DriftInput>) -> anyhow::Result<()> {
        loop {
            let outcome = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(input) => self.tracker.observe(&input, now_ms())?,
                Err(RecvTimeoutError::Timeout) => self.tracker.tick(now_ms())?,
                Err(RecvTimeoutError::Disconnected) => {
                    // Shutdown: open windows are reported without a verdict (a rolling
                    // restart must not page anyone).
                    let outcome = self.tracker.finish(Finish::Shutdown)?;
                    return self.publish(outcome);
                }
            };
            self.publish(outcome)?;
            if let Some(report) = self.tracker.take_agreement_report() {
                let topic = &self.settings.kafka.drift_topic;
                self.send(topic, report.kind, &serde_json::to_vec(&report)?)?;
                PipelineMetrics::add(&self.metrics.drift_reports, 1);
            }
        }
    }

    fn publish(&self, outcome: DriftOutcome) -> anyhow::Result<()> {
        self.board.add(&outcome);
        let k = &self.settings.kafka;
        for report in &outcome.reports {
            self.send(&k.drift_topic, &report.column, &serde_json::to_vec(report)?)?;
            PipelineMetrics::add(&self.metrics.drift_reports, 1);
        }
        if !outcome.reports.is_empty() {
            if let Ok(mut columns) = self.metrics.drift_columns.lock() {
                for r in &outcome.reports {
                    let scores = ColumnDrift {
                        psi: r.psi.as_ref().map(|s| s.value),
                        kl: r.kl.as_ref().map(|s| s.value),
                        ks: r.ks.as_ref().map(|ks| ks.statistic),
                        drifting: r.drifted(),
                    };
                    columns.insert(r.column.clone(), scores);
                }
            }
        }
        for alert in &outcome.alerts {
            let drifting: Vec<&str> = (alert.statistics.iter())
                .filter(|(_, s)| s.drift)
                .map(|(k, _)| k.name())
                .collect();
            tracing::warn!(column = %alert.column, state = ?alert.state, severity = ?alert.severity, statistics = ?drifting, "drift alert");
            self.send(&k.alerts_topic, &alert.column, &serde_json::to_vec(alert)?)?;
            PipelineMetrics::add(&self.metrics.drift_alerts, 1);
        }
        Ok(())
    }

    fn send(&self, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        let mut record = BaseRecord::with_opaque_to(topic, Delivery::side())
            .key(key.as_bytes())
            .payload(payload);
        loop {
            match try_send(&self.producer, record) {
                Ok(()) => return Ok(()),
                Err(SendRefusal::QueueFull(r)) => {
                    record = r;
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                }
                Err(SendRefusal::Fatal(e)) => bail!("cannot produce to {topic}: {e}"),
            }
        }
    }
}

/// A bounded channel into the drift stage.
pub fn channel(capacity: usize) -> (SyncSender<DriftInput>, Receiver<DriftInput>) {
    std::sync::mpsc::sync_channel(capacity)
}
