//! Chi-square test of a window's category counts against the reference's, as a two-sample
//! test: `scipy.stats.chi2_contingency` with its defaults on the 2 × k table whose rows are the
//! reference counts and the window counts.
//!
//! Why two-sample: the reference's proportions are themselves estimated from a finite sample.
//! A goodness-of-fit test that takes them as exact gives p-values that are too small (one
//! unseen category in a window of 1 000 made the old test's p exactly 0, an "infinite"
//! statistic and a critical page). In the contingency table an unseen category is just a column
//! with a reference count of 0, and everything stays finite.
//!
//! Guarantees:
//! - Categories absent from both rows are dropped first (scipy refuses a zero marginal).
//! - Expected counts are `row total × column total / n`; the statistic is Pearson's
//!   `Σ (observed − expected)² / expected` over both rows; with one degree of freedom (two
//!   categories) Yates' correction moves each observed count half a unit towards its expected
//!   count (at most the whole difference), as scipy's `correction=True` does.
//! - Degrees of freedom: categories left minus one. With a single category left there is
//!   nothing to test: statistic 0, p-value 1, as scipy returns.
//! - Cramér's V is scipy's `association(table, method="cramer")`: `sqrt(χ² / n)` from the
//!   uncorrected statistic (a 2-row table has `min(r, c) − 1 = 1`); `None` below two categories.
//! - Every number is finite: nothing a JSON writer has to turn into a string.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::error::DriftError;

/// Result of a chi-square test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChiSquareResult {
    /// Pearson's statistic (Yates-corrected when `dof` is 1).
    pub statistic: f64,
    /// Degrees of freedom: categories present in either row, minus one.
    pub dof: u64,
    /// Upper-tail probability of `statistic` under chi-square(`dof`).
    pub pvalue: f64,
    /// Cramér's V (effect size, 0 to 1); `None` with fewer than two categories.
    pub cramers_v: Option<f64>,
    /// Categories with a reference count of 0 that the window has.
    pub unexpected_categories: usize,
    /// The window's events in those categories.
    pub unexpected_count: u64,
}

/// Tests whether `current_counts` and `reference_counts` (same categories, same order) come
/// from the same distribution; see the module docs.
pub fn chi2_contingency(
    reference_counts: &[u64],
    current_counts: &[u64],
) -> Result<ChiSquareResult, DriftError> {
    if reference_counts.len() != current_counts.len() {
        return Err(DriftError::BinMismatch {
            expected: reference_counts.len(),
            found: current_counts.len(),
        });
    }
    let columns: Vec<(f64, f64)> = reference_counts
        .iter()
        .zip(current_counts)
        .filter(|(&r, &c)| r + c > 0)
        .map(|(&r, &c)| (r as f64, c as f64))
        .collect();
    let n_ref: f64 = columns.iter().map(|c| c.0).sum();
    let n_cur: f64 = columns.iter().map(|c| c.1).sum();
    if n_ref == 0.0 {
        return Err(DriftError::EmptySample { which: "reference" });
    }
    if n_cur == 0.0 {
        return Err(DriftError::EmptySample { which: "current" });
    }
    let (unexpected_categories, unexpected_count) = reference_counts
        .iter()
        .zip(current_counts)
        .filter(|(&r, &c)| r == 0 && c > 0)
        .fold((0, 0), |(k, n), (_, &c)| (k + 1, n + c));
    let dof = columns.len() as u64 - 1;
    if dof == 0 {
        return Ok(ChiSquareResult {
            statistic: 0.0,
            dof,
            pvalue: 1.0,
            cramers_v: None,
            unexpected_categories,
            unexpected_count,
        });
    }
    let n = n_ref + n_cur;
    // scipy sums the terms row by row: the reference row first.
    let pearson = |yates: bool| -> f64 {
        let mut sum = 0.0;
        for (row_total, pick) in [(n_ref, 0usize), (n_cur, 1usize)] {
            for &(r, c) in &columns {
                let observed = if pick == 0 { r } else { c };
                let expected = row_total * (r + c) / n;
                let mut diff = observed - expected;
                if yates {
                    diff = diff.signum() * (diff.abs() - diff.abs().min(0.5));
                }
                sum += diff * diff / expected;
            }
        }
        sum
    };
    let uncorrected = pearson(false);
    let statistic = if dof == 1 { pearson(true) } else { uncorrected };
    let dist = ChiSquared::new(dof as f64).map_err(|e| DriftError::InvalidParameter {
        name: "dof",
        reason: e.to_string(),
    })?;
    Ok(ChiSquareResult {
        statistic,
        dof,
        pvalue: dist.sf(statistic).clamp(0.0, 1.0),
        cramers_v: Some((uncorrected / n).sqrt()),
        unexpected_categories,
        unexpected_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tests/fixtures/chi2_contingency.json`, written by `scripts/make_chi2_cases.py` from
    /// scipy 1.17: hand cases, unseen, vanished and absent categories, and 40 random tables.
    #[test]
    fn equals_scipy_chi2_contingency_on_every_case() {
        let text = include_str!("../../../tests/fixtures/chi2_contingency.json");
        let fixture: serde_json::Value = serde_json::from_str(text).unwrap();
        let cases = fixture["cases"].as_array().unwrap();
        assert!(cases.len() >= 50);
        let counts = |v: &serde_json::Value| -> Vec<u64> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect()
        };
        for case in cases {
            let name = case["name"].as_str().unwrap();
            let got = chi2_contingency(&counts(&case["reference"]), &counts(&case["current"]))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let want_stat = case["statistic"].as_f64().unwrap();
            let want_p = case["pvalue"].as_f64().unwrap();
            assert_eq!(got.dof, case["dof"].as_u64().unwrap(), "{name}: dof");
            assert!(
                (got.statistic - want_stat).abs() <= 1e-9 * want_stat.abs().max(1.0),
                "{name}: statistic {} vs scipy {want_stat}",
                got.statistic
            );
            assert!(
                (got.pvalue - want_p).abs() <= 1e-9,
                "{name}: p {} vs scipy {want_p}",
                got.pvalue
            );
            match case["cramers_v"].as_f64() {
                Some(v) => {
                    let got_v = got.cramers_v.expect("V");
                    assert!((got_v - v).abs() <= 1e-9, "{name}: V {got_v} vs scipy {v}");
                }
                None => assert_eq!(got.cramers_v, None, "{name}: V"),
            }
            assert!(
                got.statistic.is_finite() && got.pvalue.is_finite(),
                "{name}"
            );
        }
    }

    #[test]
    fn an_unseen_category_is_a_column_not_an_infinity() {
        let res = chi2_contingency(&[500, 300, 200, 0], &[480, 310, 209, 1]).unwrap();
        assert!(res.statistic.is_finite());
        assert!(
            res.pvalue > 0.5,
            "one event in 1 000 is no evidence: {res:?}"
        );
        assert_eq!((res.unexpected_categories, res.unexpected_count), (1, 1));
        assert!(chi2_contingency(&[0, 0], &[1, 1]).is_err());
        assert!(chi2_contingency(&[1, 1], &[0, 0]).is_err());
        assert!(chi2_contingency(&[1], &[1, 1]).is_err());
    }
}
