//! The labels reader: reads the labels topic's partitions whose numbers this instance owns of
//! the input topics (co-partitioning, see `kafka::labels`) and hands the label events to the
//! drift stage's label join. It follows the consumer group's assignment of the source consumer:
//! a consumer of its own, assigned by hand, rather than a second group member that the group
//! would balance on its own.
//!
//! At-least-once: offsets are committed (under the group `GROUP.labels`, which has no members)
//! only up to the label events the drift stage has taken into the join, and only while every
//! dead letter sent so far is acknowledged. A label event that is not JSON, has no id or no
//! numeric label goes to the dead-letter topic with its bytes and the reason, and the stream
//! goes on; if such a dead letter cannot be delivered, no label offset is committed again in
//! this run (the labels are read again after a restart).
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::BaseRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::clock::now_ms;
use crate::config::Settings;
use crate::kafka::consumer::SourceConsumer;
use crate::kafka::delivery::{Delivery, DeliveryRows, DeliveryWatch};
use crate::kafka::headers::{dead_letter_headers, DeadLetterCause};
use crate::kafka::labels::{decode_label, LabelRejection};
use crate::kafka::producer::{send_waiting, SinkProducer};
use crate::stages::messages::{DriftMessage, LabelBatch, LabelEvent, LabelProgress};
use crate::telemetry::metrics::PipelineMetrics;

/// How often the reader follows the source's assignment and commits what was taken.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
/// Label events handed to the drift stage together, at most.
const BATCH_EVENTS: usize = 1024;
/// At shutdown, how long the final commit waits for dead letters to be acknowledged.
const DEAD_LETTER_WAIT: Duration = Duration::from_secs(5);

/// Reads the labels partitions this instance owns until `stop`, on its own thread.
pub struct LabelsReader {
    pub settings: Settings,
    pub source: Arc<SourceConsumer>,
    pub producer: Arc<SinkProducer>,
    pub metrics: Arc<PipelineMetrics>,
    pub drift: SyncSender<DriftMessage>,
    pub progress: Arc<LabelProgress>,
    pub stop: Arc<AtomicBool>,
    /// The dead letters this reader sent: offsets past one are committed once it is acknowledged.
    pub dead_letters: Arc<DeliveryWatch>,
}

