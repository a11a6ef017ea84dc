//! CBPE, confidence-based performance estimation, as NannyML 0.13.1 defines it: a classifier's
//! performance estimated from its calibrated scores while labels have not arrived.
//! [`Cbpe::fit`] learns from a labeled reference (whether to calibrate and how, the sampling
//! error's spreads, the alert thresholds); [`Cbpe::estimate`] gives a chunk's estimates with
//! their sampling-error band and alert flag. Definitions and the checks behind them:
//! docs/research/nannyml-cbpe-0.13.1.md. Where NannyML's numpy sort orders ties by CPU,
//! this one keeps row order (a stable sort), which moves estimates by a few millionths.
mod calibration;
mod estimate;
mod isotonic;
mod random;
mod sampling_error;

use serde::{Deserialize, Serialize};

pub use calibration::Calibrator;
pub use sampling_error::Component;

use crate::performance::classification::{self, accuracy};
use sampling_error::{accuracy_component, binary_error, class_components, multiclass_error};

/// The metrics CBPE estimates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    RocAuc,
    F1,
    Precision,
    Recall,
    Accuracy,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::RocAuc,
        Metric::F1,
        Metric::Precision,
        Metric::Recall,
        Metric::Accuracy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::RocAuc => "roc_auc",
            Metric::F1 => "f1",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::Accuracy => "accuracy",
        }
    }
}

/// A classifier's outputs over rows: the predicted class and the score columns. Binary models
/// give one column, the score of the larger class; multiclass models one per class, in the
/// order of the sorted classes.
pub struct Outputs<'a> {
    pub predicted: &'a [i64],
    pub scores: Vec<&'a [f64]>,
}

impl Outputs<'_> {
    pub fn len(&self) -> usize {
        self.predicted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.predicted.is_empty()
    }
}

/// What a fitted metric keeps: its sampling-error spreads (one per class for multiclass), its
/// alert thresholds, and its realized value over the whole reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedMetric {
    pub metric: Metric,
    pub components: Vec<Component>,
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    pub reference: Option<f64>,
}

/// A fitted CBPE, as stored in a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cbpe {
    /// The classes, ascending: two for a binary model (the score is the second's).
    pub classes: Vec<i64>,
    /// One per score column.
    pub calibrators: Vec<Calibrator>,
    pub metrics: Vec<FittedMetric>,
    /// Rows per reference chunk, for the thresholds.
    pub chunk_size: usize,
}

/// One metric's estimate for a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub metric: Metric,
    /// None where it is undefined (ROC AUC of a chunk that expects one class only).
    pub value: Option<f64>,
    pub sampling_error: f64,
    /// value ± 3 sampling errors, within [0, 1].
    pub lower_bound: Option<f64>,
    pub upper_bound: Option<f64>,
    pub lower_threshold: Option<f64>,
    pub upper_threshold: Option<f64>,
    /// The estimate is outside the thresholds.
    pub alert: bool,
}

