//! The Kafka sink: one producer for predictions and dead letters, and the stage that encodes
//! scored batches into predictions. Its delivery callback ([`crate::delivery`]) is where
//! at-least-once is decided: an acknowledged output acknowledges its input offset in the
//! [`OffsetTracker`]; a failed one stops the pipeline before anything past it is committed.
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use arrow_array::{Array, ArrayRef};
use driftline_operators::batch::{SourceBatch, SourcePositions};
use driftline_operators::encode::PredictionEncoder;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

use crate::config::Settings;
pub use crate::delivery::{Delivery, DeliveryKind, DeliveryRows, SinkContext};
use crate::health::HealthState;
use crate::metrics::{PipelineMetrics, Stage};
use crate::model_reload::ModelIdentity;
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
    Ok(Arc::new(config.create_with_context(SinkContext::new(
        tracker, metrics, health,
    ))?))
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
    if !settings.model.shadow.path.as_os_str().is_empty() {
        topics.push(&k.shadow_topic);
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

/// Source-position headers for an output of row `row` of `rows`.
pub fn source_headers(headers: OwnedHeaders, rows: &DeliveryRows, row: usize) -> OwnedHeaders {
    headers
        .insert(Header {
            key: HEADER_SOURCE_TOPIC,
            value: Some(rows.topics[row].as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_PARTITION,
            value: Some(itoa::Buffer::new().format(rows.partitions[row]).as_bytes()),
        })
        .insert(Header {
            key: HEADER_SOURCE_OFFSET,
            value: Some(itoa::Buffer::new().format(rows.offsets[row]).as_bytes()),
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
    rows: &DeliveryRows,
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
    source_headers(headers, rows, 0)
}

/// What to do with a record the producer refused.
pub enum SendRefusal<'a> {
    /// The local queue is full: wait for deliveries to drain it and retry the same record.
    QueueFull(BaseRecord<'a, [u8], [u8], Arc<Delivery>>),
    Fatal(KafkaError),
}

/// Enqueues a record; the caller decides how to wait when the queue is full.
pub fn try_send<'a>(
    producer: &SinkProducer,
    record: BaseRecord<'a, [u8], [u8], Arc<Delivery>>,
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
    /// The models that scored it, serving model first (they change when a reload is swapped in).
    pub models: Arc<[Arc<ModelIdentity>]>,
    /// Per row, its model's index in `models`; `None`: all rows by `models[0]`.
    pub variant_of_row: Option<Arc<[u8]>>,
    /// The shadow model's predictions of the same rows, for the shadow topic.
    pub shadow: Option<ShadowScores>,
    /// The batch's span, ended when the sink has handed every prediction to the producer.
    pub span: tracing::Span,
}

/// A shadow model's outputs for a batch, and how far they agree with the serving ones.
pub struct ShadowScores {
    pub model: Arc<ModelIdentity>,
    pub outputs: Vec<(String, ArrayRef)>,
    pub agreement: crate::shadow_agreement::Agreement,
}

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
