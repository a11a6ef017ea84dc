//! The drift logic without the Kafka side: learns the reference profile from the stream (or
//! loads one), then compares each scored batch against it and says when windows close. Shared
//! by the stream's drift stage ([`super::stage`]) and `driftline batch`.
use std::path::Path;

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::drift::monitor::{DriftMonitor, DriftOutcome, MonitorSettings};
use driftline_operators::drift::profile::{ColumnRole, ProfileBuilder, ReferenceProfile};
use driftline_operators::drift::WindowConfig;
use driftline_operators::schema::LEADING_COLUMNS;

use crate::config::{Settings, TimeSource, WindowKind};
use crate::stages::drift::variants::{self, AgreementWindow, ShadowAgreementReport};
use crate::stages::messages::DriftInput;

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
        let variant_names = variants::variant_names(settings);
        let phase = if d.profile.is_empty() {
            tracing::info!(
                warmup_events = d.warmup_events,
                "drift: learning the reference profile from the stream"
            );
            Phase::Warming(Box::new(ProfileBuilder::new(d.reference_sample, d.bins, 1)))
        } else {
            let profile = load_profile(Path::new(&d.profile))?;
            tracing::info!(profile = %d.profile, reference = %profile.id, "drift: reference profile loaded");
            let profile = variants::with_variant_columns(&profile, &variant_names);
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
        let outputs = variants::watched_outputs(input)?;
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
                    let profile = variants::with_variant_columns(&profile, &self.variant_names);
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
