//! One-sided Smirnov survival function `P(D_n+ >= x)` and Kolmogorov's
//! limiting distribution, as scipy.special (`xsf`) computes them.
//!
//! Guarantees: the same branches as xsf's `_smirnov` (n = 1, x <= 1/n,
//! underflow, x >= 1 - 1/n, the large-n approximation above 10^6, else the
//! Birnbaum–Tingey sum). The sum is evaluated term by term in log space, so
//! each (positive) term keeps ~1e-12 relative precision; xsf uses
//! double-double arithmetic, which agrees to far below the 1e-9 absolute
//! tolerance of a p-value.

/// xsf switches to an approximation above this `n`.
const SMIRNOV_MAX_COMPUTE_N: u64 = 1_000_000;
/// cephes `MINLOG`: `exp` of anything below underflows.
const MINLOG: f64 = -7.083_964_185_322_641e2;

/// `P(D_n+ >= x)` for the one-sided Kolmogorov–Smirnov statistic.
pub fn smirnov_sf(n: u64, x: f64) -> f64 {
    if n == 0 || !(0.0..=1.0).contains(&x) {
        return f64::NAN;
    }
    if n == 1 {
        return 1.0 - x;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x == 1.0 {
        return 0.0;
    }
    let nf = n as f64;
    let (nx_floor, alpha) = floor_and_fraction(nf, x);
    // Special case x <= 1/n: P(D+ < x) = x (1 + x)^(n-1).
    if nx_floor == 0 || (nx_floor == 1 && alpha == 0.0) {
        return 1.0 - x * (1.0 + x).powf(nf - 1.0);
    }
    if -2.0 * nf * x * x < MINLOG {
        return 0.0;
    }
    if nx_floor >= n - 1 {
        return (1.0 - x).powf(nf);
    }
    if n > SMIRNOV_MAX_COMPUTE_N {
        let logp = -(6.0 * nf * x + 1.0).powi(2) / 18.0 / nf;
        return if logp < -std::f64::consts::LN_2 {
            logp.exp()
        } else {
            1.0 + logp.exp_m1()
        };
    }
    birnbaum_tingey_sum(n, x, nx_floor, alpha).clamp(0.0, 1.0)
}

/// `floor(n x)` and the fractional part of `n x`, computed from the exact
/// product (an FMA recovers the rounding error) so that x = k/n lands on k.
fn floor_and_fraction(nf: f64, x: f64) -> (u64, f64) {
    let prod = nf * x;
    let err = nf.mul_add(x, -prod);
    let mut fl = prod.floor();
    let mut alpha = (prod - fl) + err;
    if alpha < 0.0 {
        fl -= 1.0;
        alpha += 1.0;
    }
    if alpha >= 1.0 {
        fl += 1.0;
        alpha -= 1.0;
    }
    (fl as u64, alpha)
}

/// `x Σ_{v=0}^{V} C(n,v) (x + v/n)^(v-1) (1 - x - v/n)^(n-v)` with
/// `V = ceil(n(1-x)) - 1`: every term is positive, so summing them keeps
/// relative precision even for tiny tail probabilities.
fn birnbaum_tingey_sum(n: u64, x: f64, nx_floor: u64, alpha: f64) -> f64 {
    let nf = n as f64;
    // Largest v with 1 - x - v/n > 0.
    let last = n - nx_floor - if alpha == 0.0 { 1 } else { 0 };
    // ln C(n, v), updated by ln((n-v)/(v+1)) with a compensated sum: lgamma
    // differences of ~1e5 would cost ~1e-10 relative precision per term.
    let (mut ln_binom, mut compensation) = (0.0f64, 0.0f64);
    let mut sum = 0.0f64;
    for v in 0..=last {
        let vf = v as f64;
        // x + v/n and 1 - x - v/n from the exact split n x = floor + alpha.
        let up = ((v + nx_floor) as f64 + alpha) / nf;
        let down = ((n - v - nx_floor) as f64 - alpha) / nf;
        if down <= 0.0 {
            break;
        }
        let ln_term = (ln_binom + compensation) + (vf - 1.0) * up.ln() + (nf - vf) * down.ln();
        let term = ln_term.exp();
        sum += term;
        // Terms rise then fall; stop once the rest cannot matter (xsf's test).
        let remaining = (last - v) as f64;
        if term > 0.0 && 4.0 * remaining * term < f64::EPSILON * sum && v != last {
            break;
        }
        let step = ((n - v) as f64 / (vf + 1.0)).ln();
        let next = ln_binom + step;
        compensation += if ln_binom.abs() >= step.abs() {
            (ln_binom - next) + step
        } else {
            (step - next) + ln_binom
        };
        ln_binom = next;
    }
    x * sum
}

/// Kolmogorov's limiting survival function `P(sqrt(n) D_n > y)` as
/// `n -> inf` (scipy.special.kolmogorov), with xsf's two series.
pub fn kolmogorov_sf(y: f64) -> f64 {
    use std::f64::consts::PI;
    if y.is_nan() {
        return f64::NAN;
    }
    // Below this the first theta-series term underflows: the CDF is 0.
    if y <= PI / (8.0f64 * 746.0).sqrt() {
        return 1.0;
    }
    if y <= 0.82 {
        let w = (2.0 * PI).sqrt() / y;
        let logu8 = -PI * PI / (y * y);
        let u = (logu8 / 8.0).exp();
        let cdf = if u == 0.0 {
            (logu8 / 8.0 + w.ln()).exp()
        } else {
            let u8 = logu8.exp();
            let mut p = 1.0 + u8.powi(3);
            p = 1.0 + u8 * u8 * p;
            p = 1.0 + u8 * p;
            w * u * p
        };
        (1.0 - cdf).clamp(0.0, 1.0)
    } else {
        let v = (-2.0 * y * y).exp();
        let (vsq, v3) = (v * v, v.powi(3));
        let mut p = 1.0 - v3 * v3 * v;
        p = 1.0 - v3 * vsq * p;
        p = 1.0 - v3 * p;
        (2.0 * v * p).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms_at_the_edges() {
        assert_eq!(smirnov_sf(1, 0.3), 0.7);
        assert_eq!(smirnov_sf(5, 0.0), 1.0);
        assert_eq!(smirnov_sf(5, 1.0), 0.0);
        // x >= 1 - 1/n: only the all-below path remains, (1-x)^n.
        assert!((smirnov_sf(4, 0.8) - 0.2f64.powi(4)).abs() < 1e-16);
    }

    #[test]
    fn two_terms_by_hand() {
        // n = 2, x = 0.6: v = 0 only (n(1-x) = 0.8): x * (1-x)^2 / x = 0.16.
        assert!((smirnov_sf(2, 0.6) - 0.16).abs() < 1e-15);
        // n = 3, x = 0.5: v = 0, 1:
        // x [x^-1 (1-x)^3 + 3 (x+1/3)^0 (1-x-1/3)^2] = 0.125 + 1.5/36.
        let want = 0.125 + 0.5 * 3.0 * (1.0f64 / 6.0).powi(2);
        assert!((smirnov_sf(3, 0.5) - want).abs() < 1e-15);
    }

    #[test]
    fn approaches_the_one_sided_limit() {
        // P(sqrt(n) D+ >= y) -> exp(-2 y^2), error O(1/sqrt n).
        let n = 100_000u64;
        let y = 1.0;
        let p = smirnov_sf(n, y / (n as f64).sqrt());
        assert!((p - (-2.0f64).exp()).abs() < 2e-3, "{p}");
    }
}
