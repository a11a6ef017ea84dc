//! (e) driftline's own ceiling: the operators the pipeline runs (JSON decode → Arrow batch →
//! ONNX Runtime → JSON prediction), fed from memory and written to memory, no broker. Two
//! threads, as in the pipeline: decode and batch on one, inference and encode on the other,
//! with a bounded channel between them.
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use driftline::gen::{EventGenerator, GenOptions};
use driftline_benches::{demo_model, sensor_schema, sensors, DEMO_MODEL_SHA256};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::encode::PredictionEncoder;
use serde_json::json;

const BATCH_ROWS: usize = 1024;

pub fn run(events: u64) -> anyhow::Result<serde_json::Value> {
    let schema = sensor_schema(&sensors());
    let mut generator = EventGenerator::new(
        GenOptions {
            count: events,
            ..GenOptions::default()
        },
        1_700_000_000_000,
    )?;
    let payloads: Vec<Vec<u8>> = (0..events)
        .map(|i| {
            let mut out = Vec::with_capacity(400);
            generator.event(i, &mut out);
            out
        })
        .collect();
    let mut model = demo_model(&schema);
    let (tx, rx) = sync_channel(4);
    let started = Instant::now();
    let scorer = std::thread::spawn(move || {
        let mut encoder = PredictionEncoder::new("anomaly_classifier", "1.0.0", DEMO_MODEL_SHA256);
        let mut out = Vec::with_capacity(512);
        let mut written = 0usize;
        for batch in rx {
            let batch: driftline_operators::batch::SourceBatch = batch;
            let outputs = model.run(&batch.batch).expect("inference");
            for row in 0..batch.num_rows() {
                encoder.encode_row(&batch.batch, &outputs, row, 1_700_000_000_000, &mut out);
                written += out.len();
            }
        }
        written
    });
    let topic: Arc<str> = Arc::from("in");
    let mut decoder = EventDecoder::new(&schema, 1 << 20);
    let mut builder = BatchBuilder::new(&schema, BATCH_ROWS);
    for (i, payload) in payloads.iter().enumerate() {
        if let Ok(row) = decoder.decode(payload, Some(1_700_000_000_000)) {
            builder.push(
                row,
                SourcePosition {
                    topic: &topic,
                    partition: (i % 64) as i32,
                    offset: i as i64,
                    key: None,
                    traceparent: None,
                    tracestate: None,
                    kafka_timestamp_ms: 1_700_000_000_000,
                },
            );
        }
        if builder.len() == BATCH_ROWS || i + 1 == payloads.len() {
            tx.send(builder.finish()?)?;
        }
    }
    drop(tx);
    let written = scorer.join().expect("scorer");
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(written > 0, "nothing encoded");
    Ok(json!({
        "events": events,
        "seconds": seconds,
        "rss_samples": [],
        "peak_rss_bytes": crate::child::peak_rss_bytes(),
    }))
}
