//! ONNX Runtime inference over decoded batches.
//!
//! [`InferenceModel::load`] builds one session (once: CUDA sessions take about a second) and
//! plans how batch columns become input tensors; [`InferenceModel::run`] turns a batch into its
//! output columns. Feature columns are written into one reused `[N, F]` buffer per model input
//! (row-major, no per-row allocation); nulls become NaN, booleans 0/1. Outputs of shape `[N]` or
//! `[N, 1]` become scalar columns, `[N, K]` fixed-size lists, named as the model names them.
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arrow_array::{ArrayRef, RecordBatch};
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::error::ErrorKind;
use crate::schema::{EventSchema, FeatureType, LEADING_COLUMNS};

/// Failures of loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("cannot load the ONNX Runtime library {path}: {reason} (set runtime.onnxruntime_library or ORT_DYLIB_PATH to libonnxruntime.so 1.31, for example the one in the PyPI wheel onnxruntime==1.31.1)")]
    Runtime { path: PathBuf, reason: String },
    #[error("cannot load model {path}: {reason}")]
    Model { path: PathBuf, reason: String },
    #[error("the CUDA execution provider was required but cannot be used: {0}")]
    CudaUnavailable(String),
    #[error("model and schema disagree: {}", .0.join("; "))]
    Signature(Vec<String>),
    #[error("inference failed: {0}")]
    Run(String),
}

impl InferError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            InferError::Run(_) => ErrorKind::External,
            _ => ErrorKind::Internal,
        }
    }
}

/// Where ONNX Runtime should run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    /// `require`: fail instead of falling back to the CPU when CUDA cannot be used.
    Cuda {
        device_id: i32,
        require: bool,
    },
}

/// Which feature columns, in which order, feed one named model input.
#[derive(Debug, Clone, PartialEq)]
pub struct InputBinding {
    pub input: String,
    pub features: Vec<String>,
}

/// How the model is to be run.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    pub path: PathBuf,
    pub provider: Provider,
    pub intra_threads: usize,
    /// Empty: the model's single input takes every numeric feature in schema order.
    pub inputs: Vec<InputBinding>,
}

static RUNTIME: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime from `library` (once per process; later calls reuse the first library).
pub fn load_runtime(library: &Path) -> Result<ort::environment::Environment, InferError> {
    RUNTIME
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| e.to_string())?;
            builder
                .with_name("driftline")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|reason| InferError::Runtime {
            path: library.to_path_buf(),
            reason,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputElement {
    F32,
    F64,
}

/// One model input: its element type, the batch columns it reads, and its reused buffer.
struct InputPlan {
    name: String,
    element: InputElement,
    columns: Vec<usize>,
    f32_buf: Vec<f32>,
    f64_buf: Vec<f64>,
}

/// A model output the pipeline can turn into an Arrow column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputInfo {
    pub name: String,
    /// The tensor's element type; for a sequence of maps, the maps' value type.
    pub element: TensorElementType,
    /// For a sequence of maps (`ZipMap`): the maps' key type (int64 or string class labels).
    pub map_key: Option<TensorElementType>,
}

/// A loaded model, ready to score batches.
pub struct InferenceModel {
    session: Session,
    inputs: Vec<InputPlan>,
    outputs: Vec<OutputInfo>,
    provider: &'static str,
}

impl InferenceModel {
    pub fn load(
        runtime: &ort::environment::Environment,
        options: &ModelOptions,
        schema: &EventSchema,
    ) -> Result<Self, InferError> {
        let (session, provider) = build_session(runtime, options)?;
        let (inputs, outputs) = plan(&session, options, schema).map_err(InferError::Signature)?;
        Ok(InferenceModel {
            session,
            inputs,
            outputs,
            provider,
        })
    }

    /// Warnings for features declared `f32` that feed a float64 input: their values are rounded
    /// to f32 when decoded, before the model sees them (a float64 model's outputs move by about
    /// 1e-5). The schema should declare them `f64`.
    pub fn precision_warnings(&self, schema: &EventSchema) -> Vec<String> {
        let mut warnings = Vec::new();
        for plan in self
            .inputs
            .iter()
            .filter(|p| p.element == InputElement::F64)
        {
            let narrowed: Vec<&str> = plan
                .columns
                .iter()
                .filter_map(|c| schema.features.get(c - LEADING_COLUMNS))
                .filter(|f| f.kind == FeatureType::F32)
                .map(|f| f.name.as_str())
                .collect();
            if !narrowed.is_empty() {
                warnings.push(format!(
                    "model input `{}` is float64 but features {} are declared f32 and lose precision when decoded: declare them `type = \"f64\"`",
                    plan.name,
                    narrowed.join(", ")
                ));
            }
        }
        warnings
    }

