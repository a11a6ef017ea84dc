//! Loading models, checked, at startup and on reload.
//!
//! A model is checked before it may serve: its inputs against the schema (in
//! [`InferenceModel::load`]), one smoke inference on a synthetic event, and, on reload, the same
//! outputs (names and element types) as the model it replaces, because the encoder and the drift
//! monitors were built for those. A reload reads the `--config` file's `[model]` section again,
//! builds every session (serving model, canary variants, shadow) off the hot path (on the thread
//! that asked for it: SIGHUP, the file watcher or `POST /admin/reload`) and leaves the new set for
//! the inference stage to swap in between two batches. A failed reload changes nothing: the old
//! models keep serving, and the failure is logged and counted.
use std::path::{Path, PathBuf};
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
use crate::model_set::ServingModels;

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
    /// The Arrow types of its outputs in the smoke inference (a ZipMap output's type names its
    /// classes): models whose predictions share one column must agree on these.
    pub output_types: Vec<arrow_schema::DataType>,
}

/// Which model file to load, under which name and version (empty: from the model's metadata).
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec<'a> {
    pub path: &'a Path,
    pub name: &'a str,
    pub version: &'a str,
}

impl<'a> ModelSpec<'a> {
    /// The `[model]` section's own model: the serving model.
    pub fn serving(settings: &'a Settings) -> Self {
        ModelSpec {
            path: &settings.model.path,
            name: &settings.model.name,
            version: &settings.model.version,
        }
    }
}

/// Loads `settings.model` and checks it; `previous` (on reload) are the outputs it must match.
pub fn load_checked(
    settings: &Settings,
    previous: Option<&[OutputInfo]>,
) -> anyhow::Result<CheckedModel> {
    load_checked_spec(settings, ModelSpec::serving(settings), previous)
}

/// Loads one model file with the settings' schema, inputs and runtime, and checks it.
pub fn load_checked_spec(
    settings: &Settings,
    spec: ModelSpec<'_>,
    previous: Option<&[OutputInfo]>,
) -> anyhow::Result<CheckedModel> {
    let path = spec.path;
    let bytes = std::fs::read(path).with_context(|| format!("reading model {}", path.display()))?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let runtime = load_runtime(&settings.onnxruntime_library())?;
    let mut options = settings.model_options();
    options.path = path.to_path_buf();
    let mut model =
        InferenceModel::load(&runtime, &options, &settings.schema).map_err(|e| match e {
            // Load errors name the file already; a signature mismatch does not.
            InferError::Signature(_) => {
                anyhow::Error::new(e).context(format!("model {}", path.display()))
            }
            e => e.into(),
        })?;
    if let Some(previous) = previous {
        check_same_outputs(previous, model.outputs())?;
    }
    let output_types = smoke_test(&mut model, &settings.schema)
        .with_context(|| format!("smoke inference with model {}", path.display()))?;
    let version = match spec.version {
        "" => model
            .metadata_version()
            .unwrap_or_else(|| "unversioned".into()),
        v => v.to_string(),
    };
    let identity = ModelIdentity {
        name: spec.name.to_string(),
        version,
        sha256,
        execution_provider: model.provider(),
    };
    Ok(CheckedModel {
        model,
        identity,
        output_types,
    })
}

