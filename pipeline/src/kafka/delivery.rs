//! What travels with each output through librdkafka to its delivery callback, and the callback:
//! where at-least-once is decided. A batch's predictions share one [`Delivery`]; when the last of
//! them is acknowledged, the batch's input offsets are acknowledged in the [`OffsetTracker`]. A
//! failed output stops the pipeline before anything past it is committed; drift reports, alerts
//! and shadow predictions are counted and logged, never fatal.
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use driftline_operators::batch::SourcePositions;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

use crate::clock::now_ms;
use crate::kafka::offsets::OffsetTracker;
use crate::kafka::stats::ClientStatistics;
use crate::telemetry::health::HealthState;
use crate::telemetry::metrics::{PipelineMetrics, Stage};

/// The input rows some outputs stand for, carried through librdkafka to the delivery callback.
///
/// A batch's predictions share one (each record holds a clone of the `Arc`: no allocation per
/// record), and its rows' offsets are acknowledged together when the last of them is: a row's
/// offset becomes committable only after its prediction, and every prediction before it in the
/// batch, is acknowledged. A dead letter has its own, of one row. Drift reports, alerts and
/// shadow predictions stand for no row: they never hold an offset back.
pub struct Delivery {
    pub kind: DeliveryKind,
    pub rows: DeliveryRows,
    /// Records sent for these rows and not yet acknowledged.
    pending: AtomicUsize,
    /// When the first record was handed to the producer (for the produce-acknowledgement latency).
    pub enqueued: Instant,
    /// Told of this record's acknowledgement or failure, for a sender that commits offsets of
    /// its own (the labels reader's dead letters).
    watch: Option<Arc<DeliveryWatch>>,
}

/// Records whose acknowledgement a sender waits for outside the offset tracker: how many are
/// still unacknowledged, and whether one failed.
#[derive(Debug, Default)]
pub struct DeliveryWatch {
    pub pending: AtomicUsize,
    pub failed: AtomicBool,
}

/// Where the rows of a [`Delivery`] came from, column by column.
#[derive(Debug, Default)]
pub struct DeliveryRows {
    pub topics: Vec<Arc<str>>,
    pub partitions: Vec<i32>,
    pub offsets: Vec<i64>,
    pub kafka_timestamps_ms: Vec<i64>,
}

impl DeliveryRows {
    /// One row: a dead letter's.
    pub fn one(topic: Arc<str>, partition: i32, offset: i64, kafka_timestamp_ms: i64) -> Self {
        DeliveryRows {
            topics: vec![topic],
            partitions: vec![partition],
            offsets: vec![offset],
            kafka_timestamps_ms: vec![kafka_timestamp_ms],
        }
    }

    /// A batch's rows, taken from its source positions (the sink needs only keys and trace
    /// headers after this).
    pub fn take(sources: &mut SourcePositions) -> Self {
        DeliveryRows {
            topics: std::mem::take(&mut sources.topics),
            partitions: std::mem::take(&mut sources.partitions),
            offsets: std::mem::take(&mut sources.offsets),
            kafka_timestamps_ms: std::mem::take(&mut sources.kafka_timestamps_ms),
        }
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }
}

impl Delivery {
    /// For `records` records standing for `rows` (empty for reports, alerts and shadows).
    pub fn new(kind: DeliveryKind, rows: DeliveryRows, records: usize) -> Arc<Delivery> {
        Arc::new(Delivery {
            kind,
            rows,
            pending: AtomicUsize::new(records),
            enqueued: Instant::now(),
            watch: None,
        })
    }

    /// One record that holds no input offset back, whose acknowledgement `watch` is told of.
    pub fn watched(watch: &Arc<DeliveryWatch>) -> Arc<Delivery> {
        watch.pending.fetch_add(1, Ordering::AcqRel);
        Arc::new(Delivery {
            kind: DeliveryKind::Side,
            rows: DeliveryRows::default(),
            pending: AtomicUsize::new(1),
            enqueued: Instant::now(),
            watch: Some(Arc::clone(watch)),
        })
    }

