//! The source stage: consumes, decodes and batches on the async side of the pipeline, and
//! dead-letters what cannot be decoded. Each closed batch gets a span (linked to the trace
//! context of its events) and the time it closed, for the queue-wait latency.
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use driftline_operators::batch::{BatchBuilder, BatchPolicy, SourcePosition};
use driftline_operators::decode::{DecodeError, DecodeReason, EventDecoder};
use futures_util::{FutureExt, StreamExt};
use opentelemetry::trace::SpanContext;
use rdkafka::consumer::MessageStream;
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::BaseRecord;
use tokio::sync::mpsc;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::clock::now_ms;
use crate::kafka::consumer::{SourceConsumer, SourceContext};
use crate::kafka::delivery::{Delivery, DeliveryKind, DeliveryRows};
use crate::kafka::headers::{dead_letter_headers, DeadLetterCause};
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::producer::{try_send, SendRefusal, SinkProducer, QUEUE_FULL_BACKOFF};
use crate::kafka::trace_context::{self, TRACEPARENT, TRACESTATE};
use crate::stages::messages::QueuedBatch;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// A span links to at most this many producer contexts (the first distinct ones of its batch):
/// enough to find the producers, bounded so a batch of 8192 traced events stays cheap.
const MAX_LINKS: usize = 128;

/// Trace headers longer than this are not carried to predictions: W3C Trace Context's
/// `traceparent` is 55 bytes, and 512 is the `tracestate` length it asks every system to carry.
const MAX_TRACE_HEADER_BYTES: usize = 512;

/// The most messages taken from the consumer's queue in one go (see [`SourceStage::burst`]);
/// bounded so that shutdown, the linger deadline and failures are looked at between bursts.
const MAX_BURST: usize = 1024;

/// Consumes, decodes and batches; dead-letters what cannot be decoded.
pub struct SourceStage<'a> {
    pub consumer: &'a SourceConsumer,
    pub producer: &'a SinkProducer,
    pub tracker: &'a OffsetTracker,
    pub metrics: &'a PipelineMetrics,
    pub health: &'a HealthState,
    pub decoder: EventDecoder,
    pub builder: BatchBuilder,
    pub policy: BatchPolicy,
    pub dlq_topic: &'a str,
    /// Dead letters are cut to this many bytes of key and payload (`pipeline.max_dead_letter_bytes`).
    pub max_dead_letter_bytes: usize,
    /// Events with a longer key are dead-lettered, the key cut to this (`pipeline.max_key_bytes`).
    pub max_key_bytes: usize,
    pub batch_tx: mpsc::Sender<QueuedBatch>,
    /// Time spent taking the open batch's events from the consumer's queue and decoding them,
    /// recorded as the `decode` stage when it closes.
    pub decode_time: Duration,
    /// The producers' trace contexts of the open batch's events.
    pub links: Vec<SpanContext>,
}

