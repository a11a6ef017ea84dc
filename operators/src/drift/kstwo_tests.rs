//! Checks of `kstwo_sf` against published values and against its own
//! independent algorithms where their domains overlap.

use super::*;
use crate::drift::smirnov::kolmogorov_sf;

fn cdf(n: u64, x: f64) -> f64 {
    1.0 - kstwo_sf(n, x).0
}

#[test]
fn exact_values_from_marsaglia_tsang_wang() {
    // K(n, d) = P(D_n < d) as printed by Marsaglia, Tsang & Wang (2003) and
    // R's exact pkolmogorov; (10, 0.274) is the paper's own example.
    assert!((durbin_cdf(10, 0.274) - 0.628_479_615_456_504_3).abs() < 1e-13);
    assert!((durbin_cdf(599, 0.0357) - 0.579_750_878_848_046_6).abs() < 1e-12);
    assert!((durbin_cdf(10_000, 0.01) - 0.731_780_872_037_052_6).abs() < 1e-11);
    // MTW's sample run: "Prob(D_16000 >= 0.016000) = 0.0005476508615293".
    // scipy takes 2·S_n here (n d^2 >= 2.2), which ignores the (tiny)
    // probability that both one-sided statistics reach d.
    let (p, branch) = kstwo_sf(16_000, 0.016);
    assert_eq!(branch, KstwoBranch::TwiceSmirnov);
    assert!((p - 0.000_547_650_861_529_3).abs() < 3e-13, "{p}");
    // The same 2·S_n from the Birnbaum–Tingey sum in 50-digit decimal
    // arithmetic (Python `decimal`): 5.4765086173080352766e-4.
    assert!((p - 5.476_508_617_308_035e-4).abs() < 1e-17, "{p}");
}

#[test]
fn dispatch_matches_scipy_kstwo_values() {
    // scipy.stats.kstwo.cdf(d, n) values quoted by a test suite that checks
    // itself against scipy; each lands in a different branch.
    let cases = [
        (10, 0.274, 0.628_479_615_456_504_3, KstwoBranch::Durbin),
        (20, 0.2, 0.647_279_826_376_585, KstwoBranch::Pomeranz),
        (50, 0.15, 0.809_736_334_817_519_8, KstwoBranch::Pomeranz),
        (100, 0.1, 0.747_307_242_993_612_7, KstwoBranch::Pomeranz),
        (500, 0.05, 0.841_337_397_761_846_1, KstwoBranch::PelzGood),
        (1000, 0.03, 0.677_309_785_608_536_4, KstwoBranch::PelzGood),
        (5, 0.5, 0.888, KstwoBranch::TwiceSmirnov),
    ];
    for (n, d, want, branch) in cases {
        let (sf, got_branch) = kstwo_sf(n, d);
        assert_eq!(got_branch, branch, "n={n} d={d}");
        assert!((1.0 - sf - want).abs() < 1e-12, "n={n} d={d}: {}", 1.0 - sf);
    }
}

#[test]
fn durbin_and_pomeranz_agree() {
    for n in [2u64, 3, 5, 10, 17, 40, 100, 140] {
        for i in 1..40 {
            let x = i as f64 / 40.0;
            if n as f64 * x <= 0.5 {
                continue;
            }
            let (a, b) = (durbin_cdf(n, x), pomeranz_cdf(n, x));
            assert!((a - b).abs() < 1e-12, "n={n} x={x}: {a} vs {b}");
        }
    }
}

#[test]
fn twice_smirnov_is_exact_above_one_half() {
    for n in [2u64, 3, 7, 20, 60] {
        for x in [0.5, 0.55, 0.7, 0.9] {
            let two_s = 2.0 * smirnov_sf(n, x);
            let pom = 1.0 - pomeranz_cdf(n, x);
            assert!((two_s - pom).abs() < 1e-12, "n={n} x={x}: {two_s} vs {pom}");
        }
    }
}

#[test]
fn ruben_gambino_edges() {
    // 1/(2n) < x <= 1/n: P(D_n <= x) = n!/n^n (2nx - 1)^n.
    let (n, x) = (6u64, 0.15);
    let nf = n as f64;
    let fact: f64 = (1..=n).map(|i| i as f64).product();
    let want = fact / nf.powi(6) * (2.0 * nf * x - 1.0).powi(6);
    let (sf, branch) = kstwo_sf(n, x);
    assert_eq!(branch, KstwoBranch::RubenGambino);
    assert!((1.0 - sf - want).abs() < 1e-15);
    assert!((durbin_cdf(n, x) - want).abs() < 1e-14);
    // Large n takes the Stirling form of the same expression.
    let (n, x) = (1000u64, 0.0008);
    let log_want = (1..=n).map(|i| (i as f64 / 1000.0).ln()).sum::<f64>() + 1000.0 * 0.6f64.ln();
    assert!((cdf(n, x) - log_want.exp()).abs() < 1e-15);
    // x >= 1 - 1/n: P(D_n >= x) = 2 (1 - x)^n.
    assert!((kstwo_sf(4, 0.8).0 - 2.0 * 0.2f64.powi(4)).abs() < 1e-15);
    assert_eq!(kstwo_sf(100, 0.004), (1.0, KstwoBranch::Trivial));
    assert_eq!(kstwo_sf(100, 1.0), (0.0, KstwoBranch::Trivial));
    assert!(kstwo_sf(0, 0.3).0.is_nan());
}

#[test]
fn pelz_good_and_durbin_agree_where_both_apply() {
    for (n, x) in [(1000u64, 0.012), (5000, 0.006), (20_000, 0.0035)] {
        let (pg, du) = (pelz_good_cdf(n, x), durbin_cdf(n, x));
        assert!((pg - du).abs() < 1e-6, "n={n} x={x}: {pg} vs {du}");
    }
}

#[test]
fn large_n_approaches_the_kolmogorov_limit() {
    let n = 1_000_000u64;
    for y in [0.6, 0.9, 1.2, 1.6] {
        let p = kstwo_sf(n, y / (n as f64).sqrt()).0;
        assert!((p - kolmogorov_sf(y)).abs() < 2e-3, "y={y}: {p}");
    }
}

#[test]
fn kolmogorov_limit_matches_smirnov_tables() {
    // Smirnov's tabulated limiting CDF, 6 decimals.
    for (y, want) in [
        (0.5, 0.036_055),
        (0.99, 0.719_126),
        (1.0, 0.730_000),
        (1.5, 0.977_782),
        (2.0, 0.999_329),
    ] {
        assert!((1.0 - kolmogorov_sf(y) - want).abs() < 6e-7, "y={y}");
    }
}
