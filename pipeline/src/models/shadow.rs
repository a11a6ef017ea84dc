//! How far a shadow model agrees with the serving one, event by event.
//!
//! Label agreement compares the first integer or string output (a class label) the two models
//! share; the score difference is the mean absolute difference over every value of the first
//! float output they share (a probability, a regression value, an anomaly score; all elements of
//! an `[N, K]` or ZipMap output). Sums are kept, not ratios, so batches and windows add up.
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// Comparison counts over some events; add them up, then read the ratios.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Agreement {
    pub events: u64,
    pub labels_compared: u64,
    pub labels_agreed: u64,
    pub scores_compared: u64,
    pub score_abs_diff_sum: f64,
}

impl Agreement {
    pub fn add(&mut self, other: &Agreement) {
        self.events += other.events;
        self.labels_compared += other.labels_compared;
        self.labels_agreed += other.labels_agreed;
        self.scores_compared += other.scores_compared;
        self.score_abs_diff_sum += other.score_abs_diff_sum;
    }

    /// Share of compared labels that agree; `None` before any label was compared.
    pub fn label_agreement(&self) -> Option<f64> {
        (self.labels_compared > 0).then(|| self.labels_agreed as f64 / self.labels_compared as f64)
    }

    /// Mean absolute score difference; `None` before any score was compared.
    pub fn score_mean_abs_diff(&self) -> Option<f64> {
        (self.scores_compared > 0).then(|| self.score_abs_diff_sum / self.scores_compared as f64)
    }
}

/// Compares the serving outputs with the shadow's, row by row.
pub fn compare(serving: &[(String, ArrayRef)], shadow: &[(String, ArrayRef)]) -> Agreement {
    let rows = serving.first().map_or(0, |(_, a)| a.len());
    let mut agreement = Agreement {
        events: rows as u64,
        ..Agreement::default()
    };
    let shared = serving.iter().filter_map(|(name, a)| {
        let (_, b) = shadow.iter().find(|(n, _)| n == name)?;
        (a.data_type() == b.data_type() && a.len() == b.len()).then_some((a, b))
    });
    let mut label_done = false;
    let mut score_done = false;
    for (a, b) in shared {
        if !label_done && is_label(a.data_type()) {
            label_done = true;
            for row in 0..rows {
                if a.is_valid(row) && b.is_valid(row) {
                    agreement.labels_compared += 1;
                    agreement.labels_agreed += u64::from(same_label(a, b, row));
                }
            }
        } else if !score_done {
            if let (Some(x), Some(y)) = (float_values(a), float_values(b)) {
                score_done = true;
                for (x, y) in x.iter().zip(&y) {
                    if x.is_finite() && y.is_finite() {
                        agreement.scores_compared += 1;
                        agreement.score_abs_diff_sum += (x - y).abs();
                    }
                }
            }
        }
    }
    agreement
}

fn is_label(t: &DataType) -> bool {
    matches!(t, DataType::Int64 | DataType::Int32 | DataType::Utf8)
}

fn same_label(a: &ArrayRef, b: &ArrayRef, row: usize) -> bool {
    match a.data_type() {
        DataType::Int64 => {
            a.as_primitive::<Int64Type>().value(row) == b.as_primitive::<Int64Type>().value(row)
        }
        DataType::Int32 => {
            a.as_primitive::<Int32Type>().value(row) == b.as_primitive::<Int32Type>().value(row)
        }
        _ => a.as_string::<i32>().value(row) == b.as_string::<i32>().value(row),
    }
}

/// Every value of a float output, row-major (NaN where null); `None` for other types.
fn float_values(a: &ArrayRef) -> Option<Vec<f64>> {
    let scalar = |a: &dyn Array| -> Option<Vec<f64>> {
        let nan_if_null = |valid: bool, v: f64| if valid { v } else { f64::NAN };
        match a.data_type() {
            DataType::Float32 => {
                let p = a.as_primitive::<Float32Type>();
                Some(
                    (0..p.len())
                        .map(|i| nan_if_null(p.is_valid(i), p.value(i) as f64))
                        .collect(),
                )
            }
            DataType::Float64 => {
                let p = a.as_primitive::<Float64Type>();
                Some(
                    (0..p.len())
                        .map(|i| nan_if_null(p.is_valid(i), p.value(i)))
                        .collect(),
                )
            }
            _ => None,
        }
    };
    match a.data_type() {
        DataType::FixedSizeList(_, _) => scalar(a.as_fixed_size_list().values().as_ref()),
        DataType::Struct(_) => {
            let s = a.as_struct();
            let columns: Vec<Vec<f64>> = s
                .columns()
                .iter()
                .map(|c| scalar(c.as_ref()))
                .collect::<Option<_>>()?;
            let mut values = Vec::with_capacity(s.len() * columns.len());
            for row in 0..s.len() {
                values.extend(columns.iter().map(|c| c[row]));
            }
            Some(values)
        }
        _ => scalar(a.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{FixedSizeListArray, Float32Array, Int64Array};
    use arrow_schema::Field;
    use std::sync::Arc;

    fn outputs(labels: Vec<i64>, probs: Vec<f32>) -> Vec<(String, ArrayRef)> {
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        let list = FixedSizeListArray::try_new(field, 2, Arc::new(Float32Array::from(probs)), None)
            .expect("list");
        vec![
            ("label".into(), Arc::new(Int64Array::from(labels))),
            ("probabilities".into(), Arc::new(list)),
        ]
    }

    #[test]
    fn counts_label_agreement_and_score_differences() {
        let serving = outputs(vec![1, 0, 1], vec![0.2, 0.8, 0.9, 0.1, 0.4, 0.6]);
        let shadow = outputs(vec![1, 1, 1], vec![0.3, 0.7, 0.4, 0.6, 0.4, 0.6]);
        let a = compare(&serving, &shadow);
        assert_eq!((a.events, a.labels_compared, a.labels_agreed), (3, 3, 2));
        assert_eq!(a.scores_compared, 6);
        // |Δ| per value: 0.1, 0.1, 0.5, 0.5, 0, 0 → mean 1.2 / 6.
        assert!((a.score_mean_abs_diff().expect("scores") - 0.2).abs() < 1e-6);
        assert!((a.label_agreement().expect("labels") - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn identical_models_agree_fully_and_unshared_outputs_are_skipped() {
        let serving = outputs(vec![0, 1], vec![0.5, 0.5, 0.1, 0.9]);
        let a = compare(&serving, &serving);
        assert_eq!(a.label_agreement(), Some(1.0));
        assert_eq!(a.score_mean_abs_diff(), Some(0.0));
        let renamed: Vec<(String, ArrayRef)> = serving
            .iter()
            .map(|(n, c)| (format!("other_{n}"), Arc::clone(c)))
            .collect();
        let none = compare(&serving, &renamed);
        assert_eq!((none.labels_compared, none.scores_compared), (0, 0));
        assert_eq!(none.label_agreement(), None);
    }
}
