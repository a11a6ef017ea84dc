//! `driftline validate --model M --labeled FILE --metric accuracy|auc|rmse --min X
//! [--baseline CURRENT --max-drop D]`: the check a CI/CD pipeline runs before it deploys a model.
//! Both models score the same labeled file through the stream's decoder and batching; the
//! candidate passes when its metric clears the threshold and, with a baseline, does not fall
//! behind the serving model by more than the margin. For rmse lower is better: `--max` instead
//! of `--min`, and the margin is how much higher it may be.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::performance::{classification, regression};

use crate::cli::input::read_events;
use crate::config::Settings;
use crate::models::identity::ModelIdentity;
use crate::models::load::load_checked;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GateMetric {
    Accuracy,
    Auc,
    Rmse,
}

impl GateMetric {
    pub fn parse(name: &str) -> anyhow::Result<GateMetric> {
        Ok(match name {
            "accuracy" => GateMetric::Accuracy,
            "auc" => GateMetric::Auc,
            "rmse" => GateMetric::Rmse,
            other => bail!("--metric must be accuracy, auc or rmse, not {other:?}"),
        })
    }

    fn higher_is_better(self) -> bool {
        self != GateMetric::Rmse
    }
}

pub struct GateRequest {
    pub model: PathBuf,
    pub labeled: PathBuf,
    pub metric: GateMetric,
    /// The bound: a minimum for accuracy and auc, a maximum for rmse.
    pub bound: Option<f64>,
    pub baseline: Option<PathBuf>,
    pub max_drop: Option<f64>,
    pub label_field: String,
    /// Which output to score, `name` or `name[k]`; default: see [`default_output`].
    pub output: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Score {
    pub value: f64,
    pub events: usize,
    pub model: ModelIdentity,
}

#[derive(Debug, serde::Serialize)]
pub struct GateReport {
    pub metric: GateMetric,
    pub output: String,
    pub candidate: Score,
    pub baseline: Option<Score>,
    pub passed: bool,
    /// Why it failed, one line each.
    pub failures: Vec<String>,
}

pub fn run(settings: &Settings, request: &GateRequest) -> anyhow::Result<GateReport> {
    let candidate = score(settings, &request.model, request)?;
    let baseline = match &request.baseline {
        Some(path) => Some(score(settings, path, request)?),
        None => None,
    };
    let (candidate, output) = candidate;
    let higher = request.metric.higher_is_better();
    let mut failures = Vec::new();
    if let Some(bound) = request.bound {
        let ok = if higher {
            candidate.value >= bound
        } else {
            candidate.value <= bound
        };
        if !ok {
            let word = if higher {
                "below the minimum"
            } else {
                "above the maximum"
            };
            failures.push(format!(
                "{:?} {} is {word} {bound}",
                request.metric, candidate.value
            ));
        }
    }
    if let (Some((base, _)), Some(margin)) = (&baseline, request.max_drop) {
        let worse_by = if higher {
            base.value - candidate.value
        } else {
            candidate.value - base.value
        };
        if worse_by > margin {
            failures.push(format!(
                "{:?} {} is {worse_by} worse than the baseline's {} (allowed: {margin})",
                request.metric, candidate.value, base.value
            ));
        }
    }
    Ok(GateReport {
        metric: request.metric,
        output,
        candidate,
        baseline: baseline.map(|(s, _)| s),
        passed: failures.is_empty(),
        failures,
    })
}

/// Scores one model over the labeled file: (the score, the output column scored).
fn score(
    settings: &Settings,
    model: &Path,
    request: &GateRequest,
) -> anyhow::Result<(Score, String)> {
    let mut settings = settings.clone();
    settings.model.path = model.to_path_buf();
    // The gate compares files: each is named by its own metadata, not the serving config.
    settings.model.version = String::new();
    let mut checked = load_checked(&settings, None)?;
    let events = read_events(&request.labeled)?;
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let max_rows = settings.batch.max_rows;
    let mut builder = BatchBuilder::new(&settings.schema, max_rows);
    let topic: Arc<str> = Arc::from("labeled");
    let mut labels = Vec::with_capacity(events.len());
    // Scored in batches of batch.max_rows, as the stream does: a large holdout file must not
    // become one tensor. The output to score is chosen from the first batch's outputs.
    let mut output: Option<String> = request.output.clone();
    let mut predictions = Vec::with_capacity(events.len());
    let mut score_batch = |builder: &mut BatchBuilder| -> anyhow::Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let batch = builder.finish()?;
        let outputs = checked.model.run(&batch.batch).context("inference")?;
        let name = match &output {
            Some(name) => name.clone(),
            None => default_output(request.metric, &outputs)?,
        };
        predictions.extend(column_values(&outputs, &name)?);
        output = Some(name);
        Ok(())
    };
    for (record, event) in &events {
        let label = serde_json::from_slice::<serde_json::Value>(event)
            .ok()
            .and_then(|v| {
                v.get(&request.label_field)
                    .and_then(serde_json::Value::as_f64)
            });
        let Some(label) = label else {
            tracing::warn!(record, field = %request.label_field, "labeled file: no numeric label; skipped");
            continue;
        };
        match decoder.decode(event, Some(0)) {
            Ok(row) => {
                builder.push(row, SourcePosition::offline(&topic, *record as i64, 0));
                labels.push(label);
            }
            Err(e) => tracing::warn!(record, error = %e, "labeled file: event skipped"),
        }
        if builder.len() >= max_rows {
            score_batch(&mut builder)?;
        }
    }
    score_batch(&mut builder)?;
    if labels.is_empty() {
        bail!(
            "{}: no labeled event could be scored",
            request.labeled.display()
        );
    }
    let output = output.unwrap_or_default();
    let value = match request.metric {
        GateMetric::Accuracy => accuracy(&predictions, &labels)?,
        GateMetric::Auc => auc(&predictions, &labels)?,
        GateMetric::Rmse => rmse(&predictions, &labels)?,
    };
    Ok((
        Score {
            value,
            events: labels.len(),
            model: checked.identity,
        },
        output,
    ))
}

