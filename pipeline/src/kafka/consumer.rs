//! The Kafka source: a `StreamConsumer` in the consumer group, with at-least-once settings that
//! config cannot override (offsets are stored by the [`OffsetTracker`], never automatically),
//! and a rebalance hook that keeps the tracker in step with the assignment: revoked partitions
//! are drained (their in-flight outputs acknowledged, for a bounded time) and committed.
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};

use crate::config::Settings;
use crate::kafka::client::{client_config, Role};
use crate::kafka::offsets::{OffsetStore, OffsetTracker};
use crate::kafka::stats::ClientStatistics;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::PipelineMetrics;

/// How long a revoke waits for the revoked partitions' in-flight outputs to be acknowledged.
/// The group's rebalance waits with it, so it is short; what is left is redelivered.
const REVOKE_DRAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// A revoke stops waiting when no acknowledgement came for this long: the sink is not
/// delivering (a broker down), and waiting longer only holds the group's rebalance.
const REVOKE_DRAIN_STALL: Duration = Duration::from_secs(1);

/// The consumer type of the pipeline.
pub type SourceConsumer = StreamConsumer<SourceContext>;

/// Hooks librdkafka calls on the polling thread.
pub struct SourceContext {
    tracker: Arc<OffsetTracker>,
    health: Arc<HealthState>,
    metrics: Arc<PipelineMetrics>,
}

impl ClientContext for SourceContext {
    fn stats_raw(&self, statistics: &[u8]) {
        match ClientStatistics::parse(statistics) {
            Ok(s) => {
                self.health.consumer.set_up(s.broker_up());
                if let Ok(mut lag) = self.metrics.consumer_lag.lock() {
                    *lag = s.partition_lags();
                }
            }
            Err(e) => tracing::debug!(error = %e, "consumer statistics"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.consumer.set_up(false);
        }
        tracing::warn!(error = %error, reason, "consumer");
    }
}

impl SourceContext {
    /// Waits, bounded, for the in-flight outputs of revoked partitions to be acknowledged, so
    /// the commit that follows covers them: every row already handed downstream can be (the
    /// source's open batch cannot: it closes only after this callback). Each row left unacknowledged
    /// here is processed again by the next owner, so giving up early is what made a rebalance
    /// cost every row in flight as a duplicate (issue 22: up to 12 800 in `rebalance.rs`, when
    /// this stopped after 200 ms without an acknowledgement). It stops after
    /// [`REVOKE_DRAIN_TIMEOUT`], or after [`REVOKE_DRAIN_STALL`] without progress (a sink that
    /// cannot deliver).
    /// Returns the rows in flight when it started, and how long it waited.
    fn drain(&self, partitions: &TopicPartitionList) -> (usize, Duration) {
        let in_flight = || -> usize {
            partitions
                .elements()
                .iter()
                .map(|p| self.tracker.in_flight_of(p.topic(), p.partition()))
                .sum()
        };
        let start = Instant::now();
        let (mut last, mut last_change) = (in_flight(), Instant::now());
        let before = last;
        while last > self.tracker.open_rows()
            && start.elapsed() < REVOKE_DRAIN_TIMEOUT
            && last_change.elapsed() < REVOKE_DRAIN_STALL
        {
            std::thread::sleep(Duration::from_millis(5));
            let now = in_flight();
            if now != last {
                (last, last_change) = (now, Instant::now());
            }
        }
        (before, start.elapsed())
    }
}

impl ConsumerContext for SourceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            // Drain, then commit what is acknowledged; events still in flight for these
            // partitions are redelivered to the next owner (duplicates, never losses).
            let (in_flight_at_revoke, drained) = self.drain(partitions);
            let mut abandoned = 0;
            for p in partitions.elements() {
                abandoned += self.tracker.revoke(p.topic(), p.partition());
            }
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                tracing::debug!(error = %e, "commit on revoke (nothing to commit is normal)");
            }
            tracing::info!(
                partitions = partitions.count(),
                in_flight_at_revoke,
                drain_ms = drained.as_millis() as u64,
                open_rows = self.tracker.open_rows(),
                in_flight_redelivered = abandoned,
                "partitions revoked"
            );
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let assigned = consumer.assignment().map_or(0, |a| a.count());
        self.health
            .assigned_partitions
            .store(assigned, Ordering::Relaxed);
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

    /// Every commit's result: where committed offsets go is what a restarted group resumes
    /// from, so a refused one is counted and said with its reason.
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let refused: Vec<String> = (offsets.elements().iter())
            .filter_map(|p| {
                p.error()
                    .err()
                    .map(|e| format!("{}[{}]: {e}", p.topic(), p.partition()))
            })
            .collect();
        match result {
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {} // nothing new
            Err(e) => {
                PipelineMetrics::add(&self.metrics.commit_failures, 1);
                tracing::warn!(error = %e, offsets = %describe(offsets), partitions_refused = ?refused, "offset commit refused");
            }
            Ok(()) if !refused.is_empty() => {
                PipelineMetrics::add(&self.metrics.commit_failures, 1);
                tracing::warn!(partitions_refused = ?refused, "offset commit refused for some partitions");
            }
            Ok(()) => {
                PipelineMetrics::add(&self.metrics.commits, 1);
                tracing::debug!(offsets = %describe(offsets), "offsets committed");
            }
        }
    }
}

/// `topic[partition]@offset, ...`, for logs.
fn describe(offsets: &TopicPartitionList) -> String {
    (offsets.elements().iter())
        .map(|p| match p.offset() {
            rdkafka::Offset::Offset(o) => format!("{}[{}]@{o}", p.topic(), p.partition()),
            other => format!("{}[{}]@{other:?}", p.topic(), p.partition()),
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    health: Arc<HealthState>,
    metrics: Arc<PipelineMetrics>,
) -> KafkaResult<Arc<SourceConsumer>> {
    let k = &settings.kafka;
    let mut config = client_config(settings, Role::Consumer);
    config
        .set("group.id", &k.group_id)
        .set("auto.offset.reset", &k.auto_offset_reset)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set(
            "statistics.interval.ms",
            settings.health.statistics_interval_ms.to_string(),
        );
    let consumer: Arc<SourceConsumer> = Arc::new(config.create_with_context(SourceContext {
        tracker: Arc::clone(&tracker),
        health,
        metrics,
    })?);
    tracker.set_store(Arc::new(ConsumerOffsetStore(Arc::downgrade(&consumer))));
    let topics: Vec<&str> = k.input_topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}
