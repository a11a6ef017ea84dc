//! ONNX Runtime inference throughput on the demo model (`models/anomaly_classifier.onnx`, 16 f32
//! features) on the CPU with one intra-op thread, per batch size: `InferenceModel::run`, which
//! includes copying the Arrow columns into the input tensor and the outputs back into Arrow.
//! Reports rows/s. Needs ONNX Runtime: `ORT_DYLIB_PATH`, else `.venv/libonnxruntime.so`.
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{repo_path, sensor_batch, sensor_schema, sensors};
use driftline_operators::infer::{load_runtime, InferenceModel, ModelOptions, Provider};

fn infer(c: &mut Criterion) {
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(".venv/libonnxruntime.so"));
    let runtime = load_runtime(&library)
        .unwrap_or_else(|e| panic!("{e}: run `make test`, which installs ONNX Runtime into .venv"));
    let sensors = sensors();
    let schema = sensor_schema(&sensors);
    let options = ModelOptions {
        path: repo_path("models/anomaly_classifier.onnx"),
        provider: Provider::Cpu,
        intra_threads: 1,
        inputs: vec![],
    };
    let mut model = InferenceModel::load(&runtime, &options, &schema).expect("demo model loads");
    let mut group = c.benchmark_group("infer_cpu_1thread");
    for rows in [1usize, 64, 1024, 8192] {
        let batch = sensor_batch(&schema, &sensors, rows, rows as u64);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rows), &batch, |b, batch| {
            b.iter(|| model.run(batch).expect("inference"));
        });
    }
    group.finish();
}

criterion_group!(benches, infer);
criterion_main!(benches);