/// accuracy: the first integer output (a class label); auc: the positive-class column of the
/// first `[N, 2]` float output, else the first `[N]` float output; rmse: the first `[N]`
/// float output.
fn default_output(metric: GateMetric, outputs: &[(String, ArrayRef)]) -> anyhow::Result<String> {
    let is_int = |a: &ArrayRef| matches!(a.data_type(), DataType::Int64 | DataType::Int32);
    let is_float = |a: &ArrayRef| matches!(a.data_type(), DataType::Float32 | DataType::Float64);
    let pair = |a: &ArrayRef| matches!(a.data_type(), DataType::FixedSizeList(_, 2));
    let found = match metric {
        GateMetric::Accuracy => outputs
            .iter()
            .find(|(_, a)| is_int(a))
            .map(|(n, _)| n.clone()),
        GateMetric::Auc => outputs
            .iter()
            .find(|(_, a)| pair(a))
            .map(|(n, _)| format!("{n}[1]"))
            .or_else(|| {
                outputs
                    .iter()
                    .find(|(_, a)| is_float(a))
                    .map(|(n, _)| n.clone())
            }),
        GateMetric::Rmse => outputs
            .iter()
            .find(|(_, a)| is_float(a))
            .map(|(n, _)| n.clone()),
    };
    found.with_context(|| format!("no output suits {metric:?} by default: name one with --output"))
}

