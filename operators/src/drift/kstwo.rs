//! The exact distribution of the two-sided one-sample statistic `D_n`
//! (scipy's `kstwo`), used for the asymptotic two-sample p-value.
//!
//! Guarantees: a faithful port of scipy 1.17 `scipy/stats/_ksstats.py`
//! `_kolmogn`, the Simard–L'Ecuyer dispatch: trivial edges, Ruben–Gambino
//! closed forms, `2·S_n(x)` (Birnbaum–Tingey) in the upper tail, the Durbin
//! matrix (Marsaglia–Tsang–Wang), the Pomeranz recursion, and the Pelz–Good
//! series, each under the same conditions as scipy. [`KstwoBranch`] says
//! which one produced a value.

use super::smirnov::smirnov_sf;

/// 2^128 and 2^-128: the intermediate rescaling steps scipy uses.
const EP128: f64 = 3.402_823_669_209_385e38;
const EM128: f64 = 2.938_735_877_055_719e-39;
const E128: i32 = 128;

/// Which formula produced a `kstwo` probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KstwoBranch {
    /// `x <= 1/(2n)`, `x >= 1`, or `n x^2 >= 370`: the answer is 0 or 1.
    Trivial,
    /// Ruben–Gambino closed forms near `1/n` and `1 - 1/n`.
    RubenGambino,
    /// `2·smirnov(n, x)`: exact for `x >= 1/2`, a tail approximation below.
    TwiceSmirnov,
    /// 1 − the Durbin matrix CDF (Marsaglia–Tsang–Wang).
    Durbin,
    /// 1 − the Pomeranz recursion CDF.
    Pomeranz,
    /// 1 − the Pelz–Good asymptotic series.
    PelzGood,
}

/// `P(D_n >= x)` and the branch that computed it; NaN when `n == 0`.
pub fn kstwo_sf(n: u64, x: f64) -> (f64, KstwoBranch) {
    use KstwoBranch::*;
    if n == 0 || x.is_nan() {
        return (f64::NAN, Trivial);
    }
    if x >= 1.0 {
        return (0.0, Trivial);
    }
    if x <= 0.0 {
        return (1.0, Trivial);
    }
    let nf = n as f64;
    let t = nf * x;
    if t <= 1.0 {
        if t <= 0.5 {
            return (1.0, Trivial);
        }
        let cdf = if n <= 140 {
            (1..=n).fold(1.0, |acc, i| {
                acc * (i as f64 * (1.0 / nf) * (2.0 * t - 1.0))
            })
        } else {
            (log_nfactorial_div_n_pow_n(nf) + nf * (2.0 * t - 1.0).ln()).exp()
        };
        return (clip(1.0 - cdf), RubenGambino);
    }
    if t >= nf - 1.0 {
        return (clip(2.0 * (1.0 - x).powf(nf)), RubenGambino);
    }
    if x >= 0.5 {
        return (clip(2.0 * smirnov_sf(n, x)), TwiceSmirnov);
    }
    let nxsquared = t * x;
    if n <= 140 {
        if nxsquared <= 0.754693 {
            return (clip(1.0 - durbin_cdf(n, x)), Durbin);
        }
        if nxsquared <= 4.0 {
            return (clip(1.0 - pomeranz_cdf(n, x)), Pomeranz);
        }
        return (clip(2.0 * smirnov_sf(n, x)), TwiceSmirnov);
    }
    if nxsquared >= 370.0 {
        return (0.0, Trivial);
    }
    if nxsquared >= 2.2 {
        return (clip(2.0 * smirnov_sf(n, x)), TwiceSmirnov);
    }
    if n <= 100_000 && nf * x.powf(1.5) <= 1.4 {
        (clip(1.0 - durbin_cdf(n, x)), Durbin)
    } else {
        (clip(1.0 - pelz_good_cdf(n, x)), PelzGood)
    }
}

fn clip(p: f64) -> f64 {
    p.clamp(0.0, 1.0)
}

