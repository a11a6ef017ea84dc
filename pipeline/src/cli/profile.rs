//! `driftline profile`: builds the drift reference profile offline from a sample file, with the
//! same decoder and model as the stream, so the profile covers every feature and every output.
//! Without a model (`model.path` empty) it covers the features alone, for drift without a model.
//! Input: JSONL (one event per line), CSV (a header row; numbers as numbers) or Parquet (columns
//! by name). CSV and Parquet rows become JSON events for the same decoder as the stream, so one
//! set of rules decides what is valid.
//!
//! When the events carry labels (`performance.label_field`) and the model is a classifier, the
//! profile also holds CBPE fitted on the labeled events (its calibration, reference
//! performance and thresholds), for `driftline batch` to estimate performance without labels.
use std::path::Path;
use std::sync::Arc;

use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::profile::{ProfileBuilder, ReferenceProfile};
use driftline_operators::infer::{load_runtime, InferenceModel};

use crate::cli::input::read_events;
use crate::cli::performance::{label_of, LabeledReference};
use crate::config::Settings;
use crate::stages::drift::tracker::drift_columns;

const BATCH_ROWS: usize = 4096;

/// What a profile run read.
pub struct ProfileRun {
    pub profile: ReferenceProfile,
    pub rejected: u64,
}

pub fn build_profile(settings: &Settings, input: &Path) -> anyhow::Result<ProfileRun> {
    let mut model = match settings.has_model() {
        true => {
            let runtime = load_runtime(&settings.onnxruntime_library())?;
            Some(InferenceModel::load(
                &runtime,
                &settings.model_options(),
                &settings.schema,
            )?)
        }
        false => None,
    };
    let events = read_events(input)?.into_iter().map(|(_, e)| e);
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let mut batch = BatchBuilder::new(&settings.schema, BATCH_ROWS);
    let mut profile = ProfileBuilder::new(settings.drift.reference_sample, settings.drift.bins, 1);
    let topic: Arc<str> = Arc::from(input.display().to_string());
    let mut rejected = 0u64;
    let mut labeled = LabeledReference::default();
    let mut labels: Vec<Option<f64>> = Vec::new();
    let field = settings.performance.label_field.clone();
    let mut flush = |batch: &mut BatchBuilder,
                     profile: &mut ProfileBuilder,
                     labels: &mut Vec<Option<f64>>|
     -> anyhow::Result<()> {
        let scored = batch.finish()?;
        let outputs = match &mut model {
            Some(model) => model.run(&scored.batch)?,
            None => Vec::new(),
        };
        profile.add(&drift_columns(&scored.batch, &outputs))?;
        if !outputs.is_empty() {
            labeled.add(&outputs, labels);
        }
        labels.clear();
        Ok(())
    };
    for (line, event) in events.enumerate() {
        match decoder.decode(&event, Some(0)) {
            Ok(row) => {
                batch.push(row, SourcePosition::offline(&topic, line as i64, 0));
                labels.push(label_of(&event, &field));
            }
            Err(e) => {
                rejected += 1;
                tracing::warn!(line = line + 1, error = %e, "profile: event skipped");
            }
        }
        if batch.len() >= BATCH_ROWS {
            flush(&mut batch, &mut profile, &mut labels)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut profile, &mut labels)?;
    }
    let mut profile = profile.finish()?;
    if let Some(cbpe) = labeled.fit_estimator(settings)? {
        tracing::info!(
            labeled = labeled.labeled(),
            classes = cbpe.classes.len(),
            "profile: performance estimation fitted on the labeled events"
        );
        profile = profile.with_performance(cbpe);
    }
    if labeled.skipped > 0 {
        tracing::warn!(
            skipped = labeled.skipped,
            "profile: labels not used for performance estimation (not a class, or the model is not a classifier)"
        );
    }
    Ok(ProfileRun { profile, rejected })
}
