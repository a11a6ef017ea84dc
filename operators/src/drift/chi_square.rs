//! Chi-square goodness-of-fit of current category counts against the
//! reference proportions.
//!
//! Guarantees, including the zero-expected rule: expected counts are
//! `n_current · reference_count / n_reference`. A category the reference
//! never produced has expected count 0:
//! - with no current observations either, it is ignored (no term, no degree
//!   of freedom);
//! - with current observations, the statistic is `+inf` and the p-value 0
//!   (the reference says that category is impossible), and
//!   `unexpected_categories` / `unexpected_count` say how many and how often.
//!
//! Degrees of freedom are the categories with positive expected count minus
//! one; with a single such category the test has no power and the p-value is
//! 1 unless an unexpected category was seen.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::error::DriftError;

/// Result of a chi-square test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChiSquareResult {
    /// `Σ (observed − expected)^2 / expected`, or `+inf` (see module docs).
    pub statistic: f64,
    /// Degrees of freedom.
    pub dof: u64,
    /// Upper-tail probability of `statistic` under chi-square(`dof`).
    pub pvalue: f64,
    /// Categories with zero reference count but current observations.
    pub unexpected_categories: usize,
    /// Current observations in those categories.
    pub unexpected_count: u64,
}

/// Tests `current_counts` against the proportions of `reference_counts`
/// (same categories, same order).
pub fn chi_square_vs_reference(
    reference_counts: &[u64],
    current_counts: &[u64],
) -> Result<ChiSquareResult, DriftError> {
    if reference_counts.len() != current_counts.len() {
        return Err(DriftError::BinMismatch {
            expected: reference_counts.len(),
            found: current_counts.len(),
        });
    }
    let n_ref: u64 = reference_counts.iter().sum();
    let n_cur: u64 = current_counts.iter().sum();
    if n_ref == 0 {
        return Err(DriftError::EmptySample { which: "reference" });
    }
    if n_cur == 0 {
        return Err(DriftError::EmptySample { which: "current" });
    }
    let scale = n_cur as f64 / n_ref as f64;
    let (mut statistic, mut terms) = (0.0f64, 0u64);
    let (mut unexpected_categories, mut unexpected_count) = (0usize, 0u64);
    for (&r, &c) in reference_counts.iter().zip(current_counts) {
        if r == 0 {
            if c > 0 {
                unexpected_categories += 1;
                unexpected_count += c;
            }
            continue;
        }
        let expected = r as f64 * scale;
        let diff = c as f64 - expected;
        statistic += diff * diff / expected;
        terms += 1;
    }
    let dof = terms.saturating_sub(1);
    if unexpected_categories > 0 {
        return Ok(ChiSquareResult {
            statistic: f64::INFINITY,
            dof,
            pvalue: 0.0,
            unexpected_categories,
            unexpected_count,
        });
    }
    let pvalue = if dof == 0 {
        1.0
    } else {
        let dist = ChiSquared::new(dof as f64).map_err(|e| DriftError::InvalidParameter {
            name: "dof",
            reason: e.to_string(),
        })?;
        dist.sf(statistic).clamp(0.0, 1.0)
    };
    Ok(ChiSquareResult {
        statistic,
        dof,
        pvalue,
        unexpected_categories,
        unexpected_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_statistic() {
        // Expected 25/25/50 for 100 current values; observed 30/20/50:
        // 25/25 + 25/25 + 0 = 2, dof 2, sf = exp(-1) for chi-square(2).
        let res = chi_square_vs_reference(&[1, 1, 2], &[30, 20, 50]).unwrap();
        assert!((res.statistic - 2.0).abs() < 1e-12);
        assert_eq!(res.dof, 2);
        assert!((res.pvalue - (-1.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn zero_expected_categories() {
        let res = chi_square_vs_reference(&[5, 5, 0], &[4, 6, 0]).unwrap();
        assert_eq!(res.dof, 1);
        assert!(res.pvalue > 0.5);
        let res = chi_square_vs_reference(&[5, 5, 0], &[4, 6, 3]).unwrap();
        assert_eq!((res.statistic, res.pvalue), (f64::INFINITY, 0.0));
        assert_eq!((res.unexpected_categories, res.unexpected_count), (1, 3));
        let res = chi_square_vs_reference(&[5, 0], &[7, 0]).unwrap();
        assert_eq!((res.dof, res.pvalue), (0, 1.0));
        assert!(chi_square_vs_reference(&[0, 0], &[1, 1]).is_err());
        assert!(chi_square_vs_reference(&[1], &[1, 1]).is_err());
    }
}
