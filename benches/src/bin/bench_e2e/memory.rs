//! (e) driftline's own ceiling: the operators the pipeline runs (JSON decode → Arrow batch →
//! ONNX Runtime → JSON prediction), fed from memory and written to memory, no broker. Two
//! threads: decode and batch on one, inference and encode on the other, with a bounded channel
//! between them (`driftline_benches::in_process`).
use driftline_benches::in_process::{demo_payloads, run_operators, Stages};
use driftline_benches::{demo_model, sensor_schema, sensors};
use serde_json::json;

pub fn run(events: u64) -> anyhow::Result<serde_json::Value> {
    let schema = sensor_schema(&sensors());
    let payloads = demo_payloads(events)?;
    let mut model = demo_model(&schema);
    let stages = Stages {
        batch_rows: 1024,
        decode_threads: 1,
        encode_threads: 0,
        passes: 1,
        time_limit: None,
    };
    let measured = run_operators(&schema, std::slice::from_mut(&mut model), &payloads, stages)?;
    Ok(json!({
        "events": events,
        "seconds": measured.seconds,
        "rss_samples": [],
        "peak_rss_bytes": crate::child::peak_rss_bytes(),
    }))
}
