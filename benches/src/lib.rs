//! Inputs shared by the criterion benches in `benches/` and the `drift_timing` example (see
//! BENCHMARKS.md): the demo's sixteen sensors, seeded normal samples, and Arrow batches of them.
//!
//! Everything here is deterministic for a given seed, so two runs time the same data. Setup code
//! only: it panics on a missing or malformed `models/sensors.json` because a bench cannot run
//! without it.
use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Int64Array, RecordBatch, StringArray};
use driftline_operators::infer::{load_runtime, InferenceModel, ModelOptions, Provider};
use driftline_operators::schema::{EventSchema, FeatureSpec, FeatureType};

pub mod in_process;
pub mod report_data;

/// A path relative to the repository root.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The demo model file's sha256, as predictions carry it (the benches encode without hashing).
pub const DEMO_MODEL_SHA256: &str =
    "8d2d92c4fe01725b68f9e3551a14de3beefb4cafac6954648fcf0e179a8c05bc";

/// The demo model on the CPU with one intra-op thread. ONNX Runtime comes from
/// `ORT_DYLIB_PATH`, else `.venv/libonnxruntime.so`.
pub fn demo_model(schema: &EventSchema) -> InferenceModel {
    load_model(
        &repo_path("models/anomaly_classifier.onnx"),
        Provider::Cpu,
        schema,
    )
    .expect("demo model loads")
}

/// ONNX Runtime from `ORT_DYLIB_PATH`, else `.venv/libonnxruntime.so` (loaded once per process).
pub fn runtime() -> ort::environment::Environment {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(".venv/libonnxruntime.so"));
    load_runtime(&library)
        .unwrap_or_else(|e| panic!("{e}: run `make test`, which installs ONNX Runtime into .venv"))
}

/// A model as the pipeline loads it, with one intra-op thread.
pub fn load_model(
    path: &std::path::Path,
    provider: Provider,
    schema: &EventSchema,
) -> Result<InferenceModel, driftline_operators::infer::InferError> {
    let options = ModelOptions {
        path: path.to_path_buf(),
        provider,
        intra_threads: 1,
        inputs: vec![],
    };
    InferenceModel::load(&runtime(), &options, schema)
}

/// One simulated sensor: its name and healthy Normal(mean, std).
#[derive(Debug, Clone)]
pub struct Sensor {
    pub name: String,
    pub mean: f64,
    pub std: f64,
}

/// The demo's sensors, from `models/sensors.json` (what the demo model was trained on).
pub fn sensors() -> Vec<Sensor> {
    let path = repo_path("models/sensors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec: serde_json::Value = serde_json::from_str(&text).expect("sensors.json is JSON");
    spec["sensors"]
        .as_array()
        .expect("sensors.json has a `sensors` array")
        .iter()
        .map(|s| Sensor {
            name: s["name"].as_str().expect("sensor name").to_string(),
            mean: s["mean"].as_f64().expect("sensor mean"),
            std: s["std"].as_f64().expect("sensor std"),
        })
        .collect()
}

/// The event schema the demo uses: every sensor a required f32 feature, as in
/// `operators/src/infer_tests.rs`.
pub fn sensor_schema(sensors: &[Sensor]) -> EventSchema {
    EventSchema {
        id_field: "device_id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: true,
        features: sensors
            .iter()
            .map(|s| FeatureSpec {
                name: s.name.clone(),
                kind: FeatureType::F32,
                required: true,
            })
            .collect(),
    }
}

/// SplitMix64 with Box–Muller on top: a small seeded source of normal samples.
#[derive(Debug, Clone)]
pub struct Normals(u64);

impl Normals {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// One draw of Normal(mean, std).
    pub fn draw(&mut self, mean: f64, std: f64) -> f64 {
        let (u1, u2) = (1.0 - self.uniform(), self.uniform());
        mean + std * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// `n` draws of Normal(mean, std).
    pub fn sample(&mut self, n: usize, mean: f64, std: f64) -> Vec<f64> {
        (0..n).map(|_| self.draw(mean, std)).collect()
    }
}

/// One f32 column per sensor, `rows` healthy readings each, the sensor's mean shifted by
/// `shift_std` standard deviations.
pub fn sensor_columns(sensors: &[Sensor], rows: usize, shift_std: f64, seed: u64) -> Vec<ArrayRef> {
    let mut rng = Normals::new(seed);
    sensors
        .iter()
        .map(|s| {
            let values = (0..rows).map(|_| rng.draw(s.mean + shift_std * s.std, s.std) as f32);
            Arc::new(Float32Array::from_iter_values(values)) as ArrayRef
        })
        .collect()
}

/// A decoded batch as the pipeline would hold it: id, event timestamp, then the sensor columns.
pub fn sensor_batch(
    schema: &EventSchema,
    sensors: &[Sensor],
    rows: usize,
    seed: u64,
) -> RecordBatch {
    let ids = StringArray::from_iter_values((0..rows).map(|i| format!("sensor-{:05}", i % 500)));
    let ts = Int64Array::from_iter_values((0..rows as i64).map(|i| 1_700_000_000_000 + i));
    let mut columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(ts)];
    columns.extend(sensor_columns(sensors, rows, 0.0, seed));
    RecordBatch::try_new(schema.arrow_schema(), columns).expect("columns match the schema")
}
