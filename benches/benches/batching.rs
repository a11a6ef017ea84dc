//! Batching: `BatchBuilder::push` of decoded rows (sixteen f32 features, an id, a timestamp and
//! the Kafka position) and `finish` into an Arrow `RecordBatch`, per batch size, without the
//! JSON decode that `decode` includes. Reports rows/s.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_benches::{sensor_schema, sensors, Normals};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::{DecodedRow, EventDecoder};

fn rows(n: usize) -> Vec<DecodedRow> {
    let sensors = sensors();
    let schema = sensor_schema(&sensors);
    let mut decoder = EventDecoder::new(&schema, 1 << 20);
    let mut rng = Normals::new(11);
    (0..n)
        .map(|i| {
            let mut event = format!("{{\"device_id\":\"sensor-{:05}\",\"ts\":{}", i % 500, i);
            for s in &sensors {
                event.push_str(&format!(",\"{}\":{:.4}", s.name, rng.draw(s.mean, s.std)));
            }
            event.push('}');
            decoder
                .decode(event.as_bytes(), None)
                .expect("valid event")
                .clone()
        })
        .collect()
}

fn batching(c: &mut Criterion) {
    let schema = sensor_schema(&sensors());
    let topic: Arc<str> = Arc::from("in");
    let mut group = c.benchmark_group("batch_build");
    for n in [64usize, 1024, 8192] {
        let decoded = rows(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &decoded, |b, decoded| {
            let mut builder = BatchBuilder::new(&schema, n);
            b.iter(|| {
                for (i, row) in decoded.iter().enumerate() {
                    builder.push(
                        row,
                        SourcePosition {
                            topic: &topic,
                            partition: (i % 64) as i32,
                            offset: i as i64,
                            key: Some(b"sensor-00001"),
                            traceparent: None,
                            tracestate: None,
                            kafka_timestamp_ms: 1_700_000_000_000,
                        },
                    );
                }
                builder.finish().expect("batch")
            });
        });
    }
    group.finish();
}

criterion_group!(benches, batching);
criterion_main!(benches);
