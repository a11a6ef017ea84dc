//! The sink stage: takes scored batches back in the source's order (the inference sessions
//! finish them in any order), shares each with the drift side stream, encodes it into one
//! prediction per row (and shadow predictions) and hands them to the producer, on its own
//! thread. Each batch shares one [`Delivery`], whose acknowledgement releases the batch's input
//! offsets. In order, each partition's predictions are produced in its events' order.
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use arrow_array::Array;
use driftline_operators::batch::SourcePositions;
use driftline_operators::encode::PredictionEncoder;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use tokio::sync::mpsc;

use crate::clock::now_ms;
use crate::kafka::delivery::{Delivery, DeliveryKind, DeliveryRows};
use crate::kafka::headers::source_headers;
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::{try_send, SendRefusal, SinkProducer, QUEUE_FULL_BACKOFF};
use crate::kafka::trace_context::{TRACEPARENT, TRACESTATE};
use crate::models::identity::ModelIdentity;
use crate::stages::messages::{DriftInput, DriftMessage, ScoredBatch, ShadowDrift};
use crate::stages::ordering::{ChunkWindow, Reorder, Sequenced};
use crate::telemetry::metrics::{PipelineMetrics, Stage};

fn encoder_for(model: &ModelIdentity) -> PredictionEncoder {
    PredictionEncoder::new(&model.name, &model.version, &model.sha256)
}

/// The source position headers of a prediction, and its event's trace context if it had one.
fn prediction_headers(sources: &SourcePositions, rows: &DeliveryRows, row: usize) -> OwnedHeaders {
    let mut headers = source_headers(OwnedHeaders::new_with_capacity(5), rows, row);
    for (key, values) in [
        (TRACEPARENT, &sources.traceparents),
        (TRACESTATE, &sources.tracestates),
    ] {
        if values.is_valid(row) {
            headers = headers.insert(Header {
                key,
                value: Some(values.value(row)),
            });
        }
    }
    headers
}

/// Where the sink writes.
pub struct SinkTopics<'a> {
    pub output: &'a str,
    pub shadow: &'a str,
}

/// Takes scored batches in order; shares each with `drift_tx`, then encodes one prediction per
/// row and hands it to the producer; shadow predictions go to the shadow topic.
pub fn sink_stage(
    producer: &SinkProducer,
    tracker: &OffsetTracker,
    metrics: &PipelineMetrics,
    topics: SinkTopics<'_>,
    mut rx: mpsc::Receiver<Sequenced<ScoredBatch>>,
    window: &ChunkWindow,
    drift_tx: Option<std::sync::mpsc::SyncSender<DriftMessage>>,
) -> anyhow::Result<()> {
    let mut writer = PredictionWriter {
        producer,
        tracker,
        metrics,
        topics,
        payload: Vec::with_capacity(512),
        encoders_for: None,
        encoders: Vec::new(),
        shadow_encoder: None,
    };
    let mut in_order = Reorder::default();
    while let Some(piece) = rx.blocking_recv() {
        in_order.push(piece);
        while let Some(ready) = in_order.pop() {
            if let Some(scored) = ready.item {
                if let Some(drift) = &drift_tx {
                    if drift.send(drift_input(&scored).into()).is_err() {
                        bail!("the drift stage stopped");
                    }
                }
                writer.write(scored)?;
            }
            window.leave();
        }
    }
    Ok(())
}

/// Encodes and produces the predictions of one batch after another.
struct PredictionWriter<'a> {
    producer: &'a SinkProducer,
    tracker: &'a OffsetTracker,
    metrics: &'a PipelineMetrics,
    topics: SinkTopics<'a>,
    payload: Vec<u8>,
    /// One encoder per model, rebuilt when a reload changes the models: predictions name the
    /// model that made them.
    encoders_for: Option<Arc<[Arc<ModelIdentity>]>>,
    encoders: Vec<PredictionEncoder>,
    shadow_encoder: Option<(Arc<ModelIdentity>, PredictionEncoder)>,
}