    /// The execution provider the session actually runs on: `"cpu"` or `"cuda"`.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    pub fn outputs(&self) -> &[OutputInfo] {
        &self.outputs
    }

    /// A model metadata entry (`model_version` is ONNX's own field; others are custom keys).
    pub fn metadata_version(&self) -> Option<String> {
        let meta = self.session.metadata().ok()?;
        // ONNX Runtime reports i64::MAX when the file leaves `model_version` unset.
        meta.custom("version").or_else(|| {
            meta.version()
                .filter(|v| *v > 0 && *v != i64::MAX)
                .map(|v| v.to_string())
        })
    }

    /// Arrow columns → the model's input tensors (the first half of [`InferenceModel::run`],
    /// public so the benches can time it alone).
    pub fn prepare_inputs(&mut self, batch: &RecordBatch) -> Result<(), InferError> {
        for plan in &mut self.inputs {
            fill_input(plan, batch)?;
        }
        Ok(())
    }

    /// Scores a batch: one output column per model output, in model order.
    pub fn run(&mut self, batch: &RecordBatch) -> Result<Vec<(String, ArrayRef)>, InferError> {
        let rows = batch.num_rows();
        self.prepare_inputs(batch)?;
        let mut values = Vec::with_capacity(self.inputs.len());
        for plan in &self.inputs {
            let shape = [rows, plan.columns.len()];
            let value: ort::session::SessionInputValue<'_> = match plan.element {
                InputElement::F32 => TensorRef::from_array_view((shape, &plan.f32_buf[..]))
                    .map_err(run_err)?
                    .into(),
                InputElement::F64 => TensorRef::from_array_view((shape, &plan.f64_buf[..]))
                    .map_err(run_err)?
                    .into(),
            };
            values.push((std::borrow::Cow::Borrowed(plan.name.as_str()), value));
        }
        let outputs = self.session.run(values).map_err(run_err)?;
        let mut columns = Vec::with_capacity(self.outputs.len());
        for info in &self.outputs {
            let value = &outputs[info.name.as_str()];
            columns.push((info.name.clone(), output_column(value, info, rows)?));
        }
        Ok(columns)
    }
}

fn run_err(e: impl std::fmt::Display) -> InferError {
    InferError::Run(e.to_string())
}

fn build_session(
    runtime: &ort::environment::Environment,
    options: &ModelOptions,
) -> Result<(Session, &'static str), InferError> {
    let model_err = |e: ort::Error| InferError::Model {
        path: options.path.clone(),
        reason: e.to_string(),
    };
    let builder = || -> Result<_, ort::Error> {
        Session::builder(runtime)?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(ort::Error::<()>::from)
    };
    if let Provider::Cuda { device_id, require } = options.provider {
        let cuda = ort::ep::CUDA::default()
            .with_device_id(device_id)
            .build()
            .error_on_failure();
        let attempt = builder()
            .and_then(|b| {
                b.with_execution_providers([cuda])
                    .map_err(ort::Error::<()>::from)
            })
            .and_then(|mut b| b.commit_from_file(&options.path));
        match attempt {
            Ok(session) => return Ok((session, "cuda")),
            Err(e) if require => return Err(InferError::CudaUnavailable(e.to_string())),
            Err(e) => {
                tracing::warn!(error = %e, "CUDA execution provider requested but unavailable; running on CPU")
            }
        }
    }
    let session = builder()
        .and_then(|mut b| b.commit_from_file(&options.path))
        .map_err(model_err)?;
    Ok((session, "cpu"))
}

