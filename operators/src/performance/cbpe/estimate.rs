//! The estimates of one chunk from calibrated probabilities alone (NannyML's CBPE estimators):
//! each row's calibrated probability stands for the chance that its label is the class, so the
//! confusion matrix is estimated by summing probabilities instead of counting labels.

/// Binary: `predicted` is the model's class (0 or 1), `p` the calibrated probability of class 1.
pub struct BinaryEstimates {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
}

pub fn binary(predicted: &[i64], p: &[f64]) -> BinaryEstimates {
    let (mut tp, mut fp, mut fn_, mut tn) = (0.0, 0.0, 0.0, 0.0);
    for (&y, &q) in predicted.iter().zip(p) {
        match y {
            1 => {
                tp += q;
                fp += 1.0 - q;
            }
            0 => {
                fn_ += q;
                tn += 1.0 - q;
            }
            _ => {} // neither class: counted only in the number of rows, as NannyML does
        }
    }
    let ratio = |num: f64, den: f64| if den == 0.0 { 0.0 } else { num / den };
    BinaryEstimates {
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        f1: ratio(tp, tp + 0.5 * (fp + fn_)),
        accuracy: (tp + tn) / predicted.len() as f64,
    }
}

/// The estimated ROC AUC: rows ordered by their raw score, highest first, each adding its
/// calibrated probability to the expected true positives and the rest to the false ones;
/// the cumulative sums rounded to 5 decimals (as NannyML does), normalised, and integrated by
/// trapezoids. NaN when the chunk expects no positive or no negative.
pub fn roc_auc(calibrated: &[f64], raw: &[f64]) -> f64 {
    let n = raw.len();
    let mut order: Vec<usize> = (0..n).collect();
    // numpy's argsort reversed: ascending (ties in row order), then read from the back.
    order.sort_by(|&a, &b| raw[a].total_cmp(&raw[b]));
    order.reverse();
    let round5 = |v: f64| (v * 1e5).round_ties_even() / 1e5;
    let mut tps = Vec::with_capacity(n + 1);
    let mut fps = Vec::with_capacity(n + 1);
    tps.push(0.0);
    fps.push(0.0);
    let mut cumulative = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        cumulative += calibrated[i];
        tps.push(round5(cumulative));
        fps.push(round5((rank + 1) as f64 - cumulative));
    }
    let (tp_total, fp_total) = (tps[n], fps[n]);
    if tp_total == 0.0 || fp_total == 0.0 {
        return f64::NAN;
    }
    let mut area = 0.0;
    for i in 0..n {
        let (x0, x1) = (fps[i] / fp_total, fps[i + 1] / fp_total);
        let (y0, y1) = (tps[i] / tp_total, tps[i + 1] / tp_total);
        area += (x1 - x0) * (y1 + y0) / 2.0;
    }
    area
}

/// Multiclass: `classes` sorted, `calibrated[k]` the calibrated, renormalised probability
/// column of `classes[k]`, `raw[k]` its raw score. Macro averages of the one-vs-rest estimates.
pub struct MulticlassEstimates {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub accuracy: f64,
    pub roc_auc: f64,
}

pub fn multiclass(
    classes: &[i64],
    predicted: &[i64],
    calibrated: &[Vec<f64>],
    raw: &[&[f64]],
) -> MulticlassEstimates {
    let k = classes.len() as f64;
    let (mut precision, mut recall, mut f1, mut auc) = (0.0, 0.0, 0.0, 0.0);
    for (c, &class) in classes.iter().enumerate() {
        let one_vs_rest: Vec<i64> = predicted.iter().map(|&p| i64::from(p == class)).collect();
        let e = binary(&one_vs_rest, &calibrated[c]);
        precision += e.precision;
        recall += e.recall;
        f1 += e.f1;
        auc += roc_auc(&calibrated[c], raw[c]);
    }
    // The calibrated probability of the predicted class (0 for a class the model does not have).
    let accuracy = (predicted.iter().enumerate())
        .map(|(row, p)| (classes.iter().position(|c| c == p)).map_or(0.0, |c| calibrated[c][row]))
        .sum::<f64>()
        / predicted.len() as f64;
    MulticlassEstimates {
        precision: precision / k,
        recall: recall / k,
        f1: f1 / k,
        accuracy,
        roc_auc: auc / k,
    }
}
