//! The Kafka producer that every output goes through: predictions, shadow predictions, dead
//! letters, drift reports and alerts. Its delivery callback ([`crate::kafka::delivery`]) is where
//! at-least-once is decided: an acknowledged output acknowledges its input offset in the
//! [`OffsetTracker`]; a failed one stops the pipeline before anything past it is committed.
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};

use crate::config::Settings;
use crate::kafka::client::{client_config, Role};
use crate::kafka::delivery::SinkContext;
use crate::kafka::offsets::OffsetTracker;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::PipelineMetrics;

pub type SinkProducer = ThreadedProducer<SinkContext>;

pub fn create_producer(
    settings: &Settings,
    tracker: Arc<OffsetTracker>,
    metrics: Arc<PipelineMetrics>,
    health: Arc<HealthState>,
) -> KafkaResult<Arc<SinkProducer>> {
    let mut config = client_config(settings, Role::Producer);
    config.set(
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
    let mut topics = vec![&k.dlq_topic];
    if settings.has_model() {
        topics.push(&k.output_topic);
    }
    if settings.drift.enabled {
        topics.extend([&k.drift_topic, &k.alerts_topic]);
    }
    if settings.fleet.enabled {
        topics.push(&settings.fleet.partials_topic);
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

/// What to do with a record the producer refused.
pub enum SendRefusal<'a, O: rdkafka::util::IntoOpaque> {
    /// The local queue is full: wait for deliveries to drain it and retry the same record.
    QueueFull(BaseRecord<'a, [u8], [u8], O>),
    Fatal(KafkaError),
}

/// Enqueues a record; the caller decides how to wait when the queue is full.
pub fn try_send<'a, C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    record: BaseRecord<'a, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), SendRefusal<'a, C::DeliveryOpaque>> {
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

/// Enqueues a record from a thread of its own, waiting while the queue is full (drift reports,
/// alerts, label dead letters, the aggregator's reports: records that no other bound holds
/// back).
pub fn send_waiting<C: ProducerContext>(
    producer: &ThreadedProducer<C>,
    mut record: BaseRecord<'_, [u8], [u8], C::DeliveryOpaque>,
) -> Result<(), KafkaError> {
    loop {
        match try_send(producer, record) {
            Ok(()) => return Ok(()),
            Err(SendRefusal::QueueFull(r)) => {
                record = r;
                std::thread::sleep(QUEUE_FULL_BACKOFF);
            }
            Err(SendRefusal::Fatal(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
