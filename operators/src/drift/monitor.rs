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
//! - One verdict per column per window ([`Verdict`]): the statistics listed in `vote` each
//!   say drift or not, and the column drifts when `min_votes` of them do. KS and chi-square
//!   also need their effect size over its floor (`min_ks_statistic`, `min_cramers_v`).
//! - The p-values of every judged column of a window (features and outputs, numeric and
//!   categorical) are one family, corrected together ([`Correction`]); each report states the
//!   threshold it was judged by.
//! - Only complete windows are judged: a count window that filled, a time window whose first
//!   pane is at or after the stream's first event's pane. Verdicts also need `min_samples`
//!   non-missing values. A window without a verdict leaves the alert alone.
//! - [`DriftMonitor::finish`] ends the stream: at the end of the input every open window is
//!   reported (judged when it has `min_samples` values, complete or not); on shutdown they
//!   are reported without a verdict, so that a rolling restart pages nobody.
//! - Every report says where its events came from: event-time range, and per partition the
//!   first and last offset (per input file: record numbers).
//! - Per row the work is O(columns) and nothing is allocated, except the
//!   first time an unseen category or a partition shows up in a pane (and
//!   while a recycled pane's retained-value buffer still grows).
//! - Time windows bin by event time; the watermark is the largest event time
//!   accepted, and [`DriftMonitor::tick`] moves it to the wall clock so idle
//!   streams still close panes (only meaningful when event time follows it).

use std::collections::HashMap;

use arrow_array::ArrayRef;

use super::alert::{AlertPolicy, AlertTracker};
use super::binning::{CategoricalBinning, QuantileBinning};
use super::error::DriftError;
use super::profile::{flatten_columns, ColumnRole, ColumnStats, ReferenceProfile};
use super::window::{Admission, PaneClock, RollingWindow, WindowConfig, WindowSnapshot};
use origins::{PaneOriginLog, RowOrigin};

#[path = "monitor_assess.rs"]
mod assess;
#[path = "monitor_fleet.rs"]
mod fleet;
#[path = "monitor_origins.rs"]
mod origins;
#[path = "monitor_report.rs"]
mod report;
#[path = "monitor_settings.rs"]
mod settings;

pub use settings::{ColumnOverrides, Correction, DriftThresholds, MonitorSettings};

pub use report::{
    AlertEvent, AlertState, AlertStatistic, BinCounts, BinLabels, ChiSquareReport, DriftOutcome,
    DriftReport, Family, KsReport, KsReportMethod, ModelRef, Severity, SourceSpan, StatVerdict,
    Verdict, WindowBounds, REPORT_SCHEMA_VERSION,
};

/// Where each row of a batch came from; every slice has one entry per row, or is empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct RowOrigins<'a> {
    /// Event times; empty: every row is stamped with `now_ms`.
    pub event_times_ms: &'a [i64],
    /// Kafka partitions; empty with `positions`: rows of an input file.
    pub partitions: &'a [i32],
    /// Kafka offsets (with `partitions`), or record numbers in an input file.
    pub positions: &'a [i64],
}

/// How [`DriftMonitor::finish`] ends the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The input is over (`driftline batch`): open windows are judged when they have
    /// `min_samples` values.
    EndOfInput,
    /// The process stops: open windows are reported without a verdict.
    Shutdown,
}

/// Why windows are being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closing {
    Stream,
    End(Finish),
}

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
}

