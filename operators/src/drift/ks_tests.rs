//! Checks of the two-sample KS test: hand-countable cases, an independent
//! integer path count, and properties.

use super::*;
use proptest::prelude::*;

/// `P(D >= h/lcm)` by counting paths that stay strictly inside the band in
/// exact integer arithmetic: an independent check of both exact methods.
fn brute_force_pvalue(n1: u64, n2: u64, h: u64) -> f64 {
    let g = gcd(n1, n2);
    let (a, b, h) = ((n2 / g) as i64, (n1 / g) as i64, h as i64);
    let inside = |i: usize, j: usize| (i as i64 * a - j as i64 * b).abs() < h;
    let mut paths = vec![vec![0u128; n2 as usize + 1]; n1 as usize + 1];
    let mut all = vec![vec![0u128; n2 as usize + 1]; n1 as usize + 1];
    for i in 0..=n1 as usize {
        for j in 0..=n2 as usize {
            let (from_up, from_left) = (
                if i > 0 {
                    (paths[i - 1][j], all[i - 1][j])
                } else {
                    (0, 0)
                },
                if j > 0 {
                    (paths[i][j - 1], all[i][j - 1])
                } else {
                    (0, 0)
                },
            );
            let start = u128::from(i == 0 && j == 0);
            all[i][j] = start + from_up.1 + from_left.1;
            paths[i][j] = if inside(i, j) {
                start + from_up.0 + from_left.0
            } else {
                0
            };
        }
    }
    let (n1, n2) = (n1 as usize, n2 as usize);
    1.0 - paths[n1][n2] as f64 / all[n1][n2] as f64
}

#[test]
fn completely_separated_samples() {
    let r = ks_2samp(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], KsMode::Auto).unwrap();
    assert_eq!((r.h, r.lcm, r.statistic), (3, 3, 1.0));
    // Only the two extreme paths of C(6,3) = 20 reach D = 1.
    assert!((r.pvalue - 0.1).abs() < 1e-15);
    assert_eq!(r.method, KsMethod::Exact);
    let r = ks_2samp(&[1.0, 2.0], &[3.0, 4.0, 5.0], KsMode::Auto).unwrap();
    assert_eq!((r.h, r.lcm), (6, 6));
    assert!((r.pvalue - 0.2).abs() < 1e-15, "{}", r.pvalue);
}

#[test]
fn ties_are_counted_before_differencing() {
    let s = ks_statistic_sorted(&[1.0, 1.0, 2.0], &[1.0, 2.0, 2.0]);
    assert_eq!((s.h, s.lcm), (1, 3));
    let s = ks_statistic_sorted(&[0.0; 4], &[0.0; 7]);
    assert_eq!(s.h, 0);
    assert_eq!(exact_pvalue(4, 7, 0), Some(1.0));
}

