//! The Kafka source: a `StreamConsumer` in the consumer group, with at-least-once settings that
//! config cannot override (offsets are stored by the [`OffsetTracker`], never automatically),
//! and a rebalance hook that keeps the tracker in step with the assignment.
use std::sync::{Arc, Weak};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};

use crate::config::Settings;
use crate::offsets::{OffsetStore, OffsetTracker};

/// The consumer type of the pipeline.
pub type SourceConsumer = StreamConsumer<SourceContext>;

/// Hooks librdkafka calls on the polling thread.
pub struct SourceContext {
    tracker: Arc<OffsetTracker>,
}

impl ClientContext for SourceContext {}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Commit what is acknowledged; events still in flight for these partitions are
            // redelivered to the next owner (duplicates, never losses).
            let mut abandoned = 0;
            for p in partitions.elements() {
                abandoned += self.tracker.revoke(p.topic(), p.partition());
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit on revoke (nothing to commit is normal)");
            }
            tracing::info!(
                partitions = partitions.count(),
                in_flight_redelivered = abandoned,
                "partitions revoked"
            );
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                for p in partitions.elements() {
                    self.tracker.assign(p.topic(), p.partition());
                }
                tracing::info!(partitions = partitions.count(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "offset commit");
        }
    }
}

/// Stores committable offsets in the consumer (librdkafka commits them in the background).
/// Holds the consumer weakly: the tracker must not keep a stopped consumer alive.
struct ConsumerOffsetStore(Weak<SourceConsumer>);

impl OffsetStore for ConsumerOffsetStore {
    fn store(&self, topic: &str, partition: i32, offset: i64) {
        if let Some(consumer) = self.0.upgrade() {
            // Fails only when the partition was revoked meanwhile; its new owner redoes the rest.
            if let Err(e) = consumer.store_offset(topic, partition, offset) {
                tracing::debug!(error = %e, topic, partition, offset, "offset not stored");
            }
        }
    }
}

/// Creates the consumer, subscribes it, and connects it to the tracker.
pub fn create_consumer(
    settings: &Settings,
    tracker: Arc<OffsetTracker>,
) -> KafkaResult<Arc<SourceConsumer>> {
    let k = &settings.kafka;
    let mut config = ClientConfig::new();
    for (key, value) in k.common.iter().chain(&k.consumer) {
        config.set(key, value);
    }
    config
        .set("bootstrap.servers", &k.bootstrap_servers)
        .set("group.id", &k.group_id)
        .set("auto.offset.reset", &k.auto_offset_reset)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    let consumer: Arc<SourceConsumer> = Arc::new(config.create_with_context(SourceContext {
        tracker: Arc::clone(&tracker),
    })?);
    tracker.set_store(Arc::new(ConsumerOffsetStore(Arc::downgrade(&consumer))));
    let topics: Vec<&str> = k.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}
