//! Offline comparison of a reference and a current sample: the computation
//! behind `driftline drift --reference FILE --current FILE`.
//!
//! Guarantees: a sample is numeric when every value (trimmed) parses as a
//! finite `f64`, otherwise categorical; both samples must then be numeric for
//! a numeric comparison. Numeric samples get scipy's `ks_2samp` plus PSI and
//! KL over the chosen binning; categorical samples get PSI and KL over one
//! bin per category (no KS). Drift verdicts use evidently's default rule:
//! `score >= threshold`, thresholds 0.1 unless configured.

use super::binning::{CategoricalBinning, QuantileBinning};
use super::divergence::{divergences, ZeroFill};
use super::error::DriftError;
use super::evidently::EvidentlyBinning;
use super::ks::{ks_2samp, KsMethod, KsMode};
use super::monitor::{BinCounts, BinLabels};

/// Which bins PSI and KL are computed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinningChoice {
    /// Reference quantile cuts, zeros filled with 1e-4 (streaming-compatible).
    #[default]
    Q10,
    /// evidently's default bins and zero fill.
    Evidently,
}

impl std::str::FromStr for BinningChoice {
    type Err = DriftError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "q10" => Ok(Self::Q10),
            "evidently" => Ok(Self::Evidently),
            other => Err(DriftError::InvalidParameter {
                name: "binning",
                reason: format!("expected `q10` or `evidently`, got `{other}`"),
            }),
        }
    }
}

/// Whether the samples were compared as numbers or as categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampleKind {
    /// Every value parsed as a finite number.
    Numeric,
    /// Raw strings, one bin per distinct value.
    Categorical,
}

/// Knobs of a comparison; `Default` is evidently's offline defaults with q10.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompareParams {
    /// Bins for PSI and KL.
    pub binning: BinningChoice,
    /// Number of q10 bins (evidently's binning ignores it, as evidently does).
    pub bins: usize,
    /// PSI drift threshold (drift when `psi >= threshold`).
    pub psi_threshold: f64,
    /// KL drift threshold (drift when `kl >= threshold`).
    pub kl_threshold: f64,
    /// KS p-value method.
    pub ks_mode: KsMode,
}

impl Default for CompareParams {
    fn default() -> Self {
        Self {
            binning: BinningChoice::Q10,
            bins: QuantileBinning::DEFAULT_BINS,
            psi_threshold: 0.1,
            kl_threshold: 0.1,
            ks_mode: KsMode::Auto,
        }
    }
}

/// KS part of a comparison.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KsSummary {
    /// `D` as scipy reports it.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
    /// Exact or asymptotic.
    pub method: KsMethod,
}

/// A score with its threshold and verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreVerdict {
    /// The score.
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// `value >= threshold`.
    pub drift: bool,
}

impl ScoreVerdict {
    fn new(value: f64, threshold: f64) -> Self {
        Self {
            value,
            threshold,
            drift: value >= threshold,
        }
    }
}

/// Result of comparing two samples.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriftComparison {
    /// Values in the reference sample.
    pub n_reference: usize,
    /// Values in the current sample.
    pub n_current: usize,
    /// Numeric or categorical.
    pub kind: SampleKind,
    /// Bins used for PSI and KL.
    pub binning: BinningChoice,
    /// KS test; `None` for categorical samples.
    pub ks: Option<KsSummary>,
    /// Population stability index.
    pub psi: ScoreVerdict,
    /// KL(reference ‖ current), renormalised as scipy's `entropy`.
    pub kl: ScoreVerdict,
    /// The bins PSI and KL were computed over, with both samples' counts (for the HTML page).
    #[serde(default)]
    pub bins: Option<BinCounts>,
}

/// Parses every value as a finite number, or `None` if any does not parse.
pub fn parse_numeric<S: AsRef<str>>(values: &[S]) -> Option<Vec<f64>> {
    values
        .iter()
        .map(|s| {
            s.as_ref()
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
        })
        .collect()
}

/// Compares two samples given as text, deciding numeric vs categorical.
pub fn compare_text<S: AsRef<str>>(
    reference: &[S],
    current: &[S],
    params: &CompareParams,
) -> Result<DriftComparison, DriftError> {
    match (parse_numeric(reference), parse_numeric(current)) {
        (Some(r), Some(c)) => compare_numeric(&r, &c, params),
        _ => compare_categorical(reference, current, params),
    }
}

