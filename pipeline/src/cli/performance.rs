//! Performance in the offline commands. `driftline profile` over events that carry labels fits
//! CBPE into the profile ([`fit_estimator`]); `driftline batch` measures each window
//! ([`BatchPerformance`]) into `OUTPUT.performance.jsonl`: the realized metrics of the labeled
//! predictions, and CBPE's estimates when the profile holds an estimator. A label is the
//! number (or boolean) in the event's `performance.label_field`.
use std::io::Write;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::performance::cbpe::{Cbpe, Outputs};
use driftline_operators::performance::outputs::Predictions;
use driftline_operators::performance::windows::{
    PerformanceReport, PerformanceWindows, WindowShape,
};

use crate::config::{Settings, WindowKind};

/// The label an event carries, if any: a number, or a boolean as 0 and 1.
pub fn label_of(event: &[u8], field: &str) -> Option<f64> {
    let value: serde_json::Value = serde_json::from_slice(event).ok()?;
    match value.get(field)? {
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        v => v.as_f64(),
    }
}

fn shape(settings: &Settings) -> WindowShape {
    let p = &settings.performance;
    match p.window {
        WindowKind::Count => WindowShape::Count {
            events: p.window_events,
        },
        WindowKind::Time => WindowShape::Time { ms: p.window_ms },
    }
}

/// A batch's event times: the decoded timestamp column (the second).
fn event_times(batch: &RecordBatch) -> &[i64] {
    batch.column(1).as_primitive::<Int64Type>().values()
}

/// `driftline batch`'s performance windows, fed batch by batch.
pub struct BatchPerformance {
    windows: PerformanceWindows,
    field: String,
    /// The labels of the rows in the open batch, in row order.
    open_labels: Vec<Option<f64>>,
    reports: Vec<PerformanceReport>,
    labeled_events: u64,
    has_estimator: bool,
}

impl BatchPerformance {
    pub fn new(settings: &Settings, estimator: Option<Cbpe>) -> Self {
        BatchPerformance {
            has_estimator: estimator.is_some(),
            windows: PerformanceWindows::new(
                shape(settings),
                estimator,
                settings.performance.max_open_windows,
            ),
            field: settings.performance.label_field.clone(),
            open_labels: Vec::new(),
            reports: Vec::new(),
            labeled_events: 0,
        }
    }

    /// A valid event joined the open batch.
    pub fn row(&mut self, event: &[u8]) {
        let label = label_of(event, &self.field);
        self.labeled_events += u64::from(label.is_some());
        self.open_labels.push(label);
    }

    /// The open batch was scored.
    pub fn scored(&mut self, batch: &RecordBatch, outputs: &[(String, ArrayRef)]) {
        let labels = std::mem::take(&mut self.open_labels);
        let Some(predictions) = Predictions::read(outputs) else {
            return;
        };
        let (_, early) = self.windows.push(&predictions, event_times(batch), &labels);
        self.reports.extend(early);
    }

    /// Closes every window and writes the reports to `path`, when there is anything to measure
    /// (labels in the input, or an estimator in the profile). Returns the reports written.
    pub fn finish(mut self, path: &Path) -> anyhow::Result<Option<u64>> {
        self.reports.extend(self.windows.finish());
        if self.labeled_events == 0 && !self.has_estimator {
            return Ok(None);
        }
        let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
        for report in &self.reports {
            serde_json::to_writer(&mut file, report)?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
        Ok(Some(self.reports.len() as u64))
    }
}

/// What `driftline profile` gathers to fit CBPE: the labeled rows' predicted class, scores and
/// label.
#[derive(Default)]
pub struct LabeledReference {
    predicted: Vec<i64>,
    scores: Vec<Vec<f64>>,
    labels: Vec<i64>,
    /// Rows with a label that is not a whole number, or a model that is not a classifier.
    pub skipped: u64,
}

impl LabeledReference {
    /// One scored batch with each row's label.
    pub fn add(&mut self, outputs: &[(String, ArrayRef)], labels: &[Option<f64>]) {
        let Some(Predictions::Classifier { predicted, scores }) = Predictions::read(outputs) else {
            self.skipped += labels.iter().flatten().count() as u64;
            return;
        };
        self.scores.resize_with(scores.len(), Vec::new);
        for (row, label) in labels.iter().enumerate() {
            match label {
                Some(l) if l.fract() == 0.0 && l.is_finite() => {
                    self.labels.push(*l as i64);
                    self.predicted.push(predicted[row]);
                    for (column, source) in self.scores.iter_mut().zip(&scores) {
                        column.push(source[row]);
                    }
                }
                Some(_) => self.skipped += 1,
                None => {}
            }
        }
    }

    /// CBPE fitted on the labeled rows (classes 0..K-1 of the K score columns), chunked like
    /// the performance windows; None without labeled rows. An error says why it cannot be.
    pub fn fit_estimator(&self, settings: &Settings) -> anyhow::Result<Option<Cbpe>> {
        if self.labels.is_empty() {
            return Ok(None);
        }
        let k = self.scores.len();
        if k < 2 {
            anyhow::bail!("performance estimation needs the model's class scores (an output of one column per class)");
        }
        let classes: Vec<i64> = (0..k as i64).collect();
        let scores: Vec<&[f64]> = match k {
            2 => vec![&self.scores[1]],
            _ => self.scores.iter().map(Vec::as_slice).collect(),
        };
        let outputs = Outputs {
            predicted: &self.predicted,
            scores,
        };
        let chunk = settings.performance.window_events as usize;
        Cbpe::fit(&classes, &self.labels, &outputs, chunk)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("fitting performance estimation: {e}"))
    }

    pub fn labeled(&self) -> usize {
        self.labels.len()
    }
}
