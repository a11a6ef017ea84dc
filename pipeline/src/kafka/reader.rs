//! Reading a partition back, outside the consumer group: the fleet view's replay (a partition
//! taken over in the middle of a window is read again from the window's start) and its
//! look-ups of what the partials topic already holds. A `BaseConsumer` that only assigns, so it
//! never joins the group, never commits and never moves the pipeline's offsets.
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::Settings;
use crate::kafka::client::{client_config, Role};

pub struct PartitionReader {
    consumer: BaseConsumer,
    timeout: Duration,
}

impl PartitionReader {
    /// A reader with the pipeline's client properties; a read gives up after `timeout`
    /// without a record, a look-up after `timeout` without an answer.
    pub fn new(settings: &Settings, timeout: Duration) -> anyhow::Result<PartitionReader> {
        let k = &settings.kafka;
        let consumer: BaseConsumer = client_config(settings, Role::Consumer)
            // A group id is required by librdkafka's consumer, but nothing joins or commits.
            .set("group.id", format!("{}-reader", k.group_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            // A read back waits on each fetch: answer as soon as there is anything.
            .set("fetch.wait.max.ms", "10")
            .set("fetch.queue.backoff.ms", "10")
            .create()
            .context("creating the partition reader")?;
        Ok(PartitionReader { consumer, timeout })
    }

    /// The first offset of `topic`'s `partition` whose record timestamp is at or after `ms`;
    /// `None` when the broker cannot say (no such record, or no timestamp index: librdkafka's
    /// mock broker).
    pub fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        ms: i64,
    ) -> anyhow::Result<Option<i64>> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(ms))?;
        let found = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .with_context(|| format!("offsets_for_times on {topic}/{partition}"))?;
        Ok(found
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) if o >= 0 => Some(o),
                _ => None,
            }))
    }

    /// The low and high watermarks of `topic`'s `partition`.
    pub fn watermarks(&self, topic: &str, partition: i32) -> anyhow::Result<(i64, i64)> {
        self.consumer
            .fetch_watermarks(topic, partition, self.timeout)
            .with_context(|| format!("watermarks of {topic}/{partition}"))
    }

    /// Partitions of `topic`.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<i32> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), self.timeout)
            .with_context(|| format!("metadata of {topic}"))?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if n == 0 {
            bail!("topic `{topic}` does not exist: create it first");
        }
        Ok(n as i32)
    }

    /// Calls `each` with every record of `topic`'s `partition` from offset `from` up to
    /// (not including) `to`, in order. It gives up after the reader's timeout without a
    /// record, not after that long in all: replaying a long window takes as long as it takes.
    pub fn read(
        &self,
        topic: &str,
        partition: i32,
        from: i64,
        to: i64,
        mut each: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if from >= to {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
        self.consumer.assign(&tpl)?;
        let mut deadline = Instant::now() + self.timeout;
        let mut next = from;
        let result = loop {
            if next >= to {
                break Ok(());
            }
            if Instant::now() > deadline {
                break Err(anyhow::anyhow!(
                    "reading {topic}/{partition} from {from} to {to}: no record for {} ms (at {next})",
                    self.timeout.as_millis()
                ));
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {
                    // Records compacted away or never there: stop at the end of the log.
                    let (_, high) = self.watermarks(topic, partition)?;
                    if high <= next {
                        break Ok(());
                    }
                }
                Some(Err(e)) => break Err(e).context(format!("reading {topic}/{partition}")),
                // Fetched for an earlier read before its unassign: not this partition's.
                Some(Ok(m)) if m.partition() != partition || m.topic() != topic => {}
                Some(Ok(m)) => {
                    if m.offset() >= to {
                        break Ok(());
                    }
                    next = m.offset() + 1;
                    deadline = Instant::now() + self.timeout;
                    each(&m)?;
                }
            }
        };
        self.consumer.unassign()?;
        result
    }
}
