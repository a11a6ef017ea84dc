//! Two-sample Kolmogorov–Smirnov test, two-sided, as scipy 1.17
//! `ks_2samp(r, c, method=...)` computes it, plus a binned variant for
//! streams.
//!
//! Guarantees:
//! - `D = max_x |F_r(x) − F_c(x)|` with right-continuous ECDFs (ties counted
//!   before differencing), also as the exact rational `h / lcm(n1, n2)`.
//! - `auto` takes the exact p-value when `max(n1, n2) <= 10 000`, else the
//!   asymptotic one, `kstwo.sf(D, round(n1 n2 / (n1 + n2)))`.
//! - Exact p-values: `n1 == n2` uses scipy's closed alternating form; other
//!   sizes the first-exit probability mass of a uniformly random lattice
//!   path, a sum of positive terms that keeps full relative precision for
//!   p-values down to ~1e-300. Ties in the data do not enter the p-value.
//! - Like scipy, an exact result outside [0, 1] falls back to `asymp`.

use super::error::DriftError;
use super::kstwo::kstwo_sf;

/// scipy's `MAX_AUTO_N`.
pub const MAX_AUTO_N: usize = 10_000;

/// Which p-value computation to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMode {
    /// Exact up to [`MAX_AUTO_N`] per sample, asymptotic above.
    #[default]
    Auto,
    /// Exact (falls back to asymptotic only where scipy does).
    Exact,
    /// The asymptotic `kstwo` distribution.
    Asymp,
}

/// Which computation produced a p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KsMethod {
    /// Exact lattice-path probability.
    Exact,
    /// `kstwo.sf(D, round(n1 n2 / (n1 + n2)))`.
    Asymp,
}

/// Result of a two-sample test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KsResult {
    /// `D` as scipy reports it: `h / lcm` for an exact p-value, the
    /// floating-point ECDF difference for an asymptotic one.
    pub statistic: f64,
    /// Two-sided p-value.
    pub pvalue: f64,
    /// How `pvalue` was computed.
    pub method: KsMethod,
    /// Numerator of `D = h / lcm`.
    pub h: u64,
    /// `lcm(n1, n2)`.
    pub lcm: u64,
}

/// `D` of two sorted samples, exactly and as scipy's floats give it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KsStatistic {
    /// Numerator of `D = h / lcm`.
    pub h: u64,
    /// `lcm(n1, n2)`.
    pub lcm: u64,
    /// `max |i/n1 − j/n2|` in floating point, as `ks_2samp` computes it.
    pub float_d: f64,
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Below this `lcm(n1, n2)`, two different exact `D`s differ by `1/lcm`, more than the error of
/// the floating-point `|i/n1 − j/n2|` (three roundings of values ≤ 1, under 4e-16) can bridge.
/// So the largest floating-point difference is found among the steps of the largest exact one,
/// and [`ks_statistic_sorted`] divides only there.
const FLOAT_AT_MAXIMA_LCM_LIMIT: u64 = 1 << 50;

/// `D` of two ascending, NaN-free, non-empty samples.
///
/// The floating-point difference is computed only where the exact one reaches its running
/// maximum, not at every step: two divisions a step were a good part of this walk, which perf
/// put at a quarter of the drift thread (the rest is branches the data decide).
pub fn ks_statistic_sorted(r: &[f64], c: &[f64]) -> KsStatistic {
    let lcm = r.len() as u64 / gcd(r.len() as u64, c.len() as u64) * c.len() as u64;
    ks_statistic_walk(r, c, lcm >= FLOAT_AT_MAXIMA_LCM_LIMIT)
}