    /// A drift report or alert: one record, no row.
    pub fn side() -> Arc<Delivery> {
        Delivery::new(DeliveryKind::Side, DeliveryRows::default(), 1)
    }

    /// Counts one acknowledged record; true for the last one.
    fn last_acknowledged(&self) -> bool {
        self.pending.fetch_sub(1, Ordering::AcqRel) == 1
    }
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
    /// A shadow model's prediction: an experiment, which never holds an input offset back.
    Shadow,
}

/// The producer's context: statistics, errors and delivery reports.
pub struct SinkContext {
    tracker: Arc<OffsetTracker>,
    metrics: Arc<PipelineMetrics>,
    health: Arc<HealthState>,
    /// When a failed side delivery was last logged (ms since the epoch).
    side_warned_ms: AtomicI64,
}

impl SinkContext {
    pub fn new(
        tracker: Arc<OffsetTracker>,
        metrics: Arc<PipelineMetrics>,
        health: Arc<HealthState>,
    ) -> Self {
        SinkContext {
            tracker,
            metrics,
            health,
            side_warned_ms: AtomicI64::new(0),
        }
    }
}

impl ClientContext for SinkContext {
    fn stats_raw(&self, statistics: &[u8]) {
        match ClientStatistics::parse(statistics) {
            Ok(s) => {
                self.health.producer.set_up(s.broker_up());
                self.health.set_producer_queue(s.queued_messages());
            }
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
    type DeliveryOpaque = Arc<Delivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, d: Arc<Delivery>) {
        if result.is_ok() {
            self.health.acknowledged();
        }
        if let Some(watch) = &d.watch {
            if result.is_err() {
                watch.failed.store(true, Ordering::Release);
            }
            watch.pending.fetch_sub(1, Ordering::AcqRel);
        }
        match result {
            Ok(_) if d.kind == DeliveryKind::Side => {}
            Ok(_) if d.kind == DeliveryKind::Shadow => {
                PipelineMetrics::add(&self.metrics.shadow_out, 1)
            }
            Ok(_) => {
                if !d.last_acknowledged() {
                    return;
                }
                // Every record of these rows is acknowledged: their offsets may be committed.
                let rows = &d.rows;
                match d.kind {
                    DeliveryKind::DeadLetter { reason } => self.metrics.count_dead_letter(reason),
                    _ => PipelineMetrics::add(&self.metrics.predictions_out, rows.len() as u64),
                }
                let now = now_ms();
                for &ts in &rows.kafka_timestamps_ms {
                    self.metrics.record_end_to_end_ms(now.saturating_sub(ts));
                }
                self.metrics
                    .record_stage(Stage::ProduceAck, d.enqueued.elapsed());
                self.tracker
                    .acknowledge_rows(&rows.topics, &rows.partitions, &rows.offsets);
            }
            Err((e, _)) if matches!(d.kind, DeliveryKind::Side | DeliveryKind::Shadow) => {
                // A lost report, alert or shadow prediction holds no input back (the next window
                // reports again; a shadow is an experiment). Logged at most every 10 s: a shadow
                // topic that is gone fails every record.
                PipelineMetrics::add(&self.metrics.delivery_failures, 1);
                let now = now_ms();
                let last = self.side_warned_ms.load(Ordering::Relaxed);
                if now - last >= 10_000
                    && self
                        .side_warned_ms
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(error = %e, kind = ?d.kind, failures = self.metrics.delivery_failures.load(Ordering::Relaxed), "drift report, alert or shadow prediction not delivered (logged at most every 10 s)");
                }
            }
            Err((e, _)) => {
                PipelineMetrics::add(&self.metrics.delivery_failures, 1);
                let (partition, offset) = (d.rows.partitions.first(), d.rows.offsets.first());
                tracing::error!(error = %e, kind = ?d.kind, ?partition, ?offset, rows = d.rows.len(), "output not delivered; stopping without committing its rows");
                self.tracker.fail();
            }
        }
    }
}
