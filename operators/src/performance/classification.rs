//! Classification metrics as scikit-learn defines them.
//!
//! - Precision, recall and F1 of a class: a ratio whose denominator is zero is 0
//!   (`zero_division` left at its default). Macro averages are over the classes that occur in
//!   the labels or the predictions (scikit-learn's default `labels=None`).
//! - ROC AUC is the Mann–Whitney statistic with average ranks for ties, which is what
//!   `roc_auc_score` computes; multiclass is the macro average of one-vs-rest AUCs
//!   (`multi_class="ovr", average="macro"`). It is undefined (None) when a class has no
//!   positive or no negative among the labels, where scikit-learn raises.

/// Precision, recall and F1, of one class or macro-averaged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// The share of predictions equal to their label; None without pairs.
pub fn accuracy(labels: &[i64], predicted: &[i64]) -> Option<f64> {
    if labels.is_empty() {
        return None;
    }
    let right = labels.iter().zip(predicted).filter(|(l, p)| l == p).count();
    Some(right as f64 / labels.len() as f64)
}

/// Precision, recall and F1 of `positive` (scikit-learn's `average="binary"`, `pos_label`).
pub fn class_scores(labels: &[i64], predicted: &[i64], positive: i64) -> ClassScores {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&l, &p) in labels.iter().zip(predicted) {
        match (l == positive, p == positive) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |num: usize, den: usize| {
        if den == 0 {
            0.0
        } else {
            num as f64 / den as f64
        }
    };
    ClassScores {
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fn_),
        // 2tp / (2tp + fp + fn): scikit-learn's form, equal to the harmonic mean where defined.
        f1: ratio(2 * tp, 2 * tp + fp + fn_),
    }
}

/// The classes that occur in the labels or the predictions, ascending.
pub fn classes_present(labels: &[i64], predicted: &[i64]) -> Vec<i64> {
    let mut classes: Vec<i64> = labels.iter().chain(predicted).copied().collect();
    classes.sort_unstable();
    classes.dedup();
    classes
}

/// Unweighted mean of every present class's scores (`average="macro"`); None without pairs.
pub fn macro_scores(labels: &[i64], predicted: &[i64]) -> Option<ClassScores> {
    let classes = classes_present(labels, predicted);
    (!classes.is_empty()).then(|| macro_scores_over(labels, predicted, &classes))
}

/// Unweighted mean of the scores of `classes` (`average="macro", labels=classes`): a class
/// absent from both labels and predictions counts with zeros.
pub fn macro_scores_over(labels: &[i64], predicted: &[i64], classes: &[i64]) -> ClassScores {
    let n = classes.len() as f64;
    let mut sum = ClassScores {
        precision: 0.0,
        recall: 0.0,
        f1: 0.0,
    };
    for &c in classes {
        let s = class_scores(labels, predicted, c);
        sum.precision += s.precision;
        sum.recall += s.recall;
        sum.f1 += s.f1;
    }
    ClassScores {
        precision: sum.precision / n,
        recall: sum.recall / n,
        f1: sum.f1 / n,
    }
}

/// ROC AUC of `scores` for the positives marked true; None unless both kinds are present.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Option<f64> {
    let positives = positive.iter().filter(|p| **p).count();
    let negatives = positive.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|a, b| scores[*a].total_cmp(&scores[*b]));
    // Sum of the positives' ranks, tied scores sharing their average rank.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&o| positive[o]).count() as f64 * average_rank;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Macro one-vs-rest ROC AUC: `scores[k]` is the score column of `classes[k]`. None when a
/// class never or always occurs among the labels.
pub fn roc_auc_ovr_macro(labels: &[i64], classes: &[i64], scores: &[&[f64]]) -> Option<f64> {
    if classes.is_empty() || classes.len() != scores.len() {
        return None;
    }
    let mut sum = 0.0;
    for (&class, column) in classes.iter().zip(scores) {
        let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
        sum += roc_auc(&positive, column)?;
    }
    Some(sum / classes.len() as f64)
}