/// The walk behind [`ks_statistic_sorted`]: at each distinct pooled value, advance past every
/// copy of it in both samples, then difference. With `divide_every_step` the floating-point
/// difference is taken at every step, as the definition says (and as it must be when `lcm` is
/// too large for the shortcut); the tests compare the two.
fn ks_statistic_walk(r: &[f64], c: &[f64], divide_every_step: bool) -> KsStatistic {
    let (n1, n2) = (r.len() as u64, c.len() as u64);
    let lcm = n1 / gcd(n1, n2) * n2;
    let (w1, w2) = ((lcm / n1) as i64, (lcm / n2) as i64);
    let (f1, f2) = (n1 as f64, n2 as f64);
    let (mut i, mut j) = (0usize, 0usize);
    let (mut h, mut float_d) = (0i64, 0.0f64);
    while i < r.len() || j < c.len() {
        let v = match (r.get(i), c.get(j)) {
            (Some(&a), Some(&b)) => a.min(b),
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        while i < r.len() && r[i] <= v {
            i += 1;
        }
        while j < c.len() && c[j] <= v {
            j += 1;
        }
        let step = (i as i64 * w1 - j as i64 * w2).abs();
        // Below the limit, a step under the running maximum cannot hold the largest float.
        if divide_every_step || step >= h {
            float_d = float_d.max((i as f64 / f1 - j as f64 / f2).abs());
        }
        h = h.max(step);
    }
    KsStatistic {
        h: h as u64,
        lcm,
        float_d,
    }
}

/// `ks_2samp(reference, current, method=mode)`, two-sided.
pub fn ks_2samp(reference: &[f64], current: &[f64], mode: KsMode) -> Result<KsResult, DriftError> {
    if reference.iter().any(|x| x.is_nan()) {
        return Err(DriftError::NonFinite { which: "reference" });
    }
    if current.iter().any(|x| x.is_nan()) {
        return Err(DriftError::NonFinite { which: "current" });
    }
    let mut r = reference.to_vec();
    r.sort_unstable_by(f64::total_cmp);
    ks_2samp_sorted(&r, &sorted(current), mode)
}

/// As [`ks_2samp`], for a reference that is usually sorted already (a profile's sample is
/// stored sorted): only `current` is sorted then, once per window instead of both samples.
/// An unsorted reference is sorted here as [`ks_2samp`] would.
pub fn ks_2samp_sorted_reference(
    reference: &[f64],
    current: &[f64],
    mode: KsMode,
) -> Result<KsResult, DriftError> {
    if !reference.is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
        return ks_2samp(reference, current, mode);
    }
    // Sorted by `total_cmp`, NaNs sit at the ends (negative ones first, positive ones last).
    if reference.first().is_some_and(|x| x.is_nan()) || reference.last().is_some_and(|x| x.is_nan())
    {
        return Err(DriftError::NonFinite { which: "reference" });
    }
    if current.iter().any(|x| x.is_nan()) {
        return Err(DriftError::NonFinite { which: "current" });
    }
    ks_2samp_sorted(reference, &sorted(current), mode)
}

/// Ascending by `total_cmp`. Unstable is the same as stable here: values that compare equal
/// under `total_cmp` are the same bits.
fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v
}

/// As [`ks_2samp`] for samples already sorted ascending and NaN-free.
pub fn ks_2samp_sorted(r: &[f64], c: &[f64], mode: KsMode) -> Result<KsResult, DriftError> {
    if r.is_empty() {
        return Err(DriftError::EmptySample { which: "reference" });
    }
    if c.is_empty() {
        return Err(DriftError::EmptySample { which: "current" });
    }
    let (n1, n2) = (r.len() as u64, c.len() as u64);
    Ok(ks_result(n1, n2, ks_statistic_sorted(r, c), mode))
}

/// The test's result from `D` of samples of `n1` and `n2` values (both non-empty): what
/// `ks_2samp` reports once it has `D`. Shared with KS from merged partials, which find `D`
/// without the raw values.
pub fn ks_result(n1: u64, n2: u64, stat: KsStatistic, mode: KsMode) -> KsResult {
    let g = gcd(n1, n2);
    let want_exact = match mode {
        KsMode::Auto => n1.max(n2) <= MAX_AUTO_N as u64,
        // scipy gives up on exact when lcm would overflow an int32.
        KsMode::Exact => ((n1 / g) as f64) < f64::from(i32::MAX) / ((n2 / g) as f64),
        KsMode::Asymp => false,
    };
    if want_exact {
        if let Some(pvalue) = exact_pvalue(n1, n2, stat.h) {
            return KsResult {
                statistic: stat.h as f64 / stat.lcm as f64,
                pvalue,
                method: KsMethod::Exact,
                h: stat.h,
                lcm: stat.lcm,
            };
        }
    }
    // After a failed exact attempt scipy has already replaced D by h/lcm.
    let d = if want_exact {
        stat.h as f64 / stat.lcm as f64
    } else {
        stat.float_d
    };
    KsResult {
        statistic: d,
        pvalue: asymp_pvalue(n1, n2, d),
        method: KsMethod::Asymp,
        h: stat.h,
        lcm: stat.lcm,
    }
}

/// `kstwo.sf(d, round(en))`, `en = n1 n2 / (n1 + n2)` rounded half to even.
/// Like scipy, NaN when that rounds to 0 (`n1 = n2 = 1`).
pub fn asymp_pvalue(n1: u64, n2: u64, d: f64) -> f64 {
    let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
    let en = m * n / (m + n);
    let n_eff = en.round_ties_even();
    kstwo_sf(n_eff as u64, d).0.clamp(0.0, 1.0)
}

