//! Whether and how a classifier's scores are calibrated before estimating (NannyML's
//! `needs_calibration` and `_calibrate_predicted_probabilities`): isotonic calibration is used
//! when, over ten stratified 90/10 splits of the reference, it lowers the expected calibration
//! error of the held-out scores.
use serde::{Deserialize, Serialize};

use super::isotonic::Isotonic;
use super::random::stratified_shuffle_split;
use crate::performance::classification::roc_auc;

/// A class's calibration: isotonic when it helped on the reference, the score itself otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Calibrator {
    None,
    Isotonic(Isotonic),
}

impl Calibrator {
    /// Decides and fits on a reference: `positive` marks the rows of the class `scores` are for.
    pub fn fit(positive: &[bool], scores: &[f64]) -> Calibrator {
        let outcomes: Vec<f64> = positive.iter().map(|&p| f64::from(u8::from(p))).collect();
        match needs_calibration(positive, scores) {
            true => Isotonic::fit(scores, &outcomes).map_or(Calibrator::None, Calibrator::Isotonic),
            false => Calibrator::None,
        }
    }

    pub fn calibrate(&self, score: f64) -> f64 {
        match self {
            Calibrator::None => score,
            Calibrator::Isotonic(iso) => iso.predict(score),
        }
    }
}

/// NannyML's rule: calibrate when it lowers the expected calibration error (see
/// [`calibration_errors`]).
pub fn needs_calibration(positive: &[bool], scores: &[f64]) -> bool {
    calibration_errors(positive, scores).is_some_and(|(before, after)| before > after)
}

/// The expected calibration error of held-out scores before and after isotonic calibration
/// fitted on the rest: over scikit-learn's ten stratified 90/10 splits, all ten held-out parts
/// together. None where NannyML does not calibrate at all: one class, or scores that already
/// separate the classes (ROC AUC above 0.999).
pub fn calibration_errors(positive: &[bool], scores: &[f64]) -> Option<(f64, f64)> {
    let positives = positive.iter().filter(|p| **p).count();
    if positives == 0 || positives == positive.len() {
        return None;
    }
    if roc_auc(positive, scores).is_some_and(|auc| auc > 0.999) {
        return None;
    }
    let labels: Vec<i64> = positive.iter().map(|&p| i64::from(p)).collect();
    let outcomes: Vec<f64> = labels.iter().map(|&l| l as f64).collect();
    let (mut held_out, mut raw, mut calibrated) = (Vec::new(), Vec::new(), Vec::new());
    for (train, test) in stratified_shuffle_split(&labels, 10, 0.1, 42) {
        let train_scores: Vec<f64> = train.iter().map(|&i| scores[i]).collect();
        let train_outcomes: Vec<f64> = train.iter().map(|&i| outcomes[i]).collect();
        let iso = Isotonic::fit(&train_scores, &train_outcomes)?;
        for &i in &test {
            held_out.push(outcomes[i]);
            raw.push(scores[i]);
            calibrated.push(iso.predict(scores[i]));
        }
    }
    let edges = bin_edges(raw.len(), 10)?;
    Some((
        expected_calibration_error(&held_out, &raw, &edges),
        expected_calibration_error(&held_out, &calibrated, &edges),
    ))
}

/// Equal-count bins by rank: `bins` of `n / bins` rows, the last one to the end (fewer bins
/// when there are few rows, as NannyML does). None with fewer than 4 rows.
fn bin_edges(n: usize, bins: usize) -> Option<Vec<(usize, usize)>> {
    let bins = if n <= 2 * bins { n / 2 } else { bins };
    if bins < 2 {
        return None;
    }
    let width = n / bins;
    let mut edges: Vec<usize> = (0..=n).step_by(width).collect();
    *edges.last_mut().expect("an edge") = n;
    Some(edges.windows(2).map(|w| (w[0], w[1])).collect())
}

/// Σ over rank bins of the bin's share × |mean probability − mean outcome|. Ties in the
/// probability keep their row order (a stable sort; numpy's default sort orders ties by CPU, see
/// the research notes §11).
fn expected_calibration_error(
    outcomes: &[f64],
    probabilities: &[f64],
    edges: &[(usize, usize)],
) -> f64 {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    let n = probabilities.len() as f64;
    let mean = |rows: &[usize], values: &[f64]| -> f64 {
        rows.iter().map(|&i| values[i]).sum::<f64>() / rows.len() as f64
    };
    (edges.iter())
        .map(|&(l, r)| {
            let rows = &order[l..r];
            (r - l) as f64 / n * (mean(rows, probabilities) - mean(rows, outcomes)).abs()
        })
        .sum()
}

/// Calibrates each class's score column and scales every row back to a sum of 1 (a row that
/// sums to 0 gets 1/K for every class), as NannyML does for multiclass models, calibrated or not.
pub fn calibrate_multiclass(calibrators: &[Calibrator], scores: &[&[f64]]) -> Vec<Vec<f64>> {
    let k = scores.len();
    let rows = scores.first().map_or(0, |c| c.len());
    let mut columns: Vec<Vec<f64>> = (calibrators.iter().zip(scores))
        .map(|(c, column)| column.iter().map(|&s| c.calibrate(s)).collect())
        .collect();
    for row in 0..rows {
        let sum: f64 = columns.iter().map(|c| c[row]).sum();
        for column in &mut columns {
            column[row] = if sum != 0.0 {
                column[row] / sum
            } else {
                1.0 / k as f64
            };
        }
    }
    columns
}
