//! The streaming drift monitor: every profiled column gets a rolling window
//! binned with the profile's bins, and every closed window a report and,
//! through the alert hysteresis, alert transitions.
//!
//! Guarantees:
//! - Columns are flattened by [`flatten_columns`], as the profile builder
//!   flattened them; a profiled column absent from a batch counts those rows
//!   as missing (so all windows close together), a column the profile does
//!   not know is ignored, one of the wrong kind is an error.
//! - PSI and KL (reference ‖ current, renormalised) over the profile's q10
//!   bins with the q10 zero fill: for one window they equal the offline
//!   `compare` numbers on the same data. KS is scipy's `ks_2samp` (`auto`)
//!   against the profile's sample when the window kept every raw value,
//!   else binned D with its error bound and no p-value.
//! - Categories unseen in the reference get their own bins (the first 64;
//!   further ones share `__other__`), enter PSI/KL with reference count 0
//!   and make the chi-square test fail; only those present in a window are
//!   reported, so each report matches `compare` on that window.
//! - Verdicts need `min_samples` non-missing values in the window; smaller
//!   windows report `drift: false` and leave alert states untouched.
//! - Per row the work is O(columns) and nothing is allocated, except the
//!   first time an unseen category or a partition shows up in a pane (and
//!   while a recycled pane's retained-value buffer still grows).
//! - Time windows bin by event time; the watermark is the largest event time
//!   accepted, and [`DriftMonitor::tick`] moves it to the wall clock so idle
//!   streams still close panes (only meaningful when event time follows it).

use std::collections::{BTreeMap, HashMap};

use arrow_array::ArrayRef;

use super::alert::{bonferroni_alpha, AlertPolicy, AlertTracker};
use super::binning::{CategoricalBinning, QuantileBinning};
use super::error::DriftError;
use super::profile::{flatten_columns, ColumnKind, ColumnRole, ColumnStats, ReferenceProfile};
use super::window::{Admission, PaneClock, RollingWindow, WindowConfig, WindowSnapshot};

#[path = "monitor_assess.rs"]
mod assess;
#[path = "monitor_report.rs"]
mod report;
#[path = "monitor_settings.rs"]
mod settings;

pub use settings::{DriftThresholds, MonitorSettings};

pub use report::{
    AlertEvent, AlertState, BinCounts, BinLabels, ChiSquareReport, DriftOutcome, DriftReport,
    KsReport, KsReportMethod, Severity, StatVerdict, WindowBounds, REPORT_SCHEMA_VERSION,
};

/// Distinct unseen categories per column that get a bin of their own.
pub const MAX_UNSEEN_CATEGORIES: usize = 64;
/// The bin shared by unseen categories past [`MAX_UNSEEN_CATEGORIES`].
pub const OTHER_CATEGORY: &str = "__other__";

#[derive(Debug)]
enum ColumnBins {
    Numeric(QuantileBinning),
    Categorical {
        known: CategoricalBinning,
        unseen: Vec<String>,
    },
}

#[derive(Debug)]
struct MonitorColumn {
    name: String,
    role: ColumnRole,
    bins: ColumnBins,
    reference: Vec<u64>,
    sample: Vec<f64>,
    window: RollingWindow,
    thresholds: DriftThresholds,
    alpha: f64,
}

/// Rolling windows, statistics and alerts for every profiled column.
#[derive(Debug)]
pub struct DriftMonitor {
    reference_id: String,
    instance: String,
    config: WindowConfig,
    columns: Vec<MonitorColumn>,
    alerts: AlertTracker,
    events: u64,
    watermark: u64,
    pane_partitions: BTreeMap<u64, Vec<i32>>,
    pane_floor: u64,
    slots: Vec<Option<usize>>,
    closing: Vec<(usize, WindowSnapshot)>,
}