impl PredictionWriter<'_> {
    fn write(&mut self, mut scored: ScoredBatch) -> anyhow::Result<()> {
        let (producer, tracker, metrics) = (self.producer, self.tracker, self.metrics);
        if !(self.encoders_for.as_ref()).is_some_and(|m| Arc::ptr_eq(m, &scored.models)) {
            self.encoders = scored.models.iter().map(|m| encoder_for(m)).collect();
            self.encoders_for = Some(Arc::clone(&scored.models));
        }
        let _span = tracing::info_span!(parent: &scored.span, "encode_produce").entered();
        let started = Instant::now();
        let processing_ms = now_ms();
        let n = scored.input.num_rows();
        let rows = DeliveryRows::take(&mut scored.input.sources);
        let delivery = Delivery::new(DeliveryKind::Prediction, rows, n);
        let sources = &scored.input.sources;
        let to = Destination {
            topic: self.topics.output,
            delivery: &delivery,
        };
        for row in 0..n {
            let variant = (scored.variant_of_row.as_ref()).map_or(0, |v| v[row] as usize);
            self.encoders[variant].encode_row(
                &scored.input.batch,
                &scored.outputs,
                row,
                processing_ms,
                &mut self.payload,
            );
            let rows = &delivery.rows;
            produce(producer, tracker, &to, sources, rows, row, &self.payload)?;
        }
        if let Some(shadow) = &scored.shadow {
            if !(self.shadow_encoder.as_ref()).is_some_and(|(m, _)| Arc::ptr_eq(m, &shadow.model)) {
                self.shadow_encoder = Some((Arc::clone(&shadow.model), encoder_for(&shadow.model)));
            }
            let encoder = &mut self.shadow_encoder.as_mut().expect("set above").1;
            let shadow_delivery = Delivery::new(DeliveryKind::Shadow, DeliveryRows::default(), n);
            let to_shadow = Destination {
                topic: self.topics.shadow,
                delivery: &shadow_delivery,
            };
            for row in 0..n {
                encoder.encode_row(
                    &scored.input.batch,
                    &shadow.outputs,
                    row,
                    processing_ms,
                    &mut self.payload,
                );
                let rows = &delivery.rows;
                let sent = produce(
                    producer,
                    tracker,
                    &to_shadow,
                    sources,
                    rows,
                    row,
                    &self.payload,
                );
                if let Err(e) = sent {
                    if tracker.has_failed() {
                        return Err(e);
                    }
                    // A shadow is an experiment: its refusal never stops the pipeline.
                    PipelineMetrics::add(&metrics.delivery_failures, (n - row) as u64);
                    tracing::warn!(error = %e, rows = n - row, "shadow predictions of a batch not sent");
                    break;
                }
            }
        }
        metrics.record_stage(Stage::Encode, started.elapsed());
        Ok(())
    }
}

/// The scored batch as the drift stage takes it. Arrow arrays are reference-counted: sharing the
/// batch copies no data.
fn drift_input(scored: &ScoredBatch) -> DriftInput {
    DriftInput {
        batch: scored.input.batch.clone(),
        outputs: scored.outputs.clone(),
        partitions: scored.input.sources.partitions.clone(),
        offsets: scored.input.sources.offsets.clone(),
        variant_of_row: scored.variant_of_row.clone(),
        variants: Arc::clone(&scored.models),
        shadow: scored.shadow.as_ref().map(|s| ShadowDrift {
            name: s.model.name.clone(),
            outputs: s.outputs.clone(),
            agreement: s.agreement,
        }),
    }
}

/// A topic and the delivery its records share.
struct Destination<'a> {
    topic: &'a str,
    delivery: &'a Arc<Delivery>,
}

/// Hands one output of row `row` to the producer, waiting while its queue is full.
fn produce(
    producer: &SinkProducer,
    tracker: &OffsetTracker,
    to: &Destination<'_>,
    sources: &SourcePositions,
    rows: &DeliveryRows,
    row: usize,
    payload: &[u8],
) -> anyhow::Result<()> {
    let topic = to.topic;
    let headers = prediction_headers(sources, rows, row);
    let mut record = BaseRecord::with_opaque_to(topic, Arc::clone(to.delivery))
        .payload(payload)
        .headers(headers);
    if sources.keys.is_valid(row) {
        record = record.key(sources.keys.value(row));
    }
    loop {
        match try_send(producer, record) {
            Ok(()) => return Ok(()),
            Err(SendRefusal::QueueFull(r)) => {
                if tracker.has_failed() {
                    bail!("deliveries are failing; stopping");
                }
                record = r;
                std::thread::sleep(QUEUE_FULL_BACKOFF);
            }
            Err(SendRefusal::Fatal(e)) => bail!("cannot produce to {topic}: {e}"),
        }
    }
}
