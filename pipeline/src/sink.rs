//! The Kafka sink: one producer for predictions and dead letters, and the stage that encodes
//! scored batches into predictions. Its delivery callback is where
//! at-least-once is decided: an acknowledged output acknowledges its input offset in the
//! [`OffsetTracker`]; a failed one stops the pipeline before anything past it is committed.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use arrow_array::{Array, ArrayRef};
use driftline_operators::batch::{SourceBatch, SourcePositions};
use driftline_operators::encode::PredictionEncoder;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext};
use tokio::sync::mpsc;

use crate::config::Settings;
use crate::health::HealthState;
use crate::kafka_stats::ClientStatistics;
use crate::metrics::{PipelineMetrics, Stage};
use crate::offsets::OffsetTracker;
use crate::trace_context::{TRACEPARENT, TRACESTATE};

/// Header names on every output.
pub const HEADER_SOURCE_TOPIC: &str = "driftline.source.topic";
pub const HEADER_SOURCE_PARTITION: &str = "driftline.source.partition";
pub const HEADER_SOURCE_OFFSET: &str = "driftline.source.offset";
/// Headers on dead letters.
pub const HEADER_ERROR_REASON: &str = "driftline.error.reason";
pub const HEADER_ERROR_FIELD: &str = "driftline.error.field";
pub const HEADER_ERROR_DETAIL: &str = "driftline.error.detail";
/// On a dead letter cut to `pipeline.max_dead_letter_bytes`: the original payload's size.
pub const HEADER_ERROR_ORIGINAL_BYTES: &str = "driftline.error.original_bytes";

pub type SinkProducer = ThreadedProducer<SinkContext>;

/// Which input an output belongs to, carried through librdkafka to the delivery callback.
pub struct Delivery {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub kafka_timestamp_ms: i64,
    pub kind: DeliveryKind,
    /// When it was handed to the producer (for the produce-acknowledgement latency).
    pub enqueued: Instant,
}

/// What an output is, for counting and for whether it acknowledges an input offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryKind {
    Prediction,
    /// With the reason the event was rejected, for the metrics.
    DeadLetter {
        reason: &'static str,
    },
    /// Drift reports and alerts: derived from windows, not from one input offset.
    Side,
}

pub struct SinkContext {
    tracker: Arc<OffsetTracker>,
    metrics: Arc<PipelineMetrics>,
    health: Arc<HealthState>,
}

impl ClientContext for SinkContext {
    fn stats_raw(&self, statistics: &[u8]) {
        match ClientStatistics::parse(statistics) {
            Ok(s) => self.health.producer.set_up(s.broker_up()),
            Err(e) => tracing::debug!(error = %e, "producer statistics"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.producer.set_up(false);
        }
        tracing::warn!(error = %error, reason, "producer");
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = Box<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, d: Box<Delivery>) {
        match result {
            Ok(_) if d.kind == DeliveryKind::Side => {}
            Ok(_) => {
                match d.kind {
                    DeliveryKind::DeadLetter { reason } => self.metrics.count_dead_letter(reason),
                    _ => PipelineMetrics::add(&self.metrics.predictions_out, 1),
                }
                self.metrics
                    .record_end_to_end_ms(now_ms().saturating_sub(d.kafka_timestamp_ms));
                self.metrics
                    .record_stage(Stage::ProduceAck, d.enqueued.elapsed());
                self.tracker.acknowledge(&d.topic, d.partition, d.offset);
            }
            Err((e, _)) if d.kind == DeliveryKind::Side => {
                // A lost report or alert holds no input back; the next window reports again.
                PipelineMetrics::add(&self.metrics.delivery_failures, 1);
                tracing::warn!(error = %e, topic = %d.topic, "drift report or alert not delivered");
            }
            Err((e, _)) => {
                PipelineMetrics::add(&self.metrics.delivery_failures, 1);
                tracing::error!(error = %e, topic = %d.topic, partition = d.partition, offset = d.offset, "output not delivered; stopping without committing it");
                self.tracker.fail();
            }
        }
    }
}

pub fn create_producer(
    settings: &Settings,
    tracker: Arc<OffsetTracker>,
    metrics: Arc<PipelineMetrics>,
    health: Arc<HealthState>,
) -> KafkaResult<Arc<SinkProducer>> {
    let k = &settings.kafka;
    let mut config = ClientConfig::new();
    for (key, value) in k.common.iter().chain(&k.producer) {
        config.set(key, value);
    }
    config.set("bootstrap.servers", &k.bootstrap_servers).set(
        "statistics.interval.ms",
        settings.health.statistics_interval_ms.to_string(),
    );
    Ok(Arc::new(config.create_with_context(SinkContext {
        tracker,
        metrics,
        health,
    })?))
}

/// Every topic driftline writes must exist: a record for a missing topic would wait in the
/// producer's queue until it times out, and the pipeline would stall with no clear cause.
/// (driftline never creates topics; brokers that auto-create them pass this check.)
pub fn check_output_topics(settings: &Settings, producer: &SinkProducer) -> anyhow::Result<()> {
    let k = &settings.kafka;
    let mut topics = vec![&k.output_topic, &k.dlq_topic];
    if settings.drift.enabled {
        topics.extend([&k.drift_topic, &k.alerts_topic]);
    }
    for topic in topics {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| {
                format!(
                    "fetching metadata for topic `{topic}` from {}",
                    k.bootstrap_servers
                )
            })?;
        let exists = metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty());
        if !exists {
            bail!(
                "output topic `{topic}` does not exist on {}: create it first",
                k.bootstrap_servers
            );
        }
    }
    Ok(())
}

