//! What the monitor emits: one [`DriftReport`] per column per closed window, and one
//! [`AlertEvent`] when a column's verdict opens or resolves its alert.
//!
//! Guarantees: every type round-trips through JSON and every number in it is finite (a value
//! that cannot be computed is `null`, and a report without a verdict says why); a report
//! carries its raw bin counts, so consumers can merge reports of the same window across
//! partitions and instances by adding counts; a report says which events it covers (event-time
//! range, and per partition the first and last offset).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::settings::Correction;
use crate::drift::alert::StatisticKind;
use crate::drift::profile::{ColumnKind, ColumnRole};

/// Version of the report and alert formats. 2: one verdict per column (`verdict`), complete
/// windows, sources, the corrected thresholds; alerts per column with every statistic.
pub const REPORT_SCHEMA_VERSION: u32 = 2;

/// Where a window's events came from: a partition's first and last offset in the window, or
/// for `driftline batch` (`partition` null) the first and last record number (the line of a
/// JSONL or CSV file, from 1, as in its rejects file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSpan {
    pub partition: Option<i32>,
    pub first: i64,
    pub last: i64,
}

/// Which events a window covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowBounds {
    /// Event-time start of the window's span (time windows).
    pub start_ms: Option<i64>,
    /// Event-time end of the span, exclusive (time windows).
    pub end_ms: Option<i64>,
    /// First pane of the window.
    pub first_pane: u64,
    /// Last pane of the window.
    pub last_pane: u64,
    /// Events in the window, missing ones included.
    pub events: u64,
    /// The whole span was observed: a count window that filled, a time window that starts at
    /// or after the stream's first pane and whose end the watermark passed (or, at the end of
    /// the input, whose last pane the input reached).
    pub complete: bool,
    /// Smallest and largest event time of the window's events.
    pub min_event_ms: Option<i64>,
    pub max_event_ms: Option<i64>,
    /// Per partition (or input file), the first and last position of the window's events.
    pub sources: Vec<SourceSpan>,
}

/// A score with its threshold and verdict (`drift` when `value >= threshold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatVerdict {
    /// The score.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// Over the threshold (always false in a window without a verdict).
    pub drift: bool,
    /// Counts towards the column's verdict.
    pub votes: bool,
}

/// How a report's KS result was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KsReportMethod {
    /// Exact p-value from every raw value of the window.
    Exact,
    /// Asymptotic p-value from every raw value of the window.
    Asymp,
    /// From histograms: `statistic` is a lower bound on D.
    Binned,
    /// From a fleet's merged KS grid counts: `statistic` is D at the grid's points (exactly
    /// `ks_2samp`'s D when `error_bound` is 0), the p-value `ks_2samp`'s for that D.
    Grid,
}

/// KS of the window against the reference sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsReport {
    /// D (binned: its lower bound).
    pub statistic: f64,
    /// Two-sided p-value (binned: the asymptotic p-value of the lower bound on D, an upper
    /// bound on the true one, so the verdict errs towards "no drift").
    pub pvalue: f64,
    /// Where the result came from.
    pub method: KsReportMethod,
    /// Binned: D is at most `statistic + error_bound`.
    pub error_bound: Option<f64>,
    /// The threshold `pvalue` was judged by, after the window's correction.
    pub threshold: f64,
    /// The effect-size floor: D must also reach it.
    pub min_statistic: f64,
    /// `pvalue <= threshold && statistic >= min_statistic`.
    pub drift: bool,
    /// Counts towards the column's verdict.
    pub votes: bool,
}

/// Chi-square test of the window's categories against the reference's (2 × k contingency
/// table, `scipy.stats.chi2_contingency`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareReport {
    pub statistic: f64,
    pub dof: u64,
    pub pvalue: f64,
    /// Cramér's V; `null` with a single category.
    pub cramers_v: Option<f64>,
    /// The threshold `pvalue` was judged by, after the window's correction.
    pub threshold: f64,
    /// The effect-size floor: V must also reach it.
    pub min_cramers_v: f64,
    /// `pvalue <= threshold && cramers_v >= min_cramers_v`.
    pub drift: bool,
    /// Counts towards the column's verdict.
    pub votes: bool,
}

