//! Prediction → JSON encode throughput: `PredictionEncoder::encode_row` over a batch of 1024 rows
//! with the demo model's outputs (an Int64 `label` and a FixedSizeList<Float32, 2>
//! `probabilities`). Reports rows/s.
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array};
use arrow_schema::{DataType, Field};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{sensor_batch, sensor_schema, sensors, Normals, DEMO_MODEL_SHA256};
use driftline_operators::encode::PredictionEncoder;

const ROWS: usize = 1024;

/// Outputs shaped like the demo model's, with probabilities that are not round numbers (ryu's
/// cost depends on the digits).
fn outputs(rows: usize) -> Vec<(String, ArrayRef)> {
    let mut rng = Normals::new(7);
    let mut probs = Vec::with_capacity(2 * rows);
    let mut labels = Vec::with_capacity(rows);
    for _ in 0..rows {
        let p1 = (1.0 / (1.0 + (-rng.draw(-3.0, 2.0)).exp())) as f32;
        probs.extend([1.0 - p1, p1]);
        labels.push(i64::from(p1 > 0.5));
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let probabilities =
        FixedSizeListArray::try_new(item, 2, Arc::new(Float32Array::from(probs)), None)
            .expect("probabilities list");
    vec![
        (
            "label".into(),
            Arc::new(Int64Array::from(labels)) as ArrayRef,
        ),
        ("probabilities".into(), Arc::new(probabilities) as ArrayRef),
    ]
}

fn encode(c: &mut Criterion) {
    let sensors = sensors();
    let schema = sensor_schema(&sensors);
    let inputs = sensor_batch(&schema, &sensors, ROWS, 1);
    let outputs = outputs(ROWS);
    let mut group = c.benchmark_group("encode_prediction_json");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function(BenchmarkId::from_parameter(ROWS), |b| {
        let mut encoder = PredictionEncoder::new("anomaly_classifier", "1.0.0", DEMO_MODEL_SHA256);
        let mut out = Vec::with_capacity(512);
        b.iter(|| {
            let mut bytes = 0;
            for row in 0..ROWS {
                encoder.encode_row(&inputs, &outputs, row, 1_700_000_000_012, &mut out);
                bytes += out.len();
            }
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