pub fn check_same_outputs(previous: &[OutputInfo], new: &[OutputInfo]) -> anyhow::Result<()> {
    let describe = |outputs: &[OutputInfo]| {
        outputs
            .iter()
            .map(|o| match o.map_key {
                Some(key) => format!("{}: seq(map({key:?}, {:?}))", o.name, o.element),
                None => format!("{}: {:?}", o.name, o.element),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if previous != new {
        bail!(
            "the model's outputs [{}] differ from the serving model's [{}]; a model with other outputs needs a restart",
            describe(new),
            describe(previous)
        );
    }
    Ok(())
}

/// One synthetic event (zeros, `false`, an empty category) through the model: a model that
/// loads but cannot run fails here, not on the first real batch. Returns the outputs' types.
fn smoke_test(
    model: &mut InferenceModel,
    schema: &EventSchema,
) -> anyhow::Result<Vec<arrow_schema::DataType>> {
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
    Ok(outputs.iter().map(|(_, c)| c.data_type().clone()).collect())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reloads of the serving models, asked for by SIGHUP, the file watcher or the admin endpoint.
pub struct ModelReloader {
    /// The settings the serving models were loaded with (their `[model]` replaced at each
    /// successful reload).
    settings: Mutex<Settings>,
    outputs: Vec<OutputInfo>,
    metrics: Arc<PipelineMetrics>,
    /// A checked model set waiting for the inference stage; `has_pending` lets the stage look
    /// without taking the lock on every batch.
    pending: Mutex<Option<ServingModels>>,
    has_pending: AtomicBool,
    /// One reload at a time.
    reloading: Mutex<()>,
}

impl ModelReloader {
    pub fn new(settings: Settings, serving: &ServingModels, metrics: Arc<PipelineMetrics>) -> Self {
        ModelReloader {
            settings: Mutex::new(settings),
            outputs: serving.outputs().to_vec(),
            metrics,
            pending: Mutex::new(None),
            has_pending: AtomicBool::new(false),
            reloading: Mutex::new(()),
        }
    }

    /// The settings to reload with: the serving ones, with the `[model]` section read again from
    /// the `--config` file (under the startup's environment overrides) when there is one.
    fn settings_for_reload(&self) -> anyhow::Result<Settings> {
        let mut settings = self.lock_settings().clone();
        if let Some(file) = settings.source_file.clone() {
            let fresh = Settings::load_with_env(Some(&file), settings.source_env.clone())
                .with_context(|| format!("reading {} again", file.display()))?;
            settings.model = fresh.model;
        }
        Ok(settings)
    }

    fn lock_settings(&self) -> std::sync::MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads and checks the model files again; on success they are swapped in before the next
    /// batch. On failure the serving models stay, and the error is logged, counted and returned.
    /// Returns the new serving model's identity.
    pub fn reload(&self, cause: &str) -> Result<ModelIdentity, String> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = self.settings_for_reload().and_then(|settings| {
            let models = ServingModels::load(&settings, Some(&self.outputs))?;
            Ok((settings, models))
        });
        match loaded {
            Ok((settings, models)) => {
                let identity = models.serving_identity().as_ref().clone();
                tracing::info!(cause, version = %identity.version, sha256 = %identity.sha256, models = %models.describe(), "models reloaded; swapping them in before the next batch");
                *self.lock_settings() = settings;
                *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Some(models);
                self.has_pending.store(true, Ordering::Release);
                PipelineMetrics::add(&self.metrics.model_reloads, 1);
                Ok(identity)
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::error!(cause, error = %message, "model reload failed; the serving models stay");
                PipelineMetrics::add(&self.metrics.model_reload_failures, 1);
                Err(message)
            }
        }
    }

    /// The reloaded models, if a set is waiting (called by the inference stage between batches).
    pub fn take(&self) -> Option<ServingModels> {
        if !self.has_pending.swap(false, Ordering::Acquire) {
            return None;
        }
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Every model file of the current settings: the serving model's, the variants', the shadow's.
    fn watched_paths(&self) -> Vec<PathBuf> {
        let settings = self.lock_settings();
        let m = &settings.model;
        let mut paths = vec![m.path.clone()];
        paths.extend(m.variants.iter().map(|v| v.path.clone()));
        if !m.shadow.path.as_os_str().is_empty() {
            paths.push(m.shadow.path.clone());
        }
        paths
    }

    /// Watches the model files every `interval` and reloads when a modification time or size
    /// changes, until `stop` is set. Writers should replace a file atomically (write, then
    /// rename); a half-written file fails its checks and is retried at the next change.
    pub fn watch(self: &Arc<Self>, interval: std::time::Duration, stop: Arc<AtomicBool>) {
        let reloader = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("driftline-model-watch".into())
            .spawn(move || {
                let stamps =
                    |paths: &[PathBuf]| -> Vec<_> { paths.iter().map(|p| file_stamp(p)).collect() };
                let mut paths = reloader.watched_paths();
                let mut last = stamps(&paths);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let now = stamps(&paths);
                    if now != last && now.iter().all(Option::is_some) {
                        let _ = reloader.reload("model file changed");
                        // A reload may have changed which files serve.
                        paths = reloader.watched_paths();
                        last = stamps(&paths);
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
