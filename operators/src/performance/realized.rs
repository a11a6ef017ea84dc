//! A window's realized performance: every metric of the model's kind over its labeled pairs,
//! computed with [`classification`] and [`regression`] (scikit-learn's definitions).
//!
//! - Binary classifiers (two classes): accuracy; precision, recall and F1 of the larger class
//!   (scikit-learn's `average="binary"`, `pos_label=1` for classes 0 and 1); ROC AUC of its
//!   score column.
//! - Multiclass: accuracy; macro precision, recall and F1 over the classes present in the
//!   labels or predictions; macro one-vs-rest ROC AUC, defined when every class occurs among
//!   the labels (where scikit-learn raises otherwise).
//! - Regressors: MAE, RMSE, MAPE and R².
//!
//! A metric that is undefined for the pairs (no pairs, one class only for ROC AUC) is None.
use serde::{Deserialize, Serialize};

use super::classification::{self, accuracy, class_scores, macro_scores};
use super::regression;

/// One metric's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub metric: String,
    pub value: Option<f64>,
}

fn value(metric: &str, value: Option<f64>) -> MetricValue {
    MetricValue {
        metric: metric.to_string(),
        value,
    }
}

/// A classifier's metrics. `classes` ascending; `scores[k]` the score column of `classes[k]`
/// (empty without scores).
pub fn classifier_metrics(
    classes: &[i64],
    labels: &[i64],
    predicted: &[i64],
    scores: &[&[f64]],
) -> Vec<MetricValue> {
    let binary = classes.len() == 2;
    let pairs = !labels.is_empty();
    let scored = pairs.then(|| match binary {
        true => class_scores(labels, predicted, classes[1]),
        false => macro_scores(labels, predicted).expect("pairs"),
    });
    let roc_auc = match (binary, scores.len() == classes.len()) {
        (true, true) => {
            let positive: Vec<bool> = labels.iter().map(|&l| l == classes[1]).collect();
            classification::roc_auc(&positive, scores[1])
        }
        (false, true) => classification::roc_auc_ovr_macro(labels, classes, scores),
        (_, false) => None,
    };
    vec![
        value("accuracy", accuracy(labels, predicted)),
        value("precision", scored.map(|s| s.precision)),
        value("recall", scored.map(|s| s.recall)),
        value("f1", scored.map(|s| s.f1)),
        value("roc_auc", roc_auc),
    ]
}

/// A regressor's metrics.
pub fn regressor_metrics(labels: &[f64], predicted: &[f64]) -> Vec<MetricValue> {
    vec![
        value("mae", regression::mae(labels, predicted)),
        value("rmse", regression::rmse(labels, predicted)),
        value("mape", regression::mape(labels, predicted)),
        value("r2", regression::r2(labels, predicted)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(values: &[MetricValue], metric: &str) -> Option<f64> {
        values
            .iter()
            .find(|v| v.metric == metric)
            .and_then(|v| v.value)
    }

    #[test]
    fn binary_metrics_are_of_the_larger_class() {
        // sklearn: accuracy 0.6, precision 2/3, recall 2/3, f1 2/3, roc_auc 5/6.
        let labels = [1, 0, 1, 0, 1];
        let predicted = [1, 1, 0, 0, 1];
        let score1 = [0.9, 0.6, 0.4, 0.1, 0.8];
        let score0: Vec<f64> = score1.iter().map(|s| 1.0 - s).collect();
        let m = classifier_metrics(&[0, 1], &labels, &predicted, &[&score0, &score1]);
        assert_eq!(get(&m, "accuracy"), Some(0.6));
        assert!((get(&m, "precision").unwrap() - 2.0 / 3.0).abs() < 1e-15);
        assert!((get(&m, "f1").unwrap() - 2.0 / 3.0).abs() < 1e-15);
        assert!((get(&m, "roc_auc").unwrap() - 5.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn undefined_metrics_are_none() {
        let m = classifier_metrics(&[0, 1], &[], &[], &[]);
        assert!(m.iter().all(|v| v.value.is_none()), "{m:?}");
        // One class among the labels: no ROC AUC; no scores: none either.
        let m = classifier_metrics(&[0, 1], &[1, 1], &[1, 0], &[]);
        assert_eq!(get(&m, "roc_auc"), None);
        assert_eq!(get(&m, "accuracy"), Some(0.5));
        let m = regressor_metrics(&[1.0, 2.0], &[1.0, 3.0]);
        assert_eq!(get(&m, "mae"), Some(0.5));
    }
}