/// `log(n! / n^n)` by Stirling with the `n log n` removed up front.
fn log_nfactorial_div_n_pow_n(n: f64) -> f64 {
    const STIRLING: [f64; 8] = [
        -2.955_065_359_477_124e-2,
        6.410_256_410_256_41e-3,
        -1.917_526_917_526_917_6e-3,
        8.417_508_417_508_418e-4,
        -5.952_380_952_380_952e-4,
        7.936_507_936_507_937e-4,
        -2.777_777_777_777_778e-3,
        8.333_333_333_333_333e-2,
    ];
    let rn = 1.0 / n;
    let z = rn / n;
    let poly = STIRLING.iter().fold(0.0, |acc, &c| acc * z + c);
    n.ln() / 2.0 - n + (2.0 * std::f64::consts::PI).ln() / 2.0 + rn * poly
}

/// Square matrix product, row-major `m × m`.
fn matmul(a: &[f64], b: &[f64], m: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * m];
    for i in 0..m {
        for k in 0..m {
            let aik = a[i * m + k];
            if aik == 0.0 {
                continue;
            }
            let (row, brow) = (&mut out[i * m..(i + 1) * m], &b[k * m..(k + 1) * m]);
            for (o, &bkj) in row.iter_mut().zip(brow) {
                *o += aik * bkj;
            }
        }
    }
    out
}

/// `P(D_n <= d)` by Durbin's matrix, as Marsaglia, Tsang & Wang evaluate it:
/// the `k`-th diagonal entry of `(n!/n^n) H^n`, with power-of-two rescaling.
fn durbin_cdf(n: u64, d: f64) -> f64 {
    let nd = n as f64 * d;
    if d >= 1.0 {
        return 1.0;
    }
    if nd <= 0.5 {
        return 0.0;
    }
    let k = nd.ceil() as usize;
    let h = k as f64 - nd;
    let m = 2 * k - 1;
    let mut v: Vec<f64> = (1..=m).map(|j| 1.0 - h.powi(j as i32)).collect();
    let mut w = vec![0.0; m];
    let mut fac = 1.0;
    for j in 1..=m {
        w[j - 1] = fac;
        fac /= j as f64;
        v[j - 1] *= fac;
    }
    let tt = (2.0 * h - 1.0).max(0.0).powi(m as i32) - 2.0 * h.powi(m as i32);
    v[m - 1] = (1.0 + tt) * fac;
    let mut hm = vec![0.0; m * m];
    for i in 1..m {
        for r in (i - 1)..m {
            hm[r * m + i] = w[r - (i - 1)];
        }
    }
    for r in 0..m {
        hm[r * m] = v[r];
    }
    for c in 0..m {
        hm[(m - 1) * m + c] = v[m - 1 - c];
    }
    let mut pwr: Vec<f64> = (0..m * m)
        .map(|i| if i % (m + 1) == 0 { 1.0 } else { 0.0 })
        .collect();
    let (mut nn, mut expnt, mut h_expnt) = (n, 0i64, 0i64);
    let diag = (k - 1) * m + (k - 1);
    while nn > 0 {
        if nn % 2 == 1 {
            pwr = matmul(&pwr, &hm, m);
            expnt += h_expnt;
            // Not in scipy: keeps the running product finite for large n;
            // the value is unchanged.
            if pwr[diag].abs() > EP128 {
                pwr.iter_mut().for_each(|x| *x /= EP128);
                expnt += i64::from(E128);
            }
        }
        hm = matmul(&hm, &hm, m);
        h_expnt *= 2;
        if hm[diag].abs() > EP128 {
            hm.iter_mut().for_each(|x| *x /= EP128);
            h_expnt += i64::from(E128);
        }
        nn /= 2;
    }
    let mut p = pwr[diag];
    let nf = n as f64;
    for i in 1..=n {
        p = i as f64 * p / nf;
        if p.abs() < EM128 {
            p *= EP128;
            expnt -= i64::from(E128);
        }
    }
    ldexp(p, expnt)
}

