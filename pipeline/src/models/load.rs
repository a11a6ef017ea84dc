//! Loading models, checked, at startup and on reload.
//!
//! A model is checked before it may serve: its inputs against the schema (in
//! [`InferenceModel::load`]), one smoke inference on a synthetic event, and, on reload, the same
//! outputs (names and element types) as the model it replaces, because the encoder and the drift
//! monitors were built for those.
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::infer::{load_runtime, InferError, InferenceModel, OutputInfo};
use driftline_operators::schema::{EventSchema, FeatureType};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::models::identity::ModelIdentity;

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
    require_model_path(path)?;
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
    for warning in model.precision_warnings(&settings.schema) {
        tracing::warn!(model = %path.display(), "{warning}");
    }
    let output_types = smoke_test(&mut model, &settings.schema)
        .with_context(|| format!("smoke inference with model {}", path.display()))?;
    let version = match spec.version {
        "" => model.metadata_version().unwrap_or_default(),
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

/// A model path must be given: the built-in demo model is the demo's, not a default.
pub fn require_model_path(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() {
        bail!("model.path is not set: name the ONNX model file in the config's [model] section (relative to the config file) or in DRIFTLINE__MODEL__PATH (or, to watch the features' drift without a model, set drift.enabled = true)");
    }
    Ok(())
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
pub fn smoke_test(
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
