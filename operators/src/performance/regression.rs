//! Regression metrics as scikit-learn defines them (`mean_absolute_error`,
//! `root_mean_squared_error`, `mean_absolute_percentage_error`, `r2_score`). Each is None
//! without pairs.

pub fn mae(labels: &[f64], predicted: &[f64]) -> Option<f64> {
    mean(
        labels.iter().zip(predicted).map(|(l, p)| (l - p).abs()),
        labels.len(),
    )
}

pub fn rmse(labels: &[f64], predicted: &[f64]) -> Option<f64> {
    mean(
        labels.iter().zip(predicted).map(|(l, p)| (l - p).powi(2)),
        labels.len(),
    )
    .map(f64::sqrt)
}

/// Relative to the label, whose magnitude is floored at the machine epsilon as scikit-learn
/// does: a label of 0 gives a huge term, not an infinite one.
pub fn mape(labels: &[f64], predicted: &[f64]) -> Option<f64> {
    mean(
        (labels.iter().zip(predicted)).map(|(l, p)| (l - p).abs() / l.abs().max(f64::EPSILON)),
        labels.len(),
    )
}

/// 1 − SS_res / SS_tot. With constant labels (SS_tot = 0) it is 1 for a perfect fit and 0
/// otherwise (scikit-learn's `force_finite=True`).
pub fn r2(labels: &[f64], predicted: &[f64]) -> Option<f64> {
    let average = mean(labels.iter().copied(), labels.len())?;
    let residual: f64 = labels
        .iter()
        .zip(predicted)
        .map(|(l, p)| (l - p).powi(2))
        .sum();
    let total: f64 = labels.iter().map(|l| (l - average).powi(2)).sum();
    Some(match (total == 0.0, residual == 0.0) {
        (false, _) => 1.0 - residual / total,
        (true, true) => 1.0,
        (true, false) => 0.0,
    })
}

fn mean(values: impl Iterator<Item = f64>, n: usize) -> Option<f64> {
    (n > 0).then(|| values.sum::<f64>() / n as f64)
}
