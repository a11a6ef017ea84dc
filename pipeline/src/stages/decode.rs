//! The decode stage: `pipeline.decode_threads` threads, each taking the source's chunks as they
//! come, decoding their events into an Arrow batch and dead-lettering what cannot be decoded.
//! Each closed batch gets a span (linked to the trace context of its events) and keeps its
//! chunk's number; the threads pass batches on in chunk order ([`DecodedInOrder`]).
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{bail, Context};
use driftline_operators::batch::{BatchBuilder, SourcePosition};
use driftline_operators::decode::{DecodeError, DecodeReason, EventDecoder};
use opentelemetry::trace::SpanContext;
use rdkafka::producer::BaseRecord;
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::clock::now_ms;
use crate::kafka::delivery::{Delivery, DeliveryKind, DeliveryRows};
use crate::kafka::headers::{dead_letter_headers, DeadLetterCause};
use crate::kafka::producer::{send_waiting, SinkProducer};
use crate::kafka::trace_context::{self, TRACEPARENT, TRACESTATE};
use crate::stages::chunk::{ChunkEvent, EventChunk};
use crate::stages::messages::QueuedBatch;
use crate::stages::ordering::{Reorder, Sequenced};
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// A span links to at most this many producer contexts (the first distinct ones of its batch):
/// enough to find the producers, bounded so a batch of 8192 traced events stays cheap.
const MAX_LINKS: usize = 128;

/// Trace headers longer than this are not carried to predictions: W3C Trace Context's
/// `traceparent` is 55 bytes, and 512 is the `tracestate` length it asks every system to carry.
const MAX_TRACE_HEADER_BYTES: usize = 512;

/// The chunks every decode thread takes from: whichever thread is free takes the next one.
pub type SharedChunks = Arc<Mutex<mpsc::Receiver<EventChunk>>>;

/// Where the decode threads pass batches on, in chunk order: a batch decoded early waits here
/// for the ones before it. Whichever thread completes the run sends it; the others wait on the
/// lock meanwhile, as they would on the full channel.
pub struct DecodedInOrder {
    waiting: Mutex<Reorder<QueuedBatch>>,
    tx: mpsc::Sender<Sequenced<QueuedBatch>>,
}

impl DecodedInOrder {
    pub fn new(tx: mpsc::Sender<Sequenced<QueuedBatch>>) -> Self {
        DecodedInOrder {
            waiting: Mutex::new(Reorder::default()),
            tx,
        }
    }

    fn send(&self, piece: Sequenced<QueuedBatch>) -> anyhow::Result<()> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.push(piece);
        while let Some(ready) = waiting.pop() {
            if self.tx.blocking_send(ready).is_err() {
                bail!("the inference stage stopped");
            }
        }
        Ok(())
    }
}

/// One decode thread.
pub struct DecodeWorker {
    pub producer: Arc<SinkProducer>,
    pub metrics: Arc<PipelineMetrics>,
    pub decoder: EventDecoder,
    pub builder: BatchBuilder,
    pub dlq_topic: String,
    /// Dead letters are cut to this many bytes of key and payload (`pipeline.max_dead_letter_bytes`).
    pub max_dead_letter_bytes: usize,
    /// Events with a longer key are dead-lettered, the key cut to this (`pipeline.max_key_bytes`).
    pub max_key_bytes: usize,
    pub chunks: SharedChunks,
    pub batches: Arc<DecodedInOrder>,
}

impl DecodeWorker {
    /// Decodes chunks until the source closes their channel.
    pub fn run(mut self) -> anyhow::Result<()> {
        loop {
            // The lock is held while waiting: the other threads wait on it instead of the channel.
            let chunk = self
                .chunks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .blocking_recv();
            let Some(chunk) = chunk else {
                return Ok(());
            };
            let decoded = self.decode(&chunk)?;
            self.batches.send(decoded)?;
        }
    }

    /// One chunk into one batch (`None` when every event was dead-lettered).
    fn decode(&mut self, chunk: &EventChunk) -> anyhow::Result<Sequenced<QueuedBatch>> {
        let started = Instant::now();
        let mut links = Vec::new();
        for event in chunk.events() {
            self.accept(&event, &mut links)?;
        }
        if self.builder.is_empty() {
            return Ok(Sequenced {
                seq: chunk.seq,
                item: None,
            });
        }
        let batch = self.builder.finish().context("closing a batch")?;
        self.metrics.record_batch(batch.num_rows());
        self.metrics.record_stage(Stage::Decode, started.elapsed());
        let span = tracing::info_span!(
            "driftline.batch",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.batch.message_count = batch.num_rows(),
        );
        for link in links {
            span.add_link(link);
        }
        Ok(Sequenced {
            seq: chunk.seq,
            item: Some(QueuedBatch {
                batch,
                // The queue-wait latency is the wait for a session, after decoding.
                closed_at: Instant::now(),
                span,
            }),
        })
    }

