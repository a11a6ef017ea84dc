//! driftline's operators without a broker: JSON payloads in memory → decode + batch → ONNX
//! Runtime → JSON predictions in memory. Used by `bench_e2e`'s run (e) and by `bench_gpu`.
//!
//! The stages are the pipeline's, joined by bounded channels as in `pipeline/src/topology.rs`:
//! decode threads (each one owns a contiguous share of the payloads, as a consumer owns its
//! partitions) → inference threads (one session each, one `run` per batch; the pipeline has
//! one) → encode threads.
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow_array::ArrayRef;
use driftline::cli::gen::{EventGenerator, GenOptions};
use driftline_operators::batch::{BatchBuilder, SourceBatch, SourcePosition};
use driftline_operators::decode::EventDecoder;
use driftline_operators::encode::PredictionEncoder;
use driftline_operators::infer::InferenceModel;
use driftline_operators::schema::EventSchema;

use crate::DEMO_MODEL_SHA256;

/// How the work is spread over threads.
#[derive(Debug, Clone, Copy)]
pub struct Stages {
    pub batch_rows: usize,
    /// Threads that decode and batch, each over its own share of the payloads.
    pub decode_threads: usize,
    /// Threads that encode predictions; 0 encodes on the inference thread.
    pub encode_threads: usize,
    /// Times each decode thread goes over its share.
    pub passes: usize,
    /// No decode thread starts a batch after this much time; `None` runs every pass.
    pub time_limit: Option<Duration>,
}

/// What one run did.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub rows: u64,
    pub seconds: f64,
    pub bytes_encoded: usize,
    pub batches: u64,
    /// Time spent inside `InferenceModel::run` (Arrow → tensor, the session's run, tensor →
    /// Arrow), summed over the inference threads.
    pub infer_seconds: f64,
}

