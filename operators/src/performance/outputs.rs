//! What a model's outputs say for performance, read from the outputs as ONNX Runtime returns
//! them: a classifier's predicted class and class scores, or a regressor's predicted value.
//!
//! - A classifier has an integer output: the predicted class, as the scikit-learn, LightGBM and
//!   XGBoost converters write it. Its scores are the first float output of K ≥ 2 columns, the
//!   probability of each class; the classes are 0..K-1 in column order (the converters' order
//!   for integer labels). Without such an output there are no scores: no ROC AUC, no estimate.
//! - A regressor has no integer output; its prediction is the first float output of one column.
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// A batch's predictions, column by column.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    Classifier {
        predicted: Vec<i64>,
        /// One column per class (classes 0..K-1); empty when the model gives no scores.
        scores: Vec<Vec<f64>>,
    },
    Regressor {
        predicted: Vec<f64>,
    },
}

impl Predictions {
    /// Reads the outputs of one batch; None when they hold neither kind.
    pub fn read(outputs: &[(String, ArrayRef)]) -> Option<Predictions> {
        let class = outputs
            .iter()
            .find(|(_, a)| matches!(a.data_type(), DataType::Int64 | DataType::Int32));
        match class {
            Some((_, array)) => Some(Predictions::Classifier {
                predicted: integers(array)?,
                scores: outputs
                    .iter()
                    .find_map(|(_, a)| class_columns(a))
                    .unwrap_or_default(),
            }),
            None => outputs.iter().find_map(|(_, a)| {
                let predicted = match a.data_type() {
                    DataType::FixedSizeList(_, 1) => floats(a.as_fixed_size_list().values())?,
                    _ => floats(a)?,
                };
                Some(Predictions::Regressor { predicted })
            }),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Predictions::Classifier { predicted, .. } => predicted.len(),
            Predictions::Regressor { predicted } => predicted.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The predictions of the given rows, in that order.
    pub fn select(&self, rows: &[usize]) -> Predictions {
        let pick = |column: &[f64]| rows.iter().map(|&r| column[r]).collect();
        match self {
            Predictions::Classifier { predicted, scores } => Predictions::Classifier {
                predicted: rows.iter().map(|&r| predicted[r]).collect(),
                scores: scores.iter().map(|c| pick(c)).collect(),
            },
            Predictions::Regressor { predicted } => Predictions::Regressor {
                predicted: pick(predicted),
            },
        }
    }
}

fn integers(array: &ArrayRef) -> Option<Vec<i64>> {
    match array.data_type() {
        DataType::Int64 => Some(array.as_primitive::<Int64Type>().values().to_vec()),
        DataType::Int32 => Some(
            (array.as_primitive::<Int32Type>().values().iter())
                .map(|&v| v as i64)
                .collect(),
        ),
        _ => None,
    }
}

/// A float array as f64 (f32 widened exactly).
fn floats(array: &ArrayRef) -> Option<Vec<f64>> {
    match array.data_type() {
        DataType::Float64 => Some(array.as_primitive::<Float64Type>().values().to_vec()),
        DataType::Float32 => Some(
            (array.as_primitive::<Float32Type>().values().iter())
                .map(|&v| v as f64)
                .collect(),
        ),
        _ => None,
    }
}

/// The K ≥ 2 columns of an `[N, K]` float output, one vector per column.
fn class_columns(array: &ArrayRef) -> Option<Vec<Vec<f64>>> {
    let DataType::FixedSizeList(_, k) = array.data_type() else {
        return None;
    };
    let k = *k as usize;
    if k < 2 {
        return None;
    }
    let list = array.as_fixed_size_list();
    let flat = floats(list.values())?;
    let offset = list.offset() * k;
    let rows = list.len();
    Some(
        (0..k)
            .map(|c| (0..rows).map(|r| flat[offset + r * k + c]).collect())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{FixedSizeListArray, Float32Array, Float64Array, Int64Array};
    use arrow_schema::Field;

    use super::*;

    fn pairs(values: Vec<f32>) -> ArrayRef {
        let field = Arc::new(Field::new("item", DataType::Float32, false));
        Arc::new(
            FixedSizeListArray::try_new(field, 2, Arc::new(Float32Array::from(values)), None)
                .expect("list"),
        )
    }

    #[test]
    fn a_classifier_is_its_integer_output_and_its_probability_columns() {
        let outputs = vec![
            (
                "label".to_string(),
                Arc::new(Int64Array::from(vec![1, 0])) as ArrayRef,
            ),
            (
                "probabilities".to_string(),
                pairs(vec![0.25, 0.75, 0.5, 0.5]),
            ),
        ];
        assert_eq!(
            Predictions::read(&outputs),
            Some(Predictions::Classifier {
                predicted: vec![1, 0],
                scores: vec![vec![0.25, 0.5], vec![0.75, 0.5]],
            })
        );
    }

    #[test]
    fn a_regressor_is_its_float_output() {
        let outputs = vec![(
            "variable".to_string(),
            Arc::new(Float64Array::from(vec![1.5, -2.0])) as ArrayRef,
        )];
        assert_eq!(
            Predictions::read(&outputs),
            Some(Predictions::Regressor {
                predicted: vec![1.5, -2.0]
            })
        );
        assert_eq!(Predictions::read(&[]), None);
    }
}