/// Exact `P(D >= h / lcm)`; `None` where scipy's exact attempt fails.
pub fn exact_pvalue(n1: u64, n2: u64, h: u64) -> Option<f64> {
    if h == 0 {
        return Some(1.0);
    }
    let p = if n1 == n2 {
        prob_outside_square(n1, h)
    } else {
        // Positive terms only: a sum a rounding step above 1 is still 1.
        first_exit_probability(n1, n2, h).min(1.0)
    };
    (0.0..=1.0).contains(&p).then_some(p)
}

/// scipy's `_compute_prob_outside_square`: for `n1 == n2 == n`,
/// `2 Σ_k (−1)^(k−1) C(2n, n−kh) / C(2n, n)` in Horner form.
pub fn prob_outside_square(n: u64, h: u64) -> f64 {
    let (n, h) = (n as f64, h as f64);
    let mut p = 0.0f64;
    let mut k = (n / h).floor();
    while k >= 0.0 {
        let mut p1 = 1.0f64;
        let mut j = 0.0;
        while j < h {
            p1 = (n - k * h - j) * p1 / (n + k * h + j + 1.0);
            j += 1.0;
        }
        p = p1 * (1.0 - p);
        k -= 1.0;
    }
    2.0 * p
}

/// Probability that a uniformly random monotone path from (0,0) to (n1,n2)
/// touches a point with `|i·n2/g − j·n1/g| >= h`: the mass that first
/// exits the band, row by row. Memory O(n2), time O(n1 · band width).
pub fn first_exit_probability(n1: u64, n2: u64, h: u64) -> f64 {
    let g = gcd(n1, n2);
    let (a, b, h) = ((n2 / g) as i64, (n1 / g) as i64, h as i64);
    let (n1i, n2i) = (n1 as i64, n2 as i64);
    let total = n1 + n2;
    // Inside columns of row i: (i a − h)/b < j < (i a + h)/b, within [0, n2].
    let band = |i: i64| -> (i64, i64) {
        let lo = (i * a - h).div_euclid(b) + 1;
        let hi = (i * a + h - 1).div_euclid(b);
        (lo.max(0), hi.min(n2i))
    };
    let inv: Vec<f64> = (0..=total).map(|r| 1.0 / r.max(1) as f64).collect();
    let mut mass = vec![0.0f64; n2 as usize + 1];
    mass[0] = 1.0;
    let mut exited = 0.0f64;
    for i in 0..=n1i {
        let (lo, hi) = band(i);
        if lo > hi {
            break;
        }
        let (next_lo, next_hi) = if i < n1i { band(i + 1) } else { (1, 0) };
        let mut carry = 0.0f64;
        for j in lo..=hi {
            let ju = j as usize;
            let m = mass[ju] + carry;
            mass[ju] = 0.0;
            carry = 0.0;
            let remaining = (n1i - i) + (n2i - j);
            if m == 0.0 || remaining == 0 {
                continue;
            }
            let scale = m * inv[remaining as usize];
            let down = scale * (n1i - i) as f64;
            let right = scale * (n2i - j) as f64;
            if j >= next_lo && j <= next_hi {
                mass[ju] = down;
            } else {
                exited += down;
            }
            if j < hi {
                carry = right;
            } else {
                exited += right;
            }
        }
    }
    exited
}

/// KS distance from two histograms over the same ordered bins.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BinnedKs {
    /// `max_k |F_r(k) − F_c(k)|` at bin boundaries: a lower bound on `D`.
    pub statistic_lower_bound: f64,
    /// `D` is at most the lower bound plus this: the largest single-bin
    /// proportion on either side.
    pub error_bound: f64,
}

/// Binned KS distance; `None` when either side has no counts or the bin
/// counts differ.
pub fn binned_ks(reference_counts: &[u64], current_counts: &[u64]) -> Option<BinnedKs> {
    if reference_counts.len() != current_counts.len() {
        return None;
    }
    let n1: u64 = reference_counts.iter().sum();
    let n2: u64 = current_counts.iter().sum();
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (f1, f2) = (n1 as f64, n2 as f64);
    let (mut c1, mut c2) = (0u64, 0u64);
    let (mut d, mut err) = (0.0f64, 0.0f64);
    for (&r, &c) in reference_counts.iter().zip(current_counts) {
        c1 += r;
        c2 += c;
        d = d.max((c1 as f64 / f1 - c2 as f64 / f2).abs());
        err = err.max((r as f64 / f1).max(c as f64 / f2));
    }
    Some(BinnedKs {
        statistic_lower_bound: d,
        error_bound: err,
    })
}

#[cfg(test)]
#[path = "ks_tests.rs"]
mod tests;
