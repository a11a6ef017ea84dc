//! `driftline batch`: the stream's operators (decode, batch, infer, encode, drift) over a file,
//! for backfills and offline scoring. Input: JSONL, CSV or Parquet (as `driftline profile`
//! reads them). Output: one prediction per line, the same JSON as the output topic; beside it,
//! `<output>.rejected.jsonl` (one line per rejected event: its record number, reason, field,
//! detail and payload), and with drift on, `<output>.drift.jsonl` and `<output>.alerts.jsonl`
//! (the reports and alerts the stream would publish), and with a model whose events carry labels
//! (`performance.label_field`) or whose profile holds an estimator, `<output>.performance.jsonl`
//! (per window, realized metrics and CBPE's estimates: `cli/performance.rs`). An event without a timestamp takes the
//! time of the run, as one without a Kafka timestamp would. Without a model (drift on,
//! `model.path` empty) nothing is scored: no predictions file, only the side files.
//!
//! A run that scores nothing, or rejects more than `--max-rejected` of its events, is a failure
//! (exit 1) with the summary and the commonest reasons: a misspelt feature name or a wrong
//! `id_field` rejects every event, and must not look like success.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arrow_array::{ArrayRef, RecordBatch};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::monitor::{DriftOutcome, Finish};
use driftline_operators::encode::PredictionEncoder;
use driftline_operators::infer::InferenceModel;

use crate::cli::input::read_events;
use crate::cli::performance::BatchPerformance;
use crate::cli::progress::Progress;
use crate::clock::now_ms;
use crate::config::Settings;
use crate::models::identity::ModelIdentity;
use crate::models::load::load_checked;
use crate::stages::drift::tracker::{load_profile, DriftTracker};
use crate::stages::messages::DriftInput;

/// What a batch run did.
#[derive(Debug, serde::Serialize)]
pub struct BatchOutcome {
    pub events: u64,
    pub predictions: u64,
    pub rejected: u64,
    /// `rejected / events` (0 for an empty input).
    pub rejected_share: f64,
    /// The most that may be rejected before the run fails (`--max-rejected`).
    pub max_rejected: f64,
    /// Rejections by reason and field, e.g. `missing_field temperature`.
    pub rejected_by: BTreeMap<String, u64>,
    pub drift_reports: u64,
    pub drift_alerts: u64,
    /// Performance windows written (None: nothing to measure: no labels, no estimator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performance_reports: Option<u64>,
    /// Why there is no drift output although drift is on (the warm-up never finished).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drift_note: Option<String>,
    /// `None`: no model; drift watched the features alone.
    pub model: Option<ModelIdentity>,
    /// Every file written: predictions (with a model), rejected events, drift reports, alerts.
    pub files: Vec<PathBuf>,
    /// Where the rejected events are (one of `files`).
    #[serde(skip)]
    rejects_file: PathBuf,
}

/// The files written beside `output`.
fn beside(output: &Path, suffix: &str) -> PathBuf {
    let mut name = output.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn create(path: &Path) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).with_context(|| format!("creating {}", path.display()))?,
    ))
}

/// Writers for the drift side files, with their counts.
struct DriftFiles {
    tracker: DriftTracker,
    reports: BufWriter<File>,
    alerts: BufWriter<File>,
    n_reports: u64,
    n_alerts: u64,
}

impl DriftFiles {
    fn write(&mut self, outcome: DriftOutcome) -> anyhow::Result<()> {
        for report in &outcome.reports {
            serde_json::to_writer(&mut self.reports, report)?;
            self.reports.write_all(b"\n")?;
            self.n_reports += 1;
        }
        for alert in &outcome.alerts {
            serde_json::to_writer(&mut self.alerts, alert)?;
            self.alerts.write_all(b"\n")?;
            self.n_alerts += 1;
        }
        Ok(())
    }
}

/// The model, its encoder and the predictions file: what scoring needs, absent without a model.
struct Predictions {
    model: InferenceModel,
    encoder: PredictionEncoder,
    file: BufWriter<File>,
    payload: Vec<u8>,
}

