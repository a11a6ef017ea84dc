//! JSON → Arrow decode throughput on events like the demo's (an id, a timestamp, 16 floats,
//! about 350 bytes), per batch size. Reports rows/s.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::schema::{EventSchema, FeatureSpec, FeatureType};

const SENSORS: [&str; 16] = [
    "temperature",
    "humidity",
    "pressure",
    "vibration",
    "voltage",
    "current",
    "power",
    "rpm",
    "noise_db",
    "co2_ppm",
    "pm25",
    "light_lux",
    "flow_rate",
    "torque",
    "bearing_temp",
    "battery_v",
];

fn schema() -> EventSchema {
    EventSchema {
        id_field: "device_id".into(),
        timestamp_field: "ts".into(),
        timestamp_required: true,
        features: SENSORS
            .iter()
            .map(|n| FeatureSpec {
                name: (*n).into(),
                kind: FeatureType::F32,
                required: true,
            })
            .collect(),
    }
}

fn events(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut s = format!(
                "{{\"device_id\":\"sensor-{:05}\",\"ts\":{}",
                i % 500,
                1_700_000_000_000u64 + i as u64
            );
            for (j, name) in SENSORS.iter().enumerate() {
                s.push_str(&format!(
                    ",\"{name}\":{:.4}",
                    100.0 * ((i * 31 + j * 7) % 1000) as f64 / 997.0
                ));
            }
            s.push('}');
            s.into_bytes()
        })
        .collect()
}

fn decode(c: &mut Criterion) {
    let schema = schema();
    let topic: Arc<str> = Arc::from("in");
    let mut group = c.benchmark_group("decode_to_arrow");
    for rows in [64usize, 1024, 8192] {
        let payloads = events(rows);
        group.throughput(Throughput::Elements(rows as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(rows),
            &payloads,
            |b, payloads| {
                let mut decoder = EventDecoder::new(&schema, 1 << 20);
                let mut builder = BatchBuilder::new(&schema, rows);
                b.iter(|| {
                    for (i, p) in payloads.iter().enumerate() {
                        if let Ok(row) = decoder.decode(p, None) {
                            builder.push(
                                row,
                                SourcePosition {
                                    topic: &topic,
                                    partition: 0,
                                    offset: i as i64,
                                    key: None,
                                    traceparent: None,
                                    tracestate: None,
                                    kafka_timestamp_ms: 0,
                                },
                            );
                        }
                    }
                    builder.finish().expect("batch")
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
