//! The drift side stream: a thread beside the data path that keeps rolling histograms of every
//! feature and every model output, and publishes a report per column at each window close and
//! an alert whenever a column starts or stops drifting.
//!
//! It is fed by the inference stage through a bounded channel of shared batches (Arrow arrays
//! are reference-counted: no copy). The policy is lossless: when the channel is full the
//! inference stage waits, so every scored event is counted. Reports and alerts do not hold
//! input offsets back: their delivery is not tracked by the offset tracker.
//!
//! The same thread measures the serving model's performance ([`StreamPerformance`]): label
//! events from the labels reader arrive on the same channel, and each closed performance
//! window is a `kind: "performance"` report on the drift topic.
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use driftline_operators::drift::monitor::{DriftOutcome, Finish};
use driftline_operators::drift::partial::FleetRecord;
use rdkafka::producer::BaseRecord;

use crate::clock::now_ms;
use crate::config::Settings;
use crate::kafka::delivery::Delivery;
use crate::kafka::producer::{send_waiting, SinkProducer};
use crate::report::live::DriftBoard;
use crate::stages::drift::fleet::FleetPartials;
use crate::stages::drift::performance::{PerformanceOutcome, StreamPerformance};
use crate::stages::drift::tracker::{load_profile, DriftTracker};
use crate::stages::messages::{DriftInput, DriftMessage, LabelProgress};
use crate::telemetry::metrics::{ColumnDrift, PipelineMetrics};

pub struct DriftStage {
    settings: Settings,
    producer: Arc<SinkProducer>,
    metrics: Arc<PipelineMetrics>,
    tracker: DriftTracker,
    /// None when there is nothing to measure (no labels topic, no estimator in the profile).
    performance: Option<StreamPerformance>,
    /// The live drift page's data.
    board: Arc<DriftBoard>,
    /// The fleet view's partials (`fleet.enabled`).
    fleet: Option<FleetPartials>,
}

impl DriftStage {
    /// Loads the profile (or prepares to learn one) so a bad profile fails at startup.
    pub fn new(
        settings: &Settings,
        producer: Arc<SinkProducer>,
        metrics: Arc<PipelineMetrics>,
        board: Arc<DriftBoard>,
        label_progress: Arc<LabelProgress>,
    ) -> anyhow::Result<DriftStage> {
        // CBPE's estimator comes with a profile fitted on labeled events.
        let estimator = match settings.drift.profile.as_str() {
            "" => None,
            path => load_profile(std::path::Path::new(path))?.performance,
        };
        let has_model = settings.has_model();
        let performance = has_model
            .then(|| StreamPerformance::new(settings, estimator, label_progress))
            .flatten();
        if let Some(p) = &performance {
            tracing::info!(
                labels_topic = %settings.kafka.labels_topic,
                estimated = p.estimates(),
                "performance: measured per window"
            );
        }
        Ok(DriftStage {
            settings: settings.clone(),
            producer,
            metrics,
            tracker: DriftTracker::new(settings)?,
            performance,
            board,
            fleet: match settings.fleet.enabled {
                true => Some(FleetPartials::new(settings)?),
                false => None,
            },
        })
    }

    /// Runs until the channel closes; a timer closes processing-time panes.
    pub fn run(mut self, rx: Receiver<DriftMessage>) -> anyhow::Result<()> {
        loop {
            let now = now_ms();
            let (outcome, performance) = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(DriftMessage::Scored(input)) => {
                    self.publish_partials(&input)?;
                    (
                        self.tracker.observe(&input, now)?,
                        (self.performance.as_mut()).map(|p| p.scored(&input, now)),
                    )
                }
                Ok(DriftMessage::Labels(labels)) => (
                    DriftOutcome::default(),
                    (self.performance.as_mut()).map(|p| p.labels(&labels, now)),
                ),
                Err(RecvTimeoutError::Timeout) => (
                    self.tracker.tick(now)?,
                    (self.performance.as_mut()).map(|p| p.tick(now)),
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    // Shutdown: open windows are reported without a verdict (a rolling
                    // restart must not page anyone).
                    let outcome = self.tracker.finish(Finish::Shutdown)?;
                    self.publish(outcome)?;
                    let performance = (self.performance.as_mut()).map(StreamPerformance::finish);
                    return self.publish_performance(performance);
                }
            };
            self.publish(outcome)?;
            self.publish_performance(performance)?;
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

    /// Performance reports on the drift topic (key `performance`), their alerts on the alerts
    /// topic (keyed by `performance.SOURCE.METRIC`), and the gauges.
    fn publish_performance(&self, outcome: Option<PerformanceOutcome>) -> anyhow::Result<()> {
        let (Some(outcome), Some(performance)) = (outcome, &self.performance) else {
            return Ok(());
        };
        self.board.add_performance(&outcome.reports);
        let k = &self.settings.kafka;
        for report in &outcome.reports {
            self.send(&k.drift_topic, "performance", &serde_json::to_vec(report)?)?;
            PipelineMetrics::add(&self.metrics.performance_reports, 1);
            tracing::info!(
                window_start_ms = report.window_start_ms,
                first_prediction = report.first_prediction,
                complete = report.complete,
                predictions = report.predictions,
                labeled = report.labeled,
                unlabeled = report.unlabeled,
                "performance window closed"
            );
        }
        for alert in &outcome.alerts {
            tracing::warn!(metric = %alert.metric, source = %alert.source, state = ?alert.state, value = ?alert.value, "performance alert");
            self.send(&k.alerts_topic, &alert.column, &serde_json::to_vec(alert)?)?;
            PipelineMetrics::add(&self.metrics.performance_alerts, 1);
        }
        if let Ok(mut gauges) = self.metrics.performance.lock() {
            if let Some(latest) = outcome.reports.iter().rev().find(|r| r.complete) {
                gauges.latest(latest);
            }
            if let Some((counts, waiting, early)) = performance.join_state() {
                gauges.join(counts, waiting, early, performance.misrouted);
            }
        }
        Ok(())
    }

    /// The fleet view's partials and progress of what this batch closed, to the fleet's
    /// partition of the partials topic.
    fn publish_partials(&mut self, input: &DriftInput) -> anyhow::Result<()> {
        let Some(fleet) = self.fleet.as_mut() else {
            return Ok(());
        };
        let records = fleet.observe(input)?;
        let (topic, partition) = (
            &self.settings.fleet.partials_topic,
            fleet.partials_partition,
        );
        for record in &records {
            let key = record.key();
            let payload = serde_json::to_vec(record)?;
            let record = BaseRecord::with_opaque_to(topic, Delivery::side())
                .partition(partition)
                .key(key.as_bytes())
                .payload(&payload[..]);
            send_waiting(&self.producer, record)
                .with_context(|| format!("cannot produce to {topic}"))?;
        }
        let partials = records
            .iter()
            .filter(|r| matches!(r, FleetRecord::Partial(_)));
        PipelineMetrics::add(&self.metrics.fleet_partials, partials.count() as u64);
        Ok(())
    }

    fn send(&self, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()> {
        let record = BaseRecord::with_opaque_to(topic, Delivery::side())
            .key(key.as_bytes())
            .payload(payload);
        send_waiting(&self.producer, record).with_context(|| format!("cannot produce to {topic}"))
    }
}

/// A bounded channel into the drift stage.
pub fn channel(capacity: usize) -> (SyncSender<DriftMessage>, Receiver<DriftMessage>) {
    std::sync::mpsc::sync_channel(capacity)
}
