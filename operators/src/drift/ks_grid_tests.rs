//! KS from grid cells against `ks_2samp` on the raw values: equal on a full grid, within the
//! stated bound on a coarse one, and the same when the cells of two halves are added.
use super::*;
use crate::drift::ks::ks_2samp;
use proptest::prelude::*;

fn cells_of(grid: &KsGrid, values: &[f64]) -> Vec<u64> {
    let mut cells = vec![0; grid.n_cells()];
    for &x in values {
        cells[grid.cell_of(x)] += 1;
    }
    cells
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v
}

#[test]
fn cells_are_below_at_between_and_above_the_points() {
    let grid = KsGrid::from_sorted_sample(&[1.0, 2.0, 2.0, 3.0], 10).unwrap();
    assert_eq!(grid.points(), &[1.0, 2.0, 3.0]);
    let cells: Vec<usize> = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 9.0]
        .iter()
        .map(|&x| grid.cell_of(x))
        .collect();
    assert_eq!(cells, vec![0, 1, 2, 3, 4, 5, 6]);
}

#[test]
fn a_thinned_grid_keeps_both_ends() {
    let sample: Vec<f64> = (0..1000).map(f64::from).collect();
    let grid = KsGrid::from_sorted_sample(&sample, 11).unwrap();
    assert_eq!(grid.points().len(), 11);
    assert_eq!(grid.points()[0], 0.0);
    assert_eq!(grid.points()[10], 999.0);
}

#[test]
fn a_full_grid_gives_ks_2samp_exactly_with_ties() {
    // Integer-valued data: many values equal reference points.
    let sample = sorted((0..300).map(|i| f64::from((i * 7) % 23)).collect());
    let current: Vec<f64> = (0..180).map(|i| f64::from((i * 5) % 29) - 2.0).collect();
    let grid = KsGrid::from_sorted_sample(&sample, 10_000).unwrap();
    let got = grid
        .ks(&sample, &cells_of(&grid, &current), KsMode::Auto)
        .unwrap();
    let want = ks_2samp(&sample, &current, KsMode::Auto).unwrap();
    assert_eq!(got.result, want);
    assert_eq!(got.error_bound, 0.0);
}

proptest! {
    #[test]
    fn full_grid_equals_ks_2samp(
        reference in prop::collection::vec(-50i32..50, 1..200),
        current in prop::collection::vec(-60i32..60, 1..200),
        scale in prop::sample::select(vec![1.0, 0.1, 0.37]),
    ) {
        let sample = sorted(reference.iter().map(|&x| f64::from(x) * scale).collect());
        let current: Vec<f64> = current.iter().map(|&x| f64::from(x) * scale).collect();
        let grid = KsGrid::from_sorted_sample(&sample, 100_000).unwrap();
        let got = grid.ks(&sample, &cells_of(&grid, &current), KsMode::Auto).unwrap();
        let want = ks_2samp(&sample, &current, KsMode::Auto).unwrap();
        prop_assert_eq!(got.result.h, want.h);
        prop_assert_eq!(got.result.statistic, want.statistic);
        prop_assert_eq!(got.result.pvalue, want.pvalue);
        prop_assert_eq!(got.error_bound, 0.0);
    }

    #[test]
    fn a_coarse_grid_bounds_the_exact_d(
        reference in prop::collection::vec(-1000i32..1000, 2..400),
        current in prop::collection::vec(-1200i32..1200, 1..300),
        points in 2usize..20,
    ) {
        let sample = sorted(reference.iter().map(|&x| f64::from(x)).collect());
        let current: Vec<f64> = current.iter().map(|&x| f64::from(x)).collect();
        let grid = KsGrid::from_sorted_sample(&sample, points).unwrap();
        let got = grid.ks(&sample, &cells_of(&grid, &current), KsMode::Auto).unwrap();
        let exact = ks_2samp(&sample, &current, KsMode::Asymp).unwrap().statistic;
        let d = got.result.h as f64 / got.result.lcm as f64;
        prop_assert!(d <= exact + 1e-12, "lower bound {} over D {}", d, exact);
        prop_assert!(exact <= d + got.error_bound + 1e-12,
            "D {} past {} + {}", exact, d, got.error_bound);
    }

    #[test]
    fn cells_add_across_partitions(
        a in prop::collection::vec(-100i32..100, 1..100),
        b in prop::collection::vec(-100i32..100, 1..100),
    ) {
        let sample = sorted((0..150).map(|i| f64::from((i * 13) % 170 - 85)).collect());
        let grid = KsGrid::from_sorted_sample(&sample, 40).unwrap();
        let to_f = |v: &[i32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<f64>>();
        let (fa, fb) = (to_f(&a), to_f(&b));
        let merged: Vec<u64> = cells_of(&grid, &fa).iter().zip(cells_of(&grid, &fb))
            .map(|(x, y)| x + y).collect();
        let all: Vec<f64> = fa.iter().chain(&fb).copied().collect();
        prop_assert_eq!(merged.clone(), cells_of(&grid, &all));
        prop_assert_eq!(grid.ks(&sample, &merged, KsMode::Auto),
            grid.ks(&sample, &cells_of(&grid, &all), KsMode::Auto));
    }
}
