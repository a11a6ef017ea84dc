//! NannyML's sampling error of each estimate: a spread measured once on the reference (raw
//! scores, predictions and labels), scaled by the chunk's size. The band reported around an
//! estimate is ± 3 of these.
use serde::{Deserialize, Serialize};

/// One metric's reference spread: `spread / sqrt(n × share)` for a chunk of `n` rows (binary:
/// a standard deviation; multiclass: per-class variances, combined at the chunk).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub spread: f64,
    pub share: f64,
}

/// Standard deviation of a vector of `ones` ones and `zeros` zeros (NaN when empty).
fn indicator_std(ones: f64, zeros: f64) -> f64 {
    indicator_var(ones, zeros).sqrt()
}

fn indicator_var(ones: f64, zeros: f64) -> f64 {
    let mean = ones / (ones + zeros);
    mean * (1.0 - mean)
}

/// Counts (tp, fp, fn, tn) of one class against the rest.
fn confusion(positive: &[bool], predicted_positive: &[bool]) -> (f64, f64, f64, f64) {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&y, &p) in positive.iter().zip(predicted_positive) {
        match (y, p) {
            (true, true) => tp += 1.0,
            (false, true) => fp += 1.0,
            (true, false) => fn_ += 1.0,
            (false, false) => tn += 1.0,
        }
    }
    (tp, fp, fn_, tn)
}

/// The reference spreads of one class against the rest, for precision, recall and F1
/// (`with_f1_factor`: binary F1's correcting factor, which multiclass does not apply;
/// `variance`: multiclass keeps variances, binary standard deviations).
pub struct ClassComponents {
    pub precision: Component,
    pub recall: Component,
    pub f1: Component,
    pub roc_auc: Component,
}

pub fn class_components(
    positive: &[bool],
    predicted_positive: &[bool],
    raw_scores: &[f64],
    binary: bool,
) -> ClassComponents {
    let n = positive.len() as f64;
    let (tp, fp, fn_, _) = confusion(positive, predicted_positive);
    let spread = |ones: f64, zeros: f64| match binary {
        true => indicator_std(ones, zeros),
        false => indicator_var(ones, zeros),
    };
    let f1_rows = tp + fn_ + fp;
    let f1_factor = match binary {
        true => f1_rows / ((fn_ + fp) * 0.5 + tp),
        false => 1.0,
    };
    ClassComponents {
        precision: Component {
            spread: spread(tp, fp),
            share: (tp + fp) / n,
        },
        recall: Component {
            spread: spread(tp, fn_),
            share: (tp + fn_) / n,
        },
        f1: Component {
            spread: spread(tp, fn_ + fp) * f1_factor,
            share: f1_rows / n,
        },
        roc_auc: roc_auc_component(positive, raw_scores, binary),
    }
}

/// The ROC AUC spread: for each positive in score order, the share of negatives ranked below
/// it, with the minority class taken as positive. Kept as NannyML computes it, including that a
/// positive ranked first is dropped.
fn roc_auc_component(positive: &[bool], scores: &[f64], binary: bool) -> Component {
    let n = positive.len();
    let positives = positive.iter().filter(|p| **p).count();
    let flip = positives as f64 / n as f64 > 0.5;
    let (y, s): (Vec<bool>, Vec<f64>) = match flip {
        true => (
            positive.iter().map(|p| !p).collect(),
            scores.iter().map(|s| 1.0 - s).collect(),
        ),
        false => (positive.to_vec(), scores.to_vec()),
    };
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| s[a].total_cmp(&s[b]));
    // Positions of positives (a positive at position 0 is dropped, as `unique(...)[1:]` does).
    let positions: Vec<usize> = (order.iter().enumerate())
        .filter(|&(rank, &i)| y[i] && rank > 0)
        .map(|(rank, _)| rank)
        .collect();
    let n_pos = y.iter().filter(|p| **p).count() as f64;
    let n_neg = n as f64 - n_pos;
    let below: Vec<f64> = (positions.iter().enumerate())
        .map(|(i, &rank)| (rank - i) as f64 / n_neg)
        .collect();
    let mean = below.iter().sum::<f64>() / below.len() as f64;
    let var = below.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / below.len() as f64;
    Component {
        spread: if binary { var.sqrt() } else { var },
        share: n_pos / n as f64,
    }
}

/// Accuracy's spread: the standard deviation of "prediction right", scaled by sqrt(n) alone.
pub fn accuracy_component(labels: &[i64], predicted: &[i64]) -> Component {
    let right = labels.iter().zip(predicted).filter(|(l, p)| l == p).count() as f64;
    Component {
        spread: indicator_std(right, labels.len() as f64 - right),
        share: 1.0,
    }
}

/// A binary metric's sampling error in a chunk of `n` rows.
pub fn binary_error(c: &Component, n: usize) -> f64 {
    c.spread / (n as f64 * c.share).sqrt()
}

/// A multiclass metric's sampling error: the classes' variances combined, averaged over K
/// (`factor`: 1.2 for ROC AUC, which NannyML widens by 20 %).
pub fn multiclass_error(per_class: &[Component], n: usize, factor: f64) -> f64 {
    let sum: f64 = (per_class.iter())
        .map(|c| c.spread / (n as f64 * c.share))
        .sum();
    sum.sqrt() / per_class.len() as f64 * factor
}