/// The width of the band, in sampling errors (NannyML's `SAMPLING_ERROR_RANGE`).
const BAND: f64 = 3.0;

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Cbpe {
    /// Fits on a labeled reference, in time order, chunked by `chunk_size` rows for the
    /// thresholds (a remainder is a chunk of its own, as NannyML keeps it).
    pub fn fit(
        classes: &[i64],
        labels: &[i64],
        outputs: &Outputs<'_>,
        chunk_size: usize,
    ) -> Result<Cbpe, String> {
        let mut classes = classes.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let binary = classes.len() == 2;
        let columns = if binary { 1 } else { classes.len() };
        if classes.len() < 2 {
            return Err("performance estimation needs at least two classes".into());
        }
        if outputs.scores.len() != columns {
            return Err(format!(
                "{} classes need {columns} score column(s), not {}",
                classes.len(),
                outputs.scores.len()
            ));
        }
        if labels.len() != outputs.len() || outputs.is_empty() || chunk_size == 0 {
            return Err("the reference needs labeled rows and a chunk size".into());
        }
        if let Some(l) = labels.iter().find(|l| !classes.contains(l)) {
            return Err(format!("label {l} is not one of the classes {classes:?}"));
        }
        // One-vs-rest views: the score column of each class, with its labels and predictions.
        let column_classes: Vec<i64> = if binary {
            vec![classes[1]]
        } else {
            classes.clone()
        };
        let mut calibrators = Vec::new();
        let mut per_class = Vec::new();
        for (c, &class) in column_classes.iter().enumerate() {
            let positive: Vec<bool> = labels.iter().map(|&l| l == class).collect();
            let predicted: Vec<bool> = outputs.predicted.iter().map(|&p| p == class).collect();
            calibrators.push(Calibrator::fit(&positive, outputs.scores[c]));
            per_class.push(class_components(
                &positive,
                &predicted,
                outputs.scores[c],
                binary,
            ));
        }
        let chunks: Vec<(usize, usize)> = (0..labels.len())
            .step_by(chunk_size)
            .map(|start| (start, (start + chunk_size).min(labels.len())))
            .collect();
        let metrics = Metric::ALL
            .iter()
            .map(|&metric| {
                let components = match metric {
                    Metric::Accuracy => vec![accuracy_component(labels, outputs.predicted)],
                    Metric::RocAuc => per_class.iter().map(|c| c.roc_auc.clone()).collect(),
                    Metric::F1 => per_class.iter().map(|c| c.f1.clone()).collect(),
                    Metric::Precision => per_class.iter().map(|c| c.precision.clone()).collect(),
                    Metric::Recall => per_class.iter().map(|c| c.recall.clone()).collect(),
                };
                let realized: Vec<f64> = (chunks.iter())
                    .map(|&(a, b)| {
                        let view = Outputs {
                            predicted: &outputs.predicted[a..b],
                            scores: outputs.scores.iter().map(|s| &s[a..b]).collect(),
                        };
                        reference_value(metric, &classes, &labels[a..b], &view)
                    })
                    .collect();
                let (lower_threshold, upper_threshold) = thresholds(&realized);
                FittedMetric {
                    metric,
                    components,
                    lower_threshold,
                    upper_threshold,
                    reference: finite(reference_value(metric, &classes, labels, outputs)),
                }
            })
            .collect();
        Ok(Cbpe {
            classes,
            calibrators,
            metrics,
            chunk_size,
        })
    }

    /// Every metric's estimate for one chunk of outputs (no labels needed).
    pub fn estimate(&self, outputs: &Outputs<'_>) -> Vec<Estimate> {
        let n = outputs.len();
        let binary = self.classes.len() == 2;
        let values: Vec<(Metric, f64)> = if n == 0 {
            Metric::ALL.iter().map(|&m| (m, f64::NAN)).collect()
        } else if binary {
            let raw = outputs.scores[0];
            let p: Vec<f64> = raw
                .iter()
                .map(|&s| self.calibrators[0].calibrate(s))
                .collect();
            let predicted: Vec<i64> = (outputs.predicted.iter())
                .map(|&c| match c {
                    c if c == self.classes[1] => 1,
                    c if c == self.classes[0] => 0,
                    _ => -1,
                })
                .collect();
            let e = estimate::binary(&predicted, &p);
            vec![
                (Metric::RocAuc, estimate::roc_auc(&p, raw)),
                (Metric::F1, e.f1),
                (Metric::Precision, e.precision),
                (Metric::Recall, e.recall),
                (Metric::Accuracy, e.accuracy),
            ]
        } else {
            let calibrated = calibration::calibrate_multiclass(&self.calibrators, &outputs.scores);
            let e = estimate::multiclass(
                &self.classes,
                outputs.predicted,
                &calibrated,
                &outputs.scores,
            );
            vec![
                (Metric::RocAuc, e.roc_auc),
                (Metric::F1, e.f1),
                (Metric::Precision, e.precision),
                (Metric::Recall, e.recall),
                (Metric::Accuracy, e.accuracy),
            ]
        };
        (values.into_iter())
            .map(|(metric, value)| {
                let fitted = self.fitted(metric);
                let sampling_error = match (metric, binary) {
                    (Metric::Accuracy, _) => fitted.components[0].spread / (n as f64).sqrt(),
                    (_, true) => binary_error(&fitted.components[0], n),
                    (Metric::RocAuc, false) => multiclass_error(&fitted.components, n, 1.2),
                    (_, false) => multiclass_error(&fitted.components, n, 1.0),
                };
                let value = finite(value);
                let band =
                    |sign: f64| value.map(|v| (v + sign * BAND * sampling_error).clamp(0.0, 1.0));
                let alert = value.is_some_and(|v| {
                    fitted.lower_threshold.is_some_and(|t| v < t)
                        || fitted.upper_threshold.is_some_and(|t| v > t)
                });
                Estimate {
                    metric,
                    value,
                    sampling_error,
                    lower_bound: band(-1.0),
                    upper_bound: band(1.0),
                    lower_threshold: fitted.lower_threshold,
                    upper_threshold: fitted.upper_threshold,
                    alert,
                }
            })
            .collect()
    }

    fn fitted(&self, metric: Metric) -> &FittedMetric {
        (self.metrics.iter())
            .find(|m| m.metric == metric)
            .expect("every metric is fitted")
    }
}

/// A realized metric as NannyML computes it on reference chunks for its thresholds: from the
/// raw scores and the predictions; precision, recall and F1 (and multiclass accuracy)
/// undefined (NaN) when the labels or the predictions hold one class only, multiclass ROC AUC
/// unless every class occurs among the labels.
fn reference_value(metric: Metric, classes: &[i64], labels: &[i64], outputs: &Outputs<'_>) -> f64 {
    let distinct = |values: &[i64]| {
        let mut v = values.to_vec();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    let one_class = distinct(labels) <= 1 || distinct(outputs.predicted) <= 1;
    let binary = classes.len() == 2;
    let value = match metric {
        Metric::RocAuc if binary => {
            let positive: Vec<bool> = labels.iter().map(|&l| l == classes[1]).collect();
            classification::roc_auc(&positive, outputs.scores[0])
        }
        Metric::RocAuc => {
            let mut present = labels.to_vec();
            present.sort_unstable();
            present.dedup();
            (present == classes)
                .then(|| classification::roc_auc_ovr_macro(labels, classes, &outputs.scores))
                .flatten()
        }
        Metric::Accuracy if binary => accuracy(labels, outputs.predicted),
        _ if one_class => None,
        Metric::Accuracy => accuracy(labels, outputs.predicted),
        _ => {
            let scores = match binary {
                true => classification::class_scores(labels, outputs.predicted, classes[1]),
                false => classification::macro_scores_over(labels, outputs.predicted, classes),
            };
            Some(match metric {
                Metric::F1 => scores.f1,
                Metric::Precision => scores.precision,
                _ => scores.recall,
            })
        }
    };
    value.unwrap_or(f64::NAN)
}

/// The reference chunks' mean ± 3 standard deviations (NaNs left out), within [0, 1].
fn thresholds(values: &[f64]) -> (Option<f64>, Option<f64>) {
    let defined: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if defined.is_empty() {
        return (None, None);
    }
    let n = defined.len() as f64;
    let mean = defined.iter().sum::<f64>() / n;
    let std = (defined.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    let (lower, upper) = (mean - 3.0 * std, mean + 3.0 * std);
    (Some(lower.max(0.0)), Some(upper.min(1.0)))
}

#[cfg(test)]
mod nannyml_tests;