impl DriftMonitor {
    /// A monitor for `profile`'s columns; checks settings and profile.
    pub fn new(profile: &ReferenceProfile, settings: MonitorSettings) -> Result<Self, DriftError> {
        if profile.columns.is_empty() {
            return Err(DriftError::EmptySample { which: "reference" });
        }
        settings.thresholds.validate("*")?;
        let count = |kind| {
            let n = profile.columns.iter().filter(|c| c.stats.kind() == kind);
            n.count()
        };
        let (n_numeric, n_categorical) =
            (count(ColumnKind::Numeric), count(ColumnKind::Categorical));
        let mut columns = Vec::with_capacity(profile.columns.len());
        for c in &profile.columns {
            let base = c.name.split_once('[').map_or(c.name.as_str(), |(b, _)| b);
            let thresholds = settings
                .per_column
                .get(&c.name)
                .or_else(|| settings.per_column.get(base))
                .unwrap_or(&settings.thresholds)
                .clone();
            thresholds.validate(&c.name)?;
            if c.stats.counts().iter().sum::<u64>() == 0 {
                return Err(DriftError::InvalidParameter {
                    name: "reference profile",
                    reason: format!("column `{}` has no reference counts", c.name),
                });
            }
            let tests = if c.stats.kind() == ColumnKind::Numeric {
                n_numeric
            } else {
                n_categorical
            };
            let alpha = if settings.bonferroni {
                bonferroni_alpha(thresholds.ks_pvalue, tests)
            } else {
                thresholds.ks_pvalue
            };
            let (bins, sample, window) = match &c.stats {
                ColumnStats::Numeric { cuts, sample, .. } => {
                    let binning = QuantileBinning::from_cuts(cuts.clone())?;
                    let window = RollingWindow::new(settings.window.clone(), binning.n_bins())?;
                    (ColumnBins::Numeric(binning), sample.clone(), window)
                }
                ColumnStats::Categorical { categories, .. } => {
                    let known = CategoricalBinning::from_categories(categories.clone());
                    if known.n_bins() != categories.len() {
                        return Err(DriftError::BinMismatch {
                            expected: categories.len(),
                            found: known.n_bins(),
                        });
                    }
                    // No raw values: categories have no KS.
                    let config = WindowConfig {
                        retain_values: 0,
                        ..settings.window.clone()
                    };
                    let n_bins = known.n_bins() + MAX_UNSEEN_CATEGORIES + 1;
                    let window = RollingWindow::new(config, n_bins)?;
                    let unseen = Vec::new();
                    (
                        ColumnBins::Categorical { known, unseen },
                        Vec::new(),
                        window,
                    )
                }
            };
            columns.push(MonitorColumn {
                name: c.name.clone(),
                role: c.role,
                bins,
                reference: c.stats.counts().to_vec(),
                sample,
                window,
                thresholds,
                alpha,
            });
        }
        Ok(Self {
            reference_id: profile.id.clone(),
            instance: settings.instance,
            config: settings.window,
            alerts: AlertTracker::new(AlertPolicy {
                resolve_after: settings.resolve_after,
            }),
            slots: Vec::with_capacity(columns.len()),
            columns,
            events: 0,
            watermark: 0,
            pane_partitions: BTreeMap::new(),
            pane_floor: 0,
            closing: Vec::new(),
        })
    }