/// An output column (`name`, or `name[k]` for a column of an `[N, K]` output) as f64.
fn column_values(outputs: &[(String, ArrayRef)], spec: &str) -> anyhow::Result<Vec<f64>> {
    let (name, index) = match spec.strip_suffix(']').and_then(|s| s.split_once('[')) {
        Some((name, k)) => (name, Some(k.parse::<usize>().context("output index")?)),
        None => (spec, None),
    };
    let (_, array) = outputs
        .iter()
        .find(|(n, _)| n == name)
        .with_context(|| format!("the model has no output `{name}`"))?;
    let (values, width): (ArrayRef, usize) = match array.data_type() {
        DataType::FixedSizeList(_, k) => {
            let list = array.as_fixed_size_list();
            (list.values().clone(), *k as usize)
        }
        _ => (array.clone(), 1),
    };
    let k = index.unwrap_or(0);
    if k >= width {
        bail!("output `{name}` has {width} column(s); {spec} is out of range");
    }
    if width > 1 && index.is_none() {
        bail!("output `{name}` has {width} columns: name one, e.g. {name}[1]");
    }
    let flat: Vec<f64> = match values.data_type() {
        DataType::Float32 => values
            .as_primitive::<Float32Type>()
            .values()
            .iter()
            .map(|v| *v as f64)
            .collect(),
        DataType::Float64 => values.as_primitive::<Float64Type>().values().to_vec(),
        DataType::Int64 => values
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .map(|v| *v as f64)
            .collect(),
        DataType::Int32 => values
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|v| *v as f64)
            .collect(),
        other => bail!("output `{name}` is {other}, not a number"),
    };
    Ok(flat.iter().skip(k).step_by(width).copied().collect())
}

/// The share of predictions equal to their label; both must be whole numbers (classes).
fn accuracy(predicted: &[f64], labels: &[f64]) -> anyhow::Result<f64> {
    let classes = |values: &[f64]| -> anyhow::Result<Vec<i64>> {
        (values.iter())
            .map(|&v| match v.fract() == 0.0 {
                true => Ok(v as i64),
                false => bail!("accuracy needs whole-number classes, not {v}"),
            })
            .collect()
    };
    classification::accuracy(&classes(labels)?, &classes(predicted)?)
        .context("accuracy needs labeled events")
}

fn rmse(predicted: &[f64], labels: &[f64]) -> anyhow::Result<f64> {
    regression::rmse(labels, predicted).context("rmse needs labeled events")
}

/// ROC AUC of the positive-class scores (scikit-learn's `roc_auc_score`). Labels must be 0 or
/// 1, both present.
fn auc(scores: &[f64], labels: &[f64]) -> anyhow::Result<f64> {
    if labels.iter().any(|l| *l != 0.0 && *l != 1.0) {
        bail!("auc needs labels 0 and 1");
    }
    let positive: Vec<bool> = labels.iter().map(|l| *l == 1.0).collect();
    classification::roc_auc(&positive, scores).context("auc needs both classes in the labeled file")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computed_values_with_ties() {
        // Perfect, inverted, and scikit-learn's documented example (0.75).
        assert_eq!(
            auc(&[0.1, 0.2, 0.8, 0.9], &[0.0, 0.0, 1.0, 1.0]).unwrap(),
            1.0
        );
        assert_eq!(
            auc(&[0.9, 0.8, 0.2, 0.1], &[0.0, 0.0, 1.0, 1.0]).unwrap(),
            0.0
        );
        assert_eq!(
            auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]).unwrap(),
            0.75
        );
        // All tied: 0.5.
        assert_eq!(auc(&[0.5; 4], &[0.0, 1.0, 0.0, 1.0]).unwrap(), 0.5);
        assert!(auc(&[0.5, 0.6], &[1.0, 1.0]).is_err());
    }

    #[test]
    fn accuracy_and_rmse() {
        assert_eq!(
            accuracy(&[1.0, 0.0, 1.0, 1.0], &[1.0, 0.0, 0.0, 1.0]).unwrap(),
            0.75
        );
        assert!(accuracy(&[0.5], &[1.0]).is_err());
        assert!((rmse(&[1.0, 2.0], &[0.0, 0.0]).unwrap() - (2.5f64).sqrt()).abs() < 1e-12);
    }
}
