//! Isotonic calibration as NannyML's `IsotonicCalibrator` does it: scikit-learn's
//! `IsotonicRegression(out_of_bounds="clip", increasing=True)`, fitted by pool-adjacent-violators
//! on the scores' distinct values, predicting by linear interpolation between them (not a step
//! function), clipped at the ends.
use serde::{Deserialize, Serialize};

/// A fitted non-decreasing map from score to probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Isotonic {
    /// The distinct scores, ascending.
    pub x: Vec<f64>,
    /// The fitted probability at each.
    pub y: Vec<f64>,
}

impl Isotonic {
    /// Fits `outcomes` (0 or 1) against `scores`; None without rows.
    pub fn fit(scores: &[f64], outcomes: &[f64]) -> Option<Isotonic> {
        if scores.is_empty() {
            return None;
        }
        // Sorted by score, then outcome (`np.lexsort((y, X))`).
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| {
            (scores[a].total_cmp(&scores[b])).then(outcomes[a].total_cmp(&outcomes[b]))
        });
        // Scores closer than float64's resolution (1e-15) to a group's first are one point,
        // at the mean outcome, weighted by its size (scikit-learn's `_make_unique`).
        const RESOLUTION: f64 = 1e-15;
        let (mut x, mut means, mut weights) = (Vec::new(), Vec::new(), Vec::new());
        let (mut group_x, mut sum, mut count) = (scores[order[0]], 0.0, 0.0);
        for &i in &order {
            if scores[i] - group_x >= RESOLUTION {
                x.push(group_x);
                means.push(sum / count);
                weights.push(count);
                (group_x, sum, count) = (scores[i], 0.0, 0.0);
            }
            sum += outcomes[i];
            count += 1.0;
        }
        x.push(group_x);
        means.push(sum / count);
        weights.push(count);
        // Pool adjacent violators: blocks of (mean, weight, points), merged while not increasing.
        let mut blocks: Vec<(f64, f64, usize)> = Vec::with_capacity(x.len());
        for (&m, &w) in means.iter().zip(&weights) {
            blocks.push((m, w, 1));
            while blocks.len() > 1 && blocks[blocks.len() - 2].0 >= blocks[blocks.len() - 1].0 {
                let (m2, w2, c2) = blocks.pop().expect("two blocks");
                let (m1, w1, c1) = blocks.pop().expect("two blocks");
                blocks.push(((m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2));
            }
        }
        let y = (blocks.iter())
            .flat_map(|&(m, _, c)| std::iter::repeat_n(m, c))
            .collect();
        Some(Isotonic { x, y })
    }

    /// The calibrated probability of `score`.
    pub fn predict(&self, score: f64) -> f64 {
        let last = self.x.len() - 1;
        let t = score.clamp(self.x[0], self.x[last]);
        if last == 0 {
            return self.y[0];
        }
        // The segment [x[i], x[i+1]] that holds t (numpy's `interp`).
        let i = self.x.partition_point(|&v| v <= t).clamp(1, last) - 1;
        let (x0, x1, y0, y1) = (self.x[i], self.x[i + 1], self.y[i], self.y[i + 1]);
        if t == x1 {
            return y1;
        }
        let slope = (y1 - y0) / (x1 - x0);
        slope * (t - x0) + y0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_violators_and_interpolates_between_distinct_scores() {
        // Outcome means 0, 1, 0, 1 at 0.1..0.4: the middle pair pools to 0.5.
        let iso = Isotonic::fit(&[0.1, 0.2, 0.3, 0.4], &[0.0, 1.0, 0.0, 1.0]).unwrap();
        assert_eq!(iso.y, vec![0.0, 0.5, 0.5, 1.0]);
        assert_eq!(iso.predict(0.0), 0.0, "clipped below");
        assert_eq!(iso.predict(0.9), 1.0, "clipped above");
        assert!(
            (iso.predict(0.15) - 0.25).abs() < 1e-15,
            "linear, not a step"
        );
        assert_eq!(iso.predict(0.3), 0.5);
        let one = Isotonic::fit(&[0.5, 0.5], &[0.0, 1.0]).unwrap();
        assert_eq!(one.predict(0.1), 0.5);
    }
}
