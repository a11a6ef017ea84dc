//! KS against a column's reference sample from counts that merge by addition: the form in
//! which partitions (and instances) carry what KS needs, so that a fleet's window gets its KS
//! from the partials of its partitions without any raw value.
//!
//! The grid is the reference sample's distinct values (at most `max_points` of them, evenly
//! spaced by rank, the smallest and largest always kept). A value falls in one of `2k + 1`
//! cells: below the first point, equal to point `i`, strictly between points `i` and `i + 1`,
//! or above the last. Counts per cell add across partitions.
//!
//! Guarantees: with every distinct sample value on the grid, [`KsGrid::ks`] gives exactly what
//! `ks_2samp(sample, values)` gives (the same `D`, bit for bit, and so the same p-value): a
//! step function's supremum is reached at the data points, and between two grid points the
//! reference ECDF is flat, so the cell counts say everything. With a coarser grid the reported
//! `D` is the largest difference at points that are data points (a lower bound) and
//! `error_bound` says how much larger the true `D` can be.
use super::error::DriftError;
use super::ks::{gcd, ks_result, KsMode, KsResult, KsStatistic};

/// The points a column's KS counts are kept against.
#[derive(Debug, Clone, PartialEq)]
pub struct KsGrid {
    points: Vec<f64>,
}

/// KS of merged counts against the reference sample.
#[derive(Debug, Clone, PartialEq)]
pub struct GridKs {
    /// As `ks_2samp` reports it from `D`; with a coarse grid, `D` is a lower bound.
    pub result: KsResult,
    /// The true `D` is at most `result.statistic + error_bound` (0 on a full grid).
    pub error_bound: f64,
}

impl KsGrid {
    /// The grid of a sorted reference sample: its distinct values, thinned evenly by rank to
    /// at most `max_points` (at least 2) when there are more.
    pub fn from_sorted_sample(sample: &[f64], max_points: usize) -> Result<KsGrid, DriftError> {
        if sample.is_empty() {
            return Err(DriftError::EmptySample { which: "reference" });
        }
        if sample.iter().any(|x| !x.is_finite()) {
            return Err(DriftError::NonFinite { which: "reference" });
        }
        let mut distinct: Vec<f64> = sample.to_vec();
        distinct.sort_unstable_by(f64::total_cmp);
        distinct.dedup();
        let k = max_points.max(2);
        let points = if distinct.len() <= k {
            distinct
        } else {
            // Point j of k: rank round(j (n - 1) / (k - 1)), so the ends are kept.
            let last = distinct.len() - 1;
            (0..k)
                .map(|j| distinct[(j * last + (k - 1) / 2) / (k - 1)])
                .collect()
        };
        Ok(KsGrid { points })
    }

    /// Grid points.
    pub fn points(&self) -> &[f64] {
        &self.points
    }

    /// Number of cells: below, at and between the points, and above.
    pub fn n_cells(&self) -> usize {
        2 * self.points.len() + 1
    }

    /// The cell of a finite value: `2i + 1` at point `i`, `2i` just below point `i` (above
    /// point `i - 1`), `2k` above the last point.
    #[inline]
    pub fn cell_of(&self, x: f64) -> usize {
        let i = self.points.partition_point(|&p| p < x);
        if self.points.get(i) == Some(&x) {
            2 * i + 1
        } else {
            2 * i
        }
    }

    /// KS of the values counted in `cells` (one count per cell) against `sample`, the sorted
    /// reference sample the grid was made from; `None` when no value was counted.
    pub fn ks(&self, sample: &[f64], cells: &[u64], mode: KsMode) -> Option<GridKs> {
        if cells.len() != self.n_cells() || sample.is_empty() {
            return None;
        }
        let (n1, n2) = (sample.len() as u64, cells.iter().sum::<u64>());
        if n2 == 0 {
            return None;
        }
        let lcm = n1 / gcd(n1, n2) * n2;
        let (w1, w2) = ((lcm / n1) as i64, (lcm / n2) as i64);
        let (f1, f2) = (n1 as f64, n2 as f64);
        // Cumulative counts at the last grid point passed: reference `r` values ≤ it, `c`
        // current values ≤ it. Differences in units of 1/lcm, as `ks_2samp`'s walk keeps them.
        let (mut r, mut c) = (0u64, 0u64);
        let (mut h, mut float_d, mut upper) = (0i64, 0.0f64, 0i64);
        let attained = |i: u64, j: u64, h: &mut i64, float_d: &mut f64| {
            let step = (i as i64 * w1 - j as i64 * w2).abs();
            if step >= *h {
                *float_d = float_d.max((i as f64 / f1 - j as f64 / f2).abs());
            }
            *h = (*h).max(step);
        };
        for (i, &point) in self.points.iter().enumerate() {
            let below = sample.partition_point(|&x| x < point) as u64;
            let at_or_below = sample.partition_point(|&x| x <= point) as u64;
            let open = cells[2 * i];
            let c_open = c + open;
            // In the open cell: the reference ECDF runs from r to `below`, the current one
            // from c to c_open; the difference can be no larger than this.
            let reach = (below as i64 * w1 - c as i64 * w2).max(c_open as i64 * w2 - r as i64 * w1);
            upper = upper.max(reach);
            if open > 0 && below == r {
                // No reference value inside: at the cell's largest value the ECDFs are r
                // and c_open, a data point of the pooled sample.
                attained(r, c_open, &mut h, &mut float_d);
            }
            r = at_or_below;
            c = c_open + cells[2 * i + 1];
            // At the point itself (a reference value): exact.
            attained(r, c, &mut h, &mut float_d);
            upper = upper.max((r as i64 * w1 - c as i64 * w2).abs());
        }
        // Above the last point both ECDFs climb to 1.
        let top = lcm as i64;
        upper = upper.max((top - c as i64 * w2).max(top - r as i64 * w1));
        let stat = KsStatistic {
            h: h as u64,
            lcm,
            float_d,
        };
        Some(GridKs {
            result: ks_result(n1, n2, stat, mode),
            error_bound: (upper.max(h) - h) as f64 / lcm as f64,
        })
    }
}

#[cfg(test)]
#[path = "ks_grid_tests.rs"]
mod tests;