/// Compares two numeric samples (finite values only).
pub fn compare_numeric(
    reference: &[f64],
    current: &[f64],
    params: &CompareParams,
) -> Result<DriftComparison, DriftError> {
    check_non_empty(reference.len(), current.len())?;
    check_thresholds(params)?;
    let ks = ks_2samp(reference, current, params.ks_mode)?;
    let (ref_counts, cur_counts, fill, labels) = match params.binning {
        BinningChoice::Q10 => {
            let binning = QuantileBinning::from_reference(reference, params.bins)?;
            (
                binning.counts(reference),
                binning.counts(current),
                ZeroFill::Q10,
                BinLabels::Cuts(binning.cuts().to_vec()),
            )
        }
        BinningChoice::Evidently => {
            let binning = EvidentlyBinning::for_numeric(reference, current)?;
            let counts = (binning.counts(reference), binning.counts(current));
            let labels = BinLabels::Categories(binning.labels());
            (counts.0, counts.1, ZeroFill::Evidently, labels)
        }
    };
    let div = divergences(&ref_counts, &cur_counts, fill)?;
    Ok(DriftComparison {
        n_reference: reference.len(),
        n_current: current.len(),
        kind: SampleKind::Numeric,
        binning: params.binning,
        ks: Some(KsSummary {
            statistic: ks.statistic,
            pvalue: ks.pvalue,
            method: ks.method,
        }),
        psi: ScoreVerdict::new(div.psi, params.psi_threshold),
        kl: ScoreVerdict::new(div.kl_ref_cur, params.kl_threshold),
        bins: Some(BinCounts {
            edges_or_categories: labels,
            reference: ref_counts,
            current: cur_counts,
            missing: 0,
        }),
    })
}

/// Compares two categorical samples: one bin per category of `r ∪ c`.
pub fn compare_categorical<S: AsRef<str>>(
    reference: &[S],
    current: &[S],
    params: &CompareParams,
) -> Result<DriftComparison, DriftError> {
    check_non_empty(reference.len(), current.len())?;
    check_thresholds(params)?;
    let binning = CategoricalBinning::from_samples(reference, current);
    let fill = match params.binning {
        BinningChoice::Q10 => ZeroFill::Q10,
        BinningChoice::Evidently => ZeroFill::Evidently,
    };
    let (ref_counts, cur_counts) = (binning.counts(reference), binning.counts(current));
    let div = divergences(&ref_counts, &cur_counts, fill)?;
    Ok(DriftComparison {
        n_reference: reference.len(),
        n_current: current.len(),
        kind: SampleKind::Categorical,
        binning: params.binning,
        ks: None,
        psi: ScoreVerdict::new(div.psi, params.psi_threshold),
        kl: ScoreVerdict::new(div.kl_ref_cur, params.kl_threshold),
        bins: Some(BinCounts {
            edges_or_categories: BinLabels::Categories(binning.categories().to_vec()),
            reference: ref_counts,
            current: cur_counts,
            missing: 0,
        }),
    })
}

fn check_non_empty(n_reference: usize, n_current: usize) -> Result<(), DriftError> {
    if n_reference == 0 {
        return Err(DriftError::EmptySample { which: "reference" });
    }
    if n_current == 0 {
        return Err(DriftError::EmptySample { which: "current" });
    }
    Ok(())
}

fn check_thresholds(params: &CompareParams) -> Result<(), DriftError> {
    for (name, value) in [
        ("psi_threshold", params.psi_threshold),
        ("kl_threshold", params.kl_threshold),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(DriftError::InvalidParameter {
                name,
                reason: format!("must be a finite, non-negative number, got {value}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_text_is_compared_as_numbers() {
        let r = ["1", " 2.5", "3e0", "4"];
        let c = ["2", "3", "4", "5"];
        let out = compare_text(&r, &c, &CompareParams::default()).unwrap();
        assert_eq!(out.kind, SampleKind::Numeric);
        assert!(out.ks.is_some());
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(json["kind"], "numeric");
        assert_eq!(json["binning"], "q10");
        assert_eq!(json["ks"]["method"], "exact");
    }

    #[test]
    fn one_non_number_makes_both_categorical() {
        let r = ["1", "2", "x"];
        let c = ["1", "2", "2"];
        let out = compare_text(&r, &c, &CompareParams::default()).unwrap();
        assert_eq!(out.kind, SampleKind::Categorical);
        assert_eq!(out.ks, None);
        assert!(compare_text::<&str>(&[], &c, &CompareParams::default()).is_err());
        assert_eq!(
            "evidently".parse::<BinningChoice>(),
            Ok(BinningChoice::Evidently)
        );
        assert!("q20".parse::<BinningChoice>().is_err());
    }
}
