//! Loading the model, checked, at startup and on reload.
//!
//! A model is checked before it may serve: its inputs against the schema (in
//! [`InferenceModel::load`]), one smoke inference on a synthetic event, and, on reload, the same
//! outputs (names and element types) as the model it replaces, because the encoder and the drift
//! monitors were built for those. A reload builds the new session off the hot path (on the thread
//! that asked for it: SIGHUP, the file watcher or `POST /admin/reload`) and leaves it for the
//! inference stage to swap in between two batches. A failed reload changes nothing: the old model
//! keeps serving, and the failure is logged and counted.
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::infer::{load_runtime, InferError, InferenceModel, OutputInfo};
use driftline_operators::schema::{EventSchema, FeatureType};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::metrics::PipelineMetrics;

/// Which model is serving: on every prediction (name, version), in metrics and in logs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ModelIdentity {
    pub name: String,
    pub version: String,
    /// Of the file's bytes, hex: tells two files with the same version apart.
    pub sha256: String,
    pub execution_provider: &'static str,
}

/// A model that passed its checks, with who it is.
pub struct CheckedModel {
    pub model: InferenceModel,
    pub identity: ModelIdentity,
}

/// Loads `settings.model` and checks it; `previous` (on reload) are the outputs it must match.
pub fn load_checked(
    settings: &Settings,
    previous: Option<&[OutputInfo]>,
) -> anyhow::Result<CheckedModel> {
    let path = &settings.model.path;
    let bytes = std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let runtime = load_runtime(&settings.onnxruntime_library())?;
    let mut model = InferenceModel::load(&runtime, &settings.model_options(), &settings.schema)
        .map_err(|e| match e {
            // Load errors name the file already; a signature mismatch does not.
            InferError::Signature(_) => {
                anyhow::Error::new(e).context(format!("model {}", path.display()))
            }
            e => e.into(),
        })?;
    if let Some(previous) = previous {
        check_same_outputs(previous, model.outputs())?;
    }
    smoke_test(&mut model, &settings.schema)
        .with_context(|| format!("smoke inference with model {}", path.display()))?;
    let version = match settings.model.version.as_str() {
        "" => model
            .metadata_version()
            .unwrap_or_else(|| "unversioned".into()),
        v => v.to_string(),
    };
    let identity = ModelIdentity {
        name: settings.model.name.clone(),
        version,
        sha256,
        execution_provider: model.provider(),
    };
    Ok(CheckedModel { model, identity })
}

fn check_same_outputs(previous: &[OutputInfo], new: &[OutputInfo]) -> anyhow::Result<()> {
    let describe = |outputs: &[OutputInfo]| {
        outputs
            .iter()
            .map(|o| format!("{}: {:?}", o.name, o.element))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = previous.len() == new.len()
        && previous
            .iter()
            .zip(new)
            .all(|(a, b)| a.name == b.name && a.element == b.element);
    if !same {
        bail!(
            "the new model's outputs [{}] differ from the serving model's [{}]; a model with other outputs needs a restart",
            describe(new),
            describe(previous)
        );
    }
    Ok(())
}

/// One synthetic event (zeros, `false`, an empty category) through the model: a model that
/// loads but cannot run fails here, not on the first real batch.
fn smoke_test(model: &mut InferenceModel, schema: &EventSchema) -> anyhow::Result<()> {
    let mut event = serde_json::Map::new();
    event.insert(schema.id_field.clone(), "driftline-smoke-test".into());
    event.insert(schema.timestamp_field.clone(), 0.into());
    for f in &schema.features {
        let value = match f.kind {
            FeatureType::Bool => serde_json::Value::Bool(false),
            FeatureType::Category => "".into(),
            _ => 0.into(),
        };
        event.insert(f.name.clone(), value);
    }
    let payload = serde_json::to_vec(&event)?;
    let mut decoder = EventDecoder::new(schema, payload.len());
    let row = decoder.decode(&payload, Some(0))?;
    let mut builder = BatchBuilder::new(schema, 1);
    let topic: Arc<str> = Arc::from("driftline-smoke-test");
    builder.push(row, SourcePosition::offline(&topic, 0, 0));
    let batch = builder.finish()?;
    let outputs = model.run(&batch.batch)?;
    for (name, column) in &outputs {
        if column.len() != 1 {
            bail!("output {name} has {} rows for 1 input row", column.len());
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reloads of the serving model, asked for by SIGHUP, the file watcher or the admin endpoint.
pub struct ModelReloader {
    settings: Settings,
    outputs: Vec<OutputInfo>,
    metrics: Arc<PipelineMetrics>,
    /// A checked model waiting for the inference stage; `has_pending` lets the stage look without
    /// taking the lock on every batch.
    pending: Mutex<Option<CheckedModel>>,
    has_pending: AtomicBool,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl ModelReloader {
    pub fn new(settings: Settings, serving: &CheckedModel, metrics: Arc<PipelineMetrics>) -> Self {
        ModelReloader {
            settings,
            outputs: serving.model.outputs().to_vec(),
            metrics,
            pending: Mutex::new(None),
            has_pending: AtomicBool::new(false),
            reloading: Mutex::new(()),
        }
    }

    /// Loads and checks the model file again; on success it is swapped in before the next batch.
    /// On failure the serving model stays, and the error is logged, counted and returned.
    pub fn reload(&self, cause: &str) -> Result<ModelIdentity, String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        match load_checked(&self.settings, Some(&self.outputs)) {
            Ok(checked) => {
                let identity = checked.identity.clone();
                tracing::info!(cause, version = %identity.version, sha256 = %identity.sha256, "model reloaded; swapping it in before the next batch");
                *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(checked);
                self.has_pending.store(true, Ordering::Release);
                PipelineMetrics::add(&self.metrics.model_reloads, 1);
                Ok(identity)
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(cause, error = %message, "model reload failed; the serving model stays");
                PipelineMetrics::add(&self.metrics.model_reload_failures, 1);
                Err(message)
            }
        }
    }

    /// The reloaded model, if one is waiting (called by the inference stage between batches).
    pub fn take(&self) -> Option<CheckedModel> {
        if !self.has_pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Watches the model file every `interval` and reloads when its modification time or size
    /// changes, until `stop` is set. Writers should replace the file atomically (write, then
    /// rename); a half-written file fails its checks and is retried at the next change.
    pub fn watch(self: &Arc<Self>, interval: std::time::Duration, stop: Arc<AtomicBool>) {
        let reloader = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("driftline-model-watch".into())
            .spawn(move || {
                let path = reloader.settings.model.path.clone();
                let mut last = file_stamp(&path);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let now = file_stamp(&path);
                    if now != last && now.is_some() {
                        last = now;
                        let _ = reloader.reload("model file changed");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the model file watcher");
        }
    }
}

fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