    /// Takes one event: into the batch, or to the dead-letter topic.
    fn accept(
        &mut self,
        event: &ChunkEvent<'_>,
        links: &mut Vec<SpanContext>,
    ) -> anyhow::Result<()> {
        let payload = event.payload.unwrap_or_default();
        let key_len = event.key.map_or(0, <[u8]>::len);
        let decoded = if key_len > self.max_key_bytes {
            // Every prediction copies its event's key: one the broker cannot take would stop
            // the pipeline at this offset on every restart.
            Err(DecodeError::new(
                DecodeReason::TooLarge,
                Some("key"),
                format!(
                    "the Kafka key is {key_len} bytes, more than pipeline.max_key_bytes ({})",
                    self.max_key_bytes
                ),
            ))
        } else {
            self.decoder.decode(payload, event.timestamp_ms)
        };
        let row = match decoded {
            Ok(row) => row,
            Err(error) => return self.dead_letter(event, &error),
        };
        let traceparent = bounded_trace_header(&self.metrics, event.header(TRACEPARENT));
        let tracestate = bounded_trace_header(&self.metrics, event.header(TRACESTATE));
        if let Some(cx) = traceparent.and_then(trace_context::parse_traceparent) {
            if links.len() < MAX_LINKS && !links.contains(&cx) {
                links.push(cx);
            }
        }
        let position = SourcePosition {
            topic: event.topic,
            partition: event.partition,
            offset: event.offset,
            key: event.key,
            traceparent,
            tracestate,
            kafka_timestamp_ms: event.timestamp_ms.unwrap_or_else(now_ms),
        };
        self.builder.push(row, position);
        Ok(())
    }

    fn dead_letter(&self, event: &ChunkEvent<'_>, error: &DecodeError) -> anyhow::Result<()> {
        let (topic, partition, offset) = (event.topic, event.partition, event.offset);
        tracing::debug!(topic = %topic, partition, offset, error = %error, "dead-lettering event");
        let kafka_timestamp_ms = event.timestamp_ms.unwrap_or_else(now_ms);
        let delivery = || {
            let rows = DeliveryRows::one(Arc::clone(topic), partition, offset, kafka_timestamp_ms);
            let kind = DeliveryKind::DeadLetter {
                reason: error.reason.as_str(),
            };
            Delivery::new(kind, rows, 1)
        };
        // Key, payload and the event's own headers are cut to what any broker accepts: a dead
        // letter the broker refused would stop the pipeline on every restart. The full event
        // stays at its source offset.
        let key_room = self.max_key_bytes.min(self.max_dead_letter_bytes);
        let key = event.key.map(|k| &k[..k.len().min(key_room)]);
        let key_len = event.key.map_or(0, <[u8]>::len);
        let payload = event.payload.unwrap_or_default();
        let room = self
            .max_dead_letter_bytes
            .saturating_sub(key.map_or(0, <[u8]>::len));
        let kept = &payload[..payload.len().min(room)];
        let mut cause = DeadLetterCause {
            reason: error.reason.as_str(),
            field: error.field.as_deref(),
            detail: &error.detail,
            original_bytes: (kept.len() < payload.len()).then_some(payload.len()),
            original_key_bytes: key.filter(|k| k.len() < key_len).map(|_| key_len),
            minimal: false,
        };
        let original = event.owned_headers();
        let first = delivery();
        let headers = dead_letter_headers(original.as_ref(), &cause, &first.rows);
        let mut record =
            BaseRecord::with_opaque_to(self.dlq_topic.as_str(), first).headers(headers);
        if event.payload.is_some() {
            record = record.payload(kept);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        let refused = match send_waiting(&self.producer, record) {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Refused whole (too large for this producer, most likely): the reason and the source
        // position alone still account for the event, so the stream goes on.
        tracing::warn!(topic = %topic, partition, offset, error = %refused, "dead letter refused; sending a minimal one");
        PipelineMetrics::add(&self.metrics.minimal_dead_letters, 1);
        let minimal = delivery();
        cause.minimal = true;
        let headers = dead_letter_headers(original.as_ref(), &cause, &minimal.rows);
        let record = BaseRecord::with_opaque_to(self.dlq_topic.as_str(), minimal).headers(headers);
        send_waiting(&self.producer, record).map_err(|e| {
            anyhow::anyhow!(
                "cannot produce to the dead-letter topic {}, not even a minimal dead letter: {e}",
                self.dlq_topic
            )
        })
    }
}

/// A trace header is carried to the predictions only up to [`MAX_TRACE_HEADER_BYTES`]; a longer
/// one is dropped and counted (the event is still scored).
fn bounded_trace_header<'m>(
    metrics: &PipelineMetrics,
    value: Option<&'m [u8]>,
) -> Option<&'m [u8]> {
    match value {
        Some(v) if v.len() > MAX_TRACE_HEADER_BYTES => {
            PipelineMetrics::add(&metrics.trace_headers_dropped, 1);
            None
        }
        v => v,
    }
}