impl Predictions {
    /// Scores `batch` and writes one prediction per row; returns the outputs for drift.
    fn write(&mut self, batch: &RecordBatch, processing_ms: i64) -> anyhow::Result<Outputs> {
        let outputs = self.model.run(batch).context("inference")?;
        for row in 0..batch.num_rows() {
            (self.encoder).encode_row(batch, &outputs, row, processing_ms, &mut self.payload);
            self.file.write_all(&self.payload)?;
            self.file.write_all(b"\n")?;
        }
        Ok(outputs)
    }
}

type Outputs = Vec<(String, ArrayRef)>;

/// Everything one run holds between batches.
struct Scorer {
    predictions: Option<Predictions>,
    /// The one model batch mode scores with (canaries and shadows are for streams); empty
    /// without a model.
    identities: Arc<[Arc<ModelIdentity>]>,
    drift: Option<DriftFiles>,
    /// With a model: performance per window.
    performance: Option<BatchPerformance>,
    /// Valid events: scored with a model, watched by drift without one.
    n_valid: u64,
}

impl Scorer {
    fn flush(&mut self, builder: &mut BatchBuilder) -> anyhow::Result<()> {
        if builder.is_empty() {
            return Ok(());
        }
        let scored = builder.finish()?;
        let processing_ms = now_ms();
        let outputs = match &mut self.predictions {
            Some(p) => p.write(&scored.batch, processing_ms)?,
            None => Vec::new(),
        };
        if let Some(performance) = &mut self.performance {
            performance.scored(&scored.batch, &outputs);
        }
        self.n_valid += scored.num_rows() as u64;
        if let Some(drift) = &mut self.drift {
            let input = DriftInput {
                partitions: Vec::new(),
                offsets: scored.sources.offsets.clone(),
                batch: scored.batch,
                outputs,
                variant_of_row: None,
                variants: Arc::clone(&self.identities),
                shadow: None,
            };
            let outcome = drift.tracker.observe(&input, processing_ms)?;
            drift.write(outcome)?;
        }
        Ok(())
    }
}