/// Source-position headers for an output of `d`.
pub fn source_headers(headers: OwnedHeaders, d: &Delivery) -> OwnedHeaders {
    headers
        .insert(Header {
            key: HEADER_SOURCE_TOPIC,
            value: Some(d.topic.as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_PARTITION,
            value: Some(itoa::Buffer::new().format(d.partition).as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_OFFSET,
            value: Some(itoa::Buffer::new().format(d.offset).as_bytes()),
        })
}

/// Why an event was dead-lettered, for its headers.
pub struct DeadLetterCause<'a> {
    pub reason: &'a str,
    pub field: Option<&'a str>,
    pub detail: &'a str,
    /// The payload's size when the dead letter carries only its first bytes.
    pub original_bytes: Option<usize>,
}

/// The original headers of a dead-lettered event, followed by the reason it was rejected.
pub fn dead_letter_headers(
    original: Option<&impl Headers>,
    cause: &DeadLetterCause<'_>,
    d: &Delivery,
) -> OwnedHeaders {
    let DeadLetterCause {
        reason,
        field,
        detail,
        original_bytes,
    } = *cause;
    let mut headers = OwnedHeaders::new();
    if let Some(original) = original {
        for h in original.iter() {
            headers = headers.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    headers = headers
        .insert(Header {
            key: HEADER_ERROR_REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: HEADER_ERROR_DETAIL,
            value: Some(detail),
        });
    if let Some(field) = field {
        headers = headers.insert(Header {
            key: HEADER_ERROR_FIELD,
            value: Some(field),
        });
    }
    if let Some(n) = original_bytes {
        headers = headers.insert(Header {
            key: HEADER_ERROR_ORIGINAL_BYTES,
            value: Some(itoa::Buffer::new().format(n).as_bytes()),
        });
    }
    source_headers(headers, d)
}

/// What to do with a record the producer refused.
pub enum SendRefusal<'a> {
    /// The local queue is full: wait for deliveries to drain it and retry the same record.
    QueueFull(BaseRecord<'a, [u8], [u8], Box<Delivery>>),
    Fatal(KafkaError),
}

/// Enqueues a record; the caller decides how to wait when the queue is full.
pub fn try_send<'a>(
    producer: &SinkProducer,
    record: BaseRecord<'a, [u8], [u8], Box<Delivery>>,
) -> Result<(), SendRefusal<'a>> {
    match producer.send(record) {
        Ok(()) => Ok(()),
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
            Err(SendRefusal::QueueFull(record))
        }
        Err((e, _)) => Err(SendRefusal::Fatal(e)),
    }
}

/// Pause before retrying a full queue: long enough for librdkafka to deliver a few batches.
pub const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(2);

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A scored batch on its way to the sink.
pub struct ScoredBatch {
    pub input: SourceBatch,
    pub outputs: Vec<(String, ArrayRef)>,
    /// The model that scored it (it changes when a reload is swapped in).
    pub model: Arc<crate::model_reload::ModelIdentity>,
    /// The batch's span, ended when the sink has handed every prediction to the producer.
    pub span: tracing::Span,
}