/// `x · 2^e` for an exponent that may exceed the `i32` range of a step.
fn ldexp(mut x: f64, mut e: i64) -> f64 {
    while e != 0 && x != 0.0 && x.is_finite() {
        let step = e.clamp(-1000, 1000);
        x *= 2f64.powi(step as i32);
        e -= step;
    }
    x
}

/// Endpoints of the non-zero stretch of row `i` in the Pomeranz recursion.
fn pomeranz_j1j2(i: i64, n: i64, ll: i64, ceilf: i64, roundf: i64) -> (i64, i64) {
    let (j1, j2) = if i == 0 {
        (-ll - ceilf - 1, ll + ceilf - 1)
    } else {
        let (half, odd) = ((i + 1) / 2, (i + 1) % 2);
        if odd == 0 {
            if half == n + 1 {
                (n - ll - ceilf - 1, n + ll + ceilf - 1)
            } else {
                (half - 1 - ll - roundf - 1, half + ll - 1 + ceilf - 1)
            }
        } else {
            (half - 1 - ll - 1, half + ll + roundf - 1)
        }
    };
    ((j1 + 2).max(0), j2.min(n))
}

/// `P(D_n <= x)` by the Pomeranz recursion (rows are convolutions with
/// truncated Poisson weights), with power-of-two rescaling.
fn pomeranz_cdf(n: u64, x: f64) -> f64 {
    let nf = n as f64;
    let ni = n as i64;
    let t = nf * x;
    let ll = t.floor() as i64;
    let f = t - ll as f64;
    let g = f.min(1.0 - f);
    let ceilf = i64::from(f > 0.0);
    let roundf = i64::from(f > 0.5);
    let npwrs = (2 * (ll + 1)) as usize;
    let mut gpower = vec![1.0; npwrs];
    let mut twogpower = vec![1.0; npwrs];
    let mut onem2gpower = vec![1.0; npwrs];
    let (g_n, two_g_n, one_m2g_n) = (g / nf, 2.0 * g / nf, (1.0 - 2.0 * g) / nf);
    for m in 1..npwrs {
        gpower[m] = gpower[m - 1] * g_n / m as f64;
        twogpower[m] = twogpower[m - 1] * two_g_n / m as f64;
        onem2gpower[m] = onem2gpower[m - 1] * one_m2g_n / m as f64;
    }
    let mut v0 = vec![0.0; npwrs];
    let mut v1 = vec![0.0; npwrs];
    v1[0] = 1.0;
    let (mut v0s, mut v1s) = (0i64, 0i64);
    let mut expnt = 0i64;
    let (mut j1, _) = pomeranz_j1j2(0, ni, ll, ceilf, roundf);
    let mut conv = Vec::with_capacity(2 * npwrs);
    for i in 1..(2 * ni + 2) {
        let k1 = j1;
        std::mem::swap(&mut v0, &mut v1);
        std::mem::swap(&mut v0s, &mut v1s);
        v1.fill(0.0);
        let (nj1, j2) = pomeranz_j1j2(i, ni, ll, ceilf, roundf);
        j1 = nj1;
        let pwrs = if i == 1 || i == 2 * ni + 1 {
            &gpower
        } else if i % 2 == 1 {
            &twogpower
        } else {
            &onem2gpower
        };
        let ln2 = j2 - k1 + 1;
        if ln2 <= 0 {
            continue;
        }
        // numpy slices silently stop at the end of the array; so do these.
        let start = (k1 - v0s).max(0) as usize;
        let a = &v0[start.min(npwrs)..(start + ln2 as usize).min(npwrs)];
        let b = &pwrs[..(ln2 as usize).min(npwrs)];
        conv.clear();
        conv.resize(a.len() + b.len() - 1, 0.0);
        for (ia, &va) in a.iter().enumerate() {
            for (ib, &vb) in b.iter().enumerate() {
                conv[ia + ib] += va * vb;
            }
        }
        let conv_start = (j1 - k1).max(0) as usize;
        let conv_len = (j2 - j1 + 1).max(0) as usize;
        let src = &conv[conv_start.min(conv.len())..(conv_start + conv_len).min(conv.len())];
        let len = src.len().min(npwrs);
        v1[..len].copy_from_slice(&src[..len]);
        let max = v1.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if 0.0 < max && max < EM128 {
            v1.iter_mut().for_each(|x| *x *= EP128);
            expnt -= i64::from(E128);
        }
        v1s = v0s + j1 - k1;
    }
    let idx = ni - v1s;
    let mut ans = if (0..npwrs as i64).contains(&idx) {
        v1[idx as usize]
    } else {
        0.0
    };
    for m in 1..=n {
        if ans.abs() > EP128 {
            ans *= EM128;
            expnt += i64::from(E128);
        }
        ans *= m as f64;
    }
    ldexp(ans, expnt)
}