impl BatchOutcome {
    /// Whether the run may count as a success: it scored something and rejected no more than
    /// `max_rejected` of its events.
    pub fn check(&self, input: &Path) -> anyhow::Result<()> {
        let rejects = self.rejects_file.display();
        let mut reasons: Vec<(&String, &u64)> = self.rejected_by.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        let commonest = reasons
            .iter()
            .take(3)
            .map(|(reason, n)| format!("{reason} ({n})"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.events == 0 {
            bail!("{} holds no events", input.display());
        }
        if self.rejected == self.events {
            let what = match self.model {
                Some(_) => "scored",
                None => "valid",
            };
            bail!(
                "no event was {what}: {} of {} rejected, by {commonest} (each is in {rejects})",
                self.rejected,
                self.events
            );
        }
        if self.rejected_share > self.max_rejected {
            bail!(
                "{} of {} events rejected ({:.1}%), more than --max-rejected {} allows: by {commonest} (each is in {rejects})",
                self.rejected,
                self.events,
                self.rejected_share * 100.0,
                self.max_rejected
            );
        }
        Ok(())
    }
}

/// Scores `input` into `output`; see the module's doc. `max_rejected` is a share, 0 to 1.
pub fn run(
    settings: &Settings,
    input: &Path,
    output: &Path,
    max_rejected: f64,
) -> anyhow::Result<BatchOutcome> {
    if !(0.0..=1.0).contains(&max_rejected) {
        bail!("--max-rejected is a share of the events, from 0 to 1; got {max_rejected}");
    }
    // Without a model there is nothing to score; drift (when on) watches the features alone.
    let checked = match (settings.has_model(), settings.drift.enabled) {
        (false, true) => None,
        _ => Some(load_checked(settings, None)?),
    };
    let identity = checked.as_ref().map(|c| c.identity.clone());
    let events = read_events(input)?;
    let mut files = Vec::new();
    let predictions = match checked {
        Some(checked) => {
            let id = &checked.identity;
            files.push(output.to_path_buf());
            Some(Predictions {
                encoder: PredictionEncoder::new(&id.name, &id.version, &id.sha256),
                model: checked.model,
                file: create(output)?,
                payload: Vec::with_capacity(512),
            })
        }
        None => None,
    };
    let rejects_file = beside(output, ".rejected.jsonl");
    files.push(rejects_file.clone());
    let drift = match settings.drift.enabled {
        true => {
            let (reports, alerts) = (
                beside(output, ".drift.jsonl"),
                beside(output, ".alerts.jsonl"),
            );
            let drift = DriftFiles {
                tracker: DriftTracker::new(settings)?,
                reports: create(&reports)?,
                alerts: create(&alerts)?,
                n_reports: 0,
                n_alerts: 0,
            };
            files.extend([reports, alerts]);
            Some(drift)
        }
        false => None,
    };
    // The estimator comes with a profile fitted on labeled events.
    let estimator = match settings.drift.profile.is_empty() {
        true => None,
        false => load_profile(Path::new(&settings.drift.profile))?.performance,
    };
    let performance = predictions
        .as_ref()
        .map(|_| BatchPerformance::new(settings, estimator));
    let mut scorer = Scorer {
        predictions,
        performance,
        identities: identity.iter().map(|id| Arc::new(id.clone())).collect(),
        drift,
        n_valid: 0,
    };
    let mut rejects = create(&rejects_file)?;
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let max_rows = settings.batch.max_rows;
    let mut builder = BatchBuilder::new(&settings.schema, max_rows);
    let topic: Arc<str> = Arc::from(input.display().to_string());
    let started_ms = now_ms();
    let mut rejected = 0u64;
    let mut rejected_by: BTreeMap<String, u64> = BTreeMap::new();
    let mut progress = Progress::new(events.len() as u64);
    for (i, (record, event)) in events.iter().enumerate() {
        match decoder.decode(event, Some(started_ms)) {
            Ok(row) => {
                builder.push(
                    row,
                    SourcePosition::offline(&topic, *record as i64, started_ms),
                );
                if let Some(performance) = &mut scorer.performance {
                    performance.row(event);
                }
            }
            Err(e) => {
                rejected += 1;
                let cause = match &e.field {
                    Some(field) => format!("{} {field}", e.reason.as_str()),
                    None => e.reason.as_str().to_string(),
                };
                *rejected_by.entry(cause).or_default() += 1;
                let line = serde_json::json!({
                    "record": record,
                    "reason": e.reason.as_str(),
                    "field": e.field,
                    "detail": e.detail,
                    "payload": String::from_utf8_lossy(event),
                });
                serde_json::to_writer(&mut rejects, &line)?;
                rejects.write_all(b"\n")?;
            }
        }
        if builder.len() >= max_rows {
            scorer.flush(&mut builder)?;
        }
        progress.update(i as u64 + 1);
    }
    scorer.flush(&mut builder)?;
    progress.finish();
    if let Some(p) = &mut scorer.predictions {
        p.file.flush()?;
    }
    rejects.flush()?;
    let performance_file = beside(output, ".performance.jsonl");
    let performance_reports = match scorer.performance.take() {
        Some(p) => p.finish(&performance_file)?,
        None => None,
    };
    if performance_reports.is_some() {
        files.push(performance_file);
    }
    let mut drift_note = None;
    let (drift_reports, drift_alerts) = match &mut scorer.drift {
        Some(d) => {
            // The end of the input closes every open window (the last time pane too).
            let outcome = d.tracker.finish(Finish::EndOfInput)?;
            d.write(outcome)?;
            if let Some((seen, needed)) = d.tracker.warming_up() {
                let note = format!(
                    "no drift output: the reference is learned from the first {needed} events \
                     (drift.warmup_events) and the input had {seen}; give drift.profile or \
                     lower drift.warmup_events"
                );
                tracing::warn!("{note}");
                drift_note = Some(note);
            }
            d.reports.flush()?;
            d.alerts.flush()?;
            (d.n_reports, d.n_alerts)
        }
        None => (0, 0),
    };
    Ok(BatchOutcome {
        events: events.len() as u64,
        predictions: match scorer.predictions {
            Some(_) => scorer.n_valid,
            None => 0,
        },
        rejected,
        rejected_share: match events.len() {
            0 => 0.0,
            n => rejected as f64 / n as f64,
        },
        max_rejected,
        rejected_by,
        drift_reports,
        drift_alerts,
        performance_reports,
        drift_note,
        model: identity,
        files,
        rejects_file,
    })
}
