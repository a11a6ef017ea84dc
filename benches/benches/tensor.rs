//! Arrow → input tensor: `InferenceModel::prepare_inputs`, the copy of a batch's sixteen f32
//! feature columns into the demo model's row-major `[rows, 16]` input, per batch size (the part
//! of `infer` that is driftline's own code rather than ONNX Runtime's). Reports rows/s.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{demo_model, sensor_batch, sensor_schema, sensors};

fn tensor(c: &mut Criterion) {
    let sensors = sensors();
    let schema = sensor_schema(&sensors);
    let mut model = demo_model(&schema);
    let mut group = c.benchmark_group("arrow_to_tensor");
    for rows in [64usize, 1024, 8192] {
        let batch = sensor_batch(&schema, &sensors, rows, rows as u64);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(BenchmarkId::from_parameter(rows), &batch, |b, batch| {
            b.iter(|| model.prepare_inputs(batch).expect("tensor"));
        });
    }
    group.finish();
}

criterion_group!(benches, tensor);
criterion_main!(benches);