impl<'a> SourceStage<'a> {
    pub async fn run(&mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        // One stream for the stage's life: `StreamConsumer::recv` makes (and drops) a stream,
        // with a locked waker registration, for every message.
        let consumer = self.consumer;
        let mut messages = consumer.stream();
        let mut deadline: Option<Instant> = None;
        let mut failure_check = tokio::time::interval(Duration::from_millis(100));
        loop {
            self.health.heartbeat();
            let linger = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = linger => {
                    self.flush().await?;
                    deadline = None;
                }
                _ = failure_check.tick() => {
                    if self.tracker.has_failed() {
                        break;
                    }
                }
                message = messages.next() => {
                    let message = message.expect("a Kafka message stream never ends");
                    self.burst(message, &mut messages, &mut deadline).await?;
                }
            }
        }
        self.flush().await
    }

    /// Takes `first` and then whatever librdkafka already holds, up to [`MAX_BURST`] messages
    /// or a full batch, without going back through the `select!` above: its timers, the stream's
    /// waker registration, the heartbeat and the clock reads are per burst, not per event (perf
    /// had them at about a fifth of this thread). A burst never waits for a message.
    async fn burst(
        &mut self,
        first: KafkaResult<BorrowedMessage<'a>>,
        messages: &mut MessageStream<'a, SourceContext>,
        deadline: &mut Option<Instant>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(message) = next.take() {
            taken += 1;
            match message {
                Ok(message) => {
                    if self.accept(&message).await? && deadline.is_none() {
                        *deadline = Some(self.policy.deadline(started));
                    }
                    if self.policy.is_full(self.builder.len()) {
                        self.decode_time += started.elapsed();
                        self.flush().await?;
                        *deadline = None;
                        return Ok(());
                    }
                }
                Err(e) => {
                    PipelineMetrics::add(&self.metrics.consumer_errors, 1);
                    tracing::warn!(error = %e, "consumer error");
                }
            }
            if taken < MAX_BURST {
                // Ready now or not at all; on "not yet" the next `select!` turn waits for it.
                next = messages.next().now_or_never().flatten();
            }
        }
        self.decode_time += started.elapsed();
        Ok(())
    }

    /// Takes one message: into the batch (true) or to the dead-letter topic (false).
    async fn accept(&mut self, message: &BorrowedMessage<'_>) -> anyhow::Result<bool> {
        PipelineMetrics::add(&self.metrics.events_in, 1);
        let topic: Arc<str> = self.topic_arc(message.topic());
        self.tracker
            .register(&topic, message.partition(), message.offset());
        let kafka_timestamp_ms = message.timestamp().to_millis();
        let payload = message.payload().unwrap_or_default();
        let key_len = message.key().map_or(0, <[u8]>::len);
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
            self.decoder.decode(payload, kafka_timestamp_ms)
        };
        match decoded {
            Ok(row) => {
                let (traceparent, tracestate) = trace_headers(message);
                let (traceparent, tracestate) = (
                    bounded_trace_header(self.metrics, traceparent),
                    bounded_trace_header(self.metrics, tracestate),
                );
                if let Some(cx) = traceparent.and_then(trace_context::parse_traceparent) {
                    if self.links.len() < MAX_LINKS && !self.links.contains(&cx) {
                        self.links.push(cx);
                    }
                }
                let position = SourcePosition {
                    topic: &topic,
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key(),
                    traceparent,
                    tracestate,
                    kafka_timestamp_ms: kafka_timestamp_ms.unwrap_or_else(now_ms),
                };
                self.builder.push(row, position);
                self.tracker.set_open_rows(self.builder.len());
                Ok(true)
            }
            Err(error) => {
                self.dead_letter(message, topic, &error).await?;
                Ok(false)
            }
        }
    }

    /// Reuses one `Arc<str>` per input topic rather than allocating per message.
    fn topic_arc(&self, topic: &str) -> Arc<str> {
        thread_local! {
            static TOPICS: std::cell::RefCell<Vec<Arc<str>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        TOPICS.with_borrow_mut(|topics| match topics.iter().find(|t| &***t == topic) {
            Some(t) => Arc::clone(t),
            None => {
                let t: Arc<str> = Arc::from(topic);
                topics.push(Arc::clone(&t));
                t
            }
        })
    }

    async fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        topic: Arc<str>,
        error: &DecodeError,
    ) -> anyhow::Result<()> {
        tracing::debug!(topic = %topic, partition = message.partition(), offset = message.offset(), error = %error, "dead-lettering event");
        let kafka_timestamp_ms = message.timestamp().to_millis().unwrap_or_else(now_ms);
        let rows = DeliveryRows::one(
            Arc::clone(&topic),
            message.partition(),
            message.offset(),
            kafka_timestamp_ms,
        );
        let kind = DeliveryKind::DeadLetter {
            reason: error.reason.as_str(),
        };
        let delivery = Delivery::new(kind, rows, 1);
        // Key, payload and the event's own headers are cut to what any broker accepts: a dead
        // letter the broker refused would stop the pipeline on every restart. The full event
        // stays at its source offset.
        let key_room = self.max_key_bytes.min(self.max_dead_letter_bytes);
        let key = message.key().map(|k| &k[..k.len().min(key_room)]);
        let key_len = message.key().map_or(0, <[u8]>::len);
        let payload = message.payload().unwrap_or_default();
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
        let headers = dead_letter_headers(message.headers(), &cause, &delivery.rows);
        let mut record = BaseRecord::with_opaque_to(self.dlq_topic, delivery).headers(headers);
        if message.payload().is_some() {
            record = record.payload(kept);
        }
        if let Some(key) = key {
            record = record.key(key);
        }
        let refused = match self.send_dead_letter(record).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        // Refused whole (too large for this producer, most likely): the reason and the source
        // position alone still account for the event, so the stream goes on.
        tracing::warn!(topic = %topic, partition = message.partition(), offset = message.offset(), error = %refused, "dead letter refused; sending a minimal one");
        PipelineMetrics::add(&self.metrics.minimal_dead_letters, 1);
        let rows = DeliveryRows::one(
            topic,
            message.partition(),
            message.offset(),
            kafka_timestamp_ms,
        );
        let delivery = Delivery::new(kind, rows, 1);
        cause.minimal = true;
        let headers = dead_letter_headers(message.headers(), &cause, &delivery.rows);
        let record = BaseRecord::with_opaque_to(self.dlq_topic, delivery).headers(headers);
        self.send_dead_letter(record).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot produce to the dead-letter topic {}, not even a minimal dead letter: {e}",
                self.dlq_topic
            )
        })
    }

    /// Hands a dead letter to the producer, waiting while its queue is full.
    async fn send_dead_letter(
        &self,
        mut record: BaseRecord<'_, [u8], [u8], Arc<Delivery>>,
    ) -> Result<(), rdkafka::error::KafkaError> {
        loop {
            match try_send(self.producer, record) {
                Ok(()) => return Ok(()),
                Err(SendRefusal::QueueFull(r)) => {
                    record = r;
                    tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                }
                Err(SendRefusal::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.builder.is_empty() {
            return Ok(());
        }
        let batch = self.builder.finish().context("closing a batch")?;
        self.tracker.set_open_rows(0);
        self.metrics.record_batch(batch.num_rows());
        self.metrics
            .record_stage(Stage::Decode, std::mem::take(&mut self.decode_time));
        let span = tracing::info_span!(
            "driftline.batch",
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.batch.message_count = batch.num_rows(),
        );
        for link in self.links.drain(..) {
            span.add_link(link);
        }
        let queued = QueuedBatch {
            batch,
            closed_at: Instant::now(),
            span,
        };
        // Waiting on backpressure is not being stuck: keep the liveness heartbeat going.
        let send = self.batch_tx.send(queued);
        tokio::pin!(send);
        loop {
            tokio::select! {
                sent = &mut send => {
                    return sent.map_err(|_| anyhow::anyhow!("the inference stage stopped"));
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => self.health.heartbeat(),
            }
        }
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

/// The record's `traceparent` and `tracestate` headers, when present.
fn trace_headers<'m>(message: &'m BorrowedMessage<'_>) -> (Option<&'m [u8]>, Option<&'m [u8]>) {
    let Some(headers) = message.headers() else {
        return (None, None);
    };
    let (mut parent, mut state) = (None, None);
    for h in headers.iter() {
        match h.key {
            TRACEPARENT => parent = h.value,
            TRACESTATE => state = h.value,
            _ => {}
        }
    }
    (parent, state)
}
