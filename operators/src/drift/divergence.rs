//! PSI and KL divergence from two count vectors over the same bins.
//!
//! Guarantees: the numbers evidently 0.7 and the "q10" definition produce,
//! given the bins: proportions are `count / total`, zero proportions are
//! replaced by the [`ZeroFill`] rule (never renormalised for PSI), and KL is
//! scipy's `entropy(p, q)`, which renormalises both vectors first.

use super::error::DriftError;

/// How a zero proportion is replaced before taking logarithms.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ZeroFill {
    /// Exact zeros become this constant ("q10": 1e-4).
    Constant {
        /// The replacement proportion.
        epsilon: f64,
    },
    /// evidently's rule, per vector: with `m` its smallest non-zero
    /// proportion, zeros become `m / 1e6` if `m <= 1e-4`, else `1e-4`.
    Evidently,
}

impl ZeroFill {
    /// The q10 rule: zeros become 1e-4.
    pub const Q10: ZeroFill = ZeroFill::Constant { epsilon: 1e-4 };

    /// The value zeros of `proportions` become; `None` if there are no zeros
    /// (or, for [`ZeroFill::Evidently`], nothing non-zero to scale from).
    pub fn fill_value(self, proportions: &[f64]) -> Option<f64> {
        if !proportions.contains(&0.0) {
            return None;
        }
        match self {
            Self::Constant { epsilon } => Some(epsilon),
            Self::Evidently => {
                let m = proportions
                    .iter()
                    .copied()
                    .filter(|&p| p != 0.0)
                    .fold(f64::INFINITY, f64::min);
                if !m.is_finite() {
                    None
                } else if m <= 1e-4 {
                    Some(m / 1e6)
                } else {
                    Some(1e-4)
                }
            }
        }
    }
}

/// Proportions of one side after the zero fill.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FilledProportions {
    /// `count / total`, zeros replaced.
    pub values: Vec<f64>,
    /// The value zeros were replaced by; `None` when there were none.
    pub fill: Option<f64>,
}

/// Turns counts into filled proportions; the total is the sum of the counts.
pub fn filled_proportions(counts: &[u64], rule: ZeroFill) -> Result<FilledProportions, DriftError> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return Err(DriftError::EmptySample { which: "counts" });
    }
    let mut values: Vec<f64> = counts.iter().map(|&c| c as f64 / total as f64).collect();
    let fill = rule.fill_value(&values);
    if let Some(fill) = fill {
        values
            .iter_mut()
            .filter(|p| **p == 0.0)
            .for_each(|p| *p = fill);
    }
    Ok(FilledProportions { values, fill })
}

/// `Σ (r_i − c_i)·ln(r_i / c_i)` over filled proportions.
pub fn psi(reference: &[f64], current: &[f64]) -> f64 {
    reference
        .iter()
        .zip(current)
        .map(|(&r, &c)| (r - c) * (r / c).ln())
        .sum()
}

/// `Σ p_i ln(p_i / q_i)` as given, without renormalising.
pub fn kl_unnormalized(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(&pi, &qi)| rel_entr(pi, qi)).sum()
}

/// scipy's `entropy(p, q)`: both vectors renormalised to sum 1 first.
pub fn kl_normalized(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    p.iter()
        .zip(q)
        .map(|(&pi, &qi)| rel_entr(pi / sp, qi / sq))
        .sum()
}

/// scipy's `rel_entr`: 0 where `x == 0`, infinite where only `y` is 0.
fn rel_entr(x: f64, y: f64) -> f64 {
    if x > 0.0 && y > 0.0 {
        x * (x / y).ln()
    } else if x == 0.0 && y >= 0.0 {
        0.0
    } else {
        f64::INFINITY
    }
}

/// PSI and the KL variants for one pair of count vectors.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Divergences {
    /// Filled reference proportions.
    pub reference: FilledProportions,
    /// Filled current proportions.
    pub current: FilledProportions,
    /// Population stability index.
    pub psi: f64,
    /// KL(reference ‖ current), renormalised (scipy `entropy(r, c)`).
    pub kl_ref_cur: f64,
    /// KL(reference ‖ current) on the filled proportions as they are.
    pub kl_ref_cur_unnormalized: f64,
    /// KL(current ‖ reference), renormalised.
    pub kl_cur_ref: f64,
}

/// PSI and KL of two count vectors over the same bins.
pub fn divergences(
    reference_counts: &[u64],
    current_counts: &[u64],
    rule: ZeroFill,
) -> Result<Divergences, DriftError> {
    if reference_counts.len() != current_counts.len() {
        return Err(DriftError::BinMismatch {
            expected: reference_counts.len(),
            found: current_counts.len(),
        });
    }
    let reference = filled_proportions(reference_counts, rule)
        .map_err(|_| DriftError::EmptySample { which: "reference" })?;
    let current = filled_proportions(current_counts, rule)
        .map_err(|_| DriftError::EmptySample { which: "current" })?;
    let (r, c) = (&reference.values, &current.values);
    Ok(Divergences {
        psi: psi(r, c),
        kl_ref_cur: kl_normalized(r, c),
        kl_ref_cur_unnormalized: kl_unnormalized(r, c),
        kl_cur_ref: kl_normalized(c, r),
        reference,
        current,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn evidently_fill_scales_tiny_proportions() {
        assert_eq!(ZeroFill::Evidently.fill_value(&[0.5, 0.5]), None);
        assert_eq!(ZeroFill::Evidently.fill_value(&[0.0, 0.3, 0.7]), Some(1e-4));
        let fill = ZeroFill::Evidently.fill_value(&[0.0, 5e-5, 1.0 - 5e-5]);
        assert_eq!(fill, Some(5e-5 / 1e6));
        assert_eq!(ZeroFill::Q10.fill_value(&[0.0, 1.0]), Some(1e-4));
    }

    #[test]
    fn identical_counts_have_zero_divergence() {
        let d = divergences(&[3, 0, 7], &[3, 0, 7], ZeroFill::Q10).unwrap();
        assert_eq!(d.psi, 0.0);
        assert!(d.kl_ref_cur.abs() < 1e-15);
        assert!(divergences(&[1], &[1, 2], ZeroFill::Q10).is_err());
        assert!(divergences(&[0, 0], &[1, 2], ZeroFill::Q10).is_err());
    }

    proptest! {
        #[test]
        fn psi_and_kl_are_non_negative(
            counts in prop::collection::vec((0u64..500, 0u64..500), 1..30),
            evidently in any::<bool>(),
        ) {
            let (r, c): (Vec<u64>, Vec<u64>) = counts.into_iter().unzip();
            prop_assume!(r.iter().sum::<u64>() > 0 && c.iter().sum::<u64>() > 0);
            let rule = if evidently { ZeroFill::Evidently } else { ZeroFill::Q10 };
            let d = divergences(&r, &c, rule).unwrap();
            prop_assert!(d.psi >= -1e-12, "psi {}", d.psi);
            prop_assert!(d.kl_ref_cur >= -1e-12, "kl {}", d.kl_ref_cur);
            prop_assert!(d.kl_cur_ref >= -1e-12, "kl {}", d.kl_cur_ref);
        }
    }
}