impl LabelsReader {
    pub fn run(self) -> anyhow::Result<()> {
        let k = &self.settings.kafka;
        let mut config = ClientConfig::new();
        for (key, value) in k.common.iter().chain(&k.consumer) {
            config.set(key, value);
        }
        config
            .set("bootstrap.servers", &k.bootstrap_servers)
            .set("group.id", format!("{}.labels", k.group_id))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        let consumer: BaseConsumer = config.create().context("creating the labels consumer")?;
        let mut owned = BTreeSet::new();
        let mut followed = Instant::now() - FOLLOW_INTERVAL;
        let mut batch = LabelBatch::default();
        let mut batch_started = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if followed.elapsed() >= FOLLOW_INTERVAL {
                followed = Instant::now();
                self.commit(&consumer, &owned, CommitMode::Async);
                let wanted = self.owned_partitions();
                if wanted != owned {
                    self.commit(&consumer, &owned, CommitMode::Sync);
                    let mut list = TopicPartitionList::new();
                    for &p in &wanted {
                        list.add_partition_offset(&k.labels_topic, p, Offset::Stored)?;
                    }
                    consumer
                        .assign(&list)
                        .context("assigning the labels partitions")?;
                    tracing::info!(partitions = ?wanted, topic = %k.labels_topic, "labels: reading the partitions this instance owns");
                    owned = wanted;
                }
            }
            match consumer.poll(Duration::from_millis(50)) {
                Some(Ok(message)) => {
                    if batch.events.is_empty() && batch.read_up_to.is_empty() {
                        batch_started = Instant::now();
                    }
                    self.take(&message, &mut batch)?;
                }
                Some(Err(e)) => tracing::warn!(error = %e, "labels consumer"),
                None => {}
            }
            let full = batch.events.len() >= BATCH_EVENTS;
            let due = batch_started.elapsed() >= Duration::from_millis(50);
            if !batch.read_up_to.is_empty() && (full || due) {
                let ready = std::mem::take(&mut batch);
                if self.drift.send(DriftMessage::Labels(ready)).is_err() {
                    break; // the drift stage stopped
                }
            }
        }
        // What was read but not handed over is read again by the next run.
        let waiting = Instant::now();
        while self.dead_letters.pending.load(Ordering::Acquire) > 0
            && waiting.elapsed() < DEAD_LETTER_WAIT
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.commit(&consumer, &owned, CommitMode::Sync);
        Ok(())
    }

    /// The partition numbers this instance owns of the input topics.
    fn owned_partitions(&self) -> BTreeSet<i32> {
        match self.source.assignment() {
            Ok(list) => list.elements().iter().map(|p| p.partition()).collect(),
            Err(e) => {
                tracing::debug!(error = %e, "labels: reading the source's assignment");
                BTreeSet::new()
            }
        }
    }

    /// Decodes one label event into the batch, or dead-letters it.
    fn take(&self, message: &BorrowedMessage<'_>, batch: &mut LabelBatch) -> anyhow::Result<()> {
        let (partition, offset) = (message.partition(), message.offset());
        match batch.read_up_to.iter_mut().find(|(p, _)| *p == partition) {
            Some(entry) => entry.1 = offset + 1,
            None => batch.read_up_to.push((partition, offset + 1)),
        }
        match decode_label(message.payload().unwrap_or_default(), &self.settings.labels) {
            Ok((id, label, at_ms)) => batch.events.push(LabelEvent {
                id,
                label,
                at_ms,
                partition,
            }),
            Err(rejection) => {
                if let Ok(mut gauges) = self.metrics.performance.lock() {
                    gauges.invalid_labels += 1;
                }
                self.dead_letter(message, &rejection)?;
            }
        }
        Ok(())
    }

    /// A label event that cannot be read goes to the dead-letter topic, cut like an event's.
    fn dead_letter(
        &self,
        message: &BorrowedMessage<'_>,
        rejection: &LabelRejection,
    ) -> anyhow::Result<()> {
        let p = &self.settings.pipeline;
        let topic = &self.settings.kafka.labels_topic;
        tracing::debug!(
            partition = message.partition(),
            offset = message.offset(),
            reason = rejection.reason,
            "dead-lettering a label event"
        );
        let rows = DeliveryRows::one(
            Arc::from(topic.as_str()),
            message.partition(),
            message.offset(),
            message.timestamp().to_millis().unwrap_or_else(now_ms),
        );
        let key = message.key().map(|k| &k[..k.len().min(p.max_key_bytes)]);
        let payload = message.payload().unwrap_or_default();
        let room = p
            .max_dead_letter_bytes
            .saturating_sub(key.map_or(0, <[u8]>::len));
        let kept = &payload[..payload.len().min(room)];
        let cause = DeadLetterCause {
            reason: rejection.reason,
            field: rejection.field.as_deref(),
            detail: &rejection.detail,
            original_bytes: (kept.len() < payload.len()).then_some(payload.len()),
            original_key_bytes: None,
            minimal: false,
        };
        let headers = dead_letter_headers(message.headers(), &cause, &rows);
        let delivery = Delivery::watched(&self.dead_letters);
        let mut record = BaseRecord::with_opaque_to(&self.settings.kafka.dlq_topic, delivery)
            .headers(headers)
            .payload(kept);
        if let Some(key) = key {
            record = record.key(key);
        }
        send_waiting(&self.producer, record).context("cannot dead-letter a label event")
    }

    /// Commits, for the partitions owned, the offsets the drift stage has taken.
    fn commit(&self, consumer: &BaseConsumer, owned: &BTreeSet<i32>, mode: CommitMode) {
        if self.dead_letters.failed.load(Ordering::Acquire) {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| tracing::error!("a label event's dead letter was not delivered: no label offset is committed again in this run (they are read again after a restart)"));
            return;
        }
        if self.dead_letters.pending.load(Ordering::Acquire) > 0 {
            return; // the next round commits, once they are acknowledged
        }
        let progress = match self.progress.lock() {
            Ok(p) => p.clone(),
            Err(_) => return,
        };
        let mut list = TopicPartitionList::new();
        for (partition, next) in progress.iter().filter(|(p, _)| owned.contains(p)) {
            let _ = list.add_partition_offset(
                &self.settings.kafka.labels_topic,
                *partition,
                Offset::Offset(*next),
            );
        }
        if list.count() == 0 {
            return;
        }
        if let Err(e) = consumer.commit(&list, mode) {
            tracing::debug!(error = %e, "labels: commit (nothing new to commit is normal)");
        }
    }
}
