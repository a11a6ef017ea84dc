//! `driftline profile`: builds the drift reference profile offline from a sample file, with the
//! same decoder and model as the stream, so the profile covers every feature and every output.
//! Input: JSONL (one event per line) or CSV (a header row; numbers as numbers).
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::drift::profile::{ProfileBuilder, ReferenceProfile};
use driftline_operators::infer::{load_runtime, InferenceModel, ModelOptions};

use crate::config::Settings;
use crate::drift_cli::split_csv;
use crate::drift_stage::drift_columns;

const BATCH_ROWS: usize = 4096;

/// What a profile run read.
pub struct ProfileRun {
    pub profile: ReferenceProfile,
    pub rejected: u64,
}

pub fn build_profile(settings: &Settings, input: &Path) -> anyhow::Result<ProfileRun> {
    let runtime = load_runtime(&settings.onnxruntime_library())?;
    let options = ModelOptions {
        path: settings.model.path.clone(),
        provider: settings.provider(),
        intra_threads: settings.runtime.intra_threads,
        inputs: settings.input_bindings(),
    };
    let mut model = InferenceModel::load(&runtime, &options, &settings.schema)?;
    let text =
        std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let events: Box<dyn Iterator<Item = Vec<u8>>> = if input.extension().is_some_and(|e| e == "csv")
    {
        Box::new(csv_as_json(&text).into_iter())
    } else {
        Box::new(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| l.as_bytes().to_vec()),
        )
    };
    let mut decoder = EventDecoder::new(&settings.schema, settings.pipeline.max_event_bytes);
    let mut batch = BatchBuilder::new(&settings.schema, BATCH_ROWS);
    let mut profile = ProfileBuilder::new(settings.drift.reference_sample, settings.drift.bins, 1);
    let topic: Arc<str> = Arc::from(input.display().to_string());
    let mut rejected = 0u64;
    let mut flush =
        |batch: &mut BatchBuilder, profile: &mut ProfileBuilder| -> anyhow::Result<()> {
            let scored = batch.finish()?;
            let outputs = model.run(&scored.batch)?;
            profile.add(&drift_columns(&scored.batch, &outputs))?;
            Ok(())
        };
    for (line, event) in events.enumerate() {
        match decoder.decode(&event, Some(0)) {
            Ok(row) => batch.push(
                row,
                SourcePosition {
                    topic: &topic,
                    partition: 0,
                    offset: line as i64,
                    key: None,
                    kafka_timestamp_ms: 0,
                },
            ),
            Err(e) => {
                rejected += 1;
                tracing::warn!(line = line + 1, error = %e, "profile: event skipped");
            }
        }
        if batch.len() >= BATCH_ROWS {
            flush(&mut batch, &mut profile)?;
        }
    }
    if !batch.is_empty() {
        flush(&mut batch, &mut profile)?;
    }
    Ok(ProfileRun {
        profile: profile.finish()?,
        rejected,
    })
}

/// CSV rows as JSON objects keyed by the header; values that parse as numbers become numbers.
fn csv_as_json(text: &str) -> Vec<Vec<u8>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines
        .next()
        .map(|h| h.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    lines
        .map(|line| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(split_csv(line))
                .map(|(k, v)| {
                    let v = v.trim();
                    // Numbers as JSON numbers, so numeric features decode; the rest as strings.
                    let value = match v.parse::<i64>() {
                        Ok(i) => serde_json::Value::from(i),
                        Err(_) => v
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map_or_else(|| serde_json::Value::from(v), serde_json::Value::Number),
                    };
                    (k.clone(), value)
                })
                .collect();
            serde_json::to_vec(&object).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_events_with_numbers_as_numbers() {
        let events = csv_as_json("device_id,ts,temperature,site\nd1,17,21.5,\"a,b\"\n\nd2,18,x,c\n");
        let parsed: Vec<serde_json::Value> = events.iter().map(|e| serde_json::from_slice(e).expect("json")).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0], serde_json::json!({"device_id": "d1", "ts": 17, "temperature": 21.5, "site": "a,b"}));
        assert_eq!(parsed[1]["temperature"], "x", "a non-number stays a string, and the decoder will reject it");
    }
}