/// Matches the model's inputs and outputs against the schema; every mismatch is one message.
fn plan(
    session: &Session,
    options: &ModelOptions,
    schema: &EventSchema,
) -> Result<(Vec<InputPlan>, Vec<OutputInfo>), Vec<String>> {
    let mut problems = Vec::new();
    let bindings = if options.inputs.is_empty() {
        match session.inputs() {
            [only] => vec![InputBinding {
                input: only.name().to_string(),
                features: schema
                    .features
                    .iter()
                    .filter(|f| f.kind.is_numeric())
                    .map(|f| f.name.clone())
                    .collect(),
            }],
            many => {
                let names: Vec<_> = many.iter().map(|i| i.name()).collect();
                return Err(vec![format!(
                    "the model has inputs {names:?}: name the features of each in model.inputs"
                )]);
            }
        }
    } else {
        options.inputs.clone()
    };
    for input in session.inputs() {
        if !bindings.iter().any(|b| b.input == input.name()) {
            problems.push(format!(
                "model input `{}` is not fed by any model.inputs entry",
                input.name()
            ));
        }
    }
    let mut inputs = Vec::new();
    for binding in &bindings {
        let Some(outlet) = session.inputs().iter().find(|i| i.name() == binding.input) else {
            problems.push(format!(
                "model.inputs names `{}`, which the model does not have",
                binding.input
            ));
            continue;
        };
        let element = match outlet.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                ..
            } => InputElement::F32,
            ValueType::Tensor {
                ty: TensorElementType::Float64,
                ..
            } => InputElement::F64,
            other => {
                problems.push(format!("model input `{}` has type {other}; only float32 and float64 tensors are supported", binding.input));
                continue;
            }
        };
        if let ValueType::Tensor { shape, .. } = outlet.dtype() {
            let width = shape.get(1).copied().unwrap_or(-1);
            if shape.len() != 2 {
                problems.push(format!(
                    "model input `{}` has rank {}; a [batch, features] matrix is expected",
                    binding.input,
                    shape.len()
                ));
            } else if width >= 0 && width as usize != binding.features.len() {
                let categories: Vec<&str> = schema
                    .features
                    .iter()
                    .filter(|f| !f.kind.is_numeric())
                    .map(|f| f.name.as_str())
                    .collect();
                let not_fed = match (options.inputs.is_empty(), categories.is_empty()) {
                    (true, false) => format!(
                        "; category features ({}) are not fed to numeric inputs (drift still watches them): name the input's features in model.inputs, or give the model a numeric encoding of them",
                        categories.join(", ")
                    ),
                    _ => String::new(),
                };
                problems.push(format!(
                    "model input `{}` takes {width} features but {} are configured ({}){not_fed}",
                    binding.input,
                    binding.features.len(),
                    binding.features.join(", ")
                ));
            }
        }
        let mut columns = Vec::new();
        for name in &binding.features {
            match schema.feature_index(name) {
                Some(i) if schema.features[i].kind.is_numeric() => {
                    columns.push(LEADING_COLUMNS + i)
                }
                Some(_) => problems.push(format!(
                    "feature `{name}` is a category and cannot feed numeric input `{}`",
                    binding.input
                )),
                None => problems.push(format!(
                    "model.inputs `{}` names feature `{name}`, which is not in schema.features",
                    binding.input
                )),
            }
        }
        inputs.push(InputPlan {
            name: binding.input.clone(),
            element,
            columns,
            f32_buf: Vec::new(),
            f64_buf: Vec::new(),
        });
    }
    let mut outputs = Vec::new();
    for outlet in session.outputs() {
        match output_info(outlet.name(), outlet.dtype()) {
            Some(info) => outputs.push(info),
            None => problems.push(format!(
                "model output `{}` has type {}; supported outputs are float32/float64/int64/int32/string tensors of rank 1 or 2 and sequences of maps from int64 or string to float32 (ZipMap)",
                outlet.name(),
                outlet.dtype()
            )),
        }
    }
    if problems.is_empty() {
        Ok((inputs, outputs))
    } else {
        Err(problems)
    }
}

/// What an output becomes in Arrow, or `None` when it cannot become a column.
fn output_info(name: &str, dtype: &ValueType) -> Option<OutputInfo> {
    use TensorElementType::{Float32, Float64, Int32, Int64, String as Str};
    let (element, map_key) = match dtype {
        ValueType::Tensor { ty, shape, .. }
            if matches!(ty, Float32 | Float64 | Int64 | Int32 | Str) && shape.len() <= 2 =>
        {
            (*ty, None)
        }
        ValueType::Sequence(inner) => match inner.as_ref() {
            ValueType::Map {
                key: key @ (Int64 | Str),
                value: Float32,
            } => (Float32, Some(*key)),
            _ => return None,
        },
        _ => return None,
    };
    Some(OutputInfo {
        name: name.to_string(),
        element,
        map_key,
    })
}

#[path = "infer_tensors.rs"]
mod tensors;
use tensors::{fill_input, output_column};

#[cfg(test)]
#[path = "infer_tests.rs"]
mod tests;