impl Measured {
    pub fn rows_per_second(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

/// `count` demo events as the feed writes them (an id, a timestamp, 16 sensors; ~350 bytes).
pub fn demo_payloads(count: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut generator = EventGenerator::new(
        GenOptions {
            count,
            ..GenOptions::default()
        },
        1_700_000_000_000,
    )?;
    Ok((0..count)
        .map(|i| {
            let mut out = Vec::with_capacity(400);
            generator.event(i, &mut out);
            out
        })
        .collect())
}

type Scored = (SourceBatch, Vec<(String, ArrayRef)>);

/// What inference threads did.
#[derive(Debug, Default, Clone, Copy)]
struct InferTotals {
    rows: u64,
    /// Bytes of predictions encoded on the inference thread (no encode threads).
    bytes_encoded: usize,
    batches: u64,
    /// Seconds inside `InferenceModel::run`.
    seconds: f64,
}

impl InferTotals {
    fn add(self, other: InferTotals) -> InferTotals {
        InferTotals {
            rows: self.rows + other.rows,
            bytes_encoded: self.bytes_encoded + other.bytes_encoded,
            batches: self.batches + other.batches,
            seconds: self.seconds + other.seconds,
        }
    }
}

/// Runs the payloads through decode, inference (one thread per model) and encode once per
/// pass; times from the first decode to the last encoded row.
pub fn run_operators(
    schema: &EventSchema,
    models: &mut [InferenceModel],
    payloads: &[Vec<u8>],
    stages: Stages,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(stages.decode_threads >= 1 && stages.batch_rows >= 1 && !models.is_empty());
    let share = payloads.len().div_ceil(stages.decode_threads);
    let (batch_tx, batch_rx) = sync_channel::<SourceBatch>(2 * stages.decode_threads);
    let batch_rx = Arc::new(Mutex::new(batch_rx));
    let (scored_tx, scored_rx) = sync_channel::<Scored>(2 * stages.encode_threads.max(1));
    let scored_rx = Arc::new(Mutex::new(scored_rx));
    let started = Instant::now();
    let deadline = stages.time_limit.map(|limit| started + limit);
    let totals = std::thread::scope(|scope| -> anyhow::Result<InferTotals> {
        let mut decoders = Vec::new();
        for (index, chunk) in payloads.chunks(share.max(1)).enumerate() {
            let tx = batch_tx.clone();
            decoders.push(scope.spawn(move || {
                decode_share(schema, chunk, index as i32, stages, deadline, |batch| {
                    tx.send(batch).is_ok()
                })
            }));
        }
        drop(batch_tx);
        let mut encoders = Vec::new();
        for _ in 0..stages.encode_threads {
            let rx = Arc::clone(&scored_rx);
            encoders.push(scope.spawn(move || encode_from(&rx)));
        }
        // Only the stages hold the receivers, so a stage that fails unblocks the one feeding it.
        drop(scored_rx);
        let inline = stages.encode_threads == 0;
        let mut scorers = Vec::new();
        for model in models.iter_mut() {
            let (rx, tx) = (Arc::clone(&batch_rx), scored_tx.clone());
            scorers
                .push(scope.spawn(move || infer_from(model, &rx, inline.then(Encoder::new), tx)));
        }
        drop(batch_rx);
        drop(scored_tx);
        let mut totals = InferTotals::default();
        for scorer in scorers {
            totals = totals.add(scorer.join().expect("inference thread")?);
        }
        for decoder in decoders {
            decoder.join().expect("decode thread")?;
        }
        for encoder in encoders {
            totals.bytes_encoded += encoder.join().expect("encode thread");
        }
        Ok(totals)
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let InferTotals {
        rows,
        bytes_encoded,
        batches,
        seconds: infer_seconds,
    } = totals;
    anyhow::ensure!(
        rows > 0 && bytes_encoded > 0,
        "nothing was scored and encoded"
    );
    Ok(Measured {
        rows,
        seconds,
        bytes_encoded,
        batches,
        infer_seconds,
    })
}

/// One inference thread: scores batches until the decoders are done, and encodes them itself
/// when it has an encoder, else hands them to the encode threads.
fn infer_from(
    model: &mut InferenceModel,
    rx: &Mutex<Receiver<SourceBatch>>,
    mut encoder: Option<Encoder>,
    tx: SyncSender<Scored>,
) -> anyhow::Result<InferTotals> {
    let mut totals = InferTotals::default();
    loop {
        let next = rx.lock().expect("batch queue").recv();
        let Ok(batch) = next else {
            return Ok(totals);
        };
        let started = Instant::now();
        let outputs = model.run(&batch.batch)?;
        totals.seconds += started.elapsed().as_secs_f64();
        totals.rows += batch.num_rows() as u64;
        totals.batches += 1;
        match &mut encoder {
            Some(encoder) => totals.bytes_encoded += encoder.encode(&batch, &outputs),
            None => {
                if tx.send((batch, outputs)).is_err() {
                    anyhow::bail!("the encode threads stopped");
                }
            }
        }
    }
}

/// One decode thread: its share of the payloads, `passes` times, in batches of `batch_rows`.
fn decode_share(
    schema: &EventSchema,
    payloads: &[Vec<u8>],
    partition: i32,
    stages: Stages,
    deadline: Option<Instant>,
    mut send: impl FnMut(SourceBatch) -> bool,
) -> anyhow::Result<()> {
    let topic: Arc<str> = Arc::from("in");
    let mut decoder = EventDecoder::new(schema, 1 << 20);
    let mut builder = BatchBuilder::new(schema, stages.batch_rows);
    let mut offset = 0i64;
    for _ in 0..stages.passes {
        for payload in payloads {
            if builder.is_empty() && deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            if let Ok(row) = decoder.decode(payload, Some(1_700_000_000_000)) {
                builder.push(
                    row,
                    SourcePosition {
                        topic: &topic,
                        partition,
                        offset,
                        key: None,
                        traceparent: None,
                        tracestate: None,
                        kafka_timestamp_ms: 1_700_000_000_000,
                    },
                );
            }
            offset += 1;
            if builder.len() == stages.batch_rows && !send(builder.finish()?) {
                return Ok(());
            }
        }
    }
    if !builder.is_empty() {
        send(builder.finish()?);
    }
    Ok(())
}

fn encode_from(rx: &Mutex<Receiver<Scored>>) -> usize {
    let mut encoder = Encoder::new();
    let mut bytes = 0;
    loop {
        // The lock is held only while waiting for the next batch, not while encoding it.
        let next = rx.lock().expect("encode queue").recv();
        match next {
            Ok((batch, outputs)) => bytes += encoder.encode(&batch, &outputs),
            Err(_) => return bytes,
        }
    }
}

/// The prediction encoder and its row buffer; counts the bytes it wrote.
struct Encoder {
    encoder: PredictionEncoder,
    out: Vec<u8>,
}

impl Encoder {
    fn new() -> Self {
        Encoder {
            encoder: PredictionEncoder::new("anomaly_classifier", "1.0.0", DEMO_MODEL_SHA256),
            out: Vec::with_capacity(512),
        }
    }

    fn encode(&mut self, batch: &SourceBatch, outputs: &[(String, ArrayRef)]) -> usize {
        let mut bytes = 0;
        for row in 0..batch.num_rows() {
            self.encoder
                .encode_row(&batch.batch, outputs, row, 1_700_000_000_000, &mut self.out);
            bytes += self.out.len();
        }
        bytes
    }
}
