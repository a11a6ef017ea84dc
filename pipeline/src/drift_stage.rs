//! The drift side stream: a thread beside the data path that keeps rolling histograms of every
//! feature and every model output, and publishes a report per column at each window close and
//! an alert whenever a column starts or stops drifting.
//!
//! It is fed by the inference stage through a bounded channel of shared batches (Arrow arrays
//! are reference-counted: no copy). The policy is lossless: when the channel is full the
//! inference stage waits, so every scored event is counted. Reports and alerts do not hold
//! input offsets back: their delivery is not tracked by the offset tracker.
use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::drift::monitor::{DriftMonitor, DriftOutcome, MonitorSettings};
use driftline_operators::drift::profile::{ColumnRole, ProfileBuilder, ReferenceProfile};
use driftline_operators::drift::WindowConfig;
use driftline_operators::schema::LEADING_COLUMNS;
use rdkafka::producer::BaseRecord;

use crate::config::{Settings, TimeSource, WindowKind};
use crate::metrics::{ColumnDrift, PipelineMetrics};
use crate::model_reload::ModelIdentity;
use crate::shadow_agreement::Agreement;
use crate::sink::{self, Delivery, SendRefusal, SinkProducer};
use crate::variant_drift::{self, AgreementWindow, ShadowAgreementReport};

/// One scored batch, as the drift stage sees it.
pub struct DriftInput {
    pub batch: RecordBatch,
    pub outputs: Vec<(String, ArrayRef)>,
    pub partitions: Vec<i32>,
    /// Per row, the index in `variants` of the model that scored it; `None`: `variants[0]`.
    pub variant_of_row: Option<Arc<[u8]>>,
    /// The serving model and its canary variants.
    pub variants: Arc<[Arc<ModelIdentity>]>,
    /// The shadow's scores of the same rows.
    pub shadow: Option<ShadowDrift>,
}

/// A shadow's name, outputs and agreement with the serving outputs, for the drift stage.
pub struct ShadowDrift {
    pub name: String,
    pub outputs: Vec<(String, ArrayRef)>,
    pub agreement: Agreement,
}

/// Every column drift watches: the features (after the id and timestamp), then the outputs.
pub fn drift_columns<'a>(
    batch: &'a RecordBatch,
    outputs: &'a [(String, ArrayRef)],
) -> Vec<(&'a str, ColumnRole, &'a ArrayRef)> {
    let schema = batch.schema_ref();
    let mut columns: Vec<(&str, ColumnRole, &ArrayRef)> = (LEADING_COLUMNS..batch.num_columns())
        .map(|i| {
            (
                schema.field(i).name().as_str(),
                ColumnRole::Feature,
                batch.column(i),
            )
        })
        .collect();
    columns.extend(
        outputs
            .iter()
            .map(|(name, array)| (name.as_str(), ColumnRole::Output, array)),
    );
    columns
}

/// What the thread is doing: learning the reference, or comparing against it.
enum Phase {
    Warming(Box<ProfileBuilder>),
    Monitoring(Box<DriftMonitor>),
}

/// The drift logic without the Kafka side: learns the reference (or loads it), then compares
/// each batch against it. Shared by the stream's [`DriftStage`] and `driftline batch`.
pub struct DriftTracker {
    settings: Settings,
    phase: Phase,
    /// Canary variants and the shadow whose outputs are watched as `OUTPUT@NAME`.
    variant_names: Vec<String>,
    agreement: AgreementWindow,
    agreement_report: Option<ShadowAgreementReport>,
}

impl DriftTracker {
    /// Loads the profile (or prepares to learn one) so a bad profile fails at startup.
    pub fn new(settings: &Settings) -> anyhow::Result<DriftTracker> {
        let d = &settings.drift;
        let variant_names = variant_drift::variant_names(settings);
        let phase = if d.profile.is_empty() {
            tracing::info!(
                warmup_events = d.warmup_events,
                "drift: learning the reference profile from the stream"
            );
            Phase::Warming(Box::new(ProfileBuilder::new(d.reference_sample, d.bins, 1)))
        } else {
            let profile = load_profile(Path::new(&d.profile))?;
            tracing::info!(profile = %d.profile, reference = %profile.id, "drift: reference profile loaded");
            let profile = variant_drift::with_variant_columns(&profile, &variant_names);
            Phase::Monitoring(Box::new(
                DriftMonitor::new(&profile, monitor_settings(settings)).context("drift monitor")?,
            ))
        };
        Ok(DriftTracker {
            settings: settings.clone(),
            phase,
            variant_names,
            agreement: AgreementWindow::default(),
            agreement_report: None,
        })
    }

    /// The shadow's agreement over the window that the last [`DriftTracker::observe`] closed.
    pub fn take_agreement_report(&mut self) -> Option<ShadowAgreementReport> {
        self.agreement_report.take()
    }