    /// Updates every column's window with one batch. `event_times_ms` and
    /// `partitions` hold one entry per row, or are empty: no times stamps
    /// every row with `now_ms`, no partitions records none.
    pub fn observe(
        &mut self,
        columns: &[(&str, ColumnRole, &ArrayRef)],
        event_times_ms: &[i64],
        partitions: &[i32],
        now_ms: i64,
    ) -> Result<DriftOutcome, DriftError> {
        let (rows, flat) = flatten_columns(columns)?;
        for (what, len) in [
            ("event times", event_times_ms.len()),
            ("partitions", partitions.len()),
        ] {
            if len != 0 && len != rows {
                return Err(DriftError::InvalidParameter {
                    name: "batch",
                    reason: format!("{len} {what} for {rows} rows"),
                });
            }
        }
        let by_name: HashMap<&str, usize> = flat
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.as_str(), i))
            .collect();
        self.slots.clear();
        for c in &self.columns {
            let slot = by_name.get(c.name.as_str()).copied();
            if let Some(f) = slot.and_then(|i| flat.get(i)) {
                if f.values.kind() != c.kind() {
                    return Err(DriftError::InvalidParameter {
                        name: "column",
                        reason: format!("`{}` is {:?} in the profile", c.name, c.kind()),
                    });
                }
            }
            self.slots.push(slot);
        }
        let mut outcome = DriftOutcome::default();
        let mut buf = itoa::Buffer::new();
        for row in 0..rows {
            let partition = partitions.get(row).copied();
            match self.config.clock {
                PaneClock::Count { pane_events } => {
                    if let Some(p) = partition {
                        self.note_partition(self.events / pane_events, p);
                    }
                    self.events += 1;
                    for (ci, c) in self.columns.iter_mut().enumerate() {
                        let values = self.slots[ci].and_then(|i| flat.get(i)).map(|f| &f.values);
                        let (bin, value) = c.bin_row(values, row, &mut buf);
                        if let Some(snapshot) = c.window.record(bin, value)? {
                            self.closing.push((ci, snapshot));
                        }
                    }
                    if !self.closing.is_empty() {
                        self.emit(&mut outcome)?;
                    }
                }
                PaneClock::Time { pane_ms, .. } => {
                    let ts = event_times_ms.get(row).copied().unwrap_or(now_ms);
                    // Before the epoch: pane 0, where it will most likely be late.
                    let ts = u64::try_from(ts).unwrap_or(0);
                    let mut accepted = false;
                    for (ci, c) in self.columns.iter_mut().enumerate() {
                        let values = self.slots[ci].and_then(|i| flat.get(i)).map(|f| &f.values);
                        let (bin, value) = c.bin_row(values, row, &mut buf);
                        accepted |= c.window.record_at(ts, bin, value)? == Admission::Accepted;
                    }
                    if accepted {
                        self.watermark = self.watermark.max(ts);
                        if let Some(p) = partition {
                            self.note_partition(ts / pane_ms, p);
                        }
                    }
                }
            }
        }
        if matches!(self.config.clock, PaneClock::Time { .. }) {
            self.advance(self.watermark, &mut outcome)?;
        }
        Ok(outcome)
    }

    /// For time windows: treats `now_ms` as the watermark and closes every
    /// pane whose end plus lateness has passed. Count windows: nothing.
    pub fn tick(&mut self, now_ms: i64) -> Result<DriftOutcome, DriftError> {
        let mut outcome = DriftOutcome::default();
        if matches!(self.config.clock, PaneClock::Time { .. }) {
            self.watermark = self.watermark.max(u64::try_from(now_ms).unwrap_or(0));
            self.advance(self.watermark, &mut outcome)?;
        }
        Ok(outcome)
    }

    fn advance(&mut self, watermark: u64, outcome: &mut DriftOutcome) -> Result<(), DriftError> {
        for (ci, c) in self.columns.iter_mut().enumerate() {
            let snapshots = c.window.advance_watermark(watermark);
            self.closing.extend(snapshots.into_iter().map(|s| (ci, s)));
        }
        if let PaneClock::Time {
            pane_ms,
            allowed_lateness_ms,
        } = self.config.clock
        {
            // Panes before this have closed: late rows cannot reopen them.
            let closed_below = watermark.saturating_sub(allowed_lateness_ms) / pane_ms;
            self.pane_floor = self.pane_floor.max(closed_below);
        }
        if !self.closing.is_empty() {
            self.emit(outcome)?;
        }
        let oldest_needed =
            (self.pane_floor + 1).saturating_sub(self.config.panes_per_window as u64);
        self.pane_partitions = self.pane_partitions.split_off(&oldest_needed);
        Ok(())
    }

    fn note_partition(&mut self, pane: u64, partition: i32) {
        if pane < self.pane_floor {
            return;
        }
        let seen = self.pane_partitions.entry(pane).or_default();
        if let Err(at) = seen.binary_search(&partition) {
            seen.insert(at, partition);
        }
    }

    /// Turns the closed windows in `self.closing` into reports and alerts.
    fn emit(&mut self, outcome: &mut DriftOutcome) -> Result<(), DriftError> {
        let mut closing = std::mem::take(&mut self.closing);
        // Oldest window first, then profile order: alerts stay chronological.
        closing.sort_by_key(|(ci, s)| (s.last_pane, *ci));
        let mut next_first = self.pane_floor;
        for (ci, snapshot) in closing.drain(..) {
            let Some(column) = self.columns.get(ci) else {
                continue;
            };
            let mut partitions: Vec<i32> = self
                .pane_partitions
                .range(snapshot.first_pane..=snapshot.last_pane)
                .flat_map(|(_, p)| p.iter().copied())
                .collect();
            partitions.sort_unstable();
            partitions.dedup();
            let (report, verdicts) =
                column.assess(&snapshot, &self.reference_id, &self.instance, partitions)?;
            for v in verdicts {
                let Some(transition) = self.alerts.observe(&report.column, v.statistic, v.drift)
                else {
                    continue;
                };
                outcome.alerts.push(v.into_event(transition, &report));
            }
            outcome.reports.push(report);
            next_first = next_first.max(snapshot.first_pane + self.config.slide_panes as u64);
        }
        self.closing = closing;
        if matches!(self.config.clock, PaneClock::Count { .. }) {
            self.pane_floor = next_first;
            self.pane_partitions = self.pane_partitions.split_off(&next_first);
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;
