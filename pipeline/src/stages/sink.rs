//! The sink stage: encodes each scored batch into one prediction per row (and shadow
//! predictions) and hands them to the producer, on its own thread. Each batch shares one
//! [`Delivery`], whose acknowledgement releases the batch's input offsets.
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
use crate::stages::messages::ScoredBatch;
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

/// Encodes one prediction per row and hands it to the producer, on its own thread; shadow
/// predictions go to `shadow_topic`.
pub fn sink_stage(
    producer: &SinkProducer,
    tracker: &OffsetTracker,
    metrics: &PipelineMetrics,
    output_topic: &str,
    shadow_topic: &str,
    mut rx: mpsc::Receiver<ScoredBatch>,
) -> anyhow::Result<()> {
    let mut payload = Vec::with_capacity(512);
    // One encoder per model, rebuilt when a reload changes the models: predictions name the
    // model that made them.
    let mut encoders_for: Option<Arc<[Arc<ModelIdentity>]>> = None;
    let mut encoders: Vec<PredictionEncoder> = Vec::new();
    let mut shadow_encoder: Option<(Arc<ModelIdentity>, PredictionEncoder)> = None;
    while let Some(mut scored) = rx.blocking_recv() {
        if !encoders_for
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, &scored.models))
        {
            encoders = scored.models.iter().map(|m| encoder_for(m)).collect();
            encoders_for = Some(Arc::clone(&scored.models));
        }
        let _span = tracing::info_span!(parent: &scored.span, "encode_produce").entered();
        let started = Instant::now();
        let processing_ms = now_ms();
        let n = scored.input.num_rows();
        let rows = DeliveryRows::take(&mut scored.input.sources);
        let delivery = Delivery::new(DeliveryKind::Prediction, rows, n);
        let shadow_delivery = scored
            .shadow
            .as_ref()
            .map(|_| Delivery::new(DeliveryKind::Shadow, DeliveryRows::default(), n));
        let sources = &scored.input.sources;
        let to = Destination {
            topic: output_topic,
            delivery: &delivery,
        };
        for row in 0..n {
            let variant = scored
                .variant_of_row
                .as_ref()
                .map_or(0, |v| v[row] as usize);
            encoders[variant].encode_row(
                &scored.input.batch,
                &scored.outputs,
                row,
                processing_ms,
                &mut payload,
            );
            produce(
                producer,
                tracker,
                &to,
                sources,
                &delivery.rows,
                row,
                &payload,
            )?;
        }
        if let Some(shadow) = &scored.shadow {
            if !shadow_encoder
                .as_ref()
                .is_some_and(|(m, _)| Arc::ptr_eq(m, &shadow.model))
            {
                shadow_encoder = Some((Arc::clone(&shadow.model), encoder_for(&shadow.model)));
            }
            if let (Some((_, encoder)), Some(shadow_delivery)) =
                (&mut shadow_encoder, &shadow_delivery)
            {
                let to_shadow = Destination {
                    topic: shadow_topic,
                    delivery: shadow_delivery,
                };
                for row in 0..n {
                    encoder.encode_row(
                        &scored.input.batch,
                        &shadow.outputs,
                        row,
                        processing_ms,
                        &mut payload,
                    );
                    let rows = &delivery.rows;
                    let sent = produce(producer, tracker, &to_shadow, sources, rows, row, &payload);
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
        }
        metrics.record_stage(Stage::Encode, started.elapsed());
    }
    Ok(())
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