    /// Takes one scored batch; reports and alerts when a window closed.
    pub fn observe(&mut self, input: &DriftInput, now_ms: i64) -> anyhow::Result<DriftOutcome> {
        let outputs = variant_drift::watched_outputs(input)?;
        let mut columns = drift_columns(&input.batch, &outputs);
        self.agreement.observe(input);
        match &mut self.phase {
            Phase::Warming(builder) => {
                // The reference is the serving model's: variants' columns join it when it is done.
                columns.retain(|(name, _, _)| !name.contains('@'));
                builder.add(&columns)?;
                if builder.events() >= self.settings.drift.warmup_events {
                    let Phase::Warming(builder) = std::mem::replace(
                        &mut self.phase,
                        Phase::Warming(Box::new(ProfileBuilder::new(0, 2, 0))),
                    ) else {
                        unreachable!("matched Warming above")
                    };
                    let profile = builder.finish()?;
                    tracing::info!(reference = %profile.id, events = profile.n_events, "drift: reference profile learned; monitoring");
                    let profile =
                        variant_drift::with_variant_columns(&profile, &self.variant_names);
                    self.phase = Phase::Monitoring(Box::new(DriftMonitor::new(
                        &profile,
                        monitor_settings(&self.settings),
                    )?));
                }
                Ok(DriftOutcome::default())
            }
            Phase::Monitoring(monitor) => {
                // Processing time: an empty slice makes the monitor stamp every row with now.
                let times: &[i64] = match self.settings.drift.time_source {
                    TimeSource::Event => input.batch.column(1).as_primitive::<Int64Type>().values(),
                    TimeSource::Processing => &[],
                };
                let outcome = monitor.observe(&columns, times, &input.partitions, now_ms)?;
                if let Some(report) = self.agreement.close(&outcome) {
                    self.agreement_report = Some(report);
                }
                Ok(outcome)
            }
        }
    }

    /// Closes processing-time panes as the wall clock passes while no events come. Event-time
    /// windows advance with the events' own timestamps only (a backfill of old events must
    /// not see them all as late).
    pub fn tick(&mut self, now_ms: i64) -> anyhow::Result<DriftOutcome> {
        let processing_time = self.settings.drift.window == WindowKind::Time
            && self.settings.drift.time_source == TimeSource::Processing;
        match (processing_time, &mut self.phase) {
            (true, Phase::Monitoring(monitor)) => Ok(monitor.tick(now_ms)?),
            _ => Ok(DriftOutcome::default()),
        }
    }
}

pub struct DriftStage {
    settings: Settings,
    producer: Arc<SinkProducer>,
    metrics: Arc<PipelineMetrics>,
    tracker: DriftTracker,
}

impl DriftStage {
    /// Loads the profile (or prepares to learn one) so a bad profile fails at startup.
    pub fn new(
        settings: &Settings,
        producer: Arc<SinkProducer>,
        metrics: Arc<PipelineMetrics>,
    ) -> anyhow::Result<DriftStage> {
        Ok(DriftStage {
            settings: settings.clone(),
            producer,
            metrics,
            tracker: DriftTracker::new(settings)?,
        })
    }

    /// Runs until the channel closes; a timer closes processing-time panes.
    pub fn run(mut self, rx: Receiver<DriftInput>) -> anyhow::Result<()> {
        loop {
            let outcome = match rx.recv_timeout(Duration::from_millis(500)) {
                Ok(input) => self.tracker.observe(&input, sink::now_ms())?,
                Err(RecvTimeoutError::Timeout) => self.tracker.tick(sink::now_ms())?,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
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
        let k = &self.settings.kafka;
        for report in &outcome.reports {
            self.send(&k.drift_topic, &report.column, &serde_json::to_vec(report)?)?;
            PipelineMetrics::add(&self.metrics.drift_reports, 1);
        }
        if !outcome.reports.is_empty() {
            if let Ok(mut columns) = self.metrics.drift_columns.lock() {
                for r in &outcome.reports {
                    let scores = ColumnDrift {
                        psi: r.psi.value,
                        kl: r.kl.value,
                        ks: r.ks.as_ref().map(|ks| ks.statistic),
                        drifting: r.drift,
                    };
                    columns.insert(r.column.clone(), scores);
                }
            }
        }
        for alert in &outcome.alerts {
            tracing::warn!(column = %alert.column, statistic = ?alert.statistic, value = alert.value, state = ?alert.state, "drift alert");
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
            match sink::try_send(&self.producer, record) {
                Ok(()) => return Ok(()),
                Err(SendRefusal::QueueFull(r)) => {
                    record = r;
                    std::thread::sleep(sink::QUEUE_FULL_BACKOFF);
                }
                Err(SendRefusal::Fatal(e)) => bail!("cannot produce to {topic}: {e}"),
            }
        }
    }
}

pub fn load_profile(path: &Path) -> anyhow::Result<ReferenceProfile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the drift profile {}", path.display()))?;
    ReferenceProfile::from_json(&text).with_context(|| format!("drift profile {}", path.display()))
}

fn monitor_settings(settings: &Settings) -> MonitorSettings {
    let d = &settings.drift;
    let mut window = match d.window {
        WindowKind::Count => WindowConfig::by_count(d.pane_events, d.panes, d.slide),
        WindowKind::Time => {
            WindowConfig::by_time(d.pane_ms as u64, d.panes, d.slide, d.lateness_ms as u64)
        }
    };
    window.retain_values = d.retain_values;
    MonitorSettings {
        window,
        thresholds: d.thresholds.clone(),
        per_column: d.column_thresholds(),
        resolve_after: d.resolve_after,
        bonferroni: d.bonferroni,
        instance: instance_name(),
    }
}

/// This instance's name in reports: the host name and the process id.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}:{}", std::process::id())
}

/// A bounded channel into the drift stage.
pub fn channel(capacity: usize) -> (SyncSender<DriftInput>, Receiver<DriftInput>) {
    std::sync::mpsc::sync_channel(capacity)
}