#[test]
fn exact_methods_match_integer_path_counts() {
    for (n1, n2) in [(5u64, 5u64), (4, 6), (7, 3), (9, 12), (10, 10), (13, 8)] {
        let g = gcd(n1, n2);
        let lcm = n1 / g * n2;
        for h in 1..=lcm {
            let want = brute_force_pvalue(n1, n2, h);
            let dp = first_exit_probability(n1, n2, h).min(1.0);
            assert!((dp - want).abs() < 1e-13, "{n1},{n2},h={h}: {dp} vs {want}");
            // scipy's equal-size form can round just past 1 for tiny h; it
            // then declines the exact answer, and so does exact_pvalue.
            let got = exact_pvalue(n1, n2, h).unwrap_or_else(|| prob_outside_square(n1, h));
            assert!(
                (got - want).abs() < 1e-13,
                "{n1},{n2},h={h}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn first_exit_keeps_relative_precision_in_the_far_tail() {
    // Equal sizes: scipy's closed form and the path mass must agree to many
    // significant digits even where p is ~1e-76.
    let (closed, paths) = (
        prob_outside_square(5000, 934),
        first_exit_probability(5000, 5000, 934),
    );
    assert!(closed > 1e-77 && closed < 1e-75);
    assert!(
        ((closed - paths) / closed).abs() < 1e-10,
        "{closed} vs {paths}"
    );
}

#[test]
fn auto_switches_to_asymp_above_ten_thousand() {
    let r: Vec<f64> = (0..10_001).map(|i| i as f64).collect();
    let c: Vec<f64> = (0..50).map(|i| i as f64 * 200.0 + 0.5).collect();
    let res = ks_2samp_sorted(&r, &c, KsMode::Auto).unwrap();
    assert_eq!(res.method, KsMethod::Asymp);
    let res = ks_2samp_sorted(&r, &c, KsMode::Exact).unwrap();
    assert_eq!(res.method, KsMethod::Exact);
}

#[test]
fn exact_at_ten_thousand_is_fast() {
    let r: Vec<f64> = (0..10_000)
        .map(|i| (i as f64 * 0.618_034).fract())
        .collect();
    let c: Vec<f64> = (0..9_999)
        .map(|i| (i as f64 * 0.414_214).fract().powf(1.3))
        .collect();
    for (r, c) in [(&r[..], &r[..9_999]), (&r[..], &c[..]), (&c[..], &c[..])] {
        let start = std::time::Instant::now();
        let res = ks_2samp(r, c, KsMode::Auto).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(res.method, KsMethod::Exact);
        // Generous for a shared CI machine; typically tens of milliseconds.
        assert!(elapsed.as_secs_f64() < 2.0, "{elapsed:?}");
    }
}

/// Values with many ties, both zeros, and spread-out ones.
fn tie_prone_values() -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        (-4i32..4).prop_map(f64::from),
        Just(-0.0),
        Just(0.0),
        -3.0f64..3.0,
    ];
    prop::collection::vec(value, 1..300)
}

fn ascending(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

proptest! {
    #[test]
    fn fast_statistic_agrees_with_the_definition(r in tie_prone_values(), c in tie_prone_values()) {
        let (r, c) = (ascending(r), ascending(c));
        let fast = ks_statistic_sorted(&r, &c);
        let every = ks_statistic_walk(&r, &c, true);
        prop_assert_eq!(fast.h, every.h);
        prop_assert_eq!(fast.lcm, every.lcm);
        prop_assert_eq!(fast.float_d.to_bits(), every.float_d.to_bits());
    }

    #[test]
    fn a_sorted_reference_gives_what_ks_2samp_gives(r in tie_prone_values(), c in tie_prone_values()) {
        let sorted = ascending(r.clone());
        let want = ks_2samp(&r, &c, KsMode::Auto).unwrap();
        prop_assert_eq!(&ks_2samp_sorted_reference(&sorted, &c, KsMode::Auto).unwrap(), &want);
        // An unsorted reference is sorted on the way.
        prop_assert_eq!(&ks_2samp_sorted_reference(&r, &c, KsMode::Auto).unwrap(), &want);
    }

    #[test]
    fn statistic_and_pvalue_are_in_range(
        r in prop::collection::vec(-5i32..5, 1..60),
        c in prop::collection::vec(-5i32..8, 1..60),
    ) {
        let r: Vec<f64> = r.into_iter().map(f64::from).collect();
        let c: Vec<f64> = c.into_iter().map(f64::from).collect();
        // n1 = n2 = 1 makes round(n1 n2 / (n1 + n2)) = 0, where scipy's
        // kstwo (and asymp_pvalue) return NaN.
        let modes: &[KsMode] = if r.len() + c.len() > 2 { &[KsMode::Auto, KsMode::Asymp] } else { &[KsMode::Auto] };
        for &mode in modes {
            let res = ks_2samp(&r, &c, mode).unwrap();
            prop_assert!((0.0..=1.0).contains(&res.statistic));
            prop_assert!((0.0..=1.0).contains(&res.pvalue));
            prop_assert!((res.statistic - res.h as f64 / res.lcm as f64).abs() < 1e-12);
        }
    }

    #[test]
    fn binned_ks_brackets_the_exact_statistic(
        r in prop::collection::vec(0.0f64..10.0, 1..200),
        c in prop::collection::vec(0.0f64..12.0, 1..200),
        cuts in prop::collection::vec(0.0f64..12.0, 1..12),
    ) {
        let mut cuts = cuts;
        cuts.sort_by(f64::total_cmp);
        let binning = crate::drift::binning::QuantileBinning::from_cuts(cuts).unwrap();
        let b = binned_ks(&binning.counts(&r), &binning.counts(&c)).unwrap();
        let d = ks_2samp(&r, &c, KsMode::Asymp).unwrap().statistic;
        prop_assert!(b.statistic_lower_bound <= d + 1e-12);
        prop_assert!(d <= b.statistic_lower_bound + b.error_bound + 1e-12);
    }
}

#[test]
fn a_reference_with_nan_is_refused_like_ks_2samp() {
    for r in [[f64::NAN, 1.0], [1.0, f64::NAN], [-f64::NAN, 1.0]] {
        let sorted = ascending(r.to_vec());
        assert_eq!(
            ks_2samp_sorted_reference(&sorted, &[1.0], KsMode::Auto),
            Err(DriftError::NonFinite { which: "reference" })
        );
    }
    assert_eq!(
        ks_2samp_sorted_reference(&[1.0], &[f64::NAN], KsMode::Auto),
        Err(DriftError::NonFinite { which: "current" })
    );
}