/// What the bins are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinLabels {
    /// Numeric: q10 cuts; bin `i` is `(cuts[i-1], cuts[i]]`.
    Cuts(Vec<f64>),
    /// Categorical: reference categories, then unseen ones seen in this window.
    Categories(Vec<String>),
}

/// Raw counts behind the statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinCounts {
    /// The bins.
    pub edges_or_categories: BinLabels,
    /// Reference counts per bin (0 for unseen categories).
    pub reference: Vec<u64>,
    /// Window counts per bin.
    pub current: Vec<u64>,
    /// Window events with a null or NaN value.
    pub missing: u64,
}

/// The column's one verdict in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the column drifted; `null` when the window gets no verdict.
    pub drift: Option<bool>,
    /// Why there is no verdict (an incomplete window, too few values, a shutdown).
    pub reason: Option<String>,
    /// The statistics that vote, and how many of them said drift.
    pub voters: Vec<StatisticKind>,
    pub votes_for: usize,
    /// Votes needed (the configured `min_votes`, capped at the voters).
    pub votes_needed: usize,
}

/// The window's family of tests: every p-value of every judged column, corrected together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub correction: Correction,
    /// The family-wise level before correction.
    pub alpha: f64,
    /// Tests in the family.
    pub tests: usize,
}

/// One column over one closed window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Flattened column name.
    pub column: String,
    /// Input or output.
    pub role: ColumnRole,
    /// Numeric or categorical.
    pub kind: ColumnKind,
    /// The profile's id.
    pub reference_id: String,
    /// The instance that produced the report.
    pub instance: String,
    /// Partitions with events in the window, sorted.
    pub partitions: Vec<i32>,
    /// Which events.
    pub window: WindowBounds,
    /// Missing events over all events of the window.
    pub missing_rate: f64,
    /// Population stability index over the profile's bins (unless skipped).
    pub psi: Option<StatVerdict>,
    /// KL(reference ‖ current), renormalised (unless skipped).
    pub kl: Option<StatVerdict>,
    /// Numeric columns only.
    pub ks: Option<KsReport>,
    /// Categorical columns only.
    pub chi_square: Option<ChiSquareReport>,
    /// The window's family of tests.
    pub family: Family,
    /// Raw counts.
    pub bins: BinCounts,
    /// The column's verdict.
    pub verdict: Verdict,
    /// The serving model of the window's events; absent without a model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelRef>,
}

/// Which model scored a window's events: what the predictions name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

impl DriftReport {
    /// The column drifted in this window (false when there is no verdict).
    pub fn drifted(&self) -> bool {
        self.verdict.drift == Some(true)
    }
}

/// Alert state after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The column's verdict became drift.
    Open,
    /// `resolve_after` clean verdicts in a row.
    Resolved,
}

/// How far past its threshold the column is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Past the threshold.
    Warning,
    /// A voting statistic above twice its threshold, or a voting p-value below a tenth of it.
    Critical,
}

/// One statistic in an alert: its value, its threshold and its verdict in the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertStatistic {
    /// PSI, KL, KS's D or the chi-square statistic.
    pub value: f64,
    /// KS and chi-square.
    pub pvalue: Option<f64>,
    /// The threshold of `pvalue` (tests) or of `value` (PSI, KL).
    pub threshold: f64,
    pub drift: bool,
    pub votes: bool,
}

/// One alert transition of a column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// [`REPORT_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Opened or resolved.
    pub state: AlertState,
    /// From the window that caused the transition.
    pub severity: Severity,
    /// Flattened column name.
    pub column: String,
    /// Input or output.
    pub role: ColumnRole,
    /// Every statistic of the column in that window, by name.
    pub statistics: BTreeMap<StatisticKind, AlertStatistic>,
    /// The verdict that caused the transition.
    pub verdict: Verdict,
    /// The window that caused the transition.
    pub window: WindowBounds,
    /// The profile's id.
    pub reference_id: String,
    /// The instance.
    pub instance: String,
}

/// What one call to the monitor produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriftOutcome {
    /// One per column per closed window, oldest window first.
    pub reports: Vec<DriftReport>,
    /// Alert transitions, in the order of the windows that caused them.
    pub alerts: Vec<AlertEvent>,
}
