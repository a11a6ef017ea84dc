//! ONNX Runtime inference throughput on the demo model (`models/anomaly_classifier.onnx`, 16 f32
//! features) on the CPU with one intra-op thread, per batch size: `InferenceModel::run`, which
//! includes copying the Arrow columns into the input tensor and the outputs back into Arrow.
//! Reports rows/s. Needs ONNX Runtime: `ORT_DYLIB_PATH`, else `.venv/libonnxruntime.so`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{demo_model, sensor_batch, sensor_schema, sensors};

fn infer(c: &mut Criterion) {
    let sensors = sensors();
    let schema = sensor_schema(&sensors);
    let mut model = demo_model(&schema);
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