/// The source position headers of a prediction, and its event's trace context if it had one.
fn prediction_headers(sources: &SourcePositions, row: usize, d: &Delivery) -> OwnedHeaders {
    let mut headers = source_headers(OwnedHeaders::new_with_capacity(5), d);
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

/// Encodes one prediction per row and hands it to the producer, on its own thread.
pub fn sink_stage(
    producer: &SinkProducer,
    tracker: &OffsetTracker,
    metrics: &PipelineMetrics,
    mut encoder: PredictionEncoder,
    output_topic: &str,
    mut rx: mpsc::Receiver<ScoredBatch>,
) -> anyhow::Result<()> {
    let mut payload = Vec::with_capacity(512);
    let mut encoder_model: Option<Arc<crate::model_reload::ModelIdentity>> = None;
    while let Some(scored) = rx.blocking_recv() {
        // After a reload, predictions name the model that made them.
        if encoder_model
            .as_ref()
            .is_some_and(|m| !Arc::ptr_eq(m, &scored.model))
        {
            let m = &scored.model;
            encoder = PredictionEncoder::new(&m.name, &m.version, &m.sha256);
        }
        encoder_model = Some(Arc::clone(&scored.model));
        let _span = tracing::info_span!(parent: &scored.span, "encode_produce").entered();
        let started = Instant::now();
        let processing_ms = now_ms();
        let sources = &scored.input.sources;
        for row in 0..scored.input.num_rows() {
            encoder.encode_row(
                &scored.input.batch,
                &scored.outputs,
                row,
                processing_ms,
                &mut payload,
            );
            let delivery = Delivery {
                topic: Arc::clone(&sources.topics[row]),
                partition: sources.partitions[row],
                offset: sources.offsets[row],
                kafka_timestamp_ms: sources.kafka_timestamps_ms[row],
                kind: DeliveryKind::Prediction,
                enqueued: Instant::now(),
            };
            let headers = prediction_headers(sources, row, &delivery);
            let mut record = BaseRecord::with_opaque_to(output_topic, Box::new(delivery))
                .payload(&payload[..])
                .headers(headers);
            if sources.keys.is_valid(row) {
                record = record.key(sources.keys.value(row));
            }
            loop {
                match try_send(producer, record) {
                    Ok(()) => break,
                    Err(SendRefusal::QueueFull(r)) => {
                        if tracker.has_failed() {
                            bail!("deliveries are failing; stopping");
                        }
                        record = r;
                        std::thread::sleep(QUEUE_FULL_BACKOFF);
                    }
                    Err(SendRefusal::Fatal(e)) => bail!("cannot produce to {output_topic}: {e}"),
                }
            }
        }
        metrics.record_stage(Stage::Encode, started.elapsed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::HealthState;
    use opentelemetry::metrics::MeterProvider;

    /// librdkafka is built with OpenSSL: TLS with SASL/SCRAM settings pass from config to the
    /// client (a build without it refuses `ssl.ca.location` and SCRAM at creation).
    #[test]
    fn tls_and_scram_settings_reach_librdkafka() {
        let env = [
            ("SECURITY_PROTOCOL", "SASL_SSL"),
            ("SASL_MECHANISMS", "SCRAM-SHA-512"),
            ("SASL_USERNAME", "driftline"),
            ("SASL_PASSWORD", "not-a-real-secret"),
            ("SSL_CA_LOCATION", "/etc/ssl/certs/ca-certificates.crt"),
        ]
        .map(|(k, v)| (format!("DRIFTLINE__KAFKA__COMMON__{k}"), v.to_string()));
        let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/demo.toml");
        let settings =
            Settings::load_with_env(Some(std::path::Path::new(demo)), env).expect("settings");
        assert_eq!(settings.kafka.common["security.protocol"], "SASL_SSL");
        let meter = opentelemetry_sdk::metrics::SdkMeterProvider::default().meter("test");
        let producer = create_producer(
            &settings,
            Arc::new(OffsetTracker::new()),
            Arc::new(PipelineMetrics::new(&meter)),
            Arc::new(HealthState::new(1000)),
        );
        assert!(producer.is_ok(), "{:?}", producer.err());
    }
}