/// Rolling windows, statistics and alerts for every profiled column.
#[derive(Debug)]
pub struct DriftMonitor {
    reference_id: String,
    instance: String,
    config: WindowConfig,
    columns: Vec<MonitorColumn>,
    alerts: AlertTracker,
    alpha: f64,
    correction: Correction,
    events: u64,
    watermark: u64,
    /// Time windows: the pane of the stream's first event, and the last pane with events.
    first_pane_seen: Option<u64>,
    last_pane_seen: Option<u64>,
    pane_origins: PaneOriginLog,
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
        let mut columns = Vec::with_capacity(profile.columns.len());
        for c in &profile.columns {
            let thresholds = settings.for_column(&c.name);
            thresholds.validate(&c.name)?;
            if thresholds.exclude {
                continue;
            }
            if c.stats.counts().iter().sum::<u64>() == 0 {
                return Err(DriftError::InvalidParameter {
                    name: "reference profile",
                    reason: format!("column `{}` has no reference counts", c.name),
                });
            }
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
            });
        }
        if columns.is_empty() {
            return Err(DriftError::InvalidParameter {
                name: "drift columns",
                reason: "every profiled column is excluded".into(),
            });
        }
        Ok(Self {
            reference_id: profile.id.clone(),
            instance: settings.instance,
            config: settings.window,
            alerts: AlertTracker::new(AlertPolicy {
                resolve_after: settings.resolve_after,
            }),
            alpha: settings.thresholds.alpha,
            correction: settings.correction,
            slots: Vec::with_capacity(columns.len()),
            columns,
            events: 0,
            watermark: 0,
            first_pane_seen: None,
            last_pane_seen: None,
            pane_origins: PaneOriginLog::default(),
            pane_floor: 0,
            closing: Vec::new(),
        })
    }

    /// Updates every column's window with one batch; `rows` says where each row came from.
    pub fn observe(
        &mut self,
        columns: &[(&str, ColumnRole, &ArrayRef)],
        rows_from: &RowOrigins<'_>,
        now_ms: i64,
    ) -> Result<DriftOutcome, DriftError> {
        let (rows, flat) = flatten_columns(columns)?;
        for (what, len) in [
            ("event times", rows_from.event_times_ms.len()),
            ("partitions", rows_from.partitions.len()),
            ("positions", rows_from.positions.len()),
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
            let origin = RowOrigin {
                partition: rows_from.partitions.get(row).copied(),
                position: rows_from.positions.get(row).copied(),
                event_ms: rows_from.event_times_ms.get(row).copied(),
            };
            match self.config.clock {
                PaneClock::Count { pane_events } => {
                    self.note_origin(self.events / pane_events, origin);
                    self.events += 1;
                    for (ci, c) in self.columns.iter_mut().enumerate() {
                        let values = self.slots[ci].and_then(|i| flat.get(i)).map(|f| &f.values);
                        let (bin, value) = c.bin_row(values, row, &mut buf);
                        if let Some(snapshot) = c.window.record(bin, value)? {
                            self.closing.push((ci, snapshot));
                        }
                    }
                    if !self.closing.is_empty() {
                        self.emit(Closing::Stream, &mut outcome)?;
                    }
                }
                PaneClock::Time { pane_ms, .. } => {
                    let ts = origin.event_ms.unwrap_or(now_ms);
                    // Before the epoch: pane 0, where it will most likely be late.
                    let ts = u64::try_from(ts).unwrap_or(0);
                    let mut accepted = false;
                    for (ci, c) in self.columns.iter_mut().enumerate() {
                        let values = self.slots[ci].and_then(|i| flat.get(i)).map(|f| &f.values);
                        let (bin, value) = c.bin_row(values, row, &mut buf);
                        accepted |= c.window.record_at(ts, bin, value)? == Admission::Accepted;
                    }
                    if accepted {
                        let pane = ts / pane_ms;
                        self.watermark = self.watermark.max(ts);
                        self.first_pane_seen.get_or_insert(pane);
                        self.last_pane_seen = self.last_pane_seen.max(Some(pane));
                        let stamped = RowOrigin {
                            event_ms: Some(ts as i64),
                            ..origin
                        };
                        self.note_origin(pane, stamped);
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

    /// Ends the stream: reports every open window (see the module docs). The monitor takes
    /// no more events afterwards.
    pub fn finish(&mut self, how: Finish) -> Result<DriftOutcome, DriftError> {
        let mut outcome = DriftOutcome::default();
        for (ci, c) in self.columns.iter_mut().enumerate() {
            let snapshots = c.window.flush();
            self.closing.extend(snapshots.into_iter().map(|s| (ci, s)));
        }
        if !self.closing.is_empty() {
            self.emit(Closing::End(how), &mut outcome)?;
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
            self.emit(Closing::Stream, outcome)?;
        }
        let oldest_needed =
            (self.pane_floor + 1).saturating_sub(self.config.panes_per_window as u64);
        self.pane_origins.forget_before(oldest_needed);
        Ok(())
    }

    /// Notes where a row of `pane` came from, unless the pane has closed (a late row).
    fn note_origin(&mut self, pane: u64, origin: RowOrigin) {
        if pane >= self.pane_floor {
            self.pane_origins.note(pane, origin);
        }
    }

    /// Whether the window's whole span was observed: a count window that filled; a time
    /// window of all its panes that starts at or after the stream's first pane and, at the
    /// end of the input, does not reach past its last.
    fn is_complete(&self, snapshot: &WindowSnapshot, closing: Closing) -> bool {
        match self.config.clock {
            PaneClock::Count { .. } => snapshot.complete,
            PaneClock::Time { .. } => {
                let whole = snapshot.last_pane + 1 >= self.config.panes_per_window as u64;
                let from_start = self
                    .first_pane_seen
                    .is_some_and(|first| snapshot.first_pane >= first);
                let to_end = closing == Closing::Stream
                    || self.last_pane_seen.is_some_and(|l| snapshot.last_pane <= l);
                whole && from_start && to_end
            }
        }
    }

    /// Why a window gets no verdict, if it gets none (`min_samples` is the column's to say).
    fn no_verdict_because(complete: bool, closing: Closing) -> Option<String> {
        match closing {
            Closing::End(Finish::Shutdown) => Some("shutdown: the window was still open".into()),
            Closing::End(Finish::EndOfInput) => None,
            Closing::Stream if complete => None,
            Closing::Stream => Some("incomplete: the stream started inside the window".into()),
        }
    }

    /// Turns the closed windows in `self.closing` into reports and alerts: window by window,
    /// every column measured, the window's p-values corrected together, then verdicts.
    fn emit(&mut self, closing: Closing, outcome: &mut DriftOutcome) -> Result<(), DriftError> {
        let mut pending = std::mem::take(&mut self.closing);
        // Oldest window first, then profile order: alerts stay chronological.
        pending.sort_by_key(|(ci, s)| (s.last_pane, *ci));
        let mut next_first = self.pane_floor;
        let mut start = 0;
        while start < pending.len() {
            let last_pane = pending[start].1.last_pane;
            let end = start
                + pending[start..]
                    .iter()
                    .take_while(|(_, s)| s.last_pane == last_pane)
                    .count();
            let mut measured = Vec::with_capacity(end - start);
            // Every column of one window spans the same panes: their origins are read once.
            let first_pane = pending[start].1.first_pane;
            let origins = self.pane_origins.window(first_pane, last_pane);
            for (ci, snapshot) in &pending[start..end] {
                let Some(column) = self.columns.get(*ci) else {
                    continue;
                };
                let mut m = column.measure(
                    snapshot,
                    &self.reference_id,
                    &self.instance,
                    origins.partitions.clone(),
                    self.alpha,
                    self.correction,
                )?;
                let complete = self.is_complete(snapshot, closing);
                let w = &mut m.report.window;
                w.complete = complete;
                w.sources = origins.sources.clone();
                w.min_event_ms = origins.min_event_ms;
                w.max_event_ms = origins.max_event_ms;
                if let Some(reason) = Self::no_verdict_because(complete, closing) {
                    m.withhold(reason);
                }
                measured.push(m);
                next_first = next_first.max(snapshot.first_pane + self.config.slide_panes as u64);
            }
            self.conclude_window(measured, outcome);
            start = end;
        }
        pending.clear();
        self.closing = pending;
        if matches!(self.config.clock, PaneClock::Count { .. }) {
            self.pane_floor = next_first;
            self.pane_origins.forget_before(next_first);
        }
        Ok(())
    }

    /// Corrects one window's measured columns together, gives each its verdict, and turns
    /// verdicts into alert transitions.
    fn conclude_window(&mut self, mut measured: Vec<assess::Measured>, outcome: &mut DriftOutcome) {
        assess::judge_window(&mut measured, self.alpha, self.correction);
        for m in measured {
            let report = m.report;
            if let Some(drift) = report.verdict.drift {
                if let Some(transition) = self.alerts.observe(&report.column, drift) {
                    outcome
                        .alerts
                        .push(assess::alert_event(transition, &report));
                }
            }
            outcome.reports.push(report);
        }
    }
}

#[cfg(test)]
#[path = "monitor_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "alerting_tests.rs"]
mod alerting_tests;
