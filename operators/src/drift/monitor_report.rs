//! What the monitor emits: one [`DriftReport`] per column per closed window,
//! and [`AlertEvent`]s when a column starts or stops drifting.
//!
//! Guarantees: every type round-trips through JSON (a chi-square statistic of
//! `+inf`, which JSON cannot hold, is written as the string `"inf"`), and a
//! report carries its raw bin counts, so consumers can merge reports of the
//! same window across partitions and instances by adding counts.

use serde::{Deserialize, Serialize};

use crate::drift::alert::StatisticKind;
use crate::drift::profile::{ColumnKind, ColumnRole};

/// Version of the report format.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// Which events a window covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowBounds {
    /// Event-time start (time windows).
    pub start_ms: Option<i64>,
    /// Event-time end, exclusive (time windows).
    pub end_ms: Option<i64>,
    /// First pane of the window.
    pub first_pane: u64,
    /// Last pane of the window.
    pub last_pane: u64,
    /// Events in the window, missing ones included.
    pub events: u64,
}

/// A score with its threshold and verdict (`drift` when `value >= threshold`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatVerdict {
    /// The score.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// Drifted (always false below `min_samples`).
    pub drift: bool,
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
}

/// KS of the window against the reference sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KsReport {
    /// D (binned: its lower bound).
    pub statistic: f64,
    /// Two-sided p-value; `None` when binned.
    pub pvalue: Option<f64>,
    /// Where the result came from.
    pub method: KsReportMethod,
    /// Binned: D is at most `statistic + error_bound`.
    pub error_bound: Option<f64>,
    /// Significance level (after Bonferroni, if on).
    pub threshold: f64,
    /// `pvalue <= threshold`; binned: the asymptotic p-value of the lower
    /// bound is, so the verdict errs towards "no drift".
    pub drift: bool,
}

/// Chi-square goodness of fit against the reference proportions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChiSquareReport {
    /// The statistic; `+inf` when a category unseen in the reference appears.
    #[serde(with = "non_finite")]
    pub statistic: f64,
    /// Degrees of freedom.
    pub dof: u64,
    /// Upper-tail p-value.
    pub pvalue: f64,
    /// `pvalue <= threshold` (the `ks_pvalue` threshold, after Bonferroni).
    pub drift: bool,
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
    /// Population stability index over the profile's bins.
    pub psi: StatVerdict,
    /// KL(reference ‖ current), renormalised.
    pub kl: StatVerdict,
    /// Numeric columns only.
    pub ks: Option<KsReport>,
    /// Categorical columns only.
    pub chi_square: Option<ChiSquareReport>,
    /// Raw counts.
    pub bins: BinCounts,
    /// Any statistic drifted.
    pub drift: bool,
}

/// Alert state after a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The statistic crossed its threshold.
    Open,
    /// `resolve_after` clean windows in a row.
    Resolved,
}

/// How far past its threshold a statistic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Past the threshold.
    Warning,
    /// Above twice the threshold, or a p-value below a tenth of it.
    Critical,
}

/// One alert transition for a (column, statistic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Opened or resolved.
    pub state: AlertState,
    /// From the window that caused the transition.
    pub severity: Severity,
    /// Flattened column name.
    pub column: String,
    /// Which statistic.
    pub statistic: StatisticKind,
    /// Its value in that window (a p-value for KS and chi-square).
    pub value: f64,
    /// Its threshold.
    pub threshold: f64,
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

/// `f64` that may be infinite: JSON numbers when finite, else `"inf"`,
/// `"-inf"` or `"nan"` (serde_json would write `null` and fail to read it).
mod non_finite {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *x {
            x if x.is_finite() => s.serialize_f64(x),
            x if x.is_nan() => s.serialize_str("nan"),
            x if x > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Number(x) => Ok(x),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "nan" => Ok(f64::NAN),
                other => Err(serde::de::Error::custom(format!("not a number: {other}"))),
            },
        }
    }
}
