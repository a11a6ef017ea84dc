//! The drift logic without the Kafka side: learns the reference profile from the stream (or
//! loads one), then compares each scored batch against it and says when windows close. Shared
//! by the stream's drift stage ([`super::stage`]) and `driftline batch`.
use std::path::Path;

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::drift::monitor::{
    DriftMonitor, DriftOutcome, Finish, ModelRef, MonitorSettings, RowOrigins,
};
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
    /// The serving model of the latest batch, named on every report.
    model: Option<ModelRef>,
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
            let mut profile = load_profile(Path::new(&d.profile))?;
            tracing::info!(profile = %d.profile, reference = %profile.id, "drift: reference profile loaded");
            if !settings.has_model() {
                // Nothing is scored: the profile's output columns would only ever be empty.
                let before = profile.columns.len();
                profile.columns.retain(|c| c.role != ColumnRole::Output);
                if profile.columns.len() < before {
                    tracing::info!(
                        outputs = before - profile.columns.len(),
                        "drift: no model, so the profile's output columns are not watched"
                    );
                }
            }
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
            model: None,
        })
    }

    /// The shadow's agreement over the window that the last [`DriftTracker::observe`] closed.
    pub fn take_agreement_report(&mut self) -> Option<ShadowAgreementReport> {
        self.agreement_report.take()
    }

    /// Takes one scored batch; reports and alerts when a window closed. Warm-up takes exactly
    /// `warmup_events` rows: a batch that crosses it is split, and its rest starts the first
    /// window.
    pub fn observe(&mut self, input: &DriftInput, now_ms: i64) -> anyhow::Result<DriftOutcome> {
        // Rebuilt only when a reload changed the serving model, not on every batch.
        let serving = input.variants.first();
        let same = match (serving, &self.model) {
            (Some(m), Some(r)) => {
                m.sha256 == r.sha256 && m.name == r.name && m.version == r.version
            }
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.model = serving.map(|m| ModelRef {
                name: m.name.clone(),
                version: m.version.clone(),
                sha256: m.sha256.clone(),
            });
        }
        let outcome = self.observe_rows(input, now_ms)?;
        Ok(self.named(outcome))
    }

    /// Names the serving model on each report.
    fn named(&self, mut outcome: DriftOutcome) -> DriftOutcome {
        for report in &mut outcome.reports {
            report.model.clone_from(&self.model);
        }
        outcome
    }

    fn observe_rows(&mut self, input: &DriftInput, now_ms: i64) -> anyhow::Result<DriftOutcome> {
        let outputs = variants::watched_outputs(input)?;
        let columns = drift_columns(&input.batch, &outputs);
        self.agreement.observe(input);
        let rows = input.batch.num_rows();
        let mut start = 0;
        if let Phase::Warming(builder) = &mut self.phase {
            let need = self
                .settings
                .drift
                .warmup_events
                .saturating_sub(builder.events());
            let take = rows.min(usize::try_from(need).unwrap_or(usize::MAX));
            // The reference is the serving model's: variants' columns join it when it is done.
            let head = slice_columns(&columns, 0, take);
            let serving: Vec<_> = head
                .iter()
                .filter(|(name, _, _)| !name.contains('@'))
                .map(|(name, role, array)| (*name, *role, array))
                .collect();
            builder.add(&serving)?;
            if builder.events() < self.settings.drift.warmup_events {
                return Ok(DriftOutcome::default());
            }
            self.start_monitoring()?;
            start = take;
        }
        let Phase::Monitoring(monitor) = &mut self.phase else {
            return Ok(DriftOutcome::default());
        };
        if start == rows {
            return Ok(DriftOutcome::default());
        }
        let rest = slice_columns(&columns, start, rows - start);
        let rest: Vec<_> = rest.iter().map(|(n, r, a)| (*n, *r, a)).collect();
        // Processing time: no event times make the monitor stamp every row with now.
        let times: &[i64] = match self.settings.drift.time_source {
            TimeSource::Event => input.batch.column(1).as_primitive::<Int64Type>().values(),
            TimeSource::Processing => &[],
        };
        let origins = RowOrigins {
            event_times_ms: rows_from(times, start),
            partitions: rows_from(&input.partitions, start),
            positions: rows_from(&input.offsets, start),
        };
        let outcome = monitor.observe(&rest, &origins, now_ms)?;
        if let Some(report) = self.agreement.close(&outcome) {
            self.agreement_report = Some(report);
        }
        Ok(outcome)
    }

    fn start_monitoring(&mut self) -> anyhow::Result<()> {
        let Phase::Warming(builder) = std::mem::replace(
            &mut self.phase,
            Phase::Warming(Box::new(ProfileBuilder::new(0, 2, 0))),
        ) else {
            return Ok(());
        };
        let profile = builder.finish()?;
        tracing::info!(reference = %profile.id, events = profile.n_events, "drift: reference profile learned; monitoring");
        let profile = variants::with_variant_columns(&profile, &self.variant_names);
        self.phase = Phase::Monitoring(Box::new(DriftMonitor::new(
            &profile,
            monitor_settings(&self.settings),
        )?));
        Ok(())
    }

    /// Ends the stream: every open window is reported (see [`Finish`]).
    pub fn finish(&mut self, how: Finish) -> anyhow::Result<DriftOutcome> {
        match &mut self.phase {
            Phase::Monitoring(monitor) => {
                let outcome = monitor.finish(how)?;
                Ok(self.named(outcome))
            }
            Phase::Warming(_) => Ok(DriftOutcome::default()),
        }
    }

    /// While the reference is still being learned: (events so far, events needed).
    pub fn warming_up(&self) -> Option<(u64, u64)> {
        match &self.phase {
            Phase::Warming(b) => Some((b.events(), self.settings.drift.warmup_events)),
            Phase::Monitoring(_) => None,
        }
    }

    /// Closes processing-time panes as the wall clock passes while no events come. Event-time
    /// windows advance with the events' own timestamps only (a backfill of old events must
    /// not see them all as late).
    pub fn tick(&mut self, now_ms: i64) -> anyhow::Result<DriftOutcome> {
        let processing_time = self.settings.drift.window == WindowKind::Time
            && self.settings.drift.time_source == TimeSource::Processing;
        match (processing_time, &mut self.phase) {
            (true, Phase::Monitoring(monitor)) => {
                let outcome = monitor.tick(now_ms)?;
                Ok(self.named(outcome))
            }
            _ => Ok(DriftOutcome::default()),
        }
    }
}

/// A per-row slice from row `start`; an empty one (no such information) stays empty.
fn rows_from<T>(values: &[T], start: usize) -> &[T] {
    values
        .get(start..)
        .filter(|_| !values.is_empty())
        .unwrap_or(&[])
}

/// `len` rows of every column from row `offset` (Arrow slices share the buffers).
fn slice_columns<'a>(
    columns: &[(&'a str, ColumnRole, &ArrayRef)],
    offset: usize,
    len: usize,
) -> Vec<(&'a str, ColumnRole, ArrayRef)> {
    columns
        .iter()
        .map(|(name, role, array)| (*name, *role, array.slice(offset, len)))
        .collect()
}

pub fn load_profile(path: &Path) -> anyhow::Result<ReferenceProfile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the drift profile {}", path.display()))?;
    ReferenceProfile::from_json(&text).with_context(|| format!("drift profile {}", path.display()))
}

pub fn monitor_settings(settings: &Settings) -> MonitorSettings {
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
        per_column: d.columns.clone(),
        resolve_after: d.resolve_after,
        correction: d.correction,
        instance: instance_name(),
    }
}

/// This instance's name in reports: the host name and the process id.
pub fn instance_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}:{}", std::process::id())
}