/// Pelz–Good approximation to `P(D_n <= x)`: the Li-Chien/Korolyuk
/// expansion in `1/sqrt(n)`, transformed by Jacobi theta identities.
fn pelz_good_cdf(n: u64, x: f64) -> f64 {
    use std::f64::consts::PI;
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let nf = n as f64;
    let (pi2, pi4, pi6) = (PI * PI, PI.powi(4), PI.powi(6));
    let sqrt2pi = (2.0 * PI).sqrt();
    let z = nf.sqrt() * x;
    let (z2, z3, z4, z6) = (z * z, z.powi(3), z.powi(4), z.powi(6));
    let qlog = -pi2 / 8.0 / z2;
    if qlog < -708.0 {
        return 0.0;
    }
    let q = qlog.exp();
    let (k1a, k1b) = (-z2, pi2 / 4.0);
    let k2a = 6.0 * z6 + 2.0 * z4;
    let k2b = (2.0 * z4 - 5.0 * z2) * pi2 / 4.0;
    let k2c = pi4 * (1.0 - 2.0 * z2) / 16.0;
    let k3d = pi6 * (5.0 - 30.0 * z2) / 64.0;
    let k3c = pi4 * (-60.0 * z2 + 212.0 * z4) / 16.0;
    let k3b = pi2 * (135.0 * z4 - 96.0 * z6) / 4.0;
    let k3a = -30.0 * z6 - 90.0 * z.powi(8);
    let mut k = [0.0f64; 4];
    let maxk = (16.0 * z / PI).ceil() as i64;
    for kk in (1..=maxk).rev() {
        let m = (2 * kk - 1) as f64;
        let (m2, m4, m6) = (m * m, m.powi(4), m.powi(6));
        let qpower = q.powf(8.0 * kk as f64);
        let coeffs = [
            1.0,
            k1a + k1b * m2,
            k2a + k2b * m2 + k2c * m4,
            k3a + k3b * m2 + k3c * m4 + k3d * m6,
        ];
        for (ki, c) in k.iter_mut().zip(coeffs) {
            *ki = *ki * qpower + c;
        }
    }
    let denominators = [z, 6.0 * z4, 72.0 * z.powi(7), 6480.0 * z.powi(10)];
    for (ki, den) in k.iter_mut().zip(denominators) {
        *ki = *ki * q * sqrt2pi / den;
    }
    let q = (-pi2 / 2.0 / z2).exp();
    let (mut k2extra, mut k3extra) = (0.0, 0.0);
    let sqrt3z = 3f64.sqrt() * z;
    for kk in (1..=maxk).rev() {
        let kf = kk as f64;
        let k2 = kf * kf;
        let qp = q.powf(k2);
        k2extra += k2 * qp;
        let kspi = PI * kf;
        k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * k2 * qp;
    }
    k[2] += k2extra * pi2 * sqrt2pi / (-36.0 * z3);
    k[3] += k3extra * pi2 * sqrt2pi / (216.0 * z6);
    k.iter()
        .enumerate()
        .map(|(i, ki)| ki / nf.powf(i as f64 / 2.0))
        .sum()
}

#[cfg(test)]
#[path = "kstwo_tests.rs"]
mod tests;
